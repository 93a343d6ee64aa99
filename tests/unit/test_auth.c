/* OAuth client credentials: form body, response parsing, and zb_token_get against
 * an in-process fake token endpoint (exact request bytes, caching, expiry,
 * invalidation, HTTP errors, dead server, bounded timeout, proxy option). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"
#include "zb_test.h"

/* ------------------------------------------------------------ fake server */

typedef struct fake_server {
  int listen_fd, port;
  pthread_t thread;
  atomic_int stop;
  pthread_mutex_t mu;
  /* response */
  int status;
  char body[1024];
  int hang; /* accept, read, never answer */
  /* observations */
  int requests;
  char last_request[8192];
} fake_server;

static void *serve(void *arg) {
  fake_server *s = arg;
  while (!atomic_load(&s->stop)) {
    int fd = accept(s->listen_fd, NULL, NULL);
    if (fd < 0) continue;
    if (atomic_load(&s->stop)) {
      close(fd);
      break;
    }
    char req[8192];
    size_t len = 0;
    size_t need = 0;
    for (;;) { /* headers, then Content-Length bytes of body */
      ssize_t n = read(fd, req + len, sizeof req - 1 - len);
      if (n <= 0) break;
      len += (size_t)n;
      req[len] = '\0';
      char *hdr_end = strstr(req, "\r\n\r\n");
      if (hdr_end && !need) {
        char *cl = strcasestr(req, "content-length:");
        need = (size_t)(hdr_end + 4 - req) + (cl ? strtoul(cl + 15, NULL, 10) : 0);
      }
      if (need && len >= need) break;
    }
    pthread_mutex_lock(&s->mu);
    s->requests++;
    snprintf(s->last_request, sizeof s->last_request, "%s", req);
    int hang = s->hang, status = s->status;
    char body[1024];
    snprintf(body, sizeof body, "%s", s->body);
    pthread_mutex_unlock(&s->mu);
    if (hang) {
      while (!atomic_load(&s->stop)) usleep(10000);
      close(fd);
      break;
    }
    char resp[2048];
    int n = snprintf(resp, sizeof resp,
                     "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n%s",
                     status, strlen(body), body);
    if (write(fd, resp, (size_t)n) < 0) perror("write");
    close(fd);
  }
  return NULL;
}

static void fake_start(fake_server *s, int status, const char *body) {
  memset(s, 0, sizeof *s);
  pthread_mutex_init(&s->mu, NULL);
  s->status = status;
  snprintf(s->body, sizeof s->body, "%s", body);
  s->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(s->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(s->listen_fd, (struct sockaddr *)&a, sizeof a);
  socklen_t alen = sizeof a;
  getsockname(s->listen_fd, (struct sockaddr *)&a, &alen);
  s->port = ntohs(a.sin_port);
  listen(s->listen_fd, 16);
  pthread_create(&s->thread, NULL, serve, s);
}

static void fake_set(fake_server *s, int status, const char *body) {
  pthread_mutex_lock(&s->mu);
  s->status = status;
  snprintf(s->body, sizeof s->body, "%s", body);
  pthread_mutex_unlock(&s->mu);
}

static int fake_requests(fake_server *s) {
  pthread_mutex_lock(&s->mu);
  int n = s->requests;
  pthread_mutex_unlock(&s->mu);
  return n;
}

static void fake_stop(fake_server *s) {
  atomic_store(&s->stop, 1);
  /* Wake accept() with a connection of our own. */
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons((uint16_t)s->port);
  connect(fd, (struct sockaddr *)&a, sizeof a);
  pthread_join(s->thread, NULL);
  close(fd);
  close(s->listen_fd);
  pthread_mutex_destroy(&s->mu);
}

/* A port with nothing listening. */
static int dead_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, (struct sockaddr *)&a, sizeof a);
  socklen_t alen = sizeof a;
  getsockname(fd, (struct sockaddr *)&a, &alen);
  close(fd);
  return ntohs(a.sin_port);
}

/* ------------------------------------------------------------ helpers */

