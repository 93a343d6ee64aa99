/*
 * zerobus_abi.h - the stable C ABI of libzerobus (libzerobus.so.1).
 *
 * libzerobus is a client for the Zerobus ingest protocol: a gRPC bidirectional
 * stream that writes records into Databricks Delta tables. This header is the
 * whole public contract; Python, Go, Java and Node.js bindings consume it.
 *
 * General rules (they hold for every function unless its comment says otherwise):
 *  - Every fallible function returns a zerobus_status (ZEROBUS_OK == 0). Details
 *    come back through an optional `zerobus_error **err` out-parameter: when it is
 *    non-NULL and the call fails, *err receives a new error object the caller owns
 *    and frees with zerobus_error_destroy(). On success *err is set to NULL.
 *    There is no thread-local "last error".
 *  - Objects are opaque, created and destroyed by the library. Every _destroy
 *    function accepts NULL. Never free() a library object.
 *  - Strings passed in are NUL-terminated UTF-8 and copied by the library before
 *    the call returns; the caller keeps ownership. Record payloads are copied too
 *    (unless the explicit zero-copy variant is used) and need no NUL terminator.
 *  - Strings returned as `const char *` belong to the library; their lifetime is
 *    stated on each function.
 *  - Timeouts are in milliseconds; a negative timeout means "the stream's default"
 *    where a default exists, and "forever" otherwise (stated per function).
 *  - Do not use an SDK or stream created before fork() in the child process.
 *
 * Threads: all functions are thread-safe unless stated. Callbacks (acks, errors,
 * logs) are never run on the library's I/O threads: they run in
 * zerobus_stream_poll() on the caller's thread, or on a per-stream dispatcher
 * thread when the stream option "dispatch_thread" is true. The headers provider is
 * the one callback run on a library thread (see zerobus_callbacks.headers).
 * zerobus_callbacks.on_thread_start/on_thread_stop bracket every library thread
 * that runs callbacks (to attach it to a VM, e.g. JNI AttachCurrentThread).
 *
 * Size-prefixed structs (first member `uint32_t struct_size`) are how the ABI
 * grows: the caller sets struct_size to sizeof as it compiled it; the library
 * reads or fills only the members both sides know, and where it fills a struct
 * for the caller it writes back struct_size = min(caller's size, library's
 * size), so a newer caller on an older library knows which trailing members are
 * real.
 */
#ifndef ZEROBUS_ABI_H
#define ZEROBUS_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(ZEROBUS_BUILDING_LIBRARY) && defined(__GNUC__)
#define ZEROBUS_API __attribute__((visibility("default")))
#else
#define ZEROBUS_API
#endif

/* ------------------------------------------------------------------------ */
/* Versions                                                                  */
/* ------------------------------------------------------------------------ */

#define ZEROBUS_VERSION_MAJOR 0
#define ZEROBUS_VERSION_MINOR 1
#define ZEROBUS_VERSION_PATCH 0
/* (major << 16) | (minor << 8) | patch */
#define ZEROBUS_VERSION 0x000100
#define ZEROBUS_VERSION_STR "0.1.0"
/* The ABI generation; the SONAME is libzerobus.so.<ZEROBUS_ABI_MAJOR>. */
#define ZEROBUS_ABI_MAJOR 1

/* Library version string, e.g. "0.1.0". Static storage; never NULL. */
ZEROBUS_API const char *zerobus_version(void);
/* ZEROBUS_ABI_MAJOR of the loaded library. */
ZEROBUS_API int32_t zerobus_abi_version(void);

/* ------------------------------------------------------------------------ */
/* Status codes and errors                                                   */
/* ------------------------------------------------------------------------ */

