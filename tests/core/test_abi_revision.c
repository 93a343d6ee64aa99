/* The ABI revision before the freeze: poll_events' event_size (older and newer
 * callers' zerobus_event), struct_size write-back of get_stats/option_info,
 * on_thread_start/on_thread_stop on the dispatcher and headers-provider threads,
 * and zerobus_stream_wake. */
#include <stddef.h>

#include "core_test.h"

static zl_server srv;    /* OAuth */
static zl_server noauth; /* --no-auth, for headers-provider tests */
static zerobus_sdk *sdk;

/* The smallest event_size the library accepts: zerobus_event up to the end of
 * `message` (equal to sizeof(zerobus_event) in this version; a later version
 * that appends members makes it smaller than sizeof). */
#define EVENT_MIN (offsetof(zerobus_event, message) + sizeof(const char *))
#define GUARD 0xA5

static int all_guard(const unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != GUARD) return 0;
  return 1;
}

/* A stream with log lines (log_level=debug, on_log set: they are queued as LOG
 * events) and 10 acked records, so one poll_events has several events. */
static void noop_log(void *ud, int32_t level, const char *msg) {
  (void)ud;
  (void)level;
  (void)msg;
}
static zerobus_stream *stream_with_events(const char *table) {
  zerobus_callbacks cb;
  zerobus_callbacks_init(&cb, sizeof cb);
  cb.on_log = noop_log;
  zerobus_stream *s = NULL;
  zerobus_error *e = NULL;
  const char *kv[] = {"log_level=debug", NULL};
  CHECK_OK(json_stream(sdk, table, kv, &cb, &s, &e), &e);
  ingest_n(s, 0, 10);
  CHECK_OK(zerobus_stream_flush(s, &e), &e);
  return s;
}

/* Polls with element stride `stride` into a guarded buffer of `cap` elements;
 * checks the library wrote exactly min(stride, sizeof) bytes of each returned
 * element and nothing else, and returns the events (unpacked) in out[]. */
static size_t poll_strided(zerobus_stream *s, size_t stride, size_t cap, zerobus_event *out) {
  size_t bytes = stride * cap + 64;
  unsigned char *buf = malloc(bytes);
  CHECK(buf != NULL);
  memset(buf, GUARD, bytes);
  size_t n = 99;
  zerobus_error *e = NULL;
  CHECK_OK(zerobus_stream_poll_events(s, (zerobus_event *)(void *)buf, cap, stride, 1000, &n, &e),
           &e);
  CHECK(n >= 1 && n <= cap);
  size_t lib = sizeof(zerobus_event);
  size_t written = stride < lib ? stride : lib;
  for (size_t i = 0; i < n; i++) {
    unsigned char *el = buf + i * stride;
    memset(&out[i], 0, sizeof out[i]);
    memcpy(&out[i], el, written);
    CHECK(!all_guard(el, written));                   /* written */
    CHECK(all_guard(el + written, stride - written)); /* the caller's tail untouched */
  }
  CHECK(all_guard(buf + n * stride, bytes - n * stride)); /* later elements untouched */
  free(buf);
  return n;
}

/* poll_events with an element larger than the library's (a newer caller), the
 * minimum size, and sizes too small (INVALID_ARGUMENT, nothing consumed). */
