/*
 * stream.c - the stream engine: the ingest queue, the engine thread that drives
 * gRPC calls (creation, sending, acks, recovery, close signal, close), and the
 * stream's public functions. SEMANTICS.md is the specification.
 *
 * Data path. An ingest call validates its records (outside any lock), then under
 * the stream lock copies them, already encoded as protobuf entries, into the
 * arena (engine.h: zb_chunk) and appends one zb_item (= one logical offset). If
 * the engine has no write in flight it is woken with an empty gRPC batch; when it
 * is busy nothing else happens, so a busy stream costs one lock and one copy per
 * record. The engine packs consecutive items of one chunk into a request
 * (IngestRecordBatchRequest, or IngestRecordRequest for exactly one record) whose
 * body is a view of the chunk - serialized once, kept for replay - and writes it
 * with a small per-call header carrying the wire offset.
 *
 * Acks are cumulative wire offsets. Unacked requests live in a ring in order;
 * an ack pops every request up to it and raises the acked logical offset (the
 * last logical offset of the popped request) and the event queue's watermark.
 *
 * Recovery. Every call ends with RECV_STATUS_ON_CLIENT (or our own cancel with a
 * recorded reason). A retryable end starts a new attempt at once, then after
 * recovery_backoff_ms between attempts, up to 1 + recovery_retries attempts, each
 * bounded by recovery_timeout_ms; on success every unacked request is written
 * again, in order, with new wire offsets starting at 0. Creation uses the same
 * machinery and budget. Within an attempt, a connection that cannot be made
 * (refused, TLS, proxy: the fresh channel is in TRANSIENT_FAILURE) is tried
 * again on a new channel every 100 ms .. 1 s until the attempt's deadline, so a
 * short outage does not use up the budget; an UNAUTHENTICATED answer with OAuth
 * drops the cached token and gets one extra attempt with a fresh one.
 *
 * Close signal: the call is PAUSED (no new writes, acks still read) until
 * min(stream_paused_max_wait_time_ms, the server's duration) passes or nothing
 * is in flight, then the engine moves to a new call (no backoff).
 *
 * Timers (attempt deadline, backoff, lack of ack, pause, close handshake) run on
 * the engine thread's cq_next deadline (at most ENGINE_TICK_MS); there is never a
 * gRPC deadline on the call itself.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <grpc/byte_buffer.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "engine.h"
#include "google/protobuf/descriptor.pb-c.h"

#define CHUNK_SIZE (1u << 20)     /* arena chunk; bigger items get their own */
#define ENGINE_TICK_MS 50         /* longest cq_next wait: the timer resolution */
#define CLOSE_STATUS_WAIT_MS 5000 /* after half-close, wait this long for the status */
#define METHOD "/databricks.zerobus.Zerobus/EphemeralStream"

/* ---------------------------------------------------------------- helpers */

static void cond_init(pthread_cond_t *cv) {
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(cv, &ca);
  pthread_condattr_destroy(&ca);
}

/* Waits on s->cv until at_ms (monotonic; -1 = no deadline). */
static void wait_until(zerobus_stream *s, int64_t at_ms) {
  s->waiters++;
  if (at_ms < 0) {
    pthread_cond_wait(&s->cv, &s->mu);
  } else {
    struct timespec ts = {at_ms / 1000, (at_ms % 1000) * 1000000};
    pthread_cond_timedwait(&s->cv, &s->mu, &ts);
  }
  s->waiters--;
}

static void broadcast(zerobus_stream *s) {
  if (s->waiters) pthread_cond_broadcast(&s->cv);
}

int zb_stream_enter(zerobus_stream *s) {
  atomic_fetch_add(&s->in_calls, 1);
  if (atomic_load(&s->destroying)) {
    atomic_fetch_sub(&s->in_calls, 1);
    return 0;
  }
  return 1;
}

/* zb_stream_enter, or STREAM_CLOSED into *err when the stream is being destroyed. */
zerobus_status zb_stream_enter_or_fail(zerobus_stream *s, zerobus_error **err) {
  if (zb_stream_enter(s)) return ZEROBUS_OK;
  return zb_fail(err, ZEROBUS_ERR_STREAM_CLOSED, 0, "stream is being destroyed");
}

/* Never touches s after the decrement: destroy may free it right away. */
void zb_stream_leave(zerobus_stream *s) {
  atomic_fetch_sub(&s->in_calls, 1);
}

static zerobus_status closed_error(zerobus_stream *s, zerobus_error **err) {
  const zerobus_error *cause = s->err ? s->err : s->close_result;
  if (atomic_load(&s->destroying))
    return zb_fail(err, ZEROBUS_ERR_STREAM_CLOSED, 0, "stream is being destroyed");
  if (cause)
    return zb_fail(err, ZEROBUS_ERR_STREAM_CLOSED, 0, "stream is closed: %s", cause->message);
  return zb_fail(err, ZEROBUS_ERR_STREAM_CLOSED, 0, "stream is closed");
}

static void set_last_err(zerobus_stream *s, const zerobus_error *e) {
  zerobus_error *c = zerobus_error_clone(e);
  if (!c) return;
  zerobus_error_destroy(s->last_err);
  s->last_err = c;
}

static int public_state(const zerobus_stream *s) {
  if (s->state == ZEROBUS_STATE_FAILED) return ZEROBUS_STATE_FAILED;
  if (s->close_done) return ZEROBUS_STATE_CLOSED;
  if (s->closing) return ZEROBUS_STATE_CLOSING;
  return s->state;
}

/* ------------------------------------------------------------------ queue */

static void chunk_destroy(void *p) {
  free(p);
}

static zb_chunk *chunk_for(zerobus_stream *s, size_t need) {
  zb_chunk *c = s->chunk_tail;
  if (c && c->cap - c->used >= need) return c;
  size_t cap = need > CHUNK_SIZE ? need : CHUNK_SIZE;
  c = malloc(sizeof *c + cap);
  if (!c) return NULL;
  c->next = NULL;
  c->data = (uint8_t *)(c + 1);
  c->cap = cap;
  c->used = 0;
  c->base = grpc_slice_new_with_user_data(c->data, cap, chunk_destroy, c);
  if (s->chunk_tail)
    s->chunk_tail->next = c;
  else
    s->chunk_head = c;
  s->chunk_tail = c;
  return c;
}

/* The queue's reference on fully packed chunks (all but the tail) is dropped. */
static void chunks_release_packed(zerobus_stream *s) {
  while (s->chunk_head && s->chunk_head != s->chunk_tail) {
    zb_chunk *c = s->chunk_head;
    if (s->next_unpacked < s->next_offset) {
      /* still used when an unpacked item lives in it (items are in chunk
       * order; ext items have no chunk) */
      int used = 0;
      for (int64_t o = s->next_unpacked; o < s->next_offset; o++) {
        const zb_item *x = &s->items[(size_t)o & (s->items_cap - 1)];
        if (x->chunk == c) {
          used = 1;
          break;
        }
        if (x->chunk && x->chunk != c) break; /* items are in chunk order */
      }
      if (used) break;
    }
    s->chunk_head = c->next;
    grpc_slice_unref(c->base);
  }
}

static int items_reserve(zerobus_stream *s) {
  size_t used = (size_t)(s->next_offset - s->items_base);
  if (used < s->items_cap) return 0;
  size_t ncap = s->items_cap ? s->items_cap * 2 : 1024;
  zb_item *n = malloc(ncap * sizeof *n);
  if (!n) return -1;
  for (int64_t o = s->items_base; o < s->next_offset; o++)
    n[(size_t)o & (ncap - 1)] = s->items[(size_t)o & (s->items_cap - 1)];
  free(s->items);
  s->items = n;
  s->items_cap = ncap;
  return 0;
}

static zb_item *item_at(zerobus_stream *s, int64_t o) {
  return &s->items[(size_t)o & (s->items_cap - 1)];
}

static int reqs_reserve(zerobus_stream *s) {
  if (s->reqs_count < s->reqs_cap) return 0;
  size_t ncap = s->reqs_cap ? s->reqs_cap * 2 : 256;
  zb_req *n = malloc(ncap * sizeof *n);
  if (!n) return -1;
  for (size_t i = 0; i < s->reqs_count; i++) n[i] = s->reqs[(s->reqs_head + i) % s->reqs_cap];
  free(s->reqs);
  s->reqs = n;
  s->reqs_cap = ncap;
  s->reqs_head = 0;
  return 0;
}

static zb_req *req_at(zerobus_stream *s, size_t i) {
  return &s->reqs[(s->reqs_head + i) % s->reqs_cap];
}

static void ext_unref(void *p) {
  zb_ext *e = p;
  if (atomic_fetch_sub(&e->refs, 1) == 1) {
    if (e->release) e->release(e->ctx, e->data);
    free(e);
  }
}

