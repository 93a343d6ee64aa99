/* JSON record validation: syntax, UTF-8, top-level object, depth, positions. */
#include <stdlib.h>

#include "internal.h"
#include "zb_test.h"

static void valid(const char *json) {
  zerobus_error *err = NULL;
  zerobus_status st = zb_json_check_object(json, strlen(json), &err);
  CHECK_INT(st, ZEROBUS_OK);
  if (st != ZEROBUS_OK) fprintf(stderr, "  input %s: %s\n", json, zerobus_error_message(err));
  CHECK(err == NULL);
  zerobus_error_destroy(err);
}

/* `pos` is the expected byte position in the message, `why` part of the reason. */
static void invalid_n(const char *json, size_t len, size_t pos, const char *why) {
  zerobus_error *err = NULL;
  CHECK_INT(zb_json_check_object(json, len, &err), ZEROBUS_ERR_INVALID_RECORD);
  CHECK_INT(zerobus_error_code(err), ZEROBUS_ERR_INVALID_RECORD);
  CHECK_INT(zerobus_error_retryable(err), 0);
  char at[64];
  snprintf(at, sizeof at, "invalid JSON record at byte %zu: ", pos);
  CHECK_HAS(zerobus_error_message(err), at);
  CHECK_HAS(zerobus_error_message(err), why);
  zerobus_error_destroy(err);
  /* Without an error out-parameter the status is the same. */
  CHECK_INT(zb_json_check_object(json, len, NULL), ZEROBUS_ERR_INVALID_RECORD);
}

static void invalid(const char *json, size_t pos, const char *why) {
  invalid_n(json, strlen(json), pos, why);
}

static void valid_documents(void) {
  valid("{}");
  valid(" \t\r\n{ } \n");
  valid("{\"a\":1}");
  valid(
      "{\"a\":-0,\"b\":0.5,\"c\":-12.25e+10,\"d\":1E-3,\"e\":0e0,\"f\":"
      "123456789012345678901234567890}");
  valid("{\"a\":true,\"b\":false,\"c\":null}");
  valid("{\"a\":[],\"b\":[1,\"x\",{},[null]],\"c\":{\"d\":{\"e\":[]}}}");
  valid("{\"esc\":\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u0041 \\u00e9 \\uFFFF\"}");
  valid("{\"pair\":\"\\ud83d\\ude00\"}"); /* surrogate pair escape */
  valid("{\"utf8\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xef\xbf\xbf \xf4\x8f\xbf\xbf\"}");
  valid("{\"del\":\"\x7f\"}");
  valid("{\"\":\"\"}");
  valid("{\"dup\":1,\"dup\":2}"); /* duplicates are syntax-valid */
  valid("{ \"a\" : [ 1 , 2 ] , \"b\" : { } }");
  valid("{\"long\":\"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\"}");
}