static void test_poll_events_event_size(void) {
  zerobus_stream *s = stream_with_events("main.abirev.evsize");
  zerobus_error *e = NULL;
  size_t n = 7;
  /* too small: refused, nothing consumed */
  size_t bad[] = {0, 1, offsetof(zerobus_event, message), EVENT_MIN - 1};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    unsigned char buf[4 * sizeof(zerobus_event)];
    memset(buf, GUARD, sizeof buf);
    n = 7;
    CHECK_ST(zerobus_stream_poll_events(s, (zerobus_event *)(void *)buf, 2, bad[i], 0, &n, &e),
             ZEROBUS_ERR_INVALID_ARGUMENT, &e);
    CHECK(strstr(zerobus_error_message(e), "event_size") != NULL);
    zerobus_error_destroy(e);
    e = NULL;
    CHECK_EQ(n, 0);
    CHECK(all_guard(buf, sizeof buf));
  }
  /* cap * event_size overflowing size_t: refused */
  zerobus_event one;
  CHECK_ST(zerobus_stream_poll_events(s, &one, SIZE_MAX / 2, sizeof one, 0, &n, &e),
           ZEROBUS_ERR_INVALID_ARGUMENT, &e);
  zerobus_error_destroy(e);
  e = NULL;

  /* a newer caller: element 24 bytes larger than the library's; the library
   * steps by 24 + sizeof and leaves each element's tail alone */
  zerobus_event got[8];
  size_t big = sizeof(zerobus_event) + 24;
  n = poll_strided(s, big, 3, got);
  CHECK_EQ(n, 3); /* the ack range first, then (at least 2) log lines */
  CHECK_EQ(got[0].kind, ZEROBUS_EVENT_ACK);
  CHECK_EQ(got[0].first, 0);
  CHECK_EQ(got[0].last, 9);
  CHECK(got[0].error == NULL && got[0].message == NULL);
  for (size_t i = 1; i < n; i++) {
    CHECK_EQ(got[i].kind, ZEROBUS_EVENT_LOG);
    CHECK(got[i].status >= ZEROBUS_LOG_ERROR && got[i].status <= ZEROBUS_LOG_TRACE);
    CHECK_EQ(got[i].first, -1);
    CHECK_EQ(got[i].last, -1);
    CHECK(got[i].message != NULL && got[i].error == NULL);
  }

  /* the smallest accepted size (an older caller; == sizeof in this version):
   * exactly EVENT_MIN bytes per element */
  ingest_n(s, 10, 5);
  CHECK_OK(zerobus_stream_flush(s, &e), &e);
  n = poll_strided(s, EVENT_MIN, 8, got);
  CHECK_EQ(got[0].kind, ZEROBUS_EVENT_ACK);
  CHECK_EQ(got[0].first, 10);
  CHECK_EQ(got[0].last, 14);
  for (size_t i = 1; i < n; i++) CHECK_EQ(got[i].kind, ZEROBUS_EVENT_LOG);

  /* an odd stride (not a multiple of the alignment) still steps exactly */
  ingest_n(s, 15, 1);
  CHECK_OK(zerobus_stream_flush(s, &e), &e);
  n = poll_strided(s, sizeof(zerobus_event) + 3, 4, got);
  CHECK_EQ(got[0].kind, ZEROBUS_EVENT_ACK);
  CHECK_EQ(got[0].first, 15);
  CHECK_EQ(got[0].last, 15);
  CHECK_OK(zerobus_stream_close(s, &e), &e);
  zerobus_stream_destroy(s);
}