/* Packs the next request from unpacked items; NULL when there are none. */
static zb_req *pack_next(zerobus_stream *s) {
  if (s->next_unpacked >= s->next_offset) return NULL;
  if (reqs_reserve(s) != 0) return NULL;
  zb_req *r = &s->reqs[(s->reqs_head + s->reqs_count) % s->reqs_cap];
  memset(r, 0, sizeof *r);
  zb_item *it = item_at(s, s->next_unpacked);
  r->first = s->next_unpacked;
  r->wire = -1;
  if (it->ext) {
    atomic_fetch_add(&it->ext->refs, 1);
    r->body =
        grpc_slice_new_with_user_data((void *)it->ext->data, it->ext->len, ext_unref, it->ext);
    r->hold = r->body;
    r->single = 1;
    r->nrec = 1;
    r->payload = it->payload;
    r->is_ext = 1;
    s->next_unpacked++;
  } else {
    zb_chunk *c = it->chunk;
    size_t start = it->pos, end = it->pos + it->enc_len;
    uint64_t nrec = it->nrec, payload = it->payload;
    uint64_t limit = (uint64_t)s->config.max_request_bytes;
    s->next_unpacked++;
    while (s->next_unpacked < s->next_offset) {
      zb_item *n = item_at(s, s->next_unpacked);
      if (n->chunk != c || n->pos != end || (end - start) + n->enc_len > limit) break;
      end += n->enc_len;
      nrec += n->nrec;
      payload += n->payload;
      s->next_unpacked++;
    }
    r->nrec = nrec;
    r->payload = payload;
    r->single = nrec == 1;
    r->hold = grpc_slice_ref(c->base);
    /* one record: the body is the record itself, without its entry prefix */
    r->body = grpc_slice_sub_no_ref(c->base, r->single ? end - payload : start, end);
  }
  r->last = s->next_unpacked - 1;
  s->reqs_count++;
  chunks_release_packed(s);
  return r;
}

/* Drops an acked (or discarded) request. */
static void req_release(zb_req *r) {
  grpc_slice_unref(r->hold);
}

/* ----------------------------------------------------------------- engine */

static void call_free(zb_call *c) {
  for (size_t i = 0; i < c->n_md; i++) {
    grpc_slice_unref(c->md[i].key);
    grpc_slice_unref(c->md[i].value);
  }
  free(c->md);
  grpc_metadata_array_destroy(&c->md_recv);
  grpc_metadata_array_destroy(&c->trailing);
  if (c->send_create) grpc_byte_buffer_destroy(c->send_create);
  if (c->send_bb) grpc_byte_buffer_destroy(c->send_bb);
  if (c->recv_bb) grpc_byte_buffer_destroy(c->recv_bb);
  grpc_slice_unref(c->details);
  if (c->call) grpc_call_unref(c->call);
  if (c->channel) grpc_channel_destroy(c->channel);
  zerobus_error_destroy(c->local_err);
  free(c);
}

/* Starts a batch on a call; under s->mu. Returns 0 on success. */
static int start_batch(zerobus_stream *s, zb_call *c, const grpc_op *ops, size_t n, int kind) {
  pthread_mutex_lock(&s->call_mu);
  int rc = -1;
  if (c->live) {
    grpc_call_error e = grpc_call_start_batch(c->call, ops, n, &c->tags[kind], NULL);
    if (e == GRPC_CALL_OK) {
      c->pending++;
      rc = 0;
    } else {
      zb_log(&s->logger, ZEROBUS_LOG_ERROR, "grpc_call_start_batch failed (%d)", (int)e);
    }
  }
  pthread_mutex_unlock(&s->call_mu);
  return rc;
}

/* Ends a call from our side with a recorded reason (takes err). */
static void abandon(zerobus_stream *s, zb_call *c, zerobus_error *err) {
  if (!c->local_err) {
    c->local_err = err;
    err = NULL;
    grpc_call_cancel(c->call, NULL);
  }
  zerobus_error_destroy(err);
  (void)s;
}

static void post_read(zerobus_stream *s, zb_call *c) {
  grpc_op ops[2];
  size_t n = 0;
  memset(ops, 0, sizeof ops);
  if (!c->read_first) {
    c->read_first = 1;
    ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[n++].data.recv_initial_metadata.recv_initial_metadata = &c->md_recv;
  }
  ops[n].op = GRPC_OP_RECV_MESSAGE;
  ops[n++].data.recv_message.recv_message = &c->recv_bb;
  if (start_batch(s, c, ops, n, ZB_T_READ) != 0)
    abandon(s, c, zb_error_new(ZEROBUS_ERR_INTERNAL, 1, -1, -1, "cannot post a read"));
}

static void fail_stream(zerobus_stream *s, zerobus_error *err);

/* Moves everything not acked to the unacked set with `err` (once). */
static void freeze_unacked(zerobus_stream *s, const zerobus_error *err) {
  if (s->frozen) return;
  s->frozen = 1;
  if (s->next_offset - 1 > s->acked) {
    zb_events_error(&s->ev, s->acked + 1, s->next_offset - 1, err);
    s->stats.records_failed += s->inflight_records;
  }
}

static void fail_stream(zerobus_stream *s, zerobus_error *err) {
  if (s->state == ZEROBUS_STATE_FAILED) {
    zerobus_error_destroy(err);
    return;
  }
  /* a failed creation is reported to the caller; a live stream's failure is news */
  zb_log(&s->logger, s->ever_created ? ZEROBUS_LOG_ERROR : ZEROBUS_LOG_DEBUG,
         "stream to %s failed: %s (%s)", s->table, err->message, zerobus_status_name(err->code));
  s->state = ZEROBUS_STATE_FAILED;
  set_last_err(s, err);
  if (!s->err)
    s->err = err;
  else
    zerobus_error_destroy(err);
  freeze_unacked(s, s->err);
  if (s->cur)
    abandon(s, s->cur, zb_error_new(ZEROBUS_ERR_STREAM_CLOSED, 0, -1, -1, "stream failed"));
  pthread_cond_broadcast(&s->cv);
}

static int max_attempts(const zerobus_stream *s) {
  return s->config.recovery ? 1 + s->config.recovery_retries : 1;
}

/* An attempt (creation or recovery) failed before the server created the stream. */
static void attempt_failed(zerobus_stream *s, zerobus_error *err) {
  int64_t now = zb_now_ms();
  set_last_err(s, err);
  zb_log(&s->logger, ZEROBUS_LOG_DEBUG, "connection attempt %d of %d failed: %s", s->attempts,
         max_attempts(s), err->message);
  if (s->abort_requested || s->close_requested) {
    zerobus_error_destroy(err);
    return;
  }
  if (err->code == ZEROBUS_ERR_UNAUTHENTICATED && !s->cb.headers && !s->auth_retry_used) {
    /* The cached token may be stale: drop it and try once more with a fresh one. */
    zb_auth_request req = {s->sdk->workspace_url,
                           s->sdk->ep.workspace_id,
                           s->client_id,
                           s->client_secret,
                           s->table,
                           &s->config,
                           &s->logger};
    zb_token_invalidate(s->sdk->tokens, &req);
    s->auth_retry_used = 1;
    s->attempts--;
    s->next_attempt_at = now;
    zerobus_error_destroy(err);
    return;
  }
  if (!err->retryable || s->attempts >= max_attempts(s)) {
    zerobus_error *final = err;
    if (err->retryable && max_attempts(s) > 1) {
      char prefix[96];
      snprintf(prefix, sizeof prefix, "gave up after %d attempts", s->attempts);
      final = zb_error_wrap(ZEROBUS_ERR_RETRIES_EXHAUSTED, s->ever_created ? 0 : 1, err, prefix);
      zerobus_error_destroy(err);
      if (!final) final = zb_error_new(ZEROBUS_ERR_NO_MEMORY, 0, -1, -1, "out of memory");
    }
    fail_stream(s, final);
    return;
  }
  s->next_attempt_at = now + s->config.recovery_backoff_ms;
  zerobus_error_destroy(err);
}

/* A created call ended (or we ended it). */
static void call_failed(zerobus_stream *s, zerobus_error *err) {
  set_last_err(s, err);
  if (s->abort_requested || s->state == ZEROBUS_STATE_FAILED) {
    zerobus_error_destroy(err);
    return;
  }
  int retry = err->retryable;
  if (err->code == ZEROBUS_ERR_UNAUTHENTICATED && !s->cb.headers) {
    zb_auth_request req = {s->sdk->workspace_url,
                           s->sdk->ep.workspace_id,
                           s->client_id,
                           s->client_secret,
                           s->table,
                           &s->config,
                           &s->logger};
    zb_token_invalidate(s->sdk->tokens, &req);
    retry = 1;
  }
  if (!retry || !s->config.recovery) {
    fail_stream(s, err);
    return;
  }
  zb_log(&s->logger, ZEROBUS_LOG_INFO, "stream to %s: call ended (%s), recovering", s->table,
         err->message);
  zerobus_error_destroy(err);
  s->state = ZEROBUS_STATE_RECOVERING;
  s->attempts = 0;
  s->next_attempt_at = zb_now_ms();
  pthread_cond_broadcast(&s->cv);
}

