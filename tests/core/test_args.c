/* NULL and garbage arguments to every SDK/stream/event/record function: a clear
 * error code, never a crash. */
#include <stddef.h>

#include "core_test.h"

static void test_sdk_args(void) {
  zerobus_sdk *sdk = (zerobus_sdk *)1;
  zerobus_error *e = NULL;
  CHECK_ST(zerobus_sdk_new(NULL, "http://x", NULL, &sdk, &e), ZEROBUS_ERR_INVALID_ARGUMENT, &e);
  CHECK(sdk == NULL);
  CHECK(strlen(zerobus_error_message(e)) > 0);
  zerobus_error_destroy(e);
  CHECK_ST(zerobus_sdk_new("", "http://x", NULL, &sdk, &e), ZEROBUS_ERR_INVALID_ARGUMENT, &e);
  zerobus_error_destroy(e);
  CHECK_ST(zerobus_sdk_new("http://127.0.0.1:1", NULL, NULL, &sdk, &e),
           ZEROBUS_ERR_INVALID_ARGUMENT, &e);
  zerobus_error_destroy(e);
  CHECK_ST(zerobus_sdk_new("http://127.0.0.1:1", "http://x", NULL, NULL, &e),
           ZEROBUS_ERR_INVALID_ARGUMENT, &e);
  zerobus_error_destroy(e);
  static const char *bad_endpoints[] = {"ftp://x:1",       "http://",   "http://host:99999",
                                        "http://host:abc", "ht tp://x", "[::1"};
  for (size_t i = 0; i < sizeof bad_endpoints / sizeof *bad_endpoints; i++) {
    CHECK_ST(zerobus_sdk_new(bad_endpoints[i], "http://x", NULL, &sdk, &e),
             ZEROBUS_ERR_INVALID_ARGUMENT, &e);
    zerobus_error_destroy(e);
  }
  CHECK_ST(zerobus_sdk_new("http://127.0.0.1:1", "not a url", NULL, &sdk, &e),
           ZEROBUS_ERR_INVALID_ARGUMENT, &e);
  zerobus_error_destroy(e);
  /* TLS with an unreadable CA file: INVALID_OPTION */
  zerobus_options *o = opts_of((const char *[]){"tls_ca_file=/nonexistent/ca.pem", NULL});
  CHECK_ST(zerobus_sdk_new("https://127.0.0.1:1", "https://x", o, &sdk, &e),
           ZEROBUS_ERR_INVALID_OPTION, &e);
  zerobus_error_destroy(e);
  zerobus_options_destroy(o);
  /* a stream option given to the SDK is a default for its streams: fine */
  o = opts_of((const char *[]){"max_inflight_records=7", NULL});
  CHECK_OK(zerobus_sdk_new("127.0.0.1:1", "https://x", o, &sdk, &e), &e);
  zerobus_options_destroy(o);
  zerobus_sdk_destroy(sdk);
  zerobus_sdk_destroy(NULL);
}

