/*
 * endpoint.c - parsing of the Zerobus endpoint and of the workspace URL.
 *
 * Endpoint forms: "host[:port]" and "https://host[:port][/]" (TLS, default port
 * 443), "http://host[:port][/]" (plaintext, default port 80), with host a DNS name,
 * an IPv4 address or a bracketed IPv6 address. Anything else (another scheme, a
 * path, user info, blanks, a bad port) is refused with a message saying why.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

typedef struct url_parts {
  int tls;
  int has_scheme;
  char host[256]; /* without brackets, lowercased */
  int ipv6;
  int port;         /* -1 when absent */
  const char *rest; /* from the first '/' after the authority, or "" */
} url_parts;

static zerobus_status bad(zerobus_error **err, const char *what, const char *text,
                          const char *why) {
  return zb_fail(err, ZEROBUS_ERR_INVALID_ARGUMENT, 0, "%s '%s': %s", what, text, why);
}

static int is_ipv4(const char *h) {
  int parts = 0;
  const char *p = h;
  while (*p) {
    if (!isdigit((unsigned char)*p)) return 0;
    long v = strtol(p, (char **)&p, 10);
    if (v > 255) return 0;
    parts++;
    if (*p == '.')
      p++;
    else if (*p)
      return 0;
  }
  return parts == 4 && h[strlen(h) - 1] != '.';
}

/* Splits `text` ("[scheme://]host[:port][/rest]"); `what` names it in messages. */
static zerobus_status split_url(const char *text, const char *what, int scheme_required,
                                url_parts *u, zerobus_error **err) {
  memset(u, 0, sizeof *u);
  u->port = -1;
  u->tls = 1;
  if (!text) return zb_fail(err, ZEROBUS_ERR_INVALID_ARGUMENT, 0, "%s is NULL", what);
  if (!*text) return zb_fail(err, ZEROBUS_ERR_INVALID_ARGUMENT, 0, "%s is empty", what);
  for (const char *q = text; *q; q++)
    if ((unsigned char)*q <= 0x20 || (unsigned char)*q >= 0x7f)
      return bad(err, what, text, "contains a blank or a non-ASCII/control character");

  const char *p = text;
  const char *sep = strstr(text, "://");
  if (sep) {
    size_t n = (size_t)(sep - text);
    if (n == 5 && strncasecmp(text, "https", 5) == 0)
      u->tls = 1;
    else if (n == 4 && strncasecmp(text, "http", 4) == 0)
      u->tls = 0;
    else
      return bad(err, what, text, "unknown scheme (use https://, http:// or no scheme)");
    u->has_scheme = 1;
    p = sep + 3;
  } else if (scheme_required) {
    return bad(err, what, text, "must start with https:// (or http:// for a local server)");
  }

  size_t alen = strcspn(p, "/?#");
  u->rest = p + alen;
  if (memchr(p, '@', alen)) return bad(err, what, text, "user info (user@host) is not supported");
  if (alen == 0) return bad(err, what, text, "missing host");

  const char *host = p, *host_end;
  const char *port = NULL;
  if (*p == '[') {
    const char *close = memchr(p, ']', alen);
    if (!close) return bad(err, what, text, "unterminated IPv6 address (missing ']')");
    host = p + 1;
    host_end = close;
    u->ipv6 = 1;
    if (host_end == host) return bad(err, what, text, "missing host");
    for (const char *q = host; q < host_end; q++)
      if (!isxdigit((unsigned char)*q) && *q != ':' && *q != '.')
        return bad(err, what, text, "invalid IPv6 address");
    if (!memchr(host, ':', (size_t)(host_end - host)))
      return bad(err, what, text, "invalid IPv6 address");
    const char *after = close + 1;
    if (after < p + alen) {
      if (*after != ':') return bad(err, what, text, "junk after the IPv6 address");
      port = after + 1;
    }
  } else {
    const char *colon = memchr(p, ':', alen);
    host_end = colon ? colon : p + alen;
    if (colon) port = colon + 1;
    if (host_end == host) return bad(err, what, text, "missing host");
    for (const char *q = host; q < host_end; q++)
      if (!isalnum((unsigned char)*q) && *q != '-' && *q != '.' && *q != '_')
        return bad(err, what, text, "invalid character in host name");
    if (*host == '.' || *host == '-' || host_end[-1] == '.' || host_end[-1] == '-')
      return bad(err, what, text, "host name must not start or end with '.' or '-'");
    for (const char *q = host; q + 1 < host_end; q++)
      if (q[0] == '.' && q[1] == '.') return bad(err, what, text, "empty label in host name");
  }
  size_t hlen = (size_t)(host_end - host);
  if (hlen >= sizeof u->host) return bad(err, what, text, "host name too long");
  for (size_t i = 0; i < hlen; i++) u->host[i] = (char)tolower((unsigned char)host[i]);
  u->host[hlen] = '\0';

  if (port) {
    const char *pend = p + alen;
    if (port == pend) return bad(err, what, text, "missing port number after ':'");
    long v = 0;
    for (const char *q = port; q < pend; q++) {
      if (!isdigit((unsigned char)*q))
        return bad(err, what, text, "port must be a number between 1 and 65535");
      v = v * 10 + (*q - '0');
      if (v > 65535) return bad(err, what, text, "port must be a number between 1 and 65535");
    }
    if (v < 1) return bad(err, what, text, "port must be a number between 1 and 65535");
    u->port = (int)v;
  }
  return ZEROBUS_OK;
}

