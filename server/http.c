/* zerobus-local: the HTTP side (libmicrohttpd, its own internal thread).
 *
 *   POST   /oidc/v1/token                         OAuth client credentials (PROTOCOL.md)
 *   GET    /api/2.1/unity-catalog/tables/{name}   Unity Catalog table schema
 *   POST   /zerobus-local/faults                  load a fault script (FAULTS.md)
 *   DELETE /zerobus-local/faults                  clear all fault scripts
 *   GET    /zerobus-local/counters                counters JSON
 *   GET    /zerobus-local/health                  "ok"
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "zl.h"

#define MAX_BODY (16 << 20)

static struct MHD_Daemon *g_daemon;
static char *g_tls_cert_pem, *g_tls_key_pem;

typedef struct req_ctx {
  char *body;
  size_t len, cap;
  int too_big;
} req_ctx;

static enum MHD_Result reply(struct MHD_Connection *con, unsigned status, const char *ctype,
                             const char *body) {
  struct MHD_Response *r =
      MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
  if (!r) return MHD_NO;
  MHD_add_response_header(r, "Content-Type", ctype);
  enum MHD_Result ret = MHD_queue_response(con, status, r);
  MHD_destroy_response(r);
  return ret;
}

static enum MHD_Result reply_json(struct MHD_Connection *con, unsigned status, cJSON *j) {
  char *s = cJSON_PrintUnformatted(j);
  enum MHD_Result r = reply(con, status, "application/json", s ? s : "{}");
  free(s);
  cJSON_Delete(j);
  return r;
}

static enum MHD_Result reply_error(struct MHD_Connection *con, unsigned status, const char *error,
                                   const char *desc) {
  cJSON *j = cJSON_CreateObject();
  cJSON_AddStringToObject(j, "error", error);
  cJSON_AddStringToObject(j, "error_description", desc);
  cJSON_AddStringToObject(j, "message", desc);
  return reply_json(con, status, j);
}

/* ------------------------------------------------------------------ form parsing */
static void url_unescape(char *s) {
  char *o = s;
  for (char *p = s; *p; p++) {
    if (*p == '+')
      *o++ = ' ';
    else if (*p == '%' && isxdigit((unsigned char)p[1]) && isxdigit((unsigned char)p[2])) {
      char hex[3] = {p[1], p[2], 0};
      *o++ = (char)strtol(hex, NULL, 16);
      p += 2;
    } else
      *o++ = *p;
  }
  *o = 0;
}

/* Returns a malloc'd, unescaped value of form field `key`, or NULL. */
static char *form_get(const char *body, const char *key) {
  size_t kl = strlen(key);
  const char *p = body;
  while (p && *p) {
    const char *amp = strchr(p, '&');
    size_t seg = amp ? (size_t)(amp - p) : strlen(p);
    if (seg > kl && strncmp(p, key, kl) == 0 && p[kl] == '=') {
      char *v = strndup(p + kl + 1, seg - kl - 1);
      if (v) url_unescape(v);
      return v;
    }
    p = amp ? amp + 1 : NULL;
  }
  return NULL;
}

static int base64_basic(const char *authz, char *id, size_t idcap, char *secret, size_t scap) {
  if (!authz || strncasecmp(authz, "Basic ", 6) != 0) return -1;
  const char *b = authz + 6;
  while (*b == ' ') b++;
  uint8_t *raw = NULL;
  size_t n = 0;
  if (zl_base64_decode(b, &raw, &n) != 0) return -1;
  char *colon = memchr(raw, ':', n);
  int rc = -1;
  if (colon) {
    size_t il = (size_t)(colon - (char *)raw), sl = n - il - 1;
    if (il < idcap && sl < scap) {
      memcpy(id, raw, il);
      id[il] = 0;
      memcpy(secret, colon + 1, sl);
      secret[sl] = 0;
      rc = 0;
    }
  }
  free(raw);
  return rc;
}

/* Finds the TABLE entry of authorization_details; checks CATALOG/SCHEMA entries agree.
 * Returns a malloc'd table name or NULL with err. */
