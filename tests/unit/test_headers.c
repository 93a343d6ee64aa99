/* Headers provider output: add, fail, get, validate, clear. */
#include "internal.h"
#include "zb_test.h"

static zerobus_status validate(zerobus_headers *h, int32_t rc, char *msg, size_t cap,
                               int32_t *retryable) {
  zerobus_error *err = NULL;
  zerobus_status st = zb_headers_validate(h, rc, &err);
  snprintf(msg, cap, "%s", zerobus_error_message(err));
  if (retryable) *retryable = zerobus_error_retryable(err);
  if (st != ZEROBUS_OK) CHECK_INT(zerobus_error_code(err), st);
  zerobus_error_destroy(err);
  return st;
}

static void good_headers_validate(void) {
  zerobus_headers h;
  zb_headers_init(&h);
  CHECK_INT(zerobus_headers_add(&h, "Authorization", "Bearer tok"), ZEROBUS_OK);
  CHECK_INT(zerobus_headers_add(&h, "x-databricks-zerobus-table-name", "a.b.c"), ZEROBUS_OK);
  CHECK_INT(zerobus_headers_add(&h, "x-custom_key.v2", "v"), ZEROBUS_OK);
  CHECK_INT(h.count, 3);
  CHECK_STR(zb_headers_get(&h, "authorization"), "Bearer tok"); /* key lowercased */
  CHECK(zb_headers_get(&h, "Authorization") == NULL);
  CHECK(zb_headers_get(&h, "missing") == NULL);
  /* Same key again replaces the value. */
  CHECK_INT(zerobus_headers_add(&h, "AUTHORIZATION", "Bearer tok2"), ZEROBUS_OK);
  CHECK_INT(h.count, 3);
  CHECK_STR(zb_headers_get(&h, "authorization"), "Bearer tok2");
  char msg[512];
  CHECK_INT(validate(&h, ZEROBUS_OK, msg, sizeof msg, NULL), ZEROBUS_OK);
  CHECK_STR(msg, "");
  zb_headers_clear(&h);
  CHECK(h.items == NULL && h.count == 0 && h.cap == 0 && h.message == NULL && h.failed == 0);
  zb_headers_clear(&h); /* twice is fine */
}

static void add_refuses_bad_input(void) {
  zerobus_headers h;
  zb_headers_init(&h);
  CHECK_INT(zerobus_headers_add(NULL, "k", "v"), ZEROBUS_ERR_INVALID_ARGUMENT);
  CHECK_INT(zerobus_headers_add(&h, NULL, "v"), ZEROBUS_ERR_INVALID_ARGUMENT);
  CHECK_INT(zerobus_headers_add(&h, "k", NULL), ZEROBUS_ERR_INVALID_ARGUMENT);
  CHECK_INT(zerobus_headers_add(&h, "", "v"), ZEROBUS_ERR_INVALID_ARGUMENT);
  CHECK_INT(zerobus_headers_add(&h, "bad key", "v"), ZEROBUS_ERR_INVALID_ARGUMENT);
  CHECK_INT(zerobus_headers_add(&h, "k:", "v"), ZEROBUS_ERR_INVALID_ARGUMENT);
  CHECK_INT(zerobus_headers_add(&h, "k", "a\r\nb: c"), ZEROBUS_ERR_INVALID_ARGUMENT);
  CHECK_INT(zerobus_headers_add(&h, "k", "a\nb"), ZEROBUS_ERR_INVALID_ARGUMENT);
  CHECK_INT(h.count, 0);
  CHECK_INT(zerobus_headers_fail(NULL, "x", 1), ZEROBUS_ERR_INVALID_ARGUMENT);
  zb_headers_clear(&h);
}

