/*
 * fuzz_ack: the engine's acknowledgement decisions (src/ack.c), zb_ack_classify
 * and zb_ack_covered, applied to a request ring exactly as on_ack() in
 * src/stream.c applies them, against an independent model.
 *
 * The input is a sequence of events: pack a request of 1..8 logical offsets,
 * write the next request on the call, an ack (with or without an offset; the
 * offset relative to the last ack or to the highest wire offset sent, or any
 * 64-bit value), and a reconnect. A protocol error tears the call down like a
 * reconnect (every unacked request is written again from wire offset 0).
 *
 * Model: the unacked requests as a plain array of logical ranges, the logical
 * range written at each wire offset of the current call, the last ack of the
 * call, and how often each logical offset was acknowledged.
 * Properties: the classification is exactly the one SEMANTICS.md
 * "Acknowledgement" gives; an advancing ack of wire w makes the logical
 * watermark the last offset of the request written at w; the watermark never
 * decreases and never passes what was written; every logical offset is
 * acknowledged exactly once, in order; the ring's front request starts right
 * after the watermark.
 */
#include <stdint.h>
#include <string.h>

#include "engine.h"
#include "fuzz_common.h"

#define CAP 8       /* ring capacity (small: wraps often) */
#define MAXREQ 4096 /* requests packed per input */
#define MAXWIRE 4096
#define MAXLOG (MAXREQ * 8)

typedef struct {
  const uint8_t *p;
  size_t n;
} input;

static int next_byte(input *in, uint8_t *b) {
  if (in->n == 0) return 0;
  *b = *in->p++;
  in->n--;
  return 1;
}

/* system under test: the engine's fields on_ack() touches */
static zb_req ring[CAP];
static size_t head, count, send_idx;
static int64_t next_wire, last_ack, acked;

/* model */
static int64_t m_first[MAXREQ], m_last[MAXREQ];
static size_t m_front, m_packed, m_sent_on_call; /* unacked: [m_front, m_packed) */
static int64_t m_wire_last[MAXWIRE];             /* logical last written at each wire */
static int64_t m_next_wire, m_last_ack, m_acked, m_highest_written;
static uint8_t m_ack_count[MAXLOG];
static int64_t next_logical;

static void reconnect(void) {
  /* on_created(): replay every unacked request from wire 0 */
  next_wire = 0;
  last_ack = -1;
  send_idx = 0;
  for (size_t i = 0; i < count; i++) ring[(head + i) % CAP].wire = -1;
  m_next_wire = 0;
  m_last_ack = -1;
  m_sent_on_call = 0;
}

static int expected_class(int has, int64_t a) {
  if (!has) return ZB_ACK_NO_OFFSET;
  if (a == m_last_ack) return ZB_ACK_DUPLICATE;
  if (a < m_last_ack) return ZB_ACK_BACKWARDS;
  if (a >= m_next_wire) return ZB_ACK_BEYOND;
  return ZB_ACK_ADVANCE;
}

