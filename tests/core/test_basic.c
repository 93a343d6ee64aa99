/* Basic stream behaviour against zerobus-local: offsets, batches, acks, flush,
 * close, stored bytes, events (poll, poll_events, dispatcher), introspection. */
#include <poll.h>
#include <stddef.h>

#include "core_test.h"

static zl_server srv;
static zerobus_sdk *sdk;

/* Offsets 0..N-1 per ingest call, batches take one offset, everything stored in
 * order with the exact bytes, flush/close OK, close idempotent. */
static void test_offsets_batches_and_storage(void) {
  const char *table = "main.basic.offsets";
  zerobus_stream *s = NULL;
  zerobus_error *e = NULL;
  CHECK_OK(json_stream(sdk, table, NULL, NULL, &s, &e), &e);
  CHECK(zerobus_stream_id(s) != NULL && *zerobus_stream_id(s));
  CHECK(strcmp(zerobus_stream_table_name(s), table) == 0);
  CHECK_EQ(zerobus_stream_state(s), ZEROBUS_STATE_ACTIVE);
  ingest_n(s, 0, 100);
  /* a batch of 3 = one logical offset (100); records 100..102 */
  char b0[32], b1[32], b2[32];
  size_t lens[3];
  lens[0] = (size_t)rec(b0, sizeof b0, 100);
  lens[1] = (size_t)rec(b1, sizeof b1, 101);
  lens[2] = (size_t)rec(b2, sizeof b2, 102);
  const void *data[3] = {b0, b1, b2};
  int64_t off = -2;
  CHECK_OK(zerobus_stream_ingest_batch(s, data, lens, 3, 0, &off, &e), &e);
  CHECK_EQ(off, 100);
  /* empty batch: OK, offset -1, nothing queued */
  off = 7;
  CHECK_OK(zerobus_stream_ingest_batch(s, data, lens, 0, 0, &off, &e), &e);
  CHECK_EQ(off, -1);
  char buf[32];
  int len = rec(buf, sizeof buf, 103);
  CHECK_OK(zerobus_stream_ingest(s, buf, (size_t)len, 0, &off, &e), &e);
  CHECK_EQ(off, 101);
  CHECK_OK(zerobus_stream_flush(s, &e), &e);
  CHECK_OK(zerobus_stream_wait_for_offset(s, 101, 1000, &e), &e);
  CHECK_ST(zerobus_stream_wait_for_offset(s, 102, 1000, &e), ZEROBUS_ERR_INVALID_ARGUMENT, &e);
  zerobus_error_destroy(e);
  e = NULL;
  CHECK_EQ(STAT(s, records_queued), 104);
  CHECK_EQ(STAT(s, records_acked), 104);
  CHECK_EQ(STAT(s, last_offset), 101);
  CHECK_EQ(STAT(s, acked_offset), 101);
  CHECK_EQ(STAT(s, inflight_records), 0);
  /* get_unacked on an active stream: INVALID_STATE */
  zerobus_records *r = NULL;
  CHECK_ST(zerobus_stream_get_unacked(s, &r, &e), ZEROBUS_ERR_INVALID_STATE, &e);
  zerobus_error_destroy(e);
  e = NULL;
  CHECK_OK(zerobus_stream_close(s, &e), &e);
  CHECK_EQ(zerobus_stream_state(s), ZEROBUS_STATE_CLOSED);
  CHECK_OK(zerobus_stream_close(s, &e), &e); /* idempotent */
  /* poll(-1) on a closed stream delivers what is left, then returns 0 */
  while (zerobus_stream_poll(s, -1) > 0) {
  }
  /* ingest after close: STREAM_CLOSED, not retryable */
  CHECK_ST(zerobus_stream_ingest(s, buf, (size_t)len, 0, &off, &e), ZEROBUS_ERR_STREAM_CLOSED, &e);
  CHECK_EQ(zerobus_error_retryable(e), 0);
  zerobus_error_destroy(e);
  e = NULL;
  CHECK_OK(zerobus_stream_get_unacked(s, &r, &e), &e);
  CHECK_EQ(zerobus_records_count(r), 0);
  CHECK_EQ(zerobus_records_batch_count(r), 0);
  zerobus_records_destroy(r);
  zerobus_stream_destroy(s);
  check_stored_exact(&srv, table, 104);
  CHECK_EQ(zl_counter(&srv, table, "creates"), 1);
}

