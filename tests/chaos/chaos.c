/*
 * zb_chaos - the reliability harness (issue #4).
 *
 * Several producer threads per "lane" (one lane = one table = one logical
 * stream of records) ingest records through libzerobus into zerobus-local,
 * while
 *   - zerobus-local injects random faults from --chaos-seed,
 *   - a script thread posts explicit fault scripts (drops, retryable and
 *     non-retryable statuses, close signals, stalled and malformed acks, hangs
 *     before headers) through the control endpoint,
 *   - a killer thread SIGKILLs zerobus-local and restarts it on the same ports
 *     and database.
 * Records carry a unique id (lane, producer, seq) in their payload. When a
 * library stream fails for good, the harness checks its on_error reports and
 * zerobus_stream_get_unacked() against its own books, then re-ingests the
 * returned records into a new stream (alternating zerobus_stream_recreate and a
 * manual create + re-ingest).
 *
 * At the end it checks the invariant, per lane:
 *   every record the library accepted is stored in SQLite (at least once, in the
 *   order of first acceptance) or was reported through on_error AND returned by
 *   get_unacked; nothing is stored that was never accepted; every acked offset is
 *   stored; ack/error events are each delivered once, in increasing order, and
 *   cover every offset of a finished stream; stats agree with the books.
 * It prints one report and exits 0 when every check holds.
 *
 * usage: zb_chaos [--seed N] [--duration SEC] [--lanes N] [--producers N]
 *                 [--rate REC_PER_SEC_PER_PRODUCER] [--chaos-rate P] [--kills N]
 *                 [--no-scripts] [--chaos-fatal] [--oauth-lanes N] [--md FILE]
 *                 [--status-file FILE] [--keep] [--verbose]
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "chaos_server.h"
#include "zerobus_abi.h"

#define MAX_LANES 8
#define MAX_PRODUCERS 4
#define MAX_BATCH 40
#define CHUNK_BITS 16

/* ------------------------------------------------------------------ config */
static struct {
  unsigned long long seed;
  int duration_s;
  int lanes;
  int producers;
  int rate; /* records per second per producer */
  double chaos_rate;
  int kills;
  int scripts;
  int chaos_fatal;
  int oauth_lanes;
  const char *md_file;
  const char *status_file;
  int keep;
  int verbose;
  int selftest; /* damage the stored table before verifying: the checks must catch it */
  int tls;      /* TLS on both sides (test CA made with openssl) */
} cfg = {1, 30, 4, 2, 2000, 0.02, 2, 1, 0, 1, NULL, NULL, 0, 0, 0, 0};
static char g_tls_dir[256];

static chaos_server g_srv;
static pthread_mutex_t g_srv_mu = PTHREAD_MUTEX_INITIALIZER; /* guards g_srv restarts */
static zerobus_sdk *g_sdk;
static atomic_int g_stop_producers, g_stop_helpers, g_stop_pollers, g_done;
static atomic_long g_kills, g_nocopy_outstanding, g_nocopy_released;
static atomic_llong g_accepted_total, g_book_bytes; /* for --status-file (soak) */
static long g_scripts_posted, g_script_entries[16];
static long long g_t0_ms;

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}
static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logf_(const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  fprintf(stderr, "[chaos %6.2fs] %s\n", (now_ms() - g_t0_ms) / 1000.0, buf);
}
#define VLOG(...)                        \
  do {                                   \
    if (cfg.verbose) logf_(__VA_ARGS__); \
  } while (0)

/* xorshift64* */
static uint64_t rnd_next(uint64_t *s) {
  uint64_t x = *s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *s = x;
  return x * 0x2545F4914F6CDD1DULL;
}
static uint64_t rnd_seed(uint64_t a, uint64_t b) {
  uint64_t s = (a + 1) * 0x9E3779B97F4A7C15ULL ^ (b + 7) * 0xBF58476D1CE4E5B9ULL;
  return s ? s : 1;
}

/* ------------------------------------------------------------- payloads */
/* Record id (lane l, producer p, seq q). The payload is a function of the id, so
 * the harness can recompute the exact bytes of any record. */
static size_t pad_len(int l, int p, uint32_t q) {
  return (size_t)((q * 7u + (unsigned)p * 3u + (unsigned)l) % 24u);
}

static size_t put_varint(uint8_t *b, uint64_t v) {
  size_t n = 0;
  while (v >= 0x80) {
    b[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  b[n++] = (uint8_t)v;
  return n;
}

/* buf must hold 128 bytes. */
static size_t make_payload(int json, int l, int p, uint32_t q, uint8_t *buf) {
  char pad[32];
  size_t pl = pad_len(l, p, q);
  memset(pad, 'a' + (int)(q % 26), pl);
  pad[pl] = 0;
  if (json)
    return (size_t)snprintf((char *)buf, 128, "{\"l\":%d,\"p\":%d,\"q\":%u,\"pad\":\"%s\"}", l, p,
                            q, pad);
  size_t n = 0;
  buf[n++] = 0x08;
  n += put_varint(buf + n, (uint64_t)l);
  buf[n++] = 0x10;
  n += put_varint(buf + n, (uint64_t)p);
  buf[n++] = 0x18;
  n += put_varint(buf + n, (uint64_t)q);
  buf[n++] = 0x22;
  buf[n++] = (uint8_t)pl;
  memcpy(buf + n, pad, pl);
  return n + pl;
}

/* DescriptorProto of message ChaosRecord { optional int64 l=1, p=2, q=3; optional string pad=4; }
 */
static uint8_t g_desc[256];
static size_t g_desc_len;
static void build_descriptor(void) {
  static const struct {
    const char *name;
    int number, type;
  } fields[] = {{"l", 1, 3}, {"p", 2, 3}, {"q", 3, 3}, {"pad", 4, 9}};
  size_t n = 0;
  const char *mname = "ChaosRecord";
  g_desc[n++] = 0x0a;
  g_desc[n++] = (uint8_t)strlen(mname);
  memcpy(g_desc + n, mname, strlen(mname));
  n += strlen(mname);
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
    uint8_t f[64];
    size_t m = 0, nl = strlen(fields[i].name);
    f[m++] = 0x0a;
    f[m++] = (uint8_t)nl;
    memcpy(f + m, fields[i].name, nl);
    m += nl;
    f[m++] = 0x18; /* number */
    f[m++] = (uint8_t)fields[i].number;
    f[m++] = 0x20; /* label optional */
    f[m++] = 1;
    f[m++] = 0x28; /* type */
    f[m++] = (uint8_t)fields[i].type;
    g_desc[n++] = 0x12;
    g_desc[n++] = (uint8_t)m;
    memcpy(g_desc + n, f, m);
    n += m;
  }
  g_desc_len = n;
}

static int get_varint(const uint8_t **pp, const uint8_t *end, uint64_t *out) {
  uint64_t v = 0;
  for (int sh = 0; sh < 64 && *pp < end; sh += 7) {
    uint8_t b = *(*pp)++;
    v |= (uint64_t)(b & 0x7f) << sh;
    if (!(b & 0x80)) {
      *out = v;
      return 0;
    }
  }
  return -1;
}

static long long json_int(const cJSON *o, const char *k, int *ok) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  if (cJSON_IsNumber(v)) return (long long)v->valuedouble;
  if (cJSON_IsString(v)) return strtoll(v->valuestring, NULL, 10);
  *ok = 0;
  return -1;
}

/* Parses a stored payload (JSON text, or proto bytes) into an id. 0 on success. */
static int parse_payload(const void *data, size_t len, int *l, int *p, uint32_t *q) {
  const uint8_t *b = data;
  if (len > 0 && b[0] == '{') {
    cJSON *o = cJSON_ParseWithLength((const char *)data, len);
    if (!o) return -1;
    int ok = 1;
    long long lv = json_int(o, "l", &ok), pv = json_int(o, "p", &ok), qv = json_int(o, "q", &ok);
    cJSON_Delete(o);
    if (!ok || lv < 0 || pv < 0 || qv < 0 || qv > UINT32_MAX) return -1;
    *l = (int)lv;
    *p = (int)pv;
    *q = (uint32_t)qv;
    return 0;
  }
  const uint8_t *e = b + len;
  uint64_t v[3] = {0, 0, 0};
  int seen = 0;
  while (b < e) {
    uint64_t key;
    if (get_varint(&b, e, &key)) return -1;
    int fn = (int)(key >> 3), wt = (int)(key & 7);
    if (wt == 0) {
      uint64_t x;
      if (get_varint(&b, e, &x)) return -1;
      if (fn >= 1 && fn <= 3) {
        v[fn - 1] = x;
        seen |= 1 << fn;
      }
    } else if (wt == 2) {
      uint64_t n;
      if (get_varint(&b, e, &n) || n > (uint64_t)(e - b)) return -1;
      b += n;
    } else {
      return -1;
    }
  }
  if (seen != 0xe || v[2] > UINT32_MAX) return -1;
  *l = (int)v[0];
  *p = (int)v[1];
  *q = (uint32_t)v[2];
  return 0;
}

