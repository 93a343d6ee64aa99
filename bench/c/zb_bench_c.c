/*
 * zb_bench_c - measures the libzerobus C API ingest path against a Zerobus endpoint
 * (normally zerobus-local --store null). One measurement per process.
 *
 * usage: zb_bench_c --endpoint URL --workspace URL --table T --size BYTES
 *                   --records N [--batch B] [--json] [--client-id ID --client-secret S]
 *
 * Records are PROTO by default: the stream's descriptor is a message with a single
 * `bytes payload = 1` field and each record is a valid encoding of it whose total
 * length is exactly --size bytes (tag, length varint, then filler bytes). A pool of
 * 1024 distinct records is generated before timing and used round-robin.
 * --batch 1 uses zerobus_stream_ingest (one call per record); --batch B > 1 uses
 * zerobus_stream_ingest_batch with B records per call. The timed section is the
 * ingest loop plus one zerobus_stream_flush at the end. --records 0 creates the
 * stream, flushes and closes (the baseline for the callgrind figure).
 *
 * Prints one JSON object on stdout: records, size, batch, wall_s, user_s, sys_s
 * (CPU of the whole process during the timed section), ingest_s (time until the last
 * ingest call returned), maxrss_kib (peak RSS of the
 * process), records_per_s, mb_per_s (payload bytes, 10^6).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "zerobus_abi.h"

#define POOL 1024

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double tv_s(struct timeval tv) {
  return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static int fail(const char *what, zerobus_error *err) {
  fprintf(stderr, "zb_bench_c: %s: %s (%s)\n", what, zerobus_error_message(err),
          zerobus_status_name(zerobus_error_code(err)));
  zerobus_error_destroy(err);
  return 1;
}

static size_t put_varint(unsigned char *p, uint64_t v) {
  size_t n = 0;
  while (v >= 0x80) {
    p[n++] = (unsigned char)(v | 0x80);
    v >>= 7;
  }
  p[n++] = (unsigned char)v;
  return n;
}

static size_t varint_len(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    n++;
  }
  return n;
}

/* Writes n pseudo-random lowercase letters (xorshift32); bench_py.py makes the same. */
static void filler(unsigned char *out, size_t n) {
  uint32_t x = 2463534242u;
  for (size_t i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    out[i] = (unsigned char)('a' + x % 26);
  }
}

/* Encodes field 1 (bytes) so that the whole record is exactly `size` bytes, taking the
 * payload from letters[seed..]; returns 0 when size is too small (< 2). */
static int make_record(unsigned char *out, size_t size, const unsigned char *letters,
                       unsigned seed) {
  if (size < 2) return 0;
  /* find the payload length L with 1 + varint_len(L) + L == size */
  size_t L = size - 2;
  while (L > 0 && 1 + varint_len(L) + L > size) L--;
  if (1 + varint_len(L) + L != size) return 0;
  size_t p = 0;
  out[p++] = 0x0a; /* field 1, wire type 2 */
  p += put_varint(out + p, L);
  memcpy(out + p, letters + seed, L);
  return 1;
}

/* DescriptorProto { name: "BenchRecord", field { name: "payload", number: 1,
 * label: LABEL_OPTIONAL, type: TYPE_BYTES } } */
static size_t make_descriptor(unsigned char *out) {
  static const char name[] = "BenchRecord", fname[] = "payload";
  unsigned char field[64];
  size_t f = 0;
  field[f++] = 0x0a; /* FieldDescriptorProto.name = 1 */
  field[f++] = (unsigned char)(sizeof fname - 1);
  memcpy(field + f, fname, sizeof fname - 1);
  f += sizeof fname - 1;
  field[f++] = 0x18; /* number = 3 */
  field[f++] = 1;
  field[f++] = 0x20; /* label = 4 */
  field[f++] = 1;    /* LABEL_OPTIONAL */
  field[f++] = 0x28; /* type = 5 */
  field[f++] = 12;   /* TYPE_BYTES */
  size_t p = 0;
  out[p++] = 0x0a; /* DescriptorProto.name = 1 */
  out[p++] = (unsigned char)(sizeof name - 1);
  memcpy(out + p, name, sizeof name - 1);
  p += sizeof name - 1;
  out[p++] = 0x12; /* field = 2 */
  out[p++] = (unsigned char)f;
  memcpy(out + p, field, f);
  return p + f;
}

static long parse_long(const char *s, const char *what) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || *end || v < 0) {
    fprintf(stderr, "zb_bench_c: bad %s: %s\n", what, s);
    exit(2);
  }
  return v;
}

