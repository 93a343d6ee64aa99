/* Stream creation: retries with exact attempt counts, exhaustion, non-retryable
 * statuses (one attempt), hang_headers bounded by recovery_timeout_ms, OAuth
 * token cache / expiry / invalidation against zerobus-local's token endpoint. */
#include <stddef.h>

#include "core_test.h"

static zl_server srv;    /* OAuth required (default) */
static zl_server noauth; /* --no-auth, for headers-provider tests */
static zerobus_sdk *sdk;

static void faults(zl_server *s, const char *table, const char *entries) {
  char buf[1024];
  snprintf(buf, sizeof buf, "{\"tables\":{\"%s\":%s}}", table, entries);
  CHECK_EQ(zl_set_faults(s, buf), 0);
}

static void test_create_retries_then_succeeds(void) {
  const char *t = "main.cr.retry";
  faults(&srv, t, "[{\"fail_create\":14,\"repeat\":2}]");
  zerobus_stream *s = NULL;
  zerobus_error *e = NULL;
  const char *kv[] = {"recovery_retries=4", NULL};
  long long t0 = now_ms();
  CHECK_OK(json_stream(sdk, t, kv, NULL, &s, &e), &e);
  CHECK(now_ms() - t0 >= 100); /* two backoffs of 50 ms */
  CHECK_EQ(zl_counter(&srv, t, "create_attempts"), 3);
  CHECK_EQ(zl_counter(&srv, t, "creates"), 1);
  CHECK_EQ(STAT(s, reconnects), 0);
  ingest_n(s, 0, 3);
  CHECK_OK(zerobus_stream_close(s, &e), &e);
  zerobus_stream_destroy(s);
  check_stored_exact(&srv, t, 3);
}

static int freed;
static void count_free(void *ud) {
  (void)ud;
  freed++;
}

static void test_create_exhausted(void) {
  const char *t = "main.cr.exhaust";
  faults(&srv, t, "[{\"fail_create\":14,\"repeat\":100}]");
  zerobus_stream *s = (zerobus_stream *)1;
  zerobus_error *e = NULL;
  zerobus_callbacks cb;
  zerobus_callbacks_init(&cb, sizeof cb);
  cb.user_data_free = count_free;
  freed = 0;
  const char *kv[] = {"recovery_retries=2", NULL};
  long long t0 = now_ms();
  CHECK_ST(json_stream(sdk, t, kv, &cb, &s, &e), ZEROBUS_ERR_RETRIES_EXHAUSTED, &e);
  long long dt = now_ms() - t0;
  CHECK(s == NULL);
  CHECK_EQ(freed, 1);
  CHECK_EQ(zerobus_error_retryable(e), 1);
  CHECK_EQ(zerobus_error_grpc_status(e), 14);
  CHECK(strstr(zerobus_error_message(e), "3 attempts") != NULL);
  zerobus_error_destroy(e);
  CHECK_EQ(zl_counter(&srv, t, "create_attempts"), 3);
  CHECK(dt >= 100);
  /* recovery off: exactly one attempt, the status's own error */
  const char *t2 = "main.cr.norecovery";
  faults(&srv, t2, "[{\"fail_create\":14,\"repeat\":100}]");
  const char *kv2[] = {"recovery=false", NULL};
  CHECK_ST(json_stream(sdk, t2, kv2, NULL, &s, &e), ZEROBUS_ERR_UNAVAILABLE, &e);
  CHECK_EQ(zerobus_error_retryable(e), 1);
  zerobus_error_destroy(e);
  CHECK_EQ(zl_counter(&srv, t2, "create_attempts"), 1);
  /* recovery_retries=0: one attempt too */
  const char *t3 = "main.cr.zeroretries";
  faults(&srv, t3, "[{\"fail_create\":13,\"repeat\":100}]");
  const char *kv3[] = {"recovery_retries=0", NULL};
  CHECK_ST(json_stream(sdk, t3, kv3, NULL, &s, &e), ZEROBUS_ERR_SERVER, &e);
  CHECK_EQ(zerobus_error_retryable(e), 1);
  CHECK_EQ(zerobus_error_grpc_status(e), 13);
  zerobus_error_destroy(e);
  CHECK_EQ(zl_counter(&srv, t3, "create_attempts"), 1);
}

static int32_t provider(void *ud, zerobus_headers *h) {
  zerobus_headers_add(h, "authorization", "Bearer x");
  zerobus_headers_add(h, "x-databricks-zerobus-table-name", (const char *)ud);
  return ZEROBUS_OK;
}

