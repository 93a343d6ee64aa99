/*
 * options.c - the option table, zerobus_options objects and the typed zb_config.
 *
 * One static table describes every option: name (the zb_config field name), type,
 * canonical default, scope and a one-line doc. zerobus_options_set() validates a
 * value and stores its canonical text; zb_config_apply() turns stored texts into
 * typed fields and checks the constraints that involve several options or the
 * file system. Values are parsed strictly: no surrounding blanks, no trailing junk.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define MIB (1024LL * 1024LL)
#define MAX_DURATION_MS 2147483647LL /* the int32 timeouts of the C API */

typedef enum option_kind {
  K_INT,         /* integer in [min, max] */
  K_BOOL,        /* true/false/1/0/yes/no/on/off */
  K_DURATION,    /* integer milliseconds in [min, max]; "none" when allow_none */
  K_RECORD_TYPE, /* proto/json/1/2 */
  K_LOG_LEVEL,   /* off/error/warn/info/debug/trace or 0..5 */
  K_FILE,        /* path to a readable file */
  K_DIR,         /* path to a readable directory */
  K_TEXT,        /* printable ASCII (sent in a header or used as a name) */
  K_PROXY        /* "none" or [http://][user:pass@]host[:port] */
} option_kind;

typedef struct option_def {
  const char *name;
  const char *type; /* as reported by zerobus_option_info */
  const char *default_value;
  const char *scope; /* "sdk" or "stream" */
  const char *doc;
  option_kind kind;
  size_t offset;  /* of the zb_config field */
  int field_size; /* 4 or 8 for numbers, 0 for strings */
  int64_t min, max;
  int allow_none;
} option_def;

#define NUM(field) offsetof(zb_config, field), (int)sizeof(((zb_config *)0)->field)
#define STR(field) offsetof(zb_config, field), 0

static const option_def k_options[] = {
    {"record_type", "enum", "proto", "stream",
     "record encoding of the stream: proto (serialized protobuf) or json (one JSON object per "
     "record)",
     K_RECORD_TYPE, NUM(record_type), 1, 2, 0},
    {"max_inflight_records", "int", "1000000", "stream",
     "records held unacknowledged before ingest blocks (or fails with QUEUE_FULL)", K_INT,
     NUM(max_inflight_records), 1, 1000000000LL, 0},
    {"max_inflight_bytes", "int", "268435456", "stream",
     "payload bytes held unacknowledged before ingest blocks (or fails with QUEUE_FULL)", K_INT,
     NUM(max_inflight_bytes), 1, 1LL << 40, 0},
    {"max_request_bytes", "int", "10469376", "stream",
     "largest gRPC request the stream sends (at most 10 MiB); larger records are refused", K_INT,
     NUM(max_request_bytes), 1, 10 * MIB, 0},
    {"recovery", "bool", "true", "stream",
     "reconnect and resend unacknowledged records after a retryable failure", K_BOOL, NUM(recovery),
     0, 1, 0},
    {"recovery_retries", "int", "4", "stream",
     "reconnection attempts after the first one before the stream fails (0..1000)", K_INT,
     NUM(recovery_retries), 0, 1000, 0},
    {"recovery_timeout_ms", "duration_ms", "15000", "stream",
     "time bound of one connection attempt (stream creation or recovery)", K_DURATION,
     NUM(recovery_timeout_ms), 1, MAX_DURATION_MS, 0},
    {"recovery_backoff_ms", "duration_ms", "2000", "stream",
     "pause between two connection attempts", K_DURATION, NUM(recovery_backoff_ms), 0,
     MAX_DURATION_MS, 0},
    {"server_lack_of_ack_timeout_ms", "duration_ms", "60000", "stream",
     "with records in flight, a call silent this long is treated as dead and recovered", K_DURATION,
     NUM(server_lack_of_ack_timeout_ms), 1, MAX_DURATION_MS, 0},
    {"flush_timeout_ms", "duration_ms", "300000", "stream",
     "time bound of flush(), close()'s flush and wait_for_offset() without a timeout", K_DURATION,
     NUM(flush_timeout_ms), 1, MAX_DURATION_MS, 0},
    {"stream_paused_max_wait_time_ms", "duration_ms", "none", "stream",
     "after a server close signal, wait at most this long before reconnecting (none = the "
     "server's duration, 0 = at once)",
     K_DURATION, NUM(stream_paused_max_wait_time_ms), 0, MAX_DURATION_MS, 1},
    {"callback_max_wait_time_ms", "duration_ms", "5000", "stream",
     "close() waits this long for queued callbacks on the dispatcher thread (none = forever)",
     K_DURATION, NUM(callback_max_wait_time_ms), 0, MAX_DURATION_MS, 1},
    {"validate_json", "bool", "true", "stream",
     "check that each JSON record is one valid UTF-8 JSON object at the ingest call", K_BOOL,
     NUM(validate_json), 0, 1, 0},
    {"dispatch_thread", "bool", "false", "stream",
     "run callbacks on a per-stream dispatcher thread instead of in zerobus_stream_poll()", K_BOOL,
     NUM(dispatch_thread), 0, 1, 0},
    {"log_level", "enum", "warn", "stream",
     "log level: off, error, warn, info, debug or trace (default from ZEROBUS_LOG or RUST_LOG, "
     "else warn)",
     K_LOG_LEVEL, NUM(log_level), 0, 5, 0},
    {"tls_ca_file", "path", "", "sdk",
     "PEM file of CA certificates to trust instead of the system roots", K_FILE, STR(tls_ca_file),
     0, 0, 0},
    {"tls_ca_dir", "path", "", "sdk",
     "directory of CA certificates (*.pem, *.crt) trusted instead of the system roots", K_DIR,
     STR(tls_ca_dir), 0, 0, 0},
    {"tls_target_name", "string", "", "sdk",
     "host name checked in the server certificate instead of the endpoint's host", K_TEXT,
     STR(tls_target_name), 0, 0, 0},
    {"proxy", "string", "", "sdk",
     "HTTP CONNECT proxy URL (http://host:port); unset = from grpc_proxy/https_proxy/http_proxy "
     "and no_proxy; none = direct",
     K_PROXY, STR(proxy), 0, 0, 0},
    {"application_name", "string", "", "sdk",
     "name appended to the x-zerobus-sdk header (printable ASCII)", K_TEXT, STR(application_name),
     0, 0, 0},
    {"token_timeout_ms", "duration_ms", "10000", "sdk", "time bound of one OAuth token request",
     K_DURATION, NUM(token_timeout_ms), 1, MAX_DURATION_MS, 0},
    {"token_refresh_margin_ms", "duration_ms", "60000", "sdk",
     "fetch a new OAuth token this long before the cached one expires", K_DURATION,
     NUM(token_refresh_margin_ms), 0, MAX_DURATION_MS, 0},
};
#define OPTION_COUNT (sizeof k_options / sizeof k_options[0])

