/* core_test.h - tiny helpers shared by the libzerobus core tests (tests/core).
 * Each test program is a list of test functions run in order; a failed CHECK
 * prints the location and exits 1. Every test talks to a real zerobus-local. */
#ifndef CORE_TEST_H
#define CORE_TEST_H

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "zerobus_abi.h"
#include "zl_harness.h"

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      exit(1);                                                                 \
    }                                                                          \
  } while (0)

#define CHECK_EQ(a, b)                                                                            \
  do {                                                                                            \
    long long _a = (long long)(a), _b = (long long)(b);                                           \
    if (_a != _b) {                                                                               \
      fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %lld, %s == %lld\n", __FILE__, __LINE__, #a, \
              _a, #b, _b);                                                                        \
      exit(1);                                                                                    \
    }                                                                                             \
  } while (0)

/* Checks a status; prints the error message on mismatch. */
#define CHECK_ST(expr, want, errp)                                                        \
  do {                                                                                    \
    zerobus_status _st = (expr);                                                          \
    if ((int)_st != (int)(want)) {                                                        \
      fprintf(stderr, "%s:%d: %s returned %s (%s), want %s\n", __FILE__, __LINE__, #expr, \
              zerobus_status_name(_st), zerobus_error_message(*(errp)),                   \
              zerobus_status_name(want));                                                 \
      exit(1);                                                                            \
    }                                                                                     \
  } while (0)

#define CHECK_OK(expr, errp) CHECK_ST(expr, ZEROBUS_OK, errp)

#define TABLE "main.default.events"

static inline long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sanitizer builds and valgrind run everything several times slower: upper
 * bounds on durations are multiplied by slack(). */
static inline int under_valgrind(void) {
  const char *p = getenv("LD_PRELOAD");
  return p && strstr(p, "vgpreload") != NULL;
}
static inline int sanitized(void) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  return 1;
#else
  return 0;
#endif
}
static inline long long slack(void) {
  return under_valgrind() ? 20 : sanitized() ? 5 : 1;
}

static inline void sleep_ms(long ms) {
  usleep((useconds_t)ms * 1000);
}

/* Sets "k=v" strings (NULL-terminated) on `o`; a refused one fails the test. */
static inline void opts_apply(zerobus_options *o, const char *const *kv) {
  for (int i = 0; kv && kv[i]; i++) {
    char key[128];
    zerobus_error *e = NULL;
    const char *eq = strchr(kv[i], '=');
    CHECK(eq && (size_t)(eq - kv[i]) < sizeof key);
    memcpy(key, kv[i], (size_t)(eq - kv[i]));
    key[eq - kv[i]] = 0;
    if (zerobus_options_set(o, key, eq + 1, &e) != ZEROBUS_OK) {
      fprintf(stderr, "option %s: %s\n", kv[i], zerobus_error_message(e));
      exit(1);
    }
  }
}

/* Options from "k=v" strings, NULL-terminated. */
static inline zerobus_options *opts_of(const char *const *kv) {
  zerobus_options *o = NULL;
  CHECK(zerobus_options_new(&o) == ZEROBUS_OK);
  opts_apply(o, kv);
  return o;
}

static inline zerobus_sdk *sdk_for(zl_server *srv, const char *const *kv) {
  zerobus_options *o = opts_of(kv);
  zerobus_sdk *sdk = NULL;
  zerobus_error *e = NULL;
  CHECK_OK(zerobus_sdk_new(srv->endpoint, srv->http_url, o, &sdk, &e), &e);
  zerobus_options_destroy(o);
  return sdk;
}

/* A JSON stream with OAuth (zerobus-local's default client credentials) and the
 * given stream options (always record_type=json plus fast recovery defaults). */
static inline zerobus_status json_stream(zerobus_sdk *sdk, const char *table, const char *const *kv,
                                         const zerobus_callbacks *cb, zerobus_stream **out,
                                         zerobus_error **err) {
  const char *base[] = {"record_type=json", "recovery_backoff_ms=50", "recovery_timeout_ms=3000",
                        NULL};
  zerobus_options *o = opts_of(base);
  opts_apply(o, kv);
  zerobus_status st =
      zerobus_stream_create(sdk, table, NULL, 0, "test-client", "test-secret", o, cb, out, err);
  zerobus_options_destroy(o);
  return st;
}

static inline void start_server(zl_server *srv, const char *const *args) {
  if (zl_start(srv, args) != 0) {
    fprintf(stderr, "cannot start zerobus-local\n");
    exit(1);
  }
}

/* JSON record text for i (fixed format so payloads can be compared). */
static inline int rec(char *buf, size_t cap, long long i) {
  return snprintf(buf, cap, "{\"i\":%lld}", i);
}

static inline void ingest_n(zerobus_stream *s, long long from, long long n) {
  char buf[64];
  zerobus_error *e = NULL;
  for (long long i = from; i < from + n; i++) {
    int len = rec(buf, sizeof buf, i);
    int64_t off = -2;
    CHECK_OK(zerobus_stream_ingest(s, buf, (size_t)len, 0, &off, &e), &e);
    CHECK_EQ(off, i);
  }
}

/* Checks that the table holds exactly records from..from+n-1 in order (no
 * duplicates): {"i":k}. */
static inline void check_stored_exact(zl_server *srv, const char *table, long long n) {
  zl_blob *b = NULL;
  long long got = zl_payloads(srv, table, &b);
  if (got != n) fprintf(stderr, "stored %lld rows, want %lld\n", got, n);
  CHECK_EQ(got, n);
  char buf[64];
  for (long long i = 0; i < n; i++) {
    int len = rec(buf, sizeof buf, i);
    if ((size_t)len != b[i].len || memcmp(buf, b[i].data, b[i].len) != 0) {
      fprintf(stderr, "row %lld: '%.*s' want '%s'\n", i, (int)b[i].len, (char *)b[i].data, buf);
      CHECK(0);
    }
  }
  zl_blobs_free(b, got);
}

/* Checks that every record 0..n-1 is stored at least once, in first-seen order
 * (recovery may duplicate records the server stored but did not ack). */
static inline void check_stored_atleast_once(zl_server *srv, const char *table, long long n) {
  zl_blob *b = NULL;
  long long got = zl_payloads(srv, table, &b);
  CHECK(got >= n);
  long long next = 0;
  for (long long r = 0; r < got; r++) {
    long long v = -1;
    CHECK(sscanf((const char *)b[r].data, "{\"i\":%lld}", &v) == 1);
    CHECK(v >= 0 && v < n);
    if (v == next)
      next++;
    else
      CHECK(v < next); /* a re-sent record, never a skipped one */
  }
  CHECK_EQ(next, n);
  zl_blobs_free(b, got);
}

/* Replay check: rows grouped by server stream id (one group per call, in rowid
 * order) must each be a run of consecutive records; the first starts at 0, every
 * later run starts at or before the end of what was stored so far + 1 (replay of
 * the unacked tail), and together they cover 0..n-1. Returns the number of calls
 * that stored rows; *first_starts gets where run `i` started (up to 8). */
static inline int check_replay_runs(zl_server *srv, const char *table, long long n,
                                    long long *starts) {
  zl_blob *b = NULL;
  long long got = zl_payloads(srv, table, &b);
  CHECK(got >= n);
  int runs = 0;
  long long covered = -1, prev = -1;
  const char *sid = NULL;
  for (long long r = 0; r < got; r++) {
    long long v = -1;
    CHECK(sscanf((const char *)b[r].data, "{\"i\":%lld}", &v) == 1);
    if (!sid || strcmp(sid, b[r].stream_id) != 0) {
      sid = b[r].stream_id;
      if (runs < 8 && starts) starts[runs] = v;
      runs++;
      if (runs == 1) CHECK_EQ(v, 0);
      if (v > covered + 1) {
        fprintf(stderr, "run %d starts at %lld, stored so far up to %lld\n", runs, v, covered);
        CHECK(0);
      }
    } else if (v != prev + 1) {
      fprintf(stderr, "row %lld: %lld after %lld in one call\n", r, v, prev);
      CHECK(0);
    }
    prev = v;
    if (v > covered) covered = v;
  }
  CHECK_EQ(covered, n - 1);
  zl_blobs_free(b, got);
  return runs;
}

static inline int64_t stat_of(zerobus_stream *s, size_t field_offset) {
  zerobus_stream_stats st;
  memset(&st, 0, sizeof st);
  st.struct_size = sizeof st;
  CHECK(zerobus_stream_get_stats(s, &st) == ZEROBUS_OK);
  int64_t v;
  memcpy(&v, (char *)&st + field_offset, sizeof v);
  return v;
}
#define STAT(s, field) stat_of((s), offsetof(zerobus_stream_stats, field))

/* CORE_ONLY=<substring> runs only the matching test functions (debugging). */
#define RUN(t)                                            \
  do {                                                    \
    const char *_only = getenv("CORE_ONLY");              \
    if (_only && !strstr(#t, _only)) break;               \
    long long _t0 = now_ms();                             \
    fprintf(stderr, "== %s\n", #t);                       \
    t();                                                  \
    fprintf(stderr, "   ok (%lld ms)\n", now_ms() - _t0); \
  } while (0)

#endif
