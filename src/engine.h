/*
 * engine.h - private declarations of the stream engine (sdk.c, stream.c,
 * transport.c, events.c, records.c). Never installed; not used by the support
 * modules.
 *
 * Threads of one stream (each has one job):
 *  - the engine thread (stream.c, engine_main): owns the stream's completion
 *    queue and every gRPC call of the stream. It opens calls (creation and
 *    recovery attempts), packs queued ingest calls into requests and writes them
 *    (one SEND_MESSAGE in flight), reads acks, runs the timers (attempt timeout,
 *    backoff, lack-of-ack, pause after a close signal, close handshake) on the
 *    cq_next deadline tick, and exits when the stream is closed or failed.
 *  - the dispatcher thread (events.c, optional, option dispatch_thread): runs the
 *    user's callbacks from the event queue.
 *  - application threads: ingest (append to the queue under the stream lock and,
 *    only when the engine is idle, wake it with an empty batch), flush, close,
 *    poll.
 *
 * Locks (order: mu -> call_mu, mu -> ev_mu; never the reverse):
 *  - stream->mu: queue, offsets, requests, state, stats.
 *  - stream->call_mu: grpc_call_start_batch on the live call (gRPC wants those
 *    serialized) and the call's pending-op count.
 *  - stream->ev.mu: the event queue (acks watermark, errors, logs).
 */
#ifndef ZEROBUS_ENGINE_H
#define ZEROBUS_ENGINE_H

#include <pthread.h>
#include <stdatomic.h>

#include <grpc/grpc.h>
#include <grpc/slice.h>

#include "internal.h"

/* ---------------------------------------------------------------- SDK */

struct zerobus_sdk {
  atomic_int refs; /* the user's handle + one per stream */
  zb_endpoint ep;
  char *workspace_url;
  zb_config config; /* sdk,stream scopes applied */
  zb_token_cache *tokens;
  char *sdk_header; /* x-zerobus-sdk value */
  char *pem_roots;  /* CA bundle for TLS (NULL = gRPC's default roots) */
  char *proxy;      /* proxy URL for the endpoint host, NULL = direct */
};

void zb_sdk_ref(zerobus_sdk *sdk);
void zb_sdk_unref(zerobus_sdk *sdk);
/* A fresh channel for one connection attempt (own subchannel pool, so a new
 * attempt never inherits a connection in backoff). NULL on failure. */
grpc_channel *zb_sdk_channel_new(zerobus_sdk *sdk);

/* ------------------------------------------------------------- queue */

/* Arena chunk: queued records encoded as protobuf `repeated bytes` entries
 * (0x0a, varint length, bytes). `base` is a refcounted gRPC slice over data;
 * requests hold sub-slices, the queue holds `base` until the engine has packed
 * every entry of the chunk. */
typedef struct zb_chunk {
  struct zb_chunk *next;
  grpc_slice base;
  uint8_t *data;
  size_t cap, used;
} zb_chunk;

/* A caller-owned record (zerobus_stream_ingest_nocopy). */
typedef struct zb_ext {
  const void *data;
  size_t len;
  void (*release)(void *ctx, const void *data);
  void *ctx;
  atomic_int refs; /* the item + every slice that references the data */
} zb_ext;

/* One ingest call = one logical offset. */
typedef struct zb_item {
  zb_chunk *chunk; /* NULL for ext items */
  uint32_t pos;    /* first entry in chunk->data */
  uint32_t nrec;
  uint64_t enc_len; /* bytes of entries in the chunk */
  uint64_t payload; /* sum of record lengths */
  zb_ext *ext;
} zb_item;

/* One request (wire message) built from consecutive items. */
typedef struct zb_req {
  int64_t first, last; /* logical offsets */
  int64_t wire;        /* wire offset on the current call, -1 = not sent there */
  uint64_t nrec, payload;
  int single;      /* IngestRecordRequest (exactly one record) */
  grpc_slice hold; /* our reference (chunk base or ext slice) */
  grpc_slice body; /* view inside hold; immutable; kept for replay */
  int sent_before; /* written at least once (for records_resent) */
  int is_ext;      /* body is a caller's record (nocopy) */
} zb_req;

/* ------------------------------------------------------------ events */

typedef struct zb_event_item {
  struct zb_event_item *next;
  int32_t kind;
  int32_t status;
  int64_t first, last;
  zerobus_error *error;
  char *message;
} zb_event_item;