/* get_stats and option_info write back struct_size = min(caller, library). */
static void test_struct_size_writeback(void) {
  zerobus_stream *s = NULL;
  zerobus_error *e = NULL;
  CHECK_OK(json_stream(sdk, "main.abirev.stats", NULL, NULL, &s, &e), &e);
  ingest_n(s, 0, 3);
  CHECK_OK(zerobus_stream_flush(s, &e), &e);
  /* a newer caller: 32 bytes the library does not know */
  struct {
    zerobus_stream_stats st;
    unsigned char extra[32];
  } big;
  memset(&big, GUARD, sizeof big);
  big.st.struct_size = sizeof big;
  CHECK_EQ(zerobus_stream_get_stats(s, &big.st), ZEROBUS_OK);
  CHECK_EQ(big.st.struct_size, sizeof(zerobus_stream_stats));
  CHECK_EQ(big.st.records_acked, 3);
  CHECK_EQ(big.st.records_failed, 0);
  CHECK(all_guard(big.extra, sizeof big.extra));
  /* an older caller: up to records_sent (exclusive) */
  zerobus_stream_stats small;
  memset(&small, GUARD, sizeof small);
  size_t old = offsetof(zerobus_stream_stats, records_sent);
  small.struct_size = (uint32_t)old;
  CHECK_EQ(zerobus_stream_get_stats(s, &small), ZEROBUS_OK);
  CHECK_EQ(small.struct_size, old);
  CHECK_EQ(small.state, ZEROBUS_STATE_ACTIVE);
  CHECK_EQ(small.records_queued, 3);
  CHECK(all_guard((unsigned char *)&small + old, sizeof small - old));
  /* exact */
  zerobus_stream_stats exact;
  memset(&exact, 0, sizeof exact);
  exact.struct_size = sizeof exact;
  CHECK_EQ(zerobus_stream_get_stats(s, &exact), ZEROBUS_OK);
  CHECK_EQ(exact.struct_size, sizeof exact);
  /* too small to hold struct_size: refused, nothing written */
  memset(&small, GUARD, sizeof small);
  small.struct_size = 3;
  CHECK_EQ(zerobus_stream_get_stats(s, &small), ZEROBUS_ERR_INVALID_ARGUMENT);
  CHECK_EQ(small.struct_size, 3);
  CHECK(all_guard((unsigned char *)&small + 4, sizeof small - 4));
  CHECK_OK(zerobus_stream_close(s, &e), &e);
  zerobus_stream_destroy(s);

  /* option_info */
  size_t count = zerobus_option_count();
  CHECK(count > 0);
  struct {
    zerobus_option_desc d;
    unsigned char extra[24];
  } bigd;
  for (size_t i = 0; i < count; i++) {
    memset(&bigd, GUARD, sizeof bigd);
    bigd.d.struct_size = sizeof bigd;
    CHECK_EQ(zerobus_option_info(i, &bigd.d), ZEROBUS_OK);
    CHECK_EQ(bigd.d.struct_size, sizeof(zerobus_option_desc));
    CHECK(bigd.d.name && bigd.d.type && bigd.d.default_value && bigd.d.scope && bigd.d.doc);
    CHECK(all_guard(bigd.extra, sizeof bigd.extra));
  }
  zerobus_option_desc d;
  size_t oldd = offsetof(zerobus_option_desc, default_value); /* name and type only */
  memset(&d, GUARD, sizeof d);
  d.struct_size = (uint32_t)oldd;
  CHECK_EQ(zerobus_option_info(0, &d), ZEROBUS_OK);
  CHECK_EQ(d.struct_size, oldd);
  CHECK(d.name != NULL && d.type != NULL);
  CHECK(all_guard((unsigned char *)&d + oldd, sizeof d - oldd));
  memset(&d, 0, sizeof d);
  d.struct_size = sizeof d;
  CHECK_EQ(zerobus_option_info(0, &d), ZEROBUS_OK);
  CHECK_EQ(d.struct_size, sizeof d);
  /* out of range: refused, struct_size untouched */
  d.struct_size = sizeof bigd;
  CHECK_EQ(zerobus_option_info(count, &d), ZEROBUS_ERR_INVALID_ARGUMENT);
  CHECK_EQ(d.struct_size, sizeof bigd);
  CHECK_EQ(zerobus_option_info(0, NULL), ZEROBUS_ERR_INVALID_ARGUMENT);
}

/* ------------------------------------------------------------ thread hooks */

enum { H_START = 1, H_STOP, H_ACK, H_LOG, H_HEADERS, H_FREE, H_ERROR };
typedef struct hook_entry {
  int kind;
  pthread_t th;
  const char *name;
} hook_entry;
typedef struct hook_log {
  pthread_mutex_t mu;
  hook_entry e[4096];
  int n, overflow;
  int64_t acked_upto;
  const char *table; /* for the headers provider */
  int provider_fails;
} hook_log;

