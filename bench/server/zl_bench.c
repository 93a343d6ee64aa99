/* zl_bench: a small, fast gRPC C-core client that pushes JSON record batches into
 * zerobus-local and reports the records/s the server sustained (acks included).
 *
 *   zl_bench --target 127.0.0.1:PORT [--streams N] [--records N] [--batch B] [--size S]
 *            [--table cat.sch.tbl] [--window W]
 *
 * Each stream runs on its own thread, connection and completion queue. Requests are
 * hand-encoded once (only the offset varies) so the client costs little per record; a
 * window of W unacked requests keeps the pipe full. Exit 0 when every request was acked.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "zerobus_service.pb-c.h"

static const char *g_target = "127.0.0.1:50051";
static const char *g_table = "bench.zl.records";
static long long g_records = 1000000;
static int g_streams = 1, g_batch = 100, g_size = 20, g_window = 2000;

enum { T_START, T_CREATE, T_WRITE, T_READ, T_STATUS };
static int g_tags[5];

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static size_t put_varint(uint8_t *p, uint64_t v) {
  size_t n = 0;
  do {
    uint8_t b = v & 0x7f;
    v >>= 7;
    p[n++] = b | (v ? 0x80 : 0);
  } while (v);
  return n;
}

typedef struct stream_ctx {
  int idx;
  long long requests; /* requests this stream sends */
  long long acked;    /* highest acked offset */
  int ok;
  char err[256];
} stream_ctx;

/* json_batch (field 3 of IngestRecordBatchRequest) body, shared by all requests */
static uint8_t *g_batch_body;
static size_t g_batch_body_len;

