/* zerobus-local: the gRPC side (EphemeralStream).
 *
 * Architecture (see /work/shared/notes/grpc-c-core.md, "Server side"):
 * - W worker threads, each owning one completion queue. Every call is bound to the cq
 *   that accepted it, so all of a call's events run on one thread and the call state
 *   needs no lock.
 * - Each worker keeps SLOTS registered-call requests posted; worker 0 also keeps one
 *   generic request posted that answers unregistered methods with UNIMPLEMENTED.
 * - Tags are embedded in the call struct; `pending` counts started batches and the call
 *   is freed when it drops to 0 (RECV_CLOSE_ON_SERVER stays pending for the whole call).
 * - Acks are never sent per message: the storage thread publishes `durable` per stream
 *   and the worker's tick (the cq_next deadline, every --ack-interval-ms) sends the
 *   latest cumulative ack of each call.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "zerobus_service.pb-c.h"
#include "zl.h"

#define SLOTS_PER_WORKER 8
#define IDLE_TICK_MS 100
#define SHUTDOWN_GRACE_MS 5000

typedef enum { K_ACCEPT, K_MD, K_READ, K_WRITE, K_CLOSE, K_STATUS } tag_kind;

struct zcall;
typedef struct tag {
  struct zcall *c;
  tag_kind k;
} tag;

typedef struct worker {
  int idx;
  pthread_t thread;
  grpc_completion_queue *cq;
  struct zcall *live; /* accepted calls of this worker (doubly linked) */
  long long next_tick_ms;
} worker;

typedef struct delayed_ack {
  long long offset, ready_ms;
} delayed_ack;

typedef struct zcall {
  worker *w;
  int generic; /* slot for unregistered methods */
  grpc_call *call;
  gpr_timespec deadline;
  grpc_metadata_array md;
  grpc_call_details details; /* generic only */
  tag t_accept, t_md, t_read, t_write, t_close, t_status;
  int pending;
  unsigned long long seq;
  grpc_byte_buffer *recv_bb, *send_bb;
  int close_cancelled;
  int md_sent, write_busy, status_sent, dead, stop_reading, half_closed, hanging;
  int shutdown_handled;
  /* auth / table */
  char hdr_table[512];
  int faults_taken;
  zl_call_faults f;
  zl_table *table;
  /* stream */
  zl_stream *st;
  int create_resp_pending;
  long long next_wire;  /* expected offset_id of the next request */
  long long records;    /* records received = stream offset of the next record */
  long long last_acked; /* -1 = nothing acked yet */
  /* pending end of call */
  int want_status, status_code, status_after_flush;
  char status_msg[256];
  /* fault bookkeeping */
  int malformed_done, close_signal_sent;
  long long close_deadline_ms;
  delayed_ack *dq;
  int dq_head, dq_len, dq_cap;
  long long dq_last_seen, dq_released;
  long long *cum_records; /* pacing: cumulative records per wire offset */
  size_t cum_cap;
  long long pace_start_ms;
  struct zcall *prev, *next;
} zcall;

static grpc_server *g_server;
static void *g_method;
static worker *g_workers;
static grpc_completion_queue *g_shutdown_cq;
static atomic_llong g_live_calls;
static atomic_ullong g_call_seq;

long long grpc_live_calls(void) {
  return atomic_load(&g_live_calls);
}

/* ------------------------------------------------------------------ connections (peers) */
/* C core does not report connections, so count distinct peer addresses (each client
 * connection has its own source port). */
#define PEER_BUCKETS 1024
typedef struct peer_ent {
  char *peer;
  struct peer_ent *next;
} peer_ent;
static peer_ent *g_peers[PEER_BUCKETS];
static pthread_mutex_t g_peers_mu = PTHREAD_MUTEX_INITIALIZER;

static void note_peer(grpc_call *call) {
  char *peer = grpc_call_get_peer(call);
  if (!peer) return;
  unsigned h = 5381;
  for (const char *p = peer; *p; p++) h = h * 33 + (unsigned char)*p;
  h %= PEER_BUCKETS;
  pthread_mutex_lock(&g_peers_mu);
  peer_ent *e = g_peers[h];
  while (e && strcmp(e->peer, peer) != 0) e = e->next;
  if (!e) {
    e = malloc(sizeof *e);
    if (e) {
      e->peer = strdup(peer);
      e->next = g_peers[h];
      g_peers[h] = e;
      atomic_fetch_add(&g_counters.connections, 1);
    }
  }
  pthread_mutex_unlock(&g_peers_mu);
  gpr_free(peer);
}

static void peers_free(void) {
  for (int i = 0; i < PEER_BUCKETS; i++) {
    peer_ent *e = g_peers[i];
    while (e) {
      peer_ent *n = e->next;
      free(e->peer);
      free(e);
      e = n;
    }
    g_peers[i] = NULL;
  }
}

/* ------------------------------------------------------------------ helpers */
static int start_batch(zcall *c, grpc_op *ops, size_t n, tag *t) {
  grpc_call_error e = grpc_call_start_batch(c->call, ops, n, t, NULL);
  if (e != GRPC_CALL_OK) {
    zl_log("grpc_call_start_batch failed: %d (tag kind %d)", (int)e, (int)t->k);
    return -1;
  }
  c->pending++;
  return 0;
}

static void live_insert(zcall *c) {
  worker *w = c->w;
  c->prev = NULL;
  c->next = w->live;
  if (w->live) w->live->prev = c;
  w->live = c;
}

static void live_remove(zcall *c) {
  worker *w = c->w;
  if (c->prev)
    c->prev->next = c->next;
  else if (w->live == c)
    w->live = c->next;
  if (c->next) c->next->prev = c->prev;
  c->prev = c->next = NULL;
}

static zcall *call_alloc(worker *w, int generic) {
  zcall *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->w = w;
  c->generic = generic;
  grpc_metadata_array_init(&c->md);
  if (generic) grpc_call_details_init(&c->details);
  tag *tags[] = {&c->t_accept, &c->t_md, &c->t_read, &c->t_write, &c->t_close, &c->t_status};
  for (int i = 0; i < 6; i++) {
    tags[i]->c = c;
    tags[i]->k = (tag_kind)i;
  }
  c->last_acked = -1;
  c->dq_last_seen = c->dq_released = -1;
  return c;
}