static void hlog(hook_log *h, int kind, const char *name) {
  pthread_mutex_lock(&h->mu);
  if (h->n < (int)(sizeof h->e / sizeof h->e[0]))
    h->e[h->n++] = (hook_entry){kind, pthread_self(), name};
  else
    h->overflow = 1;
  pthread_mutex_unlock(&h->mu);
}
static void h_start(void *ud, const char *name) {
  hlog(ud, H_START, name);
}
static void h_stop(void *ud) {
  hlog(ud, H_STOP, NULL);
}
static void h_ack_range(void *ud, int64_t first, int64_t last) {
  hook_log *h = ud;
  (void)first;
  hlog(h, H_ACK, NULL);
  pthread_mutex_lock(&h->mu);
  h->acked_upto = last;
  pthread_mutex_unlock(&h->mu);
}
static void h_log(void *ud, int32_t level, const char *msg) {
  (void)level;
  (void)msg;
  hlog(ud, H_LOG, NULL);
}
static void h_error(void *ud, int64_t off, const zerobus_error *err) {
  (void)off;
  (void)err;
  hlog(ud, H_ERROR, NULL);
}
static void h_free(void *ud) {
  hlog(ud, H_FREE, NULL);
}
static int32_t h_headers(void *ud, zerobus_headers *out) {
  hook_log *h = ud;
  hlog(h, H_HEADERS, NULL);
  if (h->provider_fails) {
    zerobus_headers_fail(out, "no credentials (test)", 0);
    return ZEROBUS_ERR_HEADERS_PROVIDER;
  }
  zerobus_headers_add(out, "authorization", "Bearer x");
  zerobus_headers_add(out, "x-databricks-zerobus-table-name", h->table);
  return ZEROBUS_OK;
}

static hook_log *hook_log_new(const char *table) {
  hook_log *h = calloc(1, sizeof *h);
  CHECK(h != NULL);
  pthread_mutex_init(&h->mu, NULL);
  h->acked_upto = -1;
  h->table = table;
  return h;
}

static void hook_callbacks(zerobus_callbacks *cb, hook_log *h) {
  zerobus_callbacks_init(cb, sizeof *cb);
  cb->user_data = h;
  cb->on_ack_range = h_ack_range;
  cb->on_log = h_log;
  cb->on_error = h_error;
  cb->user_data_free = h_free;
  cb->on_thread_start = h_start;
  cb->on_thread_stop = h_stop;
}

/* Checks the log after destroy: every thread that got a hook got exactly one
 * START (first on that thread) and one STOP (last on that thread); every
 * callback not on `caller` ran on such a thread; FREE is the very last entry.
 * Returns the number of hooked threads; names[i]/counts[i][kind] describe them
 * in order of their START. */
static int check_hooks(hook_log *h, pthread_t caller, const char **names, int counts[][8]) {
  CHECK_EQ(h->overflow, 0);
  CHECK(h->n >= 1);
  CHECK_EQ(h->e[h->n - 1].kind, H_FREE);
  int frees = 0;
  for (int i = 0; i < h->n; i++) frees += h->e[i].kind == H_FREE;
  CHECK_EQ(frees, 1);
  int nt = 0;
  pthread_t ths[8];
  for (int i = 0; i < h->n; i++) {
    hook_entry *x = &h->e[i];
    if (x->kind != H_START) continue;
    for (int t = 0; t < nt; t++) CHECK(!pthread_equal(ths[t], x->th)); /* one START per thread */
    CHECK(nt < 8);
    ths[nt] = x->th;
    names[nt] = x->name;
    memset(counts[nt], 0, sizeof counts[nt]);
    nt++;
  }
  for (int t = 0; t < nt; t++) {
    int first = -1, last = -1, stops = 0;
    for (int i = 0; i < h->n; i++) {
      hook_entry *x = &h->e[i];
      if (!pthread_equal(x->th, ths[t]) || x->kind == H_FREE) continue;
      if (first < 0) first = i;
      last = i;
      counts[t][x->kind]++;
      stops += x->kind == H_STOP;
    }
    CHECK_EQ(h->e[first].kind, H_START);
    CHECK_EQ(h->e[last].kind, H_STOP);
    CHECK_EQ(stops, 1);
    CHECK_EQ(counts[t][H_START], 1);
  }
  /* every callback off the caller's thread ran on a hooked thread */
  for (int i = 0; i < h->n; i++) {
    hook_entry *x = &h->e[i];
    if (x->kind == H_FREE || pthread_equal(x->th, caller)) continue;
    int hooked = 0;
    for (int t = 0; t < nt; t++) hooked |= pthread_equal(x->th, ths[t]);
    if (!hooked) fprintf(stderr, "entry %d (kind %d) on an unhooked library thread\n", i, x->kind);
    CHECK(hooked);
  }
  /* the caller's thread never gets hooks */
  for (int i = 0; i < h->n; i++)
    if (pthread_equal(h->e[i].th, caller)) CHECK(h->e[i].kind != H_START && h->e[i].kind != H_STOP);
  return nt;
}