/* Builds the call's metadata; releases mu while the token / provider runs. */
static zerobus_status build_metadata(zerobus_stream *s, grpc_metadata **md_out, size_t *n_out,
                                     zerobus_error **err) {
  zerobus_headers h;
  zb_headers_init(&h);
  zerobus_status st;
  pthread_mutex_unlock(&s->mu);
  if (s->cb.headers) {
    int32_t rc = s->cb.headers(s->cb.user_data, &h);
    st = zb_headers_validate(&h, rc, err);
  } else {
    zb_auth_request req = {s->sdk->workspace_url,
                           s->sdk->ep.workspace_id,
                           s->client_id,
                           s->client_secret,
                           s->table,
                           &s->config,
                           &s->logger};
    char *token = NULL;
    st = zb_token_get(s->sdk->tokens, &req, &token, err);
    if (st == ZEROBUS_OK) {
      size_t n = strlen(token) + 8;
      char *v = malloc(n);
      if (v) {
        snprintf(v, n, "Bearer %s", token);
        st = zerobus_headers_add(&h, "authorization", v);
        if (st == ZEROBUS_OK)
          st = zerobus_headers_add(&h, "x-databricks-zerobus-table-name", s->table);
        memset(v, 0, n);
        free(v);
      } else {
        st = ZEROBUS_ERR_NO_MEMORY;
      }
      zb_secret_free(token);
      if (st != ZEROBUS_OK) st = zb_fail(err, st, 0, "cannot build the call headers");
    }
  }
  pthread_mutex_lock(&s->mu);
  if (st != ZEROBUS_OK) {
    zb_headers_clear(&h);
    return st;
  }
  int have_sdk = zb_headers_get(&h, "x-zerobus-sdk") != NULL;
  size_t n = h.count + (have_sdk ? 0 : 1);
  grpc_metadata *md = calloc(n ? n : 1, sizeof *md);
  if (!md) {
    zb_headers_clear(&h);
    return zb_fail(err, ZEROBUS_ERR_NO_MEMORY, 0, "out of memory");
  }
  for (size_t i = 0; i < h.count; i++) {
    md[i].key = grpc_slice_from_copied_string(h.items[i].key);
    md[i].value = grpc_slice_from_copied_string(h.items[i].value);
  }
  if (!have_sdk) {
    md[h.count].key = grpc_slice_from_static_string("x-zerobus-sdk");
    md[h.count].value = grpc_slice_from_copied_string(s->sdk->sdk_header);
  }
  zb_headers_clear(&h);
  *md_out = md;
  *n_out = n;
  return ZEROBUS_OK;
}

/* Starts one connection attempt (creation or recovery), or, with same_attempt,
 * a new connection inside the current attempt. Under mu. */