static const char k_details_json[] =
    "[{\"type\":\"unity_catalog_privileges\",\"object_type\":\"CATALOG\",\"object_full_path\":"
    "\"cat\",\"privileges\":[\"USE CATALOG\"]},{\"type\":\"unity_catalog_privileges\","
    "\"object_type\":\"SCHEMA\",\"object_full_path\":\"cat.sch\",\"privileges\":[\"USE "
    "SCHEMA\"]},{\"type\":\"unity_catalog_privileges\",\"object_type\":\"TABLE\","
    "\"object_full_path\":\"cat.sch.tbl\",\"privileges\":[\"SELECT\",\"MODIFY\"],"
    "\"operations\":[\"zerobuswrite\"]}]";

static char *url_decode(const char *s, size_t n) {
  char *out = malloc(n + 1), *o = out;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '%' && i + 2 < n) {
      char hex[3] = {s[i + 1], s[i + 2], 0};
      *o++ = (char)strtol(hex, NULL, 16);
      i += 2;
    } else {
      *o++ = s[i] == '+' ? ' ' : s[i];
    }
  }
  *o = '\0';
  return out;
}

/* Decoded value of form field `key` in body (malloc'd) or NULL. */
static char *form_field(const char *body, const char *key) {
  size_t klen = strlen(key);
  for (const char *p = body; p && *p;) {
    const char *amp = strchr(p, '&');
    size_t len = amp ? (size_t)(amp - p) : strlen(p);
    if (len > klen && strncmp(p, key, klen) == 0 && p[klen] == '=')
      return url_decode(p + klen + 1, len - klen - 1);
    p = amp ? amp + 1 : NULL;
  }
  return NULL;
}

typedef struct auth_env {
  zb_config cfg;
  char url[128];
  zb_auth_request req;
} auth_env;

static void auth_env_init(auth_env *e, int port, const char *secret, const char *table) {
  zb_config_defaults(&e->cfg);
  e->cfg.token_timeout_ms = 5000;
  snprintf(e->url, sizeof e->url, "http://127.0.0.1:%d", port);
  e->req.workspace_url = e->url;
  e->req.workspace_id = "1234";
  e->req.client_id = "client-1";
  e->req.client_secret = secret;
  e->req.table_name = table;
  e->req.config = &e->cfg;
  e->req.logger = NULL;
}

static zerobus_status get_token(zb_token_cache *c, auth_env *e, char **tok, zerobus_error **err) {
  *tok = NULL;
  *err = NULL;
  zerobus_status st = zb_token_get(c, &e->req, tok, err);
  if (st == ZEROBUS_OK)
    CHECK(*err == NULL);
  else {
    CHECK(*tok == NULL);
    CHECK(*err != NULL && zerobus_error_code(*err) == (int32_t)st);
    CHECK_LACKS(zerobus_error_message(*err), "s3cr3t");
  }
  return st;
}

/* ------------------------------------------------------------ tests */

static void form_body_is_exact(void) {
  char *body = zb_token_form_body("1234", "cat.sch.tbl");
  CHECK(body != NULL);
  CHECK(strncmp(body,
                "grant_type=client_credentials&scope=all-apis&resource=api%3A%2F%2Fdatabricks%2F"
                "workspaces%2F1234%2FzerobusDirectWriteApi&authorization_details=%5B%7B%22type%22"
                "%3A%22unity_catalog_privileges%22%2C",
                170) == 0);
  char *v = form_field(body, "grant_type");
  CHECK_STR(v, "client_credentials");
  free(v);
  v = form_field(body, "scope");
  CHECK_STR(v, "all-apis");
  free(v);
  v = form_field(body, "resource");
  CHECK_STR(v, "api://databricks/workspaces/1234/zerobusDirectWriteApi");
  free(v);
  v = form_field(body, "authorization_details");
  CHECK_STR(v, k_details_json);
  free(v);
  /* Only unreserved characters stay unencoded. */
  for (const char *p = body; *p; p++)
    CHECK(strchr("-_.~%=&", *p) || (*p >= '0' && *p <= '9') ||
          ((*p | 0x20) >= 'a' && (*p | 0x20) <= 'z'));
  free(body);
  /* Names that need JSON escaping stay valid. */
  body = zb_token_form_body("w", "c\"a.s c.t");
  v = form_field(body, "authorization_details");
  CHECK_HAS(v, "\"object_full_path\":\"c\\\"a.s c\"");
  free(v);
  free(body);
  CHECK(zb_token_form_body("1234", "cat.sch") == NULL);
  CHECK(zb_token_form_body(NULL, "a.b.c") == NULL);
  CHECK(zb_token_form_body("", "a.b.c") == NULL);
  CHECK(zb_token_form_body("1", NULL) == NULL);
}