/* Canonical values (malloc'd) of the keys set; NULL = default. */
struct zerobus_options {
  char *values[OPTION_COUNT];
};

static const char *const k_level_names[] = {"off", "error", "warn", "info", "debug", "trace"};

/* ------------------------------------------------------------ lookup */

static int option_index(const char *key) {
  for (size_t i = 0; i < OPTION_COUNT; i++)
    if (strcmp(k_options[i].name, key) == 0) return (int)i;
  return -1;
}

/* Case-insensitive edit distance, capped (keys are short). */
static size_t edit_distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > 63 || lb > 63) return 99;
  size_t prev[64], cur[64];
  for (size_t j = 0; j <= lb; j++) prev[j] = j;
  for (size_t i = 1; i <= la; i++) {
    cur[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t cost = tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 1]) ? 0 : 1;
      size_t best = prev[j - 1] + cost;
      if (prev[j] + 1 < best) best = prev[j] + 1;
      if (cur[j - 1] + 1 < best) best = cur[j - 1] + 1;
      cur[j] = best;
    }
    memcpy(prev, cur, (lb + 1) * sizeof prev[0]);
  }
  return prev[lb];
}

/* The closest known key when it is plausibly a typo, else NULL. */
static const char *suggest_key(const char *key) {
  const char *best = NULL;
  size_t best_d = 99, klen = strlen(key);
  for (size_t i = 0; i < OPTION_COUNT; i++) {
    size_t d = edit_distance(key, k_options[i].name);
    if (d < best_d) {
      best_d = d;
      best = k_options[i].name;
    }
  }
  size_t limit = klen / 3 > 2 ? klen / 3 : 2;
  if (best && best_d <= limit) return best;
  /* "timeout" for "recovery_timeout_ms": a key contained in a known one. */
  if (klen >= 5)
    for (size_t i = 0; i < OPTION_COUNT; i++)
      if (strstr(k_options[i].name, key)) return k_options[i].name;
  return NULL;
}

