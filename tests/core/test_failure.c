/* Failure paths: a failed stream (non-retryable status, exhausted recovery)
 * reports every unacked ingest call through on_error in order, keeps the records,
 * returns its error from flush/close; close's flush timeout moves records to the
 * unacked set; recreate re-ingests them; destroy wakes blocked threads. */
#include <stddef.h>

#include "core_test.h"

static zl_server srv;
static zerobus_sdk *sdk;

static void faults(const char *table, const char *entries) {
  char buf[1024];
  snprintf(buf, sizeof buf, "{\"tables\":{\"%s\":%s}}", table, entries);
  CHECK_EQ(zl_set_faults(&srv, buf), 0);
}

typedef struct ev_state {
  int64_t next_ack, next_err;
  int acks, errors, order_broken;
  int32_t err_code;
} ev_state;

static void on_ack(void *ud, int64_t o) {
  ev_state *s = ud;
  if (o != s->next_ack) s->order_broken = 1;
  s->next_ack = o + 1;
  s->acks++;
}

static void on_error(void *ud, int64_t o, const zerobus_error *e) {
  ev_state *s = ud;
  if (s->errors == 0) s->next_err = o;
  if (o != s->next_err) s->order_broken = 1;
  s->next_err = o + 1;
  s->errors++;
  s->err_code = zerobus_error_code(e);
}

static void check_unacked(zerobus_stream *s, long long first, long long n) {
  zerobus_records *r = NULL;
  zerobus_error *e = NULL;
  CHECK_OK(zerobus_stream_get_unacked(s, &r, &e), &e);
  CHECK_EQ(zerobus_records_count(r), n);
  CHECK_EQ(zerobus_records_batch_count(r), n);
  for (long long i = 0; i < n; i++) {
    const void *d;
    size_t len;
    CHECK(zerobus_records_get(r, (size_t)i, &d, &len) == ZEROBUS_OK);
    char buf[32];
    int l = rec(buf, sizeof buf, first + i);
    CHECK((size_t)l == len && memcmp(d, buf, len) == 0);
    size_t bf, bc;
    int64_t off;
    CHECK(zerobus_records_batch(r, (size_t)i, &bf, &bc, &off) == ZEROBUS_OK);
    CHECK_EQ(bf, i);
    CHECK_EQ(bc, 1);
    CHECK_EQ(off, first + i);
  }
  CHECK(zerobus_records_get(r, (size_t)n, NULL, NULL) == ZEROBUS_ERR_INVALID_ARGUMENT);
  zerobus_records_destroy(r);
}

/* A non-retryable status mid-stream fails the stream: no retry, on_error for
 * every unacked offset in order, records retrievable, errors from flush/close. */
static void test_fatal_status_mid_stream(void) {
  const char *t = "main.fail.fatal";
  faults(t, "[{\"fail_at_request\":3,\"status\":3}]");
  ev_state st;
  memset(&st, 0, sizeof st);
  zerobus_callbacks cb;
  zerobus_callbacks_init(&cb, sizeof cb);
  cb.user_data = &st;
  cb.on_ack = on_ack;
  cb.on_error = on_error;
  zerobus_stream *s = NULL;
  zerobus_error *e = NULL;
  const char *kv[] = {"max_request_bytes=12", NULL};
  CHECK_OK(json_stream(sdk, t, kv, &cb, &s, &e), &e);
  ingest_n(s, 0, 3);
  CHECK_OK(zerobus_stream_flush(s, &e), &e);
  ingest_n(s, 3, 7); /* request 3 kills the call */
  CHECK_ST(zerobus_stream_flush(s, &e), ZEROBUS_ERR_SERVER_REJECTED, &e);
  CHECK_EQ(zerobus_error_retryable(e), 0);
  zerobus_error_destroy(e);
  e = NULL;
  CHECK_EQ(zerobus_stream_state(s), ZEROBUS_STATE_FAILED);
  CHECK_ST(zerobus_stream_wait_for_offset(s, 5, 1000, &e), ZEROBUS_ERR_SERVER_REJECTED, &e);
  zerobus_error_destroy(e);
  e = NULL;
  CHECK_OK(zerobus_stream_wait_for_offset(s, 2, 1000, &e), &e); /* acked before */
  char buf[32];
  int len = rec(buf, sizeof buf, 99);
  CHECK_ST(zerobus_stream_ingest(s, buf, (size_t)len, 0, NULL, &e), ZEROBUS_ERR_STREAM_CLOSED, &e);
  CHECK(strstr(zerobus_error_message(e), "INVALID_ARGUMENT") != NULL); /* carries the cause */
  zerobus_error_destroy(e);
  e = NULL;
  check_unacked(s, 3, 7);
  while (zerobus_stream_poll(s, 0) > 0) {
  }
  CHECK_EQ(st.acks, 3);
  CHECK_EQ(st.errors, 7);
  CHECK_EQ(st.next_err, 10);
  CHECK_EQ(st.order_broken, 0);
  CHECK_EQ(st.err_code, ZEROBUS_ERR_SERVER_REJECTED);
  CHECK_EQ(STAT(s, records_failed), 7);
  CHECK_ST(zerobus_stream_close(s, &e), ZEROBUS_ERR_SERVER_REJECTED, &e);
  zerobus_error_destroy(e);
  CHECK_ST(zerobus_stream_close(s, &e), ZEROBUS_ERR_SERVER_REJECTED, &e); /* idempotent */
  zerobus_error_destroy(e);
  CHECK_EQ(zerobus_stream_state(s), ZEROBUS_STATE_FAILED);
  CHECK_EQ(zl_counter(&srv, t, "creates"), 1);
  /* recreate: a new stream re-ingests 3..9 in order */
  zerobus_stream *s2 = NULL;
  CHECK_OK(zerobus_stream_recreate(s, NULL, &s2, &e), &e);
  CHECK_EQ(STAT(s2, last_offset), 6);
  CHECK_OK(zerobus_stream_close(s2, &e), &e);
  zerobus_stream_destroy(s2);
  zerobus_stream_destroy(s);
  zl_blob *b = NULL;
  long long n = zl_payloads(&srv, t, &b);
  CHECK_EQ(n, 10);
  for (long long i = 0; i < n; i++) {
    int l = rec(buf, sizeof buf, i);
    CHECK((size_t)l == b[i].len && memcmp(buf, b[i].data, b[i].len) == 0);
  }
  zl_blobs_free(b, n);
}