/* Values are fixed forever; new codes are appended. */
typedef enum zerobus_status {
  ZEROBUS_OK = 0,
  /* A NULL handle, NULL pointer, empty name or otherwise unusable argument. */
  ZEROBUS_ERR_INVALID_ARGUMENT = 1,
  /* The call is not valid in the object's current state (e.g. get_unacked on an
   * active stream). */
  ZEROBUS_ERR_INVALID_STATE = 2,
  /* The stream is closed, failed or being destroyed; the error message carries
   * the original cause. Not retryable on this stream. */
  ZEROBUS_ERR_STREAM_CLOSED = 3,
  /* Non-blocking ingest hit max_inflight_records/max_inflight_bytes. Retryable. */
  ZEROBUS_ERR_QUEUE_FULL = 4,
  /* A wait (flush, wait_for_offset, close, create) ran out of time. */
  ZEROBUS_ERR_TIMEOUT = 5,
  /* A record (or a batch) larger than max_request_bytes. Nothing was queued. */
  ZEROBUS_ERR_RECORD_TOO_LARGE = 6,
  /* Invalid JSON, a non-object JSON value, invalid UTF-8, or a record of the
   * wrong type for the stream. Nothing was queued. */
  ZEROBUS_ERR_INVALID_RECORD = 7,
  /* An option key that does not exist. */
  ZEROBUS_ERR_UNKNOWN_OPTION = 8,
  /* An option value that cannot be parsed or is out of range. */
  ZEROBUS_ERR_INVALID_OPTION = 9,
  /* Credentials refused: token endpoint 4xx, or gRPC UNAUTHENTICATED. */
  ZEROBUS_ERR_UNAUTHENTICATED = 10,
  /* gRPC PERMISSION_DENIED: the principal lacks grants on the table. */
  ZEROBUS_ERR_PERMISSION_DENIED = 11,
  /* gRPC NOT_FOUND: the table (or endpoint path) does not exist. */
  ZEROBUS_ERR_NOT_FOUND = 12,
  /* The server refused the request as invalid (gRPC INVALID_ARGUMENT,
   * OUT_OF_RANGE). */
  ZEROBUS_ERR_SERVER_REJECTED = 13,
  /* Transport failure: cannot connect, connection lost, TLS failure, gRPC
   * UNAVAILABLE. Usually retryable. */
  ZEROBUS_ERR_UNAVAILABLE = 14,
  /* The server ended the call with another gRPC status (the error's
   * grpc_status tells which) or ended it cleanly without being asked. */
  ZEROBUS_ERR_SERVER = 15,
  /* The server broke the protocol (ack backwards, beyond what was sent, without
   * an offset, unexpected message). Retryable: the call is recovered. */
  ZEROBUS_ERR_PROTOCOL = 16,
  /* No message from the server for server_lack_of_ack_timeout_ms while records
   * were in flight. Retryable. */
  ZEROBUS_ERR_ACK_TIMEOUT = 17,
  /* Recovery gave up after 1 + recovery_retries attempts; the message carries
   * the last attempt's cause. Not retryable on this stream. */
  ZEROBUS_ERR_RETRIES_EXHAUSTED = 18,
  /* The headers provider failed or returned unusable headers. */
  ZEROBUS_ERR_HEADERS_PROVIDER = 19,
  /* The OAuth token endpoint could not be used (network, 5xx, bad body). */
  ZEROBUS_ERR_TOKEN = 20,
  /* gRPC UNIMPLEMENTED: the endpoint does not speak this protocol. */
  ZEROBUS_ERR_UNIMPLEMENTED = 21,
  /* Out of memory. */
  ZEROBUS_ERR_NO_MEMORY = 22,
  /* A bug in libzerobus; please report it with a debug log. */
  ZEROBUS_ERR_INTERNAL = 23
} zerobus_status;

typedef struct zerobus_error zerobus_error; /* opaque */

/* Short constant name of a status ("ZEROBUS_ERR_QUEUE_FULL"); "ZEROBUS_UNKNOWN"
 * for values this library does not know. Static storage. */
ZEROBUS_API const char *zerobus_status_name(int32_t status);
/* One-line English description of a status. Static storage. */
ZEROBUS_API const char *zerobus_status_str(int32_t status);

/* Accessors. A NULL error reads as code ZEROBUS_OK, message "", not retryable,
 * grpc_status -1. The message is owned by the error object. */
ZEROBUS_API int32_t zerobus_error_code(const zerobus_error *err);
ZEROBUS_API const char *zerobus_error_message(const zerobus_error *err);
/* 1 when repeating the operation (or recovering the stream) may succeed. */
ZEROBUS_API int32_t zerobus_error_retryable(const zerobus_error *err);
/* The gRPC status code behind the error, or -1 when there is none. */
ZEROBUS_API int32_t zerobus_error_grpc_status(const zerobus_error *err);
/* The HTTP status of a failed token/UC request, or -1 when there is none. */
ZEROBUS_API int32_t zerobus_error_http_status(const zerobus_error *err);
/* A new, independent copy (NULL on NULL input or out of memory). Use it to keep
 * an error passed to a callback beyond the callback. */
ZEROBUS_API zerobus_error *zerobus_error_clone(const zerobus_error *err);
ZEROBUS_API void zerobus_error_destroy(zerobus_error *err);

/* ------------------------------------------------------------------------ */
/* Options                                                                   */
/* ------------------------------------------------------------------------ */

