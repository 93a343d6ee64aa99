/* zl_harness: runs zerobus-local as a child process for tests (see zl_harness.h). */
#include "zl_harness.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <sqlite3.h>

#ifndef ZL_DEFAULT_BIN
#define ZL_DEFAULT_BIN "zerobus-local"
#endif

static const char *server_bin(void) {
  const char *b = getenv("ZEROBUS_LOCAL_BIN");
  return b && *b ? b : ZL_DEFAULT_BIN;
}

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int zl_start_db(zl_server *s, const char *db_path, const char *const *extra_args) {
  memset(s, 0, sizeof *s);
  snprintf(s->db_path, sizeof s->db_path, "%s", db_path);
  const char *argv[128];
  int n = 0, tls = 0;
  argv[n++] = server_bin();
  argv[n++] = "--port";
  argv[n++] = "0";
  argv[n++] = "--http-port";
  argv[n++] = "0";
  argv[n++] = "--db";
  argv[n++] = s->db_path;
  for (int i = 0; extra_args && extra_args[i] && n < 126; i++) {
    if (strcmp(extra_args[i], "--tls-cert") == 0) tls = 1;
    argv[n++] = extra_args[i];
  }
  argv[n] = NULL;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return -1;
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return -1;
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test */
    dup2(fds[1], 1);
    execv(argv[0], (char *const *)argv);
    fprintf(stderr, "zl_harness: cannot exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  close(fds[1]);
  s->pid = pid;
  char line[256];
  size_t len = 0;
  long long deadline = now_ms() + 10000;
  int ok = 0;
  while (now_ms() < deadline && len < sizeof line - 1) {
    struct pollfd p = {fds[0], POLLIN, 0};
    int r = poll(&p, 1, 100);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    ssize_t got = read(fds[0], line + len, sizeof line - 1 - len);
    if (got <= 0) break; /* exited before ready */
    len += (size_t)got;
    line[len] = 0;
    if (strchr(line, '\n')) {
      ok = sscanf(line, "zerobus-local grpc=%*[^:]:%d http=%*[^:]:%d", &s->grpc_port,
                  &s->http_port) == 2;
      break;
    }
  }
  close(fds[0]);
  if (!ok) {
    fprintf(stderr, "zl_harness: %s did not print its ready line\n", argv[0]);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    s->pid = 0;
    return -1;
  }
  snprintf(s->endpoint, sizeof s->endpoint, "%s://127.0.0.1:%d", tls ? "https" : "http",
           s->grpc_port);
  snprintf(s->http_url, sizeof s->http_url, "%s://127.0.0.1:%d", tls ? "https" : "http",
           s->http_port);
  return 0;
}

/* Temporary directories made by zl_start, removed at exit (set ZL_KEEP_DB=1 to keep
 * them for debugging). A test may restart a server on the same database any time before
 * it exits. */
#define MAX_TEMP_DIRS 256
static char *g_temp_dirs[MAX_TEMP_DIRS];
static int g_ntemp;

static void remove_temp_dirs(void) {
  const char *keep = getenv("ZL_KEEP_DB");
  if (keep && *keep && strcmp(keep, "0") != 0) return;
  static const char *files[] = {"zerobus-local.db", "zerobus-local.db-wal", "zerobus-local.db-shm"};
  for (int i = 0; i < g_ntemp; i++) {
    char path[600];
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
      snprintf(path, sizeof path, "%s/%s", g_temp_dirs[i], files[f]);
      unlink(path);
    }
    rmdir(g_temp_dirs[i]);
    free(g_temp_dirs[i]);
  }
  g_ntemp = 0;
}

int zl_start(zl_server *s, const char *const *extra_args) {
  char dir[] = "/tmp/zl-harness-XXXXXX";
  if (!mkdtemp(dir)) return -1;
  if (g_ntemp < MAX_TEMP_DIRS) {
    if (g_ntemp == 0) atexit(remove_temp_dirs);
    g_temp_dirs[g_ntemp++] = strdup(dir);
  }
  char path[512];
  snprintf(path, sizeof path, "%s/zerobus-local.db", dir);
  return zl_start_db(s, path, extra_args);
}

static int wait_exit(zl_server *s, int timeout_ms) {
  long long deadline = now_ms() + timeout_ms;
  int status = 0;
  for (;;) {
    pid_t r = waitpid(s->pid, &status, WNOHANG);
    if (r == s->pid) break;
    if (r < 0) {
      s->pid = 0;
      return -1;
    }
    if (now_ms() > deadline) {
      kill(s->pid, SIGKILL);
      waitpid(s->pid, &status, 0);
      s->pid = 0;
      return -1;
    }
    usleep(2000);
  }
  s->pid = 0;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

int zl_stop(zl_server *s) {
  if (!s->pid) return -1;
  kill(s->pid, SIGTERM);
  return wait_exit(s, 20000);
}

int zl_kill(zl_server *s) {
  if (!s->pid) return -1;
  kill(s->pid, SIGKILL);
  wait_exit(s, 5000);
  return 0;
}

/* ------------------------------------------------------------------ HTTP */
typedef struct buf {
  char *data;
  size_t len;
} buf;

static size_t on_data(char *p, size_t sz, size_t n, void *arg) {
  buf *b = arg;
  char *nd = realloc(b->data, b->len + sz * n + 1);
  if (!nd) return 0;
  b->data = nd;
  memcpy(b->data + b->len, p, sz * n);
  b->len += sz * n;
  b->data[b->len] = 0;
  return sz * n;
}

/* Returns the HTTP status (or -1); *out gets the body (caller frees) when out != NULL. */
static long http(zl_server *s, const char *method, const char *path, const char *body, char **out) {
  static int inited;
  if (!inited) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    inited = 1;
  }
  CURL *c = curl_easy_init();
  if (!c) return -1;
  char url[256];
  snprintf(url, sizeof url, "%s%s", s->http_url, path);
  buf b = {NULL, 0};
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L); /* test control channel only */
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
  struct curl_slist *h = NULL;
  if (body) {
    h = curl_slist_append(h, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
  }
  long code = -1;
  if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  curl_slist_free_all(h);
  curl_easy_cleanup(c);
  if (out)
    *out = b.data;
  else
    free(b.data);
  return code;
}