typedef struct cb_state {
  pthread_mutex_t mu;
  int64_t next_ack; /* expected next offset */
  int acks, ranges, errors, logs;
  int order_broken;
  int freed;
  pthread_t thread;
  int thread_set, other_thread;
} cb_state;

static void on_ack(void *ud, int64_t o) {
  cb_state *c = ud;
  pthread_mutex_lock(&c->mu);
  if (o != c->next_ack) c->order_broken = 1;
  c->next_ack = o + 1;
  c->acks++;
  if (!c->thread_set) {
    c->thread = pthread_self();
    c->thread_set = 1;
  } else if (!pthread_equal(c->thread, pthread_self())) {
    c->other_thread = 1;
  }
  pthread_mutex_unlock(&c->mu);
}

static void on_ack_range(void *ud, int64_t first, int64_t last) {
  cb_state *c = ud;
  pthread_mutex_lock(&c->mu);
  if (first != c->next_ack || last < first) c->order_broken = 1;
  c->next_ack = last + 1;
  c->acks += (int)(last - first + 1);
  c->ranges++;
  pthread_mutex_unlock(&c->mu);
}

static void on_log(void *ud, int32_t level, const char *msg) {
  cb_state *c = ud;
  (void)level;
  CHECK(msg != NULL);
  pthread_mutex_lock(&c->mu);
  c->logs++;
  pthread_mutex_unlock(&c->mu);
}

static void user_free(void *ud) {
  cb_state *c = ud;
  c->freed++;
}

/* on_ack once per ingest call, in order, on the polling thread; user_data_free
 * once. */
static void test_poll_callbacks(void) {
  const char *table = "main.basic.poll";
  cb_state c;
  memset(&c, 0, sizeof c);
  pthread_mutex_init(&c.mu, NULL);
  zerobus_callbacks cb;
  zerobus_callbacks_init(&cb, sizeof cb);
  cb.user_data = &c;
  cb.on_ack = on_ack;
  cb.on_log = on_log;
  cb.user_data_free = user_free;
  zerobus_stream *s = NULL;
  zerobus_error *e = NULL;
  const char *kv[] = {"log_level=debug", NULL};
  CHECK_OK(json_stream(sdk, table, kv, &cb, &s, &e), &e);
  int fd = zerobus_stream_wakeup_fd(s);
  CHECK(fd >= 0);
  ingest_n(s, 0, 500);
  CHECK_OK(zerobus_stream_flush(s, &e), &e);
  /* acks are pending: the wakeup fd is readable */
  struct pollfd p = {fd, POLLIN, 0};
  CHECK_EQ(poll(&p, 1, 1000), 1);
  long long t0 = now_ms();
  while (c.acks < 500 && now_ms() - t0 < 5000 * slack()) CHECK(zerobus_stream_poll(s, 100) >= 0);
  CHECK_EQ(c.acks, 500);
  CHECK_EQ(c.order_broken, 0);
  CHECK_EQ(c.other_thread, 0);
  CHECK(pthread_equal(c.thread, pthread_self()));
  CHECK(c.logs > 0); /* debug log lines came through on_log */
  /* drained: nothing pending, fd not readable */
  while (zerobus_stream_poll(s, 0) > 0) {
  }
  p.revents = 0;
  CHECK_EQ(poll(&p, 1, 0), 0);
  CHECK_OK(zerobus_stream_close(s, &e), &e);
  CHECK_EQ(c.freed, 0);
  zerobus_stream_destroy(s);
  CHECK_EQ(c.freed, 1);
  CHECK_EQ(c.acks, 500);
}

/* on_ack_range is preferred over on_ack. */
static void test_ack_range(void) {
  cb_state c;
  memset(&c, 0, sizeof c);
  pthread_mutex_init(&c.mu, NULL);
  zerobus_callbacks cb;
  zerobus_callbacks_init(&cb, sizeof cb);
  cb.user_data = &c;
  cb.on_ack = on_ack;
  cb.on_ack_range = on_ack_range;
  zerobus_stream *s = NULL;
  zerobus_error *e = NULL;
  CHECK_OK(json_stream(sdk, "main.basic.range", NULL, &cb, &s, &e), &e);
  ingest_n(s, 0, 1000);
  CHECK_OK(zerobus_stream_flush(s, &e), &e);
  while (zerobus_stream_poll(s, 0) > 0) {
  }
  CHECK_EQ(c.acks, 1000);
  CHECK_EQ(c.order_broken, 0);
  CHECK(c.ranges >= 1 && c.ranges < 1000);
  CHECK_OK(zerobus_stream_close(s, &e), &e);
  zerobus_stream_destroy(s);
}

