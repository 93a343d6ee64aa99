/*
 * auth.c - OAuth 2.0 client-credentials tokens (PROTOCOL.md) with a per-SDK cache.
 *
 * zb_token_get() answers from the cache when it holds a token for (workspace URL,
 * client id, table) that is not due for refresh, otherwise it POSTs
 * {workspace_url}/oidc/v1/token with libcurl (bounded by token_timeout_ms) and
 * caches the result until expires_in minus the refresh margin (token_refresh_margin_ms,
 * capped at half the lifetime so short-lived tokens are still reused). The cache also remembers the
 * secret a token was fetched with: a different secret for the same client id is a
 * miss, so a wrong secret is never masked by an earlier good one.
 *
 * Secrets and tokens are copied with zb_secret_dup, zeroed before free, and never
 * put in a message or a log line. The network call runs without the cache lock, so
 * two threads missing the same key at once may both fetch (harmless).
 *
 * Errors: network failures, timeouts, HTTP 5xx and 429 are TOKEN, retryable; TLS
 * verification/CA problems, bodies without access_token and other statuses are TOKEN,
 * final; HTTP 4xx is UNAUTHENTICATED, final.
 */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define TOKEN_DEFAULT_EXPIRES_S 3600
#define TOKEN_MAX_BODY (1024 * 1024)

/* ------------------------------------------------------------ secrets */

void zb_secret_free(char *s) {
  if (!s) return;
  explicit_bzero(s, strlen(s));
  free(s);
}

char *zb_secret_dup(const char *s) {
  return s ? strdup(s) : NULL;
}

int zb_table_name_valid(const char *name) {
  if (!name) return 0;
  int parts = 0;
  size_t part_len = 0;
  for (const char *p = name;; p++) {
    if (*p == '.' || *p == '\0') {
      if (part_len == 0) return 0;
      parts++;
      part_len = 0;
      if (!*p) break;
      continue;
    }
    if ((unsigned char)*p < 0x20 || *p == 0x7f) return 0;
    part_len++;
  }
  return parts == 3;
}

/* ------------------------------------------------------------ request body */

static char *url_encode(const char *s) {
  static const char hex[] = "0123456789ABCDEF";
  size_t n = strlen(s);
  char *out = malloc(n * 3 + 1), *o = out;
  if (!out) return NULL;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    unsigned char c = *p;
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      *o++ = (char)c;
    } else {
      *o++ = '%';
      *o++ = hex[c >> 4];
      *o++ = hex[c & 15];
    }
  }
  *o = '\0';
  return out;
}

static int add_privilege(cJSON *arr, const char *object_type, const char *path,
                         const char *const *privileges, size_t n, int with_operations) {
  cJSON *o = cJSON_CreateObject();
  if (!o) return 0;
  cJSON_AddItemToArray(arr, o);
  if (!cJSON_AddStringToObject(o, "type", "unity_catalog_privileges") ||
      !cJSON_AddStringToObject(o, "object_type", object_type) ||
      !cJSON_AddStringToObject(o, "object_full_path", path))
    return 0;
  cJSON *priv = cJSON_CreateStringArray(privileges, (int)n);
  if (!priv) return 0;
  cJSON_AddItemToObject(o, "privileges", priv);
  if (with_operations) {
    const char *ops[] = {"zerobuswrite"};
    cJSON *op = cJSON_CreateStringArray(ops, 1);
    if (!op) return 0;
    cJSON_AddItemToObject(o, "operations", op);
  }
  return 1;
}

/* The authorization_details JSON array (compact) for "cat.sch.tbl". */
static char *authorization_details(const char *table_name) {
  const char *d1 = strchr(table_name, '.');
  const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
  if (!d1 || !d2) return NULL;
  char *catalog = strndup(table_name, (size_t)(d1 - table_name));
  char *schema = strndup(table_name, (size_t)(d2 - table_name));
  cJSON *arr = cJSON_CreateArray();
  char *json = NULL;
  static const char *const use_catalog[] = {"USE CATALOG"};
  static const char *const use_schema[] = {"USE SCHEMA"};
  static const char *const table_privs[] = {"SELECT", "MODIFY"};
  if (catalog && schema && arr && add_privilege(arr, "CATALOG", catalog, use_catalog, 1, 0) &&
      add_privilege(arr, "SCHEMA", schema, use_schema, 1, 0) &&
      add_privilege(arr, "TABLE", table_name, table_privs, 2, 1))
    json = cJSON_PrintUnformatted(arr);
  cJSON_Delete(arr);
  free(catalog);
  free(schema);
  return json;
}

