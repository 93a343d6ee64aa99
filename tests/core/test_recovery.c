/* Recovery: transport drops, retryable statuses, malformed acks, lack of ack,
 * headers provider per attempt. Records are one per request here
 * (max_request_bytes=12 fits exactly one {"i":k} entry), so wire offsets equal
 * logical offsets on the first call and fault positions are exact. */
#include <stddef.h>

#include "core_test.h"

static zl_server srv;
static zerobus_sdk *sdk;

static void faults(const char *table, const char *entries) {
  char buf[2048];
  snprintf(buf, sizeof buf, "{\"tables\":{\"%s\":%s}}", table, entries);
  CHECK_EQ(zl_set_faults(&srv, buf), 0);
}

static zerobus_stream *one_per_request(const char *table, const char *const *extra) {
  const char *kv[16] = {"max_request_bytes=12", "max_inflight_bytes=1000000"};
  int n = 2;
  for (int i = 0; extra && extra[i]; i++) kv[n++] = extra[i];
  kv[n] = NULL;
  zerobus_stream *s = NULL;
  zerobus_error *e = NULL;
  CHECK_OK(json_stream(sdk, table, kv, NULL, &s, &e), &e);
  return s;
}

static int32_t last_error_code(zerobus_stream *s) {
  zerobus_error *le = NULL;
  CHECK(zerobus_stream_last_error(s, &le) == ZEROBUS_OK);
  int32_t c = zerobus_error_code(le);
  zerobus_error_destroy(le);
  return c;
}

/* drop_at_request: the connection dies, the stream recovers, request 5 and the
 * unacked tail are replayed in order; offsets unchanged. */
static void test_drop_at_request(void) {
  const char *t = "main.rec.drop";
  faults(t, "[{\"drop_at_request\":5}]");
  zerobus_stream *s = one_per_request(t, NULL);
  ingest_n(s, 0, 20);
  zerobus_error *e = NULL;
  CHECK_OK(zerobus_stream_flush(s, &e), &e);
  CHECK_EQ(STAT(s, reconnects), 1);
  CHECK_EQ(STAT(s, records_acked), 20);
  CHECK_EQ(STAT(s, acked_offset), 19);
  CHECK_EQ(zerobus_stream_state(s), ZEROBUS_STATE_ACTIVE);
  long long starts[8];
  CHECK_EQ(check_replay_runs(&srv, t, 20, starts), 2);
  CHECK(starts[1] <= 5);
  /* call 1 stored exactly 0..4 (request 5 was dropped, not stored) */
  zl_blob *b = NULL;
  long long n = zl_payloads(&srv, t, &b);
  CHECK_EQ(n, 5 + (20 - starts[1]));
  zl_blobs_free(b, n);
  /* requests starts[1]..5 were surely written before the drop; later ones maybe */
  CHECK(STAT(s, records_resent) >= 6 - starts[1]);
  CHECK(STAT(s, records_resent) <= 20 - starts[1]);
  CHECK_EQ(zl_counter(&srv, t, "creates"), 2);
  CHECK_EQ(last_error_code(s), ZEROBUS_ERR_UNAVAILABLE);
  CHECK_OK(zerobus_stream_close(s, &e), &e);
  zerobus_stream_destroy(s);
}

/* fail_at_request with retryable statuses (UNAVAILABLE, RESOURCE_EXHAUSTED,
 * INTERNAL, ABORTED): recovered, data intact. */
static void test_fail_at_request_retryable(void) {
  static const int codes[] = {14, 8, 13, 10};
  for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
    char t[64], f[128];
    snprintf(t, sizeof t, "main.rec.fail%d", codes[i]);
    snprintf(f, sizeof f, "[{\"fail_at_request\":3,\"status\":%d}]", codes[i]);
    faults(t, f);
    zerobus_stream *s = one_per_request(t, NULL);
    ingest_n(s, 0, 10);
    zerobus_error *e = NULL;
    CHECK_OK(zerobus_stream_flush(s, &e), &e);
    CHECK_EQ(STAT(s, reconnects), 1);
    zerobus_error *le = NULL;
    zerobus_stream_last_error(s, &le);
    CHECK_EQ(zerobus_error_grpc_status(le), codes[i]);
    CHECK_EQ(zerobus_error_retryable(le), 1);
    zerobus_error_destroy(le);
    CHECK_OK(zerobus_stream_close(s, &e), &e);
    zerobus_stream_destroy(s);
    CHECK_EQ(check_replay_runs(&srv, t, 10, NULL), 2);
  }
}

