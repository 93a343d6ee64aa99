/*
 * test_inflight_memory - memory stays bounded by max_inflight_bytes (plus
 * bookkeeping) while the server never acknowledges.
 *
 * zerobus-local runs with --store null and a no_ack fault script, so every
 * record the library sends stays in flight. Two modes (one CTest test each, so
 * each measures a fresh process):
 *   records: 1,000,000 JSON records of 48 bytes with max_inflight_records =
 *            1,000,000 and max_inflight_bytes = 64 MiB: all 1,000,000 are
 *            accepted (48 MB < 64 MiB), the next one gets QUEUE_FULL (the
 *            record limit binds), 1,000,000 records are in flight;
 *   bytes:   1,000,000 records of 100 bytes offered with max_inflight_bytes =
 *            64 MiB: the byte limit binds after 671,088 records (64 MiB / 100),
 *            every later offer gets QUEUE_FULL.
 * Bound on the RSS growth from just after stream creation to the peak (all
 * accepted records written to the wire):
 *     in-flight payload bytes (<= max_inflight_bytes)
 *   + 64 bytes per in-flight record: the engine keeps one zb_item (40 bytes)
 *     per ingest call in a power-of-two ring (<= 2x slack on 40 bytes would be
 *     80; the ring grows by doubling, so for 1,000,000 items it is 2^20 x 40 =
 *     42 MB = 42 bytes per record) and 2-4 bytes of protobuf framing per entry
 *     in the arena; requests reference the arena (no copy)
 *   + 24 MiB fixed: gRPC's HTTP/2 write buffers and flow-control windows, glibc
 *     malloc arenas of the engine thread, and allocator rounding of the arena
 *     chunks.
 * Measured (RelWithDebInfo, this VM): records mode 87.5 MiB growth = 45.8 MiB
 * payload + 41.7 MiB (~44 B per record); bytes mode 94.0 MiB = 64.0 MiB payload
 * + 30.0 MiB (~47 B per record).
 * Under ASan/TSan (shadow memory, quarantine) the RSS bound is not asserted;
 * everything else is.
 */
#include <pthread.h>
#include <unistd.h>

#include "res_util.h"