/*
 * Options are string key/value pairs, validated when set. The same object type
 * serves SDKs and streams: an option of scope "sdk" (TLS, proxy, logging,
 * application_name) is read by zerobus_sdk_new(); an option of scope "stream"
 * is read by zerobus_stream_create(), and when given to zerobus_sdk_new() it
 * becomes the default for that SDK's streams. Booleans accept
 * true/false/1/0/yes/no/on/off; durations are integer milliseconds; "none" is
 * accepted where the default is None. zerobus_option_info() lists every key.
 */
typedef struct zerobus_options zerobus_options; /* opaque */

ZEROBUS_API zerobus_status zerobus_options_new(zerobus_options **out);
ZEROBUS_API void zerobus_options_destroy(zerobus_options *opts);
/* Validates and stores a value. ZEROBUS_ERR_UNKNOWN_OPTION for an unknown key,
 * ZEROBUS_ERR_INVALID_OPTION for a bad value (the old value is kept).
 * Not safe to call concurrently with other calls on the same options object. */
ZEROBUS_API zerobus_status zerobus_options_set(zerobus_options *opts, const char *key,
                                               const char *value, zerobus_error **err);
/* The value in effect for `key` in canonical form (the default when unset).
 * *value stays valid until the next set of that key or destroy. */
ZEROBUS_API zerobus_status zerobus_options_get(const zerobus_options *opts, const char *key,
                                               const char **value, zerobus_error **err);

/* Description of one supported option; all strings are static. */
typedef struct zerobus_option_desc {
  /* In: sizeof(zerobus_option_desc) as the caller compiled it. Out:
   * min(that, the library's sizeof); members beyond it were not written. */
  uint32_t struct_size;
  const char *name;          /* "max_inflight_records" */
  const char *type;          /* "int", "bool", "duration_ms", "string", "enum", "path" */
  const char *default_value; /* canonical default, e.g. "1000000", "none" */
  const char *scope;         /* "sdk" or "stream" */
  const char *doc;           /* one line */
} zerobus_option_desc;

/* Number of supported option keys. */
ZEROBUS_API size_t zerobus_option_count(void);
/* Fills *out for option `index` (0 .. count-1); reads out->struct_size first,
 * fills only the members that size covers and that this library knows, and
 * writes back out->struct_size = min(caller's size, library's size): members at
 * or beyond that offset are left untouched (a newer caller's extra members are
 * not real). ZEROBUS_ERR_INVALID_ARGUMENT when out is NULL or index is out of
 * range (nothing written). */
ZEROBUS_API zerobus_status zerobus_option_info(size_t index, zerobus_option_desc *out);

/* ------------------------------------------------------------------------ */
/* Headers (for a custom headers provider)                                   */
/* ------------------------------------------------------------------------ */

typedef struct zerobus_headers zerobus_headers; /* opaque, owned by the library */

/* Adds one header (key lowercased ASCII, value copied). Valid only inside the
 * headers callback on the object it was given. */
ZEROBUS_API zerobus_status zerobus_headers_add(zerobus_headers *h, const char *key,
                                               const char *value);
/* Marks the provider call as failed with a message (copied); `retryable` 0 makes
 * the failure final for stream creation/recovery. */
ZEROBUS_API zerobus_status zerobus_headers_fail(zerobus_headers *h, const char *message,
                                                int32_t retryable);

/* ------------------------------------------------------------------------ */
/* Callbacks                                                                 */
/* ------------------------------------------------------------------------ */

/* Log levels, for on_log and the "log_level" option. */
typedef enum zerobus_log_level {
  ZEROBUS_LOG_OFF = 0,
  ZEROBUS_LOG_ERROR = 1,
  ZEROBUS_LOG_WARN = 2,
  ZEROBUS_LOG_INFO = 3,
  ZEROBUS_LOG_DEBUG = 4,
  ZEROBUS_LOG_TRACE = 5
} zerobus_log_level;

/*
 * Callback table, size-prefixed: set struct_size to sizeof(zerobus_callbacks)
 * as you compiled it (zerobus_callbacks_init does). The library reads only the
 * fields your size covers and copies the table. Every pointer may be NULL.
 * New members are appended in later versions, never reordered.
 *
 * on_ack, on_ack_range, on_error and on_log run on the thread that calls
 * zerobus_stream_poll(), or on the stream's dispatcher thread; never while the
 * library holds a lock an API call needs, so a callback may call any function on
 * its stream except zerobus_stream_destroy().
 *
 * Library threads that run this table's callbacks are the dispatcher thread
 * (option dispatch_thread) and, when `headers` is set, the stream's engine
 * thread (it runs the headers provider). Each of them calls on_thread_start
 * once when it starts, before any other callback on that thread, and
 * on_thread_stop once just before it exits, after every other callback on that
 * thread; both run before user_data_free. Threads the caller owns (those that
 * call zerobus_stream_poll) never get them.
 */