/* poll_events: coalesced ack ranges, no callbacks. */
static void test_poll_events(void) {
  cb_state c;
  memset(&c, 0, sizeof c);
  pthread_mutex_init(&c.mu, NULL);
  zerobus_callbacks cb;
  zerobus_callbacks_init(&cb, sizeof cb);
  cb.user_data = &c;
  cb.on_ack = on_ack;
  zerobus_stream *s = NULL;
  zerobus_error *e = NULL;
  CHECK_OK(json_stream(sdk, "main.basic.events", NULL, &cb, &s, &e), &e);
  ingest_n(s, 0, 2000);
  CHECK_OK(zerobus_stream_flush(s, &e), &e);
  zerobus_event ev[4];
  size_t n = 0;
  int64_t next = 0;
  long long t0 = now_ms();
  while (next < 2000 && now_ms() - t0 < 5000 * slack()) {
    CHECK_OK(zerobus_stream_poll_events(s, ev, 4, sizeof ev[0], 100, &n, &e), &e);
    for (size_t i = 0; i < n; i++) {
      if (ev[i].kind != ZEROBUS_EVENT_ACK) continue;
      CHECK_EQ(ev[i].first, next);
      CHECK(ev[i].last >= ev[i].first);
      next = ev[i].last + 1;
    }
  }
  CHECK_EQ(next, 2000);
  CHECK_EQ(c.acks, 0); /* no callbacks ran */
  CHECK_OK(zerobus_stream_poll_events(s, ev, 4, sizeof ev[0], 0, &n, &e), &e);
  CHECK_EQ(n, 0);
  CHECK_OK(zerobus_stream_close(s, &e), &e);
  zerobus_stream_destroy(s);
}

/* dispatch_thread=1: callbacks on one library thread (not ours), in order;
 * poll returns 0 at once. */
static void test_dispatcher(void) {
  cb_state c;
  memset(&c, 0, sizeof c);
  pthread_mutex_init(&c.mu, NULL);
  zerobus_callbacks cb;
  zerobus_callbacks_init(&cb, sizeof cb);
  cb.user_data = &c;
  cb.on_ack = on_ack;
  cb.user_data_free = user_free;
  zerobus_stream *s = NULL;
  zerobus_error *e = NULL;
  const char *kv[] = {"dispatch_thread=true", NULL};
  CHECK_OK(json_stream(sdk, "main.basic.dispatch", kv, &cb, &s, &e), &e);
  ingest_n(s, 0, 300);
  CHECK_EQ(zerobus_stream_poll(s, 100), 0);
  CHECK_OK(zerobus_stream_close(s, &e), &e); /* waits for queued callbacks */
  pthread_mutex_lock(&c.mu);
  CHECK_EQ(c.acks, 300);
  CHECK_EQ(c.order_broken, 0);
  CHECK_EQ(c.other_thread, 0);
  CHECK(!pthread_equal(c.thread, pthread_self()));
  pthread_mutex_unlock(&c.mu);
  zerobus_stream_destroy(s);
  CHECK_EQ(c.freed, 1);
}

static int released;
static const void *released_ptr;
static void release_cb(void *ctx, const void *data) {
  CHECK(ctx == &released);
  released++;
  released_ptr = data;
}

