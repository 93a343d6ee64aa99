/* zerobus-local: a local Zerobus-compatible ingest server for tests, demos and benchmarks.
 * Command line, startup and shutdown; the contract is server/FAULTS.md. */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "zl.h"

zl_config g_cfg;
atomic_int g_stopping;
zl_global_counters g_counters;

long long zl_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void zl_log(const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  fprintf(stderr, "zerobus-local: %s\n", buf);
}

static void usage(FILE *out) {
  fprintf(
      out,
      "usage: zerobus-local [options]\n"
      "A local Zerobus-compatible server: gRPC EphemeralStream ingest into SQLite, an OAuth\n"
      "token endpoint, a Unity Catalog table endpoint, fault injection and counters.\n"
      "\n"
      "  --host ADDR             listen address for both sides (default 127.0.0.1)\n"
      "  --port N                gRPC port; 0 = pick a free one (default 50051)\n"
      "  --http-port N           OAuth / Unity Catalog / control HTTP port; 0 = free one (default "
      "8080)\n"
      "  --db PATH               SQLite database (default ./zerobus-local.db)\n"
      "  --store KIND            sqlite | memory | null (default sqlite); memory = SQLite in "
      "memory,\n"
      "                          null = ack without storing (benchmarks measure the client alone)\n"
      "  --no-auth               accept any call (no token, no table header needed)\n"
      "  --client-id ID          OAuth client id accepted by /oidc/v1/token (default test-client)\n"
      "  --client-secret S       OAuth client secret (default test-secret)\n"
      "  --token-ttl SEC         expires_in of issued tokens; expired tokens are refused (default "
      "3600)\n"
      "  --table SPEC            declare a Unity Catalog table (repeatable):\n"
      "                          'cat.sch.tbl=col:type[:nullable],...' e.g.\n"
      "                          'c.s.t=id:bigint:required,tags:array<string>,m:map<string,int>'\n"
      "  --config FILE           JSON {\"tables\": {\"cat.sch.tbl\": "
      "[{\"name\",\"type_text\",\"nullable\"}]}}\n"
      "  --strict-tables         create_stream on an undeclared table fails with NOT_FOUND\n"
      "  --faults FILE           fault script loaded at start (server/FAULTS.md)\n"
      "  --chaos-seed N          random faults drawn from seed N for every call\n"
      "  --chaos-rate P          per-request fault probability in chaos mode (default 0.05)\n"
      "  --chaos-fatal           chaos may also draw non-retryable statuses\n"
      "  --ack-interval-ms N     group-commit / ack timer (default 1)\n"
      "  --tls-cert PEM          TLS certificate chain (both gRPC and HTTP); needs --tls-key\n"
      "  --tls-key PEM           TLS private key\n"
      "  --max-message-bytes N   larger requests end the call with INVALID_ARGUMENT (default "
      "10485760)\n"
      "  --workers N             gRPC worker threads (default 2)\n"
      "  --verbose               log calls and statuses to stderr\n"
      "  --help                  this text\n"
      "\n"
      "When ready, prints exactly one line on stdout:\n"
      "  zerobus-local grpc=127.0.0.1:PORT http=127.0.0.1:PORT\n"
      "SIGTERM/SIGINT: stop accepting, commit and ack what was received, end live calls with\n"
      "UNAVAILABLE, close the database, exit 0.\n");
}

static int parse_ll(const char *s, long long *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || end == s || *end) return -1;
  *out = v;
  return 0;
}