static void test_create_args(zl_server *srv) {
  zerobus_sdk *sdk = sdk_for(srv, NULL);
  zerobus_stream *s = (zerobus_stream *)1;
  zerobus_error *e = NULL;
  zerobus_options *json = opts_of((const char *[]){"record_type=json", NULL});
  CHECK_ST(zerobus_stream_create(NULL, TABLE, NULL, 0, "a", "b", json, NULL, &s, &e),
           ZEROBUS_ERR_INVALID_ARGUMENT, &e);
  CHECK(s == NULL);
  zerobus_error_destroy(e);
  CHECK_ST(zerobus_stream_create(sdk, TABLE, NULL, 0, "a", "b", json, NULL, NULL, &e),
           ZEROBUS_ERR_INVALID_ARGUMENT, &e);
  zerobus_error_destroy(e);
  static const char *bad_tables[] = {NULL, "", "a.b", "a..c", ".b.c", "a.b.c.d", "a.b."};
  for (size_t i = 0; i < sizeof bad_tables / sizeof *bad_tables; i++) {
    CHECK_ST(zerobus_stream_create(sdk, bad_tables[i], NULL, 0, "a", "b", json, NULL, &s, &e),
             ZEROBUS_ERR_INVALID_ARGUMENT, &e);
    zerobus_error_destroy(e);
  }
  /* no credentials and no headers provider */
  CHECK_ST(zerobus_stream_create(sdk, TABLE, NULL, 0, NULL, "b", json, NULL, &s, &e),
           ZEROBUS_ERR_INVALID_ARGUMENT, &e);
  zerobus_error_destroy(e);
  CHECK_ST(zerobus_stream_create(sdk, TABLE, NULL, 0, "a", "", json, NULL, &s, &e),
           ZEROBUS_ERR_INVALID_ARGUMENT, &e);
  zerobus_error_destroy(e);
  /* an SDK-scope option on a stream */
  zerobus_options *sdkopt = opts_of((const char *[]){"application_name=x", NULL});
  CHECK_ST(zerobus_stream_create(sdk, TABLE, NULL, 0, "a", "b", sdkopt, NULL, &s, &e),
           ZEROBUS_ERR_INVALID_OPTION, &e);
  zerobus_error_destroy(e);
  zerobus_options_destroy(sdkopt);
  /* callbacks with a garbage struct_size */
  zerobus_callbacks cb;
  memset(&cb, 0, sizeof cb);
  cb.struct_size = 3;
  CHECK_ST(zerobus_stream_create(sdk, TABLE, NULL, 0, "a", "b", json, &cb, &s, &e),
           ZEROBUS_ERR_INVALID_ARGUMENT, &e);
  zerobus_error_destroy(e);
  /* an old, shorter callback table (up to on_error) is accepted */
  zerobus_callbacks_init(&cb, offsetof(zerobus_callbacks, on_log));
  CHECK_OK(
      zerobus_stream_create(sdk, TABLE, NULL, 0, "test-client", "test-secret", json, &cb, &s, &e),
      &e);
  zerobus_stream_destroy(s);
  /* recreate of an active stream: INVALID_STATE */
  CHECK_OK(
      zerobus_stream_create(sdk, TABLE, NULL, 0, "test-client", "test-secret", json, NULL, &s, &e),
      &e);
  zerobus_stream *s2 = (zerobus_stream *)1;
  CHECK_ST(zerobus_stream_recreate(s, NULL, &s2, &e), ZEROBUS_ERR_INVALID_STATE, &e);
  CHECK(s2 == NULL);
  zerobus_error_destroy(e);
  CHECK_ST(zerobus_stream_recreate(NULL, NULL, &s2, &e), ZEROBUS_ERR_INVALID_ARGUMENT, &e);
  zerobus_error_destroy(e);
  CHECK_ST(zerobus_stream_recreate(s, NULL, NULL, &e), ZEROBUS_ERR_INVALID_ARGUMENT, &e);
  zerobus_error_destroy(e);
  zerobus_stream_destroy(s);
  zerobus_options_destroy(json);
  zerobus_sdk_destroy(sdk); /* before the stream: fine either way */
}