zerobus_status zb_endpoint_parse(const char *text, zb_endpoint *out, zerobus_error **err) {
  if (err) *err = NULL;
  if (!out) return zb_fail(err, ZEROBUS_ERR_INVALID_ARGUMENT, 0, "endpoint output is NULL");
  memset(out, 0, sizeof *out);
  url_parts u;
  zerobus_status st = split_url(text, "endpoint", 0, &u, err);
  if (st != ZEROBUS_OK) return st;
  if (*u.rest && strcmp(u.rest, "/") != 0)
    return bad(err, "endpoint", text,
               "must not contain a path, query or fragment (expected [https://]host[:port])");
  int port = u.port > 0 ? u.port : (u.tls ? 443 : 80);

  const char *label_end = u.ipv6 || is_ipv4(u.host) ? NULL : strchr(u.host, '.');
  size_t id_len = u.ipv6 || is_ipv4(u.host) ? strlen(u.host)
                  : label_end               ? (size_t)(label_end - u.host)
                                            : strlen(u.host);
  char *target = NULL;
  int n = asprintf(&target, u.ipv6 ? "[%s]:%d" : "%s:%d", u.host, port);
  out->host = strdup(u.host);
  out->workspace_id = strndup(u.host, id_len);
  out->target = n < 0 ? NULL : target;
  out->port = port;
  out->tls = u.tls;
  if (!out->host || !out->workspace_id || !out->target) {
    zb_endpoint_free(out);
    return zb_fail(err, ZEROBUS_ERR_NO_MEMORY, 0, "out of memory");
  }
  return ZEROBUS_OK;
}

void zb_endpoint_free(zb_endpoint *e) {
  if (!e) return;
  free(e->host);
  free(e->target);
  free(e->workspace_id);
  memset(e, 0, sizeof *e);
}

zerobus_status zb_workspace_url_normalize(const char *text, char **out, zerobus_error **err) {
  if (err) *err = NULL;
  if (!out) return zb_fail(err, ZEROBUS_ERR_INVALID_ARGUMENT, 0, "workspace URL output is NULL");
  *out = NULL;
  url_parts u;
  zerobus_status st = split_url(text, "workspace URL", 1, &u, err);
  if (st != ZEROBUS_OK) return st;
  if (strpbrk(u.rest, "?#"))
    return bad(err, "workspace URL", text, "must not contain a query or fragment");
  size_t n = strlen(text);
  while (n > 0 && text[n - 1] == '/') n--;
  *out = strndup(text, n);
  if (!*out) return zb_fail(err, ZEROBUS_ERR_NO_MEMORY, 0, "out of memory");
  return ZEROBUS_OK;
}