/* Malformed acks: backwards / beyond / no_offset are protocol errors (reconnect,
 * data intact); a duplicate ack is ignored (no reconnect). */
static void test_malformed_acks(void) {
  static const char *kinds[] = {"backwards", "beyond", "no_offset", "duplicate"};
  for (int k = 0; k < 4; k++) {
    char t[64], f[160];
    snprintf(t, sizeof t, "main.rec.mal_%s", kinds[k]);
    snprintf(f, sizeof f, "[{\"malformed_ack\":\"%s\",\"after_request\":4}]", kinds[k]);
    faults(t, f);
    zerobus_stream *s = one_per_request(t, NULL);
    ingest_n(s, 0, 5);
    zerobus_error *e = NULL;
    CHECK_OK(zerobus_stream_flush(s, &e), &e);
    sleep_ms(100); /* the bad ack follows the normal ack of request 4 */
    ingest_n(s, 5, 10);
    CHECK_OK(zerobus_stream_flush(s, &e), &e);
    CHECK_EQ(STAT(s, records_acked), 15);
    CHECK_EQ(STAT(s, acked_offset), 14);
    if (k == 3) {
      CHECK_EQ(STAT(s, reconnects), 0);
      CHECK_EQ(zl_counter(&srv, t, "creates"), 1);
      check_stored_exact(&srv, t, 15);
    } else {
      CHECK_EQ(STAT(s, reconnects), 1);
      CHECK_EQ(last_error_code(s), ZEROBUS_ERR_PROTOCOL);
      CHECK_EQ(zl_counter(&srv, t, "creates"), 2);
      check_replay_runs(&srv, t, 15, NULL);
    }
    CHECK_OK(zerobus_stream_close(s, &e), &e);
    zerobus_stream_destroy(s);
  }
}

/* No ack for server_lack_of_ack_timeout_ms with records in flight: ACK_TIMEOUT,
 * recovered; an idle stream never times out. */
static void test_lack_of_ack(void) {
  const char *t = "main.rec.noack";
  faults(t, "[{\"no_ack\":true}]");
  const char *kv[] = {"server_lack_of_ack_timeout_ms=500", NULL};
  zerobus_stream *s = one_per_request(t, kv);
  /* idle first: no timeout */
  sleep_ms(1100);
  CHECK_EQ(STAT(s, reconnects), 0);
  long long t0 = now_ms();
  ingest_n(s, 0, 5);
  zerobus_error *e = NULL;
  CHECK_OK(zerobus_stream_flush(s, &e), &e);
  long long dt = now_ms() - t0;
  CHECK(dt >= 480);
  CHECK(dt < 3000 * slack());
  CHECK_EQ(STAT(s, reconnects), 1);
  CHECK_EQ(last_error_code(s), ZEROBUS_ERR_ACK_TIMEOUT);
  CHECK_EQ(STAT(s, records_resent), 5);
  /* idle again after acks: no more reconnects */
  sleep_ms(1100);
  CHECK_EQ(STAT(s, reconnects), 1);
  CHECK_OK(zerobus_stream_close(s, &e), &e);
  zerobus_stream_destroy(s);
  long long starts[8];
  CHECK_EQ(check_replay_runs(&srv, t, 5, starts), 2);
  CHECK_EQ(starts[1], 0);
  CHECK_EQ(zl_row_count(&srv, t), 10); /* stored twice: at-least-once */
}

/* Close signal cases. The server acks only request 0 (ack_prefix 1), sends the
 * signal after it, and ends the call D=800 ms later; requests 1..19 stay in
 * flight, so the pause lasts min(stream_paused_max_wait_time_ms, D). */
