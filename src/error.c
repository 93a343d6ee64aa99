/*
 * error.c - zerobus_error objects, status names and messages, and the mapping from
 * gRPC statuses to zerobus statuses with messages that tell the user what to do.
 *
 * Every message goes through zb_redact() when the error is built, so a token that
 * slipped into a server's status message never reaches a log or a binding.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct status_text {
  const char *name;
  const char *str;
} status_text;

/* Indexed by zerobus_status; values are fixed forever, so the table only grows. */
static const status_text k_status_text[] = {
    {"ZEROBUS_OK", "success"},
    {"ZEROBUS_ERR_INVALID_ARGUMENT",
     "invalid argument (NULL pointer, empty name or unusable value)"},
    {"ZEROBUS_ERR_INVALID_STATE", "the call is not valid in the object's current state"},
    {"ZEROBUS_ERR_STREAM_CLOSED", "the stream is closed or failed"},
    {"ZEROBUS_ERR_QUEUE_FULL", "the in-flight limit is reached (non-blocking ingest); retry later"},
    {"ZEROBUS_ERR_TIMEOUT", "the operation timed out"},
    {"ZEROBUS_ERR_RECORD_TOO_LARGE", "the record or batch is larger than max_request_bytes"},
    {"ZEROBUS_ERR_INVALID_RECORD",
     "invalid record (bad JSON, not a JSON object, bad UTF-8 or wrong record type)"},
    {"ZEROBUS_ERR_UNKNOWN_OPTION", "unknown option key"},
    {"ZEROBUS_ERR_INVALID_OPTION", "invalid option value"},
    {"ZEROBUS_ERR_UNAUTHENTICATED", "credentials were refused"},
    {"ZEROBUS_ERR_PERMISSION_DENIED", "the principal lacks the grants needed on the table"},
    {"ZEROBUS_ERR_NOT_FOUND", "the table does not exist or the endpoint is wrong"},
    {"ZEROBUS_ERR_SERVER_REJECTED", "the server rejected the request as invalid"},
    {"ZEROBUS_ERR_UNAVAILABLE", "the server is unavailable or the connection failed"},
    {"ZEROBUS_ERR_SERVER", "the server ended the call"},
    {"ZEROBUS_ERR_PROTOCOL", "the server broke the protocol"},
    {"ZEROBUS_ERR_ACK_TIMEOUT", "no acknowledgement from the server in time"},
    {"ZEROBUS_ERR_RETRIES_EXHAUSTED", "recovery gave up after the configured number of attempts"},
    {"ZEROBUS_ERR_HEADERS_PROVIDER", "the headers provider failed or returned unusable headers"},
    {"ZEROBUS_ERR_TOKEN", "the OAuth token endpoint could not be used"},
    {"ZEROBUS_ERR_UNIMPLEMENTED", "the endpoint does not implement the Zerobus protocol"},
    {"ZEROBUS_ERR_NO_MEMORY", "out of memory"},
    {"ZEROBUS_ERR_INTERNAL", "internal error in libzerobus; please report it with a debug log"},
};
#define STATUS_COUNT ((int32_t)(sizeof k_status_text / sizeof k_status_text[0]))

const char *zerobus_status_name(int32_t status) {
  if (status < 0 || status >= STATUS_COUNT) return "ZEROBUS_UNKNOWN";
  return k_status_text[status].name;
}

const char *zerobus_status_str(int32_t status) {
  if (status < 0 || status >= STATUS_COUNT) return "unknown status code";
  return k_status_text[status].str;
}

/* ------------------------------------------------------------ accessors */

int32_t zerobus_error_code(const zerobus_error *err) {
  return err ? err->code : ZEROBUS_OK;
}

const char *zerobus_error_message(const zerobus_error *err) {
  return (err && err->message) ? err->message : "";
}

int32_t zerobus_error_retryable(const zerobus_error *err) {
  return err ? err->retryable : 0;
}

int32_t zerobus_error_grpc_status(const zerobus_error *err) {
  return err ? err->grpc_status : -1;
}

int32_t zerobus_error_http_status(const zerobus_error *err) {
  return err ? err->http_status : -1;
}