static void start_attempt(zerobus_stream *s, int same_attempt) {
  s->conn_retry_at = 0;
  if (!same_attempt) {
    s->attempts++;
    if (s->ever_created) s->stats.recovery_attempts++;
    s->attempt_deadline = zb_now_ms() + s->config.recovery_timeout_ms;
    s->conn_retry_delay = 100;
    zb_log(&s->logger, ZEROBUS_LOG_DEBUG, "stream to %s: connection attempt %d of %d (%s)",
           s->table, s->attempts, max_attempts(s), s->ever_created ? "recovery" : "creation");
  }
  zerobus_error *e = NULL;
  grpc_metadata *md = NULL;
  size_t n_md = 0;
  if (build_metadata(s, &md, &n_md, &e) != ZEROBUS_OK) {
    attempt_failed(s, e ? e : zb_error_new(ZEROBUS_ERR_INTERNAL, 1, -1, -1, "headers failed"));
    return;
  }
  if (s->abort_requested || s->close_requested || s->state == ZEROBUS_STATE_FAILED) {
    for (size_t i = 0; i < n_md; i++) {
      grpc_slice_unref(md[i].key);
      grpc_slice_unref(md[i].value);
    }
    free(md);
    return;
  }
  zb_call *c = calloc(1, sizeof *c);
  if (!c) {
    free(md);
    attempt_failed(s, zb_error_new(ZEROBUS_ERR_NO_MEMORY, 1, -1, -1, "out of memory"));
    return;
  }
  c->s = s;
  c->md = md;
  c->n_md = n_md;
  c->last_ack = -1;
  c->details = grpc_empty_slice();
  for (int i = 0; i < 6; i++) {
    c->tags[i].call = c;
    c->tags[i].kind = i;
  }
  grpc_metadata_array_init(&c->md_recv);
  grpc_metadata_array_init(&c->trailing);
  c->channel = zb_sdk_channel_new(s->sdk);
  if (c->channel)
    c->call = grpc_channel_create_call(c->channel, NULL, GRPC_PROPAGATE_DEFAULTS, s->cq,
                                       grpc_slice_from_static_string(METHOD), NULL,
                                       gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
  if (!c->call) {
    call_free(c);
    attempt_failed(s, zb_error_new(ZEROBUS_ERR_INTERNAL, 1, -1, -1, "cannot create a gRPC call"));
    return;
  }
  c->live = 1;
  c->deadline = s->attempt_deadline;
  c->ack_clock = zb_now_ms();
  grpc_op ops[2];
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  ops[0].data.recv_status_on_client.trailing_metadata = &c->trailing;
  ops[0].data.recv_status_on_client.status = &c->status;
  ops[0].data.recv_status_on_client.status_details = &c->details;
  if (start_batch(s, c, ops, 1, ZB_T_STATUS) != 0) {
    c->live = 0;
    call_free(c);
    attempt_failed(s, zb_error_new(ZEROBUS_ERR_INTERNAL, 1, -1, -1, "cannot start a gRPC call"));
    return;
  }
  s->cur = c;
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[0].data.send_initial_metadata.count = c->n_md;
  ops[0].data.send_initial_metadata.metadata = c->md;
  ops[1].op = GRPC_OP_SEND_MESSAGE;
  grpc_slice cs = s->create_msg;
  c->send_create = grpc_raw_byte_buffer_create(&cs, 1);
  ops[1].data.send_message.send_message = c->send_create;
  /* create_stream is a SEND_MESSAGE too: no request may be written before its
   * completion, even if the server's answer is handled first */
  c->write_inflight = 1;
  if (start_batch(s, c, ops, 2, ZB_T_START) != 0) {
    abandon(s, c, zb_error_new(ZEROBUS_ERR_INTERNAL, 1, -1, -1, "cannot send create_stream"));
    return;
  }
  post_read(s, c);
}

/* Writes the next request when the call is idle. Under mu. */
static void pump(zerobus_stream *s) {
  zb_call *c = s->cur;
  if (!c || !c->created || c->ended || c->local_err || c->write_inflight || c->halfclosed ||
      s->state != ZEROBUS_STATE_ACTIVE || s->frozen || s->close_requested)
    return;
  if (s->send_idx == s->reqs_count && !pack_next(s)) return;
  zb_req *r = req_at(s, s->send_idx);
  uint8_t hdr[32];
  size_t body_len = GRPC_SLICE_LENGTH(r->body);
  size_t hl = zb_encode_request_header(hdr, r->single, s->config.record_type == ZB_RECORD_TYPE_JSON,
                                       c->next_wire, body_len);
  grpc_slice parts[2] = {grpc_slice_from_copied_buffer((const char *)hdr, hl), r->body};
  grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(parts, 2);
  grpc_slice_unref(parts[0]);
  if (s->send_idx == 0) c->ack_clock = zb_now_ms(); /* first request in flight */
  r->wire = c->next_wire++;
  s->send_idx++;
  s->stats.records_sent += (int64_t)r->nrec;
  s->stats.bytes_sent += (int64_t)r->payload;
  s->stats.requests_sent++;
  if (r->sent_before) s->stats.records_resent += (int64_t)r->nrec;
  r->sent_before = 1;
  /* No GRPC_WRITE_BUFFER_HINT: a hinted write completes while its bytes may sit
   * in gRPC's buffer until the next write, and the next write may not come
   * (close signal pause, close, failure). Packing already makes busy streams
   * write large messages, where the hint buys nothing measurable. */
  grpc_op op;
  memset(&op, 0, sizeof op);
  op.op = GRPC_OP_SEND_MESSAGE;
  op.flags = 0;
  op.data.send_message.send_message = bb;
  c->send_bb = bb;
  c->write_inflight = 1;
  /* gRPC may do real work inside start_batch (framing, a socket write): let
   * producers keep queueing meanwhile. Nothing else starts a write on this call
   * (write_inflight is set) and only this thread frees calls. */
  pthread_mutex_unlock(&s->mu);
  int rc = start_batch(s, c, &op, 1, ZB_T_WRITE);
  pthread_mutex_lock(&s->mu);
  if (rc != 0) {
    c->write_inflight = 0;
    grpc_byte_buffer_destroy(bb);
    c->send_bb = NULL;
    abandon(s, c, zb_error_new(ZEROBUS_ERR_INTERNAL, 1, -1, -1, "cannot write a request"));
  }
}

static void on_created(zerobus_stream *s, zb_call *c, char *stream_id) {
  c->created = 1;
  c->ack_clock = zb_now_ms();
  if (s->stream_id) {
    char **n = realloc(s->old_ids, (s->n_old_ids + 1) * sizeof *n);
    if (n) {
      s->old_ids = n;
      s->old_ids[s->n_old_ids++] = s->stream_id;
    } else {
      free(s->stream_id); /* cannot happen in practice; pointer validity lost */
    }
  }
  s->stream_id = stream_id;
  if (s->ever_created) {
    s->stats.reconnects++;
    zb_log(&s->logger, ZEROBUS_LOG_INFO,
           "stream to %s recovered as %s; re-sending %zu unacked requests", s->table, stream_id,
           s->reqs_count);
  } else {
    zb_log(&s->logger, ZEROBUS_LOG_DEBUG, "stream to %s created: %s", s->table, stream_id);
  }
  s->ever_created = 1;
  s->attempts = 0;
  s->auth_retry_used = 0;
  s->send_idx = 0; /* replay every unacked request first */
  for (size_t i = 0; i < s->reqs_count; i++) req_at(s, i)->wire = -1;
  s->state = ZEROBUS_STATE_ACTIVE;
  pthread_cond_broadcast(&s->cv);
}

static void on_ack(zerobus_stream *s, zb_call *c, const zb_server_msg *m) {
  int64_t a = m->has_offset ? m->offset : -1;
  switch (zb_ack_classify(c->last_ack, c->next_wire - 1, m->has_offset, a)) {
    case ZB_ACK_NO_OFFSET:
      abandon(
          s, c,
          zb_error_new(ZEROBUS_ERR_PROTOCOL, 1, -1, -1, "protocol error: ack without an offset"));
      return;
    case ZB_ACK_DUPLICATE:
      return; /* a repeated cumulative ack changes nothing */
    case ZB_ACK_BACKWARDS:
      abandon(s, c,
              zb_error_new(ZEROBUS_ERR_PROTOCOL, 1, -1, -1,
                           "protocol error: ack went backwards (%lld after %lld)", (long long)a,
                           (long long)c->last_ack));
      return;
    case ZB_ACK_BEYOND:
      abandon(s, c,
              zb_error_new(ZEROBUS_ERR_PROTOCOL, 1, -1, -1,
                           "protocol error: ack of offset %lld beyond the last sent (%lld)",
                           (long long)a, (long long)(c->next_wire - 1)));
      return;
    default: /* ZB_ACK_ADVANCE */
      break;
  }
  c->last_ack = a;
  s->stats.acks_received++;
  if (s->frozen) return;
  size_t n = zb_ack_covered(s->reqs, s->reqs_cap, s->reqs_head, s->reqs_count, s->send_idx, a);
  for (size_t i = 0; i < n; i++) {
    zb_req *r = req_at(s, 0);
    s->acked = r->last;
    s->stats.records_acked += (int64_t)r->nrec;
    s->stats.bytes_acked += (int64_t)r->payload;
    s->inflight_records -= (int64_t)r->nrec;
    s->inflight_bytes -= (int64_t)r->payload;
    if (r->is_ext) {
      zb_item *it = item_at(s, r->first);
      ext_unref(it->ext);
      it->ext = NULL;
    }
    s->items_base = r->last + 1;
    req_release(r);
    s->reqs_head = (s->reqs_head + 1) % s->reqs_cap;
    s->reqs_count--;
    s->send_idx--;
  }
  if (n > 0) {
    zb_events_ack(&s->ev, s->acked);
    broadcast(s);
  }
}

static void on_close_signal(zerobus_stream *s, zb_call *c, const zb_server_msg *m) {
  int64_t dur = m->has_duration ? m->duration_ms : 0;
  int64_t maxw = s->config.stream_paused_max_wait_time_ms;
  int64_t pause = maxw < 0 ? dur : (maxw < dur ? maxw : dur);
  zb_log(&s->logger, ZEROBUS_LOG_INFO,
         "stream to %s: server close signal (ends in %lld ms); pausing up to %lld ms", s->table,
         (long long)dur, (long long)pause);
  if (s->state != ZEROBUS_STATE_ACTIVE) return;
  s->state = ZEROBUS_STATE_PAUSED;
  s->pause_until = zb_now_ms() + pause;
  (void)c;
}

static void handle_status(zerobus_stream *s, zb_call *c) {
  c->ended = 1;
  pthread_mutex_lock(&s->call_mu);
  c->live = 0;
  pthread_mutex_unlock(&s->call_mu);
  if (c != s->cur) return; /* an older call, already dealt with */
  s->cur = NULL;
  c->next = s->zombies;
  s->zombies = c;
  if (s->abort_requested) return;
  if (s->close_requested) {
    zb_log(&s->logger, ZEROBUS_LOG_DEBUG, "stream to %s: call ended (status %d)", s->table,
           (int)c->status);
    return;
  }
  zerobus_error *err;
  if (c->local_err) {
    err = c->local_err;
    c->local_err = NULL;
  } else if (c->status == GRPC_STATUS_OK) {
    err = zb_error_new(ZEROBUS_ERR_SERVER, 1, 0, -1, "the server ended the stream");
  } else {
    char *details = grpc_slice_to_c_string(c->details);
    err = zb_error_from_grpc((int)c->status, details, s->table);
    gpr_free(details);
  }
  if (!err) err = zb_error_new(ZEROBUS_ERR_NO_MEMORY, 1, -1, -1, "out of memory");
  if (!c->created && !c->local_err && c->status == GRPC_STATUS_UNAVAILABLE &&
      grpc_channel_check_connectivity_state(c->channel, 0) == GRPC_CHANNEL_TRANSIENT_FAILURE) {
    /* No connection at all (refused, TLS handshake, proxy): try again inside
     * this attempt while its deadline allows. */
    int64_t now = zb_now_ms();
    if (now + s->conn_retry_delay < s->attempt_deadline && !s->close_requested) {
      /* the first failure of an attempt is worth a warning (a wrong CA or proxy
       * otherwise looks like a hang until the attempts run out) */
      zb_log(&s->logger, s->conn_retry_delay == 100 ? ZEROBUS_LOG_WARN : ZEROBUS_LOG_DEBUG,
             "stream to %s: cannot connect (%s); trying again in %lld ms", s->table, err->message,
             (long long)s->conn_retry_delay);
      set_last_err(s, err);
      zerobus_error_destroy(err);
      s->conn_retry_at = now + s->conn_retry_delay;
      s->conn_retry_delay = s->conn_retry_delay * 2 > 1000 ? 1000 : s->conn_retry_delay * 2;
      return;
    }
  }
  if (!c->created)
    attempt_failed(s, err);
  else
    call_failed(s, err);
}

static void handle_read(zerobus_stream *s, zb_call *c, int ok) {
  grpc_byte_buffer *bb = c->recv_bb;
  c->recv_bb = NULL;
  if (!ok || !bb || c != s->cur || c->ended || c->local_err) {
    if (bb) grpc_byte_buffer_destroy(bb);
    return; /* the status says why */
  }
  zb_server_msg m;
  int decoded = zb_decode_response(bb, &m);
  grpc_byte_buffer_destroy(bb);
  c->ack_clock = zb_now_ms();
  if (!decoded || m.kind == 0) {
    abandon(s, c,
            zb_error_new(ZEROBUS_ERR_PROTOCOL, 1, -1, -1,
                         "protocol error: undecodable message from the server"));
    return;
  }
  if (m.kind == 1) {
    if (c->created) {
      free(m.stream_id);
      abandon(s, c,
              zb_error_new(ZEROBUS_ERR_PROTOCOL, 1, -1, -1,
                           "protocol error: second create_stream_response"));
      return;
    }
    on_created(s, c, m.stream_id);
  } else if (!c->created) {
    abandon(s, c,
            zb_error_new(ZEROBUS_ERR_PROTOCOL, 1, -1, -1,
                         "protocol error: message before create_stream_response"));
    return;
  } else if (m.kind == 2) {
    on_ack(s, c, &m);
  } else {
    on_close_signal(s, c, &m);
  }
  if (!c->local_err && !c->ended) post_read(s, c);
}

static void handle_event(zerobus_stream *s, zb_tag *t, int ok) {
  zb_call *c = t->call;
  switch (t->kind) {
    case ZB_T_START:
      if (c->send_create) {
        grpc_byte_buffer_destroy(c->send_create);
        c->send_create = NULL;
      }
      c->write_inflight = 0;
      break;
    case ZB_T_READ:
      handle_read(s, c, ok);
      break;
    case ZB_T_WRITE:
      if (c->send_bb) grpc_byte_buffer_destroy(c->send_bb);
      c->send_bb = NULL;
      c->write_inflight = 0;
      break;
    case ZB_T_STATUS:
      handle_status(s, c);
      break;
    case ZB_T_WAKE:
      s->wake_posted = 0;
      break;
    case ZB_T_HALFCLOSE:
      break;
  }
  pthread_mutex_lock(&s->call_mu);
  int left = --c->pending;
  pthread_mutex_unlock(&s->call_mu);
  if (left == 0 && c->ended) {
    zb_call **pp = &s->zombies;
    while (*pp && *pp != c) pp = &(*pp)->next;
    if (*pp) *pp = c->next;
    call_free(c);
  }
}

/* Wakes the engine (under mu). Only possible while a call is live. */
static void wake_engine(zerobus_stream *s) {
  zb_call *c = s->cur;
  if (!c || s->wake_posted) return;
  if (start_batch(s, c, NULL, 0, ZB_T_WAKE) == 0) s->wake_posted = 1;
}

/* Timers and state transitions; under mu. Returns the next wake-up time. */
static int64_t run_timers(zerobus_stream *s) {
  int64_t now = zb_now_ms();
  int64_t next = now + ENGINE_TICK_MS;
  zb_call *c = s->cur;
  if (s->abort_requested) {
    if (c) abandon(s, c, zb_error_new(ZEROBUS_ERR_STREAM_CLOSED, 0, -1, -1, "stream destroyed"));
    return next;
  }
  if (s->state == ZEROBUS_STATE_FAILED) return next;
  if (s->close_requested) {
    if (!c) {
      s->state = ZEROBUS_STATE_CLOSED;
    } else if (!c->created || s->frozen || c->local_err) {
      abandon(s, c, zb_error_new(ZEROBUS_ERR_STREAM_CLOSED, 0, -1, -1, "stream closed"));
    } else if (!c->halfclosed && !c->write_inflight) {
      grpc_op op;
      memset(&op, 0, sizeof op);
      op.op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
      c->halfclosed = 1;
      s->close_deadline = now + CLOSE_STATUS_WAIT_MS;
      if (start_batch(s, c, &op, 1, ZB_T_HALFCLOSE) != 0)
        abandon(s, c, zb_error_new(ZEROBUS_ERR_STREAM_CLOSED, 0, -1, -1, "stream closed"));
    } else if (c->halfclosed && now >= s->close_deadline) {
      zb_log(&s->logger, ZEROBUS_LOG_WARN,
             "stream to %s: no status %d ms after half-close; cancelling", s->table,
             CLOSE_STATUS_WAIT_MS);
      abandon(s, c, zb_error_new(ZEROBUS_ERR_STREAM_CLOSED, 0, -1, -1, "stream closed"));
    }
    return next;
  }
  if (!c) {
    if ((s->state == ZEROBUS_STATE_OPENING || s->state == ZEROBUS_STATE_RECOVERING ||
         s->state == ZEROBUS_STATE_PAUSED)) {
      if (s->state == ZEROBUS_STATE_PAUSED) s->state = ZEROBUS_STATE_RECOVERING;
      if (s->conn_retry_at) {
        if (now >= s->conn_retry_at) {
          start_attempt(s, 1);
          now = zb_now_ms();
          next = now + ENGINE_TICK_MS;
        } else if (s->conn_retry_at < next) {
          next = s->conn_retry_at;
        }
      } else if (now >= s->next_attempt_at) {
        start_attempt(s, 0);
        now = zb_now_ms();
        next = now + ENGINE_TICK_MS;
      } else if (s->next_attempt_at < next) {
        next = s->next_attempt_at;
      }
    }
    return next;
  }
  if (c->local_err) return next;
  if (!c->created) {
    if (now >= c->deadline) {
      long long ms = (long long)s->config.recovery_timeout_ms;
      zerobus_error *te;
      if (grpc_channel_check_connectivity_state(c->channel, 0) == GRPC_CHANNEL_READY) {
        te = zb_error_new(ZEROBUS_ERR_TIMEOUT, 1, -1, -1,
                          "no answer to create_stream within %lld ms (recovery_timeout_ms)", ms);
      } else if (s->conn_retry_delay > 100 && s->last_err) {
        /* The deadline fell while a retried connection was still being set up
         * (slow handshakes): the attempt reports the connection error it saw,
         * as when the deadline falls between two tries, not a bare timeout. */
        char prefix[256];
        snprintf(prefix, sizeof prefix, "could not connect to %s within %lld ms", s->sdk->ep.target,
                 ms);
        te = zb_error_wrap(s->last_err->code, s->last_err->retryable, s->last_err, prefix);
      } else {
        te = zb_error_new(ZEROBUS_ERR_TIMEOUT, 1, -1, -1,
                          "could not connect to %s within %lld ms (recovery_timeout_ms)",
                          s->sdk->ep.target, ms);
      }
      abandon(s, c, te);
    } else if (c->deadline < next) {
      next = c->deadline;
    }
    return next;
  }
  if (s->state == ZEROBUS_STATE_PAUSED) {
    if (now >= s->pause_until || s->send_idx == 0) {
      zb_log(&s->logger, ZEROBUS_LOG_DEBUG, "stream to %s: reconnecting after close signal",
             s->table);
      abandon(s, c,
              zb_error_new(ZEROBUS_ERR_SERVER, 1, -1, -1,
                           "server close signal: moving to a new stream"));
      return next;
    }
    if (s->pause_until < next) next = s->pause_until;
  }
  if (s->send_idx > 0) {
    int64_t due = c->ack_clock + s->config.server_lack_of_ack_timeout_ms;
    if (now >= due) {
      abandon(s, c,
              zb_error_new(ZEROBUS_ERR_ACK_TIMEOUT, 1, -1, -1,
                           "no message from the server for %lld ms with records in flight "
                           "(server_lack_of_ack_timeout_ms)",
                           (long long)s->config.server_lack_of_ack_timeout_ms));
    } else if (due < next) {
      next = due;
    }
  }
  return next;
}

static int engine_done(zerobus_stream *s) {
  int terminal =
      s->state == ZEROBUS_STATE_FAILED || s->state == ZEROBUS_STATE_CLOSED || s->abort_requested;
  return terminal && !s->cur && !s->zombies;
}

/* The engine thread: owns the completion queue and every call of the stream.
 * With a headers provider it runs a user callback, so it is bracketed by
 * on_thread_start/on_thread_stop (no lock held). */
static void *engine_main(void *arg) {
  zerobus_stream *s = arg;
  int hooks = s->cb.headers != NULL;
  if (hooks && s->cb.on_thread_start) s->cb.on_thread_start(s->cb.user_data, "zerobus-engine");
  pthread_mutex_lock(&s->mu);
  for (;;) {
    int64_t next = run_timers(s);
    pump(s);
    if (engine_done(s)) break;
    int64_t wait = next - zb_now_ms();
    if (wait < 0) wait = 0;
    if (wait > ENGINE_TICK_MS) wait = ENGINE_TICK_MS;
    pthread_mutex_unlock(&s->mu);
    gpr_timespec dl =
        gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(wait, GPR_TIMESPAN));
    grpc_event ev = grpc_completion_queue_next(s->cq, dl, NULL);
    pthread_mutex_lock(&s->mu);
    while (ev.type == GRPC_OP_COMPLETE) {
      handle_event(s, (zb_tag *)ev.tag, ev.success);
      pump(s);
      pthread_mutex_unlock(&s->mu);
      ev = grpc_completion_queue_next(s->cq, gpr_inf_past(GPR_CLOCK_MONOTONIC), NULL);
      pthread_mutex_lock(&s->mu);
    }
  }
  s->engine_exited = 1;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
  zb_events_finish(&s->ev);
  /* Every path that frees the stream joins this thread first, so this runs
   * before user_data_free. */
  if (hooks && s->cb.on_thread_stop) s->cb.on_thread_stop(s->cb.user_data);
  return NULL;
}