static long long close_signal_case(const char *t, const char *max_wait) {
  faults(t, "[{\"close_signal_ms\":800,\"after_request\":0,\"ack_prefix\":1}]");
  char opt[80];
  snprintf(opt, sizeof opt, "stream_paused_max_wait_time_ms=%s", max_wait);
  const char *kv[] = {opt, NULL};
  zerobus_stream *s = one_per_request(t, kv);
  long long t0 = now_ms();
  ingest_n(s, 0, 20);
  zerobus_error *e = NULL;
  CHECK_OK(zerobus_stream_flush(s, &e), &e);
  long long dt = now_ms() - t0;
  CHECK_EQ(STAT(s, records_acked), 20);
  CHECK_EQ(STAT(s, reconnects), 1);
  CHECK_OK(zerobus_stream_close(s, &e), &e);
  zerobus_stream_destroy(s);
  CHECK_EQ(zl_counter(&srv, t, "creates"), 2);
  check_replay_runs(&srv, t, 20, NULL);
  return dt;
}

static void test_close_signal(void) {
  long long at_once = close_signal_case("main.rec.sig0", "0");
  long long below = close_signal_case("main.rec.sig200", "200");
  long long above = close_signal_case("main.rec.sig5000", "5000");
  long long none = close_signal_case("main.rec.signone", "none");
  fprintf(stderr,
          "   close signal: 0 -> %lld ms, 200 -> %lld ms, 5000 -> %lld ms, none -> %lld ms\n",
          at_once, below, above, none);
  CHECK(at_once < 180 * slack());
  CHECK(below >= 190 && below < 750 * slack());
  CHECK(above >= 780);
  CHECK(none >= 780);
}

/* Early resume: after the signal, once nothing is in flight the client moves to
 * a new stream at once instead of waiting for the server's duration. */
static void test_close_signal_early_resume(void) {
  const char *t = "main.rec.sigearly";
  faults(t, "[{\"close_signal_ms\":5000,\"after_request\":9}]");
  zerobus_stream *s = one_per_request(t, NULL);
  const char *first_id = zerobus_stream_id(s);
  ingest_n(s, 0, 10);
  zerobus_error *e = NULL;
  CHECK_OK(zerobus_stream_flush(s, &e), &e);
  long long t0 = now_ms();
  while (zl_counter(&srv, t, "creates") < 2 && now_ms() - t0 < 3000 * slack()) sleep_ms(10);
  CHECK_EQ(zl_counter(&srv, t, "creates"), 2);
  CHECK(now_ms() - t0 < 1000 * slack());
  ingest_n(s, 10, 5);
  CHECK_OK(zerobus_stream_flush(s, &e), &e);
  CHECK(strcmp(first_id, zerobus_stream_id(s)) != 0); /* old pointer still valid */
  CHECK_OK(zerobus_stream_close(s, &e), &e);
  zerobus_stream_destroy(s);
  check_stored_exact(&srv, t, 15);
}

typedef struct hp_state {
  int calls;
  int freed;
} hp_state;

static int32_t provider(void *ud, zerobus_headers *h) {
  hp_state *st = ud;
  st->calls++;
  zerobus_headers_add(h, "authorization", "Bearer whatever");
  zerobus_headers_add(h, "x-databricks-zerobus-table-name", "main.rec.provider");
  return ZEROBUS_OK;
}

static void hp_free(void *ud) {
  ((hp_state *)ud)->freed++;
}

