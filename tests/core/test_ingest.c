/* Ingest rules: backpressure (blocking and QUEUE_FULL), refused records
 * (oversized, invalid JSON, wrong record type) that leave the stream healthy,
 * and concurrent producers getting distinct, gap-free offsets. */
#include <stddef.h>

#include "core_test.h"

static zl_server srv;
static zerobus_sdk *sdk;

static void faults(const char *table, const char *entries) {
  char buf[1024];
  snprintf(buf, sizeof buf, "{\"tables\":{\"%s\":%s}}", table, entries);
  CHECK_EQ(zl_set_faults(&srv, buf), 0);
}

typedef struct producer {
  zerobus_stream *s;
  int64_t offset;
  zerobus_status st;
  int done;
} producer;

static void *ingest_one(void *arg) {
  producer *p = arg;
  zerobus_error *e = NULL;
  char buf[32];
  int len = rec(buf, sizeof buf, 10);
  p->st = zerobus_stream_ingest(p->s, buf, (size_t)len, 0, &p->offset, &e);
  zerobus_error_destroy(e);
  __atomic_store_n(&p->done, 1, __ATOMIC_SEQ_CST);
  return NULL;
}

/* At max_inflight_records: NONBLOCK -> QUEUE_FULL (retryable); blocking waits
 * until acks make room. Acks are held 400 ms by the server. */
static void test_backpressure_records(void) {
  const char *t = "main.ing.bp";
  faults(t, "[{\"ack_delay_ms\":400}]");
  zerobus_stream *s = NULL;
  zerobus_error *e = NULL;
  const char *kv[] = {"max_inflight_records=10", NULL};
  CHECK_OK(json_stream(sdk, t, kv, NULL, &s, &e), &e);
  ingest_n(s, 0, 10);
  char buf[32];
  int len = rec(buf, sizeof buf, 10);
  int64_t off = 5;
  CHECK_ST(zerobus_stream_ingest(s, buf, (size_t)len, ZEROBUS_INGEST_NONBLOCK, &off, &e),
           ZEROBUS_ERR_QUEUE_FULL, &e);
  CHECK_EQ(zerobus_error_retryable(e), 1);
  CHECK_EQ(off, -1);
  zerobus_error_destroy(e);
  e = NULL;
  CHECK_EQ(STAT(s, records_queued), 10);
  producer p = {s, -1, 0, 0};
  pthread_t th;
  long long t0 = now_ms();
  pthread_create(&th, NULL, ingest_one, &p);
  sleep_ms(100);
  CHECK_EQ(__atomic_load_n(&p.done, __ATOMIC_SEQ_CST), 0); /* blocked */
  pthread_join(th, NULL);
  CHECK(now_ms() - t0 >= 250);
  CHECK_EQ(p.st, ZEROBUS_OK);
  CHECK_EQ(p.offset, 10);
  CHECK_OK(zerobus_stream_close(s, &e), &e);
  zerobus_stream_destroy(s);
  check_stored_exact(&srv, t, 11);
}

/* The byte limit applies too. */
static void test_backpressure_bytes(void) {
  const char *t = "main.ing.bpbytes";
  faults(t, "[{\"ack_delay_ms\":300}]");
  zerobus_stream *s = NULL;
  zerobus_error *e = NULL;
  const char *kv[] = {"max_inflight_bytes=100", "max_request_bytes=100", NULL};
  CHECK_OK(json_stream(sdk, t, kv, NULL, &s, &e), &e);
  char big[60];
  memset(big, ' ', sizeof big);
  memcpy(big, "{\"i\":0}", 7);
  int64_t off;
  CHECK_OK(zerobus_stream_ingest(s, big, sizeof big, 0, &off, &e), &e);
  CHECK_ST(zerobus_stream_ingest(s, big, sizeof big, ZEROBUS_INGEST_NONBLOCK, &off, &e),
           ZEROBUS_ERR_QUEUE_FULL, &e);
  zerobus_error_destroy(e);
  e = NULL;
  CHECK_OK(zerobus_stream_ingest(s, big, 30, ZEROBUS_INGEST_NONBLOCK, &off, &e), &e);
  CHECK_EQ(off, 1);
  long long t0 = now_ms();
  CHECK_OK(zerobus_stream_ingest(s, big, sizeof big, 0, &off, &e), &e); /* blocks */
  CHECK(now_ms() - t0 >= 150);
  CHECK_EQ(off, 2);
  CHECK_OK(zerobus_stream_close(s, &e), &e);
  zerobus_stream_destroy(s);
}