static zerobus_status unknown_option(const char *key, zerobus_error **err) {
  const char *s = suggest_key(key);
  if (s)
    return zb_fail(err, ZEROBUS_ERR_UNKNOWN_OPTION, 0,
                   "unknown option '%s'; did you mean '%s'? (zerobus_option_info lists every key)",
                   key, s);
  return zb_fail(err, ZEROBUS_ERR_UNKNOWN_OPTION, 0,
                 "unknown option '%s' (zerobus_option_info lists every key)", key);
}

/* ------------------------------------------------------------ value parsing */

/* Strict decimal integer: optional '-', digits, nothing else. */
static int parse_int64(const char *s, int64_t *out) {
  const char *p = s;
  if (*p == '-') p++;
  if (!isdigit((unsigned char)*p)) return 0;
  for (const char *q = p; *q; q++)
    if (!isdigit((unsigned char)*q)) return 0;
  errno = 0;
  char *end = NULL;
  long long v = strtoll(s, &end, 10);
  if (errno == ERANGE || !end || *end) return 0;
  *out = v;
  return 1;
}

static int parse_bool(const char *s, int64_t *out) {
  static const char *const yes[] = {"true", "1", "yes", "on"};
  static const char *const no[] = {"false", "0", "no", "off"};
  for (size_t i = 0; i < 4; i++) {
    if (strcasecmp(s, yes[i]) == 0) return *out = 1, 1;
    if (strcasecmp(s, no[i]) == 0) return *out = 0, 1;
  }
  return 0;
}

static int text_printable(const char *s) {
  for (; *s; s++)
    if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e) return 0;
  return 1;
}

static int proxy_valid(const char *s) {
  if (strcmp(s, "none") == 0) return 1;
  const char *p = s;
  const char *sep = strstr(s, "://");
  if (sep) {
    if ((size_t)(sep - s) != 4 || strncasecmp(s, "http", 4) != 0) return 0;
    p = sep + 3;
  }
  const char *at = strrchr(p, '@');
  if (at) p = at + 1;
  if (!*p || *p == ':' || *p == '/') return 0;
  for (const char *q = s; *q; q++)
    if ((unsigned char)*q <= 0x20 || (unsigned char)*q > 0x7e) return 0;
  const char *colon = strrchr(p, ':');
  if (colon && !strchr(colon, ']')) { /* a port: digits, optional trailing '/' */
    const char *d = colon + 1;
    if (!isdigit((unsigned char)*d)) return 0;
    long port = strtol(d, (char **)&d, 10);
    if (port < 1 || port > 65535 || (*d && strcmp(d, "/") != 0)) return 0;
  }
  return 1;
}

/* Validates `raw` for option `d`; on success *canon is its malloc'd canonical text,
 * or NULL meaning "back to the default" (an empty path/name). */