zerobus_error *zerobus_error_clone(const zerobus_error *err) {
  if (!err) return NULL;
  zerobus_error *c = malloc(sizeof *c);
  if (!c) return NULL;
  *c = *err;
  c->message = strdup(err->message ? err->message : "");
  if (!c->message) {
    free(c);
    return NULL;
  }
  return c;
}

void zerobus_error_destroy(zerobus_error *err) {
  if (!err) return;
  free(err->message);
  free(err);
}

/* ------------------------------------------------------------ builders */

/* A static fallback is not possible (callers free errors), so out of memory while
 * building an error yields NULL and the status code alone tells the story. */
static zerobus_error *error_take_message(int32_t code, int32_t retryable, int32_t grpc_status,
                                         int32_t http_status, char *raw) {
  if (!raw) return NULL;
  char *clean = zb_redact(raw);
  free(raw);
  if (!clean) return NULL;
  zerobus_error *e = malloc(sizeof *e);
  if (!e) {
    free(clean);
    return NULL;
  }
  e->code = code;
  e->retryable = retryable ? 1 : 0;
  e->grpc_status = grpc_status;
  e->http_status = http_status;
  e->message = clean;
  return e;
}

zerobus_error *zb_error_newv(int32_t code, int32_t retryable, int32_t grpc_status,
                             int32_t http_status, const char *fmt, va_list ap) {
  char *raw = NULL;
  if (!fmt) fmt = "";
  if (vasprintf(&raw, fmt, ap) < 0) return NULL;
  return error_take_message(code, retryable, grpc_status, http_status, raw);
}

zerobus_error *zb_error_new(int32_t code, int32_t retryable, int32_t grpc_status,
                            int32_t http_status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  zerobus_error *e = zb_error_newv(code, retryable, grpc_status, http_status, fmt, ap);
  va_end(ap);
  return e;
}

zerobus_status zb_fail(zerobus_error **err, int32_t code, int32_t retryable, const char *fmt, ...) {
  if (err) {
    va_list ap;
    va_start(ap, fmt);
    *err = zb_error_newv(code, retryable, -1, -1, fmt, ap);
    va_end(ap);
  }
  return (zerobus_status)code;
}

zerobus_status zb_fail_copy(zerobus_error **err, const zerobus_error *src) {
  if (err) *err = src ? zerobus_error_clone(src) : NULL;
  return src ? (zerobus_status)src->code : ZEROBUS_ERR_INTERNAL;
}

zerobus_error *zb_error_wrap(int32_t code, int32_t retryable, const zerobus_error *cause,
                             const char *prefix) {
  const char *msg = cause && cause->message ? cause->message : "";
  int32_t grpc = cause ? cause->grpc_status : -1;
  int32_t http = cause ? cause->http_status : -1;
  if (prefix && *prefix) {
    if (*msg) return zb_error_new(code, retryable, grpc, http, "%s: %s", prefix, msg);
    return zb_error_new(code, retryable, grpc, http, "%s", prefix);
  }
  return zb_error_new(code, retryable, grpc, http, "%s", msg);
}

/* ------------------------------------------------------------ gRPC mapping */

/* gRPC status codes (grpc/status.h), named here so this file needs no gRPC header. */
enum {
  GRPC_OK = 0,
  GRPC_CANCELLED = 1,
  GRPC_UNKNOWN = 2,
  GRPC_INVALID_ARGUMENT = 3,
  GRPC_DEADLINE_EXCEEDED = 4,
  GRPC_NOT_FOUND = 5,
  GRPC_ALREADY_EXISTS = 6,
  GRPC_PERMISSION_DENIED = 7,
  GRPC_RESOURCE_EXHAUSTED = 8,
  GRPC_FAILED_PRECONDITION = 9,
  GRPC_ABORTED = 10,
  GRPC_OUT_OF_RANGE = 11,
  GRPC_UNIMPLEMENTED = 12,
  GRPC_INTERNAL = 13,
  GRPC_UNAVAILABLE = 14,
  GRPC_DATA_LOSS = 15,
  GRPC_UNAUTHENTICATED = 16
};

static const char *const k_grpc_names[] = {
    "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
    "DATA_LOSS", "UNAUTHENTICATED"};

static const char *grpc_name(int code) {
  if (code < 0 || code > GRPC_UNAUTHENTICATED) return "UNKNOWN_STATUS";
  return k_grpc_names[code];
}