/* Non-retryable statuses: the right code, retryable=0, exactly one attempt. */
static void test_non_retryable_statuses(void) {
  static const struct {
    int grpc;
    zerobus_status want;
  } cases[] = {{3, ZEROBUS_ERR_SERVER_REJECTED},   {5, ZEROBUS_ERR_NOT_FOUND},
               {7, ZEROBUS_ERR_PERMISSION_DENIED}, {11, ZEROBUS_ERR_SERVER_REJECTED},
               {12, ZEROBUS_ERR_UNIMPLEMENTED},    {16, ZEROBUS_ERR_UNAUTHENTICATED}};
  zerobus_sdk *sdk2 = sdk_for(&noauth, NULL);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char t[64], f[128];
    snprintf(t, sizeof t, "main.cr.status%d", cases[i].grpc);
    snprintf(f, sizeof f, "[{\"fail_create\":%d,\"repeat\":10}]", cases[i].grpc);
    faults(&noauth, t, f);
    zerobus_callbacks cb;
    zerobus_callbacks_init(&cb, sizeof cb);
    cb.user_data = t;
    cb.headers = provider;
    cb.user_data_free = count_free;
    freed = 0;
    zerobus_options *o = opts_of(
        (const char *[]){"record_type=json", "recovery_backoff_ms=50", "recovery_retries=4", NULL});
    zerobus_stream *s = NULL;
    zerobus_error *e = NULL;
    CHECK_ST(zerobus_stream_create(sdk2, t, NULL, 0, NULL, NULL, o, &cb, &s, &e), cases[i].want,
             &e);
    CHECK_EQ(zerobus_error_retryable(e), 0);
    CHECK_EQ(zerobus_error_grpc_status(e), cases[i].grpc);
    CHECK_EQ(freed, 1);
    zerobus_error_destroy(e);
    zerobus_options_destroy(o);
    CHECK_EQ(zl_counter(&noauth, t, "create_attempts"), 1);
  }
  zerobus_sdk_destroy(sdk2);
}

/* A provider that fails: HEADERS_PROVIDER, retried unless it says otherwise. */
static int provider_calls;
static int32_t failing_provider(void *ud, zerobus_headers *h) {
  provider_calls++;
  zerobus_headers_fail(h, "no credentials today", ud != NULL);
  return ZEROBUS_ERR_HEADERS_PROVIDER;
}

static void test_failing_provider(void) {
  zerobus_sdk *sdk2 = sdk_for(&noauth, NULL);
  zerobus_options *o = opts_of(
      (const char *[]){"record_type=json", "recovery_backoff_ms=20", "recovery_retries=2", NULL});
  zerobus_callbacks cb;
  zerobus_callbacks_init(&cb, sizeof cb);
  cb.headers = failing_provider;
  zerobus_stream *s = NULL;
  zerobus_error *e = NULL;
  provider_calls = 0;
  cb.user_data = NULL; /* not retryable */
  CHECK_ST(zerobus_stream_create(sdk2, "main.cr.hp", NULL, 0, NULL, NULL, o, &cb, &s, &e),
           ZEROBUS_ERR_HEADERS_PROVIDER, &e);
  CHECK_EQ(zerobus_error_retryable(e), 0);
  CHECK(strstr(zerobus_error_message(e), "no credentials today") != NULL);
  zerobus_error_destroy(e);
  CHECK_EQ(provider_calls, 1);
  provider_calls = 0;
  cb.user_data = &provider_calls; /* retryable */
  CHECK_ST(zerobus_stream_create(sdk2, "main.cr.hp", NULL, 0, NULL, NULL, o, &cb, &s, &e),
           ZEROBUS_ERR_RETRIES_EXHAUSTED, &e);
  zerobus_error_destroy(e);
  CHECK_EQ(provider_calls, 3);
  zerobus_options_destroy(o);
  zerobus_sdk_destroy(sdk2);
}

