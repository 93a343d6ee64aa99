/* Secrets never reach a log line or an error message: with trace-level logging,
 * an OAuth stream goes through a refused first attempt (UNAUTHENTICATED: the
 * cached token is invalidated and a fresh one fetched) and a dropped call
 * (recovery with a new connection). Every line the library produced - through
 * on_log and on stderr - and every error message is then searched for
 * zerobus-local's access tokens ("zl-...") and the client secret. The test also
 * checks that there was plenty to search, so it can fail. */
#include <fcntl.h>

#include "core_test.h"

#define SECRET "test-secret"

static char *logs;
static size_t logs_len, logs_cap;
static int log_lines;

static void on_log(void *ud, int32_t level, const char *message) {
  (void)ud;
  (void)level;
  size_t n = strlen(message);
  if (logs_len + n + 2 > logs_cap) {
    logs_cap = (logs_len + n + 2) * 2;
    logs = realloc(logs, logs_cap);
    CHECK(logs != NULL);
  }
  memcpy(logs + logs_len, message, n);
  logs_len += n;
  logs[logs_len++] = '\n';
  logs[logs_len] = 0;
  log_lines++;
}

static void check_clean(const char *what, const char *text) {
  if (!text) return;
  if (strstr(text, "zl-") || strstr(text, SECRET)) {
    fprintf(stderr, "a secret leaked into %s:\n%s\n", what, text);
    exit(1);
  }
}

static char *read_file(const char *path) {
  FILE *f = fopen(path, "rb");
  CHECK(f != NULL);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = calloc(1, (size_t)n + 1);
  CHECK(buf != NULL);
  CHECK(fread(buf, 1, (size_t)n, f) == (size_t)n);
  fclose(f);
  return buf;
}

int main(void) {
  /* Library lines that have no stream sink (SDK level) go to stderr: capture it. */
  char errpath[] = "/tmp/zb-secrets-stderr-XXXXXX";
  int fd = mkstemp(errpath);
  CHECK(fd >= 0);
  fflush(stderr);
  int saved = dup(2);
  CHECK(dup2(fd, 2) == 2);
  setenv("ZEROBUS_LOG", "trace", 1);

  zl_server srv;
  start_server(&srv, NULL);
  CHECK_EQ(zl_set_faults(
               &srv, "{\"tables\":{\"" TABLE "\":[{\"fail_create\":16},{\"drop_at_request\":1}]}}"),
           0);
  zerobus_sdk *sdk = sdk_for(&srv, NULL);

  zerobus_callbacks cb;
  zerobus_callbacks_init(&cb, sizeof cb);
  cb.on_log = on_log;
  zerobus_stream *s = NULL;
  zerobus_error *e = NULL;
  CHECK_OK(json_stream(sdk, TABLE, (const char *[]){"log_level=trace", NULL}, &cb, &s, &e), &e);
  ingest_n(s, 0, 1); /* request 0 */
  CHECK_OK(zerobus_stream_flush(s, &e), &e);
  ingest_n(s, 1, 3); /* request 1 and later: the call is dropped, then recovered */
  CHECK_OK(zerobus_stream_flush(s, &e), &e);
  zerobus_stream_stats st;
  memset(&st, 0, sizeof st);
  st.struct_size = sizeof st;
  CHECK_OK(zerobus_stream_get_stats(s, &st), &e);
  CHECK_EQ(st.reconnects, 1);
  CHECK_OK(zerobus_stream_close(s, &e), &e);
  while (zerobus_stream_poll(s, 0) > 0) {
  }
  zerobus_stream_destroy(s);

  /* A wrong secret: its error message must not echo the secret either. */
  zerobus_stream *bad = NULL;
  zerobus_options *json = opts_of((const char *[]){"record_type=json", NULL});
  zerobus_status rc = zerobus_stream_create(sdk, TABLE, NULL, 0, "test-client", SECRET "-wrong",
                                            json, NULL, &bad, &e);
  zerobus_options_destroy(json);
  CHECK_EQ(rc, ZEROBUS_ERR_UNAUTHENTICATED);
  check_clean("an error message", zerobus_error_message(e));
  zerobus_error_destroy(e);
  e = NULL;

  zerobus_sdk_destroy(sdk);
  /* Two create attempts (the first refused) and the recovery fetched tokens. */
  CHECK(zl_counter(&srv, NULL, "tokens_issued") >= 2);
  check_stored_atleast_once(&srv, TABLE, 4);
  zl_stop(&srv);

  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  close(fd);
  char *err_text = read_file(errpath);
  unlink(errpath);

  /* Enough was logged to make the search meaningful. */
  CHECK(log_lines >= 5);
  CHECK(strstr(logs, "connection attempt") != NULL);
  check_clean("on_log lines", logs);
  if (getenv("SECRETS_TEST_SHOW")) fputs(logs, stdout);
  check_clean("stderr", err_text);
  printf("secrets: %d log lines and %zu bytes of stderr searched, no token or secret\n", log_lines,
         strlen(err_text));
  free(err_text);
  free(logs);
  return 0;
}