/* Recovery exhausted mid-stream: RETRIES_EXHAUSTED (not retryable on this
 * stream), every record kept. */
static void test_recovery_exhausted(void) {
  const char *t = "main.fail.exhaust";
  faults(t, "[{\"drop_at_request\":0},{\"fail_create\":14,\"repeat\":100}]");
  ev_state st;
  memset(&st, 0, sizeof st);
  zerobus_callbacks cb;
  zerobus_callbacks_init(&cb, sizeof cb);
  cb.user_data = &st;
  cb.on_error = on_error;
  zerobus_stream *s = NULL;
  zerobus_error *e = NULL;
  const char *kv[] = {"recovery_retries=2", "dispatch_thread=true", NULL};
  CHECK_OK(json_stream(sdk, t, kv, &cb, &s, &e), &e);
  ingest_n(s, 0, 50);
  CHECK_ST(zerobus_stream_flush(s, &e), ZEROBUS_ERR_RETRIES_EXHAUSTED, &e);
  CHECK_EQ(zerobus_error_retryable(e), 0);
  zerobus_error_destroy(e);
  CHECK_EQ(zl_counter(&srv, t, "create_attempts"), 4); /* 1 + 3 recovery attempts */
  CHECK_EQ(STAT(s, recovery_attempts), 3);
  check_unacked(s, 0, 50);
  CHECK_ST(zerobus_stream_close(s, &e), ZEROBUS_ERR_RETRIES_EXHAUSTED, &e);
  zerobus_error_destroy(e);
  CHECK_EQ(st.errors, 50); /* delivered by the dispatcher before close returned */
  CHECK_EQ(st.order_broken, 0);
  zerobus_stream_destroy(s);
}

/* close() whose flush times out (server stores but never acks): TIMEOUT, the
 * records move to the unacked set and on_error reports each. */
static void test_close_flush_timeout(void) {
  const char *t = "main.fail.noack";
  faults(t, "[{\"no_ack\":true}]");
  ev_state st;
  memset(&st, 0, sizeof st);
  zerobus_callbacks cb;
  zerobus_callbacks_init(&cb, sizeof cb);
  cb.user_data = &st;
  cb.on_error = on_error;
  zerobus_stream *s = NULL;
  zerobus_error *e = NULL;
  const char *kv[] = {"flush_timeout_ms=300", NULL};
  CHECK_OK(json_stream(sdk, t, kv, &cb, &s, &e), &e);
  ingest_n(s, 0, 20);
  CHECK_ST(zerobus_stream_flush(s, &e), ZEROBUS_ERR_TIMEOUT, &e);
  zerobus_error_destroy(e);
  zerobus_records *r = NULL;
  CHECK_ST(zerobus_stream_get_unacked(s, &r, &e), ZEROBUS_ERR_INVALID_STATE, &e);
  zerobus_error_destroy(e);
  long long t0 = now_ms();
  CHECK_ST(zerobus_stream_close(s, &e), ZEROBUS_ERR_TIMEOUT, &e);
  CHECK(now_ms() - t0 < 2000 * slack());
  zerobus_error_destroy(e);
  CHECK_EQ(zerobus_stream_state(s), ZEROBUS_STATE_CLOSED);
  check_unacked(s, 0, 20);
  while (zerobus_stream_poll(s, 0) > 0) {
  }
  CHECK_EQ(st.errors, 20);
  CHECK_EQ(st.err_code, ZEROBUS_ERR_TIMEOUT);
  CHECK_ST(zerobus_stream_close(s, &e), ZEROBUS_ERR_TIMEOUT, &e);
  zerobus_error_destroy(e);
  zerobus_stream_destroy(s);
}