static void build_batch_body(void) {
  size_t cap = (size_t)g_batch * ((size_t)g_size + 64) + 64;
  g_batch_body = malloc(cap);
  size_t n = 0;
  for (int i = 0; i < g_batch; i++) {
    char rec[4096];
    int pad = g_size - 20 > 0 ? g_size - 20 : 1;
    if (pad > 4000) pad = 4000;
    int len =
        snprintf(rec, sizeof rec, "{\"id\":%d,\"v\":\"%.*s\"}", i, pad,
                 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
    if (len > (int)sizeof rec - 1) len = (int)sizeof rec - 1;
    g_batch_body[n++] = 0x0a; /* records = 1, length-delimited */
    n += put_varint(g_batch_body + n, (uint64_t)len);
    memcpy(g_batch_body + n, rec, (size_t)len);
    n += (size_t)len;
  }
  g_batch_body_len = n;
}

/* EphemeralStreamRequest{ingest_record_batch{offset_id, json_batch{records...}}} */
static grpc_byte_buffer *encode_request(long long offset) {
  uint8_t inner_hdr[32], outer_hdr[16];
  size_t ih = 0;
  inner_hdr[ih++] = 0x08; /* offset_id */
  ih += put_varint(inner_hdr + ih, (uint64_t)offset);
  inner_hdr[ih++] = 0x1a; /* json_batch */
  ih += put_varint(inner_hdr + ih, g_batch_body_len);
  size_t inner_len = ih + g_batch_body_len;
  size_t oh = 0;
  outer_hdr[oh++] = 0x1a; /* ingest_record_batch */
  oh += put_varint(outer_hdr + oh, inner_len);
  grpc_slice s = grpc_slice_malloc(oh + inner_len);
  uint8_t *p = GRPC_SLICE_START_PTR(s);
  memcpy(p, outer_hdr, oh);
  memcpy(p + oh, inner_hdr, ih);
  memcpy(p + oh + ih, g_batch_body, g_batch_body_len);
  grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
  grpc_slice_unref(s);
  return bb;
}

static grpc_byte_buffer *encode_create(void) {
  Databricks__Zerobus__CreateIngestStreamRequest cs =
      DATABRICKS__ZEROBUS__CREATE_INGEST_STREAM_REQUEST__INIT;
  cs.table_name = (char *)g_table;
  cs.has_record_type = 1;
  cs.record_type = DATABRICKS__ZEROBUS__RECORD_TYPE__JSON;
  Databricks__Zerobus__EphemeralStreamRequest req =
      DATABRICKS__ZEROBUS__EPHEMERAL_STREAM_REQUEST__INIT;
  req.payload_case = DATABRICKS__ZEROBUS__EPHEMERAL_STREAM_REQUEST__PAYLOAD_CREATE_STREAM;
  req.create_stream = &cs;
  size_t n = databricks__zerobus__ephemeral_stream_request__get_packed_size(&req);
  grpc_slice s = grpc_slice_malloc(n);
  databricks__zerobus__ephemeral_stream_request__pack(&req, GRPC_SLICE_START_PTR(s));
  grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
  grpc_slice_unref(s);
  return bb;
}

static void *run_stream(void *arg) {
  stream_ctx *sc = arg;
  grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
  grpc_arg args[2];
  memset(args, 0, sizeof args);
  args[0].type = GRPC_ARG_INTEGER;
  args[0].key = GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL;
  args[0].value.integer = 1;
  args[1].type = GRPC_ARG_INTEGER;
  args[1].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
  args[1].value.integer = 64 << 20;
  grpc_channel_args ca = {2, args};
  grpc_channel_credentials *creds = grpc_insecure_credentials_create();
  grpc_channel *ch = grpc_channel_create(g_target, creds, &ca);
  grpc_channel_credentials_release(creds);
  grpc_slice method = grpc_slice_from_static_string("/databricks.zerobus.Zerobus/EphemeralStream");
  grpc_call *call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, method, NULL,
                                             gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
  grpc_metadata md[1];
  memset(md, 0, sizeof md);
  md[0].key = grpc_slice_from_static_string("x-databricks-zerobus-table-name");
  md[0].value = grpc_slice_from_static_string(g_table);
  grpc_metadata_array recv_md, trailing;
  grpc_metadata_array_init(&recv_md);
  grpc_metadata_array_init(&trailing);
  grpc_status_code status = GRPC_STATUS_OK;
  grpc_slice details;
  int pending = 0, status_done = 0, write_busy = 0, read_busy = 0, created = 0;
  grpc_byte_buffer *send_bb = NULL, *recv_bb = NULL;

  grpc_op ops[3];
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[0].data.send_initial_metadata.count = 1;
  ops[0].data.send_initial_metadata.metadata = md;
  ops[0].flags = GRPC_INITIAL_METADATA_WAIT_FOR_READY;
  ops[1].op = GRPC_OP_RECV_INITIAL_METADATA;
  ops[1].data.recv_initial_metadata.recv_initial_metadata = &recv_md;
  grpc_call_start_batch(call, ops, 2, &g_tags[T_START], NULL);
  pending++;
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  ops[0].data.recv_status_on_client.trailing_metadata = &trailing;
  ops[0].data.recv_status_on_client.status = &status;
  ops[0].data.recv_status_on_client.status_details = &details;
  grpc_call_start_batch(call, ops, 1, &g_tags[T_STATUS], NULL);
  pending++;
  send_bb = encode_create();
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_SEND_MESSAGE;
  ops[0].data.send_message.send_message = send_bb;
  grpc_call_start_batch(call, ops, 1, &g_tags[T_WRITE], NULL);
  pending++;
  write_busy = 1;
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_RECV_MESSAGE;
  ops[0].data.recv_message.recv_message = &recv_bb;
  grpc_call_start_batch(call, ops, 1, &g_tags[T_READ], NULL);
  pending++;
  read_busy = 1;

  long long next = 0;
  sc->acked = -1;
  int closing = 0, failed = 0;
  while (pending > 0) {
    grpc_event ev = grpc_completion_queue_next(
        cq, gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_seconds(60, GPR_TIMESPAN)),
        NULL);
    if (ev.type == GRPC_QUEUE_TIMEOUT) {
      snprintf(sc->err, sizeof sc->err, "stream %d: no progress for 60 s", sc->idx);
      grpc_call_cancel(call, NULL);
      failed = 1;
      continue;
    }
    pending--;
    int *t = ev.tag;
    if (t == &g_tags[T_WRITE]) {
      write_busy = 0;
      grpc_byte_buffer_destroy(send_bb);
      send_bb = NULL;
      if (!ev.success) failed = 1;
    } else if (t == &g_tags[T_READ]) {
      read_busy = 0;
      if (!ev.success || !recv_bb) {
        if (recv_bb) grpc_byte_buffer_destroy(recv_bb);
        recv_bb = NULL;
      } else {
        grpc_byte_buffer_reader r;
        grpc_byte_buffer_reader_init(&r, recv_bb);
        grpc_slice s = grpc_byte_buffer_reader_readall(&r);
        grpc_byte_buffer_reader_destroy(&r);
        grpc_byte_buffer_destroy(recv_bb);
        recv_bb = NULL;
        Databricks__Zerobus__EphemeralStreamResponse *resp =
            databricks__zerobus__ephemeral_stream_response__unpack(NULL, GRPC_SLICE_LENGTH(s),
                                                                   GRPC_SLICE_START_PTR(s));
        grpc_slice_unref(s);
        if (resp) {
          if (resp->payload_case ==
              DATABRICKS__ZEROBUS__EPHEMERAL_STREAM_RESPONSE__PAYLOAD_CREATE_STREAM_RESPONSE)
            created = 1;
          else if (resp->payload_case ==
                   DATABRICKS__ZEROBUS__EPHEMERAL_STREAM_RESPONSE__PAYLOAD_INGEST_RECORD_RESPONSE)
            sc->acked = resp->ingest_record_response->durability_ack_up_to_offset;
          databricks__zerobus__ephemeral_stream_response__free_unpacked(resp, NULL);
        }
        if (!status_done) {
          memset(ops, 0, sizeof ops);
          ops[0].op = GRPC_OP_RECV_MESSAGE;
          ops[0].data.recv_message.recv_message = &recv_bb;
          if (grpc_call_start_batch(call, ops, 1, &g_tags[T_READ], NULL) == GRPC_CALL_OK) {
            pending++;
            read_busy = 1;
          }
        }
      }
    } else if (t == &g_tags[T_STATUS]) {
      status_done = 1;
    }
    (void)read_busy;
    if (failed || status_done) continue;
    /* keep the pipe full */
    if (created && !write_busy && next < sc->requests && next - sc->acked <= g_window) {
      send_bb = encode_request(next);
      memset(ops, 0, sizeof ops);
      ops[0].op = GRPC_OP_SEND_MESSAGE;
      ops[0].data.send_message.send_message = send_bb;
      /* hint only when more will follow right away (never the last of a burst) */
      if (next + 1 < sc->requests && next + 1 - sc->acked <= g_window)
        ops[0].flags = GRPC_WRITE_BUFFER_HINT;
      if (grpc_call_start_batch(call, ops, 1, &g_tags[T_WRITE], NULL) == GRPC_CALL_OK) {
        pending++;
        write_busy = 1;
        next++;
      }
    }
    if (!closing && created && sc->acked >= sc->requests - 1 && !write_busy) {
      closing = 1;
      memset(ops, 0, sizeof ops);
      ops[0].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
      if (grpc_call_start_batch(call, ops, 1, &g_tags[T_CREATE], NULL) == GRPC_CALL_OK) pending++;
    }
  }
  sc->ok = !failed && status == GRPC_STATUS_OK && sc->acked == sc->requests - 1;
  if (!sc->ok && !sc->err[0]) {
    char *d = grpc_slice_to_c_string(details);
    snprintf(sc->err, sizeof sc->err, "stream %d: status %d '%s', acked %lld of %lld", sc->idx,
             (int)status, d, sc->acked + 1, sc->requests);
    gpr_free(d);
  }
  if (status_done) grpc_slice_unref(details);
  grpc_metadata_array_destroy(&recv_md);
  grpc_metadata_array_destroy(&trailing);
  grpc_call_unref(call);
  grpc_completion_queue_shutdown(cq);
  while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
         GRPC_QUEUE_SHUTDOWN) {
  }
  grpc_completion_queue_destroy(cq);
  grpc_channel_destroy(ch);
  return NULL;
}