static int find_thread(int nt, const char **names, const char *want) {
  int found = -1;
  for (int t = 0; t < nt; t++)
    if (names[t] && strcmp(names[t], want) == 0) {
      CHECK_EQ(found, -1);
      found = t;
    }
  CHECK(found >= 0);
  return found;
}

/* OAuth + dispatch_thread: one hooked thread, the dispatcher, running every
 * ack and log callback between its START and STOP. */
static void test_thread_hooks_dispatcher(void) {
  hook_log *h = hook_log_new(NULL);
  zerobus_callbacks cb;
  hook_callbacks(&cb, h);
  zerobus_stream *s = NULL;
  zerobus_error *e = NULL;
  const char *kv[] = {"dispatch_thread=true", "log_level=debug", NULL};
  CHECK_OK(json_stream(sdk, "main.abirev.hooks_disp", kv, &cb, &s, &e), &e);
  ingest_n(s, 0, 300);
  CHECK_OK(zerobus_stream_close(s, &e), &e);
  zerobus_stream_destroy(s);
  const char *names[8];
  int counts[8][8];
  int nt = check_hooks(h, pthread_self(), names, counts);
  CHECK_EQ(nt, 1);
  CHECK(strcmp(names[0], "zerobus-dispatch") == 0);
  CHECK(counts[0][H_ACK] >= 1);
  CHECK(counts[0][H_LOG] >= 1);
  CHECK_EQ(h->acked_upto, 299);
  free(h);
}

/* Headers provider + dispatch_thread + a recovery: two hooked threads; the
 * engine runs the provider twice (creation, recovery) between its hooks, the
 * dispatcher the acks and logs. */
static void test_thread_hooks_headers_and_dispatcher(void) {
  const char *t = "main.abirev.hooks_both";
  char f[256];
  snprintf(f, sizeof f, "{\"tables\":{\"%s\":[{\"drop_at_request\":3}]}}", t);
  CHECK_EQ(zl_set_faults(&noauth, f), 0);
  zerobus_sdk *sdk2 = sdk_for(&noauth, NULL);
  hook_log *h = hook_log_new(t);
  zerobus_callbacks cb;
  hook_callbacks(&cb, h);
  cb.headers = h_headers;
  zerobus_options *o =
      opts_of((const char *[]){"record_type=json", "recovery_backoff_ms=50", "dispatch_thread=1",
                               "log_level=debug", "max_request_bytes=12", NULL});
  zerobus_stream *s = NULL;
  zerobus_error *e = NULL;
  CHECK_OK(zerobus_stream_create(sdk2, t, NULL, 0, NULL, NULL, o, &cb, &s, &e), &e);
  ingest_n(s, 0, 20);
  CHECK_OK(zerobus_stream_close(s, &e), &e);
  CHECK(STAT(s, reconnects) >= 1);
  zerobus_stream_destroy(s);
  zerobus_options_destroy(o);
  zerobus_sdk_destroy(sdk2);
  const char *names[8];
  int counts[8][8];
  int nt = check_hooks(h, pthread_self(), names, counts);
  CHECK_EQ(nt, 2);
  int eng = find_thread(nt, names, "zerobus-engine");
  int disp = find_thread(nt, names, "zerobus-dispatch");
  CHECK(counts[eng][H_HEADERS] >= 2);
  CHECK_EQ(counts[eng][H_ACK] + counts[eng][H_LOG] + counts[eng][H_ERROR], 0);
  CHECK_EQ(counts[disp][H_HEADERS], 0);
  CHECK(counts[disp][H_ACK] >= 1 && counts[disp][H_LOG] >= 1);
  CHECK_EQ(h->acked_upto, 19);
  free(h);
}

