/* Errors: status names and strings, accessors, builders, redaction, gRPC mapping. */
#include "internal.h"
#include "zb_test.h"

static void status_names_cover_every_code(void) {
  static const char *const names[] = {"ZEROBUS_OK",
                                      "ZEROBUS_ERR_INVALID_ARGUMENT",
                                      "ZEROBUS_ERR_INVALID_STATE",
                                      "ZEROBUS_ERR_STREAM_CLOSED",
                                      "ZEROBUS_ERR_QUEUE_FULL",
                                      "ZEROBUS_ERR_TIMEOUT",
                                      "ZEROBUS_ERR_RECORD_TOO_LARGE",
                                      "ZEROBUS_ERR_INVALID_RECORD",
                                      "ZEROBUS_ERR_UNKNOWN_OPTION",
                                      "ZEROBUS_ERR_INVALID_OPTION",
                                      "ZEROBUS_ERR_UNAUTHENTICATED",
                                      "ZEROBUS_ERR_PERMISSION_DENIED",
                                      "ZEROBUS_ERR_NOT_FOUND",
                                      "ZEROBUS_ERR_SERVER_REJECTED",
                                      "ZEROBUS_ERR_UNAVAILABLE",
                                      "ZEROBUS_ERR_SERVER",
                                      "ZEROBUS_ERR_PROTOCOL",
                                      "ZEROBUS_ERR_ACK_TIMEOUT",
                                      "ZEROBUS_ERR_RETRIES_EXHAUSTED",
                                      "ZEROBUS_ERR_HEADERS_PROVIDER",
                                      "ZEROBUS_ERR_TOKEN",
                                      "ZEROBUS_ERR_UNIMPLEMENTED",
                                      "ZEROBUS_ERR_NO_MEMORY",
                                      "ZEROBUS_ERR_INTERNAL"};
  for (int i = 0; i <= ZEROBUS_ERR_INTERNAL; i++) {
    CHECK_STR(zerobus_status_name(i), names[i]);
    const char *s = zerobus_status_str(i);
    CHECK(s && strlen(s) > 5 && !strchr(s, '\n'));
    for (int j = 0; j < i; j++) CHECK(strcmp(zerobus_status_str(j), s) != 0);
  }
  CHECK_STR(zerobus_status_name(ZEROBUS_ERR_INTERNAL + 1), "ZEROBUS_UNKNOWN");
  CHECK_STR(zerobus_status_name(-1), "ZEROBUS_UNKNOWN");
  CHECK_STR(zerobus_status_str(999), "unknown status code");
}

static void null_error_reads_as_ok(void) {
  CHECK_INT(zerobus_error_code(NULL), ZEROBUS_OK);
  CHECK_STR(zerobus_error_message(NULL), "");
  CHECK_INT(zerobus_error_retryable(NULL), 0);
  CHECK_INT(zerobus_error_grpc_status(NULL), -1);
  CHECK_INT(zerobus_error_http_status(NULL), -1);
  CHECK(zerobus_error_clone(NULL) == NULL);
  zerobus_error_destroy(NULL);
}