static void on_ack(int has, int64_t a) {
  int got = zb_ack_classify(last_ack, next_wire - 1, has, a);
  int want = expected_class(has, a);
  FUZZ_CHECK(got == want, "class %d, model %d (last ack %lld, next wire %lld, has %d, ack %lld)",
             got, want, (long long)last_ack, (long long)next_wire, has, (long long)a);
  if (got == ZB_ACK_DUPLICATE) return;
  if (got != ZB_ACK_ADVANCE) { /* protocol error: the call is torn down, recovered */
    reconnect();
    return;
  }
  /* stream.c on_ack() */
  int64_t before = acked;
  last_ack = a;
  size_t n = zb_ack_covered(ring, CAP, head, count, send_idx, a);
  FUZZ_CHECK(n <= count && n <= send_idx, "covered %zu of %zu held, %zu sent", n, count, send_idx);
  for (size_t i = 0; i < n; i++) {
    zb_req *r = &ring[head];
    acked = r->last;
    head = (head + 1) % CAP;
    count--;
    send_idx--;
  }
  /* model */
  m_last_ack = a;
  /* an ack of wire a covers the requests written at wires <= a, at least one */
  int64_t want_acked = m_wire_last[a];
  FUZZ_CHECK(acked == want_acked, "watermark %lld after ack of wire %lld, model %lld",
             (long long)acked, (long long)a, (long long)want_acked);
  FUZZ_CHECK(acked > before, "an advancing ack moved the watermark from %lld to %lld",
             (long long)before, (long long)acked);
  FUZZ_CHECK(acked <= m_highest_written, "watermark %lld beyond the highest written %lld",
             (long long)acked, (long long)m_highest_written);
  for (int64_t o = m_acked + 1; o <= acked; o++) {
    FUZZ_CHECK(m_ack_count[o] == 0, "offset %lld acknowledged twice", (long long)o);
    m_ack_count[o]++;
  }
  size_t popped = 0;
  while (m_front < m_packed && m_last[m_front] <= acked) {
    m_front++;
    popped++;
  }
  FUZZ_CHECK(popped == n, "ring popped %zu requests, model %zu", n, popped);
  FUZZ_CHECK(m_sent_on_call >= popped, "popped more than written");
  m_sent_on_call -= popped;
  m_acked = acked;
  if (count > 0)
    FUZZ_CHECK(ring[head].first == acked + 1, "front request does not follow the watermark");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  input in = {data, size};
  uint8_t b = 0;
  memset(ring, 0, sizeof ring);
  head = 0;
  if (next_byte(&in, &b)) head = b % CAP;
  count = send_idx = 0;
  next_wire = 0;
  last_ack = -1;
  acked = -1;
  m_front = m_packed = m_sent_on_call = 0;
  m_next_wire = 0;
  m_last_ack = -1;
  m_acked = -1;
  m_highest_written = -1;
  next_logical = 0;
  memset(m_ack_count, 0, sizeof m_ack_count);

  while (next_byte(&in, &b)) {
    switch (b & 3) {
      case 0: { /* pack a request of 1..8 logical offsets */
        if (count == CAP || m_packed == MAXREQ) break;
        int64_t k = 1 + ((b >> 2) & 7);
        zb_req *r = &ring[(head + count) % CAP];
        memset(r, 0, sizeof *r);
        r->first = next_logical;
        r->last = next_logical + k - 1;
        r->wire = -1;
        r->nrec = (uint64_t)k;
        count++;
        m_first[m_packed] = r->first;
        m_last[m_packed] = r->last;
        m_packed++;
        next_logical += k;
        break;
      }
      case 1: { /* write the next request on the call */
        if (send_idx >= count || next_wire >= MAXWIRE) break;
        zb_req *r = &ring[(head + send_idx) % CAP];
        r->wire = next_wire++;
        send_idx++;
        size_t mi = m_front + m_sent_on_call;
        FUZZ_CHECK(mi < m_packed, "model has nothing left to write");
        FUZZ_CHECK(r->first == m_first[mi] && r->last == m_last[mi], "ring and model disagree");
        m_wire_last[m_next_wire++] = m_last[mi];
        m_sent_on_call++;
        if (m_last[mi] > m_highest_written) m_highest_written = m_last[mi];
        break;
      }
      case 2: { /* an ack */
        int has = (b & 4) == 0;
        int64_t a;
        uint8_t d = 0;
        (void)next_byte(&in, &d);
        int delta = (int8_t)d;
        switch ((b >> 3) & 3) {
          case 0:
            a = last_ack + delta;
            break;
          case 1:
            a = next_wire - 1 + delta;
            break;
          case 2:
            a = last_ack + 1 + (d & 7); /* mostly advances */
            break;
          default: { /* any 64-bit value */
            uint64_t u = d;
            for (int i = 0; i < 7; i++) {
              uint8_t x = 0;
              (void)next_byte(&in, &x);
              u = (u << 8) | x;
            }
            memcpy(&a, &u, sizeof a);
          }
        }
        on_ack(has, a);
        break;
      }
      default: /* the call ends; a new one replays the unacked requests */
        reconnect();
    }
  }
  /* every acknowledged offset exactly once, and they form the prefix 0..acked */
  for (int64_t o = 0; o < next_logical && o < MAXLOG; o++)
    FUZZ_CHECK(m_ack_count[o] == (o <= acked ? 1 : 0), "offset %lld acknowledged %d times",
               (long long)o, m_ack_count[o]);
  return 0;
}