typedef struct zerobus_callbacks {
  uint32_t struct_size;
  void *user_data;
  /* Once per ingest call (logical offset), in increasing order, when durable. */
  void (*on_ack)(void *user_data, int64_t offset);
  /* Once per ingest call that will never be acknowledged, in increasing order,
   * after the stream failed or close() gave up on it. `err` is valid only during
   * the call (zerobus_error_clone() it to keep it). */
  void (*on_error)(void *user_data, int64_t offset, const zerobus_error *err);
  /* Log lines at or above the stream's log level; tokens are already redacted.
   * `message` is valid only during the call. */
  void (*on_log)(void *user_data, int32_t level, const char *message);
  /*
   * Headers provider. Runs ON A LIBRARY THREAD, once per connection attempt
   * (stream creation and every recovery), never concurrently with itself for one
   * stream. Fill `out` with zerobus_headers_add(); it must supply "authorization"
   * and "x-databricks-zerobus-table-name". Return ZEROBUS_OK, or anything else
   * (optionally after zerobus_headers_fail()) to fail the attempt. Must not block
   * for long; must not call zerobus_stream_* functions on the stream it serves.
   * When set, OAuth client credentials are not used.
   */
  int32_t (*headers)(void *user_data, zerobus_headers *out);
  /* Called exactly once, when no callback of this table can run any more
   * (during zerobus_stream_destroy(), or when stream creation fails). */
  void (*user_data_free)(void *user_data);
  /* Optional fast path: acks for logical offsets first..last (inclusive), in
   * increasing order. When set it is used instead of on_ack. */
  void (*on_ack_range)(void *user_data, int64_t first, int64_t last);
  /* Called on a library thread that will run this table's callbacks (see
   * above), once when it starts, before any other callback on it.
   * `thread_name` is static ("zerobus-dispatch" or "zerobus-engine"). Lets a
   * runtime register the thread (JNI AttachCurrentThread, a Python thread
   * state). Must not call zerobus_stream_* functions on this stream. */
  void (*on_thread_start)(void *user_data, const char *thread_name);
  /* Called once on that same thread just before it exits, after its last other
   * callback (JNI DetachCurrentThread). */
  void (*on_thread_stop)(void *user_data);
} zerobus_callbacks;

/* Zeroes *cb and sets struct_size = size (pass sizeof(zerobus_callbacks)). */
ZEROBUS_API void zerobus_callbacks_init(zerobus_callbacks *cb, size_t size);

/* ------------------------------------------------------------------------ */
/* SDK                                                                       */
/* ------------------------------------------------------------------------ */

typedef struct zerobus_sdk zerobus_sdk;       /* opaque */
typedef struct zerobus_stream zerobus_stream; /* opaque */

/*
 * Creates an SDK handle for a Zerobus endpoint and a workspace (Unity Catalog)
 * URL. `endpoint` may be "host[:port]", "https://host[:port]" (TLS, port 443 by
 * default) or "http://host[:port]" (plaintext, for local testing).
 * `workspace_url` is where OAuth tokens come from ("https://..." or "http://...").
 * `opts` may be NULL; it is copied. Does not connect (connections are lazy).
 * Errors: INVALID_ARGUMENT (bad endpoint/URL), INVALID_OPTION (bad TLS files).
 */
ZEROBUS_API zerobus_status zerobus_sdk_new(const char *endpoint, const char *workspace_url,
                                           const zerobus_options *opts, zerobus_sdk **out,
                                           zerobus_error **err);
/* Frees the SDK. Streams created from it keep it alive internally until they are
 * destroyed, so destroy order does not matter. Never blocks for long. */
ZEROBUS_API void zerobus_sdk_destroy(zerobus_sdk *sdk);

/* ------------------------------------------------------------------------ */
/* Streams                                                                   */
/* ------------------------------------------------------------------------ */

