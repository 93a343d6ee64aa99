/*
 * addon.c - N-API addon of the Node.js proof consumer (consumer.js), built with
 * gcc straight from the Node headers installed on the machine (include/node:
 * node_api.h and uv.h); no node-gyp, no download.
 *
 * Shape of the mapping:
 *  - events: the stream has no callbacks; its wakeup fd (readable while events
 *    are pending) is watched by a uv_poll_t on the Node event loop, and when it
 *    fires the addon drains zerobus_stream_poll_events() on the JS thread and
 *    calls the JS onAcks(first, last) (BigInt) once per ACK range. The library
 *    never calls into JS and no thread-safe function is needed;
 *  - blocking calls (stream creation, flush, close) run as napi_async_work on the
 *    libuv thread pool and return Promises; ingest only copies and queues, so it
 *    stays synchronous and returns the BigInt offset;
 *  - errors: rejected/thrown Error objects with .code (status name), .status and
 *    .retryable, built from the zerobus_error, which is freed here;
 *  - lifetimes: the uv_poll_t is stopped before zerobus_stream_destroy() (the fd
 *    belongs to the stream) and its memory freed in the uv_close callback.
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <node_api.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "zerobus_abi.h"

#define NAPI_CALL(env, call)                                      \
  do {                                                            \
    if ((call) != napi_ok) {                                      \
      napi_throw_error((env), NULL, "N-API call failed: " #call); \
      return NULL;                                                \
    }                                                             \
  } while (0)

typedef struct stream_ctx {
  zerobus_stream *stream;
  napi_env env;
  napi_ref on_acks;
  uv_poll_t poll;
  int polling;
  int destroyed;
  char *failure; /* first event-delivery failure, reported by close() */
} stream_ctx;

static napi_value make_error(napi_env env, zerobus_status st, zerobus_error *err) {
  int32_t code = err ? zerobus_error_code(err) : (int32_t)st;
  napi_value msg, name, status, retry, error;
  napi_create_string_utf8(env, err ? zerobus_error_message(err) : zerobus_status_str(code),
                          NAPI_AUTO_LENGTH, &msg);
  napi_create_string_utf8(env, zerobus_status_name(code), NAPI_AUTO_LENGTH, &name);
  napi_create_int32(env, code, &status);
  napi_get_boolean(env, zerobus_error_retryable(err) != 0, &retry);
  napi_create_error(env, name, msg, &error);
  napi_set_named_property(env, error, "status", status);
  napi_set_named_property(env, error, "retryable", retry);
  zerobus_error_destroy(err);
  return error;
}

static char *get_string(napi_env env, napi_value v) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return NULL;
  char *s = malloc(len + 1);
  if (s) napi_get_value_string_utf8(env, v, s, len + 1, &len);
  return s;
}

/* ---- event delivery on the JS thread ---- */

static void drain_events(stream_ctx *c) {
  napi_env env = c->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value cb, global;
  napi_get_reference_value(env, c->on_acks, &cb);
  napi_get_global(env, &global);
  zerobus_event ev[64];
  for (;;) {
    size_t n = 0;
    zerobus_error *err = NULL;
    zerobus_status st = zerobus_stream_poll_events(c->stream, ev, 64, sizeof ev[0], 0, &n, &err);
    if (st != ZEROBUS_OK) {
      if (!c->failure) c->failure = strdup(zerobus_error_message(err));
      zerobus_error_destroy(err);
      break;
    }
    if (n == 0) break;
    for (size_t i = 0; i < n; i++) {
      if (ev[i].kind == ZEROBUS_EVENT_LOG) continue;
      if (ev[i].kind != ZEROBUS_EVENT_ACK) {
        if (!c->failure) c->failure = strdup(ev[i].message ? ev[i].message : "error event");
        continue;
      }
      napi_value args[2];
      napi_create_bigint_int64(env, ev[i].first, &args[0]);
      napi_create_bigint_int64(env, ev[i].last, &args[1]);
      if (napi_call_function(env, global, cb, 2, args, NULL) == napi_pending_exception) {
        napi_value exc;
        napi_get_and_clear_last_exception(env, &exc);
        napi_fatal_exception(env, exc); /* an uncaught exception, as from any event */
      }
    }
  }
  napi_close_handle_scope(env, scope);
}

static void on_wakeup(uv_poll_t *h, int status, int events) {
  (void)events;
  stream_ctx *c = h->data;
  if (status < 0 && !c->failure) c->failure = strdup(uv_strerror(status));
  drain_events(c);
}

static void free_ctx(uv_handle_t *h) {
  stream_ctx *c = h->data;
  free(c->failure);
  free(c);
}

/* ---- async work: create / flush / close ---- */

typedef enum { OP_CREATE, OP_FLUSH, OP_CLOSE } op_kind;

typedef struct async_op {
  op_kind kind;
  napi_async_work work;
  napi_deferred deferred;
  zerobus_status status;
  zerobus_error *err;
  /* create */
  zerobus_sdk *sdk;
  char *table, *client_id, *client_secret;
  zerobus_options *opts;
  napi_ref on_acks;
  /* all */
  stream_ctx *ctx;
  zerobus_stream *stream;
} async_op;

