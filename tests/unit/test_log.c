/* Log: level parsing, ZEROBUS_LOG / RUST_LOG, redaction, sinks and stderr format. */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"
#include "zb_test.h"

static void check_redact(const char *in, const char *expected) {
  char *out = zb_redact(in);
  CHECK_STR(out, expected);
  free(out);
}

static void redaction_catches_every_secret_form(void) {
  check_redact("plain text stays", "plain text stays");
  check_redact("", "");
  check_redact("Bearer abc.def-ghi", "Bearer [REDACTED]");
  check_redact("got bearer   xyz123 from cache", "got bearer   [REDACTED] from cache");
  check_redact("BEARER tok,next", "BEARER [REDACTED],next");
  check_redact("{\"access_token\":\"eyJ0eXAi.x.y\",\"expires_in\":3600}",
               "{\"access_token\":\"[REDACTED]\",\"expires_in\":3600}");
  check_redact("{\"access_token\" : \"a\\\"b\", \"scope\":\"all\"}",
               "{\"access_token\" : \"[REDACTED]\", \"scope\":\"all\"}");
  check_redact("ACCESS_TOKEN=zzz&expires_in=5", "ACCESS_TOKEN=[REDACTED]&expires_in=5");
  check_redact("access_token=zzz", "access_token=[REDACTED]");
  check_redact("client_secret=s3cr3t&grant_type=client_credentials",
               "client_secret=[REDACTED]&grant_type=client_credentials");
  check_redact("Client_Secret: 'hunter2'", "Client_Secret: '[REDACTED]'");
  check_redact("authorization: Bearer abc", "authorization: [REDACTED]");
  check_redact("headers: Authorization: Basic dXNlcjpwYXNz\nnext line",
               "headers: Authorization: [REDACTED]\nnext line");
  check_redact("AUTHORIZATION=xyz, x-databricks-zerobus-table-name=a.b.c",
               "AUTHORIZATION=[REDACTED], x-databricks-zerobus-table-name=a.b.c");
  check_redact("{\"authorization\":\"Bearer q\"}", "{\"authorization\":\"[REDACTED]\"}");
  check_redact("refresh_token=r1 id_token=i1", "refresh_token=[REDACTED] id_token=[REDACTED]");
  /* Words that only look like keys stay. */
  check_redact("authorization_details=%5B%5D", "authorization_details=%5B%5D");
  check_redact("check the authorization of the principal",
               "check the authorization of the principal");
  check_redact("my_access_token=1", "my_access_token=1");
  check_redact("unbearer x", "unbearer x");
  check_redact("Bearer", "Bearer");
  check_redact("Bearer [REDACTED]", "Bearer [REDACTED]");
  check_redact("access_token=[REDACTED]&x=1", "access_token=[REDACTED]&x=1");
  check_redact("{\"access_token\":\"[REDACTED]\"}", "{\"access_token\":\"[REDACTED]\"}");
  check_redact("two: Bearer a and Bearer b", "two: Bearer [REDACTED] and Bearer [REDACTED]");
  char *n = zb_redact(NULL);
  CHECK_STR(n, "");
  free(n);
}

static void level_names_and_digits(void) {
  CHECK_INT(zb_log_level_parse("off"), ZEROBUS_LOG_OFF);
  CHECK_INT(zb_log_level_parse("error"), ZEROBUS_LOG_ERROR);
  CHECK_INT(zb_log_level_parse("WARN"), ZEROBUS_LOG_WARN);
  CHECK_INT(zb_log_level_parse("warning"), ZEROBUS_LOG_WARN);
  CHECK_INT(zb_log_level_parse("Info"), ZEROBUS_LOG_INFO);
  CHECK_INT(zb_log_level_parse("debug"), ZEROBUS_LOG_DEBUG);
  CHECK_INT(zb_log_level_parse("trace"), ZEROBUS_LOG_TRACE);
  CHECK_INT(zb_log_level_parse("0"), 0);
  CHECK_INT(zb_log_level_parse("5"), 5);
  CHECK_INT(zb_log_level_parse("6"), -1);
  CHECK_INT(zb_log_level_parse("debugx"), -1);
  CHECK_INT(zb_log_level_parse(""), -1);
  CHECK_INT(zb_log_level_parse(NULL), -1);
}