/*
 * Opens a stream to `table_name` ("catalog.schema.table") and waits until the
 * server has created it.
 *  - Record type from the option "record_type" ("proto" by default, or "json").
 *  - PROTO streams need `descriptor`/`descriptor_len`: a serialized
 *    google.protobuf.DescriptorProto, self-contained. Ignored for JSON.
 *  - Authentication: OAuth client credentials (`client_id`, `client_secret`,
 *    copied, zeroed on free), unless `callbacks->headers` is set (then both may
 *    be NULL).
 *  - `opts` may be NULL (SDK defaults); `callbacks` may be NULL; both are copied.
 * Blocks: at most (1 + recovery_retries) attempts of recovery_timeout_ms each,
 * with recovery_backoff_ms between them, for retryable failures (one attempt
 * when the option "recovery" is false). On failure *out is NULL and
 * callbacks->user_data_free (if any) has been called.
 * Errors: INVALID_ARGUMENT, INVALID_OPTION, UNAUTHENTICATED, PERMISSION_DENIED,
 * NOT_FOUND, SERVER_REJECTED, TOKEN, HEADERS_PROVIDER, RETRIES_EXHAUSTED,
 * UNAVAILABLE, TIMEOUT.
 */
ZEROBUS_API zerobus_status zerobus_stream_create(zerobus_sdk *sdk, const char *table_name,
                                                 const void *descriptor, size_t descriptor_len,
                                                 const char *client_id, const char *client_secret,
                                                 const zerobus_options *opts,
                                                 const zerobus_callbacks *callbacks,
                                                 zerobus_stream **out, zerobus_error **err);

/*
 * Opens a new stream with the same SDK, table, descriptor, credentials and
 * options as `old` (which must be closed or failed), then ingests old's unacked
 * records into it, batch by batch in their original order. `callbacks` are the
 * new stream's (may be NULL; old's table is not reused because its user_data is
 * old's to free). `old` is left untouched.
 * Errors: INVALID_STATE if `old` is still active; those of stream_create and
 * ingest.
 */
ZEROBUS_API zerobus_status zerobus_stream_recreate(zerobus_stream *old,
                                                   const zerobus_callbacks *callbacks,
                                                   zerobus_stream **out, zerobus_error **err);

/* Flags for the ingest functions. */
#define ZEROBUS_INGEST_NONBLOCK 0x1u /* fail with QUEUE_FULL instead of blocking */

/*
 * Queues one record and returns its logical offset in *offset (may be NULL).
 * The payload is copied. Returns as soon as the record is queued; never waits
 * for the network. At the in-flight limit it blocks until there is room (or the
 * stream fails/closes: STREAM_CLOSED), or with ZEROBUS_INGEST_NONBLOCK fails at
 * once with QUEUE_FULL. JSON streams validate the record (UTF-8 JSON object)
 * unless the option "validate_json" is false.
 * Errors: INVALID_ARGUMENT, STREAM_CLOSED, QUEUE_FULL, RECORD_TOO_LARGE,
 * INVALID_RECORD. Nothing is queued on error.
 */
ZEROBUS_API zerobus_status zerobus_stream_ingest(zerobus_stream *s, const void *data,
                                                 size_t len, uint32_t flags, int64_t *offset,
                                                 zerobus_error **err);

/*
 * Queues `n` records as one ingest call (one logical offset, never split on the
 * wire). data[i]/lens[i] describe record i; all are copied. n == 0 queues
 * nothing, returns ZEROBUS_OK and sets *offset to -1. Same blocking and errors
 * as zerobus_stream_ingest(); one invalid record refuses the whole batch.
 */
ZEROBUS_API zerobus_status zerobus_stream_ingest_batch(zerobus_stream *s,
                                                       const void *const *data,
                                                       const size_t *lens, size_t n,
                                                       uint32_t flags, int64_t *offset,
                                                       zerobus_error **err);

/*
 * Zero-copy variant of zerobus_stream_ingest(): the library keeps `data` (it must
 * stay valid and unchanged) and calls release(release_ctx, data) exactly once
 * when it no longer needs it, from any thread, possibly before this function
 * returns (always on error). release may be NULL.
 */
ZEROBUS_API zerobus_status zerobus_stream_ingest_nocopy(zerobus_stream *s, const void *data,
                                                        size_t len, uint32_t flags,
                                                        void (*release)(void *release_ctx,
                                                                        const void *data),
                                                        void *release_ctx, int64_t *offset,
                                                        zerobus_error **err);

/*
 * Waits until logical offset `offset` is durable. timeout_ms < 0 means the
 * option flush_timeout_ms. Errors: INVALID_ARGUMENT (offset never handed out),
 * TIMEOUT, and the stream's own error (fails fast) when it has failed.
 */
ZEROBUS_API zerobus_status zerobus_stream_wait_for_offset(zerobus_stream *s, int64_t offset,
                                                          int32_t timeout_ms,
                                                          zerobus_error **err);

/*
 * Waits until every record ingested before the call is durable, at most
 * flush_timeout_ms. Returns the stream's error if it failed; TIMEOUT otherwise.
 */
ZEROBUS_API zerobus_status zerobus_stream_flush(zerobus_stream *s, zerobus_error **err);

