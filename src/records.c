/*
 * records.c - zerobus_records: a library-owned copy of the records a stream never
 * got acknowledged (after close or failure), flat and grouped by ingest call.
 */
#include <stdlib.h>
#include <string.h>

#include "engine.h"

struct zerobus_records {
  uint8_t *data;     /* every record, back to back */
  size_t *off, *len; /* per record */
  size_t count;
  size_t *bfirst, *bcount; /* per batch */
  int64_t *boffset;
  size_t nbatches;
};

/* Walks the entries of one item: calls fn for each record. */
static int item_records(const zb_item *it, const void **data, size_t *lens, size_t max) {
  if (it->ext) {
    if (max < 1) return -1;
    data[0] = it->ext->data;
    lens[0] = it->ext->len;
    return 1;
  }
  const uint8_t *p = it->chunk->data + it->pos;
  const uint8_t *end = p + it->enc_len;
  size_t n = 0;
  while (p < end && n < max) {
    p++; /* tag 0x0a */
    uint64_t len = 0;
    int shift = 0;
    while (*p & 0x80) {
      len |= (uint64_t)(*p++ & 0x7f) << shift;
      shift += 7;
    }
    len |= (uint64_t)(*p++) << shift;
    data[n] = p;
    lens[n] = (size_t)len;
    n++;
    p += len;
  }
  return (int)n;
}

int zb_stream_visit_unacked(zerobus_stream *s, zb_item_visit fn, void *ctx) {
  /* The stream is closed or failed: nothing changes the queue any more. */
  size_t cap = 16;
  const void **data = malloc(cap * sizeof *data);
  size_t *lens = malloc(cap * sizeof *lens);
  int rc = 0;
  for (int64_t o = s->acked + 1; rc == 0 && o < s->next_offset; o++) {
    const zb_item *it = &s->items[(size_t)o & (s->items_cap - 1)];
    if (it->nrec > cap) {
      cap = it->nrec;
      const void **nd = realloc(data, cap * sizeof *data);
      size_t *nl = realloc(lens, cap * sizeof *lens);
      if (nd) data = nd;
      if (nl) lens = nl;
      if (!nd || !nl) {
        rc = -1;
        break;
      }
    }
    if (!data || !lens) {
      rc = -1;
      break;
    }
    int n = item_records(it, data, lens, cap);
    if (n < 0) {
      rc = -1;
      break;
    }
    rc = fn(ctx, o, data, lens, (size_t)n);
  }
  free(data);
  free(lens);
  return rc;
}

typedef struct build_ctx {
  zerobus_records *r;
  size_t rec_cap, batch_cap, data_cap, data_len;
} build_ctx;

static int build_visit(void *vctx, int64_t offset, const void *const *data, const size_t *lens,
                       size_t n) {
  build_ctx *c = vctx;
  zerobus_records *r = c->r;
  if (r->nbatches == c->batch_cap) {
    size_t nc = c->batch_cap ? c->batch_cap * 2 : 16;
    size_t *f = realloc(r->bfirst, nc * sizeof *f);
    if (!f) return -1;
    r->bfirst = f;
    size_t *k = realloc(r->bcount, nc * sizeof *k);
    if (!k) return -1;
    r->bcount = k;
    int64_t *o = realloc(r->boffset, nc * sizeof *o);
    if (!o) return -1;
    r->boffset = o;
    c->batch_cap = nc;
  }
  r->bfirst[r->nbatches] = r->count;
  r->bcount[r->nbatches] = n;
  r->boffset[r->nbatches] = offset;
  r->nbatches++;
  for (size_t i = 0; i < n; i++) {
    if (r->count == c->rec_cap) {
      size_t nc = c->rec_cap ? c->rec_cap * 2 : 64;
      size_t *a = realloc(r->off, nc * sizeof *a);
      if (!a) return -1;
      r->off = a;
      size_t *b = realloc(r->len, nc * sizeof *b);
      if (!b) return -1;
      r->len = b;
      c->rec_cap = nc;
    }
    if (c->data_len + lens[i] > c->data_cap) {
      size_t nc = c->data_cap ? c->data_cap : 4096;
      while (nc < c->data_len + lens[i]) nc *= 2;
      uint8_t *d = realloc(r->data, nc);
      if (!d) return -1;
      r->data = d;
      c->data_cap = nc;
    }
    if (lens[i]) memcpy(r->data + c->data_len, data[i], lens[i]);
    r->off[r->count] = c->data_len;
    r->len[r->count] = lens[i];
    r->count++;
    c->data_len += lens[i];
  }
  return 0;
}

zerobus_status zb_records_from_stream(zerobus_stream *s, zerobus_records **out) {
  zerobus_records *r = calloc(1, sizeof *r);
  if (!r) return ZEROBUS_ERR_NO_MEMORY;
  build_ctx c = {r, 0, 0, 0, 0};
  if (zb_stream_visit_unacked(s, build_visit, &c) != 0) {
    zerobus_records_destroy(r);
    return ZEROBUS_ERR_NO_MEMORY;
  }
  *out = r;
  return ZEROBUS_OK;
}

ZEROBUS_API size_t zerobus_records_count(const zerobus_records *r) {
  return r ? r->count : 0;
}

ZEROBUS_API zerobus_status zerobus_records_get(const zerobus_records *r, size_t i,
                                               const void **data, size_t *len) {
  if (!r || i >= r->count || !data || !len) return ZEROBUS_ERR_INVALID_ARGUMENT;
  *data = r->data ? r->data + r->off[i] : (const void *)"";
  *len = r->len[i];
  return ZEROBUS_OK;
}

ZEROBUS_API size_t zerobus_records_batch_count(const zerobus_records *r) {
  return r ? r->nbatches : 0;
}

ZEROBUS_API zerobus_status zerobus_records_batch(const zerobus_records *r, size_t b, size_t *first,
                                                 size_t *count, int64_t *offset) {
  if (!r || b >= r->nbatches) return ZEROBUS_ERR_INVALID_ARGUMENT;
  if (first) *first = r->bfirst[b];
  if (count) *count = r->bcount[b];
  if (offset) *offset = r->boffset[b];
  return ZEROBUS_OK;
}

ZEROBUS_API void zerobus_records_destroy(zerobus_records *r) {
  if (!r) return;
  free(r->data);
  free(r->off);
  free(r->len);
  free(r->bfirst);
  free(r->bcount);
  free(r->boffset);
  free(r);
}
