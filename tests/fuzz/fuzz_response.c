/*
 * fuzz_response: the client's decoding of server messages, zb_decode_response
 * (src/transport.c), which the engine runs on every EphemeralStreamResponse.
 * The input is wrapped in a gRPC byte buffer split into 1..3 slices (as gRPC
 * hands over messages that span frames).
 * Properties: never crashes (ASan/UBSan: e.g. no overflow converting the close
 * signal's Duration); returns 1 exactly when protobuf-c can unpack the bytes;
 * kind 1 always has a stream id string, kind 2 has an offset only when the field
 * is present and equals it, kind 3 has a non-negative duration.
 */
#include <stdint.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/slice.h>

#include "engine.h"
#include "fuzz_common.h"
#include "zerobus_service.pb-c.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  grpc_init();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  grpc_slice parts[3];
  size_t nparts = 1;
  if (size >= 4) {
    size_t a = data[0] % (size + 1), b = a + (data[1] % (size - a + 1));
    parts[0] = grpc_slice_from_copied_buffer((const char *)data, a);
    parts[1] = grpc_slice_from_copied_buffer((const char *)data + a, b - a);
    parts[2] = grpc_slice_from_copied_buffer((const char *)data + b, size - b);
    nparts = 3;
  } else {
    parts[0] = grpc_slice_from_copied_buffer((const char *)data, size);
  }
  grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(parts, nparts);
  for (size_t i = 0; i < nparts; i++) grpc_slice_unref(parts[i]);

  zb_server_msg m;
  int ok = zb_decode_response(bb, &m);
  grpc_byte_buffer_destroy(bb);

  Databricks__Zerobus__EphemeralStreamResponse *ref =
      databricks__zerobus__ephemeral_stream_response__unpack(NULL, size, data);
  FUZZ_CHECK(ok == (ref != NULL), "decode %d, protobuf-c unpack %s", ok, ref ? "ok" : "fails");
  if (ok) {
    FUZZ_CHECK(m.kind >= 0 && m.kind <= 3, "kind %d", m.kind);
    if (m.kind == 1) FUZZ_CHECK(m.stream_id != NULL, "create response without a stream id string");
    if (m.kind == 2) {
      int has = ref->ingest_record_response &&
                ref->ingest_record_response->has_durability_ack_up_to_offset;
      FUZZ_CHECK(m.has_offset == has, "has_offset");
      if (has)
        FUZZ_CHECK(m.offset == ref->ingest_record_response->durability_ack_up_to_offset, "offset");
    }
    if (m.kind == 3 && m.has_duration) FUZZ_CHECK(m.duration_ms >= 0, "negative pause");
  }
  if (ref) databricks__zerobus__ephemeral_stream_response__free_unpacked(ref, NULL);
  free(m.stream_id);
  return 0;
}
