/*
 * internal.h - declarations shared between libzerobus modules. Never installed.
 *
 * Ownership of modules (one job each):
 *   error.c      zerobus_error objects, status names, gRPC-status mapping
 *   options.c    the option table, zerobus_options, typed zb_config
 *   log.c        leveled logging with token redaction, ZEROBUS_LOG
 *   endpoint.c   endpoint / workspace URL parsing
 *   proxy.c      proxy selection from options and environment
 *   auth.c       OAuth client-credentials tokens with a cache (libcurl + cJSON)
 *   json_check.c fast validation of JSON records (UTF-8, one object)
 *   headers.c    zerobus_headers (headers provider output)
 *   api.c        version functions, zerobus_get_api table, zerobus_callbacks_init
 *   sdk.c, stream.c, transport.c, events.c, records.c   the stream engine
 */
#ifndef ZEROBUS_INTERNAL_H
#define ZEROBUS_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "zerobus_abi.h"

#define ZB_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define ZB_UNUSED(x) ((void)(x))

/* ------------------------------------------------------------------ errors */

/* The definition lives here so engine modules can build errors cheaply. */
struct zerobus_error {
  int32_t code;        /* zerobus_status */
  int32_t retryable;   /* 0/1 */
  int32_t grpc_status; /* -1 when none */
  int32_t http_status; /* -1 when none */
  char *message;       /* never NULL; already redacted */
};

/* New error; message formatted then passed through zb_redact(). Returns NULL only
 * when out of memory. */
zerobus_error *zb_error_new(int32_t code, int32_t retryable, int32_t grpc_status,
                            int32_t http_status, const char *fmt, ...) ZB_PRINTF(5, 6);
zerobus_error *zb_error_newv(int32_t code, int32_t retryable, int32_t grpc_status,
                             int32_t http_status, const char *fmt, va_list ap);
/* Builds an error into *err (when err != NULL) and returns `code`. */
zerobus_status zb_fail(zerobus_error **err, int32_t code, int32_t retryable, const char *fmt, ...)
    ZB_PRINTF(4, 5);
/* Copies `src` into *err (when err != NULL) and returns src's code (or
 * ZEROBUS_ERR_INTERNAL for NULL src). */
zerobus_status zb_fail_copy(zerobus_error **err, const zerobus_error *src);
/* Wraps `cause`: new error with `code`, `retryable`, cause's grpc/http status and
 * message "<prefix>: <cause message>". */
zerobus_error *zb_error_wrap(int32_t code, int32_t retryable, const zerobus_error *cause,
                             const char *prefix);
/* PROTOCOL.md: non-retryable gRPC statuses are INVALID_ARGUMENT(3),
 * UNAUTHENTICATED(16), PERMISSION_DENIED(7), NOT_FOUND(5), OUT_OF_RANGE(11),
 * UNIMPLEMENTED(12); every other status is retryable. */
int zb_grpc_status_retryable(int grpc_code);
/* gRPC status -> zerobus_status (16->UNAUTHENTICATED, 7->PERMISSION_DENIED,
 * 5->NOT_FOUND, 3/11->SERVER_REJECTED, 14->UNAVAILABLE, 12->UNIMPLEMENTED,
 * others->SERVER). */
zerobus_status zb_status_from_grpc(int grpc_code);
/* Error for a gRPC status with a helpful message (e.g. UNAUTHENTICATED says to
 * check client id/secret and grants; PERMISSION_DENIED names the grants needed on
 * `table`). `details` is the server's status message (may be NULL). */
zerobus_error *zb_error_from_grpc(int grpc_code, const char *details, const char *table);
/* The grants a principal needs to write `table` ("cat.sch.tbl"), as a phrase for
 * messages: "USE CATALOG on cat, USE SCHEMA on cat.sch, and SELECT and MODIFY on
 * cat.sch.tbl" (placeholders when `table` is not three parts). Truncated to `cap`. */
void zb_table_grants(const char *table, char *buf, size_t cap);

/* ----------------------------------------------------------------- options */

#define ZB_RECORD_TYPE_PROTO 1
#define ZB_RECORD_TYPE_JSON 2