typedef struct blocked {
  zerobus_stream *s;
  zerobus_status st;
  int done;
} blocked;

static void *blocked_ingest(void *arg) {
  blocked *b = arg;
  zerobus_error *e = NULL;
  char buf[32];
  int len = rec(buf, sizeof buf, 1000);
  b->st = zerobus_stream_ingest(b->s, buf, (size_t)len, 0, NULL, &e);
  zerobus_error_destroy(e);
  __atomic_store_n(&b->done, 1, __ATOMIC_SEQ_CST);
  return NULL;
}

static void *blocked_flush(void *arg) {
  blocked *b = arg;
  zerobus_error *e = NULL;
  b->st = zerobus_stream_flush(b->s, &e);
  zerobus_error_destroy(e);
  __atomic_store_n(&b->done, 1, __ATOMIC_SEQ_CST);
  return NULL;
}

static void *blocked_poll(void *arg) {
  blocked *b = arg;
  int32_t n;
  do {
    n = zerobus_stream_poll(b->s, -1); /* forever, until destroy */
  } while (n > 0);
  b->st = n < 0 ? (zerobus_status)-n : ZEROBUS_OK;
  __atomic_store_n(&b->done, 1, __ATOMIC_SEQ_CST);
  return NULL;
}

/* destroy() of an active stream with threads blocked inside it: they return
 * STREAM_CLOSED, destroy is fast, nothing crashes. */
static void test_destroy_wakes_blocked(void) {
  const char *t = "main.fail.destroy";
  faults(t, "[{\"no_ack\":true}]");
  zerobus_stream *s = NULL;
  zerobus_error *e = NULL;
  const char *kv[] = {"max_inflight_records=5", NULL};
  CHECK_OK(json_stream(sdk, t, kv, NULL, &s, &e), &e);
  ingest_n(s, 0, 5);
  blocked a = {s, 0, 0}, b = {s, 0, 0}, c = {s, 0, 0};
  pthread_t ta, tb, tc;
  pthread_create(&ta, NULL, blocked_ingest, &a);
  pthread_create(&tb, NULL, blocked_flush, &b);
  pthread_create(&tc, NULL, blocked_poll, &c);
  sleep_ms(200);
  CHECK_EQ(__atomic_load_n(&a.done, __ATOMIC_SEQ_CST), 0);
  CHECK_EQ(__atomic_load_n(&b.done, __ATOMIC_SEQ_CST), 0);
  CHECK_EQ(__atomic_load_n(&c.done, __ATOMIC_SEQ_CST), 0);
  long long t0 = now_ms();
  zerobus_stream_destroy(s);
  long long dt = now_ms() - t0;
  pthread_join(ta, NULL);
  pthread_join(tb, NULL);
  pthread_join(tc, NULL);
  CHECK_EQ(a.st, ZEROBUS_ERR_STREAM_CLOSED);
  CHECK_EQ(b.st, ZEROBUS_ERR_STREAM_CLOSED);
  CHECK_EQ(c.done, 1); /* poll returned (0 or STREAM_CLOSED) */
  CHECK(dt < 1000 * slack());
}

/* close() from another thread wakes a blocked ingest with STREAM_CLOSED. */
static void test_close_wakes_blocked_ingest(void) {
  const char *t = "main.fail.closewake";
  faults(t, "[{\"no_ack\":true}]");
  zerobus_stream *s = NULL;
  zerobus_error *e = NULL;
  const char *kv[] = {"max_inflight_records=3", "flush_timeout_ms=300", NULL};
  CHECK_OK(json_stream(sdk, t, kv, NULL, &s, &e), &e);
  ingest_n(s, 0, 3);
  blocked a = {s, 0, 0};
  pthread_t ta;
  pthread_create(&ta, NULL, blocked_ingest, &a);
  sleep_ms(100);
  CHECK_ST(zerobus_stream_close(s, &e), ZEROBUS_ERR_TIMEOUT, &e);
  zerobus_error_destroy(e);
  pthread_join(ta, NULL);
  CHECK_EQ(a.st, ZEROBUS_ERR_STREAM_CLOSED);
  check_unacked(s, 0, 3);
  zerobus_stream_destroy(s);
}

