/*
 * proxy.c - which HTTP CONNECT proxy (if any) to use for a host.
 *
 * PROTOCOL.md "Proxies": the proxy URL is the first non-empty of grpc_proxy,
 * GRPC_PROXY, https_proxy, HTTPS_PROXY, http_proxy, HTTP_PROXY; the bypass list is
 * the first non-empty of no_grpc_proxy, NO_GRPC_PROXY, no_proxy, NO_PROXY.
 *
 * Bypass entries: comma-separated, blanks around entries trimmed, leading dots
 * dropped, "*" matches every host, an entry matches the host itself or any host
 * ending in ".entry", case-insensitively. Ports in entries are IGNORED: "host:8080"
 * bypasses the proxy for every port of host (a bypass decision per host, as gRPC
 * core does). "[v6]" / "[v6]:port" entries match the bare IPv6 address. CIDR
 * ranges are not interpreted (such an entry only matches its literal text).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

static const char *first_env(const char *const *names, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const char *v = getenv(names[i]);
    if (v && *v) return v;
  }
  return NULL;
}

/* Does bypass entry e[0..n) (already trimmed) match host? */
static int entry_matches(const char *host, size_t hlen, const char *e, size_t n) {
  while (n > 0 && *e == '.') e++, n--; /* ".example.com" == "example.com" */
  if (n == 0) return 0;
  if (n == 1 && *e == '*') return 1;
  if (*e == '[') { /* "[::1]" or "[::1]:port" */
    const char *close = memchr(e, ']', n);
    if (!close) return 0;
    n = (size_t)(close - e - 1);
    e++;
  } else {
    const char *colon = memchr(e, ':', n);
    if (colon && !memchr(colon + 1, ':', n - (size_t)(colon - e) - 1))
      n = (size_t)(colon - e); /* "host:port": the port is ignored */
  }
  if (n == 0) return 0;
  if (hlen == n) return strncasecmp(host, e, n) == 0;
  return hlen > n && host[hlen - n - 1] == '.' && strncasecmp(host + hlen - n, e, n) == 0;
}

int zb_no_proxy_match(const char *host, const char *no_proxy) {
  if (!host || !no_proxy || !*host) return 0;
  size_t hlen = strlen(host);
  if (host[0] == '[' && hlen > 2 && host[hlen - 1] == ']') host++, hlen -= 2;
  const char *p = no_proxy;
  while (*p) {
    const char *end = strchr(p, ',');
    if (!end) end = p + strlen(p);
    const char *s = p, *t = end;
    while (s < t && (*s == ' ' || *s == '\t')) s++;
    while (t > s && (t[-1] == ' ' || t[-1] == '\t')) t--;
    if (entry_matches(host, hlen, s, (size_t)(t - s))) return 1;
    p = *end ? end + 1 : end;
  }
  return 0;
}

char *zb_proxy_for_host(const char *host, const char *explicit_proxy) {
  if (explicit_proxy) {
    if (!*explicit_proxy || strcasecmp(explicit_proxy, "none") == 0) return NULL;
    return strdup(explicit_proxy);
  }
  static const char *const proxy_vars[] = {"grpc_proxy",  "GRPC_PROXY", "https_proxy",
                                           "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"};
  static const char *const bypass_vars[] = {"no_grpc_proxy", "NO_GRPC_PROXY", "no_proxy",
                                            "NO_PROXY"};
  const char *proxy = first_env(proxy_vars, 6);
  if (!proxy) return NULL;
  const char *bypass = first_env(bypass_vars, 4);
  if (host && bypass && zb_no_proxy_match(host, bypass)) return NULL;
  return strdup(proxy);
}
