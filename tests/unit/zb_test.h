/*
 * zb_test.h - a minimal test harness for the unit tests: CHECK macros that report
 * file:line and the values compared, and a runner that executes TEST functions
 * and exits non-zero when any check failed.
 */
#ifndef ZB_TEST_H
#define ZB_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int zbt_failures;
static int zbt_checks;

#define CHECK(cond)                                                            \
  do {                                                                         \
    zbt_checks++;                                                              \
    if (!(cond)) {                                                             \
      zbt_failures++;                                                          \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                          \
  } while (0)

#define CHECK_INT(a, b)                                                                            \
  do {                                                                                             \
    long long zbt_a = (long long)(a), zbt_b = (long long)(b);                                      \
    zbt_checks++;                                                                                  \
    if (zbt_a != zbt_b) {                                                                          \
      zbt_failures++;                                                                              \
      fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", __FILE__, __LINE__, #a, #b, zbt_a, \
              zbt_b);                                                                              \
    }                                                                                              \
  } while (0)

#define CHECK_STR(a, b)                                                                            \
  do {                                                                                             \
    const char *zbt_a = (a), *zbt_b = (b);                                                         \
    zbt_checks++;                                                                                  \
    if (!zbt_a || !zbt_b || strcmp(zbt_a, zbt_b) != 0) {                                           \
      zbt_failures++;                                                                              \
      fprintf(stderr, "%s:%d: %s == %s failed:\n  got      \"%s\"\n  expected \"%s\"\n", __FILE__, \
              __LINE__, #a, #b, zbt_a ? zbt_a : "(null)", zbt_b ? zbt_b : "(null)");               \
    }                                                                                              \
  } while (0)

/* `hay` contains `needle` */
#define CHECK_HAS(hay, needle)                                                       \
  do {                                                                               \
    const char *zbt_h = (hay), *zbt_n = (needle);                                    \
    zbt_checks++;                                                                    \
    if (!zbt_h || !strstr(zbt_h, zbt_n)) {                                           \
      zbt_failures++;                                                                \
      fprintf(stderr, "%s:%d: \"%s\" does not contain \"%s\"\n", __FILE__, __LINE__, \
              zbt_h ? zbt_h : "(null)", zbt_n);                                      \
    }                                                                                \
  } while (0)

#define CHECK_LACKS(hay, needle)                                                            \
  do {                                                                                      \
    const char *zbt_h = (hay), *zbt_n = (needle);                                           \
    zbt_checks++;                                                                           \
    if (zbt_h && strstr(zbt_h, zbt_n)) {                                                    \
      zbt_failures++;                                                                       \
      fprintf(stderr, "%s:%d: \"%s\" must not contain \"%s\"\n", __FILE__, __LINE__, zbt_h, \
              zbt_n);                                                                       \
    }                                                                                       \
  } while (0)

#define RUN(test)                                                                    \
  do {                                                                               \
    int zbt_before = zbt_failures;                                                   \
    test();                                                                          \
    fprintf(stderr, "%s %s\n", zbt_failures == zbt_before ? "ok  " : "FAIL", #test); \
  } while (0)

#define TEST_MAIN_END()                                                  \
  do {                                                                   \
    fprintf(stderr, "%d checks, %d failed\n", zbt_checks, zbt_failures); \
    return zbt_failures ? 1 : 0;                                         \
  } while (0)

#endif
