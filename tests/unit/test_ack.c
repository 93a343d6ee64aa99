/* The engine's acknowledgement decisions (src/ack.c): zb_ack_classify and
 * zb_ack_covered, with exact cases (SEMANTICS.md "Acknowledgement",
 * server/FAULTS.md "Malformed acks"). Links zerobus_static (internal symbols). */
#include <stdint.h>
#include <string.h>

#include "engine.h"
#include "zb_test.h"

static void classify_exact_cases(void) {
  /* nothing sent, nothing acked */
  CHECK_INT(zb_ack_classify(-1, -1, 0, 0), ZB_ACK_NO_OFFSET);
  CHECK_INT(zb_ack_classify(-1, -1, 1, 0), ZB_ACK_BEYOND);
  CHECK_INT(zb_ack_classify(-1, -1, 1, -1), ZB_ACK_DUPLICATE);
  CHECK_INT(zb_ack_classify(-1, -1, 1, -2), ZB_ACK_BACKWARDS);
  /* wire 0..4 sent, none acked */
  CHECK_INT(zb_ack_classify(-1, 4, 1, 0), ZB_ACK_ADVANCE);
  CHECK_INT(zb_ack_classify(-1, 4, 1, 4), ZB_ACK_ADVANCE);
  CHECK_INT(zb_ack_classify(-1, 4, 1, 5), ZB_ACK_BEYOND);
  CHECK_INT(zb_ack_classify(-1, 4, 1, 9), ZB_ACK_BEYOND); /* FAULTS.md beyond: highest + 5 */
  /* wire 0..4 sent, 2 acked */
  CHECK_INT(zb_ack_classify(2, 4, 1, 2), ZB_ACK_DUPLICATE);
  CHECK_INT(zb_ack_classify(2, 4, 1, 1), ZB_ACK_BACKWARDS);
  CHECK_INT(zb_ack_classify(2, 4, 1, -1), ZB_ACK_BACKWARDS);
  CHECK_INT(zb_ack_classify(2, 4, 1, 3), ZB_ACK_ADVANCE);
  CHECK_INT(zb_ack_classify(2, 4, 1, 4), ZB_ACK_ADVANCE);
  CHECK_INT(zb_ack_classify(2, 4, 1, 5), ZB_ACK_BEYOND);
  /* no offset wins over everything, whatever the (unset) offset field holds */
  CHECK_INT(zb_ack_classify(2, 4, 0, 2), ZB_ACK_NO_OFFSET);
  CHECK_INT(zb_ack_classify(2, 4, 0, 3), ZB_ACK_NO_OFFSET);
  CHECK_INT(zb_ack_classify(2, 4, 0, -7), ZB_ACK_NO_OFFSET);
  /* everything acked: the repeat is harmless, one more is beyond */
  CHECK_INT(zb_ack_classify(4, 4, 1, 4), ZB_ACK_DUPLICATE);
  CHECK_INT(zb_ack_classify(4, 4, 1, 5), ZB_ACK_BEYOND);
  /* extremes: no overflow */
  CHECK_INT(zb_ack_classify(-1, INT64_MAX, 1, INT64_MAX), ZB_ACK_ADVANCE);
  CHECK_INT(zb_ack_classify(-1, INT64_MAX - 1, 1, INT64_MAX), ZB_ACK_BEYOND);
  CHECK_INT(zb_ack_classify(5, 9, 1, INT64_MIN), ZB_ACK_BACKWARDS);
}

/* A ring of cap requests starting at head: request i has wire w[i] and logical
 * offsets [first[i], last[i]]. */
static void fill(zb_req *ring, size_t cap, size_t head, size_t n, const int64_t *wire,
                 const int64_t *last) {
  memset(ring, 0, cap * sizeof *ring);
  int64_t first = 0;
  for (size_t i = 0; i < n; i++) {
    zb_req *r = &ring[(head + i) % cap];
    r->wire = wire[i];
    r->first = first;
    r->last = last[i];
    first = last[i] + 1;
  }
}

static void covered_exact_cases(void) {
  zb_req ring[4];
  const int64_t wire[4] = {0, 1, 2, 3};
  const int64_t last[4] = {2, 3, 9, 10}; /* requests of 3, 1, 6 and 1 logical offsets */
  /* head 3: the ring wraps (indices 3, 0, 1, 2) */
  fill(ring, 4, 3, 4, wire, last);
  CHECK_INT(zb_ack_covered(ring, 4, 3, 4, 4, -1), 0);
  CHECK_INT(zb_ack_covered(ring, 4, 3, 4, 4, 0), 1);
  CHECK_INT(zb_ack_covered(ring, 4, 3, 4, 4, 2), 3);
  CHECK_INT(zb_ack_covered(ring, 4, 3, 4, 4, 3), 4);
  CHECK_INT(zb_ack_covered(ring, 4, 3, 4, 4, 1000), 4);
  /* only the first `sent` requests were written on this call */
  CHECK_INT(zb_ack_covered(ring, 4, 3, 4, 2, 3), 2);
  CHECK_INT(zb_ack_covered(ring, 4, 3, 4, 0, 3), 0);
  /* fewer held than sent (cannot happen; bounded anyway) */
  CHECK_INT(zb_ack_covered(ring, 4, 3, 1, 4, 3), 1);
  /* nothing held: the ring is never indexed (cap 0 allowed) */
  CHECK_INT(zb_ack_covered(NULL, 0, 0, 0, 0, 5), 0);
  /* after a reconnect every wire is -1 until written again: the first unsent
   * request stops the prefix */
  const int64_t wire2[4] = {0, 1, -1, -1};
  fill(ring, 4, 1, 4, wire2, last);
  CHECK_INT(zb_ack_covered(ring, 4, 1, 4, 4, 5), 2);
  const int64_t wire3[4] = {-1, -1, -1, -1};
  fill(ring, 4, 0, 4, wire3, last);
  CHECK_INT(zb_ack_covered(ring, 4, 0, 4, 4, 0), 0);
}

int main(void) {
  RUN(classify_exact_cases);
  RUN(covered_exact_cases);
  TEST_MAIN_END();
}