/* ------------------------------------------------------------------ books */
/* One ingest call on one library stream: records (p, q .. q+n-1). */
typedef struct offent {
  uint16_t p;
  uint16_t n;
  uint32_t q;
} offent;

typedef struct lane lane;

/* One library stream ("generation") of a lane. */
typedef struct gen {
  lane *lane;
  int idx;
  zerobus_stream *s;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  offent *offs; /* indexed by logical offset */
  int64_t noffs, cap;
  /* events, in delivery order */
  int64_t next_event; /* next offset an ack/error event must start at */
  int64_t acked_upto, err_from;
  int saw_error;
  long events_ack, events_err;
  /* end of life */
  int finished, close_rc, via_recreate;
  char close_msg[200];
  zerobus_stream_stats st;
} gen;

typedef struct anomaly_log {
  long count;
  char first[8][300];
} anomaly_log;

struct lane {
  int idx, json, mode, oauth;
  char table[64];
  pthread_rwlock_t rw;
  gen *cur; /* NULL when the lane gave up */
  gen **gens;
  int ngens, capgens;
  zerobus_options *opts;
  uint32_t next_q[MAX_PRODUCERS]; /* ids < next_q were accepted at least once */
  long queue_full, failovers, recreates, recreate_failures, returned_records, create_failures;
  offent *unrecovered; /* batches returned that could not be re-ingested */
  size_t nunrecovered, capunrecovered;
  anomaly_log anomalies;
  pthread_mutex_t amu;
  pthread_t poller, producers[MAX_PRODUCERS];
};

static lane g_lanes[MAX_LANES];

static void anomaly(lane *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void anomaly(lane *L, const char *fmt, ...) {
  char buf[300];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  pthread_mutex_lock(&L->amu);
  if (L->anomalies.count < 8) snprintf(L->anomalies.first[L->anomalies.count], 300, "%s", buf);
  L->anomalies.count++;
  pthread_mutex_unlock(&L->amu);
  logf_("lane %d ANOMALY: %s", L->idx, buf);
}

static gen *gen_new(lane *L) {
  gen *g = calloc(1, sizeof *g);
  if (!g) abort();
  g->lane = L;
  pthread_mutex_init(&g->mu, NULL);
  pthread_cond_init(&g->cv, NULL);
  g->acked_upto = -1;
  g->err_from = -1;
  g->close_rc = -1;
  return g;
}

static void lane_add_gen(lane *L, gen *g) {
  if (L->ngens == L->capgens) {
    L->capgens = L->capgens ? L->capgens * 2 : 8;
    L->gens = realloc(L->gens, (size_t)L->capgens * sizeof *L->gens);
    if (!L->gens) abort();
  }
  g->idx = L->ngens;
  L->gens[L->ngens++] = g;
}

static void gen_record(gen *g, int64_t off, offent e) {
  pthread_mutex_lock(&g->mu);
  if (off >= g->cap) {
    int64_t nc = g->cap ? g->cap : 1024;
    while (nc <= off) nc *= 2;
    g->offs = realloc(g->offs, (size_t)nc * sizeof *g->offs);
    if (!g->offs) abort();
    memset(g->offs + g->cap, 0, (size_t)(nc - g->cap) * sizeof *g->offs);
    atomic_fetch_add(&g_book_bytes, (long long)((size_t)(nc - g->cap) * sizeof *g->offs));
    g->cap = nc;
  }
  if (g->offs[off].n != 0)
    anomaly(g->lane, "gen %d: logical offset %" PRId64 " handed out twice", g->idx, off);
  g->offs[off] = e;
  if (off + 1 > g->noffs) g->noffs = off + 1;
  pthread_mutex_unlock(&g->mu);
}

static void gen_ack(gen *g, int64_t first, int64_t last) {
  pthread_mutex_lock(&g->mu);
  if (g->saw_error)
    anomaly(g->lane, "gen %d: ack %" PRId64 "..%" PRId64 " after an error event", g->idx, first,
            last);
  if (first != g->next_event || last < first)
    anomaly(g->lane, "gen %d: ack %" PRId64 "..%" PRId64 " but next expected offset is %" PRId64,
            g->idx, first, last, g->next_event);
  if (last + 1 > g->next_event) g->next_event = last + 1;
  if (last > g->acked_upto) g->acked_upto = last;
  g->events_ack++;
  pthread_cond_broadcast(&g->cv);
  pthread_mutex_unlock(&g->mu);
}

static void gen_err(gen *g, int64_t first, int64_t last, int32_t code) {
  pthread_mutex_lock(&g->mu);
  if (first != g->next_event || last < first)
    anomaly(g->lane, "gen %d: error %" PRId64 "..%" PRId64 " but next expected offset is %" PRId64,
            g->idx, first, last, g->next_event);
  if (code == ZEROBUS_OK) anomaly(g->lane, "gen %d: error event with code OK", g->idx);
  if (!g->saw_error) g->err_from = first;
  g->saw_error = 1;
  if (last + 1 > g->next_event) g->next_event = last + 1;
  g->events_err++;
  pthread_cond_broadcast(&g->cv);
  pthread_mutex_unlock(&g->mu);
}

/* ------------------------------------------------------------- callbacks */
static void cb_on_ack(void *ud, int64_t off) {
  gen_ack(ud, off, off);
}
static void cb_on_ack_range(void *ud, int64_t a, int64_t b) {
  gen_ack(ud, a, b);
}
static void cb_on_error(void *ud, int64_t off, const zerobus_error *e) {
  gen_err(ud, off, off, zerobus_error_code(e));
}
static int32_t cb_headers(void *ud, zerobus_headers *h) {
  gen *g = ud;
  if (zerobus_headers_add(h, "authorization", "Bearer chaos-token") != ZEROBUS_OK) return 1;
  if (zerobus_headers_add(h, "x-databricks-zerobus-table-name", g->lane->table) != ZEROBUS_OK)
    return 1;
  return ZEROBUS_OK;
}

static void nocopy_release(void *ctx, const void *data) {
  (void)ctx;
  free((void *)data);
  atomic_fetch_sub(&g_nocopy_outstanding, 1);
  atomic_fetch_add(&g_nocopy_released, 1);
}

static zerobus_callbacks gen_callbacks(lane *L, gen *g) {
  zerobus_callbacks cb;
  zerobus_callbacks_init(&cb, sizeof cb);
  cb.user_data = g;
  if (!L->oauth) cb.headers = cb_headers;
  if (L->mode == 1) {
    cb.on_ack = cb_on_ack;
    cb.on_error = cb_on_error;
  } else if (L->mode == 2) {
    cb.on_ack_range = cb_on_ack_range;
    cb.on_error = cb_on_error;
  }
  return cb;
}

/* Opens g's stream. */
static zerobus_status gen_open(lane *L, gen *g, zerobus_error **err) {
  zerobus_callbacks cb = gen_callbacks(L, g);
  return zerobus_stream_create(g_sdk, L->table, L->json ? NULL : g_desc, L->json ? 0 : g_desc_len,
                               L->oauth ? "test-client" : NULL, L->oauth ? "test-secret" : NULL,
                               L->opts, &cb, &g->s, err);
}

/* Delivers pending events of g on this thread (modes 0 and 1). */
static int gen_poll(lane *L, gen *g, int timeout_ms) {
  if (!g->s) return 0;
  if (L->mode == 0) {
    zerobus_event ev[256];
    size_t n = 0;
    zerobus_error *e = NULL;
    zerobus_status rc = zerobus_stream_poll_events(g->s, ev, 256, sizeof ev[0], timeout_ms, &n, &e);
    if (rc != ZEROBUS_OK) {
      anomaly(L, "poll_events: %s %s", zerobus_status_name(rc), zerobus_error_message(e));
      zerobus_error_destroy(e);
      return 0;
    }
    for (size_t i = 0; i < n; i++) {
      if (ev[i].kind == ZEROBUS_EVENT_ACK)
        gen_ack(g, ev[i].first, ev[i].last);
      else if (ev[i].kind == ZEROBUS_EVENT_ERROR) {
        if (!ev[i].error || zerobus_error_code(ev[i].error) != ev[i].status)
          anomaly(L, "error event without a matching error object");
        gen_err(g, ev[i].first, ev[i].last, ev[i].status);
      }
    }
    return (int)n;
  }
  if (L->mode == 1) {
    int32_t r = zerobus_stream_poll(g->s, timeout_ms);
    if (r < 0) anomaly(L, "poll: %s", zerobus_status_name(r));
    return r > 0 ? r : 0;
  }
  if (timeout_ms > 0) sleep_ms(timeout_ms);
  return 0;
}

static void *poller_main(void *arg) {
  lane *L = arg;
  while (!atomic_load(&g_stop_pollers)) {
    pthread_rwlock_rdlock(&L->rw);
    gen *g = L->cur;
    if (g && g->s && L->mode != 2) gen_poll(L, g, 50);
    pthread_rwlock_unlock(&L->rw);
    if (!g || L->mode == 2) sleep_ms(50);
  }
  return NULL;
}

/* ------------------------------------------------------------- failover */
static int ids_equal_payload(lane *L, int p, uint32_t q, const void *data, size_t len) {
  uint8_t buf[128];
  size_t n = make_payload(L->json, L->idx, p, q, buf);
  return n == len && memcmp(buf, data, n) == 0;
}

/* Waits until every offset of g has had its ack or error event. Called with the
 * lane's write lock held (the poller is out). */
static int gen_drain_events(lane *L, gen *g, int timeout_ms) {
  long long deadline = now_ms() + timeout_ms;
  for (;;) {
    pthread_mutex_lock(&g->mu);
    int done = g->next_event >= g->noffs;
    pthread_mutex_unlock(&g->mu);
    if (done) {
      gen_poll(L, g, 0); /* anything extra is an anomaly caught by gen_ack/gen_err */
      return 0;
    }
    if (now_ms() > deadline) return -1;
    if (L->mode == 2) {
      pthread_mutex_lock(&g->mu);
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      ts.tv_nsec += 50 * 1000000L;
      if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
      }
      pthread_cond_timedwait(&g->cv, &g->mu, &ts);
      pthread_mutex_unlock(&g->mu);
    } else {
      gen_poll(L, g, 50);
    }
  }
}