/* ------------------------------------------------------------ stream life */

static void stream_free(zerobus_stream *s) {
  /* engine joined, dispatcher joined */
  for (size_t i = 0; i < s->reqs_count; i++) req_release(req_at(s, i));
  free(s->reqs);
  for (int64_t o = s->items_base; o < s->next_offset; o++) {
    zb_item *it = item_at(s, o);
    if (it->ext) ext_unref(it->ext);
  }
  free(s->items);
  while (s->chunk_head) {
    zb_chunk *c = s->chunk_head;
    s->chunk_head = c->next;
    grpc_slice_unref(c->base);
  }
  if (s->cq) {
    grpc_completion_queue_shutdown(s->cq);
    while (grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(s->cq);
  }
  grpc_slice_unref(s->create_msg);
  zb_events_destroy(&s->ev);
  zerobus_error_destroy(s->err);
  zerobus_error_destroy(s->last_err);
  zerobus_error_destroy(s->close_result);
  free(s->stream_id);
  for (size_t i = 0; i < s->n_old_ids; i++) free(s->old_ids[i]);
  free(s->old_ids);
  zb_config_free(&s->config);
  free(s->table);
  free(s->descriptor);
  zb_secret_free(s->client_id);
  zb_secret_free(s->client_secret);
  pthread_cond_destroy(&s->cv);
  pthread_mutex_destroy(&s->mu);
  pthread_mutex_destroy(&s->call_mu);
  if (s->cb.user_data_free) s->cb.user_data_free(s->cb.user_data);
  zb_sdk_unref(s->sdk);
  free(s);
}

static void copy_callbacks(zerobus_callbacks *dst, const zerobus_callbacks *src) {
  memset(dst, 0, sizeof *dst);
  if (!src) return;
  size_t n = src->struct_size < sizeof *dst ? src->struct_size : sizeof *dst;
  memcpy(dst, src, n);
  dst->struct_size = sizeof *dst;
}

zerobus_status zb_stream_open(zerobus_sdk *sdk, const char *table, const void *descriptor,
                              size_t descriptor_len, const char *client_id,
                              const char *client_secret, const zb_config *cfg,
                              const zerobus_callbacks *callbacks, zerobus_stream **out,
                              zerobus_error **err) {
  zerobus_stream *s = calloc(1, sizeof *s);
  if (!s) {
    if (callbacks && callbacks->struct_size >= offsetof(zerobus_callbacks, on_ack_range) &&
        callbacks->user_data_free)
      callbacks->user_data_free(callbacks->user_data);
    return zb_fail(err, ZEROBUS_ERR_NO_MEMORY, 0, "out of memory");
  }
  copy_callbacks(&s->cb, callbacks);
  zb_sdk_ref(sdk);
  s->sdk = sdk;
  pthread_mutex_init(&s->mu, NULL);
  pthread_mutex_init(&s->call_mu, NULL);
  cond_init(&s->cv);
  zb_events_init(&s->ev);
  s->acked = -1;
  s->create_msg = grpc_empty_slice();
  zerobus_status st = zb_config_copy(&s->config, cfg);
  s->table = strdup(table);
  if (descriptor_len) {
    s->descriptor = malloc(descriptor_len);
    if (s->descriptor) memcpy(s->descriptor, descriptor, descriptor_len);
  }
  s->descriptor_len = descriptor_len;
  s->client_id = client_id ? zb_secret_dup(client_id) : NULL;
  s->client_secret = client_secret ? zb_secret_dup(client_secret) : NULL;
  s->cq = grpc_completion_queue_create_for_next(NULL);
  if (st == ZEROBUS_OK &&
      (!s->table || (descriptor_len && !s->descriptor) || (client_id && !s->client_id) ||
       (client_secret && !s->client_secret) || !s->cq || s->ev.efd < 0))
    st = zb_fail(err, ZEROBUS_ERR_NO_MEMORY, 0, "out of memory or file descriptors");
  else if (st != ZEROBUS_OK)
    st = zb_fail(err, st, 0, "cannot copy the stream options");
  if (st != ZEROBUS_OK) {
    stream_free(s);
    return st;
  }
  s->logger.level = s->config.log_level;
  if (s->cb.on_log) {
    s->logger.sink = zb_events_log_sink;
    s->logger.ctx = s;
  }
  s->create_msg =
      zb_encode_create(s->table, s->config.record_type, s->descriptor, s->descriptor_len);
  s->state = ZEROBUS_STATE_OPENING;
  s->next_attempt_at = zb_now_ms();
  if (s->config.dispatch_thread && zb_events_start_dispatcher(s) != 0) {
    stream_free(s);
    return zb_fail(err, ZEROBUS_ERR_INTERNAL, 0, "cannot start the dispatcher thread");
  }
  if (pthread_create(&s->engine, NULL, engine_main, s) != 0) {
    zb_events_stop_dispatcher(s, 0);
    stream_free(s);
    return zb_fail(err, ZEROBUS_ERR_INTERNAL, 0, "cannot start the engine thread");
  }
  s->engine_started = 1;
  pthread_mutex_lock(&s->mu);
  while (!s->ever_created && s->state != ZEROBUS_STATE_FAILED) wait_until(s, -1);
  if (s->state == ZEROBUS_STATE_FAILED) {
    st = zb_fail_copy(err, s->err);
    while (!s->engine_exited) wait_until(s, -1);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->engine, NULL);
    zb_events_stop_dispatcher(s, 0);
    stream_free(s);
    return st;
  }
  pthread_mutex_unlock(&s->mu);
  *out = s;
  return ZEROBUS_OK;
}