static void invalid_syntax(void) {
  invalid("", 0, "empty record");
  invalid("   \n", 4, "empty record");
  invalid("[]", 0, "must be a JSON object");
  invalid("\"str\"", 0, "must be a JSON object");
  invalid("42", 0, "must be a JSON object");
  invalid("null", 0, "must be a JSON object");
  invalid("{", 1, "expected a string key");
  invalid("{\"a\"", 4, "expected ':'");
  invalid("{\"a\":", 5, "expected a value");
  invalid("{\"a\":1", 6, "unclosed object");
  invalid("{\"a\":1,}", 7, "expected a string key");
  invalid("{,}", 1, "expected a string key");
  invalid("{\"a\" 1}", 5, "expected ':'");
  invalid("{\"a\":1 \"b\":2}", 7, "expected ',' or '}'");
  invalid("{a:1}", 1, "expected a string key");
  invalid("{'a':1}", 1, "expected a string key");
  invalid("{\"a\":[1,]}", 8, "expected a value");
  invalid("{\"a\":[1 2]}", 8, "expected ',' or ']'");
  invalid("{\"a\":[}", 6, "expected a value");
  invalid("{\"a\":]}", 5, "expected a value");
  invalid("{\"a\":[1}", 7, "expected ',' or ']'");
  invalid("{\"a\":{]}", 6, "expected a string key");
  invalid("{} {}", 3, "unexpected data after the JSON object");
  invalid("{}x", 2, "unexpected data after");
  invalid("{\"a\":tru}", 5, "invalid literal");
  invalid("{\"a\":True}", 5, "expected a value");
  invalid("{\"a\":nul", 5, "invalid literal");
  invalid("{\"a\":undefined}", 5, "expected a value");
  invalid("{\"a\":NaN}", 5, "expected a value");
  invalid("{\"a\":Infinity}", 5, "expected a value");
  /* numbers */
  invalid("{\"a\":01}", 6, "leading zero");
  invalid("{\"a\":-}", 6, "invalid number");
  invalid("{\"a\":+1}", 5, "expected a value");
  invalid("{\"a\":.5}", 5, "expected a value");
  invalid("{\"a\":1.}", 7, "digit after the decimal point");
  invalid("{\"a\":1.e5}", 7, "digit after the decimal point");
  invalid("{\"a\":1e}", 7, "digit in the exponent");
  invalid("{\"a\":1e+}", 8, "digit in the exponent");
  invalid("{\"a\":0x10}", 6, "expected ',' or '}'");
  invalid("{\"a\":- 1}", 6, "invalid number");
  /* strings */
  invalid("{\"a\":\"x}", 8, "unterminated string");
  invalid("{\"a\":\"x\\", 7, "unterminated string");
  invalid("{\"a\":\"\\x\"}", 6, "invalid escape");
  invalid("{\"a\":\"\\'\"}", 6, "invalid escape");
  invalid("{\"a\":\"\\u12\"}", 6, "invalid \\u escape");
  invalid("{\"a\":\"\\u12G4\"}", 6, "invalid \\u escape");
  invalid("{\"a\":\"\\ud800\"}", 6, "unpaired high surrogate");
  invalid("{\"a\":\"\\ud800\\u0041\"}", 6, "unpaired high surrogate");
  invalid("{\"a\":\"\\udc00\"}", 6, "unpaired low surrogate");
  invalid("{\"a\":\"tab\there\"}", 9, "control character in string");
  invalid("{\"a\":\"line\nbreak\"}", 10, "control character");
  invalid_n("{\"a\":\"nul\0\"}", 12, 9, "control character");
  invalid_n("{\"a\":1}\0", 8, 7, "unexpected data after");
  invalid("\xef\xbb\xbf{}", 0, "byte order mark");
  invalid("{\"k\xc3\xa9y\xff\":1}", 6, "invalid UTF-8");
}