/* nocopy: release exactly once, after the ack; stored bytes exact. */
static void test_nocopy(void) {
  const char *table = "main.basic.nocopy";
  zerobus_stream *s = NULL;
  zerobus_error *e = NULL;
  CHECK_OK(json_stream(sdk, table, NULL, NULL, &s, &e), &e);
  ingest_n(s, 0, 2);
  static char rec2[32];
  int len = rec(rec2, sizeof rec2, 2);
  int64_t off = -1;
  CHECK_OK(zerobus_stream_ingest_nocopy(s, rec2, (size_t)len, 0, release_cb, &released, &off, &e),
           &e);
  CHECK_EQ(off, 2);
  ingest_n(s, 3, 2);
  CHECK_OK(zerobus_stream_close(s, &e), &e);
  zerobus_stream_destroy(s);
  CHECK_EQ(released, 1);
  CHECK(released_ptr == rec2);
  check_stored_exact(&srv, table, 5);
  /* invalid record: released at once, error */
  released = 0;
  CHECK_OK(json_stream(sdk, table, NULL, NULL, &s, &e), &e);
  CHECK_ST(zerobus_stream_ingest_nocopy(s, "nope", 4, 0, release_cb, &released, &off, &e),
           ZEROBUS_ERR_INVALID_RECORD, &e);
  zerobus_error_destroy(e);
  e = NULL;
  CHECK_EQ(released, 1);
  zerobus_stream_destroy(s);
}

/* A PROTO stream with a real descriptor: message Rec { optional int64 id = 1; } */
static void test_proto_stream(void) {
  /* DescriptorProto{name:"Rec", field:[{name:"id", number:1, label:OPTIONAL(1), type:INT64(3)}]} */
  static const unsigned char desc[] = {0x0a, 0x03, 'R',  'e',  'c',  0x12, 0x0a, 0x0a, 0x02,
                                       'i',  'd',  0x18, 0x01, 0x20, 0x01, 0x28, 0x03};
  const char *table = "main.basic.proto";
  zerobus_options *o = opts_of((const char *[]){"recovery_backoff_ms=50", NULL});
  zerobus_stream *s = NULL;
  zerobus_error *e = NULL;
  CHECK_OK(zerobus_stream_create(sdk, table, desc, sizeof desc, "test-client", "test-secret", o,
                                 NULL, &s, &e),
           &e);
  unsigned char r1[] = {0x08, 0x01}, r2[] = {0x08, 0x96, 0x01};
  int64_t off;
  CHECK_OK(zerobus_stream_ingest(s, r1, sizeof r1, 0, &off, &e), &e);
  CHECK_EQ(off, 0);
  CHECK_OK(zerobus_stream_ingest(s, r2, sizeof r2, 0, &off, &e), &e);
  CHECK_EQ(off, 1);
  CHECK_OK(zerobus_stream_close(s, &e), &e);
  zerobus_stream_destroy(s);
  zl_blob *b = NULL;
  long long n = zl_payloads(&srv, table, &b);
  CHECK_EQ(n, 2);
  CHECK(b[0].len == 2 && memcmp(b[0].data, r1, 2) == 0);
  CHECK(b[1].len == 3 && memcmp(b[1].data, r2, 3) == 0);
  zl_blobs_free(b, n);
  /* PROTO stream without a descriptor, or with garbage: INVALID_ARGUMENT */
  CHECK_ST(
      zerobus_stream_create(sdk, table, NULL, 0, "test-client", "test-secret", o, NULL, &s, &e),
      ZEROBUS_ERR_INVALID_ARGUMENT, &e);
  zerobus_error_destroy(e);
  static const unsigned char bad[] = {0xff, 0xff, 0xff};
  CHECK_ST(zerobus_stream_create(sdk, table, bad, sizeof bad, "test-client", "test-secret", o, NULL,
                                 &s, &e),
           ZEROBUS_ERR_INVALID_ARGUMENT, &e);
  zerobus_error_destroy(e);
  zerobus_options_destroy(o);
}

/* Big records and batches spanning arena chunks keep order and bytes. */
static void test_large_records(void) {
  const char *table = "main.basic.large";
  zerobus_stream *s = NULL;
  zerobus_error *e = NULL;
  CHECK_OK(json_stream(sdk, table, NULL, NULL, &s, &e), &e);
  size_t big = 3u << 20; /* 3 MiB: bigger than one arena chunk */
  char *p = malloc(big);
  memset(p, 'x', big);
  memcpy(p, "{\"b\":\"", 6);
  p[big - 2] = '"';
  p[big - 1] = '}';
  int64_t off;
  for (int i = 0; i < 4; i++) {
    CHECK_OK(zerobus_stream_ingest(s, p, big, 0, &off, &e), &e);
    CHECK_EQ(off, 2 * i);
    char buf[32];
    int len = rec(buf, sizeof buf, i);
    CHECK_OK(zerobus_stream_ingest(s, buf, (size_t)len, 0, &off, &e), &e);
  }
  CHECK_OK(zerobus_stream_close(s, &e), &e);
  zerobus_stream_destroy(s);
  zl_blob *b = NULL;
  long long n = zl_payloads(&srv, table, &b);
  CHECK_EQ(n, 8);
  for (int i = 0; i < 8; i += 2) {
    CHECK(b[i].len == big && memcmp(b[i].data, p, big) == 0);
    char buf[32];
    int len = rec(buf, sizeof buf, i / 2);
    CHECK(b[i + 1].len == (size_t)len && memcmp(b[i + 1].data, buf, (size_t)len) == 0);
  }
  zl_blobs_free(b, n);
  free(p);
}

