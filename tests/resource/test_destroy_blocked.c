/*
 * test_destroy_blocked - destroying a stream while other threads are blocked in
 * it returns them ZEROBUS_ERR_STREAM_CLOSED, promptly and without a crash.
 *
 * The server never acks (no_ack), max_inflight_records is 100: after 100
 * records a blocking ingest waits for room. Then, per round:
 *   3 threads block in zerobus_stream_ingest (at the in-flight limit),
 *   2 threads block in zerobus_stream_flush,
 *   1 thread blocks in zerobus_stream_wait_for_offset(0, no timeout override),
 * the main thread checks that none has returned after 300 ms, destroys the
 * stream, and then every thread must have returned STREAM_CLOSED within 2 s;
 * destroy itself must return within 5 s and call user_data_free exactly once.
 * 10 rounds, alternating callbacks by poll and by a dispatcher thread (ASan and
 * TSan runs of this test are the interesting ones).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "res_util.h"

enum { OP_INGEST, OP_FLUSH, OP_WAIT };

typedef struct worker {
  zerobus_stream *s;
  int op;
  atomic_int done;
  zerobus_status rc;
  int32_t err_code;
  pthread_t th;
} worker;

static atomic_int g_user_data_freed;

static void user_data_free(void *ud) {
  (void)ud;
  atomic_fetch_add(&g_user_data_freed, 1);
}

static void *worker_main(void *arg) {
  worker *w = arg;
  zerobus_error *err = NULL;
  if (w->op == OP_INGEST) {
    const char rec[] = "{\"blocked\":true}";
    int64_t off;
    w->rc = zerobus_stream_ingest(w->s, rec, sizeof rec - 1, 0, &off, &err);
  } else if (w->op == OP_FLUSH) {
    w->rc = zerobus_stream_flush(w->s, &err);
  } else {
    w->rc = zerobus_stream_wait_for_offset(w->s, 0, -1, &err);
  }
  w->err_code = zerobus_error_code(err);
  zerobus_error_destroy(err);
  atomic_store(&w->done, 1);
  return NULL;
}

static int32_t headers_cb(void *ud, zerobus_headers *h) {
  return res_headers(ud, h);
}

int main(int argc, char **argv) {
  int rounds = argc > 1 ? atoi(argv[1]) : 10;
  zl_server srv;
  const char *args[] = {"--no-auth", "--store", "null", NULL};
  if (zl_start(&srv, args) != 0) {
    fprintf(stderr, "cannot start zerobus-local\n");
    return 1;
  }
  static const char *table = "res.destroy.t";
  CHECK_INT(
      zl_set_faults(&srv, "{\"tables\":{\"res.destroy.t\":[{\"no_ack\":true,\"repeat\":1000}]}}"),
      0);
  zerobus_error *err = NULL;
  zerobus_sdk *sdk = NULL;
  REQUIRE_OK(zerobus_sdk_new(srv.endpoint, srv.http_url, NULL, &sdk, &err), &err);

  long long worst_destroy = 0;
  for (int r = 0; r < rounds; r++) {
    const char *kv[] = {"record_type",
                        "json",
                        "max_inflight_records",
                        "100",
                        "server_lack_of_ack_timeout_ms",
                        "600000",
                        "flush_timeout_ms",
                        "600000",
                        "dispatch_thread",
                        (r % 2) ? "true" : "false",
                        NULL};
    zerobus_options *o = res_options(kv);
    zerobus_callbacks cb;
    zerobus_callbacks_init(&cb, sizeof cb);
    cb.user_data = (void *)table;
    cb.headers = headers_cb;
    cb.user_data_free = user_data_free;
    atomic_store(&g_user_data_freed, 0);
    zerobus_stream *s = NULL;
    REQUIRE_OK(zerobus_stream_create(sdk, table, NULL, 0, NULL, NULL, o, &cb, &s, &err), &err);
    const char rec[] = "{\"fill\":1}";
    for (int i = 0; i < 100; i++) {
      int64_t off;
      REQUIRE_OK(zerobus_stream_ingest(s, rec, sizeof rec - 1, 0, &off, &err), &err);
    }
    int64_t off;
    zerobus_status rc =
        zerobus_stream_ingest(s, rec, sizeof rec - 1, ZEROBUS_INGEST_NONBLOCK, &off, &err);
    CHECK_INT(rc, ZEROBUS_ERR_QUEUE_FULL);
    zerobus_error_destroy(err);
    err = NULL;

    worker w[6];
    int ops[6] = {OP_INGEST, OP_INGEST, OP_INGEST, OP_FLUSH, OP_FLUSH, OP_WAIT};
    for (int i = 0; i < 6; i++) {
      w[i].s = s;
      w[i].op = ops[i];
      atomic_init(&w[i].done, 0);
      w[i].rc = ZEROBUS_OK;
      pthread_create(&w[i].th, NULL, worker_main, &w[i]);
    }
    res_sleep_ms(300);
    for (int i = 0; i < 6; i++)
      if (atomic_load(&w[i].done)) {
        fprintf(stderr, "round %d: worker %d (op %d) returned %s before destroy\n", r, i, w[i].op,
                zerobus_status_name(w[i].rc));
        res_failures++;
      }
    long long t0 = res_now_ms();
    zerobus_stream_destroy(s);
    long long destroy_ms = res_now_ms() - t0;
    if (destroy_ms > worst_destroy) worst_destroy = destroy_ms;
    CHECK_LE(destroy_ms, 5000);
    CHECK_INT(atomic_load(&g_user_data_freed), 1);
    long long deadline = res_now_ms() + 2000;
    for (int i = 0; i < 6; i++) {
      while (!atomic_load(&w[i].done) && res_now_ms() < deadline) res_sleep_ms(5);
      if (!atomic_load(&w[i].done)) {
        fprintf(stderr, "round %d: worker %d (op %d) still blocked 2 s after destroy\n", r, i,
                w[i].op);
        res_failures++;
        continue; /* leave it: joining would hang the test */
      }
      pthread_join(w[i].th, NULL);
      if (w[i].rc != ZEROBUS_ERR_STREAM_CLOSED || w[i].err_code != ZEROBUS_ERR_STREAM_CLOSED) {
        fprintf(stderr,
                "round %d: worker %d (op %d) returned %s (error code %d), expected STREAM_CLOSED\n",
                r, i, w[i].op, zerobus_status_name(w[i].rc), w[i].err_code);
        res_failures++;
      }
    }
    zerobus_options_destroy(o);
  }
  printf("%d rounds: 6 blocked threads each got STREAM_CLOSED; slowest destroy %lld ms\n", rounds,
         worst_destroy);
  zerobus_sdk_destroy(sdk);
  CHECK_INT(zl_stop(&srv), 0);
  unlink(srv.db_path);
  printf("%s: %s\n", argv[0], res_failures ? "FAIL" : "PASS");
  return res_failures ? 1 : 0;
}