static zerobus_status parse_value(const option_def *d, const char *raw, char **canon,
                                  zerobus_error **err) {
  char buf[32];
  int64_t v = 0;
  *canon = NULL;
  switch (d->kind) {
    case K_INT:
    case K_DURATION:
      if (d->allow_none && strcasecmp(raw, "none") == 0) {
        *canon = strdup("none");
        break;
      }
      if (!parse_int64(raw, &v))
        return zb_fail(err, ZEROBUS_ERR_INVALID_OPTION, 0,
                       "option '%s': '%s' is not an integer%s (accepted: %s%" PRId64 "..%" PRId64
                       ")",
                       d->name, raw, d->kind == K_DURATION ? " number of milliseconds" : "",
                       d->allow_none ? "\"none\" or " : "", d->min, d->max);
      if (v < d->min || v > d->max)
        return zb_fail(err, ZEROBUS_ERR_INVALID_OPTION, 0,
                       "option '%s': %" PRId64 " is out of range (accepted: %s%" PRId64 "..%" PRId64
                       ")",
                       d->name, v, d->allow_none ? "\"none\" or " : "", d->min, d->max);
      snprintf(buf, sizeof buf, "%" PRId64, v);
      *canon = strdup(buf);
      break;
    case K_BOOL:
      if (!parse_bool(raw, &v))
        return zb_fail(err, ZEROBUS_ERR_INVALID_OPTION, 0,
                       "option '%s': '%s' is not a boolean (accepted: true/false, 1/0, yes/no, "
                       "on/off)",
                       d->name, raw);
      *canon = strdup(v ? "true" : "false");
      break;
    case K_RECORD_TYPE:
      if (strcasecmp(raw, "proto") == 0 || strcmp(raw, "1") == 0)
        *canon = strdup("proto");
      else if (strcasecmp(raw, "json") == 0 || strcmp(raw, "2") == 0)
        *canon = strdup("json");
      else
        return zb_fail(err, ZEROBUS_ERR_INVALID_OPTION, 0,
                       "option '%s': '%s' is not a record type (accepted: proto or json, or 1/2)",
                       d->name, raw);
      break;
    case K_LOG_LEVEL: {
      int32_t lv = zb_log_level_parse(raw);
      if (lv < 0 || strpbrk(raw, " \t\r\n"))
        return zb_fail(err, ZEROBUS_ERR_INVALID_OPTION, 0,
                       "option '%s': '%s' is not a log level (accepted: off, error, warn, info, "
                       "debug, trace, or 0..5)",
                       d->name, raw);
      *canon = strdup(k_level_names[lv]);
      break;
    }
    case K_FILE:
    case K_DIR:
      if (!*raw) return ZEROBUS_OK; /* back to the default */
      if (strchr(raw, '\n'))
        return zb_fail(err, ZEROBUS_ERR_INVALID_OPTION, 0,
                       "option '%s': the path contains a line break", d->name);
      *canon = strdup(raw);
      break;
    case K_TEXT:
      if (!*raw) return ZEROBUS_OK;
      if (!text_printable(raw) || strlen(raw) > 256)
        return zb_fail(err, ZEROBUS_ERR_INVALID_OPTION, 0,
                       "option '%s': the value must be printable ASCII of at most 256 characters",
                       d->name);
      if (d->offset == offsetof(zb_config, tls_target_name) && strchr(raw, ' '))
        return zb_fail(err, ZEROBUS_ERR_INVALID_OPTION, 0, "option '%s': '%s' is not a host name",
                       d->name, raw);
      *canon = strdup(raw);
      break;
    case K_PROXY:
      if (!*raw || strcasecmp(raw, "none") == 0) {
        *canon = strdup("none");
        break;
      }
      if (!proxy_valid(raw))
        return zb_fail(err, ZEROBUS_ERR_INVALID_OPTION, 0,
                       "option '%s': '%s' is not a proxy (accepted: none, or "
                       "http://[user:password@]host[:port])",
                       d->name, raw);
      *canon = strdup(raw);
      break;
  }
  if (!*canon) return zb_fail(err, ZEROBUS_ERR_NO_MEMORY, 0, "out of memory");
  return ZEROBUS_OK;
}

/* Typed value of canonical text `canon` (NULL = default) for numeric options. */
static int64_t canonical_number(const option_def *d, const char *canon) {
  if (!canon) canon = d->default_value;
  int64_t v = 0;
  switch (d->kind) {
    case K_BOOL:
      return strcmp(canon, "true") == 0;
    case K_RECORD_TYPE:
      return strcmp(canon, "json") == 0 ? ZB_RECORD_TYPE_JSON : ZB_RECORD_TYPE_PROTO;
    case K_LOG_LEVEL:
      return zb_log_level_parse(canon);
    default:
      if (strcmp(canon, "none") == 0) return -1;
      parse_int64(canon, &v);
      return v;
  }
}

/* ------------------------------------------------------------ public API */

zerobus_status zerobus_options_new(zerobus_options **out) {
  if (!out) return ZEROBUS_ERR_INVALID_ARGUMENT;
  *out = calloc(1, sizeof **out);
  return *out ? ZEROBUS_OK : ZEROBUS_ERR_NO_MEMORY;
}

void zerobus_options_destroy(zerobus_options *opts) {
  if (!opts) return;
  for (size_t i = 0; i < OPTION_COUNT; i++) {
    if (opts->values[i] && k_options[i].kind == K_PROXY)
      zb_secret_free(opts->values[i]);
    else
      free(opts->values[i]);
  }
  free(opts);
}

