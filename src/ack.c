/*
 * ack.c - the stream engine's acknowledgement decisions as pure functions (no
 * stream state, no locks, no gRPC calls), so they can be unit-tested and fuzzed
 * on their own (tests/unit/test_ack.c, tests/fuzz/fuzz_ack.c). on_ack() in
 * stream.c applies their results.
 */
#include "engine.h"

int zb_ack_classify(int64_t last_ack, int64_t highest_sent_wire, int has_offset, int64_t offset) {
  if (!has_offset) return ZB_ACK_NO_OFFSET;
  /* the order matters: a repeat of the last ack is harmless even when nothing
   * was sent since (last_ack = -1 and an ack of -1 included) */
  if (offset == last_ack) return ZB_ACK_DUPLICATE;
  if (offset < last_ack) return ZB_ACK_BACKWARDS;
  if (offset > highest_sent_wire) return ZB_ACK_BEYOND;
  return ZB_ACK_ADVANCE;
}

size_t zb_ack_covered(const zb_req *reqs, size_t cap, size_t head, size_t count, size_t sent,
                      int64_t ack) {
  size_t limit = count < sent ? count : sent;
  size_t n = 0;
  while (n < limit) {
    const zb_req *r = &reqs[(head + n) % cap];
    if (r->wire < 0 || r->wire > ack) break;
    n++;
  }
  return n;
}
