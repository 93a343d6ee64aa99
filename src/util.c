/*
 * util.c - small helpers shared by every module: the monotonic clock and the SDK
 * identification header value.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

int64_t zb_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *zb_sdk_header_value(const char *application_name) {
  char *out = NULL;
  int n;
  if (application_name && *application_name)
    n = asprintf(&out, "libzerobus/%s %s", ZEROBUS_VERSION_STR, application_name);
  else
    n = asprintf(&out, "libzerobus/%s", ZEROBUS_VERSION_STR);
  return n < 0 ? NULL : out;
}