static void table_names(void) {
  CHECK_INT(zb_table_name_valid("a.b.c"), 1);
  CHECK_INT(zb_table_name_valid("main.default.my_table"), 1);
  CHECK_INT(zb_table_name_valid("a.b"), 0);
  CHECK_INT(zb_table_name_valid("a.b.c.d"), 0);
  CHECK_INT(zb_table_name_valid(".b.c"), 0);
  CHECK_INT(zb_table_name_valid("a..c"), 0);
  CHECK_INT(zb_table_name_valid("a.b."), 0);
  CHECK_INT(zb_table_name_valid(""), 0);
  CHECK_INT(zb_table_name_valid("a.b.c\n"), 0);
  CHECK_INT(zb_table_name_valid(NULL), 0);
}

static void parse(const char *body, zerobus_status expect, const char *token, int64_t expires,
                  const char *why) {
  char *tok = (char *)1;
  int64_t exp = -5;
  zerobus_error *err = NULL;
  CHECK_INT(zb_token_parse_response(body, body ? strlen(body) : 0, &tok, &exp, &err), expect);
  if (expect == ZEROBUS_OK) {
    CHECK_STR(tok, token);
    CHECK_INT(exp, expires);
    CHECK(err == NULL);
  } else {
    CHECK(tok == NULL);
    CHECK_INT(zerobus_error_retryable(err), 0);
    CHECK_HAS(zerobus_error_message(err), why);
  }
  zb_secret_free(tok);
  zerobus_error_destroy(err);
}

static void response_parsing(void) {
  parse("{\"access_token\":\"t1\",\"expires_in\":120}", ZEROBUS_OK, "t1", 120, NULL);
  parse("{\"access_token\":\"t1\",\"expires_in\":\"90\"}", ZEROBUS_OK, "t1", 90, NULL);
  parse("{\"access_token\":\"t1\"}", ZEROBUS_OK, "t1", 3600, NULL);
  parse("{\"access_token\":\"t1\",\"expires_in\":null,\"token_type\":\"Bearer\"}", ZEROBUS_OK, "t1",
        3600, NULL);
  parse("{\"access_token\":\"t1\",\"expires_in\":59.9}", ZEROBUS_OK, "t1", 59, NULL);
  parse("{\"access_token\":\"t1\",\"expires_in\":0}", ZEROBUS_OK, "t1", 0, NULL);
  parse("{\"expires_in\":3600}", ZEROBUS_ERR_TOKEN, NULL, 0, "without an access_token");
  parse("{\"access_token\":\"\"}", ZEROBUS_ERR_TOKEN, NULL, 0, "without an access_token");
  parse("{\"access_token\":5}", ZEROBUS_ERR_TOKEN, NULL, 0, "without an access_token");
  parse("{\"access_token\":\"t\",\"expires_in\":\"soon\"}", ZEROBUS_ERR_TOKEN, NULL, 0,
        "invalid expires_in");
  parse("{\"access_token\":\"t\",\"expires_in\":-1}", ZEROBUS_ERR_TOKEN, NULL, 0,
        "invalid expires_in");
  parse("{\"access_token\":\"t\",\"expires_in\":true}", ZEROBUS_ERR_TOKEN, NULL, 0,
        "invalid expires_in");
  parse("[1]", ZEROBUS_ERR_TOKEN, NULL, 0, "not a JSON object");
  parse("<html>", ZEROBUS_ERR_TOKEN, NULL, 0, "not a JSON object");
  parse("", ZEROBUS_ERR_TOKEN, NULL, 0, "not a JSON object");
  char *tok;
  int64_t exp;
  CHECK_INT(zb_token_parse_response(NULL, 0, &tok, &exp, NULL), ZEROBUS_ERR_TOKEN);
  CHECK_INT(zb_token_parse_response(NULL, 3, &tok, &exp, NULL), ZEROBUS_ERR_INVALID_ARGUMENT);
  CHECK_INT(zb_token_parse_response("{}", 2, NULL, &exp, NULL), ZEROBUS_ERR_INVALID_ARGUMENT);
  /* Length is respected: a body that is not NUL-terminated. */
  const char b[] = "{\"access_token\":\"ab\"}XXXX";
  CHECK_INT(zb_token_parse_response(b, sizeof b - 5, &tok, &exp, NULL), ZEROBUS_OK);
  CHECK_STR(tok, "ab");
  zb_secret_free(tok);
}