char *zb_token_form_body(const char *workspace_id, const char *table_name) {
  if (!workspace_id || !*workspace_id || !zb_table_name_valid(table_name)) return NULL;
  char *resource = NULL, *details = authorization_details(table_name);
  char *resource_enc = NULL, *details_enc = NULL, *body = NULL;
  if (details && asprintf(&resource, "api://databricks/workspaces/%s/zerobusDirectWriteApi",
                          workspace_id) >= 0) {
    resource_enc = url_encode(resource);
    details_enc = url_encode(details);
    if (resource_enc && details_enc &&
        asprintf(&body,
                 "grant_type=client_credentials&scope=all-apis&resource=%s"
                 "&authorization_details=%s",
                 resource_enc, details_enc) < 0)
      body = NULL;
  }
  free(details);
  free(resource);
  free(resource_enc);
  free(details_enc);
  return body;
}

/* ------------------------------------------------------------ response */

zerobus_status zb_token_parse_response(const char *body, size_t len, char **token,
                                       int64_t *expires_in_s, zerobus_error **err) {
  if (err) *err = NULL;
  if (!token || !expires_in_s || (!body && len))
    return zb_fail(err, ZEROBUS_ERR_INVALID_ARGUMENT, 0, "zb_token_parse_response: NULL argument");
  *token = NULL;
  *expires_in_s = 0;
  cJSON *root = body ? cJSON_ParseWithLength(body, len) : NULL;
  if (!root || !cJSON_IsObject(root)) {
    cJSON_Delete(root);
    return zb_fail(err, ZEROBUS_ERR_TOKEN, 0,
                   "token endpoint answered with a body that is not a JSON object");
  }
  zerobus_status st = ZEROBUS_OK;
  cJSON *tok = cJSON_GetObjectItemCaseSensitive(root, "access_token");
  cJSON *exp = cJSON_GetObjectItemCaseSensitive(root, "expires_in");
  int64_t expires = TOKEN_DEFAULT_EXPIRES_S;
  if (!cJSON_IsString(tok) || !tok->valuestring || !*tok->valuestring) {
    st = zb_fail(err, ZEROBUS_ERR_TOKEN, 0,
                 "token endpoint answered without an access_token (is the workspace URL right?)");
  } else if (exp && !cJSON_IsNull(exp)) {
    double v = -1;
    if (cJSON_IsNumber(exp)) {
      v = exp->valuedouble;
    } else if (cJSON_IsString(exp) && exp->valuestring && *exp->valuestring) {
      char *end = NULL;
      v = strtod(exp->valuestring, &end);
      if (!end || *end) v = -1;
    }
    if (!(v >= 0 && v < 1e12))
      st = zb_fail(err, ZEROBUS_ERR_TOKEN, 0,
                   "token endpoint answered with an invalid expires_in (expected seconds)");
    else
      expires = (int64_t)v;
  }
  if (st == ZEROBUS_OK) {
    *token = zb_secret_dup(tok->valuestring);
    if (!*token)
      st = zb_fail(err, ZEROBUS_ERR_NO_MEMORY, 0, "out of memory");
    else
      *expires_in_s = expires;
  }
  if (cJSON_IsString(tok) && tok->valuestring)
    explicit_bzero(tok->valuestring, strlen(tok->valuestring));
  cJSON_Delete(root);
  return st;
}

/* ------------------------------------------------------------ cache */

typedef struct token_entry {
  struct token_entry *next;
  char *workspace_url, *client_id, *table_name;
  char *secret; /* the secret the token was fetched with */
  char *token;
  int64_t refresh_at_ms; /* zb_now_ms() after which the token is fetched anew */
} token_entry;

struct zb_token_cache {
  pthread_mutex_t mu;
  token_entry *head;
};

