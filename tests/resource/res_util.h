/*
 * res_util.h - shared helpers of the resource-bound tests: checks that report
 * file:line and values, /proc readings of this process (RSS, threads, file
 * descriptors) and a zerobus-local stream factory (headers provider auth).
 */
#ifndef RES_UTIL_H
#define RES_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "zerobus_abi.h"
#include "zl_harness.h"

static int res_failures;

/* RSS bounds are meaningless under ASan/TSan (shadow memory, quarantine). */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define RSS_CHECKED 0
#else
#define RSS_CHECKED 1
#endif
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#undef RSS_CHECKED
#define RSS_CHECKED 0
#endif
#endif

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      res_failures++;                                                          \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                          \
  } while (0)

#define CHECK_INT(a, b)                                                                          \
  do {                                                                                           \
    long long ra_ = (long long)(a), rb_ = (long long)(b);                                        \
    if (ra_ != rb_) {                                                                            \
      res_failures++;                                                                            \
      fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", __FILE__, __LINE__, #a, #b, ra_, \
              rb_);                                                                              \
    }                                                                                            \
  } while (0)

#define CHECK_LE(a, b)                                                                          \
  do {                                                                                          \
    long long ra_ = (long long)(a), rb_ = (long long)(b);                                       \
    if (ra_ > rb_) {                                                                            \
      res_failures++;                                                                           \
      fprintf(stderr, "%s:%d: %s <= %s failed: %lld > %lld\n", __FILE__, __LINE__, #a, #b, ra_, \
              rb_);                                                                             \
    }                                                                                           \
  } while (0)

#define REQUIRE_OK(call, errp)                                                \
  do {                                                                        \
    zerobus_status rs_ = (call);                                              \
    if (rs_ != ZEROBUS_OK) {                                                  \
      fprintf(stderr, "%s:%d: %s failed: %s %s\n", __FILE__, __LINE__, #call, \
              zerobus_status_name(rs_), zerobus_error_message(*(errp)));      \
      exit(1);                                                                \
    }                                                                         \
  } while (0)

static inline long long res_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void res_sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* VmRSS of this process in bytes. */
static inline long long res_rss_bytes(void) {
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) return -1;
  char line[256];
  long long kb = -1;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, "VmRSS:", 6) == 0) kb = atoll(line + 6);
  fclose(f);
  return kb * 1024;
}

static inline int res_count_dir(const char *path) {
  DIR *d = opendir(path);
  if (!d) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n - (strcmp(path, "/proc/self/fd") == 0 ? 1 : 0); /* the DIR's own fd */
}
static inline int res_threads(void) {
  return res_count_dir("/proc/self/task");
}
static inline int res_fds(void) {
  return res_count_dir("/proc/self/fd");
}

static inline int32_t res_headers(void *ud, zerobus_headers *h) {
  if (zerobus_headers_add(h, "authorization", "Bearer resource-test") != ZEROBUS_OK) return 1;
  return zerobus_headers_add(h, "x-databricks-zerobus-table-name", (const char *)ud);
}

/* Options from a NULL-terminated key, value, key, value... list. */
static inline zerobus_options *res_options(const char *const *kv) {
  zerobus_options *o = NULL;
  if (zerobus_options_new(&o) != ZEROBUS_OK) exit(1);
  for (int i = 0; kv && kv[i]; i += 2) {
    zerobus_error *e = NULL;
    REQUIRE_OK(zerobus_options_set(o, kv[i], kv[i + 1], &e), &e);
  }
  return o;
}

/* A JSON stream on `table` (the string must outlive the stream). */
static inline zerobus_status res_stream(zerobus_sdk *sdk, const char *table,
                                        const zerobus_options *o, zerobus_stream **out,
                                        zerobus_error **err) {
  zerobus_callbacks cb;
  zerobus_callbacks_init(&cb, sizeof cb);
  cb.user_data = (void *)table;
  cb.headers = res_headers;
  return zerobus_stream_create(sdk, table, NULL, 0, NULL, NULL, o, &cb, out, err);
}

static inline zerobus_stream_stats res_stats(zerobus_stream *s) {
  zerobus_stream_stats st;
  memset(&st, 0, sizeof st);
  st.struct_size = sizeof st;
  zerobus_stream_get_stats(s, &st);
  return st;
}

#endif