static void environment_levels(void) {
  unsetenv("ZEROBUS_LOG");
  unsetenv("RUST_LOG");
  CHECK_INT(zb_log_env_level(), ZEROBUS_LOG_WARN);
  setenv("RUST_LOG", "debug", 1);
  CHECK_INT(zb_log_env_level(), ZEROBUS_LOG_DEBUG);
  setenv("RUST_LOG", "zerobus=debug,info", 1);
  CHECK_INT(zb_log_env_level(), ZEROBUS_LOG_DEBUG);
  setenv("RUST_LOG", "info,h2=trace", 1);
  CHECK_INT(zb_log_env_level(), ZEROBUS_LOG_TRACE);
  setenv("RUST_LOG", "tokio=off", 1);
  CHECK_INT(zb_log_env_level(), ZEROBUS_LOG_OFF);
  setenv("RUST_LOG", "garbage", 1);
  CHECK_INT(zb_log_env_level(), ZEROBUS_LOG_WARN);
  setenv("RUST_LOG", "error", 1);
  setenv("ZEROBUS_LOG", "info", 1); /* ZEROBUS_LOG wins */
  CHECK_INT(zb_log_env_level(), ZEROBUS_LOG_INFO);
  setenv("ZEROBUS_LOG", "", 1); /* empty: next variable */
  CHECK_INT(zb_log_env_level(), ZEROBUS_LOG_ERROR);
  setenv("ZEROBUS_LOG", "4", 1);
  CHECK_INT(zb_log_env_level(), ZEROBUS_LOG_DEBUG);
  unsetenv("ZEROBUS_LOG");
  unsetenv("RUST_LOG");
}

typedef struct captured {
  int count;
  int32_t level;
  char text[512];
} captured;

static void capture_sink(void *ctx, int32_t level, const char *message) {
  captured *c = ctx;
  c->count++;
  c->level = level;
  snprintf(c->text, sizeof c->text, "%s", message);
}

static void sink_receives_redacted_lines_at_or_above_level(void) {
  captured cap = {0};
  zb_logger lg = {ZEROBUS_LOG_INFO, capture_sink, &cap};
  zb_log(&lg, ZEROBUS_LOG_DEBUG, "hidden %d", 1);
  CHECK_INT(cap.count, 0);
  zb_log(&lg, ZEROBUS_LOG_INFO, "token Bearer %s for %s", "sekret", "a.b.c");
  CHECK_INT(cap.count, 1);
  CHECK_INT(cap.level, ZEROBUS_LOG_INFO);
  CHECK_STR(cap.text, "token Bearer [REDACTED] for a.b.c");
  zb_log(&lg, ZEROBUS_LOG_ERROR, "boom");
  CHECK_INT(cap.count, 2);
  CHECK_STR(cap.text, "boom");
  zb_log(&lg, ZEROBUS_LOG_OFF, "never");
  zb_log(&lg, 9, "never");
  CHECK_INT(cap.count, 2);
  /* Long lines are not truncated. */
  char big[2000];
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  zb_log(&lg, ZEROBUS_LOG_WARN, "%s", big);
  CHECK_INT(cap.count, 3);
  CHECK_INT(strlen(cap.text), sizeof cap.text - 1);
  lg.level = ZEROBUS_LOG_OFF;
  zb_log(&lg, ZEROBUS_LOG_ERROR, "off means off");
  CHECK_INT(cap.count, 3);
}

static void stderr_format(void) {
  char path[] = "/tmp/zb_log_XXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  fflush(stderr);
  int saved = dup(2);
  dup2(fd, 2);
  zb_logger lg = {ZEROBUS_LOG_DEBUG, NULL, NULL};
  zb_log(&lg, ZEROBUS_LOG_WARN, "stream %s recovering", "s-1");
  zb_log(&lg, ZEROBUS_LOG_DEBUG, "client_secret=%s", "pw");
  zb_log(&lg, ZEROBUS_LOG_TRACE, "not shown");
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  char buf[512] = {0};
  lseek(fd, 0, SEEK_SET);
  ssize_t n = read(fd, buf, sizeof buf - 1);
  CHECK(n > 0);
  CHECK_STR(buf, "zerobus[WARN] stream s-1 recovering\nzerobus[DEBUG] client_secret=[REDACTED]\n");
  close(fd);
  unlink(path);
}

int main(void) {
  RUN(redaction_catches_every_secret_form);
  RUN(level_names_and_digits);
  RUN(environment_levels);
  RUN(sink_receives_redacted_lines_at_or_above_level);
  RUN(stderr_format);
  TEST_MAIN_END();
}