zerobus_status zerobus_options_set(zerobus_options *opts, const char *key, const char *value,
                                   zerobus_error **err) {
  if (err) *err = NULL;
  if (!opts || !key || !value)
    return zb_fail(err, ZEROBUS_ERR_INVALID_ARGUMENT, 0, "zerobus_options_set: %s is NULL",
                   !opts  ? "opts"
                   : !key ? "key"
                          : "value");
  int i = option_index(key);
  if (i < 0) return unknown_option(key, err);
  char *canon = NULL;
  zerobus_status st = parse_value(&k_options[i], value, &canon, err);
  if (st != ZEROBUS_OK) return st;
  /* A proxy URL may carry a password: wipe the old one. */
  if (opts->values[i] && k_options[i].kind == K_PROXY)
    zb_secret_free(opts->values[i]);
  else
    free(opts->values[i]);
  opts->values[i] = canon;
  return ZEROBUS_OK;
}

zerobus_status zerobus_options_get(const zerobus_options *opts, const char *key, const char **value,
                                   zerobus_error **err) {
  if (err) *err = NULL;
  if (!opts || !key || !value)
    return zb_fail(err, ZEROBUS_ERR_INVALID_ARGUMENT, 0, "zerobus_options_get: %s is NULL",
                   !opts  ? "opts"
                   : !key ? "key"
                          : "value");
  int i = option_index(key);
  if (i < 0) return unknown_option(key, err);
  if (opts->values[i]) {
    *value = opts->values[i];
  } else if (k_options[i].kind == K_LOG_LEVEL) {
    *value = k_level_names[zb_log_env_level()]; /* the environment decides when unset */
  } else {
    *value = k_options[i].default_value;
  }
  return ZEROBUS_OK;
}

size_t zerobus_option_count(void) {
  return OPTION_COUNT;
}

zerobus_status zerobus_option_info(size_t index, zerobus_option_desc *out) {
  if (!out || index >= OPTION_COUNT) return ZEROBUS_ERR_INVALID_ARGUMENT;
  const option_def *d = &k_options[index];
  size_t size = out->struct_size;
#define FILL(field, v) \
  if (size >= offsetof(zerobus_option_desc, field) + sizeof out->field) out->field = (v)
  FILL(name, d->name);
  FILL(type, d->type);
  FILL(default_value, d->default_value);
  FILL(scope, d->scope);
  FILL(doc, d->doc);
#undef FILL
  /* Tell a newer caller (larger struct) which members are real. */
  out->struct_size = (uint32_t)(size < sizeof *out ? size : sizeof *out);
  return ZEROBUS_OK;
}

/* ------------------------------------------------------------ zb_config */

void zb_config_defaults(zb_config *c) {
  if (!c) return;
  memset(c, 0, sizeof *c);
  for (size_t i = 0; i < OPTION_COUNT; i++) {
    const option_def *d = &k_options[i];
    if (!d->field_size) continue;
    int64_t v = canonical_number(d, NULL);
    if (d->field_size == 4)
      *(int32_t *)((char *)c + d->offset) = (int32_t)v;
    else
      *(int64_t *)((char *)c + d->offset) = v;
  }
  c->log_level = zb_log_env_level();
}

static char **config_string(zb_config *c, const option_def *d) {
  return (char **)((char *)c + d->offset);
}

void zb_config_free(zb_config *c) {
  if (!c) return;
  for (size_t i = 0; i < OPTION_COUNT; i++) {
    const option_def *d = &k_options[i];
    if (d->field_size) continue;
    char **s = config_string(c, d);
    if (d->kind == K_PROXY)
      zb_secret_free(*s);
    else
      free(*s);
    *s = NULL;
  }
}

zerobus_status zb_config_copy(zb_config *dst, const zb_config *src) {
  if (!dst || !src) return ZEROBUS_ERR_INVALID_ARGUMENT;
  *dst = *src;
  int oom = 0;
  for (size_t i = 0; i < OPTION_COUNT; i++) {
    const option_def *d = &k_options[i];
    if (d->field_size) continue;
    char **s = config_string(dst, d);
    if (*s) {
      *s = strdup(*s);
      if (!*s) oom = 1;
    }
  }
  if (oom) {
    zb_config_free(dst);
    return ZEROBUS_ERR_NO_MEMORY;
  }
  return ZEROBUS_OK;
}

static int scope_listed(const char *scopes, const char *scope) {
  size_t n = strlen(scope);
  for (const char *p = scopes; p && *p;) {
    while (*p == ' ' || *p == ',') p++;
    const char *end = p;
    while (*end && *end != ',' && *end != ' ') end++;
    if ((size_t)(end - p) == n && strncmp(p, scope, n) == 0) return 1;
    p = end;
  }
  return 0;
}