#define MIB (1024LL * 1024LL)
#define OFFERED 1000000LL

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "records";
  int bytes_mode = strcmp(mode, "bytes") == 0;
  size_t rec_len = bytes_mode ? 100 : 48;
  const char *table = bytes_mode ? "res.mem.bytes" : "res.mem.records";
  long long max_bytes = 64 * MIB;

  zl_server srv;
  const char *args[] = {"--no-auth", "--store", "null", NULL};
  if (zl_start(&srv, args) != 0) {
    fprintf(stderr, "cannot start zerobus-local\n");
    return 1;
  }
  char script[256];
  snprintf(script, sizeof script, "{\"tables\":{\"%s\":[{\"no_ack\":true,\"repeat\":100}]}}",
           table);
  CHECK_INT(zl_set_faults(&srv, script), 0);

  zerobus_error *err = NULL;
  zerobus_sdk *sdk = NULL;
  REQUIRE_OK(zerobus_sdk_new(srv.endpoint, srv.http_url, NULL, &sdk, &err), &err);
  const char *kv[] = {"record_type",
                      "json",
                      "max_inflight_records",
                      "1000000",
                      "max_inflight_bytes",
                      "67108864",
                      "server_lack_of_ack_timeout_ms",
                      "3600000",
                      "recovery",
                      "false",
                      NULL};
  zerobus_options *o = res_options(kv);
  zerobus_stream *s = NULL;
  REQUIRE_OK(res_stream(sdk, table, o, &s, &err), &err);
  long long rss0 = res_rss_bytes();

  /* one payload buffer, rewritten per record: {"i":NNNNNNNNN,"p":"xxx..."} */
  char rec[128];
  long long accepted = 0, queue_full = 0;
  long long t0 = res_now_ms();
  for (long long i = 0; i < OFFERED; i++) {
    int n = snprintf(rec, sizeof rec, "{\"i\":\"%09lld\",\"p\":\"", i);
    memset(rec + n, 'x', rec_len - (size_t)n - 2);
    memcpy(rec + rec_len - 2, "\"}", 2);
    int64_t off = -1;
    zerobus_status rc = zerobus_stream_ingest(s, rec, rec_len, ZEROBUS_INGEST_NONBLOCK, &off, &err);
    if (rc == ZEROBUS_OK) {
      if (off != accepted) {
        fprintf(stderr, "offset %" PRId64 " for the %lld-th accepted record\n", off, accepted);
        res_failures++;
      }
      accepted++;
    } else {
      if (rc != ZEROBUS_ERR_QUEUE_FULL || !zerobus_error_retryable(err)) {
        fprintf(stderr, "record %lld: %s %s\n", i, zerobus_status_name(rc),
                zerobus_error_message(err));
        res_failures++;
      }
      zerobus_error_destroy(err);
      err = NULL;
      queue_full++;
      if (!bytes_mode) break;
    }
  }
  long long t_ingest = res_now_ms() - t0;
  if (!bytes_mode) {
    CHECK_INT(accepted, OFFERED);
    /* the 1,000,001st record: the record limit binds */
    int64_t off = -1;
    zerobus_status rc = zerobus_stream_ingest(s, rec, rec_len, ZEROBUS_INGEST_NONBLOCK, &off, &err);
    CHECK_INT(rc, ZEROBUS_ERR_QUEUE_FULL);
    zerobus_error_destroy(err);
    err = NULL;
  } else {
    long long expect = max_bytes / (long long)rec_len; /* 671,088 */
    CHECK(accepted >= expect - 1 && accepted <= expect + 1);
    CHECK_INT(accepted + queue_full, OFFERED);
  }
  zerobus_stream_stats st = res_stats(s);
  CHECK_INT(st.inflight_records, accepted);
  CHECK_INT(st.inflight_bytes, accepted * (long long)rec_len);
  CHECK_LE(st.inflight_bytes, max_bytes + (long long)rec_len);
  CHECK_INT(st.records_acked, 0);

  /* peak: wait until everything accepted is on the wire */
  long long deadline = res_now_ms() + 20000;
  while (res_now_ms() < deadline) {
    st = res_stats(s);
    if (st.records_sent >= accepted) break;
    res_sleep_ms(50);
  }
  CHECK_INT(st.records_sent, accepted);
  res_sleep_ms(300);
  long long rss1 = res_rss_bytes();
  long long growth = rss1 - rss0;
  long long bound = accepted * (long long)rec_len + accepted * 64 + 24 * MIB;
  printf("mode=%s record=%zuB accepted=%lld queue_full=%lld inflight_bytes=%" PRId64
         " ingest=%lldms sent=%" PRId64 " requests=%" PRId64 "\n",
         mode, rec_len, accepted, queue_full, st.inflight_bytes, t_ingest, st.records_sent,
         st.requests_sent);
  printf(
      "rss before=%.1f MiB peak=%.1f MiB growth=%.1f MiB bound=%.1f MiB (payload %.1f MiB + 64 B x "
      "%lld + 24 MiB)%s\n",
      rss0 / (double)MIB, rss1 / (double)MIB, growth / (double)MIB, bound / (double)MIB,
      accepted * (double)rec_len / MIB, accepted,
      RSS_CHECKED ? "" : " [not asserted under a sanitizer]");
  if (RSS_CHECKED) CHECK_LE(growth, bound);

  /* destroy with a million records in flight: quick, and nothing leaks */
  long long td = res_now_ms();
  zerobus_stream_destroy(s);
  long long destroy_ms = res_now_ms() - td;
  printf("destroy with %lld records in flight: %lld ms\n", accepted, destroy_ms);
  CHECK_LE(destroy_ms, 5000);
  zerobus_options_destroy(o);
  zerobus_sdk_destroy(sdk);
  CHECK_INT(zl_stop(&srv), 0);
  unlink(srv.db_path);
  printf("%s: %s\n", argv[0], res_failures ? "FAIL" : "PASS");
  return res_failures ? 1 : 0;
}