typedef struct reenter {
  zerobus_stream *s;
  int acks;
  int extra;
  int closed_in_cb;
  zerobus_status close_st;
} reenter;

/* on_ack (dispatcher thread) ingests more records and reads stats. */
static void reenter_ack(void *ud, int64_t o) {
  reenter *r = ud;
  __atomic_add_fetch(&r->acks, 1, __ATOMIC_SEQ_CST);
  if (o < 50) {
    char buf[32];
    int len = rec(buf, sizeof buf, 1000 + o);
    zerobus_error *e = NULL;
    CHECK(zerobus_stream_ingest(r->s, buf, (size_t)len, 0, NULL, &e) == ZEROBUS_OK);
    __atomic_add_fetch(&r->extra, 1, __ATOMIC_SEQ_CST);
  }
  zerobus_stream_stats st;
  memset(&st, 0, sizeof st);
  st.struct_size = sizeof st;
  CHECK(zerobus_stream_get_stats(r->s, &st) == ZEROBUS_OK);
  CHECK(zerobus_stream_state(r->s) >= 0);
}

/* on_ack (poll thread) closes the stream from inside the callback. */
static void closing_ack(void *ud, int64_t o) {
  reenter *r = ud;
  r->acks++;
  if (o == 9 && !r->closed_in_cb) {
    zerobus_error *e = NULL;
    r->close_st = zerobus_stream_close(r->s, &e);
    zerobus_error_destroy(e);
    r->closed_in_cb = 1;
  }
}

/* on_ack (dispatcher thread) closes the stream while the main thread closes it
 * too. */
static void dispatch_closing_ack(void *ud, int64_t o) {
  reenter *r = ud;
  __atomic_add_fetch(&r->acks, 1, __ATOMIC_SEQ_CST);
  if (o == 5) {
    zerobus_error *e = NULL;
    r->close_st = zerobus_stream_close(r->s, &e);
    zerobus_error_destroy(e);
    __atomic_store_n(&r->closed_in_cb, 1, __ATOMIC_SEQ_CST);
  }
}