/* The headers provider runs for every connection attempt. */
static void test_headers_provider_every_attempt(void) {
  zl_server na;
  start_server(&na, (const char *[]){"--no-auth", NULL});
  const char *t = "main.rec.provider";
  char f[256];
  snprintf(f, sizeof f,
           "{\"tables\":{\"%s\":[{\"drop_at_request\":2},{\"fail_create\":14},"
           "{\"drop_at_request\":1}]}}",
           t);
  CHECK_EQ(zl_set_faults(&na, f), 0);
  zerobus_sdk *sdk2 = sdk_for(&na, NULL);
  hp_state st = {0, 0};
  zerobus_callbacks cb;
  zerobus_callbacks_init(&cb, sizeof cb);
  cb.user_data = &st;
  cb.headers = provider;
  cb.user_data_free = hp_free;
  zerobus_options *o = opts_of(
      (const char *[]){"record_type=json", "max_request_bytes=12", "recovery_backoff_ms=50", NULL});
  zerobus_stream *s = NULL;
  zerobus_error *e = NULL;
  CHECK_OK(zerobus_stream_create(sdk2, t, NULL, 0, NULL, NULL, o, &cb, &s, &e), &e);
  CHECK_EQ(st.calls, 1);
  ingest_n(s, 0, 10);
  CHECK_OK(zerobus_stream_flush(s, &e), &e);
  /* call 1 dropped, call 2 refused at create, call 3 dropped, call 4 fine */
  CHECK_EQ(st.calls, 4);
  CHECK_EQ(zl_counter(&na, t, "create_attempts"), 4);
  CHECK_EQ(STAT(s, reconnects), 2);
  CHECK_EQ(STAT(s, recovery_attempts), 3);
  CHECK_OK(zerobus_stream_close(s, &e), &e);
  zerobus_stream_destroy(s);
  CHECK_EQ(st.freed, 1);
  zerobus_options_destroy(o);
  zerobus_sdk_destroy(sdk2);
  zl_stop(&na);
}

/* The server goes away and comes back on the same port within one attempt's
 * recovery_timeout_ms: the attempt keeps reconnecting instead of failing. */
static void test_server_restart_same_port(void) {
  zl_server a;
  start_server(&a, NULL);
  zerobus_sdk *sdk2 = sdk_for(&a, NULL);
  const char *t = "main.rec.restart";
  zerobus_stream *s = NULL;
  zerobus_error *e = NULL;
  const char *kv[] = {"recovery_timeout_ms=5000", NULL};
  CHECK_OK(json_stream(sdk2, t, kv, NULL, &s, &e), &e);
  ingest_n(s, 0, 10);
  CHECK_OK(zerobus_stream_flush(s, &e), &e);
  char db[512], gp[16], hp[16];
  snprintf(db, sizeof db, "%s", a.db_path);
  snprintf(gp, sizeof gp, "%d", a.grpc_port);
  snprintf(hp, sizeof hp, "%d", a.http_port);
  CHECK_EQ(zl_kill(&a), 0);
  ingest_n(s, 10, 10); /* queued while the server is down */
  sleep_ms(600);
  zl_server b;
  CHECK_EQ(zl_start_db(&b, db, (const char *[]){"--port", gp, "--http-port", hp, NULL}), 0);
  CHECK_EQ(b.grpc_port, atoi(gp));
  CHECK_OK(zerobus_stream_flush(s, &e), &e);
  CHECK_EQ(STAT(s, reconnects), 1);
  /* one attempt that reconnected until the server was back; the new server
   * process does not know the cached token (UNAUTHENTICATED), so one more
   * attempt with a fresh token */
  CHECK_EQ(STAT(s, recovery_attempts), 2);
  CHECK_EQ(zl_counter(&b, NULL, "tokens_issued"), 1);
  CHECK_OK(zerobus_stream_close(s, &e), &e);
  zerobus_stream_destroy(s);
  zerobus_sdk_destroy(sdk2);
  check_replay_runs(&b, t, 20, NULL);
  zl_stop(&b);
}

int main(void) {
  start_server(&srv, (const char *[]){"--ack-interval-ms", "20", NULL});
  sdk = sdk_for(&srv, NULL);
  RUN(test_drop_at_request);
  RUN(test_fail_at_request_retryable);
  RUN(test_malformed_acks);
  RUN(test_lack_of_ack);
  RUN(test_close_signal);
  RUN(test_close_signal_early_resume);
  RUN(test_headers_provider_every_attempt);
  RUN(test_server_restart_same_port);
  zerobus_sdk_destroy(sdk);
  CHECK_EQ(zl_stop(&srv), 0);
  fprintf(stderr, "all passed\n");
  return 0;
}