static void secrets(void) {
  char *s = zb_secret_dup("pw");
  CHECK_STR(s, "pw");
  zb_secret_free(s);
  zb_secret_free(NULL);
  CHECK(zb_secret_dup(NULL) == NULL);
}

static void good_credentials_exact_request_and_cache(void) {
  fake_server srv;
  fake_start(&srv, 200, "{\"access_token\":\"tok-A\",\"expires_in\":3600}");
  auth_env e;
  auth_env_init(&e, srv.port, "s3cr3t!", "cat.sch.tbl");
  e.cfg.application_name = strdup("unit-test");
  zb_token_cache *c = zb_token_cache_new();
  char *tok;
  zerobus_error *err;
  CHECK_INT(get_token(c, &e, &tok, &err), ZEROBUS_OK);
  CHECK_STR(tok, "tok-A");
  zb_secret_free(tok);
  CHECK_INT(fake_requests(&srv), 1);
  /* The request on the wire. */
  pthread_mutex_lock(&srv.mu);
  const char *r = srv.last_request;
  CHECK(strncmp(r, "POST /oidc/v1/token HTTP/1.1\r\n", 30) == 0);
  CHECK_HAS(r, "Authorization: Basic Y2xpZW50LTE6czNjcjN0IQ==\r\n");
  CHECK_HAS(r, "Content-Type: application/x-www-form-urlencoded\r\n");
  CHECK_HAS(r, "Accept: application/json\r\n");
  CHECK_HAS(r, "User-Agent: libzerobus/0.1.0 unit-test\r\n");
  const char *body = strstr(r, "\r\n\r\n");
  char *expected = zb_token_form_body("1234", "cat.sch.tbl");
  CHECK_STR(body ? body + 4 : NULL, expected);
  free(expected);
  pthread_mutex_unlock(&srv.mu);

  /* Cache hit: no second request. */
  fake_set(&srv, 200, "{\"access_token\":\"tok-B\",\"expires_in\":3600}");
  CHECK_INT(get_token(c, &e, &tok, &err), ZEROBUS_OK);
  CHECK_STR(tok, "tok-A");
  zb_secret_free(tok);
  CHECK_INT(fake_requests(&srv), 1);
  /* Another table is another key. */
  e.req.table_name = "cat.sch.other";
  CHECK_INT(get_token(c, &e, &tok, &err), ZEROBUS_OK);
  CHECK_STR(tok, "tok-B");
  zb_secret_free(tok);
  CHECK_INT(fake_requests(&srv), 2);
  e.req.table_name = "cat.sch.tbl";
  /* Invalidation forces a fetch; the new token is cached. */
  zb_token_invalidate(c, &e.req);
  fake_set(&srv, 200, "{\"access_token\":\"tok-C\",\"expires_in\":3600}");
  CHECK_INT(get_token(c, &e, &tok, &err), ZEROBUS_OK);
  CHECK_STR(tok, "tok-C");
  zb_secret_free(tok);
  CHECK_INT(fake_requests(&srv), 3);
  CHECK_INT(get_token(c, &e, &tok, &err), ZEROBUS_OK);
  CHECK_STR(tok, "tok-C");
  zb_secret_free(tok);
  CHECK_INT(fake_requests(&srv), 3);
  /* A different secret for the same client id is not served from the cache. */
  e.req.client_secret = "other-secret";
  fake_set(&srv, 401, "{\"error\":\"invalid_client\"}");
  CHECK_INT(get_token(c, &e, &tok, &err), ZEROBUS_ERR_UNAUTHENTICATED);
  zerobus_error_destroy(err);
  CHECK_INT(fake_requests(&srv), 4);
  zb_token_invalidate(c, NULL);
  zb_token_invalidate(NULL, &e.req);
  zb_token_cache_free(c);
  zb_config_free(&e.cfg);
  fake_stop(&srv);
}