/* Callbacks may call stream functions (ingest, stats, close) without deadlock. */
static void test_callbacks_reenter(void) {
  reenter r;
  memset(&r, 0, sizeof r);
  zerobus_callbacks cb;
  zerobus_callbacks_init(&cb, sizeof cb);
  cb.user_data = &r;
  cb.on_ack = reenter_ack;
  zerobus_error *e = NULL;
  const char *kv[] = {"dispatch_thread=1", NULL};
  const char *table = "main.basic.reenter";
  CHECK_OK(json_stream(sdk, table, kv, &cb, &r.s, &e), &e);
  ingest_n(r.s, 0, 50);
  long long t0 = now_ms();
  while (__atomic_load_n(&r.acks, __ATOMIC_SEQ_CST) < 100 && now_ms() - t0 < 5000 * slack())
    sleep_ms(5);
  CHECK_EQ(__atomic_load_n(&r.acks, __ATOMIC_SEQ_CST), 100);
  CHECK_OK(zerobus_stream_close(r.s, &e), &e);
  zerobus_stream_destroy(r.s);
  CHECK_EQ(zl_row_count(&srv, table), 100);
  /* poll mode: close from inside on_ack */
  memset(&r, 0, sizeof r);
  cb.on_ack = closing_ack;
  CHECK_OK(json_stream(sdk, "main.basic.reenter2", NULL, &cb, &r.s, &e), &e);
  ingest_n(r.s, 0, 10);
  CHECK_OK(zerobus_stream_flush(r.s, &e), &e);
  while (zerobus_stream_poll(r.s, 100) > 0) {
  }
  CHECK_EQ(r.closed_in_cb, 1);
  CHECK_EQ(r.close_st, ZEROBUS_OK);
  CHECK_EQ(r.acks, 10);
  CHECK_EQ(zerobus_stream_state(r.s), ZEROBUS_STATE_CLOSED);
  zerobus_stream_destroy(r.s);
  /* dispatcher mode: close from the callback and from the main thread */
  memset(&r, 0, sizeof r);
  cb.on_ack = dispatch_closing_ack;
  const char *kv2[] = {"dispatch_thread=1", NULL};
  CHECK_OK(json_stream(sdk, "main.basic.reenter3", kv2, &cb, &r.s, &e), &e);
  ingest_n(r.s, 0, 10);
  CHECK_OK(zerobus_stream_close(r.s, &e), &e);
  long long t1 = now_ms();
  while (!__atomic_load_n(&r.closed_in_cb, __ATOMIC_SEQ_CST) && now_ms() - t1 < 5000 * slack())
    sleep_ms(5);
  CHECK_EQ(__atomic_load_n(&r.closed_in_cb, __ATOMIC_SEQ_CST), 1);
  CHECK_EQ(r.close_st, ZEROBUS_OK);
  t1 = now_ms();
  while (__atomic_load_n(&r.acks, __ATOMIC_SEQ_CST) < 10 && now_ms() - t1 < 5000 * slack())
    sleep_ms(5);
  CHECK_EQ(__atomic_load_n(&r.acks, __ATOMIC_SEQ_CST), 10);
  zerobus_stream_destroy(r.s);
}

static int slow_acks;
static void slow_ack(void *ud, int64_t o) {
  (void)ud;
  (void)o;
  sleep_ms(100);
  __atomic_add_fetch(&slow_acks, 1, __ATOMIC_SEQ_CST);
}

/* close() waits for the dispatcher's queued callbacks at most
 * callback_max_wait_time_ms ("none": until all ran). */
static void test_callback_max_wait(void) {
  zerobus_callbacks cb;
  zerobus_callbacks_init(&cb, sizeof cb);
  cb.on_ack = slow_ack;
  zerobus_stream *s = NULL;
  zerobus_error *e = NULL;
  const char *kv[] = {"dispatch_thread=1", "callback_max_wait_time_ms=300", NULL};
  CHECK_OK(json_stream(sdk, "main.basic.cbwait", kv, &cb, &s, &e), &e);
  slow_acks = 0;
  ingest_n(s, 0, 20); /* 20 acks x 100 ms of callbacks */
  CHECK_OK(zerobus_stream_flush(s, &e), &e);
  long long t0 = now_ms();
  CHECK_OK(zerobus_stream_close(s, &e), &e);
  long long dt = now_ms() - t0;
  int done = __atomic_load_n(&slow_acks, __ATOMIC_SEQ_CST);
  fprintf(stderr, "   close waited %lld ms, %d of 20 callbacks ran\n", dt, done);
  CHECK(dt >= 150 && dt < 1000 * slack());
  CHECK(done < 20);
  zerobus_stream_destroy(s);
  const char *kv2[] = {"dispatch_thread=1", "callback_max_wait_time_ms=none", NULL};
  CHECK_OK(json_stream(sdk, "main.basic.cbwait2", kv2, &cb, &s, &e), &e);
  slow_acks = 0;
  ingest_n(s, 0, 10);
  CHECK_OK(zerobus_stream_close(s, &e), &e);
  CHECK_EQ(__atomic_load_n(&slow_acks, __ATOMIC_SEQ_CST), 10);
  zerobus_stream_destroy(s);
}

int main(void) {
  start_server(&srv, NULL);
  sdk = sdk_for(&srv, NULL);
  RUN(test_offsets_batches_and_storage);
  RUN(test_poll_callbacks);
  RUN(test_ack_range);
  RUN(test_poll_events);
  RUN(test_dispatcher);
  RUN(test_nocopy);
  RUN(test_proto_stream);
  RUN(test_large_records);
  RUN(test_callbacks_reenter);
  RUN(test_callback_max_wait);
  zerobus_sdk_destroy(sdk);
  CHECK_EQ(zl_stop(&srv), 0);
  fprintf(stderr, "all passed\n");
  return 0;
}