/* Refused at the call, nothing queued, the stream stays healthy. */
static void test_refused_records(void) {
  const char *t = "main.ing.refused";
  zerobus_stream *s = NULL;
  zerobus_error *e = NULL;
  const char *kv[] = {"max_request_bytes=1000", NULL};
  CHECK_OK(json_stream(sdk, t, kv, NULL, &s, &e), &e);
  ingest_n(s, 0, 2);
  int64_t off = 7;
  /* invalid JSON, a non-object, invalid UTF-8, protobuf bytes on a JSON stream */
  static const char *bad[] = {"{\"a\":", "[1,2]", "{\"a\":\"\xff\"}", "\x08\x96\x01", ""};
  static const size_t badlen[] = {5, 5, 9, 3, 0};
  for (int i = 0; i < 5; i++) {
    CHECK_ST(zerobus_stream_ingest(s, bad[i], badlen[i], 0, &off, &e), ZEROBUS_ERR_INVALID_RECORD,
             &e);
    CHECK_EQ(zerobus_error_retryable(e), 0);
    CHECK_EQ(off, -1);
    zerobus_error_destroy(e);
    e = NULL;
  }
  /* one bad record refuses the whole batch */
  char r2[32];
  size_t l2 = (size_t)rec(r2, sizeof r2, 2);
  const void *data[2] = {r2, "nope"};
  size_t lens[2] = {l2, 4};
  CHECK_ST(zerobus_stream_ingest_batch(s, data, lens, 2, 0, &off, &e), ZEROBUS_ERR_INVALID_RECORD,
           &e);
  CHECK(strstr(zerobus_error_message(e), "record 1") != NULL);
  zerobus_error_destroy(e);
  e = NULL;
  /* oversized record and batch */
  char *big = malloc(2000);
  memset(big, ' ', 2000);
  memcpy(big, "{}", 2);
  CHECK_ST(zerobus_stream_ingest(s, big, 1001, 0, &off, &e), ZEROBUS_ERR_RECORD_TOO_LARGE, &e);
  CHECK_EQ(zerobus_error_retryable(e), 0);
  zerobus_error_destroy(e);
  e = NULL;
  const void *bd[3] = {big, big, big};
  size_t bl[3] = {400, 400, 400};
  CHECK_ST(zerobus_stream_ingest_batch(s, bd, bl, 3, 0, &off, &e), ZEROBUS_ERR_RECORD_TOO_LARGE,
           &e);
  zerobus_error_destroy(e);
  e = NULL;
  CHECK_OK(zerobus_stream_ingest(s, big, 1000, 0, &off, &e), &e); /* exactly the limit */
  CHECK_EQ(off, 2);
  free(big);
  CHECK_EQ(STAT(s, records_queued), 3);
  ingest_n(s, 3, 0);
  CHECK_OK(zerobus_stream_flush(s, &e), &e);
  CHECK_EQ(zerobus_stream_state(s), ZEROBUS_STATE_ACTIVE);
  CHECK_OK(zerobus_stream_close(s, &e), &e);
  zerobus_stream_destroy(s);
  CHECK_EQ(zl_row_count(&srv, t), 3);
  /* validate_json=false lets anything through on our side */
  const char *kv2[] = {"validate_json=false", NULL};
  CHECK_OK(json_stream(sdk, "main.ing.novalidate", kv2, NULL, &s, &e), &e);
  CHECK_OK(zerobus_stream_ingest(s, "[1]", 3, 0, &off, &e), &e);
  zerobus_stream_destroy(s);
}