static void call_free(zcall *c) {
  if (c->call) {
    live_remove(c);
    atomic_fetch_sub(&g_live_calls, 1);
  }
  if (c->st) stream_unref(c->st);
  if (c->recv_bb) grpc_byte_buffer_destroy(c->recv_bb);
  if (c->send_bb) grpc_byte_buffer_destroy(c->send_bb);
  grpc_metadata_array_destroy(&c->md);
  if (c->generic) grpc_call_details_destroy(&c->details);
  if (c->call) grpc_call_unref(c->call);
  free(c->dq);
  free(c->cum_records);
  free(c);
}

static void post_slot(worker *w, int generic) {
  zcall *c = call_alloc(w, generic);
  if (!c) return;
  grpc_call_error e;
  if (generic)
    e = grpc_server_request_call(g_server, &c->call, &c->details, &c->md, w->cq, w->cq,
                                 &c->t_accept);
  else
    e = grpc_server_request_registered_call(g_server, g_method, &c->call, &c->deadline, &c->md,
                                            NULL, w->cq, w->cq, &c->t_accept);
  if (e != GRPC_CALL_OK) {
    zl_log("request call failed: %d", (int)e);
    grpc_metadata_array_destroy(&c->md);
    if (generic) grpc_call_details_destroy(&c->details);
    free(c);
  }
}

/* Copies a metadata value into buf (NUL-terminated); 1 if found. */
static int md_get(const grpc_metadata_array *md, const char *key, char *buf, size_t cap) {
  for (size_t i = 0; i < md->count; i++) {
    if (grpc_slice_str_cmp(md->metadata[i].key, key) == 0) {
      size_t n = GRPC_SLICE_LENGTH(md->metadata[i].value);
      if (n >= cap) n = cap - 1;
      memcpy(buf, GRPC_SLICE_START_PTR(md->metadata[i].value), n);
      buf[n] = 0;
      return 1;
    }
  }
  buf[0] = 0;
  return 0;
}

/* Ends the call now with code/msg (initial metadata included if not yet sent, which
 * makes a trailers-only reply). */
static void send_status(zcall *c, int code, const char *msg) {
  if (c->status_sent || c->dead) return;
  grpc_op ops[2];
  memset(ops, 0, sizeof ops);
  size_t n = 0;
  if (!c->md_sent) {
    ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[n].data.send_initial_metadata.count = 0;
    n++;
    c->md_sent = 1;
  }
  grpc_slice details = grpc_slice_from_copied_string(msg ? msg : "");
  ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
  ops[n].data.send_status_from_server.trailing_metadata_count = 0;
  ops[n].data.send_status_from_server.status = (grpc_status_code)code;
  ops[n].data.send_status_from_server.status_details = &details;
  n++;
  if (start_batch(c, ops, n, &c->t_status) == 0) c->status_sent = 1;
  grpc_slice_unref(details);
  c->stop_reading = 1;
  if (g_cfg.verbose) zl_log("call %llu: status %d '%s'", c->seq, code, msg ? msg : "");
}

static void want_status(zcall *c, int code, const char *msg, int after_flush) {
  if (c->want_status) return; /* the first reason wins */
  c->want_status = 1;
  c->status_code = code;
  c->status_after_flush = after_flush;
  snprintf(c->status_msg, sizeof c->status_msg, "%s", msg);
  c->stop_reading = 1;
}

static void arm_read(zcall *c) {
  if (c->stop_reading || c->status_sent || c->dead) return;
  grpc_op op;
  memset(&op, 0, sizeof op);
  op.op = GRPC_OP_RECV_MESSAGE;
  op.data.recv_message.recv_message = &c->recv_bb;
  start_batch(c, &op, 1, &c->t_read);
}

static void send_response(zcall *c, Databricks__Zerobus__EphemeralStreamResponse *resp) {
  size_t len = databricks__zerobus__ephemeral_stream_response__get_packed_size(resp);
  grpc_slice s = grpc_slice_malloc(len);
  databricks__zerobus__ephemeral_stream_response__pack(resp, GRPC_SLICE_START_PTR(s));
  c->send_bb = grpc_raw_byte_buffer_create(&s, 1);
  grpc_slice_unref(s);
  grpc_op op;
  memset(&op, 0, sizeof op);
  op.op = GRPC_OP_SEND_MESSAGE;
  op.data.send_message.send_message = c->send_bb;
  if (start_batch(c, &op, 1, &c->t_write) == 0) {
    c->write_busy = 1;
  } else {
    grpc_byte_buffer_destroy(c->send_bb);
    c->send_bb = NULL;
  }
}

static void send_ack(zcall *c, long long offset, int with_offset) {
  Databricks__Zerobus__IngestRecordResponse ack = DATABRICKS__ZEROBUS__INGEST_RECORD_RESPONSE__INIT;
  if (with_offset) {
    ack.has_durability_ack_up_to_offset = 1;
    ack.durability_ack_up_to_offset = offset;
  }
  Databricks__Zerobus__EphemeralStreamResponse resp =
      DATABRICKS__ZEROBUS__EPHEMERAL_STREAM_RESPONSE__INIT;
  resp.payload_case =
      DATABRICKS__ZEROBUS__EPHEMERAL_STREAM_RESPONSE__PAYLOAD_INGEST_RECORD_RESPONSE;
  resp.ingest_record_response = &ack;
  send_response(c, &resp);
}

/* ------------------------------------------------------------------ ack computation */
/* The highest wire offset the call may ack now, given durability and its faults.
 * `all_durable` pretends everything received is committed (used to decide whether
 * the call is "flushed" for a status after flush). */
