/*
 * fuzz_server_proto: zerobus-local's dynamic protobuf decoder (server/protodec.c):
 * pd_schema_parse on a fuzzed DescriptorProto, then pd_decode of fuzzed records
 * with it, plus the base64 helpers.
 * Input: byte 0 selects the descriptor: even = the built-in rich descriptor
 * (rich_descriptor.h) so record decoding gets deep quickly; odd = the next
 * 2 bytes give a length L and the following L bytes are the descriptor. The rest
 * is a list of records, each prefixed by one length byte.
 * Properties: never crashes or hangs (ASan/UBSan); a refused descriptor or record
 * comes with an error text; a decoded record is a JSON object that prints; every
 * top-level bytes field decodes back from base64; base64 round-trips.
 */
#include <stdint.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "fuzz_common.h"
#include "rich_descriptor.h"
#include "zl.h"

static uint8_t *g_rich;
static size_t g_rich_len;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  g_rich = rich_descriptor(&g_rich_len);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  const uint8_t *desc = g_rich, *p = data + 1, *end = data + size;
  size_t dlen = g_rich_len;
  if (data[0] & 1) {
    if (size < 3) return 0;
    dlen = (size_t)data[1] | ((size_t)data[2] << 8);
    if (dlen > size - 3) dlen = size - 3;
    desc = data + 3;
    p = desc + dlen;
  }
  /* exact-size copies so ASan sees overreads */
  uint8_t *dcopy = malloc(dlen ? dlen : 1);
  memcpy(dcopy, desc, dlen);
  char err[256];
  err[0] = 0;
  pd_schema *s = pd_schema_parse(dcopy, dlen, err, sizeof err);
  free(dcopy);
  if (!s) {
    FUZZ_CHECK(err[0], "descriptor refused without a message");
    return 0;
  }
  while (p < end) {
    size_t n = *p++;
    if (n > (size_t)(end - p)) n = (size_t)(end - p);
    uint8_t *rec = malloc(n ? n : 1);
    memcpy(rec, p, n);
    p += n;
    err[0] = 0;
    cJSON *o = pd_decode(s, rec, n, err, sizeof err);
    if (!o) {
      FUZZ_CHECK(err[0], "record refused without a message");
    } else {
      FUZZ_CHECK(cJSON_IsObject(o), "decoded record is not an object");
      char *txt = cJSON_PrintUnformatted(o);
      FUZZ_CHECK(txt != NULL, "print failed");
      free(txt);
      for (cJSON *it = o->child; it; it = it->next) {
        if (it->string && pd_top_field_is_bytes(s, it->string) && cJSON_IsString(it)) {
          uint8_t *raw = NULL;
          size_t rl = 0;
          FUZZ_CHECK(zl_base64_decode(it->valuestring, &raw, &rl) == 0,
                     "bytes field is not base64");
          free(raw);
        }
      }
      cJSON_Delete(o);
    }
    char *b64 = zl_base64_encode(rec, n);
    FUZZ_CHECK(b64 != NULL, "base64 encode");
    uint8_t *back = NULL;
    size_t bl = 0;
    FUZZ_CHECK(
        zl_base64_decode(b64, &back, &bl) == 0 && bl == n && (n == 0 || memcmp(back, rec, n) == 0),
        "base64 round trip");
    free(back);
    free(b64);
    free(rec);
  }
  pd_schema_free(s);
  return 0;
}