static void builders_fill_every_field(void) {
  zerobus_error *e = zb_error_new(ZEROBUS_ERR_TOKEN, 1, 14, 503, "endpoint %s said %d", "x", 7);
  CHECK(e != NULL);
  CHECK_INT(zerobus_error_code(e), ZEROBUS_ERR_TOKEN);
  CHECK_INT(zerobus_error_retryable(e), 1);
  CHECK_INT(zerobus_error_grpc_status(e), 14);
  CHECK_INT(zerobus_error_http_status(e), 503);
  CHECK_STR(zerobus_error_message(e), "endpoint x said 7");
  zerobus_error *c = zerobus_error_clone(e);
  CHECK(c != NULL && c != e && c->message != e->message);
  zerobus_error_destroy(e);
  CHECK_STR(zerobus_error_message(c), "endpoint x said 7");
  CHECK_INT(zerobus_error_http_status(c), 503);

  zerobus_error *w = zb_error_wrap(ZEROBUS_ERR_RETRIES_EXHAUSTED, 0, c, "gave up after 5 attempts");
  CHECK_INT(zerobus_error_code(w), ZEROBUS_ERR_RETRIES_EXHAUSTED);
  CHECK_INT(zerobus_error_retryable(w), 0);
  CHECK_INT(zerobus_error_grpc_status(w), 14);
  CHECK_INT(zerobus_error_http_status(w), 503);
  CHECK_STR(zerobus_error_message(w), "gave up after 5 attempts: endpoint x said 7");
  zerobus_error_destroy(w);
  w = zb_error_wrap(ZEROBUS_ERR_STREAM_CLOSED, 0, NULL, "closed");
  CHECK_STR(zerobus_error_message(w), "closed");
  CHECK_INT(zerobus_error_grpc_status(w), -1);
  zerobus_error_destroy(w);

  zerobus_error *out = NULL;
  CHECK_INT(zb_fail_copy(&out, c), ZEROBUS_ERR_TOKEN);
  CHECK(out != NULL && out != c);
  CHECK_STR(zerobus_error_message(out), "endpoint x said 7");
  zerobus_error_destroy(out);
  CHECK_INT(zb_fail_copy(&out, NULL), ZEROBUS_ERR_INTERNAL);
  CHECK(out == NULL);
  CHECK_INT(zb_fail_copy(NULL, c), ZEROBUS_ERR_TOKEN);
  zerobus_error_destroy(c);

  CHECK_INT(zb_fail(NULL, ZEROBUS_ERR_TIMEOUT, 1, "x"), ZEROBUS_ERR_TIMEOUT);
  CHECK_INT(zb_fail(&out, ZEROBUS_ERR_TIMEOUT, 1, "waited %d ms", 50), ZEROBUS_ERR_TIMEOUT);
  CHECK_STR(zerobus_error_message(out), "waited 50 ms");
  CHECK_INT(zerobus_error_retryable(out), 1);
  CHECK_INT(zerobus_error_grpc_status(out), -1);
  CHECK_INT(zerobus_error_http_status(out), -1);
  zerobus_error_destroy(out);
}

static void messages_are_redacted(void) {
  zerobus_error *e = zb_error_new(ZEROBUS_ERR_SERVER, 1, 2, -1,
                                  "metadata authorization: Bearer eyJhbGciOi.secret.tok");
  CHECK_LACKS(zerobus_error_message(e), "eyJhbGciOi");
  CHECK_HAS(zerobus_error_message(e), "[REDACTED]");
  zerobus_error_destroy(e);
  zerobus_error *out = NULL;
  zb_fail(&out, ZEROBUS_ERR_TOKEN, 0, "body {\"access_token\":\"%s\"}", "abc123");
  CHECK_STR(zerobus_error_message(out), "body {\"access_token\":\"[REDACTED]\"}");
  zerobus_error_destroy(out);
}

static void grpc_retryable_table(void) {
  /* PROTOCOL.md: exactly these six are final. */
  const int final_codes[] = {3, 5, 7, 11, 12, 16};
  for (int code = 0; code <= 16; code++) {
    int expect = 1;
    for (size_t i = 0; i < 6; i++)
      if (final_codes[i] == code) expect = 0;
    CHECK_INT(zb_grpc_status_retryable(code), expect);
  }
  CHECK_INT(zb_grpc_status_retryable(99), 1);
  CHECK_INT(zb_status_from_grpc(16), ZEROBUS_ERR_UNAUTHENTICATED);
  CHECK_INT(zb_status_from_grpc(7), ZEROBUS_ERR_PERMISSION_DENIED);
  CHECK_INT(zb_status_from_grpc(5), ZEROBUS_ERR_NOT_FOUND);
  CHECK_INT(zb_status_from_grpc(3), ZEROBUS_ERR_SERVER_REJECTED);
  CHECK_INT(zb_status_from_grpc(11), ZEROBUS_ERR_SERVER_REJECTED);
  CHECK_INT(zb_status_from_grpc(14), ZEROBUS_ERR_UNAVAILABLE);
  CHECK_INT(zb_status_from_grpc(12), ZEROBUS_ERR_UNIMPLEMENTED);
  CHECK_INT(zb_status_from_grpc(13), ZEROBUS_ERR_SERVER);
  CHECK_INT(zb_status_from_grpc(0), ZEROBUS_ERR_SERVER);
  CHECK_INT(zb_status_from_grpc(4), ZEROBUS_ERR_SERVER);
}