int zb_grpc_status_retryable(int grpc_code) {
  switch (grpc_code) {
    case GRPC_INVALID_ARGUMENT:
    case GRPC_UNAUTHENTICATED:
    case GRPC_PERMISSION_DENIED:
    case GRPC_NOT_FOUND:
    case GRPC_OUT_OF_RANGE:
    case GRPC_UNIMPLEMENTED:
      return 0;
    default:
      return 1;
  }
}

zerobus_status zb_status_from_grpc(int grpc_code) {
  switch (grpc_code) {
    case GRPC_UNAUTHENTICATED:
      return ZEROBUS_ERR_UNAUTHENTICATED;
    case GRPC_PERMISSION_DENIED:
      return ZEROBUS_ERR_PERMISSION_DENIED;
    case GRPC_NOT_FOUND:
      return ZEROBUS_ERR_NOT_FOUND;
    case GRPC_INVALID_ARGUMENT:
    case GRPC_OUT_OF_RANGE:
      return ZEROBUS_ERR_SERVER_REJECTED;
    case GRPC_UNAVAILABLE:
      return ZEROBUS_ERR_UNAVAILABLE;
    case GRPC_UNIMPLEMENTED:
      return ZEROBUS_ERR_UNIMPLEMENTED;
    default:
      return ZEROBUS_ERR_SERVER;
  }
}

void zb_table_grants(const char *table, char *buf, size_t cap) {
  const char *dot1 = table ? strchr(table, '.') : NULL;
  const char *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
  if (!dot1 || !dot2) {
    snprintf(buf, cap,
             "USE CATALOG on <catalog>, USE SCHEMA on <catalog>.<schema>, and SELECT and MODIFY "
             "on %s",
             table && *table ? table : "<catalog>.<schema>.<table>");
    return;
  }
  snprintf(buf, cap, "USE CATALOG on %.*s, USE SCHEMA on %.*s, and SELECT and MODIFY on %s",
           (int)(dot1 - table), table, (int)(dot2 - table), table, table);
}

zerobus_error *zb_error_from_grpc(int grpc_code, const char *details, const char *table) {
  const char *d = (details && *details) ? details : "no details";
  const char *t = (table && *table) ? table : "<table>";
  int32_t code = zb_status_from_grpc(grpc_code);
  int32_t retry = zb_grpc_status_retryable(grpc_code);
  const char *gname = grpc_name(grpc_code);

  switch (grpc_code) {
    case GRPC_UNAUTHENTICATED:
      return zb_error_new(code, retry, grpc_code, -1,
                          "server answered %s (%s): the credentials were refused; check the "
                          "client id and client secret, and that the service principal has "
                          "the grants on table %s",
                          gname, d, t);
    case GRPC_PERMISSION_DENIED: {
      char grants[1024];
      zb_table_grants(table, grants, sizeof grants);
      return zb_error_new(code, retry, grpc_code, -1,
                          "server answered %s (%s): the service principal needs %s", gname, d,
                          grants);
    }
    case GRPC_NOT_FOUND:
      return zb_error_new(code, retry, grpc_code, -1,
                          "server answered %s (%s): table %s does not exist or the endpoint "
                          "is wrong (check the workspace id and region in the endpoint)",
                          gname, d, t);
    case GRPC_UNIMPLEMENTED:
      return zb_error_new(code, retry, grpc_code, -1,
                          "server answered %s (%s): this is not a Zerobus endpoint (check the "
                          "endpoint host and port)",
                          gname, d);
    case GRPC_INVALID_ARGUMENT:
    case GRPC_OUT_OF_RANGE:
      return zb_error_new(code, retry, grpc_code, -1,
                          "server rejected the request with %s (%s) on table %s", gname, d, t);
    case GRPC_UNAVAILABLE:
      return zb_error_new(code, retry, grpc_code, -1, "server unavailable (%s): %s", gname, d);
    case GRPC_OK:
      return zb_error_new(code, retry, grpc_code, -1,
                          "server ended the call without being asked (status OK: %s)", d);
    default:
      return zb_error_new(code, retry, grpc_code, -1, "server ended the call with %s (%d): %s",
                          gname, grpc_code, d);
  }
}