static void op_execute(napi_env env, void *data) {
  (void)env;
  async_op *op = data;
  switch (op->kind) {
    case OP_CREATE:
      op->status = zerobus_stream_create(op->sdk, op->table, NULL, 0, op->client_id,
                                         op->client_secret, op->opts, NULL, &op->stream, &op->err);
      break;
    case OP_FLUSH:
      op->status = zerobus_stream_flush(op->ctx->stream, &op->err);
      break;
    case OP_CLOSE:
      op->status = zerobus_stream_close(op->ctx->stream, &op->err);
      break;
  }
}

static void op_complete(napi_env env, napi_status status, void *data) {
  async_op *op = data;
  napi_value result = NULL;
  if (status != napi_ok) {
    napi_create_string_utf8(env, "async work cancelled", NAPI_AUTO_LENGTH, &result);
    napi_reject_deferred(env, op->deferred, result);
  } else if (op->status != ZEROBUS_OK || op->err) {
    if (op->kind == OP_CREATE) napi_delete_reference(env, op->on_acks);
    napi_reject_deferred(env, op->deferred, make_error(env, op->status, op->err));
  } else if (op->kind == OP_CREATE) {
    stream_ctx *c = calloc(1, sizeof *c);
    c->stream = op->stream;
    c->env = env;
    c->on_acks = op->on_acks;
    uv_loop_t *loop = NULL;
    napi_get_uv_event_loop(env, &loop);
    uv_poll_init(loop, &c->poll, zerobus_stream_wakeup_fd(op->stream));
    c->poll.data = c;
    uv_poll_start(&c->poll, UV_READABLE, on_wakeup);
    c->polling = 1;
    napi_create_external(env, c, NULL, NULL, &result);
    napi_resolve_deferred(env, op->deferred, result);
  } else {
    stream_ctx *c = op->ctx;
    drain_events(c); /* whatever is still queued reaches JS before the promise resolves */
    if (op->kind == OP_CLOSE && c->polling) {
      uv_poll_stop(&c->poll);
      c->polling = 0;
    }
    if (c->failure) {
      napi_value msg;
      napi_create_string_utf8(env, c->failure, NAPI_AUTO_LENGTH, &msg);
      napi_create_error(env, NULL, msg, &result);
      napi_reject_deferred(env, op->deferred, result);
    } else {
      napi_get_undefined(env, &result);
      napi_resolve_deferred(env, op->deferred, result);
    }
  }
  free(op->table);
  if (op->client_secret) memset(op->client_secret, 0, strlen(op->client_secret));
  free(op->client_id);
  free(op->client_secret);
  zerobus_options_destroy(op->opts);
  napi_delete_async_work(env, op->work);
  free(op);
}

static napi_value queue_op(napi_env env, async_op *op) {
  napi_value promise, name;
  NAPI_CALL(env, napi_create_promise(env, &op->deferred, &promise));
  napi_create_string_utf8(env, "zerobus", NAPI_AUTO_LENGTH, &name);
  NAPI_CALL(env, napi_create_async_work(env, NULL, name, op_execute, op_complete, op, &op->work));
  NAPI_CALL(env, napi_queue_async_work(env, op->work));
  return promise;
}

static void *get_external(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok) return NULL;
  return p;
}

static stream_ctx *get_stream(napi_env env, napi_value v) {
  stream_ctx *c = get_external(env, v);
  if (!c || c->destroyed) {
    napi_throw_type_error(env, "ZEROBUS_ERR_INVALID_ARGUMENT", "not a live stream");
    return NULL;
  }
  return c;
}

/* ---- exported functions ---- */

/* sdkNew(endpoint, workspaceUrl) -> external */
static napi_value sdk_new(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char *ep = get_string(env, argv[0]), *ws = get_string(env, argv[1]);
  zerobus_sdk *sdk = NULL;
  zerobus_error *err = NULL;
  zerobus_status st = zerobus_sdk_new(ep ? ep : "", ws ? ws : "", NULL, &sdk, &err);
  free(ep);
  free(ws);
  if (st != ZEROBUS_OK) {
    napi_throw(env, make_error(env, st, err));
    return NULL;
  }
  NAPI_CALL(env, napi_create_external(env, sdk, NULL, NULL, &out));
  return out;
}

static napi_value sdk_destroy(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  zerobus_sdk_destroy(get_external(env, argv[0]));
  return NULL;
}

