/*
 * ingest_json - ingest N JSON records into a table through libzerobus and report
 * the throughput. The README's main job runs it against zerobus-local; point it at
 * Databricks by changing the endpoint, workspace URL and credentials.
 *
 * usage: ingest_json ENDPOINT WORKSPACE_URL TABLE [COUNT] [BATCH]
 *   credentials come from ZEROBUS_CLIENT_ID / ZEROBUS_CLIENT_SECRET
 *   BATCH = 1 (default) uses one ingest call per record; > 1 uses batch calls.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "zerobus_abi.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fail(const char *what, zerobus_error *err) {
  fprintf(stderr, "ingest_json: %s: %s (%s, retryable=%d)\n", what, zerobus_error_message(err),
          zerobus_status_name(zerobus_error_code(err)), (int)zerobus_error_retryable(err));
  zerobus_error_destroy(err);
  return 1;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s ENDPOINT WORKSPACE_URL TABLE [COUNT] [BATCH]\n", argv[0]);
    return 2;
  }
  const char *endpoint = argv[1], *workspace = argv[2], *table = argv[3];
  long count = argc > 4 ? atol(argv[4]) : 1000000;
  long batch = argc > 5 ? atol(argv[5]) : 1;
  if (count <= 0 || batch <= 0) {
    fprintf(stderr, "ingest_json: COUNT and BATCH must be positive\n");
    return 2;
  }
  const char *client_id = getenv("ZEROBUS_CLIENT_ID");
  const char *client_secret = getenv("ZEROBUS_CLIENT_SECRET");
  if (!client_id || !client_secret) {
    fprintf(stderr, "ingest_json: set ZEROBUS_CLIENT_ID and ZEROBUS_CLIENT_SECRET\n");
    return 2;
  }

  zerobus_error *err = NULL;
  zerobus_options *opts = NULL;
  zerobus_sdk *sdk = NULL;
  zerobus_stream *stream = NULL;
  if (zerobus_options_new(&opts) != ZEROBUS_OK) return 1;
  if (zerobus_options_set(opts, "record_type", "json", &err) != ZEROBUS_OK)
    return fail("options", err);
  if (zerobus_sdk_new(endpoint, workspace, NULL, &sdk, &err) != ZEROBUS_OK) return fail("sdk", err);
  if (zerobus_stream_create(sdk, table, NULL, 0, client_id, client_secret, opts, NULL, &stream,
                            &err) != ZEROBUS_OK)
    return fail("create stream", err);

  /* Records are generated up front so the timed loop measures the library only. */
  char(*recs)[96] = malloc((size_t)batch * sizeof *recs);
  const void **ptrs = malloc((size_t)batch * sizeof *ptrs);
  size_t *lens = malloc((size_t)batch * sizeof *lens);
  if (!recs || !ptrs || !lens) return 1;

  double t0 = now_s();
  int64_t offset = -1;
  for (long i = 0; i < count;) {
    long n = batch < count - i ? batch : count - i;
    for (long j = 0; j < n; j++) {
      int len =
          snprintf(recs[j], sizeof recs[j], "{\"id\":%ld,\"device\":\"sensor-%ld\",\"temp\":%ld}",
                   i + j, (i + j) % 64, 15 + (i + j) % 20);
      ptrs[j] = recs[j];
      lens[j] = (size_t)len;
    }
    zerobus_status rc =
        n == 1 ? zerobus_stream_ingest(stream, ptrs[0], lens[0], 0, &offset, &err)
               : zerobus_stream_ingest_batch(stream, ptrs, lens, (size_t)n, 0, &offset, &err);
    if (rc != ZEROBUS_OK) return fail("ingest", err);
    i += n;
  }
  double t_queued = now_s();
  if (zerobus_stream_flush(stream, &err) != ZEROBUS_OK) return fail("flush", err);
  double t1 = now_s();

  zerobus_stream_stats st;
  memset(&st, 0, sizeof st);
  st.struct_size = sizeof st;
  zerobus_stream_get_stats(stream, &st);
  if (zerobus_stream_close(stream, &err) != ZEROBUS_OK) return fail("close", err);
  zerobus_stream_destroy(stream);
  zerobus_sdk_destroy(sdk);
  zerobus_options_destroy(opts);
  free(recs);
  free(ptrs);
  free(lens);

  double secs = t1 - t0;
  printf("records: %ld\n", count);
  printf("ingest calls: %" PRId64 " (last offset %" PRId64 ")\n", offset + 1, offset);
  printf("requests sent: %" PRId64 ", acked records: %" PRId64 "\n", st.requests_sent,
         st.records_acked);
  printf("queued in %.3f s, durable in %.3f s\n", t_queued - t0, secs);
  printf("throughput: %.0f records/s, %.1f MB/s of payload\n", (double)count / secs,
         (double)st.bytes_acked / secs / 1e6);
  return st.records_acked == count ? 0 : 1;
}