/* Closes g's stream (if needed), checks its events, unacked records and stats
 * against the books, and appends its unacked batches to *pending. Does not
 * destroy the stream (recreate needs it). */
static void gen_finish(lane *L, gen *g, offent **pending, size_t *np, size_t *cap) {
  zerobus_error *e = NULL;
  g->close_rc = zerobus_stream_close(g->s, &e);
  snprintf(g->close_msg, sizeof g->close_msg, "%s", e ? zerobus_error_message(e) : "");
  zerobus_error_destroy(e);
  g->finished = 1;
  /* after close: the state is final, ingest is refused for good (nothing queued),
   * and a stream that failed keeps its error readable */
  int32_t state = zerobus_stream_state(g->s);
  if (state != ZEROBUS_STATE_CLOSED && state != ZEROBUS_STATE_FAILED)
    anomaly(L, "gen %d: state %d after close", g->idx, state);
  if (g->close_rc == ZEROBUS_OK && state != ZEROBUS_STATE_CLOSED)
    anomaly(L, "gen %d: close OK but state %d", g->idx, state);
  {
    uint8_t buf[128];
    size_t n = make_payload(L->json, L->idx, 0, UINT32_MAX, buf);
    int64_t off = -7;
    zerobus_error *ie = NULL;
    zerobus_status irc = zerobus_stream_ingest(g->s, buf, n, ZEROBUS_INGEST_NONBLOCK, &off, &ie);
    if (irc != ZEROBUS_ERR_STREAM_CLOSED || zerobus_error_retryable(ie))
      anomaly(L, "gen %d: ingest after close gave %s (retryable %d)", g->idx,
              zerobus_status_name(irc), zerobus_error_retryable(ie));
    zerobus_error_destroy(ie);
  }
  if (g->close_rc != ZEROBUS_OK) {
    zerobus_error *le = NULL;
    if (zerobus_stream_last_error(g->s, &le) != ZEROBUS_OK || !le)
      anomaly(L, "gen %d: failed (%s) but last_error is empty", g->idx,
              zerobus_status_name(g->close_rc));
    zerobus_error_destroy(le);
  }
  if (gen_drain_events(L, g, 15000) != 0)
    anomaly(L, "gen %d: events stop at offset %" PRId64 " of %" PRId64 " (close rc %s)", g->idx,
            g->next_event, g->noffs, zerobus_status_name(g->close_rc));
  if (g->close_rc == ZEROBUS_OK && g->saw_error)
    anomaly(L, "gen %d: close OK but error events were delivered", g->idx);

  zerobus_records *r = NULL;
  e = NULL;
  zerobus_status rc = zerobus_stream_get_unacked(g->s, &r, &e);
  if (rc != ZEROBUS_OK) {
    anomaly(L, "gen %d: get_unacked: %s %s", g->idx, zerobus_status_name(rc),
            zerobus_error_message(e));
    zerobus_error_destroy(e);
    /* fall back to our books: everything not acked is pending */
    for (int64_t o = g->acked_upto + 1; o < g->noffs; o++) {
      if (*np == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        *pending = realloc(*pending, *cap * sizeof **pending);
      }
      (*pending)[(*np)++] = g->offs[o];
    }
  } else {
    size_t nb = zerobus_records_batch_count(r), nrec = zerobus_records_count(r);
    int64_t expect_nb = g->noffs - (g->acked_upto + 1);
    if ((int64_t)nb != expect_nb)
      anomaly(L,
              "gen %d: get_unacked has %zu batches, books say %" PRId64 " (acked up to %" PRId64
              " of %" PRId64 ")",
              g->idx, nb, expect_nb, g->acked_upto, g->noffs);
    size_t total = 0;
    for (size_t b = 0; b < nb; b++) {
      size_t first = 0, count = 0;
      int64_t off = -1;
      if (zerobus_records_batch(r, b, &first, &count, &off) != ZEROBUS_OK) {
        anomaly(L, "gen %d: records_batch(%zu) failed", g->idx, b);
        continue;
      }
      total += count;
      if (off < 0 || off >= g->noffs || g->offs[off].n == 0) {
        anomaly(L, "gen %d: unacked batch with unknown offset %" PRId64, g->idx, off);
        continue;
      }
      if (off <= g->acked_upto)
        anomaly(L, "gen %d: unacked batch offset %" PRId64 " was acked (up to %" PRId64 ")", g->idx,
                off, g->acked_upto);
      offent oe = g->offs[off];
      if (count != oe.n)
        anomaly(L, "gen %d: unacked batch %" PRId64 " has %zu records, books %u", g->idx, off,
                count, oe.n);
      for (size_t i = 0; i < count && i < oe.n; i++) {
        const void *d;
        size_t len;
        if (zerobus_records_get(r, first + i, &d, &len) != ZEROBUS_OK ||
            !ids_equal_payload(L, oe.p, oe.q + (uint32_t)i, d, len))
          anomaly(L, "gen %d: unacked record %zu of batch %" PRId64 " has wrong bytes", g->idx, i,
                  off);
      }
      if (*np == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        *pending = realloc(*pending, *cap * sizeof **pending);
      }
      (*pending)[(*np)++] = oe;
      L->returned_records += oe.n;
    }
    if (total != nrec)
      anomaly(L, "gen %d: unacked flat count %zu != sum of batches %zu", g->idx, nrec, total);
    if (nb > 0 && (!g->saw_error || g->err_from != g->acked_upto + 1))
      anomaly(L,
              "gen %d: %zu batches returned but on_error covered from %" PRId64
              " (acked up to %" PRId64 ")",
              g->idx, nb, g->saw_error ? g->err_from : -1, g->acked_upto);
    zerobus_records_destroy(r);
  }
  memset(&g->st, 0, sizeof g->st);
  g->st.struct_size = sizeof g->st;
  zerobus_stream_get_stats(g->s, &g->st);
  /* stats must agree with the books */
  int64_t queued = 0, acked = 0, failed = 0;
  for (int64_t o = 0; o < g->noffs; o++) {
    queued += g->offs[o].n;
    if (o <= g->acked_upto)
      acked += g->offs[o].n;
    else if (g->saw_error && o >= g->err_from && o < g->next_event)
      failed += g->offs[o].n;
  }
  if (g->st.records_queued != queued || g->st.records_acked != acked ||
      g->st.records_failed != failed || g->st.last_offset != g->noffs - 1 ||
      g->st.acked_offset != g->acked_upto ||
      /* a failed stream may report its returned records as still in flight */
      (g->st.inflight_records != 0 && g->st.inflight_records != queued - acked))
    anomaly(L,
            "gen %d: stats queued=%" PRId64 "/%" PRId64 " acked=%" PRId64 "/%" PRId64
            " failed=%" PRId64 "/%" PRId64 " last_offset=%" PRId64 "/%" PRId64
            " acked_offset=%" PRId64 "/%" PRId64 " inflight=%" PRId64 " (library/books)",
            g->idx, g->st.records_queued, queued, g->st.records_acked, acked, g->st.records_failed,
            failed, g->st.last_offset, g->noffs - 1, g->st.acked_offset, g->acked_upto,
            g->st.inflight_records);
}