typedef struct zb_events {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int64_t acked_upto;     /* highest durable logical offset announced */
  int64_t delivered_upto; /* highest acked offset handed to the user */
  zb_event_item *head, *tail;
  zb_event_item *handed; /* items returned by the last poll_events */
  int efd;
  int efd_armed;
  int finished; /* the stream will produce no more events: pollers stop waiting */
  int waiters;
  /* zerobus_stream_wake: every wake bumps wake_gen (waiting pollers return) and
   * sets wake_pending (the next poll returns at once when none was waiting) */
  uint64_t wake_gen;
  int wake_pending;
  /* dispatcher */
  int dispatch;
  pthread_t thread;
  int thread_started;
  int stop;              /* stop requested */
  int64_t stop_deadline; /* deliver until this time (-1: forever) */
  int in_callback;
  pthread_t cb_thread;
} zb_events;

/* ------------------------------------------------------------ calls */

enum zb_tag_kind { ZB_T_START, ZB_T_READ, ZB_T_WRITE, ZB_T_STATUS, ZB_T_WAKE, ZB_T_HALFCLOSE };

struct zb_call;
typedef struct zb_tag {
  struct zb_call *call;
  int kind;
} zb_tag;

typedef struct zb_call {
  struct zb_call *next; /* zombie list */
  zerobus_stream *s;
  grpc_channel *channel;
  grpc_call *call;
  zb_tag tags[6];
  int pending; /* batches started and not completed (under call_mu) */
  int live;    /* may still start batches (under call_mu) */
  /* metadata sent (kept until ZB_T_START completes) */
  grpc_metadata *md;
  size_t n_md;
  grpc_metadata_array md_recv, trailing;
  grpc_byte_buffer *send_create, *send_bb, *recv_bb;
  grpc_status_code status;
  grpc_slice details;
  int read_first;     /* first read also receives initial metadata */
  int created;        /* create_stream_response seen */
  int ended;          /* status received */
  int write_inflight; /* one SEND_MESSAGE outstanding */
  int halfclosed;
  zerobus_error *local_err; /* reason we cancelled it */
  int64_t deadline;         /* attempt timeout (until created) */
  int64_t next_wire;
  int64_t last_ack;  /* -1 */
  int64_t ack_clock; /* last server message, or first send when idle */
  size_t sent_reqs;  /* requests written on this call (index into requests) */
} zb_call;

/* ----------------------------------------------------------- stream */

struct zerobus_stream {
  zerobus_sdk *sdk;
  zb_config config;
  char *table;
  void *descriptor;
  size_t descriptor_len;
  char *client_id, *client_secret; /* secrets: zb_secret_free */
  zerobus_callbacks cb;
  zb_logger logger;

  pthread_mutex_t mu;
  pthread_cond_t cv; /* state changes, acks, space: every waiter re-checks */
  pthread_mutex_t call_mu;

  atomic_int in_calls; /* API calls inside (destroy waits for 0) */
  atomic_int destroying;

  /* state (under mu) */
  int state;   /* ZEROBUS_STATE_* of the engine */
  int closing; /* close() started: ingest refused */
  int close_done;
  int close_requested; /* engine: end the call (flush done or given up) */
  int abort_requested; /* destroy: drop everything */
  int frozen;          /* unacked moved to the unacked set: ignore acks */
  zerobus_error *err;  /* terminal error (failed stream / close result) */
  zerobus_error *last_err;
  zerobus_error *close_result;
  int waiters;

  /* queue (under mu) */
  zb_chunk *chunk_head, *chunk_tail;
  zb_item *items; /* ring, index (offset & mask) */
  size_t items_cap;
  int64_t items_base; /* lowest logical offset still held (= acked+1) */
  int64_t next_offset;
  int64_t next_unpacked; /* first item not yet in a request */
  int64_t acked;         /* highest durable logical offset, -1 */
  int64_t inflight_records, inflight_bytes;
  zb_req *reqs; /* ring of unacked requests */
  size_t reqs_cap, reqs_head, reqs_count;
  size_t send_idx; /* requests [0, send_idx) of the ring are written on the current call */
  int wake_posted;
  grpc_slice create_msg; /* serialized create_stream, reused by every attempt */

  /* engine (engine thread; read by others under mu) */
  pthread_t engine;
  int engine_started;
  int engine_exited;
  grpc_completion_queue *cq;
  zb_call *cur;
  zb_call *zombies;
  int attempts;        /* attempts used in the current budget */
  int auth_retry_used; /* UNAUTHENTICATED: one fresh-token attempt */
  int ever_created;
  int64_t next_attempt_at;
  /* A connection that could not be established (refused, TLS, proxy) is retried
   * within the same attempt until its deadline, so a short outage does not burn
   * the whole budget; the last connection error is what the attempt reports. */
  int64_t conn_retry_at;    /* 0 = none pending */
  int64_t conn_retry_delay; /* ms, doubles up to 1 s */
  int64_t attempt_deadline;
  int64_t pause_until; /* PAUSED */
  int64_t close_deadline;
  char *stream_id; /* current (under mu) */
  char **old_ids;  /* previous ids, freed at destroy */
  size_t n_old_ids;