/*
 * Flushes, ends the call gracefully and stops the stream's threads; with a
 * dispatcher thread, waits up to callback_max_wait_time_ms for queued callbacks.
 * Idempotent: later calls return the first close's result. If the flush times out
 * or the stream has failed, the records not acknowledged move to the unacked set
 * (zerobus_stream_get_unacked) and on_error is queued for each; the result is
 * the failure (a failed stream's close returns its error). Nothing is lost.
 */
ZEROBUS_API zerobus_status zerobus_stream_close(zerobus_stream *s, zerobus_error **err);

/*
 * Frees the stream. A stream not closed is aborted: its queue is discarded
 * without waiting for the network. Other threads blocked inside calls on `s`
 * return STREAM_CLOSED before this returns; no thread may enter a call on `s`
 * after it starts. Calls user_data_free once. Must not be called from one of the
 * stream's own callbacks.
 */
ZEROBUS_API void zerobus_stream_destroy(zerobus_stream *s);

/* Records that were never acknowledged, owned by the library. */
typedef struct zerobus_records zerobus_records; /* opaque */

/*
 * Copies the records that were never acknowledged (after close or failure):
 * flat in logical order, and grouped by ingest call. Errors: INVALID_STATE on an
 * active stream. An empty set is a valid object with count 0.
 */
ZEROBUS_API zerobus_status zerobus_stream_get_unacked(zerobus_stream *s,
                                                      zerobus_records **out,
                                                      zerobus_error **err);
/* Number of records (flat). */
ZEROBUS_API size_t zerobus_records_count(const zerobus_records *r);
/* Record `i` (0-based, flat order); the bytes belong to `r`. */
ZEROBUS_API zerobus_status zerobus_records_get(const zerobus_records *r, size_t i,
                                               const void **data, size_t *len);
/* Number of ingest calls (batches; a single-record call is a batch of one). */
ZEROBUS_API size_t zerobus_records_batch_count(const zerobus_records *r);
/* Batch `b`: its records are first .. first+count-1 in flat order, and it had
 * logical offset *offset. Any out pointer may be NULL. */
ZEROBUS_API zerobus_status zerobus_records_batch(const zerobus_records *r, size_t b,
                                                 size_t *first, size_t *count,
                                                 int64_t *offset);
ZEROBUS_API void zerobus_records_destroy(zerobus_records *r);

/* ------------------------------------------------------------------------ */
/* Events and callbacks delivery                                             */
/* ------------------------------------------------------------------------ */

/*
 * Runs pending callbacks (acks, errors, logs) on the calling thread, waiting up
 * to timeout_ms (<0: forever, 0: no wait) for at least one event. Returns the
 * number of events handled (an ack range counts once), or a negative
 * zerobus_status. Returns 0 at once on a stream with a dispatcher thread, and
 * 0 early when zerobus_stream_wake() is called.
 */
ZEROBUS_API int32_t zerobus_stream_poll(zerobus_stream *s, int32_t timeout_ms);

/* Event kinds (zerobus_event.kind). */
#define ZEROBUS_EVENT_ACK 1   /* offsets first..last are durable */
#define ZEROBUS_EVENT_ERROR 2 /* offsets first..last will never be acked: error */
#define ZEROBUS_EVENT_LOG 3   /* log line: level in `status`, text in `message` */

/* Not size-prefixed: its size travels as poll_events' `event_size` instead, so
 * members can be appended in later versions. */
typedef struct zerobus_event {
  int32_t kind;
  int32_t status; /* ERROR: the zerobus_status; LOG: the level */
  int64_t first;
  int64_t last;
  /* ERROR: the error (also readable with zerobus_error_*); NULL otherwise. */
  const zerobus_error *error;
  /* LOG: the message; ERROR: the error message. NULL for ACK. */
  const char *message;
} zerobus_event;

/*
 * The callback-free alternative to poll: moves up to `cap` pending events into
 * `events` without calling any callback, waiting up to timeout_ms (<0 forever)
 * for the first. Consecutive acks are coalesced into one ACK range, so one call
 * can report millions of acks. The `error`/`message` pointers stay valid until
 * the next poll_events/poll call on this stream, or destroy. *n_out receives the
 * count (0 after a timeout or zerobus_stream_wake()). Not to be mixed with a
 * dispatcher thread (INVALID_STATE).
 *
 * `event_size` is sizeof(zerobus_event) as the caller compiled it: `events` is
 * an array of `cap` elements of event_size bytes each. Element i starts at
 * (char *)events + i * event_size; the library writes min(event_size, its own
 * sizeof(zerobus_event)) bytes into it and never touches the rest, so an older
 * caller (smaller struct) gets the members it knows and a newer caller (larger
 * struct) must not trust members beyond the library's size (zero them first,
 * or check zerobus_version()). An event_size smaller than the end of the
 * `message` member is INVALID_ARGUMENT (nothing is consumed).
 * Errors: INVALID_ARGUMENT (NULL stream or n_out, NULL events with cap > 0,
 * event_size too small), INVALID_STATE, STREAM_CLOSED (being destroyed).
 */