int zl_set_faults(zl_server *s, const char *json) {
  return http(s, "POST", "/zerobus-local/faults", json, NULL) == 200 ? 0 : -1;
}

int zl_clear_faults(zl_server *s) {
  return http(s, "DELETE", "/zerobus-local/faults", NULL, NULL) == 200 ? 0 : -1;
}

long long zl_counter(zl_server *s, const char *table, const char *name) {
  char *body = NULL;
  if (http(s, "GET", "/zerobus-local/counters", NULL, &body) != 200) {
    free(body);
    return -1;
  }
  cJSON *j = cJSON_Parse(body ? body : "");
  free(body);
  cJSON *scope = j;
  if (table) {
    scope = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "tables"), table);
    if (!scope) {
      cJSON_Delete(j);
      return 0; /* a table never seen has all counters at 0 */
    }
  }
  cJSON *v = cJSON_GetObjectItemCaseSensitive(scope, name);
  long long r = cJSON_IsNumber(v) ? (long long)v->valuedouble : -1;
  cJSON_Delete(j);
  return r;
}

/* ------------------------------------------------------------------ SQLite */
static sqlite3 *open_ro(zl_server *s) {
  sqlite3 *db = NULL;
  if (sqlite3_open_v2(s->db_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
    sqlite3_close(db);
    return NULL;
  }
  sqlite3_busy_timeout(db, 5000);
  return db;
}

static char *quoted(const char *table) {
  size_t n = strlen(table);
  char *q = malloc(n * 2 + 3), *p = q;
  if (!q) return NULL;
  *p++ = '"';
  for (const char *t = table; *t; t++) {
    if (*t == '"') *p++ = '"';
    *p++ = *t;
  }
  *p++ = '"';
  *p = 0;
  return q;
}

static int table_exists(sqlite3 *db, const char *table) {
  sqlite3_stmt *st = NULL;
  int found = 0;
  if (sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", -1, &st,
                         NULL) == SQLITE_OK) {
    sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
    found = sqlite3_step(st) == SQLITE_ROW;
  }
  sqlite3_finalize(st);
  return found;
}

long long zl_row_count(zl_server *s, const char *table) {
  struct stat sb;
  if (stat(s->db_path, &sb) != 0) return 0;
  sqlite3 *db = open_ro(s);
  if (!db) return -1;
  long long n = 0;
  if (table_exists(db, table)) {
    char *q = quoted(table), sql[1200];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", q ? q : "\"\"");
    free(q);
    sqlite3_stmt *st = NULL;
    n = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
      n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return n;
}

long long zl_payloads(zl_server *s, const char *table, zl_blob **out) {
  *out = NULL;
  struct stat sb;
  if (stat(s->db_path, &sb) != 0) return 0;
  sqlite3 *db = open_ro(s);
  if (!db) return -1;
  if (!table_exists(db, table)) {
    sqlite3_close(db);
    return 0;
  }
  char *q = quoted(table), sql[1300];
  snprintf(sql, sizeof sql,
           "SELECT _zerobus_payload, _zerobus_stream_id, _zerobus_offset FROM %s ORDER BY rowid",
           q ? q : "\"\"");
  free(q);
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
    sqlite3_close(db);
    return -1;
  }
  long long n = 0, cap = 0;
  zl_blob *arr = NULL;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (n == cap) {
      cap = cap ? cap * 2 : 64;
      zl_blob *na = realloc(arr, (size_t)cap * sizeof *na);
      if (!na) break;
      arr = na;
    }
    const void *d = sqlite3_column_blob(st, 0);
    size_t len = (size_t)sqlite3_column_bytes(st, 0);
    zl_blob *b = &arr[n++];
    b->data = malloc(len + 1);
    if (b->data) {
      if (len) memcpy(b->data, d, len);
      ((char *)b->data)[len] = 0;
    }
    b->len = len;
    const char *sid = (const char *)sqlite3_column_text(st, 1);
    b->stream_id = strdup(sid ? sid : "");
    b->offset = sqlite3_column_int64(st, 2);
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  *out = arr;
  return n;
}

void zl_blobs_free(zl_blob *b, long long n) {
  for (long long i = 0; i < n; i++) {
    free(b[i].data);
    free(b[i].stream_id);
  }
  free(b);
}