static void invalid_utf8(void) {
  /* (bytes inside a string value, starting at offset 6) */
  struct {
    const char *bytes;
    const char *why;
  } cases[] = {
      {"\x80", "unexpected continuation byte"},
      {"\xbf", "unexpected continuation byte"},
      {"\xc0\x80", "overlong"},     /* overlong NUL */
      {"\xc1\xbf", "overlong"},     /* overlong 0x7f */
      {"\xe0\x80\x80", "overlong"}, /* overlong 3-byte */
      {"\xe0\x9f\xbf", "overlong"},
      {"\xf0\x80\x80\x80", "overlong"}, /* overlong 4-byte */
      {"\xf0\x8f\xbf\xbf", "overlong"},
      {"\xed\xa0\x80", "surrogate"},            /* U+D800 */
      {"\xed\xbf\xbf", "surrogate"},            /* U+DFFF */
      {"\xf4\x90\x80\x80", "bad continuation"}, /* > U+10FFFF */
      {"\xf5\x80\x80\x80", "bad lead byte"},
      {"\xff", "bad lead byte"},
      {"\xfe", "bad lead byte"},
      {"\xc3", "bad continuation"}, /* truncated by the closing quote */
      {"\xc3\x28", "bad continuation"},
      {"\xe2\x82", "bad continuation"},
      {"\xe2\x28\xa1", "bad continuation"},
      {"\xf0\x9f\x98", "bad continuation"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char buf[64];
    snprintf(buf, sizeof buf, "{\"a\":\"%s\"}", cases[i].bytes);
    invalid(buf, 6, cases[i].why);
  }
  /* A sequence cut by the end of the data. */
  invalid_n("{\"a\":\"\xe2\x82", 8, 6, "truncated sequence");
  /* Invalid bytes found after a long ASCII run (the 8-byte fast path). */
  char buf[128];
  snprintf(buf, sizeof buf, "{\"a\":\"%s\xc0\xaf\"}", "abcdefghijklmnopqrstuvwxyz0123456789");
  invalid(buf, 6 + 36, "overlong");
  snprintf(buf, sizeof buf, "{\"a\":\"%s\x01\"}", "abcdefghijklmnopqrstuvwxyz0123456789");
  invalid(buf, 6 + 36, "control character");
}

static void depth_limit(void) {
  /* 512 nested containers (the object counts) pass; 513 fail. */
  size_t n = 512;
  char *buf = malloc(2 * 600 + 16);
  size_t len = 0;
  buf[len++] = '{';
  buf[len++] = '"';
  buf[len++] = 'a';
  buf[len++] = '"';
  buf[len++] = ':';
  for (size_t i = 1; i < n; i++) buf[len++] = '[';
  for (size_t i = 1; i < n; i++) buf[len++] = ']';
  buf[len++] = '}';
  zerobus_error *err = NULL;
  CHECK_INT(zb_json_check_object(buf, len, &err), ZEROBUS_OK);
  len = 0;
  buf[len++] = '{';
  buf[len++] = '"';
  buf[len++] = 'a';
  buf[len++] = '"';
  buf[len++] = ':';
  for (size_t i = 1; i < n + 1; i++) buf[len++] = '[';
  for (size_t i = 1; i < n + 1; i++) buf[len++] = ']';
  buf[len++] = '}';
  CHECK_INT(zb_json_check_object(buf, len, &err), ZEROBUS_ERR_INVALID_RECORD);
  CHECK_HAS(zerobus_error_message(err), "at byte 516: nesting deeper than 512 levels");
  zerobus_error_destroy(err);
  /* Deeply nested objects too, and a huge depth does not overflow the stack. */
  size_t big = 100000;
  char *deep = malloc(big * 6 + 8);
  len = 0;
  for (size_t i = 0; i < big; i++) memcpy(deep + len, "{\"a\":", 5), len += 5;
  CHECK_INT(zb_json_check_object(deep, len, NULL), ZEROBUS_ERR_INVALID_RECORD);
  free(deep);
  free(buf);
}

static void null_and_lengths(void) {
  zerobus_error *err = NULL;
  CHECK_INT(zb_json_check_object(NULL, 5, &err), ZEROBUS_ERR_INVALID_ARGUMENT);
  zerobus_error_destroy(err);
  CHECK_INT(zb_json_check_object(NULL, 0, &err), ZEROBUS_ERR_INVALID_RECORD);
  CHECK_HAS(zerobus_error_message(err), "empty record");
  zerobus_error_destroy(err);
  /* Only len bytes are read: a valid prefix of a longer buffer. */
  const char *s = "{\"a\":1}garbage";
  CHECK_INT(zb_json_check_object(s, 7, NULL), ZEROBUS_OK);
  CHECK_INT(zb_json_check_object(s, 6, NULL), ZEROBUS_ERR_INVALID_RECORD);
  /* Every proper prefix of a valid document is invalid, and never read past len. */
  const char *doc =
      "{\"id\":12,\"name\":\"caf\xc3\xa9\",\"tags\":[\"x\",true,null,-1.5e3],\"o\":{}}";
  size_t dlen = strlen(doc);
  for (size_t i = 0; i < dlen; i++) {
    char *copy = malloc(i ? i : 1); /* exact size: ASan catches any overread */
    memcpy(copy, doc, i);
    CHECK_INT(zb_json_check_object(copy, i, NULL), ZEROBUS_ERR_INVALID_RECORD);
    free(copy);
  }
  CHECK_INT(zb_json_check_object(doc, dlen, NULL), ZEROBUS_OK);
}

static void every_single_byte_in_a_string(void) {
  /* Long and short strings take different paths (8-byte blocks, then bytes). */
  for (int pad = 0; pad <= 16; pad += 16) {
    for (int b = 0; b < 256; b++) {
      char buf[64];
      size_t n = 0;
      memcpy(buf, "{\"a\":\"", 6);
      n = 6;
      memset(buf + n, 'x', (size_t)pad);
      n += (size_t)pad;
      buf[n++] = (char)b;
      buf[n++] = '"';
      buf[n++] = '}';
      int expect_ok = b >= 0x20 && b < 0x80 && b != '"' && b != '\\';
      zerobus_status st = zb_json_check_object(buf, n, NULL);
      CHECK_INT(st, expect_ok ? ZEROBUS_OK : ZEROBUS_ERR_INVALID_RECORD);
    }
  }
}

int main(void) {
  RUN(every_single_byte_in_a_string);
  RUN(valid_documents);
  RUN(invalid_syntax);
  RUN(invalid_utf8);
  RUN(depth_limit);
  RUN(null_and_lengths);
  TEST_MAIN_END();
}