ZEROBUS_API zerobus_status zerobus_stream_poll_events(zerobus_stream *s, zerobus_event *events,
                                                      size_t cap, size_t event_size,
                                                      int32_t timeout_ms, size_t *n_out,
                                                      zerobus_error **err);

/*
 * Makes a zerobus_stream_poll() or zerobus_stream_poll_events() blocked on `s`
 * in other threads return at once with 0 events (or with what is pending), so a
 * binding can cancel a poll without waiting for its timeout (Go context
 * cancellation, Node shutdown). When no poll is waiting, the next poll on `s`
 * returns at once instead: a wake is never lost between the caller's "should I
 * stop" check and its poll. Never blocks; any thread; also from a callback.
 * Returns ZEROBUS_OK, INVALID_ARGUMENT (NULL), or STREAM_CLOSED once
 * zerobus_stream_destroy() has started.
 */
ZEROBUS_API int32_t zerobus_stream_wake(zerobus_stream *s);

/*
 * A file descriptor that is readable while events are pending (for epoll,
 * asyncio's add_reader, libuv). Owned by the stream; do not read or close it;
 * poll/poll_events reset it. -1 on a NULL stream.
 */
ZEROBUS_API int32_t zerobus_stream_wakeup_fd(zerobus_stream *s);

/* ------------------------------------------------------------------------ */
/* Introspection                                                             */
/* ------------------------------------------------------------------------ */

/* Stream states (zerobus_stream_state). */
#define ZEROBUS_STATE_OPENING 0
#define ZEROBUS_STATE_ACTIVE 1
#define ZEROBUS_STATE_RECOVERING 2
#define ZEROBUS_STATE_PAUSED 3 /* close signal received, waiting to reconnect */
#define ZEROBUS_STATE_CLOSING 4
#define ZEROBUS_STATE_CLOSED 5
#define ZEROBUS_STATE_FAILED 6

ZEROBUS_API int32_t zerobus_stream_state(zerobus_stream *s);

/* The server's id of the current call's stream (changes after a recovery), or
 * NULL before creation. Valid until zerobus_stream_destroy(). */
ZEROBUS_API const char *zerobus_stream_id(zerobus_stream *s);

/* The stream's table name; valid until zerobus_stream_destroy(). */
ZEROBUS_API const char *zerobus_stream_table_name(zerobus_stream *s);

/* Counters since creation. Size-prefixed: set struct_size to
 * sizeof(zerobus_stream_stats) as you compiled it; the library fills only the
 * members both sizes cover and writes back struct_size = min(your size, its
 * size): members at or beyond that offset were not written (this library does
 * not have them). */
typedef struct zerobus_stream_stats {
  uint32_t struct_size;
  int32_t state;
  int64_t records_queued; /* records accepted by ingest calls */
  int64_t bytes_queued;
  int64_t records_sent; /* records written on the wire (replays included) */
  int64_t bytes_sent;
  int64_t records_acked;
  int64_t bytes_acked;
  int64_t records_resent; /* records written again after a recovery */
  int64_t requests_sent;
  int64_t acks_received;
  int64_t reconnects; /* successful recoveries */
  int64_t recovery_attempts;
  int64_t inflight_records; /* accepted and not yet acked */
  int64_t inflight_bytes;
  int64_t last_offset;    /* highest logical offset handed out, -1 if none */
  int64_t acked_offset;   /* highest durable logical offset, -1 if none */
  int64_t records_failed; /* records reported through on_error */
} zerobus_stream_stats;

/* Errors: INVALID_ARGUMENT (NULL, or struct_size < 4; nothing written),
 * STREAM_CLOSED (being destroyed). */
ZEROBUS_API zerobus_status zerobus_stream_get_stats(zerobus_stream *s, zerobus_stream_stats *out);

/* A copy of the stream's last error (the failure that ended it, or the last
 * recovered failure), or *out = NULL when there was none. */
ZEROBUS_API zerobus_status zerobus_stream_last_error(zerobus_stream *s, zerobus_error **out);

/* ------------------------------------------------------------------------ */
/* dlopen entry point                                                        */
/* ------------------------------------------------------------------------ */

