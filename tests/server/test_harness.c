/* Tests of the zl_harness library itself (CTest label "server"): start/stop, restart on
 * the same database, control endpoint, counters, and the SQLite readers (on a database
 * prepared with rows in zerobus-local's layout before the server opens it). */
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "zl_harness.h"

static int failures;
#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      failures++;                                                              \
    }                                                                          \
  } while (0)

static void prepare_db(const char *path) {
  sqlite3 *db;
  CHECK(sqlite3_open(path, &db) == SQLITE_OK);
  CHECK(sqlite3_exec(db,
                     "CREATE TABLE \"h.s.t\" (\"_zerobus_stream_id\" TEXT, \"_zerobus_offset\" "
                     "INTEGER, \"_zerobus_payload\");"
                     "INSERT INTO \"h.s.t\" VALUES ('s1', 0, '{\"a\":1}');"
                     "INSERT INTO \"h.s.t\" VALUES ('s1', 1, x'00ff10');",
                     NULL, NULL, NULL) == SQLITE_OK);
  sqlite3_close(db);
}

int main(void) {
  zl_server s;
  const char *args[] = {"--no-auth", NULL};
  CHECK(zl_start(&s, args) == 0);
  CHECK(s.pid > 0 && s.grpc_port > 0 && s.http_port > 0);
  char want[64];
  snprintf(want, sizeof want, "http://127.0.0.1:%d", s.grpc_port);
  CHECK(strcmp(s.endpoint, want) == 0);
  snprintf(want, sizeof want, "http://127.0.0.1:%d", s.http_port);
  CHECK(strcmp(s.http_url, want) == 0);

  CHECK(zl_counter(&s, NULL, "calls") == 0);
  CHECK(zl_counter(&s, NULL, "tokens_issued") == 0);
  CHECK(zl_counter(&s, NULL, "no_such_counter") == -1);
  CHECK(zl_counter(&s, "never.seen.table", "records") == 0);
  CHECK(zl_row_count(&s, "h.s.t") == 0);
  CHECK(zl_set_faults(&s, "{\"tables\":{\"h.s.t\":[{\"fail_create\":14}]}}") == 0);
  CHECK(zl_set_faults(&s, "{\"tables\":{\"bad\":[]}}") == -1);
  CHECK(zl_clear_faults(&s) == 0);
  /* a fault script names the table: it now shows up with zero counters */
  CHECK(zl_counter(&s, "h.s.t", "create_attempts") == 0);
  CHECK(zl_stop(&s) == 0);
  CHECK(s.pid == 0);
  CHECK(zl_stop(&s) == -1);

  /* restart on a prepared database: readers see rows in rowid order */
  char dir[] = "/tmp/zl-harness-test-XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  char db[256];
  snprintf(db, sizeof db, "%s/x.db", dir);
  prepare_db(db);
  CHECK(zl_start_db(&s, db, args) == 0);
  CHECK(strcmp(s.db_path, db) == 0);
  CHECK(zl_row_count(&s, "h.s.t") == 2);
  zl_blob *b = NULL;
  long long n = zl_payloads(&s, "h.s.t", &b);
  CHECK(n == 2);
  if (n == 2) {
    CHECK(b[0].len == 7 && memcmp(b[0].data, "{\"a\":1}", 7) == 0);
    CHECK(strcmp(b[0].stream_id, "s1") == 0 && b[0].offset == 0);
    CHECK(b[1].len == 3 && memcmp(b[1].data, "\x00\xff\x10", 3) == 0 && b[1].offset == 1);
  }
  zl_blobs_free(b, n);
  CHECK(zl_payloads(&s, "no.such.table", &b) == 0 && b == NULL);
  CHECK(zl_kill(&s) == 0);
  CHECK(s.pid == 0);

  /* a server that cannot start (bad flag) is reported, not waited for 10 s */
  const char *bad[] = {"--store", "nonsense", NULL};
  CHECK(zl_start(&s, bad) == -1 && s.pid == 0);

  char f[300];
  const char *suffix[] = {"", "-wal", "-shm"};
  for (int i = 0; i < 3; i++) {
    snprintf(f, sizeof f, "%s%s", db, suffix[i]);
    unlink(f);
  }
  rmdir(dir);

  if (failures)
    fprintf(stderr, "%d check(s) failed\n", failures);
  else
    printf("test_harness: all checks passed\n");
  return failures ? 1 : 0;
}