/* Headers provider, callbacks by poll on our thread: only the engine thread is
 * hooked; a creation that fails still pairs START/STOP before user_data_free;
 * OAuth without a dispatcher: no hooks at all. */
static void test_thread_hooks_headers_poll(void) {
  const char *t = "main.abirev.hooks_poll";
  zerobus_sdk *sdk2 = sdk_for(&noauth, NULL);
  hook_log *h = hook_log_new(t);
  zerobus_callbacks cb;
  hook_callbacks(&cb, h);
  cb.headers = h_headers;
  zerobus_options *o =
      opts_of((const char *[]){"record_type=json", "recovery_backoff_ms=50", NULL});
  zerobus_stream *s = NULL;
  zerobus_error *e = NULL;
  CHECK_OK(zerobus_stream_create(sdk2, t, NULL, 0, NULL, NULL, o, &cb, &s, &e), &e);
  ingest_n(s, 0, 50);
  CHECK_OK(zerobus_stream_flush(s, &e), &e);
  while (zerobus_stream_poll(s, 0) > 0) {
  }
  CHECK_OK(zerobus_stream_close(s, &e), &e);
  zerobus_stream_destroy(s);
  const char *names[8];
  int counts[8][8];
  int nt = check_hooks(h, pthread_self(), names, counts);
  CHECK_EQ(nt, 1);
  CHECK(strcmp(names[0], "zerobus-engine") == 0);
  CHECK_EQ(counts[0][H_HEADERS], 1);
  CHECK_EQ(counts[0][H_ACK], 0); /* acks ran on our thread */
  CHECK_EQ(h->acked_upto, 49);
  free(h);

  /* creation fails (provider refuses, not retryable) */
  h = hook_log_new(t);
  hook_callbacks(&cb, h);
  cb.headers = h_headers;
  h->provider_fails = 1;
  CHECK_ST(zerobus_stream_create(sdk2, t, NULL, 0, NULL, NULL, o, &cb, &s, &e),
           ZEROBUS_ERR_HEADERS_PROVIDER, &e);
  zerobus_error_destroy(e);
  e = NULL;
  nt = check_hooks(h, pthread_self(), names, counts);
  CHECK_EQ(nt, 1);
  CHECK(strcmp(names[0], "zerobus-engine") == 0);
  CHECK_EQ(counts[0][H_HEADERS], 1);
  CHECK_EQ(h->n, 4); /* START, HEADERS, STOP, FREE */
  free(h);
  zerobus_options_destroy(o);
  zerobus_sdk_destroy(sdk2);

  /* OAuth, no dispatcher: no library thread runs this table's callbacks */
  h = hook_log_new(NULL);
  hook_callbacks(&cb, h);
  CHECK_OK(json_stream(sdk, "main.abirev.hooks_none", NULL, &cb, &s, &e), &e);
  ingest_n(s, 0, 5);
  CHECK_OK(zerobus_stream_close(s, &e), &e);
  while (zerobus_stream_poll(s, 0) > 0) {
  }
  zerobus_stream_destroy(s);
  nt = check_hooks(h, pthread_self(), names, counts);
  CHECK_EQ(nt, 0);
  CHECK_EQ(h->acked_upto, 4);
  free(h);
}

/* ------------------------------------------------------------------- wake */

typedef struct poller {
  zerobus_stream *s;
  int use_events; /* poll_events, else poll */
  volatile int started;
  long long returned_at;
  long long n;
  int status;
} poller;

static void *poll_thread(void *arg) {
  poller *p = arg;
  __atomic_store_n(&p->started, 1, __ATOMIC_SEQ_CST);
  if (p->use_events) {
    zerobus_event ev[8];
    size_t n = 99;
    zerobus_error *e = NULL;
    p->status = zerobus_stream_poll_events(p->s, ev, 8, sizeof ev[0], -1, &n, &e);
    zerobus_error_destroy(e);
    p->n = (long long)n;
  } else {
    p->n = zerobus_stream_poll(p->s, -1);
    p->status = ZEROBUS_OK;
  }
  __atomic_store_n(&p->returned_at, now_ms(), __ATOMIC_SEQ_CST);
  return NULL;
}