/* hang_headers: each attempt ends after recovery_timeout_ms. */
static void test_hang_headers_timeout(void) {
  const char *t = "main.cr.hang";
  faults(&srv, t, "[{\"hang_headers\":true,\"repeat\":100}]");
  zerobus_stream *s = NULL;
  zerobus_error *e = NULL;
  const char *kv[] = {"recovery_timeout_ms=300", "recovery_retries=1", NULL};
  long long t0 = now_ms();
  CHECK_ST(json_stream(sdk, t, kv, NULL, &s, &e), ZEROBUS_ERR_RETRIES_EXHAUSTED, &e);
  long long dt = now_ms() - t0;
  fprintf(stderr, "   hang_headers x2: %lld ms: %s\n", dt, zerobus_error_message(e));
  CHECK(dt >= 640 && dt < 1500 * slack());
  CHECK(strstr(zerobus_error_message(e), "300 ms") != NULL);
  zerobus_error_destroy(e);
  const char *kv2[] = {"recovery_timeout_ms=300", "recovery=false", NULL};
  t0 = now_ms();
  CHECK_ST(json_stream(sdk, t, kv2, NULL, &s, &e), ZEROBUS_ERR_TIMEOUT, &e);
  dt = now_ms() - t0;
  CHECK(dt >= 290 && dt < 1000 * slack());
  CHECK_EQ(zerobus_error_retryable(e), 1);
  zerobus_error_destroy(e);
}

/* Nothing listening: every attempt retries the connection until its deadline,
 * then the stream fails with the connection error (UNAVAILABLE, refused). */
static void test_no_server(void) {
  zl_server dead;
  start_server(&dead, NULL);
  char ep[64], url[64];
  snprintf(ep, sizeof ep, "%s", dead.endpoint);
  snprintf(url, sizeof url, "%s", srv.http_url); /* tokens from the live one */
  zl_stop(&dead);
  zerobus_sdk *sdk2 = NULL;
  zerobus_error *e = NULL;
  CHECK_OK(zerobus_sdk_new(ep, url, NULL, &sdk2, &e), &e);
  zerobus_stream *s = NULL;
  /* each attempt keeps reconnecting until its 400 ms are up */
  const char *kv[] = {"recovery_retries=2", "recovery_timeout_ms=400", NULL};
  long long t0 = now_ms();
  CHECK_ST(json_stream(sdk2, "main.cr.dead", kv, NULL, &s, &e), ZEROBUS_ERR_RETRIES_EXHAUSTED, &e);
  long long dt = now_ms() - t0;
  fprintf(stderr, "   no server: %lld ms: %s\n", dt, zerobus_error_message(e));
  CHECK(dt >= 800);
  CHECK(dt < 3000 * slack());
  CHECK_EQ(zerobus_error_grpc_status(e), 14);
  CHECK(strstr(zerobus_error_message(e), "refused") != NULL);
  zerobus_error_destroy(e);
  zerobus_sdk_destroy(sdk2);
}

/* OAuth: one token per (workspace, client, table) from the cache. */
static void test_token_cache(void) {
  long long before = zl_counter(&srv, NULL, "tokens_issued");
  zerobus_stream *a = NULL, *b = NULL, *c = NULL;
  zerobus_error *e = NULL;
  CHECK_OK(json_stream(sdk, "main.cr.tok1", NULL, NULL, &a, &e), &e);
  CHECK_OK(json_stream(sdk, "main.cr.tok1", NULL, NULL, &b, &e), &e);
  CHECK_EQ(zl_counter(&srv, NULL, "tokens_issued"), before + 1);
  CHECK_OK(json_stream(sdk, "main.cr.tok2", NULL, NULL, &c, &e), &e);
  CHECK_EQ(zl_counter(&srv, NULL, "tokens_issued"), before + 2);
  zerobus_stream_destroy(a);
  zerobus_stream_destroy(b);
  zerobus_stream_destroy(c);
  /* wrong secret: UNAUTHENTICATED at the token endpoint, no call made */
  zerobus_options *o = opts_of((const char *[]){"record_type=json", NULL});
  CHECK_ST(
      zerobus_stream_create(sdk, "main.cr.tok3", NULL, 0, "test-client", "wrong", o, NULL, &a, &e),
      ZEROBUS_ERR_UNAUTHENTICATED, &e);
  CHECK_EQ(zerobus_error_retryable(e), 0);
  CHECK(strstr(zerobus_error_message(e), "wrong") == NULL); /* never the secret */
  zerobus_error_destroy(e);
  CHECK_EQ(zl_counter(&srv, "main.cr.tok3", "create_attempts"), 0);
  zerobus_options_destroy(o);
}

/* The token endpoint is unreachable: TOKEN errors are retryable, so the attempts
 * run out (RETRIES_EXHAUSTED carrying the TOKEN cause); no call is made. */