int main(int argc, char **argv) {
  g_cfg.host = "127.0.0.1";
  g_cfg.grpc_port = 50051;
  g_cfg.http_port = 8080;
  g_cfg.db_path = "./zerobus-local.db";
  g_cfg.store = STORE_SQLITE;
  g_cfg.client_id = "test-client";
  g_cfg.client_secret = "test-secret";
  g_cfg.token_ttl = 3600;
  g_cfg.chaos_rate = 0.05;
  g_cfg.ack_interval_ms = 1;
  g_cfg.max_message_bytes = 10485760;
  g_cfg.workers = 2;
  char err[512];

  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    long long n;
#define NEED_ARG                                               \
  do {                                                         \
    if (!v) {                                                  \
      fprintf(stderr, "zerobus-local: %s needs a value\n", a); \
      return 2;                                                \
    }                                                          \
    i++;                                                       \
  } while (0)
#define NEED_INT(lo, hi)                                                                   \
  do {                                                                                     \
    NEED_ARG;                                                                              \
    if (parse_ll(v, &n) || n < (lo) || n > (hi)) {                                         \
      fprintf(stderr, "zerobus-local: %s: '%s' is not an integer in [%lld, %lld]\n", a, v, \
              (long long)(lo), (long long)(hi));                                           \
      return 2;                                                                            \
    }                                                                                      \
  } while (0)
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      return 0;
    } else if (!strcmp(a, "--host")) {
      NEED_ARG;
      g_cfg.host = v;
    } else if (!strcmp(a, "--port")) {
      NEED_INT(0, 65535);
      g_cfg.grpc_port = (int)n;
    } else if (!strcmp(a, "--http-port")) {
      NEED_INT(0, 65535);
      g_cfg.http_port = (int)n;
    } else if (!strcmp(a, "--db")) {
      NEED_ARG;
      g_cfg.db_path = v;
    } else if (!strcmp(a, "--store")) {
      NEED_ARG;
      if (!strcmp(v, "sqlite"))
        g_cfg.store = STORE_SQLITE;
      else if (!strcmp(v, "memory"))
        g_cfg.store = STORE_MEMORY;
      else if (!strcmp(v, "null"))
        g_cfg.store = STORE_NULL;
      else {
        fprintf(stderr, "zerobus-local: --store must be sqlite, memory or null\n");
        return 2;
      }
    } else if (!strcmp(a, "--no-auth")) {
      g_cfg.no_auth = 1;
    } else if (!strcmp(a, "--client-id")) {
      NEED_ARG;
      g_cfg.client_id = v;
    } else if (!strcmp(a, "--client-secret")) {
      NEED_ARG;
      g_cfg.client_secret = v;
    } else if (!strcmp(a, "--token-ttl")) {
      NEED_INT(0, 100000000);
      g_cfg.token_ttl = (long)n;
    } else if (!strcmp(a, "--table")) {
      NEED_ARG;
      if (tables_declare_spec(v, err, sizeof err)) {
        fprintf(stderr, "zerobus-local: %s\n", err);
        return 2;
      }
    } else if (!strcmp(a, "--config")) {
      NEED_ARG;
      if (tables_declare_config(v, err, sizeof err)) {
        fprintf(stderr, "zerobus-local: %s\n", err);
        return 2;
      }
    } else if (!strcmp(a, "--strict-tables")) {
      g_cfg.strict_tables = 1;
    } else if (!strcmp(a, "--faults")) {
      NEED_ARG;
      g_cfg.faults_file = v;
    } else if (!strcmp(a, "--chaos-seed")) {
      NEED_INT(0, 0x7fffffffffffffffLL);
      g_cfg.chaos_on = 1;
      g_cfg.chaos_seed = (unsigned long long)n;
    } else if (!strcmp(a, "--chaos-rate")) {
      NEED_ARG;
      char *end;
      double d = strtod(v, &end);
      if (end == v || *end || d < 0 || d > 1) {
        fprintf(stderr, "zerobus-local: --chaos-rate must be a number in [0, 1]\n");
        return 2;
      }
      g_cfg.chaos_rate = d;
    } else if (!strcmp(a, "--chaos-fatal")) {
      g_cfg.chaos_fatal = 1;
    } else if (!strcmp(a, "--ack-interval-ms")) {
      NEED_INT(1, 60000);
      g_cfg.ack_interval_ms = (int)n;
    } else if (!strcmp(a, "--tls-cert")) {
      NEED_ARG;
      g_cfg.tls_cert = v;
    } else if (!strcmp(a, "--tls-key")) {
      NEED_ARG;
      g_cfg.tls_key = v;
    } else if (!strcmp(a, "--max-message-bytes")) {
      NEED_INT(1, 0x7fffffffLL - (64 << 20));
      g_cfg.max_message_bytes = n;
    } else if (!strcmp(a, "--workers")) {
      NEED_INT(1, 64);
      g_cfg.workers = (int)n;
    } else if (!strcmp(a, "--verbose")) {
      g_cfg.verbose = 1;
    } else {
      fprintf(stderr, "zerobus-local: unknown option '%s' (see --help)\n", a);
      return 2;
    }
  }
  if (!!g_cfg.tls_cert != !!g_cfg.tls_key) {
    fprintf(stderr, "zerobus-local: --tls-cert and --tls-key go together\n");
    return 2;
  }
  if (g_cfg.faults_file) {
    FILE *f = fopen(g_cfg.faults_file, "rb");
    if (!f) {
      fprintf(stderr, "zerobus-local: cannot open --faults %s\n", g_cfg.faults_file);
      return 2;
    }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)(len > 0 ? len : 0) + 1);
    size_t got = buf ? fread(buf, 1, (size_t)(len > 0 ? len : 0), f) : 0;
    fclose(f);
    if (!buf) return 1;
    buf[got] = 0;
    int rc = faults_load(buf, err, sizeof err);
    free(buf);
    if (rc) {
      fprintf(stderr, "zerobus-local: --faults %s: %s\n", g_cfg.faults_file, err);
      return 2;
    }
  }

  /* Signals: block before any thread exists (gRPC creates threads in grpc_init), so
   * every thread inherits the mask and main receives them with sigwait. */
  signal(SIGPIPE, SIG_IGN);
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, NULL);

  if (g_cfg.store == STORE_NULL) {
    /* Benchmark mode: gRPC reads each request into freshly malloc'd slices that are freed
     * right after; with glibc's defaults big ones are mmap'd/trimmed and every read
     * page-faults its buffer in again (~70,000 minor faults per GB of 10 KB records,
     * a third of the server's CPU). Keep freed memory in the heap instead. */
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
  }
  faults_init();
  if (storage_start(err, sizeof err)) {
    fprintf(stderr, "zerobus-local: %s\n", err);
    return 1;
  }
  if (grpc_side_start(err, sizeof err)) {
    fprintf(stderr, "zerobus-local: %s\n", err);
    storage_stop();
    return 1;
  }
  if (http_side_start(err, sizeof err)) {
    fprintf(stderr, "zerobus-local: %s\n", err);
    atomic_store(&g_stopping, 1);
    grpc_side_stop();
    storage_stop();
    return 1;
  }
  printf("zerobus-local grpc=%s:%d http=%s:%d\n", g_cfg.host, g_cfg.grpc_port, g_cfg.host,
         g_cfg.http_port);
  fflush(stdout);

  int sig = 0;
  sigwait(&sigs, &sig);
  if (g_cfg.verbose) zl_log("signal %d: shutting down", sig);
  atomic_store(&g_stopping, 1);
  grpc_side_stop(); /* live calls: commit, ack, UNAVAILABLE */
  storage_stop();   /* drain the queue, commit, close the database */
  http_side_stop();
  return 0;
}