static void missing_or_bad_headers_fail_for_good(void) {
  zerobus_headers h;
  char msg[512];
  int32_t retry = -1;
  zb_headers_init(&h);
  zerobus_headers_add(&h, "x-databricks-zerobus-table-name", "a.b.c");
  CHECK_INT(validate(&h, ZEROBUS_OK, msg, sizeof msg, &retry), ZEROBUS_ERR_HEADERS_PROVIDER);
  CHECK_HAS(msg, "did not supply the required header 'authorization'");
  CHECK_INT(retry, 0);
  zerobus_headers_add(&h, "authorization", "Bearer t");
  CHECK_INT(validate(&h, ZEROBUS_OK, msg, sizeof msg, NULL), ZEROBUS_OK);
  zb_headers_clear(&h);

  zerobus_headers_add(&h, "authorization", "Bearer t");
  CHECK_INT(validate(&h, ZEROBUS_OK, msg, sizeof msg, NULL), ZEROBUS_ERR_HEADERS_PROVIDER);
  CHECK_HAS(msg, "'x-databricks-zerobus-table-name'");
  zerobus_headers_add(&h, "x-databricks-zerobus-table-name", "");
  CHECK_INT(validate(&h, ZEROBUS_OK, msg, sizeof msg, NULL), ZEROBUS_ERR_HEADERS_PROVIDER);
  zerobus_headers_add(&h, "x-databricks-zerobus-table-name", "a.b.c");
  zerobus_headers_add(&h, "grpc-timeout", "1S");
  CHECK_INT(validate(&h, ZEROBUS_OK, msg, sizeof msg, &retry), ZEROBUS_ERR_HEADERS_PROVIDER);
  CHECK_HAS(msg, "reserved header 'grpc-timeout'");
  CHECK_INT(retry, 0);
  zb_headers_clear(&h);

  zerobus_headers_add(&h, "authorization", "Bearer t");
  zerobus_headers_add(&h, "x-databricks-zerobus-table-name", "a.b.c");
  zerobus_headers_add(&h, "x-note", "caf\xc3\xa9");
  CHECK_INT(validate(&h, ZEROBUS_OK, msg, sizeof msg, NULL), ZEROBUS_ERR_HEADERS_PROVIDER);
  CHECK_HAS(msg, "header 'x-note' with a value that is not printable ASCII");
  zb_headers_clear(&h);
  zerobus_headers_add(&h, "authorization", "Bearer t");
  zerobus_headers_add(&h, "x-databricks-zerobus-table-name", "a.b.c");
  zerobus_headers_add(&h, "x-blob-bin", "\x01\x02"); /* binary headers may hold any byte */
  CHECK_INT(validate(&h, ZEROBUS_OK, msg, sizeof msg, NULL), ZEROBUS_OK);
  zb_headers_clear(&h);
}

static void provider_failures(void) {
  zerobus_headers h;
  char msg[512];
  int32_t retry = -1;
  zb_headers_init(&h);
  /* Non-OK return without zerobus_headers_fail: retryable. */
  CHECK_INT(validate(&h, ZEROBUS_ERR_TOKEN, msg, sizeof msg, &retry), ZEROBUS_ERR_HEADERS_PROVIDER);
  CHECK_INT(retry, 1);
  CHECK_HAS(msg, "returned 20, ZEROBUS_ERR_TOKEN");
  /* fail() with retryable 0 is final, even when the provider then returns OK. */
  CHECK_INT(zerobus_headers_fail(&h, "vault said no; Bearer leaked", 0), ZEROBUS_OK);
  CHECK_INT(validate(&h, ZEROBUS_OK, msg, sizeof msg, &retry), ZEROBUS_ERR_HEADERS_PROVIDER);
  CHECK_INT(retry, 0);
  CHECK_HAS(msg, "headers provider failed: vault said no; Bearer [REDACTED]");
  CHECK_LACKS(msg, "leaked");
  CHECK_INT(zerobus_headers_fail(&h, NULL, 7), ZEROBUS_OK);
  CHECK_INT(validate(&h, 1, msg, sizeof msg, &retry), ZEROBUS_ERR_HEADERS_PROVIDER);
  CHECK_INT(retry, 1);
  CHECK_HAS(msg, "no message given");
  zb_headers_clear(&h);
  CHECK_INT(validate(NULL, 0, msg, sizeof msg, NULL), ZEROBUS_ERR_INVALID_ARGUMENT);
  CHECK(zb_headers_get(NULL, "a") == NULL);
  zb_headers_init(NULL);
  zb_headers_clear(NULL);
}

int main(void) {
  RUN(good_headers_validate);
  RUN(add_refuses_bad_input);
  RUN(missing_or_bad_headers_fail_for_good);
  RUN(provider_failures);
  TEST_MAIN_END();
}
