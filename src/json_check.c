/*
 * json_check.c - validation of JSON records on the ingest hot path.
 *
 * One pass, no allocation, no recursion: an explicit stack of container kinds
 * (depth at most 512). Checks strict RFC 8259 syntax, that the top-level value is
 * an object, and that strings are valid UTF-8 (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF). \u escapes must not leave a surrogate
 * unpaired (the record would not be valid Unicode). A byte order mark is refused.
 * String bodies, where most bytes of a record are, are scanned 8 bytes at a time.
 */
#include <stdint.h>
#include <string.h>

#include "internal.h"

#define JSON_MAX_DEPTH 512

typedef struct jscan {
  const unsigned char *start, *p, *end;
  const char *why; /* set on failure */
} jscan;

/* Bytes a string body can hold without a closer look: printable ASCII except
 * '"' and '\\'. */
// clang-format off
static const unsigned char k_plain[256] = {
#define R8(v) v, v, v, v, v, v, v, v
    R8(0), R8(0), R8(0), R8(0),                   /* 0x00-0x1f: control characters */
    1, 1, 0, 1, 1, 1, 1, 1, R8(1), R8(1), R8(1),  /* 0x20-0x3f: 0x22 is '"' */
    R8(1), R8(1), R8(1), 1, 1, 1, 1, 0, 1, 1, 1,  /* 0x40-0x5f: 0x5c is '\\' */
    R8(1), R8(1), R8(1), R8(1),                   /* 0x60-0x7f (0x7f DEL is legal) */
    R8(0), R8(0), R8(0), R8(0), R8(0), R8(0), R8(0), R8(0),  /* 0x80-0xff: UTF-8, */
    R8(0), R8(0), R8(0), R8(0), R8(0), R8(0), R8(0), R8(0),  /* checked apart */
#undef R8
};
// clang-format on

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* Nonzero when any byte of w is < 0x20, '"', '\\' or >= 0x80. */
static inline uint64_t swar_special(uint64_t w) {
  uint64_t quote = w ^ (ONES * '"');
  uint64_t bslash = w ^ (ONES * '\\');
  uint64_t lt20 = (w - ONES * 0x20) & ~w;
  uint64_t zq = (quote - ONES) & ~quote;
  uint64_t zb = (bslash - ONES) & ~bslash;
  return (lt20 | zq | zb | w) & HIGHS;
}

static inline int is_ws(unsigned char c) {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

static inline void skip_ws(jscan *s) {
  while (s->p < s->end && is_ws(*s->p)) s->p++;
}

static int fail(jscan *s, const char *why) {
  s->why = why;
  return 0;
}

static int hex4(const unsigned char *p, unsigned *out) {
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    unsigned c = p[i], d;
    if (c >= '0' && c <= '9')
      d = c - '0';
    else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
      d = (c | 0x20) - 'a' + 10;
    else
      return 0;
    v = v << 4 | d;
  }
  *out = v;
  return 1;
}

/* One UTF-8 sequence of 2..4 bytes at s->p (first byte >= 0x80). */
static int scan_utf8(jscan *s) {
  const unsigned char *p = s->p;
  size_t avail = (size_t)(s->end - p);
  unsigned c = p[0];
  unsigned lo = 0x80, hi = 0xbf;
  size_t n;
  if (c >= 0xc2 && c <= 0xdf)
    n = 2;
  else if (c == 0xe0)
    n = 3, lo = 0xa0;
  else if (c >= 0xe1 && c <= 0xec)
    n = 3;
  else if (c == 0xed)
    n = 3, hi = 0x9f; /* no surrogates */
  else if (c >= 0xee && c <= 0xef)
    n = 3;
  else if (c == 0xf0)
    n = 4, lo = 0x90;
  else if (c >= 0xf1 && c <= 0xf3)
    n = 4;
  else if (c == 0xf4)
    n = 4, hi = 0x8f; /* <= U+10FFFF */
  else
    return fail(s, c < 0xc2 && c >= 0x80 && c < 0xc0
                       ? "invalid UTF-8 (unexpected continuation byte)"
                       : "invalid UTF-8 (bad lead byte or overlong form)");
  if (avail < n) return fail(s, "invalid UTF-8 (truncated sequence)");
  if (p[1] < lo || p[1] > hi)
    return fail(s, "invalid UTF-8 (overlong form, surrogate or bad continuation)");
  for (size_t i = 2; i < n; i++)
    if ((p[i] & 0xc0) != 0x80) return fail(s, "invalid UTF-8 (bad continuation byte)");
  s->p += n;
  return 1;
}

/* A string starting at the opening quote; leaves s->p after the closing quote. */
static int scan_string(jscan *s) {
  const unsigned char *p = s->p + 1, *end = s->end;
  for (;;) {
    while (end - p >= 8) {
      uint64_t w;
      memcpy(&w, p, 8);
      if (swar_special(w)) break;
      p += 8;
    }
    while (p < end && k_plain[*p]) p++;
    if (p >= end) {
      s->p = p;
      return fail(s, "unterminated string");
    }
    unsigned char c = *p;
    if (c == '"') {
      s->p = p + 1;
      return 1;
    }
    if (c == '\\') {
      if (end - p < 2) {
        s->p = p;
        return fail(s, "unterminated string");
      }
      unsigned char e = p[1];
      if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' || e == 'r' ||
          e == 't') {
        p += 2;
        continue;
      }
      if (e != 'u') {
        s->p = p;
        return fail(s, "invalid escape sequence in string");
      }
      unsigned u;
      if (end - p < 6 || !hex4(p + 2, &u)) {
        s->p = p;
        return fail(s, "invalid \\u escape (expected 4 hex digits)");
      }
      if (u >= 0xdc00 && u <= 0xdfff) {
        s->p = p;
        return fail(s, "unpaired low surrogate in \\u escape");
      }
      if (u >= 0xd800 && u <= 0xdbff) {
        unsigned u2;
        if (end - p < 12 || p[6] != '\\' || p[7] != 'u' || !hex4(p + 8, &u2) || u2 < 0xdc00 ||
            u2 > 0xdfff) {
          s->p = p;
          return fail(s, "unpaired high surrogate in \\u escape");
        }
        p += 12;
        continue;
      }
      p += 6;
      continue;
    }
    if (c < 0x20) {
      s->p = p;
      return fail(s, "control character in string (must be escaped)");
    }
    s->p = p; /* >= 0x80 */
    if (!scan_utf8(s)) return 0;
    p = s->p;
  }
}