#define THREADS 8
#define PER_THREAD 20000

typedef struct conc {
  zerobus_stream *s;
  int id;
  int64_t *offsets;
} conc;

static void *producer_main(void *arg) {
  conc *c = arg;
  zerobus_error *e = NULL;
  char buf[48];
  for (int i = 0; i < PER_THREAD; i++) {
    int len = snprintf(buf, sizeof buf, "{\"t\":%d,\"n\":%d}", c->id, i);
    if (i % 100 == 7) {
      const void *d[2] = {buf, buf};
      size_t l[2] = {(size_t)len, (size_t)len};
      CHECK(zerobus_stream_ingest_batch(c->s, d, l, 2, 0, &c->offsets[i], &e) == ZEROBUS_OK);
    } else {
      CHECK(zerobus_stream_ingest(c->s, buf, (size_t)len, 0, &c->offsets[i], &e) == ZEROBUS_OK);
    }
  }
  return NULL;
}

static int cmp64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

/* 8 threads: offsets 0..N-1 each exactly once, per-thread increasing, every
 * record stored once in offset order. */
static void test_concurrent_producers(void) {
  const char *t = "main.ing.concurrent";
  zerobus_stream *s = NULL;
  zerobus_error *e = NULL;
  const char *kv[] = {"max_inflight_records=5000", NULL};
  CHECK_OK(json_stream(sdk, t, kv, NULL, &s, &e), &e);
  conc c[THREADS];
  pthread_t th[THREADS];
  int64_t *all = malloc(sizeof(int64_t) * THREADS * PER_THREAD);
  for (int i = 0; i < THREADS; i++) {
    c[i].s = s;
    c[i].id = i;
    c[i].offsets = all + (size_t)i * PER_THREAD;
    pthread_create(&th[i], NULL, producer_main, &c[i]);
  }
  for (int i = 0; i < THREADS; i++) pthread_join(th[i], NULL);
  CHECK_OK(zerobus_stream_close(s, &e), &e);
  long long n = (long long)THREADS * PER_THREAD;
  for (int i = 0; i < THREADS; i++)
    for (int k = 1; k < PER_THREAD; k++) CHECK(c[i].offsets[k] > c[i].offsets[k - 1]);
  qsort(all, (size_t)n, sizeof *all, cmp64);
  for (long long i = 0; i < n; i++) CHECK_EQ(all[i], i);
  long long batches = (long long)THREADS * (PER_THREAD / 100);
  CHECK_EQ(STAT(s, records_acked), n + batches);
  zerobus_stream_destroy(s);
  /* stored: n + batches rows; per thread in order */
  zl_blob *b = NULL;
  long long rows = zl_payloads(&srv, t, &b);
  CHECK_EQ(rows, n + batches);
  int next[THREADS] = {0};
  int dup_pending[THREADS] = {0};
  for (long long r = 0; r < rows; r++) {
    int tid = -1, k = -1;
    CHECK(sscanf((const char *)b[r].data, "{\"t\":%d,\"n\":%d}", &tid, &k) == 2);
    CHECK(tid >= 0 && tid < THREADS);
    if (dup_pending[tid]) {
      CHECK_EQ(k, next[tid] - 1); /* second record of a batch, right after the first */
      dup_pending[tid] = 0;
      continue;
    }
    CHECK_EQ(k, next[tid]);
    if (k % 100 == 7) dup_pending[tid] = 1;
    next[tid]++;
  }
  for (int i = 0; i < THREADS; i++) CHECK_EQ(next[i], PER_THREAD);
  zl_blobs_free(b, rows);
  free(all);
}

int main(void) {
  start_server(&srv, NULL);
  sdk = sdk_for(&srv, NULL);
  RUN(test_backpressure_records);
  RUN(test_backpressure_bytes);
  RUN(test_refused_records);
  RUN(test_concurrent_producers);
  zerobus_sdk_destroy(sdk);
  zl_stop(&srv);
  fprintf(stderr, "all passed\n");
  return 0;
}
