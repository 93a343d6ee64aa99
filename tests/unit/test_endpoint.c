/* Endpoint and workspace URL parsing: every accepted and refused form. */
#include "internal.h"
#include "zb_test.h"

static void accepts(const char *text, const char *host, int port, int tls, const char *target,
                    const char *workspace_id) {
  zb_endpoint e;
  zerobus_error *err = NULL;
  zerobus_status st = zb_endpoint_parse(text, &e, &err);
  CHECK_INT(st, ZEROBUS_OK);
  if (st != ZEROBUS_OK) {
    fprintf(stderr, "  for '%s': %s\n", text, zerobus_error_message(err));
    zerobus_error_destroy(err);
    return;
  }
  CHECK(err == NULL);
  CHECK_STR(e.host, host);
  CHECK_INT(e.port, port);
  CHECK_INT(e.tls, tls);
  CHECK_STR(e.target, target);
  CHECK_STR(e.workspace_id, workspace_id);
  zb_endpoint_free(&e);
  CHECK(e.host == NULL && e.target == NULL && e.workspace_id == NULL);
}

static void refuses(const char *text, const char *why) {
  zb_endpoint e;
  zerobus_error *err = NULL;
  CHECK_INT(zb_endpoint_parse(text, &e, &err), ZEROBUS_ERR_INVALID_ARGUMENT);
  CHECK_HAS(zerobus_error_message(err), why);
  CHECK_INT(zerobus_error_retryable(err), 0);
  CHECK(e.host == NULL && e.target == NULL);
  zerobus_error_destroy(err);
}

static void endpoint_accepted_forms(void) {
  const char *aws = "1234567890123456.zerobus.us-west-2.cloud.databricks.com";
  accepts(aws, aws, 443, 1, "1234567890123456.zerobus.us-west-2.cloud.databricks.com:443",
          "1234567890123456");
  accepts("https://1234.zerobus.eastus.azuredatabricks.net",
          "1234.zerobus.eastus.azuredatabricks.net", 443, 1,
          "1234.zerobus.eastus.azuredatabricks.net:443", "1234");
  accepts("https://abc.zerobus.r.cloud.databricks.com/", "abc.zerobus.r.cloud.databricks.com", 443,
          1, "abc.zerobus.r.cloud.databricks.com:443", "abc");
  accepts("HTTPS://ABC.Example.com:8443", "abc.example.com", 8443, 1, "abc.example.com:8443",
          "abc");
  accepts("http://127.0.0.1:50051", "127.0.0.1", 50051, 0, "127.0.0.1:50051", "127.0.0.1");
  accepts("http://localhost", "localhost", 80, 0, "localhost:80", "localhost");
  accepts("http://localhost:1/", "localhost", 1, 0, "localhost:1", "localhost");
  accepts("localhost:65535", "localhost", 65535, 1, "localhost:65535", "localhost");
  accepts("[::1]:50051", "::1", 50051, 1, "[::1]:50051", "::1");
  accepts("http://[::1]:8080/", "::1", 8080, 0, "[::1]:8080", "::1");
  accepts("https://[2001:db8::7]", "2001:db8::7", 443, 1, "[2001:db8::7]:443", "2001:db8::7");
  accepts("my_host.internal:9000", "my_host.internal", 9000, 1, "my_host.internal:9000", "my_host");
}

