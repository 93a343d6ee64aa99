/* Options: the table, strict parsing, canonical values, zb_config. */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "zb_test.h"

static const char *get(zerobus_options *o, const char *key) {
  const char *v = NULL;
  zerobus_error *err = NULL;
  if (zerobus_options_get(o, key, &v, &err) != ZEROBUS_OK) v = NULL;
  zerobus_error_destroy(err);
  return v;
}

/* Sets and returns the status; *msg receives a copy of the message (or ""). */
static zerobus_status set(zerobus_options *o, const char *key, const char *value, char *msg,
                          size_t cap) {
  zerobus_error *err = NULL;
  zerobus_status st = zerobus_options_set(o, key, value, &err);
  if (msg) snprintf(msg, cap, "%s", zerobus_error_message(err));
  if (st == ZEROBUS_OK)
    CHECK(err == NULL);
  else
    CHECK(err != NULL && zerobus_error_code(err) == (int32_t)st && !zerobus_error_retryable(err));
  zerobus_error_destroy(err);
  return st;
}

static const struct {
  const char *name, *type, *def, *scope;
} k_expected[] = {
    {"record_type", "enum", "proto", "stream"},
    {"max_inflight_records", "int", "1000000", "stream"},
    {"max_inflight_bytes", "int", "268435456", "stream"},
    {"max_request_bytes", "int", "10469376", "stream"},
    {"recovery", "bool", "true", "stream"},
    {"recovery_retries", "int", "4", "stream"},
    {"recovery_timeout_ms", "duration_ms", "15000", "stream"},
    {"recovery_backoff_ms", "duration_ms", "2000", "stream"},
    {"server_lack_of_ack_timeout_ms", "duration_ms", "60000", "stream"},
    {"flush_timeout_ms", "duration_ms", "300000", "stream"},
    {"stream_paused_max_wait_time_ms", "duration_ms", "none", "stream"},
    {"callback_max_wait_time_ms", "duration_ms", "5000", "stream"},
    {"validate_json", "bool", "true", "stream"},
    {"dispatch_thread", "bool", "false", "stream"},
    {"log_level", "enum", "warn", "stream"},
    {"tls_ca_file", "path", "", "sdk"},
    {"tls_ca_dir", "path", "", "sdk"},
    {"tls_target_name", "string", "", "sdk"},
    {"proxy", "string", "", "sdk"},
    {"application_name", "string", "", "sdk"},
    {"token_timeout_ms", "duration_ms", "10000", "sdk"},
    {"token_refresh_margin_ms", "duration_ms", "60000", "sdk"},
};
#define N_EXPECTED (sizeof k_expected / sizeof k_expected[0])

static void table_lists_every_option(void) {
  CHECK_INT(zerobus_option_count(), N_EXPECTED);
  for (size_t i = 0; i < N_EXPECTED; i++) {
    zerobus_option_desc d;
    memset(&d, 0, sizeof d);
    d.struct_size = sizeof d;
    CHECK_INT(zerobus_option_info(i, &d), ZEROBUS_OK);
    CHECK_STR(d.name, k_expected[i].name);
    CHECK_STR(d.type, k_expected[i].type);
    CHECK_STR(d.default_value, k_expected[i].def);
    CHECK_STR(d.scope, k_expected[i].scope);
    CHECK(d.doc && strlen(d.doc) > 10 && !strchr(d.doc, '\n'));
  }
  zerobus_option_desc d;
  d.struct_size = sizeof d;
  CHECK_INT(zerobus_option_info(N_EXPECTED, &d), ZEROBUS_ERR_INVALID_ARGUMENT);
  CHECK_INT(zerobus_option_info(0, NULL), ZEROBUS_ERR_INVALID_ARGUMENT);
  /* An older caller whose struct ends after `name` gets only that field. */
  memset(&d, 0, sizeof d);
  d.struct_size = (uint32_t)(offsetof(zerobus_option_desc, name) + sizeof d.name);
  d.type = (const char *)&d; /* sentinel */
  CHECK_INT(zerobus_option_info(1, &d), ZEROBUS_OK);
  CHECK_STR(d.name, "max_inflight_records");
  CHECK(d.type == (const char *)&d);
  CHECK(d.doc == NULL);
}

static void defaults_are_readable(void) {
  unsetenv("ZEROBUS_LOG");
  unsetenv("RUST_LOG");
  zerobus_options *o = NULL;
  CHECK_INT(zerobus_options_new(&o), ZEROBUS_OK);
  for (size_t i = 0; i < N_EXPECTED; i++) CHECK_STR(get(o, k_expected[i].name), k_expected[i].def);
  setenv("ZEROBUS_LOG", "debug", 1);
  CHECK_STR(get(o, "log_level"), "debug"); /* unset: the environment decides */
  unsetenv("ZEROBUS_LOG");
  zerobus_options_destroy(o);
}