/*
 * Every exported function, in an append-only table. A dlopen consumer resolves
 * only zerobus_get_api, checks struct_size covers the members it uses, and calls
 * through the table.
 */
typedef struct zerobus_api {
  uint32_t struct_size;
  int32_t abi_major;
  const char *(*version)(void);
  int32_t (*abi_version)(void);
  const char *(*status_name)(int32_t);
  const char *(*status_str)(int32_t);
  int32_t (*error_code)(const zerobus_error *);
  const char *(*error_message)(const zerobus_error *);
  int32_t (*error_retryable)(const zerobus_error *);
  int32_t (*error_grpc_status)(const zerobus_error *);
  int32_t (*error_http_status)(const zerobus_error *);
  zerobus_error *(*error_clone)(const zerobus_error *);
  void (*error_destroy)(zerobus_error *);
  zerobus_status (*options_new)(zerobus_options **);
  void (*options_destroy)(zerobus_options *);
  zerobus_status (*options_set)(zerobus_options *, const char *, const char *, zerobus_error **);
  zerobus_status (*options_get)(const zerobus_options *, const char *, const char **,
                                zerobus_error **);
  size_t (*option_count)(void);
  zerobus_status (*option_info)(size_t, zerobus_option_desc *);
  zerobus_status (*headers_add)(zerobus_headers *, const char *, const char *);
  zerobus_status (*headers_fail)(zerobus_headers *, const char *, int32_t);
  void (*callbacks_init)(zerobus_callbacks *, size_t);
  zerobus_status (*sdk_new)(const char *, const char *, const zerobus_options *, zerobus_sdk **,
                            zerobus_error **);
  void (*sdk_destroy)(zerobus_sdk *);
  zerobus_status (*stream_create)(zerobus_sdk *, const char *, const void *, size_t, const char *,
                                  const char *, const zerobus_options *, const zerobus_callbacks *,
                                  zerobus_stream **, zerobus_error **);
  zerobus_status (*stream_recreate)(zerobus_stream *, const zerobus_callbacks *, zerobus_stream **,
                                    zerobus_error **);
  zerobus_status (*stream_ingest)(zerobus_stream *, const void *, size_t, uint32_t, int64_t *,
                                  zerobus_error **);
  zerobus_status (*stream_ingest_batch)(zerobus_stream *, const void *const *, const size_t *,
                                        size_t, uint32_t, int64_t *, zerobus_error **);
  zerobus_status (*stream_ingest_nocopy)(zerobus_stream *, const void *, size_t, uint32_t,
                                         void (*)(void *, const void *), void *, int64_t *,
                                         zerobus_error **);
  zerobus_status (*stream_wait_for_offset)(zerobus_stream *, int64_t, int32_t, zerobus_error **);
  zerobus_status (*stream_flush)(zerobus_stream *, zerobus_error **);
  zerobus_status (*stream_close)(zerobus_stream *, zerobus_error **);
  void (*stream_destroy)(zerobus_stream *);
  zerobus_status (*stream_get_unacked)(zerobus_stream *, zerobus_records **, zerobus_error **);
  size_t (*records_count)(const zerobus_records *);
  zerobus_status (*records_get)(const zerobus_records *, size_t, const void **, size_t *);
  size_t (*records_batch_count)(const zerobus_records *);
  zerobus_status (*records_batch)(const zerobus_records *, size_t, size_t *, size_t *, int64_t *);
  void (*records_destroy)(zerobus_records *);
  int32_t (*stream_poll)(zerobus_stream *, int32_t);
  zerobus_status (*stream_poll_events)(zerobus_stream *, zerobus_event *, size_t, size_t, int32_t,
                                       size_t *, zerobus_error **);
  int32_t (*stream_wakeup_fd)(zerobus_stream *);
  int32_t (*stream_state)(zerobus_stream *);
  const char *(*stream_id)(zerobus_stream *);
  const char *(*stream_table_name)(zerobus_stream *);
  zerobus_status (*stream_get_stats)(zerobus_stream *, zerobus_stream_stats *);
  zerobus_status (*stream_last_error)(zerobus_stream *, zerobus_error **);
  int32_t (*stream_wake)(zerobus_stream *);
} zerobus_api;

/* The function table for ABI generation `abi_major` (pass ZEROBUS_ABI_MAJOR), or
 * NULL when this library does not provide it. Static storage. */
ZEROBUS_API const zerobus_api *zerobus_get_api(int32_t abi_major);

#ifdef __cplusplus
}
#endif

#endif /* ZEROBUS_ABI_H */