int main(int argc, char **argv) {
  const char *endpoint = NULL, *workspace = NULL, *table = NULL;
  const char *client_id = "test-client", *client_secret = "test-secret";
  long size = -1, records = -1, batch = 1, inflight = -1;
  int json = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--json")) {
      json = 1;
      continue;
    }
    if (!v) {
      fprintf(stderr, "zb_bench_c: %s needs a value\n", a);
      return 2;
    }
    i++;
    if (!strcmp(a, "--endpoint"))
      endpoint = v;
    else if (!strcmp(a, "--workspace"))
      workspace = v;
    else if (!strcmp(a, "--table"))
      table = v;
    else if (!strcmp(a, "--client-id"))
      client_id = v;
    else if (!strcmp(a, "--client-secret"))
      client_secret = v;
    else if (!strcmp(a, "--size"))
      size = parse_long(v, "size");
    else if (!strcmp(a, "--records"))
      records = parse_long(v, "records");
    else if (!strcmp(a, "--batch"))
      batch = parse_long(v, "batch");
    else if (!strcmp(a, "--max-inflight-records"))
      inflight = parse_long(v, "max-inflight-records");
    else {
      fprintf(stderr, "zb_bench_c: unknown argument %s\n", a);
      return 2;
    }
  }
  if (!endpoint || !workspace || !table || size < 2 || records < 0 || batch < 1) {
    fprintf(stderr,
            "usage: zb_bench_c --endpoint URL --workspace URL --table T --size BYTES(>=2) "
            "--records N [--batch B] [--json] [--max-inflight-records N]\n");
    return 2;
  }

  /* the record pool */
  unsigned char *pool = malloc((size_t)POOL * (size_t)size);
  unsigned char *letters = malloc((size_t)size + POOL);
  if (letters) filler(letters, (size_t)size + POOL);
  const void **ptrs = malloc((size_t)batch * sizeof *ptrs);
  size_t *lens = malloc((size_t)batch * sizeof *lens);
  if (!pool || !ptrs || !lens || !letters) return 1;
  for (unsigned k = 0; k < POOL; k++) {
    unsigned char *r = pool + (size_t)k * (size_t)size;
    if (json) {
      /* {"p":"xxxx"} of exactly size bytes (size >= 9) */
      if (size < 9) {
        fprintf(stderr, "zb_bench_c: --json needs --size >= 9\n");
        return 2;
      }
      memcpy(r, "{\"p\":\"", 6);
      for (long i = 6; i < size - 2; i++) r[i] = (unsigned char)('a' + (k + (unsigned)i) % 26);
      memcpy(r + size - 2, "\"}", 2);
    } else if (!make_record(r, (size_t)size, letters, k)) {
      fprintf(stderr, "zb_bench_c: cannot encode a record of %ld bytes\n", size);
      return 2;
    }
  }
  for (long j = 0; j < batch; j++) lens[j] = (size_t)size;

  zerobus_error *err = NULL;
  zerobus_options *opts = NULL;
  zerobus_sdk *sdk = NULL;
  zerobus_stream *stream = NULL;
  if (zerobus_options_new(&opts) != ZEROBUS_OK) return 1;
  if (zerobus_options_set(opts, "record_type", json ? "json" : "proto", &err) != ZEROBUS_OK)
    return fail("options", err);
  if (json && zerobus_options_set(opts, "validate_json", "false", &err) != ZEROBUS_OK)
    return fail("options", err);
  if (inflight > 0) {
    char buf[32];
    snprintf(buf, sizeof buf, "%ld", inflight);
    if (zerobus_options_set(opts, "max_inflight_records", buf, &err) != ZEROBUS_OK)
      return fail("options", err);
  }
  unsigned char desc[128];
  size_t desc_len = make_descriptor(desc);
  if (zerobus_sdk_new(endpoint, workspace, NULL, &sdk, &err) != ZEROBUS_OK) return fail("sdk", err);
  if (zerobus_stream_create(sdk, table, json ? NULL : desc, json ? 0 : desc_len, client_id,
                            client_secret, opts, NULL, &stream, &err) != ZEROBUS_OK)
    return fail("create stream", err);

  struct rusage r0, r1;
  getrusage(RUSAGE_SELF, &r0);
  double t0 = now_s();
  unsigned k = 0;
  for (long i = 0; i < records;) {
    long n = batch < records - i ? batch : records - i;
    zerobus_status rc;
    if (batch == 1) {
      rc = zerobus_stream_ingest(stream, pool + (size_t)k * (size_t)size, (size_t)size, 0, NULL,
                                 &err);
      k = (k + 1) & (POOL - 1);
    } else {
      for (long j = 0; j < n; j++) {
        ptrs[j] = pool + (size_t)k * (size_t)size;
        k = (k + 1) & (POOL - 1);
      }
      rc = zerobus_stream_ingest_batch(stream, ptrs, lens, (size_t)n, 0, NULL, &err);
    }
    if (rc != ZEROBUS_OK) return fail("ingest", err);
    i += n;
  }
  double t_ingest = now_s();
  if (zerobus_stream_flush(stream, &err) != ZEROBUS_OK) return fail("flush", err);
  double t1 = now_s();
  getrusage(RUSAGE_SELF, &r1);

  zerobus_stream_stats st;
  memset(&st, 0, sizeof st);
  st.struct_size = sizeof st;
  zerobus_stream_get_stats(stream, &st);
  if (st.records_acked != records) {
    fprintf(stderr, "zb_bench_c: %" PRId64 " records acked, expected %ld\n", st.records_acked,
            records);
    return 1;
  }
  if (zerobus_stream_close(stream, &err) != ZEROBUS_OK) return fail("close", err);
  zerobus_stream_destroy(stream);
  zerobus_sdk_destroy(sdk);
  zerobus_options_destroy(opts);

  double wall = t1 - t0;
  printf(
      "{\"impl\":\"c\",\"records\":%ld,\"size\":%ld,\"batch\":%ld,\"wall_s\":%.6f,"
      "\"ingest_s\":%.6f,\"user_s\":%.6f,\"sys_s\":%.6f,\"maxrss_kib\":%ld,\"records_per_s\":%.1f,"
      "\"mb_per_s\":%.3f,\"requests_sent\":%" PRId64 "}\n",
      records, size, batch, wall, t_ingest - t0, tv_s(r1.ru_utime) - tv_s(r0.ru_utime),
      tv_s(r1.ru_stime) - tv_s(r0.ru_stime), r1.ru_maxrss, wall > 0 ? (double)records / wall : 0.0,
      wall > 0 ? (double)records * (double)size / wall / 1e6 : 0.0, st.requests_sent);
  free(pool);
  free(letters);
  free(ptrs);
  free(lens);
  return 0;
}