static void valid_values_become_canonical(void) {
  zerobus_options *o = NULL;
  zerobus_options_new(&o);
  static const struct {
    const char *key, *in, *canon;
  } cases[] = {
      {"record_type", "json", "json"},
      {"record_type", "JSON", "json"},
      {"record_type", "2", "json"},
      {"record_type", "Proto", "proto"},
      {"record_type", "1", "proto"},
      {"max_inflight_records", "1", "1"},
      {"max_inflight_records", "1000000000", "1000000000"},
      {"max_request_bytes", "10485760", "10485760"},
      {"max_request_bytes", "100", "100"},
      {"recovery", "off", "false"},
      {"recovery", "YES", "true"},
      {"recovery", "0", "false"},
      {"recovery", "True", "true"},
      {"recovery", "on", "true"},
      {"recovery", "no", "false"},
      {"recovery_retries", "0", "0"},
      {"recovery_retries", "1000", "1000"},
      {"recovery_backoff_ms", "0", "0"},
      {"recovery_timeout_ms", "2147483647", "2147483647"},
      {"stream_paused_max_wait_time_ms", "none", "none"},
      {"stream_paused_max_wait_time_ms", "NONE", "none"},
      {"stream_paused_max_wait_time_ms", "0", "0"},
      {"callback_max_wait_time_ms", "none", "none"},
      {"callback_max_wait_time_ms", "007", "7"},
      {"log_level", "TRACE", "trace"},
      {"log_level", "warning", "warn"},
      {"log_level", "3", "info"},
      {"log_level", "off", "off"},
      {"proxy", "http://proxy.local:3128", "http://proxy.local:3128"},
      {"proxy", "proxy.local:3128", "proxy.local:3128"},
      {"proxy", "none", "none"},
      {"proxy", "", "none"},
      {"application_name", "my-app/1.2", "my-app/1.2"},
      {"tls_target_name", "foo.example.com", "foo.example.com"},
      {"tls_ca_file", "/etc/ssl/certs/ca-certificates.crt", "/etc/ssl/certs/ca-certificates.crt"},
      {"token_refresh_margin_ms", "0", "0"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char msg[256];
    CHECK_INT(set(o, cases[i].key, cases[i].in, msg, sizeof msg), ZEROBUS_OK);
    CHECK_STR(get(o, cases[i].key), cases[i].canon);
  }
  /* An empty path or name goes back to the default. */
  CHECK_INT(set(o, "tls_ca_file", "", NULL, 0), ZEROBUS_OK);
  CHECK_STR(get(o, "tls_ca_file"), "");
  zerobus_options_destroy(o);
}

static void invalid_values_are_refused_and_old_value_kept(void) {
  zerobus_options *o = NULL;
  zerobus_options_new(&o);
  CHECK_INT(set(o, "max_inflight_records", "500", NULL, 0), ZEROBUS_OK);
  static const struct {
    const char *key, *value, *msg_part;
  } cases[] = {
      {"max_inflight_records", "", "is not an integer"},
      {"max_inflight_records", "12abc", "'12abc' is not an integer (accepted: 1..1000000000)"},
      {"max_inflight_records", " 12", "is not an integer"},
      {"max_inflight_records", "12 ", "is not an integer"},
      {"max_inflight_records", "0", "0 is out of range (accepted: 1..1000000000)"},
      {"max_inflight_records", "-5", "out of range"},
      {"max_inflight_records", "+5", "is not an integer"},
      {"max_inflight_records", "1e6", "is not an integer"},
      {"max_inflight_records", "99999999999999999999999", "is not an integer"},
      {"max_inflight_records", "none", "is not an integer"},
      {"max_request_bytes", "10485761", "10485761 is out of range (accepted: 1..10485760)"},
      {"recovery_retries", "1001", "accepted: 0..1000"},
      {"recovery_retries", "-1", "out of range"},
      {"recovery_timeout_ms", "0", "out of range"},
      {"recovery_timeout_ms", "2147483648", "out of range"},
      {"flush_timeout_ms", "none", "is not an integer number of milliseconds"},
      {"stream_paused_max_wait_time_ms", "-1", "accepted: \"none\" or 0..2147483647"},
      {"stream_paused_max_wait_time_ms", "nonee", "is not an integer"},
      {"recovery", "maybe", "'maybe' is not a boolean (accepted: true/false, 1/0, yes/no, on/off)"},
      {"recovery", "2", "not a boolean"},
      {"record_type", "avro", "'avro' is not a record type (accepted: proto or json, or 1/2)"},
      {"record_type", "0", "not a record type"},
      {"log_level", "verbose", "accepted: off, error, warn, info, debug, trace"},
      {"log_level", "6", "not a log level"},
      {"log_level", " info", "not a log level"},
      {"log_level", "info\n", "not a log level"},
      {"proxy", "socks5://p:1080", "accepted: none, or http://"},
      {"proxy", "http://p:99999", "is not a proxy"},
      {"proxy", "http://", "is not a proxy"},
      {"proxy", "http://p:80/x", "is not a proxy"},
      {"application_name", "bad\nname", "printable ASCII"},
      {"tls_target_name", "a b", "not a host name"},
      {"token_timeout_ms", "0", "out of range"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char msg[512];
    CHECK_INT(set(o, cases[i].key, cases[i].value, msg, sizeof msg), ZEROBUS_ERR_INVALID_OPTION);
    CHECK_HAS(msg, cases[i].msg_part);
    char keyq[128];
    snprintf(keyq, sizeof keyq, "option '%s'", cases[i].key);
    CHECK_HAS(msg, keyq);
  }
  CHECK_STR(get(o, "max_inflight_records"), "500");
  CHECK_STR(get(o, "recovery"), "true");
  zerobus_options_destroy(o);
}

static void unknown_keys_suggest_a_close_one(void) {
  zerobus_options *o = NULL;
  zerobus_options_new(&o);
  char msg[512];
  CHECK_INT(set(o, "max_inflight_record", "5", msg, sizeof msg), ZEROBUS_ERR_UNKNOWN_OPTION);
  CHECK_HAS(msg, "unknown option 'max_inflight_record'; did you mean 'max_inflight_records'?");
  CHECK_INT(set(o, "Recovery_Retries", "5", msg, sizeof msg), ZEROBUS_ERR_UNKNOWN_OPTION);
  CHECK_HAS(msg, "did you mean 'recovery_retries'?");
  CHECK_INT(set(o, "flush_timeout", "5", msg, sizeof msg), ZEROBUS_ERR_UNKNOWN_OPTION);
  CHECK_HAS(msg, "did you mean 'flush_timeout_ms'?");
  CHECK_INT(set(o, "completely_different", "5", msg, sizeof msg), ZEROBUS_ERR_UNKNOWN_OPTION);
  CHECK_LACKS(msg, "did you mean");
  CHECK_HAS(msg, "unknown option 'completely_different'");
  const char *v = (const char *)1;
  zerobus_error *err = NULL;
  CHECK_INT(zerobus_options_get(o, "recovery_retrie", &v, &err), ZEROBUS_ERR_UNKNOWN_OPTION);
  CHECK_HAS(zerobus_error_message(err), "did you mean 'recovery_retries'?");
  zerobus_error_destroy(err);
  zerobus_options_destroy(o);
}

static void null_arguments(void) {
  zerobus_options *o = NULL;
  zerobus_error *err = NULL;
  const char *v;
  CHECK_INT(zerobus_options_new(NULL), ZEROBUS_ERR_INVALID_ARGUMENT);
  zerobus_options_new(&o);
  CHECK_INT(zerobus_options_set(NULL, "recovery", "1", &err), ZEROBUS_ERR_INVALID_ARGUMENT);
  CHECK_HAS(zerobus_error_message(err), "opts is NULL");
  zerobus_error_destroy(err);
  CHECK_INT(zerobus_options_set(o, NULL, "1", NULL), ZEROBUS_ERR_INVALID_ARGUMENT);
  CHECK_INT(zerobus_options_set(o, "recovery", NULL, NULL), ZEROBUS_ERR_INVALID_ARGUMENT);
  CHECK_INT(zerobus_options_get(NULL, "recovery", &v, NULL), ZEROBUS_ERR_INVALID_ARGUMENT);
  CHECK_INT(zerobus_options_get(o, NULL, &v, NULL), ZEROBUS_ERR_INVALID_ARGUMENT);
  CHECK_INT(zerobus_options_get(o, "recovery", NULL, NULL), ZEROBUS_ERR_INVALID_ARGUMENT);
  zerobus_options_destroy(NULL);
  zerobus_options_destroy(o);
  zb_config_defaults(NULL);
  zb_config_free(NULL);
  CHECK_INT(zb_config_copy(NULL, NULL), ZEROBUS_ERR_INVALID_ARGUMENT);
  CHECK_INT(zb_config_apply(NULL, NULL, "sdk", NULL), ZEROBUS_ERR_INVALID_ARGUMENT);
}

static void config_defaults_match_semantics(void) {
  unsetenv("ZEROBUS_LOG");
  unsetenv("RUST_LOG");
  zb_config c;
  zb_config_defaults(&c);
  CHECK_INT(c.record_type, ZB_RECORD_TYPE_PROTO);
  CHECK_INT(c.max_inflight_records, 1000000);
  CHECK_INT(c.max_inflight_bytes, 256LL * 1024 * 1024);
  CHECK_INT(c.max_request_bytes, 10LL * 1024 * 1024 - 16 * 1024);
  CHECK_INT(c.recovery, 1);
  CHECK_INT(c.recovery_retries, 4);
  CHECK_INT(c.recovery_timeout_ms, 15000);
  CHECK_INT(c.recovery_backoff_ms, 2000);
  CHECK_INT(c.server_lack_of_ack_timeout_ms, 60000);
  CHECK_INT(c.flush_timeout_ms, 300000);
  CHECK_INT(c.stream_paused_max_wait_time_ms, -1);
  CHECK_INT(c.callback_max_wait_time_ms, 5000);
  CHECK_INT(c.validate_json, 1);
  CHECK_INT(c.dispatch_thread, 0);
  CHECK_INT(c.log_level, ZEROBUS_LOG_WARN);
  CHECK(c.tls_ca_file == NULL && c.tls_ca_dir == NULL && c.tls_target_name == NULL);
  CHECK(c.proxy == NULL && c.application_name == NULL);
  CHECK_INT(c.token_timeout_ms, 10000);
  CHECK_INT(c.token_refresh_margin_ms, 60000);
  setenv("RUST_LOG", "zerobus=trace", 1);
  zb_config_defaults(&c);
  CHECK_INT(c.log_level, ZEROBUS_LOG_TRACE);
  unsetenv("RUST_LOG");
}

static void config_apply_types_scopes_and_checks(void) {
  zb_config c;
  zb_config_defaults(&c);
  zerobus_options *o = NULL;
  zerobus_error *err = NULL;
  zerobus_options_new(&o);
  CHECK_INT(zb_config_apply(&c, NULL, "sdk,stream", &err), ZEROBUS_OK);
  set(o, "record_type", "json", NULL, 0);
  set(o, "max_inflight_records", "77", NULL, 0);
  set(o, "recovery", "false", NULL, 0);
  set(o, "stream_paused_max_wait_time_ms", "1500", NULL, 0);
  set(o, "callback_max_wait_time_ms", "none", NULL, 0);
  set(o, "log_level", "debug", NULL, 0);
  set(o, "dispatch_thread", "yes", NULL, 0);
  CHECK_INT(zb_config_apply(&c, o, "stream", &err), ZEROBUS_OK);
  CHECK(err == NULL);
  CHECK_INT(c.record_type, ZB_RECORD_TYPE_JSON);
  CHECK_INT(c.max_inflight_records, 77);
  CHECK_INT(c.recovery, 0);
  CHECK_INT(c.stream_paused_max_wait_time_ms, 1500);
  CHECK_INT(c.callback_max_wait_time_ms, -1);
  CHECK_INT(c.log_level, ZEROBUS_LOG_DEBUG);
  CHECK_INT(c.dispatch_thread, 1);
  CHECK_INT(c.recovery_retries, 4); /* untouched */

  /* An sdk option given to a stream is refused, and c stays as it was. */
  set(o, "max_inflight_records", "88", NULL, 0);
  set(o, "application_name", "app", NULL, 0);
  CHECK_INT(zb_config_apply(&c, o, "stream", &err), ZEROBUS_ERR_INVALID_OPTION);
  CHECK_HAS(zerobus_error_message(err), "option 'application_name' is an SDK option");
  zerobus_error_destroy(err);
  err = NULL;
  CHECK_INT(c.max_inflight_records, 77);
  CHECK(c.application_name == NULL);
  /* Both scopes (zerobus_sdk_new) take everything. */
  set(o, "proxy", "http://user:pw@p:3128", NULL, 0);
  set(o, "token_timeout_ms", "1234", NULL, 0);
  CHECK_INT(zb_config_apply(&c, o, "sdk,stream", &err), ZEROBUS_OK);
  CHECK_STR(c.application_name, "app");
  CHECK_STR(c.proxy, "http://user:pw@p:3128");
  CHECK_INT(c.token_timeout_ms, 1234);
  CHECK_INT(c.max_inflight_records, 88);
  /* Only sdk: a stream option is refused. */
  zerobus_options *so = NULL;
  zerobus_options_new(&so);
  set(so, "recovery_retries", "2", NULL, 0);
  CHECK_INT(zb_config_apply(&c, so, "sdk", &err), ZEROBUS_ERR_INVALID_OPTION);
  CHECK_HAS(zerobus_error_message(err), "'recovery_retries' is a stream option");
  zerobus_error_destroy(err);
  err = NULL;

  /* Deep copy. */
  zb_config d;
  CHECK_INT(zb_config_copy(&d, &c), ZEROBUS_OK);
  CHECK(d.application_name != c.application_name);
  CHECK_STR(d.application_name, "app");
  zb_config_free(&d);
  CHECK(d.application_name == NULL && d.proxy == NULL);

  /* Cross-field: inflight bytes must hold the largest request. */
  zerobus_options *x = NULL;
  zerobus_options_new(&x);
  set(x, "max_inflight_bytes", "1048576", NULL, 0);
  CHECK_INT(zb_config_apply(&c, x, "stream", &err), ZEROBUS_ERR_INVALID_OPTION);
  CHECK_HAS(zerobus_error_message(err),
            "'max_inflight_bytes' (1048576) must be at least 'max_request_bytes' (10469376)");
  zerobus_error_destroy(err);
  err = NULL;
  CHECK_INT(c.max_inflight_bytes, 256LL * 1024 * 1024);
  set(x, "max_request_bytes", "1048576", NULL, 0);
  CHECK_INT(zb_config_apply(&c, x, "stream", &err), ZEROBUS_OK);
  CHECK_INT(c.max_inflight_bytes, 1048576);
  CHECK_INT(c.max_request_bytes, 1048576);

  /* TLS files must exist and be readable. */
  zerobus_options *t = NULL;
  zerobus_options_new(&t);
  set(t, "tls_ca_file", "/nonexistent/ca.pem", NULL, 0);
  CHECK_INT(zb_config_apply(&c, t, "sdk", &err), ZEROBUS_ERR_INVALID_OPTION);
  CHECK_HAS(zerobus_error_message(err), "option 'tls_ca_file': cannot use '/nonexistent/ca.pem'");
  zerobus_error_destroy(err);
  err = NULL;
  CHECK(c.tls_ca_file == NULL);
  set(t, "tls_ca_file", "/tmp", NULL, 0);
  CHECK_INT(zb_config_apply(&c, t, "sdk", &err), ZEROBUS_ERR_INVALID_OPTION);
  CHECK_HAS(zerobus_error_message(err), "is a directory, not a file");
  zerobus_error_destroy(err);
  err = NULL;
  char path[] = "/tmp/zb_ca_XXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  close(fd);
  set(t, "tls_ca_file", path, NULL, 0);
  set(t, "tls_ca_dir", path, NULL, 0);
  CHECK_INT(zb_config_apply(&c, t, "sdk", &err), ZEROBUS_ERR_INVALID_OPTION);
  CHECK_HAS(zerobus_error_message(err), "option 'tls_ca_dir':");
  CHECK_HAS(zerobus_error_message(err), "is not a directory");
  zerobus_error_destroy(err);
  err = NULL;
  set(t, "tls_ca_dir", "/tmp", NULL, 0);
  CHECK_INT(zb_config_apply(&c, t, "sdk", &err), ZEROBUS_OK);
  CHECK_STR(c.tls_ca_file, path);
  CHECK_STR(c.tls_ca_dir, "/tmp");
  if (geteuid() != 0) { /* root reads anything */
    chmod(path, 0);
    CHECK_INT(zb_config_apply(&c, t, "sdk", &err), ZEROBUS_ERR_INVALID_OPTION);
    CHECK_HAS(zerobus_error_message(err), "is not readable");
    zerobus_error_destroy(err);
    err = NULL;
  }
  unlink(path);
  zerobus_options_destroy(t);
  zerobus_options_destroy(x);
  zerobus_options_destroy(so);
  zerobus_options_destroy(o);
  zb_config_free(&c);
}

int main(void) {
  RUN(table_lists_every_option);
  RUN(defaults_are_readable);
  RUN(valid_values_become_canonical);
  RUN(invalid_values_are_refused_and_old_value_kept);
  RUN(unknown_keys_suggest_a_close_one);
  RUN(null_arguments);
  RUN(config_defaults_match_semantics);
  RUN(config_apply_types_scopes_and_checks);
  TEST_MAIN_END();
}