static void entry_free(token_entry *e) {
  if (!e) return;
  free(e->workspace_url);
  free(e->client_id);
  free(e->table_name);
  zb_secret_free(e->secret);
  zb_secret_free(e->token);
  free(e);
}

zb_token_cache *zb_token_cache_new(void) {
  zb_token_cache *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  pthread_mutex_init(&c->mu, NULL);
  return c;
}

void zb_token_cache_free(zb_token_cache *c) {
  if (!c) return;
  token_entry *e = c->head;
  while (e) {
    token_entry *next = e->next;
    entry_free(e);
    e = next;
  }
  pthread_mutex_destroy(&c->mu);
  free(c);
}

static int entry_is(const token_entry *e, const zb_auth_request *r) {
  return strcmp(e->workspace_url, r->workspace_url) == 0 &&
         strcmp(e->client_id, r->client_id) == 0 && strcmp(e->table_name, r->table_name) == 0;
}

/* Unlinks and frees the entry for r's key; caller holds the lock. */
static void cache_remove_locked(zb_token_cache *c, const zb_auth_request *r) {
  for (token_entry **pp = &c->head; *pp; pp = &(*pp)->next) {
    if (entry_is(*pp, r)) {
      token_entry *e = *pp;
      *pp = e->next;
      entry_free(e);
      return;
    }
  }
}

void zb_token_invalidate(zb_token_cache *c, const zb_auth_request *req) {
  if (!c || !req || !req->workspace_url || !req->client_id || !req->table_name) return;
  pthread_mutex_lock(&c->mu);
  cache_remove_locked(c, req);
  pthread_mutex_unlock(&c->mu);
}

/* ------------------------------------------------------------ HTTP */

static pthread_once_t g_curl_once = PTHREAD_ONCE_INIT;
static CURLcode g_curl_init_rc = CURLE_OK;
static void curl_init_once(void) {
  g_curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

typedef struct body_buf {
  char *data;
  size_t len, cap;
  int too_large;
} body_buf;

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud) {
  body_buf *b = ud;
  size_t n = size * nmemb;
  if (b->len + n + 1 > TOKEN_MAX_BODY) {
    b->too_large = 1;
    return 0; /* aborts the transfer */
  }
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + n + 1) cap *= 2;
    char *np = malloc(cap);
    if (!np) return 0;
    if (b->data) {
      memcpy(np, b->data, b->len);
      explicit_bzero(b->data, b->len);
      free(b->data);
    }
    b->data = np;
    b->cap = cap;
  }
  memcpy(b->data + b->len, ptr, n);
  b->len += n;
  b->data[b->len] = '\0';
  return n;
}

static void body_free(body_buf *b) {
  if (b->data) {
    explicit_bzero(b->data, b->cap);
    free(b->data);
  }
  memset(b, 0, sizeof *b);
}

/* TLS failures that come from the configuration or the certificate: retrying the
 * same request cannot succeed, so they are final. */
static int tls_config_error(CURLcode rc) {
  switch (rc) {
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_ISSUER_ERROR:
      return 1;
    default:
      return 0;
  }
}

/* A short, printable excerpt of an OAuth error body ("error_description" or
 * "error"), for the message of a refused request. */
static void oauth_error_text(const body_buf *b, char *out, size_t cap) {
  out[0] = '\0';
  if (!b->data) return;
  cJSON *root = cJSON_ParseWithLength(b->data, b->len);
  if (!root) return;
  const char *keys[] = {"error_description", "message", "error"};
  for (size_t i = 0; i < 3 && !out[0]; i++) {
    cJSON *v = cJSON_GetObjectItemCaseSensitive(root, keys[i]);
    if (cJSON_IsString(v) && v->valuestring) snprintf(out, cap, "%s", v->valuestring);
  }
  cJSON_Delete(root);
  for (char *p = out; *p; p++)
    if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e) *p = '?';
}