/* streamCreate(sdk, table, clientId, clientSecret, {option: value}, onAcks) -> Promise */
static napi_value stream_create(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 6) {
    napi_throw_type_error(env, NULL, "streamCreate(sdk, table, id, secret, options, onAcks)");
    return NULL;
  }
  async_op *op = calloc(1, sizeof *op);
  op->kind = OP_CREATE;
  op->sdk = get_external(env, argv[0]);
  op->table = get_string(env, argv[1]);
  op->client_id = get_string(env, argv[2]);
  op->client_secret = get_string(env, argv[3]);
  zerobus_options_new(&op->opts);
  napi_value keys;
  uint32_t nkeys = 0;
  NAPI_CALL(env, napi_get_property_names(env, argv[4], &keys));
  napi_get_array_length(env, keys, &nkeys);
  for (uint32_t i = 0; i < nkeys; i++) {
    napi_value k, v, vs;
    napi_get_element(env, keys, i, &k);
    napi_get_property(env, argv[4], k, &v);
    napi_coerce_to_string(env, v, &vs);
    char *ks = get_string(env, k), *val = get_string(env, vs);
    zerobus_error *err = NULL;
    zerobus_status st = zerobus_options_set(op->opts, ks, val, &err);
    free(ks);
    free(val);
    if (st != ZEROBUS_OK) { /* rejected synchronously, like any bad argument */
      napi_throw(env, make_error(env, st, err));
      zerobus_options_destroy(op->opts);
      free(op->table);
      free(op->client_id);
      free(op->client_secret);
      free(op);
      return NULL;
    }
  }
  NAPI_CALL(env, napi_create_reference(env, argv[5], 1, &op->on_acks));
  return queue_op(env, op);
}

/* ingest(stream, Buffer | string) -> BigInt offset */
static napi_value ingest(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  stream_ctx *c = get_stream(env, argv[0]);
  if (!c) return NULL;
  bool is_buffer = false;
  napi_is_buffer(env, argv[1], &is_buffer);
  void *data = NULL;
  size_t len = 0;
  char *owned = NULL;
  if (is_buffer) {
    NAPI_CALL(env, napi_get_buffer_info(env, argv[1], &data, &len));
  } else {
    owned = get_string(env, argv[1]);
    if (!owned) {
      napi_throw_type_error(env, NULL, "record must be a Buffer or a string");
      return NULL;
    }
    data = owned;
    len = strlen(owned);
  }
  int64_t off = -1;
  zerobus_error *err = NULL;
  zerobus_status st = zerobus_stream_ingest(c->stream, data, len, 0, &off, &err); /* copies */
  free(owned);
  if (st != ZEROBUS_OK) {
    napi_throw(env, make_error(env, st, err));
    return NULL;
  }
  NAPI_CALL(env, napi_create_bigint_int64(env, off, &out));
  return out;
}

static napi_value stream_op(napi_env env, napi_callback_info info, op_kind kind) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  stream_ctx *c = get_stream(env, argv[0]);
  if (!c) return NULL;
  async_op *op = calloc(1, sizeof *op);
  op->kind = kind;
  op->ctx = c;
  return queue_op(env, op);
}
static napi_value flush(napi_env env, napi_callback_info info) {
  return stream_op(env, info, OP_FLUSH);
}
static napi_value close_stream(napi_env env, napi_callback_info info) {
  return stream_op(env, info, OP_CLOSE);
}

/* destroy(stream): no promise of this stream may be pending */
static napi_value destroy(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  stream_ctx *c = get_stream(env, argv[0]);
  if (!c) return NULL;
  if (c->polling) uv_poll_stop(&c->poll); /* before the fd goes away with the stream */
  c->polling = 0;
  c->destroyed = 1;
  zerobus_stream_destroy(c->stream);
  c->stream = NULL;
  napi_delete_reference(env, c->on_acks);
  uv_close((uv_handle_t *)&c->poll, free_ctx);
  return NULL;
}

/* stats(stream) -> {state, recordsAcked, ackedOffset, inflightRecords} (BigInt) */
static napi_value stats(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out, v;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  stream_ctx *c = get_stream(env, argv[0]);
  if (!c) return NULL;
  zerobus_stream_stats s;
  memset(&s, 0, sizeof s);
  s.struct_size = sizeof s;
  zerobus_stream_get_stats(c->stream, &s);
  NAPI_CALL(env, napi_create_object(env, &out));
  napi_create_int32(env, s.state, &v);
  napi_set_named_property(env, out, "state", v);
  napi_create_bigint_int64(env, s.records_acked, &v);
  napi_set_named_property(env, out, "recordsAcked", v);
  napi_create_bigint_int64(env, s.acked_offset, &v);
  napi_set_named_property(env, out, "ackedOffset", v);
  napi_create_bigint_int64(env, s.inflight_records, &v);
  napi_set_named_property(env, out, "inflightRecords", v);
  return out;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"sdkNew", NULL, sdk_new, NULL, NULL, NULL, napi_default, NULL},
      {"sdkDestroy", NULL, sdk_destroy, NULL, NULL, NULL, napi_default, NULL},
      {"streamCreate", NULL, stream_create, NULL, NULL, NULL, napi_default, NULL},
      {"ingest", NULL, ingest, NULL, NULL, NULL, napi_default, NULL},
      {"flush", NULL, flush, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, close_stream, NULL, NULL, NULL, napi_default, NULL},
      {"destroy", NULL, destroy, NULL, NULL, NULL, napi_default, NULL},
      {"stats", NULL, stats, NULL, NULL, NULL, napi_default, NULL},
  };
  NAPI_CALL(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
