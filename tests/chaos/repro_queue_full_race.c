/*
 * repro_queue_full_race - regression test for a data race found by the chaos
 * harness under ThreadSanitizer (src/stream.c, the QUEUE_FULL branch of the
 * internal ingest() unlocked stream->mu and then formatted the error message
 * from s->inflight_records / s->inflight_bytes, which the engine thread writes
 * in on_ack() under stream->mu; fixed by reading them before unlocking).
 *
 * Two producers hammer a stream with a 16-record window using non-blocking
 * ingest (most calls hit QUEUE_FULL) while zerobus-local acks normally; the
 * engine thread updates the in-flight counters on every ack. In a TSan build the
 * race was reported (exit 66) before the fix; in any build the test also checks the functional
 * outcome exactly: every accepted record is acked at flush and stored once.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "zerobus_abi.h"
#include "zl_harness.h"

static zerobus_stream *g_s;
static atomic_llong g_accepted, g_full;
static atomic_int g_stop;

static int32_t headers(void *ud, zerobus_headers *h) {
  (void)ud;
  zerobus_headers_add(h, "authorization", "Bearer repro");
  return zerobus_headers_add(h, "x-databricks-zerobus-table-name", "repro.qf.t");
}

static void *producer(void *arg) {
  (void)arg;
  const char rec[] = "{\"x\":1}";
  while (!atomic_load(&g_stop)) {
    zerobus_error *err = NULL;
    int64_t off;
    zerobus_status rc =
        zerobus_stream_ingest(g_s, rec, sizeof rec - 1, ZEROBUS_INGEST_NONBLOCK, &off, &err);
    if (rc == ZEROBUS_OK)
      atomic_fetch_add(&g_accepted, 1);
    else if (rc == ZEROBUS_ERR_QUEUE_FULL)
      atomic_fetch_add(&g_full, 1);
    else {
      fprintf(stderr, "ingest: %s %s\n", zerobus_status_name(rc), zerobus_error_message(err));
      exit(1);
    }
    zerobus_error_destroy(err);
  }
  return NULL;
}

int main(void) {
  zl_server srv;
  const char *args[] = {"--no-auth", NULL};
  if (zl_start(&srv, args) != 0) return 1;
  zerobus_error *err = NULL;
  zerobus_sdk *sdk = NULL;
  zerobus_options *o = NULL;
  zerobus_options_new(&o);
  zerobus_options_set(o, "record_type", "json", NULL);
  zerobus_options_set(o, "max_inflight_records", "16", NULL);
  if (zerobus_sdk_new(srv.endpoint, srv.http_url, NULL, &sdk, &err) != ZEROBUS_OK) return 1;
  zerobus_callbacks cb;
  zerobus_callbacks_init(&cb, sizeof cb);
  cb.headers = headers;
  if (zerobus_stream_create(sdk, "repro.qf.t", NULL, 0, NULL, NULL, o, &cb, &g_s, &err) !=
      ZEROBUS_OK) {
    fprintf(stderr, "create: %s\n", zerobus_error_message(err));
    return 1;
  }
  pthread_t t[2];
  for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, producer, NULL);
  sleep(2);
  atomic_store(&g_stop, 1);
  for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
  int bad = 0;
  if (zerobus_stream_flush(g_s, &err) != ZEROBUS_OK) {
    fprintf(stderr, "flush: %s\n", zerobus_error_message(err));
    bad = 1;
  }
  zerobus_stream_stats st;
  memset(&st, 0, sizeof st);
  st.struct_size = sizeof st;
  zerobus_stream_get_stats(g_s, &st);
  long long acc = atomic_load(&g_accepted);
  if (st.records_acked != acc || st.records_queued != acc || st.inflight_records != 0) {
    fprintf(stderr, "accepted %lld, queued %lld, acked %lld, inflight %lld\n", acc,
            (long long)st.records_queued, (long long)st.records_acked,
            (long long)st.inflight_records);
    bad = 1;
  }
  if (zerobus_stream_close(g_s, &err) != ZEROBUS_OK) bad = 1;
  zerobus_stream_destroy(g_s);
  zerobus_sdk_destroy(sdk);
  zerobus_options_destroy(o);
  zl_stop(&srv);
  long long rows = zl_row_count(&srv, "repro.qf.t");
  if (rows != acc) {
    fprintf(stderr, "stored %lld rows, accepted %lld\n", rows, acc);
    bad = 1;
  }
  unlink(srv.db_path);
  printf("accepted=%lld queue_full=%lld acked=%lld stored=%lld: %s\n", acc,
         (long long)atomic_load(&g_full), (long long)st.records_acked, rows, bad ? "FAIL" : "PASS");
  return bad;
}