/* wake() makes a poll(-1)/poll_events(-1) blocked in another thread return
 * within 100 ms with 0 events; a wake with no poll waiting makes the next poll
 * return at once (once); NULL is INVALID_ARGUMENT. */
static void test_wake(void) {
  zerobus_stream *s = NULL;
  zerobus_error *e = NULL;
  CHECK_OK(json_stream(sdk, "main.abirev.wake", NULL, NULL, &s, &e), &e);
  ingest_n(s, 0, 3);
  CHECK_OK(zerobus_stream_flush(s, &e), &e);
  while (zerobus_stream_poll(s, 0) > 0) {
  } /* nothing pending now */
  for (int mode = 0; mode < 2; mode++) {
    poller p;
    memset(&p, 0, sizeof p);
    p.s = s;
    p.use_events = mode == 0;
    p.returned_at = 0;
    pthread_t th;
    CHECK(pthread_create(&th, NULL, poll_thread, &p) == 0);
    while (!__atomic_load_n(&p.started, __ATOMIC_SEQ_CST)) sleep_ms(1);
    sleep_ms(200); /* the poll is waiting (forever) */
    CHECK_EQ(__atomic_load_n(&p.returned_at, __ATOMIC_SEQ_CST), 0);
    long long t0 = now_ms();
    CHECK_EQ(zerobus_stream_wake(s), ZEROBUS_OK);
    long long deadline = t0 + 100 * slack();
    while (__atomic_load_n(&p.returned_at, __ATOMIC_SEQ_CST) == 0 && now_ms() < deadline + 5000)
      sleep_ms(1);
    long long back = __atomic_load_n(&p.returned_at, __ATOMIC_SEQ_CST);
    CHECK(back != 0);
    fprintf(stderr, "   %s(-1) returned %lld ms after wake\n", mode == 0 ? "poll_events" : "poll",
            back - t0);
    CHECK(back - t0 <= 100 * slack());
    pthread_join(th, NULL);
    CHECK_EQ(p.status, ZEROBUS_OK);
    CHECK_EQ(p.n, 0);
  }
  /* a wake before the poll is not lost: the next poll returns at once, once */
  CHECK_EQ(zerobus_stream_wake(s), ZEROBUS_OK);
  CHECK_EQ(zerobus_stream_wake(s), ZEROBUS_OK); /* not counted: still one early return */
  zerobus_event ev[2];
  size_t n = 9;
  long long t0 = now_ms();
  CHECK_OK(zerobus_stream_poll_events(s, ev, 2, sizeof ev[0], 5000, &n, &e), &e);
  CHECK_EQ(n, 0);
  CHECK(now_ms() - t0 < 1000 * slack());
  t0 = now_ms();
  CHECK_OK(zerobus_stream_poll_events(s, ev, 2, sizeof ev[0], 150, &n, &e), &e);
  CHECK_EQ(n, 0);
  CHECK(now_ms() - t0 >= 140); /* waited its full timeout: the wake was consumed */
  CHECK_EQ(zerobus_stream_wake(NULL), ZEROBUS_ERR_INVALID_ARGUMENT);
  CHECK_OK(zerobus_stream_close(s, &e), &e);
  CHECK_EQ(zerobus_stream_wake(s), ZEROBUS_OK); /* closed but not destroyed: fine */
  zerobus_stream_destroy(s);
}

int main(void) {
  start_server(&srv, NULL);
  start_server(&noauth, (const char *[]){"--no-auth", NULL});
  sdk = sdk_for(&srv, NULL);
  RUN(test_poll_events_event_size);
  RUN(test_struct_size_writeback);
  RUN(test_thread_hooks_dispatcher);
  RUN(test_thread_hooks_headers_and_dispatcher);
  RUN(test_thread_hooks_headers_poll);
  RUN(test_wake);
  zerobus_sdk_destroy(sdk);
  CHECK_EQ(zl_stop(&srv), 0);
  CHECK_EQ(zl_stop(&noauth), 0);
  fprintf(stderr, "all passed\n");
  return 0;
}