static zerobus_status ingest_ids(lane *L, zerobus_stream *s, offent e, uint32_t flags,
                                 int use_nocopy, int64_t *off, zerobus_error **err) {
  uint8_t bufs[MAX_BATCH][128];
  const void *ptrs[MAX_BATCH];
  size_t lens[MAX_BATCH];
  for (int i = 0; i < e.n; i++) {
    lens[i] = make_payload(L->json, L->idx, e.p, e.q + (uint32_t)i, bufs[i]);
    ptrs[i] = bufs[i];
  }
  if (e.n == 1 && use_nocopy) {
    void *copy = malloc(lens[0]);
    if (!copy) abort();
    memcpy(copy, bufs[0], lens[0]);
    atomic_fetch_add(&g_nocopy_outstanding, 1);
    return zerobus_stream_ingest_nocopy(s, copy, lens[0], flags, nocopy_release, NULL, off, err);
  }
  if (e.n == 1 && (e.q & 7) != 3)
    return zerobus_stream_ingest(s, ptrs[0], lens[0], flags, off, err);
  return zerobus_stream_ingest_batch(s, ptrs, lens, e.n, flags, off, err);
}

static void add_unrecovered(lane *L, const offent *b, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (L->nunrecovered == L->capunrecovered) {
      L->capunrecovered = L->capunrecovered ? L->capunrecovered * 2 : 64;
      L->unrecovered = realloc(L->unrecovered, L->capunrecovered * sizeof *L->unrecovered);
    }
    L->unrecovered[L->nunrecovered++] = b[i];
  }
}

/* Moves `pending` (returned batches, in order) into a new library stream.
 * Called with the write lock held; the old stream `old` (may be NULL) is
 * destroyed here. On giving up the lane is dead (cur = NULL). */
static void reingest_locked(lane *L, gen *old, offent *pending, size_t np) {
  long long deadline = now_ms() + 120000;
  int try_recreate = old != NULL && (L->failovers % 2) == 1 && np > 0;
  while (1) {
    if (now_ms() > deadline || atomic_load(&g_done)) {
      anomaly(L, "gave up re-ingesting %zu returned batches", np);
      add_unrecovered(L, pending, np);
      if (old) zerobus_stream_destroy(old->s), old->s = NULL;
      L->cur = NULL;
      free(pending);
      return;
    }
    gen *ng = gen_new(L);
    zerobus_error *e = NULL;
    if (try_recreate) {
      try_recreate = 0;
      zerobus_callbacks cb = gen_callbacks(L, ng);
      zerobus_status rc = zerobus_stream_recreate(old->s, &cb, &ng->s, &e);
      if (rc == ZEROBUS_OK) {
        /* recreate re-ingested the unacked batches as offsets 0..np-1 */
        for (size_t i = 0; i < np; i++) gen_record(ng, (int64_t)i, pending[i]);
        zerobus_stream_stats st;
        memset(&st, 0, sizeof st);
        st.struct_size = sizeof st;
        zerobus_stream_get_stats(ng->s, &st);
        if (st.last_offset != (int64_t)np - 1)
          anomaly(L, "recreate: new stream's last offset %" PRId64 ", expected %zu - 1",
                  st.last_offset, np);
        ng->via_recreate = 1;
        L->recreates++;
        lane_add_gen(L, ng);
        zerobus_stream_destroy(old->s);
        old->s = NULL;
        L->cur = ng;
        free(pending);
        VLOG("lane %d: recreated as gen %d with %zu batches", L->idx, ng->idx, np);
        return;
      }
      L->recreate_failures++;
      VLOG("lane %d: recreate failed: %s %s", L->idx, zerobus_status_name(rc),
           zerobus_error_message(e));
      zerobus_error_destroy(e);
      e = NULL;
      if (ng->s) {
        anomaly(L, "recreate failed (%s) but returned a stream", zerobus_status_name(rc));
        zerobus_stream_destroy(ng->s);
        ng->s = NULL;
      }
      /* fall through to a manual create */
    }
    if (old) {
      zerobus_stream_destroy(old->s);
      old->s = NULL;
      old = NULL;
    }
    zerobus_status rc = gen_open(L, ng, &e);
    if (rc != ZEROBUS_OK) {
      L->create_failures++;
      VLOG("lane %d: create failed: %s %s", L->idx, zerobus_status_name(rc),
           zerobus_error_message(e));
      zerobus_error_destroy(e);
      if (ng->s) anomaly(L, "stream_create failed but set *out");
      pthread_mutex_destroy(&ng->mu);
      pthread_cond_destroy(&ng->cv);
      free(ng);
      sleep_ms(200);
      continue;
    }
    lane_add_gen(L, ng);
    size_t i = 0;
    for (; i < np; i++) {
      int64_t off = -1;
      rc = ingest_ids(L, ng->s, pending[i], 0, 0, &off, &e);
      if (rc != ZEROBUS_OK) {
        VLOG("lane %d: re-ingest into gen %d stopped at %zu/%zu: %s", L->idx, ng->idx, i, np,
             zerobus_status_name(rc));
        zerobus_error_destroy(e);
        e = NULL;
        break;
      }
      gen_record(ng, off, pending[i]);
    }
    if (i == np) {
      L->cur = ng;
      free(pending);
      return;
    }
    /* the new stream died during the re-ingest: its unacked batches, then the rest */
    offent *next = NULL;
    size_t nn = 0, cap = 0;
    gen_finish(L, ng, &next, &nn, &cap);
    for (size_t j = i; j < np; j++) {
      if (nn == cap) {
        cap = cap ? cap * 2 : 64;
        next = realloc(next, cap * sizeof *next);
      }
      next[nn++] = pending[j];
    }
    free(pending);
    pending = next;
    np = nn;
    old = ng;
    L->failovers++;
    try_recreate = 0;
  }
}

/* The lane's current stream `failed` can take no more records: check it and
 * move its returned records to a new stream. */
static void failover(lane *L, gen *failed) {
  pthread_rwlock_wrlock(&L->rw);
  if (L->cur != failed || !failed) {
    pthread_rwlock_unlock(&L->rw);
    return;
  }
  L->failovers++;
  offent *pending = NULL;
  size_t np = 0, cap = 0;
  gen_finish(L, failed, &pending, &np, &cap);
  VLOG("lane %d: gen %d failed (%s: %s); %zu batches returned", L->idx, failed->idx,
       zerobus_status_name(failed->close_rc), failed->close_msg, np);
  reingest_locked(L, failed, pending, np);
  pthread_rwlock_unlock(&L->rw);
}

/* ------------------------------------------------------------- producers */
typedef struct producer_arg {
  lane *L;
  int p;
} producer_arg;

static void *producer_main(void *arg) {
  producer_arg *pa = arg;
  lane *L = pa->L;
  int p = pa->p;
  uint64_t rs = rnd_seed(cfg.seed, (uint64_t)L->idx * 16 + (uint64_t)p);
  long long t_start = now_ms();
  long long produced = 0;
  while (!atomic_load(&g_stop_producers)) {
    int n = 1;
    uint64_t r = rnd_next(&rs);
    if (r % 10 >= 6) n = 2 + (int)((r >> 8) % (MAX_BATCH - 1));
    uint32_t flags = ((r >> 16) & 1) ? ZEROBUS_INGEST_NONBLOCK : 0;
    int nocopy = ((r >> 20) % 10) == 0;
    offent e = {(uint16_t)p, (uint16_t)n, L->next_q[p]};
    for (;;) {
      if (atomic_load(&g_stop_producers)) goto out;
      pthread_rwlock_rdlock(&L->rw);
      gen *g = L->cur;
      if (!g) {
        pthread_rwlock_unlock(&L->rw);
        goto out;
      }
      int64_t off = -1;
      zerobus_error *err = NULL;
      zerobus_status rc = ingest_ids(L, g->s, e, flags, nocopy, &off, &err);
      if (rc == ZEROBUS_OK) {
        gen_record(g, off, e);
        L->next_q[p] = e.q + (uint32_t)n;
        atomic_fetch_add(&g_accepted_total, n);
        pthread_rwlock_unlock(&L->rw);
        break;
      }
      pthread_rwlock_unlock(&L->rw);
      if (rc == ZEROBUS_ERR_QUEUE_FULL) {
        if (!(flags & ZEROBUS_INGEST_NONBLOCK)) anomaly(L, "QUEUE_FULL from a blocking ingest");
        if (!zerobus_error_retryable(err)) anomaly(L, "QUEUE_FULL not retryable");
        zerobus_error_destroy(err);
        __atomic_fetch_add(&L->queue_full, 1, __ATOMIC_RELAXED);
        sleep_ms(1);
        continue;
      }
      if (rc == ZEROBUS_ERR_STREAM_CLOSED) {
        zerobus_error_destroy(err);
        failover(L, g);
        continue;
      }
      anomaly(L, "ingest: unexpected %s: %s", zerobus_status_name(rc), zerobus_error_message(err));
      zerobus_error_destroy(err);
      sleep_ms(100);
      failover(L, g);
    }
    produced += n;
    /* pace to cfg.rate records per second */
    long long due = t_start + produced * 1000 / (cfg.rate > 0 ? cfg.rate : 1);
    long long wait = due - now_ms();
    if (wait > 0) sleep_ms(wait > 50 ? 50 : wait);
  }
out:
  return NULL;
}