ZEROBUS_API zerobus_status zerobus_stream_create(zerobus_sdk *sdk, const char *table_name,
                                                 const void *descriptor, size_t descriptor_len,
                                                 const char *client_id, const char *client_secret,
                                                 const zerobus_options *opts,
                                                 const zerobus_callbacks *callbacks,
                                                 zerobus_stream **out, zerobus_error **err) {
  if (err) *err = NULL;
  if (out) *out = NULL;
  const char *problem = NULL;
  if (!sdk)
    problem = "sdk must not be NULL";
  else if (!out)
    problem = "out must not be NULL";
  else if (!table_name || !*table_name)
    problem = "table_name must not be NULL or empty";
  else if (!zb_table_name_valid(table_name))
    problem = "table_name must be catalog.schema.table (three non-empty parts)";
  else if (callbacks && callbacks->struct_size < offsetof(zerobus_callbacks, on_ack))
    problem = "callbacks->struct_size is too small (use zerobus_callbacks_init)";
  int has_headers = callbacks &&
                    callbacks->struct_size >= offsetof(zerobus_callbacks, user_data_free) &&
                    callbacks->headers;
  if (!problem && !has_headers && (!client_id || !*client_id || !client_secret || !*client_secret))
    problem = "client_id and client_secret are required unless a headers provider is set";
  zb_config cfg;
  zb_config_defaults(&cfg);
  zerobus_status st = ZEROBUS_OK;
  if (!problem) {
    st = zb_config_copy(&cfg, &sdk->config);
    if (st == ZEROBUS_OK)
      st = zb_config_apply(&cfg, opts, "stream", err);
    else
      st = zb_fail(err, st, 0, "out of memory");
  }
  if (!problem && st == ZEROBUS_OK && cfg.record_type == ZB_RECORD_TYPE_PROTO) {
    if (!descriptor || descriptor_len == 0) {
      problem =
          "a PROTO stream needs a descriptor (serialized DescriptorProto); "
          "set record_type=json for JSON records";
    } else {
      Google__Protobuf__DescriptorProto *d =
          google__protobuf__descriptor_proto__unpack(NULL, descriptor_len, descriptor);
      if (!d)
        problem = "descriptor is not a serialized google.protobuf.DescriptorProto";
      else
        google__protobuf__descriptor_proto__free_unpacked(d, NULL);
    }
  }
  if (problem || st != ZEROBUS_OK) {
    zb_config_free(&cfg);
    if (callbacks && callbacks->struct_size >= offsetof(zerobus_callbacks, on_ack_range) &&
        callbacks->user_data_free)
      callbacks->user_data_free(callbacks->user_data);
    if (problem) return zb_fail(err, ZEROBUS_ERR_INVALID_ARGUMENT, 0, "%s", problem);
    return st;
  }
  st = zb_stream_open(sdk, table_name, cfg.record_type == ZB_RECORD_TYPE_PROTO ? descriptor : NULL,
                      cfg.record_type == ZB_RECORD_TYPE_PROTO ? descriptor_len : 0,
                      has_headers ? NULL : client_id, has_headers ? NULL : client_secret, &cfg,
                      callbacks, out, err);
  zb_config_free(&cfg);
  return st;
}

/* ----------------------------------------------------------------- ingest */

static zerobus_status ingest(zerobus_stream *s, const void *const *data, const size_t *lens,
                             size_t n, zb_ext *ext, uint32_t flags, int64_t *offset,
                             zerobus_error **err) {
  uint64_t payload = 0, enc = 0;
  if (flags & ~(uint32_t)ZEROBUS_INGEST_NONBLOCK)
    return zb_fail(err, ZEROBUS_ERR_INVALID_ARGUMENT, 0, "unknown ingest flags 0x%x",
                   (unsigned)(flags & ~(uint32_t)ZEROBUS_INGEST_NONBLOCK));
  for (size_t i = 0; i < n; i++) {
    payload += lens[i];
    enc += 1 + zb_varint_len(lens[i]) + lens[i];
  }
  uint64_t limit = (uint64_t)s->config.max_request_bytes;
  if ((n == 1 && payload > limit) || (n > 1 && enc > limit))
    return zb_fail(err, ZEROBUS_ERR_RECORD_TOO_LARGE, 0,
                   "%s of %llu bytes is larger than max_request_bytes (%llu)",
                   n == 1 ? "record" : "batch", (unsigned long long)(n == 1 ? payload : enc),
                   (unsigned long long)limit);
  if (s->config.record_type == ZB_RECORD_TYPE_JSON && s->config.validate_json) {
    for (size_t i = 0; i < n; i++) {
      zerobus_error *je = NULL;
      if (zb_json_check_object(data[i], lens[i], &je) != ZEROBUS_OK) {
        zerobus_status st;
        if (n > 1) {
          zerobus_error *w =
              zb_error_new(ZEROBUS_ERR_INVALID_RECORD, 0, -1, -1, "record %zu of the batch: %s", i,
                           je ? je->message : "invalid JSON");
          st = zb_fail_copy(err, w);
          zerobus_error_destroy(w);
        } else {
          st = je ? zb_fail_copy(err, je)
                  : zb_fail(err, ZEROBUS_ERR_INVALID_RECORD, 0, "invalid JSON record");
        }
        zerobus_error_destroy(je);
        return st;
      }
    }
  }
  if (ext) enc = 0;
  pthread_mutex_lock(&s->mu);
  for (;;) {
    if (s->closing || s->state == ZEROBUS_STATE_FAILED || s->state == ZEROBUS_STATE_CLOSED ||
        atomic_load(&s->destroying)) {
      zerobus_status st = closed_error(s, err);
      pthread_mutex_unlock(&s->mu);
      return st;
    }
    if (s->inflight_records == 0 ||
        (s->inflight_records + (int64_t)n <= s->config.max_inflight_records &&
         s->inflight_bytes + (int64_t)payload <= s->config.max_inflight_bytes))
      break;
    if (flags & ZEROBUS_INGEST_NONBLOCK) {
      /* read under the lock: the engine thread updates them on every ack */
      long long recs = (long long)s->inflight_records, bytes = (long long)s->inflight_bytes;
      pthread_mutex_unlock(&s->mu);
      return zb_fail(err, ZEROBUS_ERR_QUEUE_FULL, 1,
                     "in-flight limit reached (%lld records, %lld bytes in flight)", recs, bytes);
    }
    wait_until(s, -1);
  }
  if (items_reserve(s) != 0) {
    pthread_mutex_unlock(&s->mu);
    return zb_fail(err, ZEROBUS_ERR_NO_MEMORY, 1, "out of memory");
  }
  zb_item *it = item_at(s, s->next_offset);
  if (ext) {
    it->chunk = NULL;
    it->pos = 0;
    it->enc_len = 0;
    it->ext = ext;
  } else {
    zb_chunk *c = chunk_for(s, enc);
    if (!c) {
      pthread_mutex_unlock(&s->mu);
      return zb_fail(err, ZEROBUS_ERR_NO_MEMORY, 1, "out of memory");
    }
    uint8_t *p = c->data + c->used;
    for (size_t i = 0; i < n; i++) {
      *p++ = 0x0a;
      p += zb_varint_put(p, lens[i]);
      if (lens[i]) memcpy(p, data[i], lens[i]);
      p += lens[i];
    }
    it->chunk = c;
    it->pos = (uint32_t)c->used;
    it->enc_len = enc;
    it->ext = NULL;
    c->used += enc;
  }
  it->nrec = (uint32_t)n;
  it->payload = payload;
  int64_t o = s->next_offset++;
  s->inflight_records += (int64_t)n;
  s->inflight_bytes += (int64_t)payload;
  s->stats.records_queued += (int64_t)n;
  s->stats.bytes_queued += (int64_t)payload;
  if (s->state == ZEROBUS_STATE_ACTIVE && s->cur && s->cur->created && !s->cur->write_inflight)
    wake_engine(s);
  pthread_mutex_unlock(&s->mu);
  if (offset) *offset = o;
  return ZEROBUS_OK;
}