static void test_token_endpoint_down(void) {
  zerobus_sdk *sdk2 = NULL;
  zerobus_error *e = NULL;
  zerobus_options *o = opts_of((const char *[]){"token_timeout_ms=1000", NULL});
  CHECK_OK(zerobus_sdk_new(srv.endpoint, "http://127.0.0.1:1", o, &sdk2, &e), &e);
  zerobus_options_destroy(o);
  zerobus_stream *s = NULL;
  const char *kv[] = {"recovery_retries=1", NULL};
  CHECK_ST(json_stream(sdk2, "main.cr.notoken", kv, NULL, &s, &e), ZEROBUS_ERR_RETRIES_EXHAUSTED,
           &e);
  CHECK(strstr(zerobus_error_message(e), "2 attempts") != NULL);
  zerobus_error_destroy(e);
  CHECK_EQ(zl_counter(&srv, "main.cr.notoken", "create_attempts"), 0);
  const char *kv2[] = {"recovery=false", NULL};
  CHECK_ST(json_stream(sdk2, "main.cr.notoken", kv2, NULL, &s, &e), ZEROBUS_ERR_TOKEN, &e);
  CHECK_EQ(zerobus_error_retryable(e), 1);
  zerobus_error_destroy(e);
  zerobus_sdk_destroy(sdk2);
}

/* UNAUTHENTICATED from the server: the cached token is dropped and one fresh
 * attempt made. */
static void test_token_invalidation(void) {
  const char *t = "main.cr.inval";
  zerobus_stream *s = NULL;
  zerobus_error *e = NULL;
  CHECK_OK(json_stream(sdk, t, NULL, NULL, &s, &e), &e); /* caches a token */
  zerobus_stream_destroy(s);
  long long before = zl_counter(&srv, NULL, "tokens_issued");
  faults(&srv, t, "[{\"fail_create\":16}]");
  CHECK_OK(json_stream(sdk, t, NULL, NULL, &s, &e), &e);
  CHECK_EQ(zl_counter(&srv, NULL, "tokens_issued"), before + 1);
  CHECK_EQ(zl_counter(&srv, t, "create_attempts"), 3);
  zerobus_stream_destroy(s);
  /* twice in a row: UNAUTHENTICATED, not retryable, after exactly 2 attempts */
  faults(&srv, t, "[{\"fail_create\":16,\"repeat\":5}]");
  long long attempts = zl_counter(&srv, t, "create_attempts");
  CHECK_ST(json_stream(sdk, t, NULL, NULL, &s, &e), ZEROBUS_ERR_UNAUTHENTICATED, &e);
  CHECK_EQ(zerobus_error_retryable(e), 0);
  zerobus_error_destroy(e);
  CHECK_EQ(zl_counter(&srv, t, "create_attempts"), attempts + 2);
}

/* Short-lived tokens: a reconnect after expiry fetches a new token. */
static void test_token_expiry(void) {
  zl_server ttl;
  start_server(&ttl, (const char *[]){"--token-ttl", "1", NULL});
  zerobus_sdk *sdk2 = sdk_for(&ttl, (const char *[]){"token_refresh_margin_ms=0", NULL});
  const char *t = "main.cr.ttl";
  zerobus_stream *s = NULL;
  zerobus_error *e = NULL;
  CHECK_OK(json_stream(sdk2, t, NULL, NULL, &s, &e), &e);
  CHECK_EQ(zl_counter(&ttl, NULL, "tokens_issued"), 1);
  ingest_n(s, 0, 3);
  CHECK_OK(zerobus_stream_flush(s, &e), &e);
  sleep_ms(1500); /* token expired */
  zerobus_stream *s2 = NULL;
  CHECK_OK(json_stream(sdk2, t, NULL, NULL, &s2, &e), &e); /* needs a fresh token */
  CHECK_EQ(zl_counter(&ttl, NULL, "tokens_issued"), 2);
  ingest_n(s2, 0, 2);
  CHECK_OK(zerobus_stream_close(s2, &e), &e);
  zerobus_stream_destroy(s2);
  CHECK_OK(zerobus_stream_close(s, &e), &e);
  zerobus_stream_destroy(s);
  zerobus_sdk_destroy(sdk2);
  zl_stop(&ttl);
}

int main(void) {
  start_server(&srv, NULL);
  start_server(&noauth, (const char *[]){"--no-auth", NULL});
  sdk = sdk_for(&srv, NULL);
  RUN(test_create_retries_then_succeeds);
  RUN(test_create_exhausted);
  RUN(test_non_retryable_statuses);
  RUN(test_failing_provider);
  RUN(test_hang_headers_timeout);
  RUN(test_no_server);
  RUN(test_token_cache);
  RUN(test_token_invalidation);
  RUN(test_token_endpoint_down);
  RUN(test_token_expiry);
  zerobus_sdk_destroy(sdk);
  zl_stop(&srv);
  zl_stop(&noauth);
  fprintf(stderr, "all passed\n");
  return 0;
}