/* ------------------------------------------------------------- disruptors */
static void *killer_main(void *arg) {
  (void)arg;
  if (cfg.kills <= 0) return NULL;
  uint64_t rs = rnd_seed(cfg.seed, 999);
  long long span = (long long)cfg.duration_s * 1000;
  for (int k = 0; k < cfg.kills && !atomic_load(&g_stop_helpers); k++) {
    /* spread the kills over the run, with jitter */
    long long at =
        g_t0_ms + span * (k + 1) / (cfg.kills + 1) + (long long)(rnd_next(&rs) % 1500) - 750;
    while (now_ms() < at && !atomic_load(&g_stop_helpers)) sleep_ms(20);
    if (atomic_load(&g_stop_helpers)) break;
    pthread_mutex_lock(&g_srv_mu);
    chaos_server_kill(&g_srv);
    atomic_fetch_add(&g_kills, 1);
    long down = 100 + (long)(rnd_next(&rs) % 900);
    logf_("SIGKILL zerobus-local; restarting in %ld ms", down);
    sleep_ms(down);
    char seedbuf[32];
    snprintf(seedbuf, sizeof seedbuf, "%llu", cfg.seed * 1000003ULL + (unsigned long long)k + 1);
    /* a new incarnation draws from a different seed so it does not replay the same faults */
    for (int i = 0; i < g_srv.n_extra; i++)
      if (strcmp(g_srv.extra[i], "--chaos-seed") == 0 && i + 1 < g_srv.n_extra)
        snprintf(g_srv.extra_buf[i + 1], sizeof g_srv.extra_buf[i + 1], "%s", seedbuf);
    if (chaos_server_start(&g_srv) != 0) logf_("ERROR: restart failed");
    pthread_mutex_unlock(&g_srv_mu);
  }
  return NULL;
}

static const char *script_kinds[16] = {"fail_create UNAVAILABLE",
                                       "fail_create INTERNAL",
                                       "fail_create NOT_FOUND (fatal)",
                                       "drop_at_request",
                                       "fail_at_request UNAVAILABLE",
                                       "fail_at_request RESOURCE_EXHAUSTED",
                                       "fail_at_request INVALID_ARGUMENT (fatal)",
                                       "close_signal",
                                       "malformed_ack backwards",
                                       "malformed_ack duplicate",
                                       "malformed_ack beyond",
                                       "malformed_ack no_offset",
                                       "ack_prefix (stall)",
                                       "no_ack (stall)",
                                       "hang_headers",
                                       "ack_delay_ms"};

static int script_entry(uint64_t *rs, char *out, size_t cap, int *kind) {
  int k = (int)(rnd_next(rs) % 16);
  int K = (int)(rnd_next(rs) % 12);
  *kind = k;
  switch (k) {
    case 0:
      return snprintf(out, cap, "{\"fail_create\":14,\"message\":\"chaos script\"}");
    case 1:
      return snprintf(out, cap, "{\"fail_create\":13,\"message\":\"chaos script\"}");
    case 2:
      return snprintf(out, cap, "{\"fail_create\":5,\"message\":\"chaos script\"}");
    case 3:
      return snprintf(out, cap, "{\"drop_at_request\":%d}", K);
    case 4:
      return snprintf(out, cap, "{\"fail_at_request\":%d,\"status\":14}", K);
    case 5:
      return snprintf(out, cap, "{\"fail_at_request\":%d,\"status\":8}", K);
    case 6:
      return snprintf(out, cap, "{\"fail_at_request\":%d,\"status\":3}", K);
    case 7:
      return snprintf(out, cap, "{\"close_signal_ms\":%d,\"after_request\":%d}", 100 + K * 50, K);
    case 8:
      return snprintf(out, cap, "{\"malformed_ack\":\"backwards\",\"after_request\":%d}", K);
    case 9:
      return snprintf(out, cap, "{\"malformed_ack\":\"duplicate\",\"after_request\":%d}", K);
    case 10:
      return snprintf(out, cap, "{\"malformed_ack\":\"beyond\",\"after_request\":%d}", K);
    case 11:
      return snprintf(out, cap, "{\"malformed_ack\":\"no_offset\",\"after_request\":%d}", K);
    case 12:
      return snprintf(out, cap, "{\"ack_prefix\":%d}", K);
    case 13:
      return snprintf(out, cap, "{\"no_ack\":true}");
    case 14:
      return snprintf(out, cap, "{\"hang_headers\":true}");
    default:
      return snprintf(out, cap, "{\"ack_delay_ms\":%d}", 50 + K * 20);
  }
}

static void *scripter_main(void *arg) {
  (void)arg;
  if (!cfg.scripts) return NULL;
  uint64_t rs = rnd_seed(cfg.seed, 4242);
  while (!atomic_load(&g_stop_helpers)) {
    long wait = 800 + (long)(rnd_next(&rs) % 1500);
    for (long w = 0; w < wait && !atomic_load(&g_stop_helpers); w += 20) sleep_ms(20);
    if (atomic_load(&g_stop_helpers)) break;
    int li = (int)(rnd_next(&rs) % (uint64_t)cfg.lanes);
    int ne = 1 + (int)(rnd_next(&rs) % 3);
    char body[1024];
    int kinds[3];
    size_t n = (size_t)snprintf(body, sizeof body, "{\"tables\":{\"%s\":[", g_lanes[li].table);
    for (int i = 0; i < ne; i++) {
      if (i) body[n++] = ',';
      n += (size_t)script_entry(&rs, body + n, sizeof body - n, &kinds[i]);
    }
    n += (size_t)snprintf(body + n, sizeof body - n, "]}}");
    pthread_mutex_lock(&g_srv_mu);
    int rc = g_srv.zl.pid > 0 ? zl_set_faults(&g_srv.zl, body) : -1;
    pthread_mutex_unlock(&g_srv_mu);
    if (rc == 0) {
      g_scripts_posted++;
      for (int i = 0; i < ne; i++) g_script_entries[kinds[i]]++;
      VLOG("script posted: %s", body);
    } else {
      VLOG("script post failed (server restarting?)");
    }
  }
  return NULL;
}

static void write_status_file(void) {
  if (!cfg.status_file) return;
  long long accepted = atomic_load(&g_accepted_total);
  size_t book = (size_t)atomic_load(&g_book_bytes);
  char tmp[600];
  snprintf(tmp, sizeof tmp, "%s.tmp", cfg.status_file);
  FILE *f = fopen(tmp, "w");
  if (!f) return;
  fprintf(f, "%lld %zu %ld\n", accepted, book, (long)atomic_load(&g_kills));
  fclose(f);
  rename(tmp, cfg.status_file);
}

static void *watchdog_main(void *arg) {
  (void)arg;
  long long limit = g_t0_ms + (long long)cfg.duration_s * 1000 + 240000;
  while (!atomic_load(&g_done)) {
    if (now_ms() > limit) {
      logf_("HANG: the run did not finish within duration + 240 s");
      for (int l = 0; l < cfg.lanes; l++) {
        gen *g = g_lanes[l].cur;
        logf_("lane %d: gen %d state %d", l, g ? g->idx : -1,
              g && g->s ? zerobus_stream_state(g->s) : -1);
      }
      chaos_server_kill(&g_srv);
      _exit(3);
    }
    write_status_file();
    sleep_ms(1000);
  }
  return NULL;
}

/* ------------------------------------------------------------- the end */
/* Flushes and closes the lane's stream, failing over as often as needed. */
static void lane_finish(lane *L) {
  for (int attempt = 0; attempt < 12; attempt++) {
    pthread_rwlock_wrlock(&L->rw);
    gen *g = L->cur;
    if (!g) {
      pthread_rwlock_unlock(&L->rw);
      return;
    }
    zerobus_error *e = NULL;
    zerobus_status rc = zerobus_stream_flush(g->s, &e);
    VLOG("lane %d: final flush of gen %d: %s %s", L->idx, g->idx, zerobus_status_name(rc),
         zerobus_error_message(e));
    zerobus_error_destroy(e);
    offent *pending = NULL;
    size_t np = 0, cap = 0;
    gen_finish(L, g, &pending, &np, &cap);
    if (g->close_rc == ZEROBUS_OK && np == 0) {
      if (rc != ZEROBUS_OK)
        anomaly(L, "flush failed (%s) but close succeeded", zerobus_status_name(rc));
      zerobus_stream_destroy(g->s);
      g->s = NULL;
      L->cur = NULL;
      free(pending);
      pthread_rwlock_unlock(&L->rw);
      return;
    }
    L->failovers++;
    if (attempt == 11) {
      add_unrecovered(L, pending, np);
      free(pending);
      zerobus_stream_destroy(g->s);
      g->s = NULL;
      L->cur = NULL;
    } else {
      reingest_locked(L, g, pending, np);
    }
    pthread_rwlock_unlock(&L->rw);
  }
}