static long long ack_target(zcall *c, long long now, int ignore_faults) {
  long long t = atomic_load(&c->st->durable);
  if (t > c->next_wire - 1) t = c->next_wire - 1;
  if (ignore_faults || !c->f.active) return t;
  if (c->f.no_ack) return -1;
  if (c->f.ack_prefix >= 0 && t > c->f.ack_prefix - 1) t = c->f.ack_prefix - 1;
  if (c->f.malformed && !c->malformed_done && t > c->f.malformed_after) t = c->f.malformed_after;
  if (c->f.close_signal_ms >= 0 && !c->close_signal_sent && t > c->f.close_after)
    t = c->f.close_after;
  if (c->f.ack_delay_ms > 0) {
    /* remember when each new durable offset was first seen, release after the delay */
    if (t > c->dq_last_seen) {
      if (c->dq_len == c->dq_cap) {
        int ncap = c->dq_cap ? c->dq_cap * 2 : 64;
        delayed_ack *n = malloc(sizeof *n * (size_t)ncap);
        if (!n) return c->last_acked;
        for (int i = 0; i < c->dq_len; i++)
          n[i] = c->dq[(c->dq_head + i) % (c->dq_cap ? c->dq_cap : 1)];
        free(c->dq);
        c->dq = n;
        c->dq_head = 0;
        c->dq_cap = ncap;
      }
      c->dq[(c->dq_head + c->dq_len) % c->dq_cap] = (delayed_ack){t, now + c->f.ack_delay_ms};
      c->dq_len++;
      c->dq_last_seen = t;
    }
    while (c->dq_len > 0 && c->dq[c->dq_head].ready_ms <= now) {
      c->dq_released = c->dq[c->dq_head].offset;
      c->dq_head = (c->dq_head + 1) % c->dq_cap;
      c->dq_len--;
    }
    t = c->dq_released;
  }
  if (c->f.max_records_per_sec > 0 && c->cum_records) {
    long long allowed = (now - c->pace_start_ms) * c->f.max_records_per_sec / 1000;
    while (t >= 0 && c->cum_records[t] > allowed) t--;
  }
  return t;
}

/* Sends at most one message (one SEND_MESSAGE in flight), in priority order:
 * create response > malformed ack > close signal > ack > final status.
 * `allow_ack` is 0 on write completions so acks stay coalesced on the tick. */
static void pump(zcall *c, int allow_ack) {
  if (c->dead || c->status_sent || c->hanging || !c->md_sent) return;
  if (c->create_resp_pending) {
    if (c->write_busy) return;
    c->create_resp_pending = 0;
    Databricks__Zerobus__CreateIngestStreamResponse cr =
        DATABRICKS__ZEROBUS__CREATE_INGEST_STREAM_RESPONSE__INIT;
    cr.stream_id = c->st->stream_id;
    Databricks__Zerobus__EphemeralStreamResponse resp =
        DATABRICKS__ZEROBUS__EPHEMERAL_STREAM_RESPONSE__INIT;
    resp.payload_case =
        DATABRICKS__ZEROBUS__EPHEMERAL_STREAM_RESPONSE__PAYLOAD_CREATE_STREAM_RESPONSE;
    resp.create_stream_response = &cr;
    send_response(c, &resp);
    return;
  }
  if (!c->st) {
    if (c->want_status && !c->write_busy) send_status(c, c->status_code, c->status_msg);
    return;
  }
  int err = atomic_load(&c->st->error);
  if (err) {
    send_status(c, err, c->st->errmsg);
    return;
  }
  if (c->write_busy) return;
  long long now = zl_now_ms();
  int ignore_faults = atomic_load(&g_stopping) != 0;
  if (!ignore_faults && c->f.malformed && !c->malformed_done &&
      c->last_acked >= c->f.malformed_after) {
    c->malformed_done = 1;
    long long n = c->f.malformed_after;
    switch (c->f.malformed) {
      case MAL_BACKWARDS:
        send_ack(c, n - 1, 1);
        break;
      case MAL_DUPLICATE:
        send_ack(c, n, 1);
        break;
      case MAL_BEYOND:
        send_ack(c, c->next_wire - 1 + 5, 1);
        break;
      default:
        send_ack(c, 0, 0);
        break;
    }
    return;
  }
  if (!ignore_faults && c->f.close_signal_ms >= 0 && !c->close_signal_sent &&
      c->last_acked >= c->f.close_after) {
    c->close_signal_sent = 1;
    c->close_deadline_ms = now + c->f.close_signal_ms;
    Google__Protobuf__Duration d = GOOGLE__PROTOBUF__DURATION__INIT;
    d.seconds = c->f.close_signal_ms / 1000;
    d.nanos = (int32_t)((c->f.close_signal_ms % 1000) * 1000000);
    Databricks__Zerobus__CloseStreamSignal sig = DATABRICKS__ZEROBUS__CLOSE_STREAM_SIGNAL__INIT;
    sig.duration = &d;
    Databricks__Zerobus__EphemeralStreamResponse resp =
        DATABRICKS__ZEROBUS__EPHEMERAL_STREAM_RESPONSE__INIT;
    resp.payload_case = DATABRICKS__ZEROBUS__EPHEMERAL_STREAM_RESPONSE__PAYLOAD_CLOSE_STREAM_SIGNAL;
    resp.close_stream_signal = &sig;
    send_response(c, &resp);
    return;
  }
  long long t = ack_target(c, now, ignore_faults);
  if (allow_ack && t > c->last_acked) {
    c->last_acked = t;
    send_ack(c, t, 1);
    atomic_fetch_add(&g_counters.acks_sent, 1);
    atomic_fetch_add(&c->table->c.acks_sent, 1);
    return;
  }
  if (c->want_status) {
    if (c->status_after_flush) {
      long long durable = atomic_load(&c->st->durable);
      if (durable < c->next_wire - 1) return;      /* not all committed yet */
      if (t > c->last_acked) return;               /* an ack is still due (next tick) */
      if (!ignore_faults && c->dq_len > 0) return; /* acks held by ack_delay_ms */
    }
    send_status(c, c->status_code, c->status_msg);
  }
}