static void expiry_refetches(void) {
  fake_server srv;
  /* expires_in as a quoted string, shorter than the 60 s margin: cached ~1 s. */
  fake_start(&srv, 200, "{\"access_token\":\"short\",\"expires_in\":\"2\"}");
  auth_env e;
  auth_env_init(&e, srv.port, "s3cr3t!", "cat.sch.tbl");
  zb_token_cache *c = zb_token_cache_new();
  char *tok;
  zerobus_error *err;
  CHECK_INT(get_token(c, &e, &tok, &err), ZEROBUS_OK);
  zb_secret_free(tok);
  CHECK_INT(get_token(c, &e, &tok, &err), ZEROBUS_OK);
  zb_secret_free(tok);
  CHECK_INT(fake_requests(&srv), 1);
  usleep(1200 * 1000);
  CHECK_INT(get_token(c, &e, &tok, &err), ZEROBUS_OK);
  CHECK_STR(tok, "short");
  zb_secret_free(tok);
  CHECK_INT(fake_requests(&srv), 2);
  /* expires_in 0: never cached. */
  fake_set(&srv, 200, "{\"access_token\":\"zero\",\"expires_in\":0}");
  zb_token_invalidate(c, &e.req);
  CHECK_INT(get_token(c, &e, &tok, &err), ZEROBUS_OK);
  zb_secret_free(tok);
  CHECK_INT(get_token(c, &e, &tok, &err), ZEROBUS_OK);
  zb_secret_free(tok);
  CHECK_INT(fake_requests(&srv), 4);
  /* A margin of 0 with a 3600 s token: cached. */
  e.cfg.token_refresh_margin_ms = 0;
  fake_set(&srv, 200, "{\"access_token\":\"long\",\"expires_in\":3600}");
  zb_token_invalidate(c, &e.req);
  CHECK_INT(get_token(c, &e, &tok, &err), ZEROBUS_OK);
  zb_secret_free(tok);
  CHECK_INT(get_token(c, &e, &tok, &err), ZEROBUS_OK);
  zb_secret_free(tok);
  CHECK_INT(fake_requests(&srv), 5);
  zb_token_cache_free(c);
  zb_config_free(&e.cfg);
  fake_stop(&srv);
}