/* Every option, typed. -1 in a *_ms field marked "none" means None. */
typedef struct zb_config {
  /* stream scope */
  int32_t record_type;                    /* ZB_RECORD_TYPE_* ; default PROTO */
  int64_t max_inflight_records;           /* 1,000,000 */
  int64_t max_inflight_bytes;             /* 256 MiB */
  int64_t max_request_bytes;              /* 10 MiB - 16 KiB */
  int32_t recovery;                       /* 1 */
  int32_t recovery_retries;               /* 4 */
  int64_t recovery_timeout_ms;            /* 15000 */
  int64_t recovery_backoff_ms;            /* 2000 */
  int64_t server_lack_of_ack_timeout_ms;  /* 60000 */
  int64_t flush_timeout_ms;               /* 300000 */
  int64_t stream_paused_max_wait_time_ms; /* -1 = none (server duration) */
  int64_t callback_max_wait_time_ms;      /* 5000; -1 = none (forever) */
  int32_t validate_json;                  /* 1 */
  int32_t dispatch_thread;                /* 0: callbacks via zerobus_stream_poll */
  int32_t log_level;                      /* from ZEROBUS_LOG / RUST_LOG, else WARN */
  /* sdk scope */
  char *tls_ca_file;               /* NULL = system roots */
  char *tls_ca_dir;                /* NULL */
  char *tls_target_name;           /* NULL; overrides the name checked in the cert */
  char *proxy;                     /* NULL = environment; "none" or "" = no proxy */
  char *application_name;          /* NULL; appended to x-zerobus-sdk */
  int64_t token_timeout_ms;        /* 10000: bound of one token request */
  int64_t token_refresh_margin_ms; /* 60000: refresh this long before expiry */
} zb_config;

/* Fills defaults (log_level honours ZEROBUS_LOG / RUST_LOG). */
void zb_config_defaults(zb_config *c);
/* Deep copy (strings duplicated). */
zerobus_status zb_config_copy(zb_config *dst, const zb_config *src);
/* Applies every key set in `opts` (NULL allowed) whose scope is in `scopes`:
 * "sdk", "stream" or "sdk,stream". Keys of another scope are refused with
 * ZEROBUS_ERR_INVALID_OPTION and a message saying where they belong. */
zerobus_status zb_config_apply(zb_config *c, const zerobus_options *opts, const char *scopes,
                               zerobus_error **err);
void zb_config_free(zb_config *c);

/* --------------------------------------------------------------------- log */

/* Where log lines go. The engine points sink at the stream's event queue;
 * NULL sink means stderr ("zerobus[LEVEL] message"). */
typedef struct zb_logger {
  int32_t level;
  void (*sink)(void *ctx, int32_t level, const char *message);
  void *ctx;
} zb_logger;

/* Formats, redacts and emits when level <= lg->level. lg may be NULL (stderr at
 * the environment's level). */
void zb_log(const zb_logger *lg, int32_t level, const char *fmt, ...) ZB_PRINTF(3, 4);
/* Level from ZEROBUS_LOG, else RUST_LOG ("error".."trace", "off", or a digit),
 * else ZEROBUS_LOG_WARN. */
int32_t zb_log_env_level(void);
/* Replaces secrets in place: the value after "Bearer ", after "access_token"
 * (JSON or form), "client_secret" and "authorization" become "[REDACTED]".
 * Returns a new malloc'd string. */
char *zb_redact(const char *text);
/* Parses "error", "warn", ... or a digit; -1 if invalid. */
int32_t zb_log_level_parse(const char *s);

/* ---------------------------------------------------------------- endpoint */

typedef struct zb_endpoint {
  char *host;         /* "abc.zerobus.region.cloud.databricks.com" or "127.0.0.1" */
  int32_t port;       /* 443 by default for TLS, 80 for http:// without port */
  int32_t tls;        /* 0 for http:// */
  char *target;       /* "host:port" for grpc_channel_create */
  char *workspace_id; /* first DNS label of host */
} zb_endpoint;

/* Accepts "host[:port]", "https://host[:port][/]", "http://host[:port][/]",
 * IPv6 "[::1]:port". INVALID_ARGUMENT with a clear message otherwise. */
zerobus_status zb_endpoint_parse(const char *text, zb_endpoint *out, zerobus_error **err);
void zb_endpoint_free(zb_endpoint *e);
/* Workspace URL: must be http(s)://host[:port][/...]; returns a malloc'd copy
 * without trailing '/'. */