static void test_stream_args(zl_server *srv) {
  zerobus_sdk *sdk = sdk_for(srv, NULL);
  zerobus_stream *s = NULL;
  zerobus_error *e = NULL;
  CHECK_OK(json_stream(sdk, TABLE, NULL, NULL, &s, &e), &e);
  zerobus_sdk_destroy(sdk); /* the stream keeps the SDK alive */
  int64_t off = 5;
  CHECK_ST(zerobus_stream_ingest(NULL, "{}", 2, 0, &off, &e), ZEROBUS_ERR_INVALID_ARGUMENT, &e);
  CHECK_EQ(off, -1);
  zerobus_error_destroy(e);
  CHECK_ST(zerobus_stream_ingest(s, NULL, 2, 0, &off, &e), ZEROBUS_ERR_INVALID_ARGUMENT, &e);
  zerobus_error_destroy(e);
  CHECK_OK(zerobus_stream_ingest(s, "{}", 2, 0, NULL, NULL), &e); /* NULL outs are fine */
  CHECK_ST(zerobus_stream_ingest(s, "{}", 2, 0x80, &off, &e), ZEROBUS_ERR_INVALID_ARGUMENT, &e);
  zerobus_error_destroy(e);
  CHECK_ST(zerobus_stream_ingest_batch(NULL, NULL, NULL, 1, 0, &off, &e),
           ZEROBUS_ERR_INVALID_ARGUMENT, &e);
  zerobus_error_destroy(e);
  CHECK_ST(zerobus_stream_ingest_batch(s, NULL, NULL, 1, 0, &off, &e), ZEROBUS_ERR_INVALID_ARGUMENT,
           &e);
  zerobus_error_destroy(e);
  const void *d[2] = {"{}", NULL};
  size_t l[2] = {2, 2};
  CHECK_ST(zerobus_stream_ingest_batch(s, d, l, 2, 0, &off, &e), ZEROBUS_ERR_INVALID_ARGUMENT, &e);
  zerobus_error_destroy(e);
  CHECK_ST(zerobus_stream_ingest_nocopy(NULL, "{}", 2, 0, NULL, NULL, &off, &e),
           ZEROBUS_ERR_INVALID_ARGUMENT, &e);
  zerobus_error_destroy(e);
  CHECK_ST(zerobus_stream_wait_for_offset(NULL, 0, 0, &e), ZEROBUS_ERR_INVALID_ARGUMENT, &e);
  zerobus_error_destroy(e);
  CHECK_ST(zerobus_stream_wait_for_offset(s, -5, 0, &e), ZEROBUS_ERR_INVALID_ARGUMENT, &e);
  zerobus_error_destroy(e);
  CHECK_ST(zerobus_stream_wait_for_offset(s, 1000, 0, &e), ZEROBUS_ERR_INVALID_ARGUMENT, &e);
  zerobus_error_destroy(e);
  CHECK_ST(zerobus_stream_flush(NULL, &e), ZEROBUS_ERR_INVALID_ARGUMENT, &e);
  zerobus_error_destroy(e);
  CHECK_ST(zerobus_stream_close(NULL, &e), ZEROBUS_ERR_INVALID_ARGUMENT, &e);
  zerobus_error_destroy(e);
  zerobus_records *r = (zerobus_records *)1;
  CHECK_ST(zerobus_stream_get_unacked(NULL, &r, &e), ZEROBUS_ERR_INVALID_ARGUMENT, &e);
  zerobus_error_destroy(e);
  CHECK_ST(zerobus_stream_get_unacked(s, NULL, &e), ZEROBUS_ERR_INVALID_ARGUMENT, &e);
  zerobus_error_destroy(e);
  CHECK_EQ(zerobus_stream_poll(NULL, 0), -ZEROBUS_ERR_INVALID_ARGUMENT);
  size_t n = 9;
  zerobus_event ev[2];
  CHECK_ST(zerobus_stream_poll_events(NULL, ev, 2, sizeof ev[0], 0, &n, &e),
           ZEROBUS_ERR_INVALID_ARGUMENT, &e);
  zerobus_error_destroy(e);
  CHECK_ST(zerobus_stream_poll_events(s, NULL, 2, sizeof ev[0], 0, &n, &e),
           ZEROBUS_ERR_INVALID_ARGUMENT, &e);
  zerobus_error_destroy(e);
  CHECK_ST(zerobus_stream_poll_events(s, ev, 2, sizeof ev[0], 0, NULL, &e),
           ZEROBUS_ERR_INVALID_ARGUMENT, &e);
  zerobus_error_destroy(e);
  CHECK_OK(zerobus_stream_poll_events(s, ev, 0, sizeof ev[0], 0, &n, &e), &e);
  CHECK_EQ(n, 0);
  CHECK_EQ(zerobus_stream_wakeup_fd(NULL), -1);
  CHECK(zerobus_stream_state(NULL) < 0);
  CHECK(zerobus_stream_id(NULL) == NULL);
  CHECK(zerobus_stream_table_name(NULL) == NULL);
  zerobus_stream_stats st;
  CHECK_EQ(zerobus_stream_get_stats(NULL, &st), ZEROBUS_ERR_INVALID_ARGUMENT);
  CHECK_EQ(zerobus_stream_get_stats(s, NULL), ZEROBUS_ERR_INVALID_ARGUMENT);
  st.struct_size = 0;
  CHECK_EQ(zerobus_stream_get_stats(s, &st), ZEROBUS_ERR_INVALID_ARGUMENT);
  /* an older, shorter stats struct: only covered fields are written */
  unsigned char buf[sizeof(zerobus_stream_stats) + 16];
  memset(buf, 0xab, sizeof buf);
  zerobus_stream_stats *old = (zerobus_stream_stats *)buf;
  old->struct_size = (uint32_t)offsetof(zerobus_stream_stats, bytes_queued);
  CHECK_EQ(zerobus_stream_get_stats(s, old), ZEROBUS_OK);
  CHECK_EQ(old->records_queued, 1);
  CHECK_EQ(buf[offsetof(zerobus_stream_stats, bytes_queued)], 0xab);
  zerobus_error *le = (zerobus_error *)1;
  CHECK_EQ(zerobus_stream_last_error(NULL, &le), ZEROBUS_ERR_INVALID_ARGUMENT);
  CHECK_EQ(zerobus_stream_last_error(s, NULL), ZEROBUS_ERR_INVALID_ARGUMENT);
  CHECK_EQ(zerobus_stream_last_error(s, &le), ZEROBUS_OK);
  CHECK(le == NULL);
  /* records accessors */
  CHECK_EQ(zerobus_records_count(NULL), 0);
  CHECK_EQ(zerobus_records_batch_count(NULL), 0);
  const void *data;
  size_t len;
  CHECK_EQ(zerobus_records_get(NULL, 0, &data, &len), ZEROBUS_ERR_INVALID_ARGUMENT);
  CHECK_EQ(zerobus_records_batch(NULL, 0, NULL, NULL, NULL), ZEROBUS_ERR_INVALID_ARGUMENT);
  zerobus_records_destroy(NULL);
  zerobus_stream_destroy(NULL);
  CHECK_OK(zerobus_stream_close(s, &e), &e);
  CHECK_OK(zerobus_stream_get_unacked(s, &r, &e), &e);
  CHECK_EQ(zerobus_records_get(r, 0, &data, &len), ZEROBUS_ERR_INVALID_ARGUMENT);
  CHECK_EQ(zerobus_records_batch(r, 0, NULL, NULL, NULL), ZEROBUS_ERR_INVALID_ARGUMENT);
  zerobus_records_destroy(r);
  zerobus_stream_destroy(s);
}

/* destroy without close, right after ingest: fast, no crash, nothing leaks */
static void test_destroy_unclosed(zl_server *srv) {
  zerobus_sdk *sdk = sdk_for(srv, NULL);
  zerobus_stream *s = NULL;
  zerobus_error *e = NULL;
  CHECK_OK(json_stream(sdk, TABLE, NULL, NULL, &s, &e), &e);
  ingest_n(s, 0, 1000);
  long long t0 = now_ms();
  zerobus_stream_destroy(s);
  CHECK(now_ms() - t0 < 500 * slack());
  zerobus_sdk_destroy(sdk);
}

int main(void) {
  zl_server srv;
  start_server(&srv, NULL);
  RUN(test_sdk_args);
  test_create_args(&srv);
  fprintf(stderr, "== create args ok\n");
  test_stream_args(&srv);
  fprintf(stderr, "== stream args ok\n");
  test_destroy_unclosed(&srv);
  zl_stop(&srv);
  fprintf(stderr, "all passed\n");
  return 0;
}
