/*
 * fuzz_json_check: zb_json_check_object (the ingest-time JSON validator), with a
 * differential check against cJSON 1.7.15.
 *
 * Properties:
 *  - never crashes, never reads out of bounds (the input is not NUL-terminated);
 *  - a rejection is INVALID_RECORD, not retryable, with a message; acceptance sets
 *    no error;
 *  - the validator never accepts what RFC 8259 forbids and cJSON is lax about
 *    (invalid UTF-8, raw control characters, malformed numbers, bad \u escapes,
 *    a byte order mark);
 *  - on inputs free of those constructs (and nesting < 500, numbers < 60 chars,
 *    no lone surrogate escapes) it agrees with cJSON exactly:
 *    accepted <=> cJSON parses the whole input to an object.
 * Documented differences (docs/RELIABILITY.md): cJSON accepts invalid UTF-8, raw
 * control characters in strings and as whitespace, numbers like 01 / 1. / +1e,
 * \u escapes with non-hex digits, a leading BOM, and nesting up to 1000; it
 * rejects lone surrogate escapes (\ud800) and numbers longer than 63 chars.
 */
#include <stdint.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "fuzz_common.h"
#include "internal.h"

enum {
  LAX_UTF8 = 1,       /* invalid UTF-8 */
  LAX_CTRL = 2,       /* byte < 0x20 outside JSON whitespace, or raw in a string */
  LAX_NUMBER = 4,     /* a number token outside the JSON grammar */
  LAX_HEXESC = 8,     /* \u not followed by 4 hex digits */
  LAX_BOM = 16,       /* leading EF BB BF */
  LAX_SURROGATE = 32, /* \u escape of a lone surrogate */
  LAX_DEPTH = 64,     /* nesting >= 500 */
  LAX_LONGNUM = 128   /* number token >= 60 chars */
};