int main(int argc, char **argv) {
  for (int i = 1; i + 1 < argc; i += 2) {
    const char *a = argv[i], *v = argv[i + 1];
    if (!strcmp(a, "--target"))
      g_target = v;
    else if (!strcmp(a, "--table"))
      g_table = v;
    else if (!strcmp(a, "--records"))
      g_records = atoll(v);
    else if (!strcmp(a, "--streams"))
      g_streams = atoi(v);
    else if (!strcmp(a, "--batch"))
      g_batch = atoi(v);
    else if (!strcmp(a, "--size"))
      g_size = atoi(v);
    else if (!strcmp(a, "--window"))
      g_window = atoi(v);
    else {
      fprintf(stderr, "zl_bench: unknown option %s\n", a);
      return 2;
    }
  }
  if (g_streams < 1 || g_batch < 1 || g_records < g_batch || g_size < 1 || g_window < 1) {
    fprintf(stderr, "zl_bench: bad parameters\n");
    return 2;
  }
  grpc_init();
  build_batch_body();
  stream_ctx *sc = calloc((size_t)g_streams, sizeof *sc);
  pthread_t *th = calloc((size_t)g_streams, sizeof *th);
  long long per_stream = g_records / g_batch / g_streams;
  if (per_stream < 1) per_stream = 1;
  double t0 = now_s();
  for (int i = 0; i < g_streams; i++) {
    sc[i].idx = i;
    sc[i].requests = per_stream;
    pthread_create(&th[i], NULL, run_stream, &sc[i]);
  }
  int ok = 1;
  for (int i = 0; i < g_streams; i++) {
    pthread_join(th[i], NULL);
    if (!sc[i].ok) {
      ok = 0;
      fprintf(stderr, "zl_bench: %s\n", sc[i].err);
    }
  }
  double el = now_s() - t0;
  long long total = per_stream * g_batch * g_streams;
  printf(
      "records=%lld streams=%d batch=%d size=%dB seconds=%.3f records_per_sec=%.0f "
      "MB_per_sec=%.1f%s\n",
      total, g_streams, g_batch, g_size, el, total / el, total * (double)g_size / el / 1e6,
      ok ? "" : " (FAILED)");
  free(sc);
  free(th);
  free(g_batch_body);
  grpc_shutdown();
  return ok ? 0 : 1;
}