typedef struct totals {
  long long accepted, stored_distinct, stored_rows, duplicates, returned, unrecovered, lost,
      invented, corrupt, order_violations, acked_unstored, recoveries, recovery_attempts, resent,
      gens, failovers, recreates, queue_full, anomalies;
} totals;

static void verify_lane(lane *L, totals *T) {
  /* per record: order key of first acceptance, times stored, returned at the end */
  uint64_t *key[MAX_PRODUCERS];
  uint32_t *stored[MAX_PRODUCERS];
  uint8_t *unrec[MAX_PRODUCERS];
  long long accepted = 0;
  for (int p = 0; p < cfg.producers; p++) {
    size_t n = L->next_q[p] + 1;
    key[p] = malloc(n * sizeof(uint64_t));
    stored[p] = calloc(n, sizeof(uint32_t));
    unrec[p] = calloc(n, 1);
    if (!key[p] || !stored[p] || !unrec[p]) abort();
    memset(key[p], 0xff, n * sizeof(uint64_t));
    accepted += L->next_q[p];
  }
  for (int gi = 0; gi < L->ngens; gi++) {
    gen *g = L->gens[gi];
    for (int64_t o = 0; o < g->noffs; o++) {
      offent e = g->offs[o];
      if (e.n == 0) {
        anomaly(L, "gen %d: offset %" PRId64 " never recorded (hole)", g->idx, o);
        continue;
      }
      for (uint32_t i = 0; i < e.n; i++) {
        uint32_t q = e.q + i;
        if (q >= L->next_q[e.p]) {
          anomaly(L, "gen %d: offset %" PRId64 " carries unaccepted id", g->idx, o);
          continue;
        }
        if (key[e.p][q] == UINT64_MAX)
          key[e.p][q] = ((uint64_t)g->idx << 48) | ((uint64_t)o << 8) | i;
      }
    }
  }
  for (int p = 0; p < cfg.producers; p++)
    for (uint32_t q = 0; q < L->next_q[p]; q++)
      if (key[p][q] == UINT64_MAX) anomaly(L, "record p%d q%u accepted but on no stream", p, q);
  for (size_t b = 0; b < L->nunrecovered; b++)
    for (uint32_t i = 0; i < L->unrecovered[b].n; i++)
      unrec[L->unrecovered[b].p][L->unrecovered[b].q + i] = 1;

  zl_blob *blobs = NULL;
  long long nb = zl_payloads(&g_srv.zl, L->table, &blobs);
  if (nb < 0) {
    anomaly(L, "cannot read table %s", L->table);
    nb = 0;
  }
  uint64_t last_key = 0;
  int have_last = 0;
  long long invented = 0, corrupt = 0, order = 0, dups = 0, distinct = 0;
  for (long long i = 0; i < nb; i++) {
    int l, p;
    uint32_t q;
    if (parse_payload(blobs[i].data, blobs[i].len, &l, &p, &q) != 0 || l != L->idx || p < 0 ||
        p >= cfg.producers || q >= L->next_q[p]) {
      invented++;
      if (invented <= 3) anomaly(L, "stored row %lld is not an accepted record", i);
      continue;
    }
    if (!ids_equal_payload(L, p, q, blobs[i].data, blobs[i].len)) {
      corrupt++;
      if (corrupt <= 3)
        anomaly(L, "stored row %lld (p%d q%u) differs from the ingested bytes", i, p, q);
    }
    if (stored[p][q]++ == 0) {
      distinct++;
      if (have_last && key[p][q] < last_key) {
        order++;
        if (order <= 3)
          anomaly(L, "row %lld (p%d q%u) first stored after a record accepted later", i, p, q);
      }
      last_key = key[p][q];
      have_last = 1;
    } else {
      dups++;
    }
  }
  zl_blobs_free(blobs, nb);

  long long acked_unstored = 0;
  for (int gi = 0; gi < L->ngens; gi++) {
    gen *g = L->gens[gi];
    for (int64_t o = 0; o <= g->acked_upto && o < g->noffs; o++)
      for (uint32_t i = 0; i < g->offs[o].n; i++)
        if (g->offs[o].q + i < L->next_q[g->offs[o].p] &&
            stored[g->offs[o].p][g->offs[o].q + i] == 0) {
          acked_unstored++;
          if (acked_unstored <= 3)
            anomaly(L, "gen %d offset %" PRId64 " was acked but p%d q%u is not stored", g->idx, o,
                    g->offs[o].p, g->offs[o].q + i);
        }
  }
  long long lost = 0, unrecovered = 0;
  for (int p = 0; p < cfg.producers; p++)
    for (uint32_t q = 0; q < L->next_q[p]; q++) {
      if (unrec[p][q]) unrecovered++;
      if (stored[p][q] == 0 && !unrec[p][q]) {
        lost++;
        if (lost <= 3)
          anomaly(L, "record p%d q%u was accepted, is not stored and was not returned", p, q);
      }
    }
  long long rec = 0, att = 0, resent = 0;
  for (int gi = 0; gi < L->ngens; gi++) {
    rec += L->gens[gi]->st.reconnects;
    att += L->gens[gi]->st.recovery_attempts;
    resent += L->gens[gi]->st.records_resent;
    if (!L->gens[gi]->finished) anomaly(L, "gen %d never finished", gi);
  }
  printf(
      "lane %d %-5s mode=%-11s auth=%-7s%s accepted=%lld stored=%lld dup=%lld returned=%ld "
      "unrecovered=%lld "
      "lost=%lld invented=%lld corrupt=%lld order=%lld acked_unstored=%lld streams=%d "
      "failovers=%ld "
      "recreates=%ld reconnects=%lld queue_full=%ld anomalies=%ld\n",
      L->idx, L->json ? "json" : "proto",
      L->mode == 0   ? "poll_events"
      : L->mode == 1 ? "poll"
                     : "dispatch",
      L->oauth ? "oauth" : "headers", L->idx % 4 == 3 ? " recovery=off" : "", accepted, distinct,
      dups, L->returned_records, unrecovered, lost, invented, corrupt, order, acked_unstored,
      L->ngens, L->failovers, L->recreates, rec, L->queue_full, L->anomalies.count);
  T->accepted += accepted;
  T->stored_distinct += distinct;
  T->stored_rows += nb;
  T->duplicates += dups;
  T->returned += L->returned_records;
  T->unrecovered += unrecovered;
  T->lost += lost;
  T->invented += invented;
  T->corrupt += corrupt;
  T->order_violations += order;
  T->acked_unstored += acked_unstored;
  T->recoveries += rec;
  T->recovery_attempts += att;
  T->resent += resent;
  T->gens += L->ngens;
  T->failovers += L->failovers;
  T->recreates += L->recreates;
  T->queue_full += L->queue_full;
  T->anomalies += L->anomalies.count;
  for (int p = 0; p < cfg.producers; p++) {
    free(key[p]);
    free(stored[p]);
    free(unrec[p]);
  }
}

/* --tls: a test CA and a server certificate for 127.0.0.1/localhost, made with
 * the openssl command line in a temporary directory. 0 on success. */