static int utf8_valid(const uint8_t *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint8_t c = s[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t len;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) {
      len = 2;
      cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
      len = 3;
      cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      len = 4;
      cp = c & 0x07;
    } else
      return 0;
    if (i + len > n) return 0;
    for (size_t k = 1; k < len; k++) {
      if ((s[i + k] & 0xc0) != 0x80) return 0;
      cp = (cp << 6) | (s[i + k] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
      return 0;
    i += len;
  }
  return 1;
}

static int is_hex(uint8_t c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
static unsigned hex4(const uint8_t *p) {
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    uint8_t c = p[i];
    v = v * 16 + (unsigned)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
  }
  return v;
}

/* JSON number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int number_ok(const uint8_t *p, size_t n) {
  size_t i = 0;
  if (i < n && p[i] == '-') i++;
  if (i >= n) return 0;
  if (p[i] == '0')
    i++;
  else if (p[i] >= '1' && p[i] <= '9')
    while (i < n && p[i] >= '0' && p[i] <= '9') i++;
  else
    return 0;
  if (i < n && p[i] == '.') {
    i++;
    size_t d = i;
    while (i < n && p[i] >= '0' && p[i] <= '9') i++;
    if (i == d) return 0;
  }
  if (i < n && (p[i] == 'e' || p[i] == 'E')) {
    i++;
    if (i < n && (p[i] == '+' || p[i] == '-')) i++;
    size_t d = i;
    while (i < n && p[i] >= '0' && p[i] <= '9') i++;
    if (i == d) return 0;
  }
  return i == n;
}

static unsigned lax_reasons(const uint8_t *s, size_t n) {
  unsigned r = 0;
  if (!utf8_valid(s, n)) r |= LAX_UTF8;
  if (n >= 3 && s[0] == 0xef && s[1] == 0xbb && s[2] == 0xbf) r |= LAX_BOM;
  int in_str = 0, depth = 0, maxdepth = 0;
  for (size_t i = 0; i < n; i++) {
    uint8_t c = s[i];
    if (in_str) {
      if (c < 0x20)
        r |= LAX_CTRL;
      else if (c == '"')
        in_str = 0;
      else if (c == '\\' && i + 1 < n) {
        i++;
        if (s[i] == 'u') {
          if (i + 4 >= n || !is_hex(s[i + 1]) || !is_hex(s[i + 2]) || !is_hex(s[i + 3]) ||
              !is_hex(s[i + 4])) {
            r |= LAX_HEXESC;
            continue;
          }
          unsigned cp = hex4(s + i + 1);
          i += 4;
          if (cp >= 0xdc00 && cp <= 0xdfff)
            r |= LAX_SURROGATE;
          else if (cp >= 0xd800 && cp <= 0xdbff) {
            /* needs an immediately following \uDC00-\uDFFF */
            if (i + 6 < n && s[i + 1] == '\\' && s[i + 2] == 'u' && is_hex(s[i + 3]) &&
                is_hex(s[i + 4]) && is_hex(s[i + 5]) && is_hex(s[i + 6])) {
              unsigned lo = hex4(s + i + 3);
              if (lo >= 0xdc00 && lo <= 0xdfff)
                i += 6;
              else
                r |= LAX_SURROGATE;
            } else {
              r |= LAX_SURROGATE;
            }
          }
        }
      }
      continue;
    }
    if (c == '"')
      in_str = 1;
    else if (c == '{' || c == '[') {
      if (++depth > maxdepth) maxdepth = depth;
    } else if (c == '}' || c == ']')
      depth--;
    else if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
      r |= LAX_CTRL;
    else if (c == '-' || (c >= '0' && c <= '9') || c == '+' || c == '.') {
      size_t j = i;
      while (j < n && ((s[j] >= '0' && s[j] <= '9') || s[j] == '+' || s[j] == '-' || s[j] == '.' ||
                       s[j] == 'e' || s[j] == 'E'))
        j++;
      if (!number_ok(s + i, j - i)) r |= LAX_NUMBER;
      if (j - i >= 60) r |= LAX_LONGNUM;
      i = j - 1;
    }
  }
  if (maxdepth >= 500) r |= LAX_DEPTH;
  return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* an exact-size heap copy so ASan catches any read past the end */
  char *buf = malloc(size ? size : 1);
  if (!buf) return 0;
  memcpy(buf, data, size);
  zerobus_error *err = (zerobus_error *)1;
  zerobus_status rc = zb_json_check_object(buf, size, &err);
  if (rc == ZEROBUS_OK) {
    FUZZ_CHECK(err == NULL, "accepted but *err was not set to NULL");
  } else {
    FUZZ_CHECK(rc == ZEROBUS_ERR_INVALID_RECORD, "rc %d", (int)rc);
    FUZZ_CHECK(err && zerobus_error_code(err) == ZEROBUS_ERR_INVALID_RECORD &&
                   !zerobus_error_retryable(err) && zerobus_error_message(err)[0],
               "bad error object");
    zerobus_error_destroy(err);
  }
  free(buf);

  unsigned lax = lax_reasons(data, size);
  if (rc == ZEROBUS_OK)
    FUZZ_CHECK((lax & (LAX_UTF8 | LAX_CTRL | LAX_NUMBER | LAX_HEXESC | LAX_BOM)) == 0,
               "validator accepted invalid JSON (reasons 0x%x)", lax);

  char *z = malloc(size + 1);
  if (!z) return 0;
  memcpy(z, data, size);
  z[size] = 0;
  const char *end = NULL;
  cJSON *j = cJSON_ParseWithLengthOpts(z, size + 1, &end, 1);
  int cj_object = j && cJSON_IsObject(j);
  cJSON_Delete(j);
  free(z);
  if (lax == 0)
    FUZZ_CHECK(cj_object == (rc == ZEROBUS_OK), "differs from cJSON: validator %s, cJSON %s",
               rc == ZEROBUS_OK ? "accepts" : "rejects",
               cj_object ? "parses an object" : "rejects");
  return 0;
}