static void grpc_errors_say_what_to_do(void) {
  zerobus_error *e = zb_error_from_grpc(16, "bad token", "main.sales.orders");
  CHECK_INT(zerobus_error_code(e), ZEROBUS_ERR_UNAUTHENTICATED);
  CHECK_INT(zerobus_error_retryable(e), 0);
  CHECK_INT(zerobus_error_grpc_status(e), 16);
  CHECK_HAS(zerobus_error_message(e), "client id and client secret");
  CHECK_HAS(zerobus_error_message(e), "grants");
  CHECK_HAS(zerobus_error_message(e), "bad token");
  zerobus_error_destroy(e);

  e = zb_error_from_grpc(7, NULL, "main.sales.orders");
  CHECK_INT(zerobus_error_code(e), ZEROBUS_ERR_PERMISSION_DENIED);
  CHECK_INT(zerobus_error_retryable(e), 0);
  CHECK_HAS(zerobus_error_message(e), "USE CATALOG on main,");
  CHECK_HAS(zerobus_error_message(e), "USE SCHEMA on main.sales,");
  CHECK_HAS(zerobus_error_message(e), "SELECT and MODIFY on main.sales.orders");
  zerobus_error_destroy(e);

  e = zb_error_from_grpc(5, "no such table", "a.b.c");
  CHECK_INT(zerobus_error_code(e), ZEROBUS_ERR_NOT_FOUND);
  CHECK_HAS(zerobus_error_message(e), "a.b.c does not exist or the endpoint is wrong");
  zerobus_error_destroy(e);

  e = zb_error_from_grpc(12, NULL, "a.b.c");
  CHECK_INT(zerobus_error_code(e), ZEROBUS_ERR_UNIMPLEMENTED);
  CHECK_HAS(zerobus_error_message(e), "not a Zerobus endpoint");
  zerobus_error_destroy(e);

  e = zb_error_from_grpc(14, "connection reset", NULL);
  CHECK_INT(zerobus_error_code(e), ZEROBUS_ERR_UNAVAILABLE);
  CHECK_INT(zerobus_error_retryable(e), 1);
  CHECK_HAS(zerobus_error_message(e), "connection reset");
  zerobus_error_destroy(e);

  e = zb_error_from_grpc(13, "Bearer abcdef", "a.b.c");
  CHECK_INT(zerobus_error_code(e), ZEROBUS_ERR_SERVER);
  CHECK_INT(zerobus_error_retryable(e), 1);
  CHECK_HAS(zerobus_error_message(e), "INTERNAL (13)");
  CHECK_LACKS(zerobus_error_message(e), "abcdef");
  zerobus_error_destroy(e);

  e = zb_error_from_grpc(3, "record too big", "a.b.c");
  CHECK_INT(zerobus_error_code(e), ZEROBUS_ERR_SERVER_REJECTED);
  CHECK_INT(zerobus_error_retryable(e), 0);
  zerobus_error_destroy(e);
  e = zb_error_from_grpc(0, NULL, NULL);
  CHECK_INT(zerobus_error_code(e), ZEROBUS_ERR_SERVER);
  CHECK_INT(zerobus_error_retryable(e), 1);
  zerobus_error_destroy(e);
}

static void table_grants_phrase(void) {
  char buf[256];
  zb_table_grants("main.sales.orders", buf, sizeof buf);
  CHECK_STR(buf,
            "USE CATALOG on main, USE SCHEMA on main.sales, and SELECT and MODIFY on "
            "main.sales.orders");
  zb_table_grants("oops", buf, sizeof buf);
  CHECK_STR(buf,
            "USE CATALOG on <catalog>, USE SCHEMA on <catalog>.<schema>, and SELECT and MODIFY "
            "on oops");
  zb_table_grants(NULL, buf, sizeof buf);
  CHECK_HAS(buf, "SELECT and MODIFY on <catalog>.<schema>.<table>");
  zb_table_grants("a.b.c", buf, 10);
  CHECK_STR(buf, "USE CATAL");
}

int main(void) {
  RUN(table_grants_phrase);
  RUN(status_names_cover_every_code);
  RUN(null_error_reads_as_ok);
  RUN(builders_fill_every_field);
  RUN(messages_are_redacted);
  RUN(grpc_retryable_table);
  RUN(grpc_errors_say_what_to_do);
  TEST_MAIN_END();
}