static int make_tls_files(void) {
  const char *tmp = getenv("TMPDIR");
  snprintf(g_tls_dir, sizeof g_tls_dir, "%s/zb-chaos-tls-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(g_tls_dir)) return -1;
  char cmd[2048];
  snprintf(
      cmd, sizeof cmd,
      "cd '%s' && printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > san.ext && "
      "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 "
      "-subj /CN=zb-chaos-ca >/dev/null 2>&1 && "
      "openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=localhost "
      ">/dev/null 2>&1 && "
      "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem "
      "-days 2 -extfile san.ext >/dev/null 2>&1",
      g_tls_dir);
  return system(cmd) == 0 ? 0 : -1;
}

/* --selftest: with the server stopped, deletes 5 rows from the middle of lane
 * 0's table and adds one row that was never ingested, so a correct checker
 * must report lost > 0 (unless all 5 had duplicates), acked_unstored > 0 and
 * invented = 1, and fail. Proves the verification is not vacuous. */
static int selftest_damage(void) {
  sqlite3 *db = NULL;
  if (sqlite3_open(g_srv.zl.db_path, &db) != SQLITE_OK) return -1;
  char sql[512];
  snprintf(
      sql, sizeof sql,
      "DELETE FROM \"%s\" WHERE rowid IN (SELECT rowid FROM \"%s\" ORDER BY rowid LIMIT 5 OFFSET "
      "(SELECT count(*)/2 FROM \"%s\"));"
      "INSERT INTO \"%s\" (_zerobus_stream_id, _zerobus_offset, _zerobus_payload) VALUES "
      "('selftest', 0, '{\"l\":0,\"p\":0,\"q\":4000000000,\"pad\":\"\"}');",
      g_lanes[0].table, g_lanes[0].table, g_lanes[0].table, g_lanes[0].table);
  char *msg = NULL;
  int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
  if (rc != SQLITE_OK) fprintf(stderr, "chaos: selftest damage: %s\n", msg ? msg : "?");
  sqlite3_free(msg);
  sqlite3_close(db);
  return rc == SQLITE_OK ? 0 : -1;
}

/* Faults armed by --chaos-seed, from zerobus-local's --verbose log ("chaos: call
 * N kind K at request R"; one per call that drew a fault). */
static long count_chaos_draws(const char *log_path, long kinds[8]) {
  FILE *f = fopen(log_path, "r");
  if (!f) return -1;
  char line[512];
  long n = 0;
  while (fgets(line, sizeof line, f)) {
    const char *p = strstr(line, "chaos: call ");
    if (!p) continue;
    const char *k = strstr(p, " kind ");
    if (!k) continue;
    int kind = atoi(k + 6);
    if (kind >= 0 && kind < 8) kinds[kind]++;
    n++;
  }
  fclose(f);
  return n;
}

/* ------------------------------------------------------------- main */
static void usage(void) {
  fprintf(
      stderr,
      "usage: zb_chaos [--seed N] [--duration SEC] [--lanes N<=8] [--producers N<=4] [--rate R]\n"
      "                [--chaos-rate P] [--kills N] [--no-scripts] [--chaos-fatal] [--oauth-lanes "
      "N]\n"
      "                [--md FILE] [--status-file FILE] [--keep] [--verbose] [--selftest] "
      "[--tls]\n");
  exit(2);
}

static zerobus_options *lane_options(lane *L) {
  zerobus_options *o = NULL;
  if (zerobus_options_new(&o) != ZEROBUS_OK) abort();
  char pmw[32];
  snprintf(pmw, sizeof pmw, "%s", (L->idx % 2) ? "200" : "none");
  const char *kv[][2] = {{"record_type", L->json ? "json" : "proto"},
                         {"max_inflight_records", L->idx % 2 ? "3000" : "20000"},
                         {"max_inflight_bytes", "4194304"},
                         {"server_lack_of_ack_timeout_ms", "1500"},
                         {"recovery_timeout_ms", "2500"},
                         {"recovery_backoff_ms", "150"},
                         {"recovery_retries", "40"},
                         {"flush_timeout_ms", "60000"},
                         {"stream_paused_max_wait_time_ms", pmw},
                         {"dispatch_thread", L->mode == 2 ? "true" : "false"},
                         {"max_request_bytes", L->idx % 3 == 2 ? "4096" : "1048576"},
                         /* every 4th lane runs without recovery: each fault fails its
                          * stream, so get_unacked/recreate get exercised hard */
                         {"recovery", L->idx % 4 == 3 ? "false" : "true"}};
  for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) {
    zerobus_error *e = NULL;
    if (zerobus_options_set(o, kv[i][0], kv[i][1], &e) != ZEROBUS_OK) {
      fprintf(stderr, "chaos: option %s=%s: %s\n", kv[i][0], kv[i][1], zerobus_error_message(e));
      exit(2);
    }
  }
  return o;
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
#define NEXT() (i + 1 < argc ? argv[++i] : (usage(), ""))
    if (!strcmp(a, "--seed"))
      cfg.seed = strtoull(NEXT(), NULL, 10);
    else if (!strcmp(a, "--duration"))
      cfg.duration_s = atoi(NEXT());
    else if (!strcmp(a, "--lanes"))
      cfg.lanes = atoi(NEXT());
    else if (!strcmp(a, "--producers"))
      cfg.producers = atoi(NEXT());
    else if (!strcmp(a, "--rate"))
      cfg.rate = atoi(NEXT());
    else if (!strcmp(a, "--chaos-rate"))
      cfg.chaos_rate = atof(NEXT());
    else if (!strcmp(a, "--kills"))
      cfg.kills = atoi(NEXT());
    else if (!strcmp(a, "--no-scripts"))
      cfg.scripts = 0;
    else if (!strcmp(a, "--chaos-fatal"))
      cfg.chaos_fatal = 1;
    else if (!strcmp(a, "--oauth-lanes"))
      cfg.oauth_lanes = atoi(NEXT());
    else if (!strcmp(a, "--md"))
      cfg.md_file = NEXT();
    else if (!strcmp(a, "--status-file"))
      cfg.status_file = NEXT();
    else if (!strcmp(a, "--keep"))
      cfg.keep = 1;
    else if (!strcmp(a, "--verbose"))
      cfg.verbose = 1;
    else if (!strcmp(a, "--selftest"))
      cfg.selftest = 1;
    else if (!strcmp(a, "--tls"))
      cfg.tls = 1;
    else
      usage();
  }
  if (cfg.lanes < 1 || cfg.lanes > MAX_LANES || cfg.producers < 1 ||
      cfg.producers > MAX_PRODUCERS || cfg.duration_s < 1)
    usage();
  signal(SIGPIPE, SIG_IGN);
  g_t0_ms = now_ms();
  build_descriptor();

  if (chaos_server_init(&g_srv, "chaos") != 0) return 2;
  char seedbuf[32], ratebuf[32];
  snprintf(seedbuf, sizeof seedbuf, "%llu", cfg.seed);
  snprintf(ratebuf, sizeof ratebuf, "%g", cfg.chaos_rate);
  const char *flags[16] = {"--no-auth", "--verbose"};
  int nf = 2;
  static char cert[300], key[300], ca_opt[300];
  if (cfg.tls) {
    if (make_tls_files() != 0) {
      fprintf(stderr, "chaos: cannot make TLS files with openssl\n");
      return 2;
    }
    snprintf(cert, sizeof cert, "%s/server.pem", g_tls_dir);
    snprintf(key, sizeof key, "%s/server.key", g_tls_dir);
    snprintf(ca_opt, sizeof ca_opt, "%s/ca.pem", g_tls_dir);
    flags[nf++] = "--tls-cert";
    flags[nf++] = cert;
    flags[nf++] = "--tls-key";
    flags[nf++] = key;
    snprintf(g_srv.zl.endpoint, sizeof g_srv.zl.endpoint, "https://127.0.0.1:%d",
             g_srv.zl.grpc_port);
    snprintf(g_srv.zl.http_url, sizeof g_srv.zl.http_url, "https://127.0.0.1:%d",
             g_srv.zl.http_port);
  }
  if (cfg.chaos_rate > 0) {
    flags[nf++] = "--chaos-seed";
    flags[nf++] = seedbuf;
    flags[nf++] = "--chaos-rate";
    flags[nf++] = ratebuf;
    if (cfg.chaos_fatal) flags[nf++] = "--chaos-fatal";
  }
  flags[nf] = NULL;
  chaos_server_set_flags(&g_srv, flags);
  if (chaos_server_start(&g_srv) != 0) return 2;
  logf_("zerobus-local on %s / %s, db %s, seed %llu", g_srv.zl.endpoint, g_srv.zl.http_url,
        g_srv.zl.db_path, cfg.seed);

  zerobus_error *err = NULL;
  zerobus_options *sdk_opts = NULL;
  if (zerobus_options_new(&sdk_opts) != ZEROBUS_OK) return 2;
  if (cfg.tls && zerobus_options_set(sdk_opts, "tls_ca_file", ca_opt, &err) != ZEROBUS_OK) {
    fprintf(stderr, "chaos: tls_ca_file: %s\n", zerobus_error_message(err));
    return 2;
  }
  zerobus_status sdk_rc =
      zerobus_sdk_new(g_srv.zl.endpoint, g_srv.zl.http_url, sdk_opts, &g_sdk, &err);
  zerobus_options_destroy(sdk_opts);
  if (sdk_rc != ZEROBUS_OK) {
    fprintf(stderr, "chaos: sdk_new: %s\n", zerobus_error_message(err));
    return 2;
  }
  for (int l = 0; l < cfg.lanes; l++) {
    lane *L = &g_lanes[l];
    L->idx = l;
    L->json = (l % 2) == 0;
    L->mode = l % 3;
    L->oauth = l >= cfg.lanes - cfg.oauth_lanes;
    snprintf(L->table, sizeof L->table, "chaos.s%llu.lane%d", cfg.seed, l);
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&L->rw, &ra);
    pthread_rwlockattr_destroy(&ra);
    pthread_mutex_init(&L->amu, NULL);
    L->opts = lane_options(L);
    /* first stream; the server may inject faults already, so retry */
    for (int tries = 0;; tries++) {
      gen *g = gen_new(L);
      zerobus_error *e = NULL;
      zerobus_status rc = gen_open(L, g, &e);
      if (rc == ZEROBUS_OK) {
        lane_add_gen(L, g);
        L->cur = g;
        break;
      }
      logf_("lane %d: first create failed: %s %s", l, zerobus_status_name(rc),
            zerobus_error_message(e));
      zerobus_error_destroy(e);
      free(g);
      if (tries == 20) return 2;
      sleep_ms(200);
    }
  }
  logf_("%d lanes open; running %d s", cfg.lanes, cfg.duration_s);

  pthread_t killer, scripter, watchdog;
  pthread_create(&watchdog, NULL, watchdog_main, NULL);
  producer_arg pargs[MAX_LANES][MAX_PRODUCERS];
  for (int l = 0; l < cfg.lanes; l++) {
    pthread_create(&g_lanes[l].poller, NULL, poller_main, &g_lanes[l]);
    for (int p = 0; p < cfg.producers; p++) {
      pargs[l][p].L = &g_lanes[l];
      pargs[l][p].p = p;
      pthread_create(&g_lanes[l].producers[p], NULL, producer_main, &pargs[l][p]);
    }
  }
  pthread_create(&killer, NULL, killer_main, NULL);
  pthread_create(&scripter, NULL, scripter_main, NULL);

  while (now_ms() < g_t0_ms + (long long)cfg.duration_s * 1000) sleep_ms(100);
  atomic_store(&g_stop_helpers, 1);
  pthread_join(killer, NULL);
  pthread_join(scripter, NULL);
  atomic_store(&g_stop_producers, 1);
  for (int l = 0; l < cfg.lanes; l++)
    for (int p = 0; p < cfg.producers; p++) pthread_join(g_lanes[l].producers[p], NULL);
  logf_("producers stopped; calm phase: graceful restart without faults");

  /* Calm phase: a graceful stop (ends live calls with UNAVAILABLE after acking
   * what it stored), then the same ports without chaos, so every lane drains. */
  pthread_mutex_lock(&g_srv_mu);
  zl_clear_faults(&g_srv.zl);
  int st = chaos_server_stop(&g_srv);
  if (st != 0) logf_("note: zerobus-local exit status %d on SIGTERM", st);
  const char *calm[] = {"--no-auth", "--verbose", cfg.tls ? "--tls-cert" : NULL, cert, "--tls-key",
                        key,         NULL};
  chaos_server_set_flags(&g_srv, calm);
  int restart_rc = chaos_server_start(&g_srv);
  pthread_mutex_unlock(&g_srv_mu);
  if (restart_rc != 0) {
    fprintf(stderr, "chaos: calm restart failed\n");
    return 2;
  }
  for (int l = 0; l < cfg.lanes; l++) lane_finish(&g_lanes[l]);
  atomic_store(&g_stop_pollers, 1);
  for (int l = 0; l < cfg.lanes; l++) pthread_join(g_lanes[l].poller, NULL);
  zerobus_sdk_destroy(g_sdk);
  int final_status = chaos_server_stop(&g_srv);
  atomic_store(&g_done, 1);
  pthread_join(watchdog, NULL);
  long long elapsed = now_ms() - g_t0_ms;

  printf(
      "chaos%s seed=%llu duration=%ds lanes=%d producers/lane=%d rate=%d/s chaos-rate=%g kills=%ld "
      "scripts=%ld elapsed=%.1fs\n",
      cfg.tls ? " (TLS)" : "", cfg.seed, cfg.duration_s, cfg.lanes, cfg.producers, cfg.rate,
      cfg.chaos_rate, (long)atomic_load(&g_kills), g_scripts_posted, elapsed / 1000.0);
  if (cfg.selftest && selftest_damage() != 0) return 2;
  totals T;
  memset(&T, 0, sizeof T);
  for (int l = 0; l < cfg.lanes; l++) verify_lane(&g_lanes[l], &T);
  long nocopy_left = atomic_load(&g_nocopy_outstanding);
  if (nocopy_left != 0) {
    printf("ANOMALY: %ld zero-copy payloads never released\n", nocopy_left);
    T.anomalies++;
  }
  if (final_status != 0)
    printf("note: final graceful stop of zerobus-local returned %d\n", final_status);
  long script_total = 0;
  for (int k = 0; k < 16; k++) script_total += g_script_entries[k];
  printf("faults: SIGKILL+restart=%ld scripted entries=%ld (", (long)atomic_load(&g_kills),
         script_total);
  for (int k = 0, first = 1; k < 16; k++)
    if (g_script_entries[k]) {
      printf("%s%s=%ld", first ? "" : ", ", script_kinds[k], g_script_entries[k]);
      first = 0;
    }
  long chaos_kinds[8] = {0};
  long chaos_total = count_chaos_draws(g_srv.log_path, chaos_kinds);
  static const char *ck[7] = {"status",        "drop",         "close_signal", "ack_stall",
                              "malformed_ack", "hang_headers", "fail_create"};
  printf(") chaos draws=%ld (", chaos_total);
  for (int k = 0, first = 1; k < 7; k++)
    if (chaos_kinds[k]) {
      printf("%s%s=%ld", first ? "" : ", ", ck[k], chaos_kinds[k]);
      first = 0;
    }
  printf(")\n");
  printf(
      "TOTAL accepted=%lld stored=%lld rows=%lld duplicates=%lld failed_and_returned=%lld "
      "unrecovered=%lld "
      "lost=%lld invented=%lld corrupt=%lld order_violations=%lld acked_unstored=%lld "
      "recoveries=%lld "
      "recovery_attempts=%lld resent=%lld streams=%lld failovers=%lld recreates=%lld "
      "queue_full=%lld "
      "zero_copy=%ld anomalies=%lld\n",
      T.accepted, T.stored_distinct, T.stored_rows, T.duplicates, T.returned, T.unrecovered, T.lost,
      T.invented, T.corrupt, T.order_violations, T.acked_unstored, T.recoveries,
      T.recovery_attempts, T.resent, T.gens, T.failovers, T.recreates, T.queue_full,
      (long)atomic_load(&g_nocopy_released), T.anomalies);
  int ok = T.lost == 0 && T.invented == 0 && T.corrupt == 0 && T.order_violations == 0 &&
           T.acked_unstored == 0 && T.anomalies == 0 && T.accepted > 0;
  for (int l = 0; l < cfg.lanes; l++)
    for (long i = 0; i < g_lanes[l].anomalies.count && i < 8; i++)
      printf("  lane %d anomaly: %s\n", l, g_lanes[l].anomalies.first[i]);
  if (cfg.md_file) {
    FILE *f = fopen(cfg.md_file, "a");
    if (f) {
      fprintf(f,
              "| %llu | %d s | %d×%d | %g | %ld | %ld | %ld | %lld | %lld | %lld | %lld | %lld | "
              "%lld | %lld | %s | "
              "`zb_chaos --seed %llu --duration %d --lanes %d --producers %d --rate %d "
              "--chaos-rate %g --kills %d%s%s%s` |\n",
              cfg.seed, cfg.duration_s, cfg.lanes, cfg.producers, cfg.chaos_rate,
              (long)atomic_load(&g_kills), script_total, chaos_total, T.accepted, T.stored_distinct,
              T.duplicates, T.returned, T.unrecovered, T.lost, T.recoveries, ok ? "PASS" : "FAIL",
              cfg.seed, cfg.duration_s, cfg.lanes, cfg.producers, cfg.rate, cfg.chaos_rate,
              cfg.kills, cfg.scripts ? "" : " --no-scripts",
              cfg.chaos_fatal ? " --chaos-fatal" : "", cfg.tls ? " --tls" : "");
      fclose(f);
    }
  }
  printf("RESULT %s\n", ok ? "PASS" : "FAIL");
  chaos_server_cleanup(&g_srv, cfg.keep || (!ok && !cfg.selftest));
  if (cfg.tls && g_tls_dir[0]) {
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tls_dir);
    if (system(cmd) != 0) fprintf(stderr, "chaos: could not remove %s\n", g_tls_dir);
  }
  if (!ok && !cfg.selftest)
    printf("kept database %s and server log %s\n", g_srv.zl.db_path, g_srv.log_path);
  for (int l = 0; l < cfg.lanes; l++) {
    for (int i = 0; i < g_lanes[l].ngens; i++) {
      free(g_lanes[l].gens[i]->offs);
      pthread_mutex_destroy(&g_lanes[l].gens[i]->mu);
      pthread_cond_destroy(&g_lanes[l].gens[i]->cv);
      free(g_lanes[l].gens[i]);
    }
    free(g_lanes[l].gens);
    free(g_lanes[l].unrecovered);
    zerobus_options_destroy(g_lanes[l].opts);
  }
  return ok ? 0 : 1;
}