zerobus_status zb_workspace_url_normalize(const char *text, char **out, zerobus_error **err);

/* ------------------------------------------------------------------- proxy */

/* The proxy URL to use for `host` (malloc'd), or NULL for a direct connection.
 * `explicit_proxy` (the "proxy" option) wins when non-NULL ("" / "none" = direct);
 * otherwise PROTOCOL.md's environment variables and bypass list apply. */
char *zb_proxy_for_host(const char *host, const char *explicit_proxy);
/* True if `host` matches the comma list `no_proxy` (PROTOCOL.md rules). */
int zb_no_proxy_match(const char *host, const char *no_proxy);

/* -------------------------------------------------------------------- auth */

typedef struct zb_token_cache zb_token_cache; /* thread-safe; one per SDK */

typedef struct zb_auth_request {
  const char *workspace_url; /* normalized */
  const char *workspace_id;
  const char *client_id;
  const char *client_secret;
  const char *table_name;
  const zb_config *config; /* timeouts, TLS CA, proxy */
  const zb_logger *logger;
} zb_auth_request;

zb_token_cache *zb_token_cache_new(void);
void zb_token_cache_free(zb_token_cache *c); /* zeroes tokens */
/* Returns a token (malloc'd; caller zeroes and frees with zb_secret_free) from the
 * cache or from POST {workspace_url}/oidc/v1/token. Errors: UNAUTHENTICATED (4xx,
 * not retryable, message names the grants needed on the table), TOKEN (network,
 * 5xx: retryable; body without access_token: not retryable), INVALID_ARGUMENT
 * (table name not three parts). Never puts a token or secret in a message. */
zerobus_status zb_token_get(zb_token_cache *c, const zb_auth_request *req, char **token,
                            zerobus_error **err);
/* Drops the cached token for (workspace, client id, table). */
void zb_token_invalidate(zb_token_cache *c, const zb_auth_request *req);
/* Builds the form body (exposed for tests and fuzzing); malloc'd. */
char *zb_token_form_body(const char *workspace_id, const char *table_name);
/* Parses a token endpoint response body (exposed for fuzzing). On success
 * *token is malloc'd and *expires_in_s set (default 3600 when absent). */
zerobus_status zb_token_parse_response(const char *body, size_t len, char **token,
                                       int64_t *expires_in_s, zerobus_error **err);
/* Zeroes then frees. NULL allowed. */
void zb_secret_free(char *s);
/* strdup that the caller must free with zb_secret_free. */
char *zb_secret_dup(const char *s);
/* Checks "a.b.c" with three non-empty parts. */
int zb_table_name_valid(const char *name);

/* -------------------------------------------------------------- json check */

/* ZEROBUS_OK when data[0..len) is valid UTF-8 holding exactly one JSON object
 * (surrounding whitespace allowed). Otherwise INVALID_RECORD (not retryable) with
 * the byte position and reason. No allocation; depth limited to 512. */
zerobus_status zb_json_check_object(const char *data, size_t len, zerobus_error **err);

/* ----------------------------------------------------------------- headers */

typedef struct zb_header {
  char *key;
  char *value;
} zb_header;

struct zerobus_headers {
  zb_header *items;
  size_t count, cap;
  int32_t failed;    /* zerobus_headers_fail was called */
  int32_t retryable; /* from zerobus_headers_fail */
  char *message;     /* from zerobus_headers_fail */
};

void zb_headers_init(zerobus_headers *h);
/* Frees everything; values zeroed first (they may hold tokens). */
void zb_headers_clear(zerobus_headers *h);
/* Value of `key` (lowercase), or NULL. */
const char *zb_headers_get(const zerobus_headers *h, const char *key);
/* Checks a provider's result: rc and failure flag, the two required keys, key
 * syntax (lowercase token chars) and value (no CR/LF/NUL). Returns
 * HEADERS_PROVIDER (retryable unless the provider said otherwise). */
zerobus_status zb_headers_validate(const zerobus_headers *h, int32_t rc, zerobus_error **err);

/* --------------------------------------------------------------- utilities */

/* Monotonic clock in milliseconds. */
int64_t zb_now_ms(void);
/* "libzerobus/<version>" plus " <application_name>" when set; malloc'd. */
char *zb_sdk_header_value(const char *application_name);

#endif /* ZEROBUS_INTERNAL_H */
