/*
 * sdk.c - the SDK handle: endpoint, workspace URL, options, the token cache and
 * the gRPC channel factory shared by its streams.
 *
 * One channel per connection attempt: every creation or recovery attempt of a
 * stream opens its own channel with a local subchannel pool, so a stream never
 * shares a TCP connection (or a connection in gRPC's reconnect backoff) with
 * another stream or with its own previous, failed call. Calls are fail-fast (no
 * wait-for-ready): a connection that cannot be made ends the call at once with
 * gRPC's reason (refused, TLS handshake, proxy). The engine then opens a new
 * channel within the same attempt (100 ms, doubling to 1 s) until the attempt's
 * own timer (recovery_timeout_ms) runs out, so outages shorter than an attempt
 * are ridden out and a failed attempt reports the real cause, not a timeout.
 *
 * grpc_init()/grpc_shutdown() are reference-counted by gRPC: one pair per SDK.
 * The SDK is refcounted (the user's handle + one per stream), so streams keep it
 * alive after zerobus_sdk_destroy().
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>

#include "engine.h"

/* Reads a whole file; NULL when it cannot. */
static char *read_file(const char *path, size_t *len_out) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap + 1);
  while (buf) {
    size_t n = fread(buf + len, 1, cap - len, f);
    len += n;
    if (len < cap) break;
    char *nb = realloc(buf, cap * 2 + 1);
    if (!nb) {
      free(buf);
      buf = NULL;
      break;
    }
    buf = nb;
    cap *= 2;
  }
  if (buf && ferror(f)) {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  if (buf) {
    buf[len] = 0;
    if (len_out) *len_out = len;
  }
  return buf;
}

static int append(char **dst, size_t *dlen, const char *src, size_t slen) {
  char *n = realloc(*dst, *dlen + slen + 2);
  if (!n) return -1;
  memcpy(n + *dlen, src, slen);
  *dlen += slen;
  n[(*dlen)++] = '\n';
  n[*dlen] = 0;
  *dst = n;
  return 0;
}

/* CA bundle from tls_ca_file and/or every *.pem / *.crt in tls_ca_dir. */
static zerobus_status load_roots(const zb_config *c, char **out, zerobus_error **err) {
  char *pem = NULL;
  size_t plen = 0;
  *out = NULL;
  if (c->tls_ca_file && *c->tls_ca_file) {
    size_t n = 0;
    char *f = read_file(c->tls_ca_file, &n);
    if (!f)
      return zb_fail(err, ZEROBUS_ERR_INVALID_OPTION, 0, "tls_ca_file '%s' cannot be read: %s",
                     c->tls_ca_file, strerror(errno));
    if (!strstr(f, "-----BEGIN CERTIFICATE-----")) {
      free(f);
      return zb_fail(err, ZEROBUS_ERR_INVALID_OPTION, 0,
                     "tls_ca_file '%s' holds no PEM certificate", c->tls_ca_file);
    }
    if (append(&pem, &plen, f, n) != 0) {
      free(f);
      return zb_fail(err, ZEROBUS_ERR_NO_MEMORY, 0, "out of memory");
    }
    free(f);
  }
  if (c->tls_ca_dir && *c->tls_ca_dir) {
    DIR *d = opendir(c->tls_ca_dir);
    if (!d) {
      free(pem);
      return zb_fail(err, ZEROBUS_ERR_INVALID_OPTION, 0, "tls_ca_dir '%s' cannot be opened: %s",
                     c->tls_ca_dir, strerror(errno));
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      size_t nl = strlen(e->d_name);
      if (nl < 5 || (strcmp(e->d_name + nl - 4, ".pem") && strcmp(e->d_name + nl - 4, ".crt")))
        continue;
      char path[4096];
      snprintf(path, sizeof path, "%s/%s", c->tls_ca_dir, e->d_name);
      size_t n = 0;
      char *f = read_file(path, &n);
      if (f && strstr(f, "-----BEGIN CERTIFICATE-----")) append(&pem, &plen, f, n);
      free(f);
    }
    closedir(d);
    if (!pem)
      return zb_fail(err, ZEROBUS_ERR_INVALID_OPTION, 0,
                     "tls_ca_dir '%s' holds no *.pem or *.crt certificate", c->tls_ca_dir);
  }
  *out = pem;
  return ZEROBUS_OK;
}

static void sdk_free(zerobus_sdk *sdk) {
  zb_endpoint_free(&sdk->ep);
  free(sdk->workspace_url);
  zb_config_free(&sdk->config);
  if (sdk->tokens) zb_token_cache_free(sdk->tokens);
  free(sdk->sdk_header);
  free(sdk->pem_roots);
  free(sdk);
}

