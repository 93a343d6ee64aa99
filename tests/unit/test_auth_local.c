/* OAuth tokens against zerobus-local's real token endpoint (via zl_harness):
 * good credentials, bad secret, cache hits counted by the server, expiry with
 * --token-ttl 2, invalidation, a dead server, and a silent socket (timeout). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"
#include "zb_test.h"
#include "zl_harness.h"

typedef struct env {
  zb_config cfg;
  zb_auth_request req;
} env;

static void env_init(env *e, const char *url, const char *secret) {
  zb_config_defaults(&e->cfg);
  memset(&e->req, 0, sizeof e->req);
  e->req.workspace_url = url;
  e->req.workspace_id = "1234567890";
  e->req.client_id = "test-client";
  e->req.client_secret = secret;
  e->req.table_name = "main.default.events";
  e->req.config = &e->cfg;
}

static void token_lifecycle(void) {
  zl_server s;
  const char *args[] = {"--token-ttl", "2", NULL};
  if (zl_start(&s, args) != 0) {
    CHECK(!"zerobus-local did not start");
    return;
  }
  env e;
  env_init(&e, s.http_url, "test-secret");
  zb_token_cache *c = zb_token_cache_new();
  char *tok = NULL;
  zerobus_error *err = NULL;

  CHECK_INT(zb_token_get(c, &e.req, &tok, &err), ZEROBUS_OK);
  CHECK(err == NULL);
  CHECK(tok && strlen(tok) > 0);
  char *first = zb_secret_dup(tok);
  zb_secret_free(tok);
  CHECK_INT(zl_counter(&s, NULL, "tokens_issued"), 1);

  /* Cache hit: the server issues nothing new. */
  CHECK_INT(zb_token_get(c, &e.req, &tok, &err), ZEROBUS_OK);
  CHECK_STR(tok, first);
  zb_secret_free(tok);
  CHECK_INT(zl_counter(&s, NULL, "tokens_issued"), 1);

  /* ttl 2 s and a 60 s margin: refreshed at half-life (1 s). */
  usleep(1200 * 1000);
  CHECK_INT(zb_token_get(c, &e.req, &tok, &err), ZEROBUS_OK);
  zb_secret_free(tok);
  CHECK_INT(zl_counter(&s, NULL, "tokens_issued"), 2);
  CHECK_INT(zb_token_get(c, &e.req, &tok, &err), ZEROBUS_OK);
  zb_secret_free(tok);
  CHECK_INT(zl_counter(&s, NULL, "tokens_issued"), 2);

  /* Invalidation forces a new token. */
  zb_token_invalidate(c, &e.req);
  CHECK_INT(zb_token_get(c, &e.req, &tok, &err), ZEROBUS_OK);
  zb_secret_free(tok);
  CHECK_INT(zl_counter(&s, NULL, "tokens_issued"), 3);

  /* Wrong secret: 401 -> UNAUTHENTICATED, final, secret never in the message. */
  e.req.client_secret = "wrong-secret-xyz";
  CHECK_INT(zb_token_get(c, &e.req, &tok, &err), ZEROBUS_ERR_UNAUTHENTICATED);
  CHECK(tok == NULL);
  CHECK_INT(zerobus_error_retryable(err), 0);
  CHECK_INT(zerobus_error_http_status(err), 401);
  CHECK_HAS(zerobus_error_message(err), "client id 'test-client'");
  CHECK_HAS(zerobus_error_message(err), "SELECT and MODIFY on main.default.events");
  CHECK_LACKS(zerobus_error_message(err), "wrong-secret-xyz");
  zerobus_error_destroy(err);
  err = NULL;
  CHECK_INT(zl_counter(&s, NULL, "tokens_issued"), 3);

  /* Dead server: TOKEN, retryable. */
  e.req.client_secret = "test-secret";
  zb_token_invalidate(c, &e.req);
  CHECK_INT(zl_stop(&s), 0);
  CHECK_INT(zb_token_get(c, &e.req, &tok, &err), ZEROBUS_ERR_TOKEN);
  CHECK_INT(zerobus_error_retryable(err), 1);
  zerobus_error_destroy(err);
  zb_secret_free(first);
  zb_token_cache_free(c);
  zb_config_free(&e.cfg);
}

