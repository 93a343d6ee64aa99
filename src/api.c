/*
 * api.c - version functions, zerobus_callbacks_init and the zerobus_get_api table
 * (every exported function, in the member order of zerobus_api; append-only).
 */
#include <string.h>

#include "internal.h"

const char *zerobus_version(void) {
  return ZEROBUS_VERSION_STR;
}

int32_t zerobus_abi_version(void) {
  return ZEROBUS_ABI_MAJOR;
}

void zerobus_callbacks_init(zerobus_callbacks *cb, size_t size) {
  if (!cb) return;
  /* Zero only what the caller's struct holds: an older caller has a smaller one. */
  memset(cb, 0, size < sizeof *cb ? size : sizeof *cb);
  if (size >= sizeof cb->struct_size) cb->struct_size = (uint32_t)size;
}

static const zerobus_api k_api_v1 = {
    .struct_size = sizeof(zerobus_api),
    .abi_major = ZEROBUS_ABI_MAJOR,
    .version = zerobus_version,
    .abi_version = zerobus_abi_version,
    .status_name = zerobus_status_name,
    .status_str = zerobus_status_str,
    .error_code = zerobus_error_code,
    .error_message = zerobus_error_message,
    .error_retryable = zerobus_error_retryable,
    .error_grpc_status = zerobus_error_grpc_status,
    .error_http_status = zerobus_error_http_status,
    .error_clone = zerobus_error_clone,
    .error_destroy = zerobus_error_destroy,
    .options_new = zerobus_options_new,
    .options_destroy = zerobus_options_destroy,
    .options_set = zerobus_options_set,
    .options_get = zerobus_options_get,
    .option_count = zerobus_option_count,
    .option_info = zerobus_option_info,
    .headers_add = zerobus_headers_add,
    .headers_fail = zerobus_headers_fail,
    .callbacks_init = zerobus_callbacks_init,
    .sdk_new = zerobus_sdk_new,
    .sdk_destroy = zerobus_sdk_destroy,
    .stream_create = zerobus_stream_create,
    .stream_recreate = zerobus_stream_recreate,
    .stream_ingest = zerobus_stream_ingest,
    .stream_ingest_batch = zerobus_stream_ingest_batch,
    .stream_ingest_nocopy = zerobus_stream_ingest_nocopy,
    .stream_wait_for_offset = zerobus_stream_wait_for_offset,
    .stream_flush = zerobus_stream_flush,
    .stream_close = zerobus_stream_close,
    .stream_destroy = zerobus_stream_destroy,
    .stream_get_unacked = zerobus_stream_get_unacked,
    .records_count = zerobus_records_count,
    .records_get = zerobus_records_get,
    .records_batch_count = zerobus_records_batch_count,
    .records_batch = zerobus_records_batch,
    .records_destroy = zerobus_records_destroy,
    .stream_poll = zerobus_stream_poll,
    .stream_poll_events = zerobus_stream_poll_events,
    .stream_wakeup_fd = zerobus_stream_wakeup_fd,
    .stream_state = zerobus_stream_state,
    .stream_id = zerobus_stream_id,
    .stream_table_name = zerobus_stream_table_name,
    .stream_get_stats = zerobus_stream_get_stats,
    .stream_last_error = zerobus_stream_last_error,
    .stream_wake = zerobus_stream_wake,
};

const zerobus_api *zerobus_get_api(int32_t abi_major) {
  return abi_major == ZEROBUS_ABI_MAJOR ? &k_api_v1 : NULL;
}