static void http_errors(void) {
  fake_server srv;
  fake_start(
      &srv, 401,
      "{\"error\":\"invalid_client\",\"error_description\":\"Client authentication failed\"}");
  auth_env e;
  auth_env_init(&e, srv.port, "s3cr3t!", "main.sales.orders");
  zb_token_cache *c = zb_token_cache_new();
  char *tok;
  zerobus_error *err;
  CHECK_INT(get_token(c, &e, &tok, &err), ZEROBUS_ERR_UNAUTHENTICATED);
  CHECK_INT(zerobus_error_retryable(err), 0);
  CHECK_INT(zerobus_error_http_status(err), 401);
  CHECK_INT(zerobus_error_grpc_status(err), -1);
  const char *m = zerobus_error_message(err);
  CHECK_HAS(m, "refused client id 'client-1' (HTTP 401: Client authentication failed)");
  CHECK_HAS(
      m,
      "USE CATALOG on main, USE SCHEMA on main.sales, and SELECT and MODIFY on main.sales.orders");
  zerobus_error_destroy(err);
  fake_set(&srv, 403, "");
  CHECK_INT(get_token(c, &e, &tok, &err), ZEROBUS_ERR_UNAUTHENTICATED);
  CHECK_INT(zerobus_error_http_status(err), 403);
  CHECK_HAS(zerobus_error_message(err), "(HTTP 403)");
  zerobus_error_destroy(err);
  /* 5xx: retryable TOKEN. */
  fake_set(&srv, 503, "{\"error\":\"busy\"}");
  CHECK_INT(get_token(c, &e, &tok, &err), ZEROBUS_ERR_TOKEN);
  CHECK_INT(zerobus_error_retryable(err), 1);
  CHECK_INT(zerobus_error_http_status(err), 503);
  zerobus_error_destroy(err);
  fake_set(&srv, 500, "oops");
  CHECK_INT(get_token(c, &e, &tok, &err), ZEROBUS_ERR_TOKEN);
  CHECK_INT(zerobus_error_retryable(err), 1);
  zerobus_error_destroy(err);
  /* 200 without a token: final. */
  fake_set(&srv, 200, "{\"token_type\":\"Bearer\"}");
  CHECK_INT(get_token(c, &e, &tok, &err), ZEROBUS_ERR_TOKEN);
  CHECK_INT(zerobus_error_retryable(err), 0);
  CHECK_INT(zerobus_error_http_status(err), 200);
  CHECK_HAS(zerobus_error_message(err), "without an access_token");
  zerobus_error_destroy(err);
  CHECK_INT(fake_requests(&srv), 5); /* errors are never cached */
  zb_token_cache_free(c);
  zb_config_free(&e.cfg);
  fake_stop(&srv);
}

static void dead_server_and_bad_arguments(void) {
  auth_env e;
  auth_env_init(&e, dead_port(), "s3cr3t!", "cat.sch.tbl");
  zb_token_cache *c = zb_token_cache_new();
  char *tok;
  zerobus_error *err;
  CHECK_INT(get_token(c, &e, &tok, &err), ZEROBUS_ERR_TOKEN);
  CHECK_INT(zerobus_error_retryable(err), 1);
  CHECK_INT(zerobus_error_http_status(err), -1);
  CHECK_HAS(zerobus_error_message(err), "token request to http://127.0.0.1:");
  CHECK_HAS(zerobus_error_message(err), "/oidc/v1/token failed: ");
  zerobus_error_destroy(err);

  e.req.table_name = "cat.sch";
  CHECK_INT(get_token(c, &e, &tok, &err), ZEROBUS_ERR_INVALID_ARGUMENT);
  CHECK_HAS(zerobus_error_message(err), "three non-empty parts");
  zerobus_error_destroy(err);
  e.req.table_name = "cat.sch.tbl";
  e.req.client_secret = "";
  CHECK_INT(get_token(c, &e, &tok, &err), ZEROBUS_ERR_INVALID_ARGUMENT);
  zerobus_error_destroy(err);
  e.req.client_secret = NULL;
  CHECK_INT(get_token(c, &e, &tok, &err), ZEROBUS_ERR_INVALID_ARGUMENT);
  zerobus_error_destroy(err);
  CHECK_INT(zb_token_get(NULL, &e.req, &tok, NULL), ZEROBUS_ERR_INVALID_ARGUMENT);
  CHECK_INT(zb_token_get(c, NULL, &tok, NULL), ZEROBUS_ERR_INVALID_ARGUMENT);
  CHECK_INT(zb_token_get(c, &e.req, NULL, NULL), ZEROBUS_ERR_INVALID_ARGUMENT);
  zb_token_cache_free(c);
  zb_token_cache_free(NULL);
  zb_config_free(&e.cfg);
}

static void timeout_is_bounded(void) {
  fake_server srv;
  fake_start(&srv, 200, "{}");
  srv.hang = 1;
  auth_env e;
  auth_env_init(&e, srv.port, "s3cr3t!", "cat.sch.tbl");
  e.cfg.token_timeout_ms = 300;
  zb_token_cache *c = zb_token_cache_new();
  char *tok;
  zerobus_error *err;
  int64_t t0 = zb_now_ms();
  CHECK_INT(get_token(c, &e, &tok, &err), ZEROBUS_ERR_TOKEN);
  int64_t took = zb_now_ms() - t0;
  CHECK(took >= 290 && took < 300 + 700);
  fprintf(stderr, "  token request with token_timeout_ms=300 gave up after %lld ms\n",
          (long long)took);
  CHECK_INT(zerobus_error_retryable(err), 1);
  CHECK_HAS(zerobus_error_message(err), "timed out after");
  CHECK_HAS(zerobus_error_message(err), "(option token_timeout_ms is 300)");
  zerobus_error_destroy(err);
  zb_token_cache_free(c);
  zb_config_free(&e.cfg);
  fake_stop(&srv);
}