/* One POST to the token endpoint; on success the token and its lifetime are set. */
static zerobus_status fetch_token(const zb_auth_request *r, char **token, int64_t *expires_in_s,
                                  zerobus_error **err) {
  pthread_once(&g_curl_once, curl_init_once);
  if (g_curl_init_rc != CURLE_OK)
    return zb_fail(err, ZEROBUS_ERR_TOKEN, 0, "libcurl initialization failed: %s",
                   curl_easy_strerror(g_curl_init_rc));
  const zb_config *cfg = r->config;
  int64_t timeout_ms = cfg && cfg->token_timeout_ms > 0 ? cfg->token_timeout_ms : 10000;

  char *url = NULL;
  if (asprintf(&url, "%s/oidc/v1/token", r->workspace_url) < 0)
    return zb_fail(err, ZEROBUS_ERR_NO_MEMORY, 0, "out of memory");
  char *form = zb_token_form_body(r->workspace_id, r->table_name);
  char *agent = zb_sdk_header_value(cfg ? cfg->application_name : NULL);
  CURL *h = curl_easy_init();
  struct curl_slist *hdrs = NULL;
  hdrs = curl_slist_append(hdrs, "Accept: application/json");
  body_buf body = {0};
  char errbuf[CURL_ERROR_SIZE] = "";
  zerobus_status st = ZEROBUS_OK;
  if (!form || !agent || !h || !hdrs) {
    st = zb_fail(err, ZEROBUS_ERR_NO_MEMORY, 0, "out of memory");
    goto done;
  }
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
  curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
  curl_easy_setopt(h, CURLOPT_USERNAME, r->client_id);
  curl_easy_setopt(h, CURLOPT_PASSWORD, r->client_secret);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, form);
  curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(form));
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(h, CURLOPT_USERAGENT, agent);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  if (cfg && cfg->tls_ca_file) curl_easy_setopt(h, CURLOPT_CAINFO, cfg->tls_ca_file);
  if (cfg && cfg->tls_ca_dir) curl_easy_setopt(h, CURLOPT_CAPATH, cfg->tls_ca_dir);
  if (cfg && cfg->proxy) {
    /* "" and "none" force a direct connection; NULL lets curl read the environment. */
    int direct = !*cfg->proxy || strcmp(cfg->proxy, "none") == 0;
    curl_easy_setopt(h, CURLOPT_PROXY, direct ? "" : cfg->proxy);
  }

  zb_log(r->logger, ZEROBUS_LOG_DEBUG,
         "requesting an OAuth token from %s for client id %s, table %s", url, r->client_id,
         r->table_name);
  int64_t t0 = zb_now_ms();
  CURLcode rc = curl_easy_perform(h);
  long http = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &http);
  if (rc != CURLE_OK) {
    if (body.too_large)
      st = zb_fail(err, ZEROBUS_ERR_TOKEN, 0,
                   "token endpoint %s answered with a body over %d bytes", url, TOKEN_MAX_BODY);
    else if (rc == CURLE_OPERATION_TIMEDOUT)
      st = zb_fail(err, ZEROBUS_ERR_TOKEN, 1,
                   "token request to %s timed out after %lld ms (option token_timeout_ms is %lld)",
                   url, (long long)(zb_now_ms() - t0), (long long)timeout_ms);
    else if (tls_config_error(rc))
      st = zb_fail(err, ZEROBUS_ERR_TOKEN, 0,
                   "token request to %s failed: %s%s%s (TLS: check the options tls_ca_file and "
                   "tls_ca_dir, and that the certificate is valid for the host)",
                   url, curl_easy_strerror(rc), errbuf[0] ? ": " : "", errbuf);
    else
      st = zb_fail(err, ZEROBUS_ERR_TOKEN, 1, "token request to %s failed: %s%s%s", url,
                   curl_easy_strerror(rc), errbuf[0] ? ": " : "", errbuf);
    goto done;
  }
  if (http >= 200 && http < 300) {
    st = zb_token_parse_response(body.data, body.len, token, expires_in_s, err);
    if (st != ZEROBUS_OK && err && *err) (*err)->http_status = (int32_t)http;
  } else if (http >= 500 || http == 429) {
    st = zb_fail(err, ZEROBUS_ERR_TOKEN, 1, "token endpoint %s answered HTTP %ld; will retry", url,
                 http);
    if (err && *err) (*err)->http_status = (int32_t)http;
  } else if (http >= 400) {
    char why[200];
    oauth_error_text(&body, why, sizeof why);
    char grants[1024];
    zb_table_grants(r->table_name, grants, sizeof grants);
    st = zb_fail(err, ZEROBUS_ERR_UNAUTHENTICATED, 0,
                 "token endpoint %s refused client id '%s' (HTTP %ld%s%s): check the client id "
                 "and secret, and that the service principal has %s",
                 url, r->client_id, http, why[0] ? ": " : "", why, grants);
    if (err && *err) (*err)->http_status = (int32_t)http;
  } else {
    st = zb_fail(err, ZEROBUS_ERR_TOKEN, 0, "token endpoint %s answered unexpected HTTP %ld", url,
                 http);
    if (err && *err) (*err)->http_status = (int32_t)http;
  }