static void silent_socket_times_out(void) {
  /* A socket that accepts (the kernel completes the handshake) and never answers. */
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, (struct sockaddr *)&a, sizeof a);
  socklen_t alen = sizeof a;
  getsockname(fd, (struct sockaddr *)&a, &alen);
  listen(fd, 4);
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%d", ntohs(a.sin_port));
  env e;
  env_init(&e, url, "test-secret");
  e.cfg.token_timeout_ms = 500;
  zb_token_cache *c = zb_token_cache_new();
  char *tok = NULL;
  zerobus_error *err = NULL;
  int64_t t0 = zb_now_ms();
  CHECK_INT(zb_token_get(c, &e.req, &tok, &err), ZEROBUS_ERR_TOKEN);
  int64_t took = zb_now_ms() - t0;
  fprintf(stderr, "  silent token endpoint: gave up after %lld ms (token_timeout_ms=500)\n",
          (long long)took);
  CHECK(took >= 490 && took < 500 + 700);
  CHECK_INT(zerobus_error_retryable(err), 1);
  zerobus_error_destroy(err);
  zb_token_cache_free(c);
  zb_config_free(&e.cfg);
  close(fd);
}

static int sh(const char *cmd) {
  int rc = system(cmd);
  if (rc != 0) fprintf(stderr, "  command failed (%d): %s\n", rc, cmd);
  return rc;
}

static void tls_token_endpoint(void) {
  char dir[] = "/tmp/zb_auth_tls_XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  char cmd[2048], cert[64], key[64], other[64];
  snprintf(cert, sizeof cert, "%s/cert.pem", dir);
  snprintf(key, sizeof key, "%s/key.pem", dir);
  snprintf(other, sizeof other, "%s/other.pem", dir);
  snprintf(cmd, sizeof cmd,
           "openssl req -x509 -newkey rsa:2048 -nodes -keyout %s -out %s -days 2 -subj /CN=local "
           "-addext subjectAltName=IP:127.0.0.1 2>/dev/null && "
           "openssl req -x509 -newkey rsa:2048 -nodes -keyout %s/other.key -out %s -days 2 "
           "-subj /CN=other -addext subjectAltName=IP:127.0.0.1 2>/dev/null",
           key, cert, dir, other);
  if (sh(cmd) != 0) {
    CHECK(!"openssl could not make a certificate");
    return;
  }
  zl_server s;
  const char *args[] = {"--tls-cert", cert, "--tls-key", key, NULL};
  if (zl_start(&s, args) != 0) {
    CHECK(!"zerobus-local did not start with TLS");
    return;
  }
  CHECK(strncmp(s.http_url, "https://", 8) == 0);
  env e;
  env_init(&e, s.http_url, "test-secret");
  zb_token_cache *c = zb_token_cache_new();
  char *tok = NULL;
  zerobus_error *err = NULL;
  /* Trusting the server's certificate through tls_ca_file. */
  e.cfg.tls_ca_file = strdup(cert);
  CHECK_INT(zb_token_get(c, &e.req, &tok, &err), ZEROBUS_OK);
  CHECK(tok && *tok);
  zb_secret_free(tok);
  CHECK_INT(zl_counter(&s, NULL, "tokens_issued"), 1);
  /* Another CA: verification fails, final (retrying cannot help), names the options. */
  zb_token_invalidate(c, &e.req);
  free(e.cfg.tls_ca_file);
  e.cfg.tls_ca_file = strdup(other);
  CHECK_INT(zb_token_get(c, &e.req, &tok, &err), ZEROBUS_ERR_TOKEN);
  CHECK_INT(zerobus_error_retryable(err), 0);
  CHECK_HAS(zerobus_error_message(err), "check the options tls_ca_file and tls_ca_dir");
  zerobus_error_destroy(err);
  err = NULL;
  CHECK_INT(zl_counter(&s, NULL, "tokens_issued"), 1);
  zb_token_cache_free(c);
  zb_config_free(&e.cfg);
  zl_stop(&s);
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  sh(cmd);
}

int main(void) {
  RUN(token_lifecycle);
  RUN(tls_token_endpoint);
  RUN(silent_socket_times_out);
  TEST_MAIN_END();
}