ZEROBUS_API zerobus_status zerobus_sdk_new(const char *endpoint, const char *workspace_url,
                                           const zerobus_options *opts, zerobus_sdk **out,
                                           zerobus_error **err) {
  if (err) *err = NULL;
  if (!out) return zb_fail(err, ZEROBUS_ERR_INVALID_ARGUMENT, 0, "out must not be NULL");
  *out = NULL;
  if (!endpoint || !*endpoint)
    return zb_fail(err, ZEROBUS_ERR_INVALID_ARGUMENT, 0, "endpoint must not be NULL or empty");
  if (!workspace_url || !*workspace_url)
    return zb_fail(err, ZEROBUS_ERR_INVALID_ARGUMENT, 0, "workspace_url must not be NULL or empty");
  zerobus_sdk *sdk = calloc(1, sizeof *sdk);
  if (!sdk) return zb_fail(err, ZEROBUS_ERR_NO_MEMORY, 0, "out of memory");
  zb_config_defaults(&sdk->config);
  zerobus_status st = zb_endpoint_parse(endpoint, &sdk->ep, err);
  if (st == ZEROBUS_OK) st = zb_workspace_url_normalize(workspace_url, &sdk->workspace_url, err);
  if (st == ZEROBUS_OK) st = zb_config_apply(&sdk->config, opts, "sdk,stream", err);
  if (st == ZEROBUS_OK && sdk->ep.tls) st = load_roots(&sdk->config, &sdk->pem_roots, err);
  if (st == ZEROBUS_OK) {
    sdk->tokens = zb_token_cache_new();
    sdk->sdk_header = zb_sdk_header_value(sdk->config.application_name);
    if (!sdk->tokens || !sdk->sdk_header)
      st = zb_fail(err, ZEROBUS_ERR_NO_MEMORY, 0, "out of memory");
  }
  if (st != ZEROBUS_OK) {
    sdk_free(sdk);
    return st;
  }
  atomic_init(&sdk->refs, 1);
  grpc_init();
  zb_logger lg = {sdk->config.log_level, NULL, NULL};
  zb_log(&lg, ZEROBUS_LOG_DEBUG, "sdk: endpoint %s (%s), workspace %s", sdk->ep.target,
         sdk->ep.tls ? "tls" : "plaintext", sdk->workspace_url);
  *out = sdk;
  return ZEROBUS_OK;
}

void zb_sdk_ref(zerobus_sdk *sdk) {
  atomic_fetch_add(&sdk->refs, 1);
}

void zb_sdk_unref(zerobus_sdk *sdk) {
  if (!sdk) return;
  if (atomic_fetch_sub(&sdk->refs, 1) == 1) {
    sdk_free(sdk);
    grpc_shutdown();
  }
}

ZEROBUS_API void zerobus_sdk_destroy(zerobus_sdk *sdk) {
  zb_sdk_unref(sdk);
}

grpc_channel *zb_sdk_channel_new(zerobus_sdk *sdk) {
  grpc_arg args[10];
  size_t n = 0;
  char *proxy = zb_proxy_for_host(sdk->ep.host, sdk->config.proxy);
  args[n].type = GRPC_ARG_INTEGER;
  args[n].key = (char *)GRPC_ARG_MAX_SEND_MESSAGE_LENGTH;
  args[n++].value.integer = 64 * 1024 * 1024;
  args[n].type = GRPC_ARG_INTEGER;
  args[n].key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
  args[n++].value.integer = 64 * 1024 * 1024;
  args[n].type = GRPC_ARG_INTEGER;
  args[n].key = (char *)GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL;
  args[n++].value.integer = 1;
  /* gRPC's own retries would buffer every message we send: we replay ourselves. */
  args[n].type = GRPC_ARG_INTEGER;
  args[n].key = (char *)GRPC_ARG_ENABLE_RETRIES;
  args[n++].value.integer = 0;
  args[n].type = GRPC_ARG_INTEGER;
  args[n].key = (char *)GRPC_ARG_KEEPALIVE_TIME_MS;
  args[n++].value.integer = 30000;
  args[n].type = GRPC_ARG_INTEGER;
  args[n].key = (char *)GRPC_ARG_KEEPALIVE_TIMEOUT_MS;
  args[n++].value.integer = 20000;
  if (proxy) {
    args[n].type = GRPC_ARG_STRING;
    args[n].key = (char *)GRPC_ARG_HTTP_PROXY;
    args[n++].value.string = proxy;
  } else {
    /* We decided "direct" (option or no_proxy): keep gRPC from reading the
     * environment again. */
    args[n].type = GRPC_ARG_INTEGER;
    args[n].key = (char *)GRPC_ARG_ENABLE_HTTP_PROXY;
    args[n++].value.integer = 0;
  }
  if (sdk->ep.tls && sdk->config.tls_target_name && *sdk->config.tls_target_name) {
    args[n].type = GRPC_ARG_STRING;
    args[n].key = (char *)GRPC_SSL_TARGET_NAME_OVERRIDE_ARG;
    args[n++].value.string = sdk->config.tls_target_name;
  }
  grpc_channel_args cargs = {n, args};
  grpc_channel_credentials *creds =
      sdk->ep.tls ? grpc_ssl_credentials_create(sdk->pem_roots, NULL, NULL, NULL)
                  : grpc_insecure_credentials_create();
  grpc_channel *ch = creds ? grpc_channel_create(sdk->ep.target, creds, &cargs) : NULL;
  if (creds) grpc_channel_credentials_release(creds);
  free(proxy);
  return ch;
}