ZEROBUS_API zerobus_status zerobus_stream_ingest(zerobus_stream *s, const void *data, size_t len,
                                                 uint32_t flags, int64_t *offset,
                                                 zerobus_error **err) {
  if (err) *err = NULL;
  if (offset) *offset = -1;
  if (!s) return zb_fail(err, ZEROBUS_ERR_INVALID_ARGUMENT, 0, "stream must not be NULL");
  if (!data && len) return zb_fail(err, ZEROBUS_ERR_INVALID_ARGUMENT, 0, "data is NULL");
  if (zb_stream_enter_or_fail(s, err) != ZEROBUS_OK) return ZEROBUS_ERR_STREAM_CLOSED;
  const void *d[1] = {data ? data : ""};
  size_t l[1] = {len};
  zerobus_status st = ingest(s, d, l, 1, NULL, flags, offset, err);
  zb_stream_leave(s);
  return st;
}

ZEROBUS_API zerobus_status zerobus_stream_ingest_batch(zerobus_stream *s, const void *const *data,
                                                       const size_t *lens, size_t n, uint32_t flags,
                                                       int64_t *offset, zerobus_error **err) {
  if (err) *err = NULL;
  if (offset) *offset = -1;
  if (!s) return zb_fail(err, ZEROBUS_ERR_INVALID_ARGUMENT, 0, "stream must not be NULL");
  if (n == 0) return ZEROBUS_OK;
  if (!data || !lens)
    return zb_fail(err, ZEROBUS_ERR_INVALID_ARGUMENT, 0, "data and lens must not be NULL");
  if (n > UINT32_MAX)
    return zb_fail(err, ZEROBUS_ERR_RECORD_TOO_LARGE, 0, "batch of %zu records is too large", n);
  for (size_t i = 0; i < n; i++)
    if (!data[i] && lens[i])
      return zb_fail(err, ZEROBUS_ERR_INVALID_ARGUMENT, 0, "data[%zu] is NULL", i);
  if (zb_stream_enter_or_fail(s, err) != ZEROBUS_OK) return ZEROBUS_ERR_STREAM_CLOSED;
  zerobus_status st;
  int has_null = 0;
  for (size_t i = 0; i < n; i++) has_null |= data[i] == NULL;
  if (has_null) {
    const void **d = malloc(n * sizeof *d);
    if (!d) {
      zb_stream_leave(s);
      return zb_fail(err, ZEROBUS_ERR_NO_MEMORY, 1, "out of memory");
    }
    for (size_t i = 0; i < n; i++) d[i] = data[i] ? data[i] : "";
    st = ingest(s, d, lens, n, NULL, flags, offset, err);
    free(d);
  } else {
    st = ingest(s, data, lens, n, NULL, flags, offset, err);
  }
  zb_stream_leave(s);
  return st;
}

ZEROBUS_API zerobus_status zerobus_stream_ingest_nocopy(zerobus_stream *s, const void *data,
                                                        size_t len, uint32_t flags,
                                                        void (*release)(void *, const void *),
                                                        void *release_ctx, int64_t *offset,
                                                        zerobus_error **err) {
  if (err) *err = NULL;
  if (offset) *offset = -1;
  zerobus_status st;
  if (!s || (!data && len)) {
    st = zb_fail(err, ZEROBUS_ERR_INVALID_ARGUMENT, 0, "stream and data must not be NULL");
    if (release) release(release_ctx, data);
    return st;
  }
  if (!zb_stream_enter(s)) {
    if (release) release(release_ctx, data);
    return zb_fail(err, ZEROBUS_ERR_STREAM_CLOSED, 0, "stream is being destroyed");
  }
  zb_ext *e = malloc(sizeof *e);
  if (!e) {
    zb_stream_leave(s);
    if (release) release(release_ctx, data);
    return zb_fail(err, ZEROBUS_ERR_NO_MEMORY, 1, "out of memory");
  }
  e->data = data ? data : "";
  e->len = len;
  e->release = release;
  e->ctx = release_ctx;
  atomic_init(&e->refs, 1);
  const void *d[1] = {e->data};
  size_t l[1] = {len};
  st = ingest(s, d, l, 1, e, flags, offset, err);
  zb_stream_leave(s);
  if (st != ZEROBUS_OK) {
    e->data = data; /* release gets the caller's pointer back */
    ext_unref(e);
  }
  return st;
}

/* ------------------------------------------------------------ flush, close */

/* Under mu: waits until `target` is durable. */
static zerobus_status wait_acked(zerobus_stream *s, int64_t target, int64_t deadline,
                                 zerobus_error **err) {
  for (;;) {
    if (s->acked >= target) return ZEROBUS_OK;
    if (atomic_load(&s->destroying) || s->abort_requested)
      return zb_fail(err, ZEROBUS_ERR_STREAM_CLOSED, 0, "stream is being destroyed");
    if (s->state == ZEROBUS_STATE_FAILED) return zb_fail_copy(err, s->err);
    if (s->frozen || s->close_done) {
      if (s->close_result) return zb_fail_copy(err, s->close_result);
      return closed_error(s, err);
    }
    if (zb_now_ms() >= deadline)
      return zb_fail(err, ZEROBUS_ERR_TIMEOUT, 1,
                     "timed out waiting for offset %lld to be acknowledged (acked up to %lld)",
                     (long long)target, (long long)s->acked);
    wait_until(s, deadline);
  }
}

static int64_t deadline_from(int64_t timeout_ms) {
  int64_t now = zb_now_ms();
  if (timeout_ms > INT64_MAX / 4) return INT64_MAX / 2;
  return now + timeout_ms;
}

ZEROBUS_API zerobus_status zerobus_stream_wait_for_offset(zerobus_stream *s, int64_t offset,
                                                          int32_t timeout_ms, zerobus_error **err) {
  if (err) *err = NULL;
  if (!s) return zb_fail(err, ZEROBUS_ERR_INVALID_ARGUMENT, 0, "stream must not be NULL");
  if (zb_stream_enter_or_fail(s, err) != ZEROBUS_OK) return ZEROBUS_ERR_STREAM_CLOSED;
  pthread_mutex_lock(&s->mu);
  zerobus_status st;
  if (offset < 0 || offset >= s->next_offset) {
    st = zb_fail(err, ZEROBUS_ERR_INVALID_ARGUMENT, 0,
                 "offset %lld was never handed out (next offset is %lld)", (long long)offset,
                 (long long)s->next_offset);
  } else {
    int64_t t = timeout_ms < 0 ? s->config.flush_timeout_ms : timeout_ms;
    st = wait_acked(s, offset, deadline_from(t), err);
  }
  pthread_mutex_unlock(&s->mu);
  zb_stream_leave(s);
  return st;
}

ZEROBUS_API zerobus_status zerobus_stream_flush(zerobus_stream *s, zerobus_error **err) {
  if (err) *err = NULL;
  if (!s) return zb_fail(err, ZEROBUS_ERR_INVALID_ARGUMENT, 0, "stream must not be NULL");
  if (zb_stream_enter_or_fail(s, err) != ZEROBUS_OK) return ZEROBUS_ERR_STREAM_CLOSED;
  pthread_mutex_lock(&s->mu);
  zerobus_status st;
  if (s->state == ZEROBUS_STATE_FAILED)
    st = zb_fail_copy(err, s->err);
  else
    st = wait_acked(s, s->next_offset - 1, deadline_from(s->config.flush_timeout_ms), err);
  pthread_mutex_unlock(&s->mu);
  zb_stream_leave(s);
  return st;
}

