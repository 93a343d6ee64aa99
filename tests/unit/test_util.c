/* Utilities: the monotonic clock and the x-zerobus-sdk header value. */
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"
#include "zb_test.h"

static void clock_is_monotonic_milliseconds(void) {
  int64_t a = zb_now_ms();
  usleep(50 * 1000);
  int64_t b = zb_now_ms();
  CHECK(a > 0);
  CHECK(b - a >= 50 && b - a < 1000);
}

static void sdk_header_value(void) {
  char *v = zb_sdk_header_value(NULL);
  CHECK_STR(v, "libzerobus/0.1.0");
  free(v);
  v = zb_sdk_header_value("");
  CHECK_STR(v, "libzerobus/0.1.0");
  free(v);
  v = zb_sdk_header_value("orders-pipeline/2.3");
  CHECK_STR(v, "libzerobus/0.1.0 orders-pipeline/2.3");
  free(v);
}

int main(void) {
  RUN(clock_is_monotonic_milliseconds);
  RUN(sdk_header_value);
  TEST_MAIN_END();
}