  zerobus_stream_stats stats; /* counters (under mu) */

  zb_events ev;
};

/* engine helpers shared between files */
zerobus_status zb_stream_open(zerobus_sdk *sdk, const char *table, const void *descriptor,
                              size_t descriptor_len, const char *client_id,
                              const char *client_secret, const zb_config *cfg,
                              const zerobus_callbacks *callbacks, zerobus_stream **out,
                              zerobus_error **err);

/* transport.c */
size_t zb_varint_len(uint64_t v);
size_t zb_varint_put(uint8_t *p, uint64_t v);
/* Header of an ingest request whose body (records or entries) is body_len bytes. */
size_t zb_encode_request_header(uint8_t *out, int single, int json, int64_t wire, size_t body_len);
/* Serialized EphemeralStreamRequest{create_stream}. */
grpc_slice zb_encode_create(const char *table, int record_type, const void *descriptor,
                            size_t descriptor_len);
/* Decoded server message. */
typedef struct zb_server_msg {
  int kind; /* 1 create response, 2 ack, 3 close signal, 0 invalid */
  char *stream_id;
  int has_offset;
  int64_t offset;
  int has_duration;
  int64_t duration_ms;
} zb_server_msg;
int zb_decode_response(grpc_byte_buffer *bb, zb_server_msg *out);

/* ack.c: the acknowledgement decisions of on_ack() (stream.c), pure functions. */
enum zb_ack_class {
  ZB_ACK_ADVANCE = 0, /* new cumulative ack within what was sent: apply it */
  ZB_ACK_DUPLICATE,   /* the last ack again: ignored */
  ZB_ACK_BACKWARDS,   /* lower than the last ack: protocol error */
  ZB_ACK_BEYOND,      /* higher than the highest wire offset sent: protocol error */
  ZB_ACK_NO_OFFSET    /* ack without durability_ack_up_to_offset: protocol error */
};
/* Classifies an ack on a call whose last ack is last_ack (-1: none) and whose
 * highest written wire offset is highest_sent_wire (-1: none). */
int zb_ack_classify(int64_t last_ack, int64_t highest_sent_wire, int has_offset, int64_t offset);
/* How many requests at the front of the ring (reqs[head], reqs[(head+1) % cap],
 * ...; count held, the first `sent` of them written on the current call) a
 * cumulative ack of wire offset `ack` covers: the longest prefix of the first
 * min(count, sent) whose wire offset is known (>= 0) and <= ack. The new logical
 * watermark is then the `last` of the last covered request. */
size_t zb_ack_covered(const zb_req *reqs, size_t cap, size_t head, size_t count, size_t sent,
                      int64_t ack);

/* events.c */
void zb_events_init(zb_events *ev);
void zb_events_destroy(zb_events *ev);
void zb_events_ack(zb_events *ev, int64_t upto);
void zb_events_error(zb_events *ev, int64_t first, int64_t last, const zerobus_error *err);
void zb_events_log_sink(void *ctx, int32_t level, const char *message);
int zb_events_start_dispatcher(zerobus_stream *s);
/* Stops the dispatcher: deliver up to wait_ms (-1 forever, 0 none) then join. */
void zb_events_stop_dispatcher(zerobus_stream *s, int64_t wait_ms);
void zb_events_wake_all(zb_events *ev);
/* No more events will come (engine gone): waiting pollers return. */
void zb_events_finish(zb_events *ev);

/* stream.c, for events.c */
int zb_stream_enter(zerobus_stream *s);
zerobus_status zb_stream_enter_or_fail(zerobus_stream *s, zerobus_error **err);
void zb_stream_leave(zerobus_stream *s);

/* records.c */
zerobus_status zb_records_from_stream(zerobus_stream *s, zerobus_records **out);
/* Records of one item (flat) for recreate: callback per item. */
typedef int (*zb_item_visit)(void *ctx, int64_t offset, const void *const *data, const size_t *lens,
                             size_t n);
int zb_stream_visit_unacked(zerobus_stream *s, zb_item_visit fn, void *ctx);

#endif /* ZEROBUS_ENGINE_H */