/* Unacked batches keep their grouping; recreate re-ingests each as one call. */
static void test_unacked_batches_and_recreate(void) {
  const char *t = "main.fail.batches";
  faults(t, "[{\"no_ack\":true}]");
  zerobus_stream *s = NULL;
  zerobus_error *e = NULL;
  const char *kv[] = {"flush_timeout_ms=200", NULL};
  CHECK_OK(json_stream(sdk, t, kv, NULL, &s, &e), &e);
  /* offsets: 0 = {0}, 1 = batch {1,2,3}, 2 = {4}, 3 = batch {5,6} */
  char b[7][32];
  size_t l[7];
  const void *d[7];
  for (int i = 0; i < 7; i++) {
    l[i] = (size_t)rec(b[i], sizeof b[i], i);
    d[i] = b[i];
  }
  int64_t off;
  CHECK_OK(zerobus_stream_ingest(s, d[0], l[0], 0, &off, &e), &e);
  CHECK_OK(zerobus_stream_ingest_batch(s, d + 1, l + 1, 3, 0, &off, &e), &e);
  CHECK_EQ(off, 1);
  CHECK_OK(zerobus_stream_ingest(s, d[4], l[4], 0, &off, &e), &e);
  CHECK_OK(zerobus_stream_ingest_batch(s, d + 5, l + 5, 2, 0, &off, &e), &e);
  CHECK_EQ(off, 3);
  CHECK_ST(zerobus_stream_close(s, &e), ZEROBUS_ERR_TIMEOUT, &e);
  zerobus_error_destroy(e);
  e = NULL;
  zerobus_records *r = NULL;
  CHECK_OK(zerobus_stream_get_unacked(s, &r, &e), &e);
  CHECK_EQ(zerobus_records_count(r), 7);
  CHECK_EQ(zerobus_records_batch_count(r), 4);
  static const size_t want_first[4] = {0, 1, 4, 5}, want_count[4] = {1, 3, 1, 2};
  for (size_t i = 0; i < 4; i++) {
    size_t f, c;
    int64_t o;
    CHECK(zerobus_records_batch(r, i, &f, &c, &o) == ZEROBUS_OK);
    CHECK_EQ(f, want_first[i]);
    CHECK_EQ(c, want_count[i]);
    CHECK_EQ(o, (int64_t)i);
  }
  for (size_t i = 0; i < 7; i++) {
    const void *x;
    size_t n;
    CHECK(zerobus_records_get(r, i, &x, &n) == ZEROBUS_OK);
    CHECK(n == l[i] && memcmp(x, d[i], n) == 0);
  }
  zerobus_records_destroy(r);
  CHECK_EQ(zl_row_count(&srv, t), 7); /* stored, never acked */
  CHECK_EQ(zl_clear_faults(&srv), 0);
  zerobus_stream *s2 = NULL;
  CHECK_OK(zerobus_stream_recreate(s, NULL, &s2, &e), &e);
  CHECK_EQ(STAT(s2, last_offset), 3); /* four ingest calls again */
  CHECK_EQ(STAT(s2, records_queued), 7);
  CHECK_OK(zerobus_stream_close(s2, &e), &e);
  zerobus_stream_destroy(s2);
  zerobus_stream_destroy(s);
  zl_blob *bl = NULL;
  long long n = zl_payloads(&srv, t, &bl);
  CHECK_EQ(n, 14); /* at-least-once: 7 unacked + 7 re-ingested */
  for (long long i = 0; i < 14; i++)
    CHECK(bl[i].len == l[i % 7] && memcmp(bl[i].data, d[i % 7], bl[i].len) == 0);
  zl_blobs_free(bl, n);
}

int main(void) {
  start_server(&srv, NULL);
  sdk = sdk_for(&srv, NULL);
  RUN(test_fatal_status_mid_stream);
  RUN(test_recovery_exhausted);
  RUN(test_close_flush_timeout);
  RUN(test_destroy_wakes_blocked);
  RUN(test_close_wakes_blocked_ingest);
  RUN(test_unacked_batches_and_recreate);
  zerobus_sdk_destroy(sdk);
  zl_stop(&srv);
  fprintf(stderr, "all passed\n");
  return 0;
}
