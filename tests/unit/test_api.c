/* Public entry points through the shared library: versions, zerobus_get_api and
 * zerobus_callbacks_init. */
#include <stddef.h>

#include "zerobus_abi.h"
#include "zb_test.h"

static void versions(void) {
  CHECK_STR(zerobus_version(), ZEROBUS_VERSION_STR);
  CHECK_STR(zerobus_version(), "0.1.0");
  CHECK_INT(zerobus_abi_version(), ZEROBUS_ABI_MAJOR);
  CHECK_INT(ZEROBUS_VERSION,
            (ZEROBUS_VERSION_MAJOR << 16) | (ZEROBUS_VERSION_MINOR << 8) | ZEROBUS_VERSION_PATCH);
}

static void api_table_has_every_function(void) {
  CHECK(zerobus_get_api(0) == NULL);
  CHECK(zerobus_get_api(2) == NULL);
  CHECK(zerobus_get_api(-1) == NULL);
  const zerobus_api *api = zerobus_get_api(ZEROBUS_ABI_MAJOR);
  CHECK(api != NULL);
  if (!api) return;
  CHECK(api == zerobus_get_api(1)); /* static storage */
  CHECK_INT(api->struct_size, sizeof(zerobus_api));
  CHECK_INT(api->abi_major, 1);
  /* Every member, in header order, is the exported function of that name. */
#define SAME(member, fn) CHECK((const void *)(size_t)api->member == (const void *)(size_t)fn)
  SAME(version, zerobus_version);
  SAME(abi_version, zerobus_abi_version);
  SAME(status_name, zerobus_status_name);
  SAME(status_str, zerobus_status_str);
  SAME(error_code, zerobus_error_code);
  SAME(error_message, zerobus_error_message);
  SAME(error_retryable, zerobus_error_retryable);
  SAME(error_grpc_status, zerobus_error_grpc_status);
  SAME(error_http_status, zerobus_error_http_status);
  SAME(error_clone, zerobus_error_clone);
  SAME(error_destroy, zerobus_error_destroy);
  SAME(options_new, zerobus_options_new);
  SAME(options_destroy, zerobus_options_destroy);
  SAME(options_set, zerobus_options_set);
  SAME(options_get, zerobus_options_get);
  SAME(option_count, zerobus_option_count);
  SAME(option_info, zerobus_option_info);
  SAME(headers_add, zerobus_headers_add);
  SAME(headers_fail, zerobus_headers_fail);
  SAME(callbacks_init, zerobus_callbacks_init);
  SAME(sdk_new, zerobus_sdk_new);
  SAME(sdk_destroy, zerobus_sdk_destroy);
  SAME(stream_create, zerobus_stream_create);
  SAME(stream_recreate, zerobus_stream_recreate);
  SAME(stream_ingest, zerobus_stream_ingest);
  SAME(stream_ingest_batch, zerobus_stream_ingest_batch);
  SAME(stream_ingest_nocopy, zerobus_stream_ingest_nocopy);
  SAME(stream_wait_for_offset, zerobus_stream_wait_for_offset);
  SAME(stream_flush, zerobus_stream_flush);
  SAME(stream_close, zerobus_stream_close);
  SAME(stream_destroy, zerobus_stream_destroy);
  SAME(stream_get_unacked, zerobus_stream_get_unacked);
  SAME(records_count, zerobus_records_count);
  SAME(records_get, zerobus_records_get);
  SAME(records_batch_count, zerobus_records_batch_count);
  SAME(records_batch, zerobus_records_batch);
  SAME(records_destroy, zerobus_records_destroy);
  SAME(stream_poll, zerobus_stream_poll);
  SAME(stream_poll_events, zerobus_stream_poll_events);
  SAME(stream_wakeup_fd, zerobus_stream_wakeup_fd);
  SAME(stream_state, zerobus_stream_state);
  SAME(stream_id, zerobus_stream_id);
  SAME(stream_table_name, zerobus_stream_table_name);
  SAME(stream_get_stats, zerobus_stream_get_stats);
  SAME(stream_last_error, zerobus_stream_last_error);
  SAME(stream_wake, zerobus_stream_wake);
#undef SAME
  /* The last member ends the struct: nothing was left out. */
  CHECK_INT(offsetof(zerobus_api, stream_wake) + sizeof api->stream_wake, sizeof(zerobus_api));
  /* Calls through the table work. */
  CHECK_STR(api->version(), "0.1.0");
  CHECK_STR(api->status_name(ZEROBUS_ERR_TIMEOUT), "ZEROBUS_ERR_TIMEOUT");
  CHECK(api->option_count() > 20);
}

static void callbacks_init_respects_size(void) {
  zerobus_callbacks cb;
  memset(&cb, 0xab, sizeof cb);
  zerobus_callbacks_init(&cb, sizeof cb);
  CHECK_INT(cb.struct_size, sizeof cb);
  CHECK(cb.user_data == NULL && cb.on_ack == NULL && cb.on_error == NULL && cb.on_log == NULL &&
        cb.headers == NULL && cb.user_data_free == NULL && cb.on_ack_range == NULL);
  /* An older caller's smaller struct: only its bytes are touched. */
  size_t old_size = offsetof(zerobus_callbacks, on_log);
  memset(&cb, 0xab, sizeof cb);
  zerobus_callbacks_init(&cb, old_size);
  CHECK_INT(cb.struct_size, old_size);
  CHECK(cb.user_data == NULL && cb.on_ack == NULL && cb.on_error == NULL);
  unsigned char tail[sizeof cb];
  memset(tail, 0xab, sizeof tail);
  CHECK(memcmp((char *)&cb + old_size, tail, sizeof cb - old_size) == 0);
  /* A newer caller's larger struct: struct_size says what the caller has. */
  struct {
    zerobus_callbacks cb;
    void *future_slot;
  } big;
  memset(&big, 0xab, sizeof big);
  zerobus_callbacks_init(&big.cb, sizeof big);
  CHECK_INT(big.cb.struct_size, sizeof big);
  CHECK(big.cb.on_ack_range == NULL);
  zerobus_callbacks_init(NULL, sizeof cb);
}

int main(void) {
  RUN(versions);
  RUN(api_table_has_every_function);
  RUN(callbacks_init_respects_size);
  TEST_MAIN_END();
}
