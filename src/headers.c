/*
 * headers.c - zerobus_headers, the object a custom headers provider fills.
 *
 * The core owns the object; the provider only calls zerobus_headers_add() and
 * zerobus_headers_fail() on it during the callback. Values may hold tokens, so
 * they are zeroed before they are freed and never appear in messages.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static const char *const k_required[] = {"authorization", "x-databricks-zerobus-table-name"};

void zb_headers_init(zerobus_headers *h) {
  if (h) memset(h, 0, sizeof *h);
}

void zb_headers_clear(zerobus_headers *h) {
  if (!h) return;
  for (size_t i = 0; i < h->count; i++) {
    free(h->items[i].key);
    zb_secret_free(h->items[i].value);
  }
  free(h->items);
  zb_secret_free(h->message);
  memset(h, 0, sizeof *h);
}

const char *zb_headers_get(const zerobus_headers *h, const char *key) {
  if (!h || !key) return NULL;
  for (size_t i = 0; i < h->count; i++)
    if (strcmp(h->items[i].key, key) == 0) return h->items[i].value;
  return NULL;
}

/* gRPC metadata key characters (after lowercasing). */
static int key_char_ok(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
}

static int value_ok(const char *v) {
  for (; *v; v++)
    if ((unsigned char)*v < 0x20 || (unsigned char)*v > 0x7e) return 0;
  return 1;
}

/* A second add of the same key replaces the first (one value per key). */
zerobus_status zerobus_headers_add(zerobus_headers *h, const char *key, const char *value) {
  if (!h || !key || !value || !*key) return ZEROBUS_ERR_INVALID_ARGUMENT;
  size_t klen = strlen(key);
  char *k = malloc(klen + 1);
  if (!k) return ZEROBUS_ERR_NO_MEMORY;
  for (size_t i = 0; i <= klen; i++) k[i] = (char)tolower((unsigned char)key[i]);
  for (size_t i = 0; i < klen; i++)
    if (!key_char_ok(k[i])) {
      free(k);
      return ZEROBUS_ERR_INVALID_ARGUMENT;
    }
  if (strchr(value, '\r') || strchr(value, '\n')) {
    free(k);
    return ZEROBUS_ERR_INVALID_ARGUMENT;
  }
  char *v = zb_secret_dup(value);
  if (!v) {
    free(k);
    return ZEROBUS_ERR_NO_MEMORY;
  }
  for (size_t i = 0; i < h->count; i++) {
    if (strcmp(h->items[i].key, k) == 0) {
      free(k);
      zb_secret_free(h->items[i].value);
      h->items[i].value = v;
      return ZEROBUS_OK;
    }
  }
  if (h->count == h->cap) {
    size_t cap = h->cap ? h->cap * 2 : 4;
    zb_header *items = realloc(h->items, cap * sizeof *items);
    if (!items) {
      free(k);
      zb_secret_free(v);
      return ZEROBUS_ERR_NO_MEMORY;
    }
    h->items = items;
    h->cap = cap;
  }
  h->items[h->count].key = k;
  h->items[h->count].value = v;
  h->count++;
  return ZEROBUS_OK;
}

zerobus_status zerobus_headers_fail(zerobus_headers *h, const char *message, int32_t retryable) {
  if (!h) return ZEROBUS_ERR_INVALID_ARGUMENT;
  char *m = strdup(message && *message ? message : "no message given");
  if (!m) return ZEROBUS_ERR_NO_MEMORY;
  zb_secret_free(h->message);
  h->message = m;
  h->failed = 1;
  h->retryable = retryable ? 1 : 0;
  return ZEROBUS_OK;
}

zerobus_status zb_headers_validate(const zerobus_headers *h, int32_t rc, zerobus_error **err) {
  if (err) *err = NULL;
  if (!h) return zb_fail(err, ZEROBUS_ERR_INVALID_ARGUMENT, 0, "headers object is NULL");
  if (h->failed || rc != ZEROBUS_OK) {
    int32_t retry = h->failed ? h->retryable : 1;
    const char *msg = h->message ? h->message : "no message given";
    if (rc != ZEROBUS_OK)
      return zb_fail(err, ZEROBUS_ERR_HEADERS_PROVIDER, retry,
                     "headers provider failed (returned %d, %s): %s", (int)rc,
                     zerobus_status_name(rc), msg);
    return zb_fail(err, ZEROBUS_ERR_HEADERS_PROVIDER, retry, "headers provider failed: %s", msg);
  }
  /* From here on the provider returned headers it believes are good: a mistake in
   * them is deterministic, so retrying would not help. */
  for (size_t i = 0; i < h->count; i++) {
    const char *k = h->items[i].key;
    if (strncmp(k, "grpc-", 5) == 0 || strcmp(k, "te") == 0 || strcmp(k, "content-type") == 0 ||
        strcmp(k, "user-agent") == 0)
      return zb_fail(err, ZEROBUS_ERR_HEADERS_PROVIDER, 0,
                     "headers provider set reserved header '%s' (gRPC sets it itself)", k);
    for (const char *c = k; *c; c++)
      if (!key_char_ok(*c))
        return zb_fail(err, ZEROBUS_ERR_HEADERS_PROVIDER, 0,
                       "headers provider set invalid header key '%s' (allowed: a-z 0-9 - _ .)", k);
    size_t klen = strlen(k);
    int binary = klen > 4 && strcmp(k + klen - 4, "-bin") == 0;
    if (!binary && !value_ok(h->items[i].value))
      return zb_fail(err, ZEROBUS_ERR_HEADERS_PROVIDER, 0,
                     "headers provider set header '%s' with a value that is not printable "
                     "ASCII (CR, LF and control characters are not allowed)",
                     k);
  }
  for (size_t r = 0; r < sizeof k_required / sizeof k_required[0]; r++) {
    const char *v = zb_headers_get(h, k_required[r]);
    if (!v || !*v)
      return zb_fail(err, ZEROBUS_ERR_HEADERS_PROVIDER, 0,
                     "headers provider did not supply the required header '%s' (it must add "
                     "'authorization' and 'x-databricks-zerobus-table-name')",
                     k_required[r]);
  }
  return ZEROBUS_OK;
}