static zerobus_status check_path(const zb_config *c, const char *name, const char *path,
                                 int want_dir, zerobus_error **err) {
  (void)c;
  struct stat st;
  if (stat(path, &st) != 0)
    return zb_fail(err, ZEROBUS_ERR_INVALID_OPTION, 0, "option '%s': cannot use '%s': %s", name,
                   path, strerror(errno));
  if (want_dir ? !S_ISDIR(st.st_mode) : S_ISDIR(st.st_mode))
    return zb_fail(err, ZEROBUS_ERR_INVALID_OPTION, 0, "option '%s': '%s' is %s", name, path,
                   want_dir ? "not a directory" : "a directory, not a file");
  if (access(path, want_dir ? (R_OK | X_OK) : R_OK) != 0)
    return zb_fail(err, ZEROBUS_ERR_INVALID_OPTION, 0, "option '%s': '%s' is not readable: %s",
                   name, path, strerror(errno));
  return ZEROBUS_OK;
}

/* Constraints between options and on the file system, checked on the result. */
static zerobus_status config_check(const zb_config *c, int stream_scope, zerobus_error **err) {
  if (stream_scope && c->max_inflight_bytes < c->max_request_bytes)
    return zb_fail(err, ZEROBUS_ERR_INVALID_OPTION, 0,
                   "option 'max_inflight_bytes' (%" PRId64
                   ") must be at least 'max_request_bytes' (%" PRId64
                   "), or a record of the largest size could never be queued; lower "
                   "max_request_bytes too",
                   c->max_inflight_bytes, c->max_request_bytes);
  zerobus_status st;
  if (c->tls_ca_file && (st = check_path(c, "tls_ca_file", c->tls_ca_file, 0, err)) != ZEROBUS_OK)
    return st;
  if (c->tls_ca_dir && (st = check_path(c, "tls_ca_dir", c->tls_ca_dir, 1, err)) != ZEROBUS_OK)
    return st;
  return ZEROBUS_OK;
}

zerobus_status zb_config_apply(zb_config *c, const zerobus_options *opts, const char *scopes,
                               zerobus_error **err) {
  if (err) *err = NULL;
  if (!c || !scopes)
    return zb_fail(err, ZEROBUS_ERR_INVALID_ARGUMENT, 0, "zb_config_apply: NULL argument");
  int want_sdk = scope_listed(scopes, "sdk"), want_stream = scope_listed(scopes, "stream");
  if (!opts) return config_check(c, want_stream, err);

  /* Work on a copy so `c` is unchanged when a value is refused. */
  zb_config next;
  if (zb_config_copy(&next, c) != ZEROBUS_OK)
    return zb_fail(err, ZEROBUS_ERR_NO_MEMORY, 0, "out of memory");
  zerobus_status st = ZEROBUS_OK;
  for (size_t i = 0; i < OPTION_COUNT && st == ZEROBUS_OK; i++) {
    const option_def *d = &k_options[i];
    const char *v = opts->values[i];
    if (!v) continue;
    int is_sdk = strcmp(d->scope, "sdk") == 0;
    if ((is_sdk && !want_sdk) || (!is_sdk && !want_stream)) {
      st = zb_fail(err, ZEROBUS_ERR_INVALID_OPTION, 0,
                   is_sdk ? "option '%s' is an SDK option: give it to zerobus_sdk_new(), not to "
                            "zerobus_stream_create()"
                          : "option '%s' is a stream option and cannot be used here",
                   d->name);
      break;
    }
    if (d->field_size) {
      int64_t n = canonical_number(d, v);
      if (d->field_size == 4)
        *(int32_t *)((char *)&next + d->offset) = (int32_t)n;
      else
        *(int64_t *)((char *)&next + d->offset) = n;
    } else {
      char **s = config_string(&next, d);
      char *dup = strdup(v);
      if (!dup) {
        st = zb_fail(err, ZEROBUS_ERR_NO_MEMORY, 0, "out of memory");
        break;
      }
      if (d->kind == K_PROXY)
        zb_secret_free(*s);
      else
        free(*s);
      *s = dup;
    }
  }
  if (st == ZEROBUS_OK) st = config_check(&next, want_stream, err);
  if (st != ZEROBUS_OK) {
    zb_config_free(&next);
    return st;
  }
  zb_config_free(c);
  *c = next;
  return ZEROBUS_OK;
}