static char *table_from_details(const char *details, char *err, size_t errlen) {
  cJSON *arr = cJSON_Parse(details);
  char *table = NULL;
  if (!cJSON_IsArray(arr)) {
    snprintf(err, errlen, "authorization_details must be a JSON array");
    goto out;
  }
  const char *cat = NULL, *sch = NULL;
  for (cJSON *e = arr->child; e; e = e->next) {
    cJSON *type = cJSON_GetObjectItemCaseSensitive(e, "type");
    cJSON *ot = cJSON_GetObjectItemCaseSensitive(e, "object_type");
    cJSON *path = cJSON_GetObjectItemCaseSensitive(e, "object_full_path");
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "unity_catalog_privileges") != 0 ||
        !cJSON_IsString(ot) || !cJSON_IsString(path)) {
      snprintf(err, errlen,
               "each authorization_details entry needs type=unity_catalog_privileges, "
               "object_type and object_full_path");
      goto out;
    }
    if (!strcasecmp(ot->valuestring, "TABLE")) {
      if (table) {
        snprintf(err, errlen, "authorization_details names more than one TABLE");
        free(table);
        table = NULL;
        goto out;
      }
      table = strdup(path->valuestring);
    } else if (!strcasecmp(ot->valuestring, "CATALOG"))
      cat = path->valuestring;
    else if (!strcasecmp(ot->valuestring, "SCHEMA"))
      sch = path->valuestring;
  }
  if (!table) {
    snprintf(err, errlen, "authorization_details has no TABLE entry");
    goto out;
  }
  if (!table_name_valid(table)) {
    snprintf(err, errlen, "table '%s' is not catalog.schema.table", table);
    free(table);
    table = NULL;
    goto out;
  }
  size_t cl = strcspn(table, ".");
  if ((cat && (strlen(cat) != cl || strncmp(cat, table, cl) != 0)) ||
      (sch && (strncmp(sch, table, strlen(sch)) != 0 || table[strlen(sch)] != '.'))) {
    snprintf(err, errlen, "CATALOG/SCHEMA entries do not match the TABLE entry");
    free(table);
    table = NULL;
  }
out:
  cJSON_Delete(arr);
  return table;
}

static enum MHD_Result handle_token(struct MHD_Connection *con, const char *body) {
  char id[256] = "", secret[256] = "";
  const char *authz = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Authorization");
  if (base64_basic(authz, id, sizeof id, secret, sizeof secret) != 0) {
    /* also accept client_id/client_secret form fields (RFC 6749 2.3.1) */
    char *fid = form_get(body, "client_id"), *fsec = form_get(body, "client_secret");
    if (fid && fsec) {
      snprintf(id, sizeof id, "%s", fid);
      snprintf(secret, sizeof secret, "%s", fsec);
    }
    free(fid);
    free(fsec);
  }
  if (!id[0] || strcmp(id, g_cfg.client_id) != 0 || strcmp(secret, g_cfg.client_secret) != 0)
    return reply_error(con, MHD_HTTP_UNAUTHORIZED, "invalid_client",
                       "Client authentication failed (bad or missing client id/secret)");
  char *grant = form_get(body, "grant_type");
  int grant_ok = grant && strcmp(grant, "client_credentials") == 0;
  free(grant);
  if (!grant_ok)
    return reply_error(con, MHD_HTTP_BAD_REQUEST, "unsupported_grant_type",
                       "grant_type must be client_credentials");
  char *details = form_get(body, "authorization_details");
  char *table = NULL;
  char err[200];
  if (details) {
    table = table_from_details(details, err, sizeof err);
    free(details);
    if (!table) return reply_error(con, MHD_HTTP_BAD_REQUEST, "invalid_request", err);
  }
  char *tok = auth_issue_token(table, g_cfg.token_ttl);
  free(table);
  if (!tok) return reply_error(con, 500, "server_error", "cannot issue a token");
  cJSON *j = cJSON_CreateObject();
  cJSON_AddStringToObject(j, "access_token", tok);
  cJSON_AddStringToObject(j, "token_type", "Bearer");
  cJSON_AddNumberToObject(j, "expires_in", (double)g_cfg.token_ttl);
  cJSON_AddStringToObject(j, "scope", "all-apis");
  free(tok);
  return reply_json(con, MHD_HTTP_OK, j);
}

