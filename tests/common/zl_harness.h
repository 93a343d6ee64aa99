/* zl_harness: start/stop zerobus-local from C tests and inspect what it stored.
 *
 * The server binary comes from $ZEROBUS_LOCAL_BIN, else the build tree's
 * server/zerobus-local (ZL_DEFAULT_BIN). Each zl_start() uses a fresh temporary database
 * unless one is given. All functions are blocking and not thread-safe for the same
 * zl_server (different servers may be used from different threads). */
#ifndef ZL_HARNESS_H
#define ZL_HARNESS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct zl_server {
  int pid; /* child pid, 0 when not running */
  int grpc_port, http_port;
  char endpoint[64]; /* "http://127.0.0.1:<grpc_port>" (plaintext) or https:// with TLS */
  char http_url[64]; /* "http://127.0.0.1:<http_port>" (workspace URL for OAuth/UC) */
  char db_path[512]; /* a fresh temp file per server unless given */
} zl_server;

/* Starts zerobus-local with --port 0 --http-port 0 --db <fresh temp path> plus extra_args
 * (NULL-terminated, may be NULL), waits (<= 10 s) for the ready line. 0 on success. */
int zl_start(zl_server *s, const char *const *extra_args);
/* Same but on a given db path (restart on the same database). */
int zl_start_db(zl_server *s, const char *db_path, const char *const *extra_args);
/* SIGTERM + waitpid; returns the exit status (0 = clean), -1 if not running. */
int zl_stop(zl_server *s);
/* SIGKILL + waitpid. Returns 0, or -1 if not running. */
int zl_kill(zl_server *s);
/* POST /zerobus-local/faults with a fault script; 0 on HTTP 200. */
int zl_set_faults(zl_server *s, const char *json);
/* DELETE /zerobus-local/faults; 0 on HTTP 200. */
int zl_clear_faults(zl_server *s);
/* A counter from GET /zerobus-local/counters; table NULL = global; -1 on error. */
long long zl_counter(zl_server *s, const char *table, const char *name);
/* SELECT count(*) from the SQLite table, 0 if absent, -1 on error. */
long long zl_row_count(zl_server *s, const char *table);

/* Payloads of `table` in rowid order: returns the count (-1 on error), *out = malloc'd
 * array; free with zl_blobs_free. data is NUL-terminated for convenience (len excludes it). */
typedef struct zl_blob {
  void *data;
  size_t len;
  char *stream_id;
  long long offset;
} zl_blob;
long long zl_payloads(zl_server *s, const char *table, zl_blob **out);
void zl_blobs_free(zl_blob *b, long long n);

#ifdef __cplusplus
}
#endif
#endif
