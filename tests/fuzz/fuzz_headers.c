/*
 * fuzz_headers: what a headers provider hands back (zerobus_headers_add /
 * zerobus_headers_fail) and zb_headers_validate.
 * Input: a provider return code byte, then NUL/0xff-separated key, value pairs;
 * a pair whose key is "!fail" calls zerobus_headers_fail(value, retryable).
 * Properties: never crashes; zerobus_headers_add refuses empty keys, keys
 * outside [a-z0-9-_.] after lowercasing and values with CR/LF, and stores what it
 * accepts lowercased; zb_headers_validate succeeds exactly when the provider
 * returned 0 without failing, every key is allowed and not reserved, every
 * non -bin value is printable ASCII, and both required headers are present and
 * non-empty; its errors are HEADERS_PROVIDER, retryable only for a provider
 * failure that said so (or a non-zero return without a fail call).
 */
#include <ctype.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_common.h"
#include "internal.h"

static int key_ok(const char *k) {
  if (!*k) return 0;
  for (; *k; k++) {
    char c = (char)tolower((unsigned char)*k);
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
      return 0;
  }
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  int32_t prc = data[0] < 200 ? 0 : (int32_t)(data[0] - 199);
  char *copy = malloc(size);
  if (!copy) return 0;
  memcpy(copy, data + 1, size - 1);
  copy[size - 1] = 0;
  for (size_t i = 0; i + 1 < size; i++)
    if ((uint8_t)copy[i] == 0xff) copy[i] = 0;

  zerobus_headers h;
  zb_headers_init(&h);
  int failed = 0, retry = 0;
  /* walk NUL-separated tokens: key, value, key, value ... */
  char *p = copy, *end = copy + size - 1;
  while (p < end) {
    char *k = p;
    p += strlen(p) + 1;
    if (p > end) break;
    char *v = p;
    p += strlen(p) + 1;
    if (strcmp(k, "!fail") == 0) {
      retry = v[0] & 1;
      FUZZ_CHECK(zerobus_headers_fail(&h, v, retry) == ZEROBUS_OK, "fail refused");
      failed = 1;
      continue;
    }
    size_t before = h.count;
    zerobus_status rc = zerobus_headers_add(&h, k, v);
    int expect_ok = key_ok(k) && !strchr(v, '\r') && !strchr(v, '\n');
    FUZZ_CHECK((rc == ZEROBUS_OK) == expect_ok, "add(%s) rc %d", k, (int)rc);
    if (rc == ZEROBUS_OK) {
      char lower[4096];
      size_t kl = strlen(k);
      if (kl < sizeof lower) {
        for (size_t i = 0; i <= kl; i++) lower[i] = (char)tolower((unsigned char)k[i]);
        const char *got = zb_headers_get(&h, lower);
        FUZZ_CHECK(got && strcmp(got, v) == 0, "stored value differs for %s", lower);
      }
    } else {
      FUZZ_CHECK(h.count == before, "refused add changed the headers");
    }
  }

  /* the reference verdict */
  int ok = prc == 0 && !failed;
  for (size_t i = 0; ok && i < h.count; i++) {
    const char *k = h.items[i].key, *v = h.items[i].value;
    if (!strncmp(k, "grpc-", 5) || !strcmp(k, "te") || !strcmp(k, "content-type") ||
        !strcmp(k, "user-agent"))
      ok = 0;
    size_t kl = strlen(k);
    int bin = kl > 4 && !strcmp(k + kl - 4, "-bin");
    for (const char *c = v; ok && !bin && *c; c++)
      if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e) ok = 0;
  }
  const char *a = zb_headers_get(&h, "authorization"),
             *t = zb_headers_get(&h, "x-databricks-zerobus-table-name");
  if (!a || !*a || !t || !*t) ok = 0;

  zerobus_error *err = NULL;
  zerobus_status vr = zb_headers_validate(&h, prc, &err);
  FUZZ_CHECK((vr == ZEROBUS_OK) == ok, "validate rc %d, expected %s", (int)vr,
             ok ? "OK" : "failure");
  if (vr != ZEROBUS_OK) {
    FUZZ_CHECK(vr == ZEROBUS_ERR_HEADERS_PROVIDER && zerobus_error_code(err) == (int32_t)vr,
               "code %d", (int)vr);
    int expect_retry = failed ? retry : (prc != 0 ? 1 : 0);
    FUZZ_CHECK(zerobus_error_retryable(err) == expect_retry, "retryable %d, expected %d",
               zerobus_error_retryable(err), expect_retry);
    /* values may be tokens: never echoed */
    /* checked only for values holding a character that no message text (fixed
     * words, header keys) can contain, so a match can only be a leak */
    if (!failed && prc == 0 && a && strlen(a) >= 8 && strpbrk(a, "#$%&*+/;<=>?@[]^`{|}~"))
      FUZZ_CHECK(!strstr(zerobus_error_message(err), a), "authorization value leaked");
  }
  zerobus_error_destroy(err);
  zb_headers_clear(&h);
  free(copy);
  return 0;
}