static int scan_number(jscan *s) {
  const unsigned char *p = s->p, *end = s->end;
  if (*p == '-') p++;
  if (p >= end || *p < '0' || *p > '9') {
    s->p = p;
    return fail(s, "invalid number");
  }
  if (*p == '0') {
    p++;
    if (p < end && *p >= '0' && *p <= '9') {
      s->p = p;
      return fail(s, "leading zero in number");
    }
  } else {
    while (p < end && *p >= '0' && *p <= '9') p++;
  }
  if (p < end && *p == '.') {
    p++;
    if (p >= end || *p < '0' || *p > '9') {
      s->p = p;
      return fail(s, "expected a digit after the decimal point");
    }
    while (p < end && *p >= '0' && *p <= '9') p++;
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    p++;
    if (p < end && (*p == '+' || *p == '-')) p++;
    if (p >= end || *p < '0' || *p > '9') {
      s->p = p;
      return fail(s, "expected a digit in the exponent");
    }
    while (p < end && *p >= '0' && *p <= '9') p++;
  }
  s->p = p;
  return 1;
}

static int scan_literal(jscan *s, const char *word, size_t n) {
  if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
    return fail(s, "invalid literal (expected true, false or null)");
  s->p += n;
  return 1;
}

/* The whole document; 1 when valid. */
static int scan_document(jscan *s) {
  unsigned char stack[JSON_MAX_DEPTH]; /* '{' or '[' */
  int depth = 0;

  skip_ws(s);
  if (s->p >= s->end) return fail(s, "empty record (expected a JSON object)");
  if (s->end - s->p >= 3 && s->p[0] == 0xef && s->p[1] == 0xbb && s->p[2] == 0xbf)
    return fail(s, "byte order mark is not allowed");
  if (*s->p != '{') return fail(s, "the record must be a JSON object (starting with '{')");

value:
  if (s->p >= s->end) return fail(s, "unexpected end (expected a value)");
  switch (*s->p) {
    case '{':
      if (depth == JSON_MAX_DEPTH) return fail(s, "nesting deeper than 512 levels");
      stack[depth++] = '{';
      s->p++;
      skip_ws(s);
      if (s->p < s->end && *s->p == '}') {
        s->p++;
        depth--;
        goto after_value;
      }
      goto member;
    case '[':
      if (depth == JSON_MAX_DEPTH) return fail(s, "nesting deeper than 512 levels");
      stack[depth++] = '[';
      s->p++;
      skip_ws(s);
      if (s->p < s->end && *s->p == ']') {
        s->p++;
        depth--;
        goto after_value;
      }
      goto value;
    case '"':
      if (!scan_string(s)) return 0;
      goto after_value;
    case 't':
      if (!scan_literal(s, "true", 4)) return 0;
      goto after_value;
    case 'f':
      if (!scan_literal(s, "false", 5)) return 0;
      goto after_value;
    case 'n':
      if (!scan_literal(s, "null", 4)) return 0;
      goto after_value;
    default:
      if (*s->p == '-' || (*s->p >= '0' && *s->p <= '9')) {
        if (!scan_number(s)) return 0;
        goto after_value;
      }
      return fail(s, "unexpected character (expected a value)");
  }

member: /* at a key inside an object, whitespace skipped */
  if (s->p >= s->end) return fail(s, "unexpected end (expected a string key)");
  if (*s->p != '"') return fail(s, "expected a string key");
  if (!scan_string(s)) return 0;
  skip_ws(s);
  if (s->p >= s->end || *s->p != ':') return fail(s, "expected ':' after the key");
  s->p++;
  skip_ws(s);
  goto value;

after_value:
  skip_ws(s);
  if (depth == 0) {
    if (s->p != s->end) return fail(s, "unexpected data after the JSON object");
    return 1;
  }
  if (s->p >= s->end) return fail(s, "unexpected end (unclosed object or array)");
  if (*s->p == ',') {
    s->p++;
    skip_ws(s);
    if (stack[depth - 1] == '{') goto member;
    goto value;
  }
  if (stack[depth - 1] == '{') {
    if (*s->p != '}') return fail(s, "expected ',' or '}' in object");
  } else if (*s->p != ']') {
    return fail(s, "expected ',' or ']' in array");
  }
  s->p++;
  depth--;
  goto after_value;
}

zerobus_status zb_json_check_object(const char *data, size_t len, zerobus_error **err) {
  if (err) *err = NULL;
  if (!data && len)
    return zb_fail(err, ZEROBUS_ERR_INVALID_ARGUMENT, 0, "JSON record pointer is NULL");
  static const char empty[1] = "";
  if (!data) data = empty;
  jscan s = {(const unsigned char *)data, (const unsigned char *)data,
             (const unsigned char *)data + len, NULL};
  if (scan_document(&s)) return ZEROBUS_OK;
  return zb_fail(err, ZEROBUS_ERR_INVALID_RECORD, 0, "invalid JSON record at byte %zu: %s",
                 (size_t)(s.p - s.start), s.why);
}