static enum MHD_Result handle_uc(struct MHD_Connection *con, const char *name_raw) {
  if (!g_cfg.no_auth &&
      auth_check_bearer(MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Authorization")) != 0)
    return reply_error(con, MHD_HTTP_UNAUTHORIZED, "UNAUTHENTICATED",
                       "a valid Bearer token from /oidc/v1/token is required");
  char name[800];
  snprintf(name, sizeof name, "%s", name_raw);
  url_unescape(name); /* libmicrohttpd unescapes already; a second pass is harmless for names */
  zl_table *t = tables_get(name, 0);
  cJSON *cols = NULL;
  if (t) {
    /* uc_columns is replaced only at startup; duplicate under no lock is fine then */
    cols = t->uc_columns ? cJSON_Duplicate(t->uc_columns, 1) : NULL;
  }
  if (!cols) {
    char msg[900];
    snprintf(msg, sizeof msg, "Table '%s' does not exist.", name);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "error_code", "TABLE_DOES_NOT_EXIST");
    cJSON_AddStringToObject(j, "message", msg);
    return reply_json(con, MHD_HTTP_NOT_FOUND, j);
  }
  cJSON *j = cJSON_CreateObject();
  const char *last = strrchr(name, '.');
  cJSON_AddStringToObject(j, "name", last ? last + 1 : name);
  char cat[300] = "", sch[300] = "";
  sscanf(name, "%299[^.].%299[^.]", cat, sch);
  cJSON_AddStringToObject(j, "catalog_name", cat);
  cJSON_AddStringToObject(j, "schema_name", sch);
  cJSON_AddStringToObject(j, "full_name", name);
  cJSON_AddStringToObject(j, "table_type", "MANAGED");
  cJSON_AddStringToObject(j, "data_source_format", "DELTA");
  cJSON_AddItemToObject(j, "columns", cols);
  return reply_json(con, MHD_HTTP_OK, j);
}

typedef struct counters_ctx {
  cJSON *tables;
} counters_ctx;

static void add_table_counters(zl_table *t, void *arg) {
  counters_ctx *cc = arg;
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "create_attempts", (double)atomic_load(&t->c.create_attempts));
  cJSON_AddNumberToObject(o, "creates", (double)atomic_load(&t->c.creates));
  cJSON_AddNumberToObject(o, "requests", (double)atomic_load(&t->c.requests));
  cJSON_AddNumberToObject(o, "records", (double)atomic_load(&t->c.records));
  cJSON_AddNumberToObject(o, "bytes", (double)atomic_load(&t->c.bytes));
  cJSON_AddNumberToObject(o, "acks_sent", (double)atomic_load(&t->c.acks_sent));
  cJSON_AddNumberToObject(o, "auth_failures", (double)atomic_load(&t->c.auth_failures));
  cJSON_AddItemToObject(cc->tables, t->name, o);
}

static enum MHD_Result handle_counters(struct MHD_Connection *con) {
  cJSON *j = cJSON_CreateObject();
  cJSON_AddNumberToObject(j, "connections", (double)atomic_load(&g_counters.connections));
  cJSON_AddNumberToObject(j, "calls", (double)atomic_load(&g_counters.calls));
  cJSON_AddNumberToObject(j, "creates", (double)atomic_load(&g_counters.creates));
  cJSON_AddNumberToObject(j, "create_attempts", (double)atomic_load(&g_counters.create_attempts));
  cJSON_AddNumberToObject(j, "requests", (double)atomic_load(&g_counters.requests));
  cJSON_AddNumberToObject(j, "records", (double)atomic_load(&g_counters.records));
  cJSON_AddNumberToObject(j, "bytes", (double)atomic_load(&g_counters.bytes));
  cJSON_AddNumberToObject(j, "acks_sent", (double)atomic_load(&g_counters.acks_sent));
  counters_ctx cc = {cJSON_CreateObject()};
  tables_foreach(add_table_counters, &cc);
  cJSON_AddItemToObject(j, "tables", cc.tables);
  cJSON_AddNumberToObject(j, "tokens_issued", (double)atomic_load(&g_counters.tokens_issued));
  cJSON_AddNumberToObject(j, "live_calls", (double)grpc_live_calls());
  return reply_json(con, MHD_HTTP_OK, j);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *con, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls) {
  (void)cls;
  (void)version;
  req_ctx *ctx = *con_cls;
  if (!ctx) {
    ctx = calloc(1, sizeof *ctx);
    if (!ctx) return MHD_NO;
    *con_cls = ctx;
    return MHD_YES;
  }
  if (*upload_size) {
    if (ctx->len + *upload_size > MAX_BODY)
      ctx->too_big = 1;
    else {
      if (ctx->len + *upload_size + 1 > ctx->cap) {
        size_t ncap = (ctx->len + *upload_size + 1) * 2;
        char *n = realloc(ctx->body, ncap);
        if (!n) return MHD_NO;
        ctx->body = n;
        ctx->cap = ncap;
      }
      memcpy(ctx->body + ctx->len, upload, *upload_size);
      ctx->len += *upload_size;
      ctx->body[ctx->len] = 0;
    }
    *upload_size = 0;
    return MHD_YES;
  }
  if (ctx->too_big) return reply_error(con, 413, "request_too_large", "request body too large");
  const char *body = ctx->body ? ctx->body : "";
  static const char UC[] = "/api/2.1/unity-catalog/tables/";
  if (!strcmp(url, "/oidc/v1/token")) {
    if (strcmp(method, "POST")) return reply_error(con, 405, "invalid_request", "use POST");
    return handle_token(con, body);
  }
  if (!strncmp(url, UC, sizeof UC - 1)) {
    if (strcmp(method, "GET")) return reply_error(con, 405, "invalid_request", "use GET");
    return handle_uc(con, url + sizeof UC - 1);
  }
  if (!strcmp(url, "/zerobus-local/faults")) {
    if (!strcmp(method, "DELETE")) {
      faults_clear_all();
      return reply(con, MHD_HTTP_OK, "application/json", "{\"ok\":true}");
    }
    if (!strcmp(method, "POST") || !strcmp(method, "PUT")) {
      char err[300];
      if (faults_load(body, err, sizeof err) != 0)
        return reply_error(con, MHD_HTTP_BAD_REQUEST, "invalid_fault_script", err);
      return reply(con, MHD_HTTP_OK, "application/json", "{\"ok\":true}");
    }
    return reply_error(con, 405, "invalid_request", "use POST or DELETE");
  }
  if (!strcmp(url, "/zerobus-local/counters")) return handle_counters(con);
  if (!strcmp(url, "/zerobus-local/health")) return reply(con, MHD_HTTP_OK, "text/plain", "ok");
  return reply_error(con, MHD_HTTP_NOT_FOUND, "not_found", "no such endpoint");
}

