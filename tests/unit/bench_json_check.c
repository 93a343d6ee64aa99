/* Throughput of zb_json_check_object on typical small records and on a large
 * string-heavy record. Not a test: prints MB/s and records/s. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static void bench(const char *label, const char *rec, size_t len, long iters) {
  int64_t t0 = zb_now_ms();
  long ok = 0;
  for (long i = 0; i < iters; i++) ok += zb_json_check_object(rec, len, NULL) == ZEROBUS_OK;
  int64_t ms = zb_now_ms() - t0;
  if (ms < 1) ms = 1;
  if (ok != iters) fprintf(stderr, "%s: record is invalid!\n", label);
  double mb = (double)len * (double)iters / 1e6;
  printf("%-28s %8zu B/record  %9.0f MB/s  %11.0f records/s\n", label, len, mb * 1000.0 / ms,
         (double)iters * 1000.0 / ms);
}

int main(void) {
  const char *small =
      "{\"id\":123456,\"device\":\"sensor-0042\",\"ts\":1732704000123,\"temp\":21.75,"
      "\"humidity\":0.43,\"ok\":true,\"tags\":[\"north\",\"roof\",\"v2\"],"
      "\"meta\":{\"fw\":\"1.4.2\",\"site\":\"Z\\u00fcrich\",\"note\":null}}";
  bench("small record", small, strlen(small), 5000000);

  size_t big_len = 1 << 20;
  char *big = malloc(big_len + 64);
  size_t n = 0;
  n += (size_t)sprintf(big, "{\"payload\":\"");
  while (n < big_len - 16) {
    big[n] = (char)('a' + n % 26);
    n++;
  }
  n += (size_t)sprintf(big + n, "\",\"n\":1}");
  bench("1 MiB string field", big, n, 300);

  /* Many small numbers: the slowest path (no long strings). */
  n = 0;
  n += (size_t)sprintf(big, "{\"v\":[");
  while (n < big_len - 32) n += (size_t)sprintf(big + n, "%zu,", n);
  n += (size_t)sprintf(big + n, "0]}");
  bench("1 MiB number array", big, n, 200);

  /* UTF-8 text. */
  n = 0;
  n += (size_t)sprintf(big, "{\"t\":\"");
  while (n < big_len - 32) n += (size_t)sprintf(big + n, "gr\xc3\xbc\xc3\x9f \xe2\x82\xac ");
  n += (size_t)sprintf(big + n, "\"}");
  bench("1 MiB UTF-8 text", big, n, 200);
  free(big);
  return 0;
}
