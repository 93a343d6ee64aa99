/*
 * transport.c - the wire format of the Zerobus protocol as the engine uses it.
 *
 * Ingest requests are hand-encoded: a request is a small header (built for each
 * write, because the wire offset changes on every call) followed by a body that
 * is serialized once when the records are queued and kept for replay:
 *   single record:  EphemeralStreamRequest{2: IngestRecordRequest{1: offset,
 *                   2|3: <record bytes>}}            body = the record bytes
 *   batch:          EphemeralStreamRequest{3: IngestRecordBatchRequest{1: offset,
 *                   2|3: {1: rec, 1: rec, ...}}}     body = the repeated entries
 * (field 2 for PROTO, 3 for JSON; strings and bytes share the wire type).
 * Server messages are small and decoded with protobuf-c.
 */
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>

#include "engine.h"
#include "zerobus_service.pb-c.h"

size_t zb_varint_len(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    n++;
  }
  return n;
}

size_t zb_varint_put(uint8_t *p, uint64_t v) {
  size_t n = 0;
  while (v >= 0x80) {
    p[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  p[n++] = (uint8_t)v;
  return n;
}

/* out must have room for 32 bytes. */
size_t zb_encode_request_header(uint8_t *out, int single, int json, int64_t wire, size_t body_len) {
  /* inner message: 0x08 varint(wire), tag, varint(body_len), body */
  uint64_t w = (uint64_t)wire; /* int64 is encoded as its two's complement */
  size_t inner = 1 + zb_varint_len(w) + 1 + zb_varint_len(body_len) + body_len;
  size_t n = 0;
  out[n++] = single ? 0x12 : 0x1a; /* EphemeralStreamRequest field 2 or 3, LEN */
  n += zb_varint_put(out + n, inner);
  out[n++] = 0x08; /* offset_id, varint */
  n += zb_varint_put(out + n, w);
  out[n++] = json ? 0x1a : 0x12; /* record/batch field 3 (json) or 2 (proto) */
  n += zb_varint_put(out + n, body_len);
  return n;
}

grpc_slice zb_encode_create(const char *table, int record_type, const void *descriptor,
                            size_t descriptor_len) {
  Databricks__Zerobus__CreateIngestStreamRequest create =
      DATABRICKS__ZEROBUS__CREATE_INGEST_STREAM_REQUEST__INIT;
  Databricks__Zerobus__EphemeralStreamRequest req =
      DATABRICKS__ZEROBUS__EPHEMERAL_STREAM_REQUEST__INIT;
  create.table_name = (char *)table;
  create.has_record_type = 1;
  create.record_type = (Databricks__Zerobus__RecordType)record_type;
  if (record_type == ZB_RECORD_TYPE_PROTO && descriptor) {
    create.has_descriptor_proto = 1;
    create.descriptor_proto.data = (uint8_t *)descriptor;
    create.descriptor_proto.len = descriptor_len;
  }
  req.payload_case = DATABRICKS__ZEROBUS__EPHEMERAL_STREAM_REQUEST__PAYLOAD_CREATE_STREAM;
  req.create_stream = &create;
  size_t len = databricks__zerobus__ephemeral_stream_request__get_packed_size(&req);
  grpc_slice s = grpc_slice_malloc(len);
  databricks__zerobus__ephemeral_stream_request__pack(&req, GRPC_SLICE_START_PTR(s));
  return s;
}

int zb_decode_response(grpc_byte_buffer *bb, zb_server_msg *out) {
  memset(out, 0, sizeof *out);
  grpc_byte_buffer_reader reader;
  if (!grpc_byte_buffer_reader_init(&reader, bb)) return 0;
  grpc_slice all = grpc_byte_buffer_reader_readall(&reader);
  grpc_byte_buffer_reader_destroy(&reader);
  Databricks__Zerobus__EphemeralStreamResponse *m =
      databricks__zerobus__ephemeral_stream_response__unpack(NULL, GRPC_SLICE_LENGTH(all),
                                                             GRPC_SLICE_START_PTR(all));
  grpc_slice_unref(all);
  if (!m) return 0;
  switch (m->payload_case) {
    case DATABRICKS__ZEROBUS__EPHEMERAL_STREAM_RESPONSE__PAYLOAD_CREATE_STREAM_RESPONSE:
      out->kind = 1;
      if (m->create_stream_response && m->create_stream_response->stream_id)
        out->stream_id = strdup(m->create_stream_response->stream_id);
      else
        out->stream_id = strdup("");
      break;
    case DATABRICKS__ZEROBUS__EPHEMERAL_STREAM_RESPONSE__PAYLOAD_INGEST_RECORD_RESPONSE:
      out->kind = 2;
      if (m->ingest_record_response && m->ingest_record_response->has_durability_ack_up_to_offset) {
        out->has_offset = 1;
        out->offset = m->ingest_record_response->durability_ack_up_to_offset;
      }
      break;
    case DATABRICKS__ZEROBUS__EPHEMERAL_STREAM_RESPONSE__PAYLOAD_CLOSE_STREAM_SIGNAL:
      out->kind = 3;
      if (m->close_stream_signal && m->close_stream_signal->duration) {
        const Google__Protobuf__Duration *d = m->close_stream_signal->duration;
        out->has_duration = 1;
        /* clamp before scaling: a hostile Duration must not overflow int64 */
        int64_t secs = d->seconds;
        if (secs < 0) secs = 0;
        if (secs > INT64_MAX / 1000 - 10) secs = INT64_MAX / 1000 - 10;
        out->duration_ms = secs * 1000 + d->nanos / 1000000;
        if (out->duration_ms < 0) out->duration_ms = 0;
      }
      break;
    default:
      out->kind = 0;
      break;
  }
  databricks__zerobus__ephemeral_stream_response__free_unpacked(m, NULL);
  return 1;
}
