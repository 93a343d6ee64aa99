/* A long run of single-record zerobus_stream_ingest calls (20-byte PROTO records)
 * against zerobus-local --store null: every offset handed out in order, every
 * record acked and counted by the server. It prints the rate it saw, but speed is
 * judged by bench/ (scripts/bench.sh), never by a test. Smaller runs under
 * sanitizers and valgrind; CORE_PERF_RECORDS overrides the count. */
#include <sys/resource.h>

#include "core_test.h"

static double cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
         ru.ru_stime.tv_usec / 1e6;
}

int main(void) {
  /* message R { optional bytes b = 1; } */
  static const unsigned char desc[] = {0x0a, 0x01, 'R',  0x12, 0x09, 0x0a, 0x01,
                                       'b',  0x18, 0x01, 0x20, 0x01, 0x28, 0x0c};
  long long n = 3000000;
  const char *env = getenv("CORE_PERF_RECORDS");
  if (env) n = atoll(env);
  if (sanitized() || under_valgrind()) n = under_valgrind() ? 20000 : 300000;
  zl_server srv;
  start_server(&srv, (const char *[]){"--store", "null", NULL});
  zerobus_sdk *sdk = sdk_for(&srv, NULL);
  zerobus_options *o = opts_of((const char *[]){"recovery_backoff_ms=50", NULL});
  zerobus_stream *s = NULL;
  zerobus_error *e = NULL;
  CHECK_OK(zerobus_stream_create(sdk, "main.perf.single", desc, sizeof desc, "test-client",
                                 "test-secret", o, NULL, &s, &e),
           &e);
  unsigned char rec20[20] = {0x0a, 18};
  memset(rec20 + 2, 'a', 18);
  long long t0 = now_ms();
  double c0 = cpu_s();
  int64_t off = -1;
  for (long long i = 0; i < n; i++) {
    if (zerobus_stream_ingest(s, rec20, sizeof rec20, 0, &off, &e) != ZEROBUS_OK) {
      fprintf(stderr, "ingest %lld: %s\n", i, zerobus_error_message(e));
      return 1;
    }
  }
  CHECK_EQ(off, n - 1);
  CHECK_OK(zerobus_stream_flush(s, &e), &e);
  long long dt = now_ms() - t0;
  double cpu_ns = (cpu_s() - c0) * 1e9 / (double)n;
  double rate = (double)n * 1000.0 / (double)(dt > 0 ? dt : 1);
  printf(
      "throughput: %.0f records/s (%lld records in %lld ms, %lld requests, client CPU "
      "%.0f ns/record)\n",
      rate, n, dt, (long long)STAT(s, requests_sent), cpu_ns);
  fflush(stdout);
  CHECK_EQ(STAT(s, records_acked), n);
  CHECK_OK(zerobus_stream_close(s, &e), &e);
  zerobus_stream_destroy(s);
  zerobus_options_destroy(o);
  CHECK_EQ(zl_counter(&srv, NULL, "records"), n);
  zerobus_sdk_destroy(sdk);
  zl_stop(&srv);
  return 0;
}