static void proxy_option(void) {
  fake_server srv;
  fake_start(&srv, 200, "{\"access_token\":\"p\",\"expires_in\":3600}");
  auth_env e;
  auth_env_init(&e, srv.port, "s3cr3t!", "cat.sch.tbl");
  char dead[64];
  snprintf(dead, sizeof dead, "http://127.0.0.1:%d", dead_port());
  zb_token_cache *c = zb_token_cache_new();
  char *tok;
  zerobus_error *err;
  /* An explicit proxy is used: a dead one fails the request (retryable). */
  e.cfg.proxy = strdup(dead);
  CHECK_INT(get_token(c, &e, &tok, &err), ZEROBUS_ERR_TOKEN);
  CHECK_INT(zerobus_error_retryable(err), 1);
  zerobus_error_destroy(err);
  CHECK_INT(fake_requests(&srv), 0);
  /* "none" ignores a proxy from the environment. */
  free(e.cfg.proxy);
  e.cfg.proxy = strdup("none");
  setenv("http_proxy", dead, 1);
  setenv("HTTP_PROXY", dead, 1);
  unsetenv("no_proxy");
  unsetenv("NO_PROXY");
  CHECK_INT(get_token(c, &e, &tok, &err), ZEROBUS_OK);
  CHECK_STR(tok, "p");
  zb_secret_free(tok);
  CHECK_INT(fake_requests(&srv), 1);
  unsetenv("http_proxy");
  unsetenv("HTTP_PROXY");
  zb_token_cache_free(c);
  zb_config_free(&e.cfg);
  fake_stop(&srv);
}

typedef struct race_arg {
  zb_token_cache *c;
  auth_env *e;
  int ok;
} race_arg;

static void *race_get(void *p) {
  race_arg *a = p;
  for (int i = 0; i < 50; i++) {
    char *tok = NULL;
    if (zb_token_get(a->c, &a->e->req, &tok, NULL) == ZEROBUS_OK && tok && !strcmp(tok, "shared"))
      a->ok++;
    zb_secret_free(tok);
    if (i % 10 == 0) zb_token_invalidate(a->c, &a->e->req);
  }
  return NULL;
}

static void concurrent_use(void) {
  fake_server srv;
  fake_start(&srv, 200, "{\"access_token\":\"shared\",\"expires_in\":3600}");
  auth_env e;
  auth_env_init(&e, srv.port, "s3cr3t!", "cat.sch.tbl");
  zb_token_cache *c = zb_token_cache_new();
  pthread_t th[4];
  race_arg args[4];
  for (int i = 0; i < 4; i++) {
    args[i] = (race_arg){c, &e, 0};
    pthread_create(&th[i], NULL, race_get, &args[i]);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    CHECK_INT(args[i].ok, 50);
  }
  CHECK(fake_requests(&srv) >= 5 && fake_requests(&srv) <= 200);
  zb_token_cache_free(c);
  zb_config_free(&e.cfg);
  fake_stop(&srv);
}

int main(void) {
  unsetenv("http_proxy");
  unsetenv("HTTP_PROXY");
  unsetenv("https_proxy");
  unsetenv("HTTPS_PROXY");
  unsetenv("all_proxy");
  unsetenv("ALL_PROXY");
  RUN(form_body_is_exact);
  RUN(table_names);
  RUN(response_parsing);
  RUN(secrets);
  RUN(good_credentials_exact_request_and_cache);
  RUN(expiry_refetches);
  RUN(http_errors);
  RUN(dead_server_and_bad_arguments);
  RUN(timeout_is_bounded);
  RUN(proxy_option);
  RUN(concurrent_use);
  TEST_MAIN_END();
}