static void endpoint_refused_forms(void) {
  refuses(NULL, "endpoint is NULL");
  refuses("", "endpoint is empty");
  refuses(" host:443", "contains a blank");
  refuses("host:443 ", "contains a blank");
  refuses("ho st", "contains a blank");
  refuses("host\t", "contains a blank");
  refuses("grpc://host:443", "unknown scheme");
  refuses("ftp://host", "unknown scheme");
  refuses("://host", "unknown scheme");
  refuses("https://", "missing host");
  refuses("http:///", "missing host");
  refuses(":443", "missing host");
  refuses("https://:443", "missing host");
  refuses("host:", "missing port number");
  refuses("host:0", "port must be a number between 1 and 65535");
  refuses("host:65536", "port must be a number between 1 and 65535");
  refuses("host:99999999999999", "port must be a number");
  refuses("host:-1", "port must be a number");
  refuses("host:44a", "port must be a number");
  refuses("host:443:1", "port must be a number");
  refuses("https://host/path", "must not contain a path");
  refuses("https://host:443/v1/", "must not contain a path");
  refuses("https://host?x=1", "must not contain a path, query or fragment");
  refuses("https://host#frag", "must not contain a path");
  refuses("https://user:pw@host", "user info");
  refuses("https://ho$t", "invalid character in host name");
  refuses(".host", "must not start or end");
  refuses("host.", "must not start or end");
  refuses("a..b", "empty label");
  refuses("[::1", "unterminated IPv6");
  refuses("[]:80", "missing host");
  refuses("[zz::1]:80", "invalid IPv6");
  refuses("[::1]x", "junk after the IPv6 address");
  refuses("[::1]:", "missing port number");
  refuses("h\xc3\xa9st", "non-ASCII");
}

static void endpoint_null_out(void) {
  zerobus_error *err = NULL;
  CHECK_INT(zb_endpoint_parse("host", NULL, &err), ZEROBUS_ERR_INVALID_ARGUMENT);
  zerobus_error_destroy(err);
  CHECK_INT(zb_endpoint_parse("host", NULL, NULL), ZEROBUS_ERR_INVALID_ARGUMENT);
  zb_endpoint_free(NULL);
}

static void workspace_url(const char *in, zerobus_status expect, const char *out_or_why) {
  char *out = (char *)1;
  zerobus_error *err = NULL;
  CHECK_INT(zb_workspace_url_normalize(in, &out, &err), expect);
  if (expect == ZEROBUS_OK) {
    CHECK_STR(out, out_or_why);
    CHECK(err == NULL);
  } else {
    CHECK(out == NULL);
    CHECK_HAS(zerobus_error_message(err), out_or_why);
  }
  free(out);
  zerobus_error_destroy(err);
}

static void workspace_urls(void) {
  workspace_url("https://myws.cloud.databricks.com", ZEROBUS_OK,
                "https://myws.cloud.databricks.com");
  workspace_url("https://myws.cloud.databricks.com/", ZEROBUS_OK,
                "https://myws.cloud.databricks.com");
  workspace_url("https://myws.cloud.databricks.com//", ZEROBUS_OK,
                "https://myws.cloud.databricks.com");
  workspace_url("http://127.0.0.1:8080", ZEROBUS_OK, "http://127.0.0.1:8080");
  workspace_url("http://127.0.0.1:8080/prefix/", ZEROBUS_OK, "http://127.0.0.1:8080/prefix");
  workspace_url("myws.cloud.databricks.com", ZEROBUS_ERR_INVALID_ARGUMENT,
                "must start with https://");
  workspace_url("ftp://x", ZEROBUS_ERR_INVALID_ARGUMENT, "unknown scheme");
  workspace_url("", ZEROBUS_ERR_INVALID_ARGUMENT, "workspace URL is empty");
  workspace_url(NULL, ZEROBUS_ERR_INVALID_ARGUMENT, "workspace URL is NULL");
  workspace_url("https://", ZEROBUS_ERR_INVALID_ARGUMENT, "missing host");
  workspace_url("https://h:0", ZEROBUS_ERR_INVALID_ARGUMENT, "port must be");
  workspace_url("https://h/x?y=1", ZEROBUS_ERR_INVALID_ARGUMENT, "query or fragment");
  workspace_url("https://h x", ZEROBUS_ERR_INVALID_ARGUMENT, "blank");
  CHECK_INT(zb_workspace_url_normalize("https://h", NULL, NULL), ZEROBUS_ERR_INVALID_ARGUMENT);
}

int main(void) {
  RUN(endpoint_accepted_forms);
  RUN(endpoint_refused_forms);
  RUN(endpoint_null_out);
  RUN(workspace_urls);
  TEST_MAIN_END();
}