/* ------------------------------------------------------------------ request handling */
static void make_uuid(char *out) {
  uint8_t b[16];
  if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b) {
    unsigned long long x = (unsigned long long)zl_now_ms() ^ atomic_fetch_add(&g_call_seq, 0);
    for (int i = 0; i < 16; i++) b[i] = (uint8_t)(x >> ((i % 8) * 8)) ^ (uint8_t)(i * 37);
  }
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
           b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
           b[15]);
}

static void handle_create(zcall *c, Databricks__Zerobus__CreateIngestStreamRequest *cs) {
  atomic_fetch_add(&g_counters.create_attempts, 1);
  const char *name = cs->table_name;
  if (!name || !table_name_valid(name)) {
    send_status(c, GRPC_STATUS_INVALID_ARGUMENT,
                "create_stream: table_name must be 'catalog.schema.table' (three non-empty parts)");
    return;
  }
  zl_table *t = tables_get(name, 1);
  if (!t) {
    send_status(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  atomic_fetch_add(&t->c.create_attempts, 1);
  if (!c->table) c->table = t;
  if (!g_cfg.no_auth && strcmp(c->hdr_table, name) != 0) {
    atomic_fetch_add(&t->c.auth_failures, 1);
    char msg[700];
    snprintf(msg, sizeof msg,
             "create_stream table '%.250s' does not match the x-databricks-zerobus-table-name "
             "header '%.250s'",
             name, c->hdr_table);
    send_status(c, GRPC_STATUS_PERMISSION_DENIED, msg);
    return;
  }
  c->table = t;
  if (!c->faults_taken) {
    c->faults_taken = 1;
    faults_next_call(t, c->seq, &c->f);
  }
  if (c->f.active && c->f.fail_create) {
    send_status(c, c->f.fail_create,
                c->f.fail_message[0] ? c->f.fail_message : "zerobus-local: injected fail_create");
    return;
  }
  if (g_cfg.strict_tables && !t->uc_columns) {
    send_status(c, GRPC_STATUS_NOT_FOUND, "table not found (zerobus-local --strict-tables)");
    return;
  }
  if (!cs->has_record_type || (cs->record_type != DATABRICKS__ZEROBUS__RECORD_TYPE__PROTO &&
                               cs->record_type != DATABRICKS__ZEROBUS__RECORD_TYPE__JSON)) {
    send_status(c, GRPC_STATUS_INVALID_ARGUMENT,
                "create_stream: record_type must be PROTO or JSON");
    return;
  }
  pd_schema *schema = NULL;
  if (cs->record_type == DATABRICKS__ZEROBUS__RECORD_TYPE__PROTO) {
    if (!cs->has_descriptor_proto || cs->descriptor_proto.len == 0) {
      send_status(c, GRPC_STATUS_INVALID_ARGUMENT,
                  "create_stream: descriptor_proto is required for PROTO streams");
      return;
    }
    char err[256];
    schema = pd_schema_parse(cs->descriptor_proto.data, cs->descriptor_proto.len, err, sizeof err);
    if (!schema) {
      char msg[320];
      snprintf(msg, sizeof msg, "create_stream: invalid descriptor_proto: %s", err);
      send_status(c, GRPC_STATUS_INVALID_ARGUMENT, msg);
      return;
    }
  }
  c->st = stream_new(t, (int)cs->record_type, schema);
  if (!c->st) {
    pd_schema_free(schema);
    send_status(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  make_uuid(c->st->stream_id);
  atomic_fetch_add(&g_counters.creates, 1);
  atomic_fetch_add(&t->c.creates, 1);
  c->create_resp_pending = 1;
  c->pace_start_ms = zl_now_ms();
  if (g_cfg.verbose)
    zl_log("call %llu: stream %s on %s (%s)", c->seq, c->st->stream_id, name,
           cs->record_type == 1 ? "PROTO" : "JSON");
  pump(c, 0);
}

/* What the protocol checks need from an ingest request. */
typedef struct ingest_info {
  int has_off;
  long long off;
  int kind;    /* record kind carried: 1 PROTO, 2 JSON, 0 none */
  size_t nrec; /* records carried (1 for ingest_record) */
} ingest_info;

static void ingest_info_from_req(const Databricks__Zerobus__EphemeralStreamRequest *req,
                                 ingest_info *in) {
  memset(in, 0, sizeof *in);
  if (req->payload_case == DATABRICKS__ZEROBUS__EPHEMERAL_STREAM_REQUEST__PAYLOAD_INGEST_RECORD) {
    const Databricks__Zerobus__IngestRecordRequest *r = req->ingest_record;
    in->has_off = r->has_offset_id;
    in->off = r->offset_id;
    in->nrec = 1;
    if (r->record_case == DATABRICKS__ZEROBUS__INGEST_RECORD_REQUEST__RECORD_PROTO_ENCODED_RECORD)
      in->kind = 1;
    else if (r->record_case == DATABRICKS__ZEROBUS__INGEST_RECORD_REQUEST__RECORD_JSON_RECORD)
      in->kind = 2;
  } else {
    const Databricks__Zerobus__IngestRecordBatchRequest *b = req->ingest_record_batch;
    in->has_off = b->has_offset_id;
    in->off = b->offset_id;
    if (b->batch_case ==
            DATABRICKS__ZEROBUS__INGEST_RECORD_BATCH_REQUEST__BATCH_PROTO_ENCODED_BATCH &&
        b->proto_encoded_batch) {
      in->kind = 1;
      in->nrec = b->proto_encoded_batch->n_records;
    } else if (b->batch_case ==
                   DATABRICKS__ZEROBUS__INGEST_RECORD_BATCH_REQUEST__BATCH_JSON_BATCH &&
               b->json_batch) {
      in->kind = 2;
      in->nrec = b->json_batch->n_records;
    }
  }
}

/* Runs the protocol checks and faults for one ingest request of `len` bytes. `req` is the
 * unpacked request (NULL in null-store mode's fast path, where nothing is stored).
 * Returns 1 when `req` was handed off (ownership passed), 0 to free it. */
static int handle_ingest(zcall *c, Databricks__Zerobus__EphemeralStreamRequest *req,
                         const ingest_info *in, size_t len) {
  long long off = in->off;
  int has_off = in->has_off;
  size_t nrec = in->nrec;
  int type_ok = in->kind != 0 && in->kind == c->st->record_type;
  char msg[200];
  if (!has_off || off != c->next_wire) {
    if (has_off)
      snprintf(msg, sizeof msg, "offset_id %lld out of sequence: expected %lld", off, c->next_wire);
    else
      snprintf(msg, sizeof msg, "offset_id missing: expected %lld", c->next_wire);
    send_status(c, GRPC_STATUS_INVALID_ARGUMENT, msg);
    return 0;
  }
  if (!type_ok) {
    snprintf(msg, sizeof msg, "record type mismatch: this stream was created for %s records",
             c->st->record_type == 1 ? "PROTO" : "JSON");
    send_status(c, GRPC_STATUS_INVALID_ARGUMENT, msg);
    return 0;
  }
  if (nrec == 0) {
    send_status(c, GRPC_STATUS_INVALID_ARGUMENT, "ingest_record_batch with no records");
    return 0;
  }
  zl_call_faults *f = &c->f;
  if (f->active) {
    if (f->reject_over_bytes >= 0 && (long long)len > f->reject_over_bytes) {
      snprintf(msg, sizeof msg, "request of %zu bytes exceeds the limit of %lld bytes (injected)",
               len, f->reject_over_bytes);
      send_status(c, GRPC_STATUS_INVALID_ARGUMENT, msg);
      return 0;
    }
    if (f->fail_at_request == off) {
      snprintf(msg, sizeof msg, "zerobus-local: injected failure at request %lld", off);
      want_status(c, f->fail_status, msg, 1);
      return 0;
    }
    if (f->drop_at_request == off) {
      c->stop_reading = 1;
      grpc_call_cancel_with_status(c->call, GRPC_STATUS_UNAVAILABLE,
                                   "zerobus-local: connection dropped (injected)", NULL);
      c->dead = 1;
      return 0;
    }
  }
  atomic_fetch_add(&g_counters.requests, 1);
  atomic_fetch_add(&g_counters.records, (long long)nrec);
  atomic_fetch_add(&g_counters.bytes, (long long)len);
  atomic_fetch_add(&c->table->c.requests, 1);
  atomic_fetch_add(&c->table->c.records, (long long)nrec);
  atomic_fetch_add(&c->table->c.bytes, (long long)len);
  if (f->active && f->max_records_per_sec > 0) {
    if ((size_t)off >= c->cum_cap) {
      size_t ncap = c->cum_cap ? c->cum_cap * 2 : 1024;
      long long *n = realloc(c->cum_records, ncap * sizeof *n);
      if (n) {
        c->cum_records = n;
        c->cum_cap = ncap;
      }
    }
    if ((size_t)off < c->cum_cap) c->cum_records[off] = c->records + (long long)nrec;
  }
  long long first = c->records;
  c->records += (long long)nrec;
  c->next_wire++;
  if (g_cfg.store == STORE_NULL || !req) {
    atomic_store(&c->st->durable, off);
    return 0;
  }
  storage_submit(c->st, req, first, off);
  return 1;
}

/* ------------------------------------------------------------------ null-store fast path */
/* With --store null nothing is stored, so an ingest request needs only its offset_id,
 * its record kind and its record count. fast_scan reads them straight from the byte
 * buffer's slices (no flattening, no unpacking, no allocation). It accepts only the
 * canonical encoding every client sends — one payload field covering the whole message;
 * inside it offset_id and one record field, each at most once, with one-byte tags; a
 * batch holding only `records` entries — and checks every length against its enclosing
 * message, so whatever it accepts, protobuf-c would unpack to the same values (protobuf-c
 * does not validate UTF-8 either). Anything else (create_stream, unknown or repeated
 * fields, long varints, truncation, garbage, compressed buffers) returns 0 and takes the
 * normal path: flatten + protobuf-c, whose errors are the reference. */
typedef struct bcur {
  grpc_byte_buffer_reader r;
  const uint8_t *p, *end; /* unread part of the current slice */
  size_t pos;             /* bytes consumed from the start of the message */
} bcur;

static int bcur_fill(bcur *k) {
  while (k->p == k->end) {
    grpc_slice *s;
    if (!grpc_byte_buffer_reader_peek(&k->r, &s)) return 0;
    k->p = GRPC_SLICE_START_PTR(*s);
    k->end = k->p + GRPC_SLICE_LENGTH(*s);
  }
  return 1;
}

static int bcur_byte(bcur *k, uint8_t *out) {
  if (!bcur_fill(k)) return 0;
  *out = *k->p++;
  k->pos++;
  return 1;
}

static int bcur_skip(bcur *k, size_t n) {
  while (n > 0) {
    if (!bcur_fill(k)) return 0;
    size_t avail = (size_t)(k->end - k->p);
    size_t take = n < avail ? n : avail;
    k->p += take;
    k->pos += take;
    n -= take;
  }
  return 1;
}

/* A varint of at most max_bytes bytes that ends at or before `limit`. */
static int bcur_varint(bcur *k, int max_bytes, size_t limit, uint64_t *out) {
  uint64_t v = 0;
  for (int i = 0; i < max_bytes; i++) {
    uint8_t b;
    if (k->pos >= limit || !bcur_byte(k, &b)) return 0;
    v |= (uint64_t)(b & 0x7f) << (7 * i);
    if (!(b & 0x80)) {
      *out = v;
      return 1;
    }
  }
  return 0; /* longer than we accept: let protobuf-c judge it */
}

/* A length prefix (at most 4 bytes, < 256 MiB) whose payload fits before `limit`. */
static int bcur_len(bcur *k, size_t limit, size_t *out) {
  uint64_t v;
  if (!bcur_varint(k, 4, limit, &v) || v > limit - k->pos) return 0;
  *out = (size_t)v;
  return 1;
}

/* Walks the fields of an IngestRecordRequest (is_batch 0) or IngestRecordBatchRequest
 * (is_batch 1) that ends at `end`. */
static int fast_scan_ingest(bcur *k, size_t end, int is_batch, ingest_info *in) {
  while (k->pos < end) {
    uint8_t tag;
    if (!bcur_byte(k, &tag)) return 0;
    if (tag == 0x08) { /* 1: offset_id, varint */
      uint64_t v;
      if (in->has_off || !bcur_varint(k, 9, end, &v)) return 0;
      in->has_off = 1;
      in->off = (long long)v;
    } else if (tag == 0x12 || tag == 0x1a) { /* 2: proto record/batch, 3: json record/batch */
      size_t l;
      if (in->kind || !bcur_len(k, end, &l)) return 0;
      in->kind = tag == 0x12 ? 1 : 2;
      if (!is_batch) {
        if (!bcur_skip(k, l)) return 0;
        in->nrec = 1;
        continue;
      }
      size_t sub_end = k->pos + l;
      size_t n = 0;
      while (k->pos < sub_end) { /* repeated records = 1 */
        uint8_t t;
        size_t rl;
        if (!bcur_byte(k, &t) || t != 0x0a || !bcur_len(k, sub_end, &rl) || !bcur_skip(k, rl))
          return 0;
        n++;
      }
      in->nrec = n;
    } else {
      return 0;
    }
  }
  if (!is_batch) in->nrec = 1;
  return k->pos == end;
}

/* 1 with *in and *payload filled (2 ingest_record, 3 ingest_record_batch) when the
 * request could be read without unpacking; 0 = use the normal path. */
static int fast_scan(grpc_byte_buffer *bb, size_t len, int *payload, ingest_info *in) {
  if (bb->type != GRPC_BB_RAW || bb->data.raw.compression != GRPC_COMPRESS_NONE) return 0;
  bcur k;
  memset(&k, 0, sizeof k);
  memset(in, 0, sizeof *in);
  if (!grpc_byte_buffer_reader_init(&k.r, bb)) return 0;
  int ok = 0;
  uint8_t tag;
  size_t l;
  if (bcur_byte(&k, &tag) && (tag == 0x12 || tag == 0x1a) && bcur_len(&k, len, &l) &&
      k.pos + l == len) {
    *payload = tag >> 3;
    ok = fast_scan_ingest(&k, len, tag == 0x1a, in);
  }
  grpc_byte_buffer_reader_destroy(&k.r);
  return ok;
}

static void on_message(zcall *c, grpc_byte_buffer *bb) {
  if (g_cfg.store == STORE_NULL) {
    size_t blen = grpc_byte_buffer_length(bb);
    int payload;
    ingest_info in;
    if ((long long)blen <= g_cfg.max_message_bytes && fast_scan(bb, blen, &payload, &in)) {
      if (!c->st)
        send_status(c, GRPC_STATUS_INVALID_ARGUMENT, "the first message must be create_stream");
      else
        handle_ingest(c, NULL, &in, blen);
      return;
    }
  }
  grpc_byte_buffer_reader reader;
  if (!grpc_byte_buffer_reader_init(&reader, bb)) {
    send_status(c, GRPC_STATUS_INTERNAL, "cannot read message");
    return;
  }
  grpc_slice s = grpc_byte_buffer_reader_readall(&reader);
  grpc_byte_buffer_reader_destroy(&reader);
  size_t len = GRPC_SLICE_LENGTH(s);
  if ((long long)len > g_cfg.max_message_bytes) {
    grpc_slice_unref(s);
    char msg[160];
    snprintf(msg, sizeof msg, "request of %zu bytes exceeds the maximum of %lld bytes", len,
             g_cfg.max_message_bytes);
    send_status(c, GRPC_STATUS_INVALID_ARGUMENT, msg);
    return;
  }
  Databricks__Zerobus__EphemeralStreamRequest *req =
      databricks__zerobus__ephemeral_stream_request__unpack(NULL, len, GRPC_SLICE_START_PTR(s));
  grpc_slice_unref(s);
  if (!req) {
    send_status(c, GRPC_STATUS_INVALID_ARGUMENT, "malformed EphemeralStreamRequest");
    return;
  }
  int handed_off = 0;
  switch (req->payload_case) {
    case DATABRICKS__ZEROBUS__EPHEMERAL_STREAM_REQUEST__PAYLOAD_CREATE_STREAM:
      if (c->st || c->create_resp_pending)
        send_status(c, GRPC_STATUS_INVALID_ARGUMENT, "create_stream sent twice on one call");
      else
        handle_create(c, req->create_stream);
      break;
    case DATABRICKS__ZEROBUS__EPHEMERAL_STREAM_REQUEST__PAYLOAD_INGEST_RECORD:
    case DATABRICKS__ZEROBUS__EPHEMERAL_STREAM_REQUEST__PAYLOAD_INGEST_RECORD_BATCH:
      if (!c->st)
        send_status(c, GRPC_STATUS_INVALID_ARGUMENT, "the first message must be create_stream");
      else {
        ingest_info in;
        ingest_info_from_req(req, &in);
        handed_off = handle_ingest(c, req, &in, len);
      }
      break;
    default:
      send_status(c, GRPC_STATUS_INVALID_ARGUMENT, "EphemeralStreamRequest without a payload");
      break;
  }
  if (!handed_off) databricks__zerobus__ephemeral_stream_request__free_unpacked(req, NULL);
}

/* ------------------------------------------------------------------ completions */
static void on_accept(zcall *c, int ok) {
  worker *w = c->w;
  if (!ok) { /* server shutting down: no call exists */
    grpc_metadata_array_destroy(&c->md);
    if (c->generic) grpc_call_details_destroy(&c->details);
    free(c);
    return;
  }
  if (!atomic_load(&g_stopping)) post_slot(w, c->generic);
  atomic_fetch_add(&g_live_calls, 1);
  live_insert(c);
  c->seq = atomic_fetch_add(&g_call_seq, 1);
  grpc_op op;
  memset(&op, 0, sizeof op);
  op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
  op.data.recv_close_on_server.cancelled = &c->close_cancelled;
  start_batch(c, &op, 1, &c->t_close);
  if (c->generic) {
    send_status(c, GRPC_STATUS_UNIMPLEMENTED, "zerobus-local implements only EphemeralStream");
    return;
  }
  atomic_fetch_add(&g_counters.calls, 1);
  note_peer(c->call);
  if (atomic_load(&g_stopping)) {
    send_status(c, GRPC_STATUS_UNAVAILABLE, "zerobus-local is shutting down");
    return;
  }
  md_get(&c->md, "x-databricks-zerobus-table-name", c->hdr_table, sizeof c->hdr_table);
  zl_table *t = table_name_valid(c->hdr_table) ? tables_get(c->hdr_table, 1) : NULL;
  c->table = t;
  if (!g_cfg.no_auth) {
    char authz[4096], msg[256];
    md_get(&c->md, "authorization", authz, sizeof authz);
    int code;
    if (!c->hdr_table[0]) {
      code = GRPC_STATUS_UNAUTHENTICATED;
      snprintf(msg, sizeof msg, "missing x-databricks-zerobus-table-name header");
    } else {
      code = auth_check_grpc(authz, c->hdr_table, msg, sizeof msg);
    }
    if (code) {
      if (t) atomic_fetch_add(&t->c.auth_failures, 1);
      send_status(c, code, msg);
      return;
    }
  }
  if (t) {
    c->faults_taken = 1;
    faults_next_call(t, c->seq, &c->f);
    if (c->f.active && c->f.hang_headers) {
      c->hanging = 1; /* no headers, no reads: only RECV_CLOSE stays pending */
      return;
    }
  }
  memset(&op, 0, sizeof op);
  op.op = GRPC_OP_SEND_INITIAL_METADATA;
  op.data.send_initial_metadata.count = 0;
  if (start_batch(c, &op, 1, &c->t_md) == 0) c->md_sent = 1;
  arm_read(c);
}

static void on_read(zcall *c, int ok) {
  grpc_byte_buffer *bb = c->recv_bb;
  c->recv_bb = NULL;
  if (!ok) {
    if (bb) grpc_byte_buffer_destroy(bb);
    c->dead = 1;
    return;
  }
  if (!bb) {
    if (grpc_call_failed_before_recv_message(c->call)) {
      c->dead = 1; /* the peer vanished; RECV_CLOSE will confirm */
      return;
    }
    c->half_closed = 1;
    if (!c->st)
      send_status(c, GRPC_STATUS_INVALID_ARGUMENT, "the call ended before create_stream");
    else
      want_status(c, GRPC_STATUS_OK, "", 1);
    return;
  }
  if (c->stop_reading || c->status_sent || c->dead) {
    grpc_byte_buffer_destroy(bb);
    return;
  }
  on_message(c, bb);
  grpc_byte_buffer_destroy(bb);
  arm_read(c);
}

static void handle_event(tag *t, int ok) {
  zcall *c = t->c;
  if (t->k == K_ACCEPT) {
    on_accept(c, ok);
    if (!ok) return; /* c was freed */
  } else {
    c->pending--;
    switch (t->k) {
      case K_READ:
        on_read(c, ok);
        break;
      case K_WRITE:
        c->write_busy = 0;
        if (c->send_bb) {
          grpc_byte_buffer_destroy(c->send_bb);
          c->send_bb = NULL;
        }
        if (!ok)
          c->dead = 1;
        else
          pump(c, 0);
        break;
      case K_MD:
        if (!ok) c->dead = 1;
        break;
      case K_CLOSE:
        if (c->close_cancelled) c->dead = 1;
        c->stop_reading = 1;
        break;
      case K_STATUS:
        break;
      default:
        break;
    }
  }
  if (c->pending == 0) call_free(c);
}

/* Timer work for every live call of the worker: acks, close deadlines, shutdown. */
static int tick(worker *w, long long now) {
  int busy = 0;
  int stopping = atomic_load(&g_stopping);
  for (zcall *c = w->live, *next; c; c = next) {
    next = c->next;
    if (c->dead || c->status_sent) continue;
    if (stopping && !c->shutdown_handled) {
      c->shutdown_handled = 1;
      if (c->hanging) {
        grpc_call_cancel_with_status(c->call, GRPC_STATUS_UNAVAILABLE,
                                     "zerobus-local is shutting down", NULL);
        c->dead = 1;
        continue;
      }
      if (!c->st && !c->create_resp_pending) {
        send_status(c, GRPC_STATUS_UNAVAILABLE, "zerobus-local is shutting down");
        continue;
      }
      c->want_status = 0; /* shutdown overrides a pending end */
      want_status(c, GRPC_STATUS_UNAVAILABLE, "zerobus-local is shutting down", 1);
    }
    if (c->close_signal_sent && !c->want_status && now >= c->close_deadline_ms)
      want_status(c, GRPC_STATUS_UNAVAILABLE, "stream closed by server after close signal", 0);
    if (c->st) {
      busy = 1;
      pump(c, 1);
    }
  }
  return busy;
}

static void *worker_main(void *arg) {
  worker *w = arg;
  for (int i = 0; i < SLOTS_PER_WORKER; i++) post_slot(w, 0);
  if (w->idx == 0) post_slot(w, 1);
  int busy = 0;
  w->next_tick_ms = zl_now_ms() + g_cfg.ack_interval_ms;
  for (;;) {
    long long now = zl_now_ms();
    long long wait_ms = w->next_tick_ms - now;
    if (wait_ms < 0) wait_ms = 0;
    gpr_timespec dl =
        gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(wait_ms, GPR_TIMESPAN));
    grpc_event ev = grpc_completion_queue_next(w->cq, dl, NULL);
    if (ev.type == GRPC_QUEUE_SHUTDOWN) break;
    if (ev.type == GRPC_OP_COMPLETE) handle_event((tag *)ev.tag, ev.success);
    now = zl_now_ms();
    if (now >= w->next_tick_ms) {
      busy = tick(w, now);
      w->next_tick_ms =
          now + (busy || atomic_load(&g_stopping) ? g_cfg.ack_interval_ms : IDLE_TICK_MS);
    } else if (!busy && ev.type == GRPC_OP_COMPLETE) {
      /* activity on an idle worker: tick soon */
      long long soon = now + g_cfg.ack_interval_ms;
      if (soon < w->next_tick_ms) w->next_tick_ms = soon;
      busy = 1;
    }
  }
  return NULL;
}

/* ------------------------------------------------------------------ start / stop */
static char *read_file_all(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
  if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    buf = NULL;
  }
  if (buf) buf[n] = 0;
  fclose(f);
  return buf;
}

int grpc_side_start(char *err, size_t errlen) {
  grpc_init();
  long long max_rx = g_cfg.max_message_bytes + (1 << 20);
  if (max_rx < 64LL << 20) max_rx = 64LL << 20;
  if (max_rx > 0x7fffffff) max_rx = 0x7fffffff;
  grpc_arg args[6];
  memset(args, 0, sizeof args);
  args[0].type = GRPC_ARG_INTEGER;
  args[0].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
  args[0].value.integer = (int)max_rx;
  args[1].type = GRPC_ARG_INTEGER;
  args[1].key = GRPC_ARG_MAX_SEND_MESSAGE_LENGTH;
  args[1].value.integer = 64 << 20;
  args[2].type = GRPC_ARG_INTEGER;
  args[2].key = GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS;
  args[2].value.integer = 1000;
  args[3].type = GRPC_ARG_INTEGER;
  args[3].key = GRPC_ARG_HTTP2_MAX_PING_STRIKES;
  args[3].value.integer = 0;
  args[4].type = GRPC_ARG_INTEGER;
  args[4].key = GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS;
  args[4].value.integer = 1;
  /* no SO_REUSEPORT: a second server on a busy port must fail, not share it */
  args[5].type = GRPC_ARG_INTEGER;
  args[5].key = GRPC_ARG_ALLOW_REUSEPORT;
  args[5].value.integer = 0;
  grpc_channel_args ca = {6, args};
  g_server = grpc_server_create(&ca, NULL);
  g_method = grpc_server_register_method(g_server, "/databricks.zerobus.Zerobus/EphemeralStream",
                                         NULL, GRPC_SRM_PAYLOAD_NONE, 0);
  g_workers = calloc((size_t)g_cfg.workers, sizeof *g_workers);
  for (int i = 0; i < g_cfg.workers; i++) {
    g_workers[i].idx = i;
    g_workers[i].cq = grpc_completion_queue_create_for_next(NULL);
    grpc_server_register_completion_queue(g_server, g_workers[i].cq, NULL);
  }
  g_shutdown_cq = grpc_completion_queue_create_for_next(NULL);
  grpc_server_register_completion_queue(g_server, g_shutdown_cq, NULL);

  grpc_server_credentials *creds;
  if (g_cfg.tls_cert) {
    char *cert = read_file_all(g_cfg.tls_cert), *key = read_file_all(g_cfg.tls_key);
    if (!cert || !key) {
      snprintf(err, errlen, "cannot read --tls-cert/--tls-key");
      free(cert);
      free(key);
      return -1;
    }
    grpc_ssl_pem_key_cert_pair pair = {key, cert};
    creds = grpc_ssl_server_credentials_create(NULL, &pair, 1, 0, NULL);
    free(cert);
    free(key);
  } else {
    creds = grpc_insecure_server_credentials_create();
  }
  char addr[300];
  snprintf(addr, sizeof addr, "%s:%d", g_cfg.host, g_cfg.grpc_port);
  int port = grpc_server_add_http2_port(g_server, addr, creds);
  grpc_server_credentials_release(creds);
  if (port == 0) {
    snprintf(err, errlen, "cannot listen on %s (gRPC)", addr);
    return -1;
  }
  g_cfg.grpc_port = port;
  grpc_server_start(g_server);
  for (int i = 0; i < g_cfg.workers; i++)
    pthread_create(&g_workers[i].thread, NULL, worker_main, &g_workers[i]);
  return 0;
}

void grpc_side_stop(void) {
  /* g_stopping is already set: workers end live calls with UNAVAILABLE after their
   * last acks, and stop re-posting slots. */
  static int shutdown_tag;
  grpc_server_shutdown_and_notify(g_server, g_shutdown_cq, &shutdown_tag);
  long long deadline = zl_now_ms() + SHUTDOWN_GRACE_MS;
  int got_tag = 0, cancelled = 0;
  for (;;) {
    if (!got_tag) {
      grpc_event ev = grpc_completion_queue_next(
          g_shutdown_cq,
          gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(50, GPR_TIMESPAN)), NULL);
      if (ev.type == GRPC_OP_COMPLETE && ev.tag == &shutdown_tag) got_tag = 1;
    } else {
      usleep(5000);
    }
    if (got_tag && grpc_live_calls() == 0) break;
    if (zl_now_ms() > deadline) {
      if (cancelled) break;
      zl_log("shutdown: grace period over, cancelling %lld live calls", grpc_live_calls());
      grpc_server_cancel_all_calls(g_server);
      cancelled = 1;
      deadline = zl_now_ms() + 2000;
    }
  }
  grpc_server_destroy(g_server);
  for (int i = 0; i < g_cfg.workers; i++) grpc_completion_queue_shutdown(g_workers[i].cq);
  for (int i = 0; i < g_cfg.workers; i++) {
    pthread_join(g_workers[i].thread, NULL);
    grpc_completion_queue_destroy(g_workers[i].cq);
  }
  grpc_completion_queue_shutdown(g_shutdown_cq);
  while (grpc_completion_queue_next(g_shutdown_cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
         GRPC_QUEUE_SHUTDOWN) {
  }
  grpc_completion_queue_destroy(g_shutdown_cq);
  free(g_workers);
  peers_free();
  grpc_shutdown();
}
