/* Proxy selection: PROTOCOL.md "Proxies" rules, with the environment set per case. */
#include <stdlib.h>

#include "internal.h"
#include "zb_test.h"

static const char *const k_vars[] = {"grpc_proxy", "GRPC_PROXY", "https_proxy",   "HTTPS_PROXY",
                                     "http_proxy", "HTTP_PROXY", "no_grpc_proxy", "NO_GRPC_PROXY",
                                     "no_proxy",   "NO_PROXY"};

static void clear_env(void) {
  for (size_t i = 0; i < sizeof k_vars / sizeof k_vars[0]; i++) unsetenv(k_vars[i]);
}

static void check_proxy(const char *host, const char *explicit_proxy, const char *expected) {
  char *p = zb_proxy_for_host(host, explicit_proxy);
  if (expected)
    CHECK_STR(p, expected);
  else {
    CHECK(p == NULL);
    if (p) fprintf(stderr, "  got proxy '%s' for %s\n", p, host);
  }
  free(p);
}

static void no_proxy_matching(void) {
  CHECK_INT(zb_no_proxy_match("example.com", "example.com"), 1);
  CHECK_INT(zb_no_proxy_match("api.example.com", "example.com"), 1);
  CHECK_INT(zb_no_proxy_match("a.b.example.com", ".example.com"), 1);
  CHECK_INT(zb_no_proxy_match("example.com", ".example.com"), 1); /* leading dot dropped */
  CHECK_INT(zb_no_proxy_match("example.com", "..example.com"), 1);
  CHECK_INT(zb_no_proxy_match("badexample.com", "example.com"), 0);
  CHECK_INT(zb_no_proxy_match("example.com.evil", "example.com"), 0);
  CHECK_INT(zb_no_proxy_match("com", "example.com"), 0);
  CHECK_INT(zb_no_proxy_match("API.Example.COM", "example.com"), 1);
  CHECK_INT(zb_no_proxy_match("api.example.com", "EXAMPLE.com"), 1);
  CHECK_INT(zb_no_proxy_match("anything", "*"), 1);
  CHECK_INT(zb_no_proxy_match("anything", "foo, *"), 1);
  CHECK_INT(zb_no_proxy_match("x.y", "  a.com ,\tx.y  , b"), 1); /* trimmed */
  CHECK_INT(zb_no_proxy_match("b", "a.com, x.y, b"), 1);
  CHECK_INT(zb_no_proxy_match("c", "a.com, x.y, b"), 0);
  CHECK_INT(zb_no_proxy_match("host", ",,, ,"), 0);
  CHECK_INT(zb_no_proxy_match("host", ""), 0);
  CHECK_INT(zb_no_proxy_match("host", "."), 0);
  CHECK_INT(zb_no_proxy_match("host", "*.com"), 0); /* only a lone * is a wildcard */
  /* Ports in entries are ignored. */
  CHECK_INT(zb_no_proxy_match("example.com", "example.com:8443"), 1);
  CHECK_INT(zb_no_proxy_match("a.example.com", ".example.com:443"), 1);
  CHECK_INT(zb_no_proxy_match("127.0.0.1", "localhost,127.0.0.1"), 1);
  CHECK_INT(zb_no_proxy_match("127.0.0.2", "127.0.0.1"), 0);
  CHECK_INT(zb_no_proxy_match("::1", "::1"), 1);
  CHECK_INT(zb_no_proxy_match("::1", "[::1]:443"), 1);
  CHECK_INT(zb_no_proxy_match("[::1]", "[::1]"), 1);
  CHECK_INT(zb_no_proxy_match(NULL, "*"), 0);
  CHECK_INT(zb_no_proxy_match("h", NULL), 0);
}

static void explicit_option_wins(void) {
  clear_env();
  setenv("grpc_proxy", "http://env:1", 1);
  setenv("no_proxy", "*", 1);
  check_proxy("h.example.com", "http://explicit:3128", "http://explicit:3128");
  check_proxy("h.example.com", "none", NULL);
  check_proxy("h.example.com", "NONE", NULL);
  check_proxy("h.example.com", "", NULL);
  clear_env();
}

static void environment_order(void) {
  clear_env();
  check_proxy("h.example.com", NULL, NULL);
  /* Each variable in turn is used when all earlier ones are unset or empty. */
  for (int first = 0; first < 6; first++) {
    clear_env();
    for (int i = 0; i < 6; i++) {
      if (i < first)
        setenv(k_vars[i], "", 1); /* empty counts as unset */
      else {
        char v[64];
        snprintf(v, sizeof v, "http://p%d:%d", i, 1000 + i);
        setenv(k_vars[i], v, 1);
      }
    }
    char expect[64];
    snprintf(expect, sizeof expect, "http://p%d:%d", first, 1000 + first);
    check_proxy("h.example.com", NULL, expect);
  }
  clear_env();
}

static void bypass_variables(void) {
  clear_env();
  setenv("https_proxy", "http://proxy:3128", 1);
  setenv("no_proxy", "example.com", 1);
  check_proxy("api.example.com", NULL, NULL);
  check_proxy("api.other.com", NULL, "http://proxy:3128");
  /* no_grpc_proxy takes precedence over no_proxy, even when it does not match. */
  setenv("no_grpc_proxy", "other.com", 1);
  check_proxy("api.example.com", NULL, "http://proxy:3128");
  check_proxy("api.other.com", NULL, NULL);
  setenv("no_grpc_proxy", "", 1); /* empty: falls through to NO_GRPC_PROXY, no_proxy */
  check_proxy("api.example.com", NULL, NULL);
  setenv("NO_GRPC_PROXY", "x.org", 1);
  check_proxy("api.example.com", NULL, "http://proxy:3128");
  unsetenv("NO_GRPC_PROXY");
  unsetenv("no_grpc_proxy");
  unsetenv("no_proxy");
  setenv("NO_PROXY", "*", 1);
  check_proxy("anything.at.all", NULL, NULL);
  /* A NULL host cannot match a bypass list. */
  check_proxy(NULL, NULL, "http://proxy:3128");
  clear_env();
}

int main(void) {
  RUN(no_proxy_matching);
  RUN(explicit_option_wins);
  RUN(environment_order);
  RUN(bypass_variables);
  TEST_MAIN_END();
}