ZEROBUS_API zerobus_status zerobus_stream_close(zerobus_stream *s, zerobus_error **err) {
  if (err) *err = NULL;
  if (!s) return zb_fail(err, ZEROBUS_ERR_INVALID_ARGUMENT, 0, "stream must not be NULL");
  if (zb_stream_enter_or_fail(s, err) != ZEROBUS_OK) return ZEROBUS_ERR_STREAM_CLOSED;
  pthread_mutex_lock(&s->mu);
  if (s->closing) {
    while (!s->close_done && !atomic_load(&s->destroying)) wait_until(s, -1);
    zerobus_status st =
        !s->close_done    ? zb_fail(err, ZEROBUS_ERR_STREAM_CLOSED, 0, "stream is being destroyed")
        : s->close_result ? zb_fail_copy(err, s->close_result)
                          : ZEROBUS_OK;
    pthread_mutex_unlock(&s->mu);
    zb_stream_leave(s);
    return st;
  }
  s->closing = 1;
  broadcast(s); /* blocked ingest calls give up */
  zerobus_error *result = NULL;
  if (s->state == ZEROBUS_STATE_FAILED) {
    result = zerobus_error_clone(s->err);
  } else {
    zerobus_error *e = NULL;
    zb_log(&s->logger, ZEROBUS_LOG_DEBUG, "stream to %s: closing (flushing %lld records)", s->table,
           (long long)s->inflight_records);
    if (wait_acked(s, s->next_offset - 1, deadline_from(s->config.flush_timeout_ms), &e) !=
        ZEROBUS_OK) {
      if (s->state == ZEROBUS_STATE_FAILED) {
        zerobus_error_destroy(e);
        result = zerobus_error_clone(s->err);
      } else if (e && e->code == ZEROBUS_ERR_TIMEOUT) {
        zerobus_error_destroy(e);
        result =
            zb_error_new(ZEROBUS_ERR_TIMEOUT, 0, -1, -1,
                         "close: %lld records were not acknowledged within "
                         "flush_timeout_ms (%lld ms); they are in the unacked set",
                         (long long)s->inflight_records, (long long)s->config.flush_timeout_ms);
        set_last_err(s, result);
        freeze_unacked(s, result);
      } else {
        result = e;
      }
    }
  }
  s->close_requested = 1;
  wake_engine(s);
  while (!s->engine_exited && !atomic_load(&s->destroying)) wait_until(s, -1);
  int join = s->engine_exited && s->engine_started;
  if (join) s->engine_started = 0;
  pthread_mutex_unlock(&s->mu);
  if (join) pthread_join(s->engine, NULL);
  pthread_mutex_lock(&s->mu);
  if (s->state != ZEROBUS_STATE_FAILED) s->state = ZEROBUS_STATE_CLOSED;
  s->close_result = result;
  /* done before draining the dispatcher: a callback calling close() meanwhile
   * gets this result instead of waiting for its own thread to finish */
  s->close_done = 1;
  zb_log(&s->logger, ZEROBUS_LOG_DEBUG, "stream to %s: closed (%s)", s->table,
         result ? result->message : "ok");
  zerobus_status st = result ? zb_fail_copy(err, result) : ZEROBUS_OK;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
  zb_events_stop_dispatcher(s, s->config.callback_max_wait_time_ms);
  zb_stream_leave(s);
  return st;
}

ZEROBUS_API void zerobus_stream_destroy(zerobus_stream *s) {
  if (!s) return;
  atomic_store(&s->destroying, 1);
  pthread_mutex_lock(&s->mu);
  if (!s->close_done) s->abort_requested = 1;
  wake_engine(s);
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
  zb_events_wake_all(&s->ev);
  while (atomic_load(&s->in_calls) > 0) {
    pthread_mutex_lock(&s->mu);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    zb_events_wake_all(&s->ev);
    usleep(1000);
  }
  if (s->engine_started) {
    pthread_join(s->engine, NULL);
    s->engine_started = 0;
  }
  zb_events_stop_dispatcher(s, 0);
  stream_free(s);
}

/* ---------------------------------------------------------- introspection */

ZEROBUS_API zerobus_status zerobus_stream_get_unacked(zerobus_stream *s, zerobus_records **out,
                                                      zerobus_error **err) {
  if (err) *err = NULL;
  if (out) *out = NULL;
  if (!s || !out)
    return zb_fail(err, ZEROBUS_ERR_INVALID_ARGUMENT, 0, "stream and out must not be NULL");
  if (zb_stream_enter_or_fail(s, err) != ZEROBUS_OK) return ZEROBUS_ERR_STREAM_CLOSED;
  pthread_mutex_lock(&s->mu);
  zerobus_status st;
  if (!s->close_done && s->state != ZEROBUS_STATE_FAILED) {
    st = zb_fail(err, ZEROBUS_ERR_INVALID_STATE, 0,
                 "get_unacked needs a closed or failed stream (close it first)");
  } else {
    st = zb_records_from_stream(s, out);
    if (st != ZEROBUS_OK) st = zb_fail(err, st, 0, "out of memory");
  }
  pthread_mutex_unlock(&s->mu);
  zb_stream_leave(s);
  return st;
}

typedef struct recreate_ctx {
  zerobus_stream *ns;
  zerobus_error **err;
  zerobus_status st;
} recreate_ctx;

static int recreate_visit(void *vctx, int64_t offset, const void *const *data, const size_t *lens,
                          size_t n) {
  recreate_ctx *c = vctx;
  (void)offset;
  c->st = zerobus_stream_ingest_batch(c->ns, data, lens, n, 0, NULL, c->err);
  return c->st == ZEROBUS_OK ? 0 : -1;
}

ZEROBUS_API zerobus_status zerobus_stream_recreate(zerobus_stream *old,
                                                   const zerobus_callbacks *callbacks,
                                                   zerobus_stream **out, zerobus_error **err) {
  if (err) *err = NULL;
  if (out) *out = NULL;
  if (!old || !out) {
    if (callbacks && callbacks->struct_size >= offsetof(zerobus_callbacks, on_ack_range) &&
        callbacks->user_data_free)
      callbacks->user_data_free(callbacks->user_data);
    return zb_fail(err, ZEROBUS_ERR_INVALID_ARGUMENT, 0, "old and out must not be NULL");
  }
  if (!zb_stream_enter(old))
    return zb_fail(err, ZEROBUS_ERR_STREAM_CLOSED, 0, "stream is being destroyed");
  pthread_mutex_lock(&old->mu);
  int ok = old->close_done || old->state == ZEROBUS_STATE_FAILED;
  pthread_mutex_unlock(&old->mu);
  if (!ok) {
    zb_stream_leave(old);
    if (callbacks && callbacks->struct_size >= offsetof(zerobus_callbacks, on_ack_range) &&
        callbacks->user_data_free)
      callbacks->user_data_free(callbacks->user_data);
    return zb_fail(err, ZEROBUS_ERR_INVALID_STATE, 0,
                   "recreate needs a closed or failed stream (close it first)");
  }
  zerobus_stream *ns = NULL;
  zerobus_status st =
      zb_stream_open(old->sdk, old->table, old->descriptor, old->descriptor_len, old->client_id,
                     old->client_secret, &old->config, callbacks, &ns, err);
  if (st == ZEROBUS_OK) {
    recreate_ctx c = {ns, err, ZEROBUS_OK};
    pthread_mutex_lock(&old->mu);
    int rc = zb_stream_visit_unacked(old, recreate_visit, &c);
    pthread_mutex_unlock(&old->mu);
    if (rc != 0) {
      st = c.st != ZEROBUS_OK ? c.st : zb_fail(err, ZEROBUS_ERR_NO_MEMORY, 0, "out of memory");
      zerobus_stream_destroy(ns);
      ns = NULL;
    }
  }
  zb_stream_leave(old);
  *out = ns;
  return st;
}

ZEROBUS_API int32_t zerobus_stream_state(zerobus_stream *s) {
  if (!s) return -ZEROBUS_ERR_INVALID_ARGUMENT;
  if (!zb_stream_enter(s)) return ZEROBUS_STATE_CLOSED;
  pthread_mutex_lock(&s->mu);
  int st = public_state(s);
  pthread_mutex_unlock(&s->mu);
  zb_stream_leave(s);
  return st;
}

ZEROBUS_API const char *zerobus_stream_id(zerobus_stream *s) {
  if (!s) return NULL;
  if (!zb_stream_enter(s)) return NULL;
  pthread_mutex_lock(&s->mu);
  const char *id = s->stream_id;
  pthread_mutex_unlock(&s->mu);
  zb_stream_leave(s);
  return id;
}

ZEROBUS_API const char *zerobus_stream_table_name(zerobus_stream *s) {
  return s ? s->table : NULL;
}

ZEROBUS_API zerobus_status zerobus_stream_get_stats(zerobus_stream *s, zerobus_stream_stats *out) {
  if (!s || !out || out->struct_size < sizeof(uint32_t)) return ZEROBUS_ERR_INVALID_ARGUMENT;
  if (!zb_stream_enter(s)) return ZEROBUS_ERR_STREAM_CLOSED;
  zerobus_stream_stats st;
  pthread_mutex_lock(&s->mu);
  st = s->stats;
  st.state = public_state(s);
  st.inflight_records = s->inflight_records;
  st.inflight_bytes = s->inflight_bytes;
  st.last_offset = s->next_offset - 1;
  st.acked_offset = s->acked;
  pthread_mutex_unlock(&s->mu);
  zb_stream_leave(s);
  /* Fill what both sides know; struct_size tells the caller how much that was. */
  uint32_t size = out->struct_size < sizeof st ? out->struct_size : (uint32_t)sizeof st;
  st.struct_size = size;
  memcpy(out, &st, size);
  return ZEROBUS_OK;
}

ZEROBUS_API zerobus_status zerobus_stream_last_error(zerobus_stream *s, zerobus_error **out) {
  if (!s || !out) return ZEROBUS_ERR_INVALID_ARGUMENT;
  *out = NULL;
  if (!zb_stream_enter(s)) return ZEROBUS_ERR_STREAM_CLOSED;
  pthread_mutex_lock(&s->mu);
  const zerobus_error *e = s->err ? s->err : s->close_result ? s->close_result : s->last_err;
  if (e) *out = zerobus_error_clone(e);
  pthread_mutex_unlock(&s->mu);
  zb_stream_leave(s);
  return ZEROBUS_OK;
}