static void on_completed(void *cls, struct MHD_Connection *con, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  (void)cls;
  (void)con;
  (void)toe;
  req_ctx *ctx = *con_cls;
  if (ctx) {
    free(ctx->body);
    free(ctx);
    *con_cls = NULL;
  }
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *b = n >= 0 ? malloc((size_t)n + 1) : NULL;
  if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
    free(b);
    b = NULL;
  }
  if (b) b[n] = 0;
  fclose(f);
  return b;
}

int http_side_start(char *err, size_t errlen) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) {
    snprintf(err, errlen, "socket: failed");
    return -1;
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)g_cfg.http_port);
  if (inet_pton(AF_INET, g_cfg.host, &sa.sin_addr) != 1) {
    snprintf(err, errlen, "--host %s: not an IPv4 address", g_cfg.host);
    close(fd);
    return -1;
  }
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 128) != 0) {
    snprintf(err, errlen, "cannot listen on %s:%d (HTTP)", g_cfg.host, g_cfg.http_port);
    close(fd);
    return -1;
  }
  socklen_t sl = sizeof sa;
  getsockname(fd, (struct sockaddr *)&sa, &sl);
  g_cfg.http_port = ntohs(sa.sin_port);
  unsigned flags =
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG;
  if (g_cfg.tls_cert) {
    g_tls_cert_pem = slurp(g_cfg.tls_cert);
    g_tls_key_pem = slurp(g_cfg.tls_key);
    if (!g_tls_cert_pem || !g_tls_key_pem) {
      snprintf(err, errlen, "cannot read --tls-cert/--tls-key");
      close(fd);
      return -1;
    }
    flags |= MHD_USE_TLS;
    g_daemon =
        MHD_start_daemon(flags, 0, NULL, NULL, on_request, NULL, MHD_OPTION_LISTEN_SOCKET, fd,
                         MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_HTTPS_MEM_CERT,
                         g_tls_cert_pem, MHD_OPTION_HTTPS_MEM_KEY, g_tls_key_pem, MHD_OPTION_END);
  } else {
    g_daemon =
        MHD_start_daemon(flags, 0, NULL, NULL, on_request, NULL, MHD_OPTION_LISTEN_SOCKET, fd,
                         MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
  }
  if (!g_daemon) {
    snprintf(err, errlen, "libmicrohttpd failed to start%s",
             g_cfg.tls_cert ? " (TLS: check the PEM files)" : "");
    close(fd);
    return -1;
  }
  return 0;
}

void http_side_stop(void) {
  if (g_daemon) MHD_stop_daemon(g_daemon);
  g_daemon = NULL;
  free(g_tls_cert_pem);
  free(g_tls_key_pem);
}