done:
  body_free(&body);
  curl_slist_free_all(hdrs);
  if (h) curl_easy_cleanup(h);
  free(form);
  free(agent);
  free(url);
  return st;
}

/* ------------------------------------------------------------ public */

zerobus_status zb_token_get(zb_token_cache *c, const zb_auth_request *req, char **token,
                            zerobus_error **err) {
  if (err) *err = NULL;
  if (token) *token = NULL;
  if (!c || !req || !token || !req->workspace_url || !req->workspace_id || !req->client_id ||
      !req->client_secret || !req->table_name)
    return zb_fail(err, ZEROBUS_ERR_INVALID_ARGUMENT, 0,
                   "OAuth needs a workspace URL, client id, client secret and table name");
  if (!*req->client_id || !*req->client_secret)
    return zb_fail(err, ZEROBUS_ERR_INVALID_ARGUMENT, 0,
                   "client id and client secret must not be empty");
  if (!zb_table_name_valid(req->table_name))
    return zb_fail(err, ZEROBUS_ERR_INVALID_ARGUMENT, 0,
                   "table name '%s' must have three non-empty parts: catalog.schema.table",
                   req->table_name);

  pthread_mutex_lock(&c->mu);
  for (token_entry *e = c->head; e; e = e->next) {
    if (!entry_is(e, req)) continue;
    if (strcmp(e->secret, req->client_secret) == 0 && zb_now_ms() < e->refresh_at_ms) {
      *token = zb_secret_dup(e->token);
      pthread_mutex_unlock(&c->mu);
      if (!*token) return zb_fail(err, ZEROBUS_ERR_NO_MEMORY, 0, "out of memory");
      zb_log(req->logger, ZEROBUS_LOG_TRACE, "OAuth token for %s from the cache", req->table_name);
      return ZEROBUS_OK;
    }
    break;
  }
  pthread_mutex_unlock(&c->mu);

  char *fresh = NULL;
  int64_t expires_s = 0;
  int64_t fetched_at = zb_now_ms();
  zerobus_status st = fetch_token(req, &fresh, &expires_s, err);
  if (st != ZEROBUS_OK) return st;

  int64_t ttl_ms = expires_s * 1000;
  int64_t margin = req->config ? req->config->token_refresh_margin_ms : 60000;
  if (margin < 0) margin = 0;
  if (margin > ttl_ms / 2) margin = ttl_ms / 2; /* short-lived tokens: refresh at half-life */

  token_entry *e = calloc(1, sizeof *e);
  if (e) {
    e->workspace_url = strdup(req->workspace_url);
    e->client_id = strdup(req->client_id);
    e->table_name = strdup(req->table_name);
    e->secret = zb_secret_dup(req->client_secret);
    e->token = zb_secret_dup(fresh);
    e->refresh_at_ms = fetched_at + ttl_ms - margin;
  }
  pthread_mutex_lock(&c->mu);
  cache_remove_locked(c, req);
  if (e && e->workspace_url && e->client_id && e->table_name && e->secret && e->token) {
    e->next = c->head;
    c->head = e;
    e = NULL;
  }
  pthread_mutex_unlock(&c->mu);
  entry_free(e); /* only when it could not be cached (out of memory) */
  zb_log(req->logger, ZEROBUS_LOG_DEBUG, "OAuth token for %s fetched; expires in %lld s",
         req->table_name, (long long)expires_s);
  *token = fresh;
  return ZEROBUS_OK;
}
