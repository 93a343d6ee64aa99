/*
 * fuzz_server_request: zerobus-local's handling of one ingest request after the
 * gRPC layer: protobuf-c unpack of EphemeralStreamRequest, the checks
 * handle_ingest() makes before storage (record type matches the stream, at least
 * one record), then the storage thread's store_request(): decode every record
 * (JSON via cJSON, PROTO via the dynamic decoder with the rich descriptor) and
 * insert it into SQLite with one column per top-level field (column names come
 * from the record, so they are fuzzed too).
 *
 * on_message()/handle_ingest() are static in server/grpc_server.c and tied to a
 * live gRPC call, so the checks between unpack and storage are restated here;
 * storage.c is compiled into this target (#include) to reach its static
 * store_request() with an in-memory database and no storage thread.
 * Input: byte 0 bit 0 = stream type (0 JSON, 1 PROTO); the rest = the request.
 * Properties: never crashes (ASan/UBSan); a request whose records all decode
 * adds exactly one row per record; a request with an undecodable record fails
 * the stream with INVALID_ARGUMENT (3) and adds no row.
 */
#include <stdarg.h>

#include "../../server/storage.c"
#include "fuzz_common.h"
#include "rich_descriptor.h"

zl_config g_cfg;
atomic_int g_stopping;
void zl_log(const char *fmt, ...) {
  (void)fmt;
}
long long zl_now_ms(void) {
  return 0;
}

static pd_schema *g_schema;
static zl_table g_table;
static long long g_iter, g_next_offset;

static void db_reset(void) {
  for (tschema *t = g_schemas, *next; t; t = next) {
    next = t->next;
    if (t->ins) sqlite3_finalize(t->ins);
    for (int i = 0; i < t->ncols; i++) free(t->cols[i]);
    for (int i = 0; i < t->map_cap; i++) free(t->map[i].key);
    free(t->map);
    free(t->cols);
    free(t->set_gen);
    free(t->name);
    free(t);
  }
  g_schemas = NULL;
  if (g_db) sqlite3_close(g_db);
  g_db = NULL;
  FUZZ_CHECK(sqlite3_open(":memory:", &g_db) == SQLITE_OK, "sqlite open");
}

static long long rows(void) {
  sqlite3_stmt *st = NULL;
  long long n = 0;
  if (sqlite3_prepare_v2(g_db, "SELECT count(*) FROM \"fuzz.s.t\"", -1, &st, NULL) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW)
    n = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return n;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  size_t len = 0;
  uint8_t *d = rich_descriptor(&len);
  char err[200];
  g_schema = pd_schema_parse(d, len, err, sizeof err);
  free(d);
  FUZZ_CHECK(g_schema != NULL, "rich descriptor refused: %s", err);
  g_table.name = "fuzz.s.t";
  g_cfg.store = STORE_MEMORY;
  db_reset();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  int type = (data[0] & 1) ? 1 : 2; /* 1 PROTO, 2 JSON */
  Databricks__Zerobus__EphemeralStreamRequest *req =
      databricks__zerobus__ephemeral_stream_request__unpack(NULL, size - 1, data + 1);
  if (!req) return 0;
  size_t nrec = 0;
  int type_ok = 0;
  if (req->payload_case == DATABRICKS__ZEROBUS__EPHEMERAL_STREAM_REQUEST__PAYLOAD_INGEST_RECORD) {
    Databricks__Zerobus__IngestRecordRequest *r = req->ingest_record;
    nrec = 1;
    type_ok = (type == 1 &&
               r->record_case ==
                   DATABRICKS__ZEROBUS__INGEST_RECORD_REQUEST__RECORD_PROTO_ENCODED_RECORD) ||
              (type == 2 &&
               r->record_case == DATABRICKS__ZEROBUS__INGEST_RECORD_REQUEST__RECORD_JSON_RECORD);
  } else if (req->payload_case ==
             DATABRICKS__ZEROBUS__EPHEMERAL_STREAM_REQUEST__PAYLOAD_INGEST_RECORD_BATCH) {
    Databricks__Zerobus__IngestRecordBatchRequest *b = req->ingest_record_batch;
    if (type == 1 &&
        b->batch_case ==
            DATABRICKS__ZEROBUS__INGEST_RECORD_BATCH_REQUEST__BATCH_PROTO_ENCODED_BATCH &&
        b->proto_encoded_batch) {
      type_ok = 1;
      nrec = b->proto_encoded_batch->n_records;
    } else if (type == 2 &&
               b->batch_case ==
                   DATABRICKS__ZEROBUS__INGEST_RECORD_BATCH_REQUEST__BATCH_JSON_BATCH &&
               b->json_batch) {
      type_ok = 1;
      nrec = b->json_batch->n_records;
    }
  }
  if (!type_ok || nrec == 0) {
    databricks__zerobus__ephemeral_stream_request__free_unpacked(req, NULL);
    return 0;
  }
  if (++g_iter % 2000 == 0) db_reset();
  zl_stream *s = stream_new(&g_table, type, type == 1 ? g_schema : NULL);
  snprintf(s->stream_id, sizeof s->stream_id, "fuzz-stream");
  sreq r = {NULL, s, req, g_next_offset, 0, 0};
  long long before = rows();
  store_request(&r);
  long long after = rows();
  int code = atomic_load(&s->error);
  if (code == 0) {
    FUZZ_CHECK(after - before == (long long)nrec, "%zu records stored as %lld rows", nrec,
               after - before);
    g_next_offset += (long long)nrec;
  } else {
    FUZZ_CHECK(code == 3 || code == 13, "stream error %d", code);
    if (code == 3)
      FUZZ_CHECK(after == before, "a refused request stored %lld rows", after - before);
    FUZZ_CHECK(s->errmsg[0], "stream error without a message");
  }
  s->schema = NULL; /* shared between iterations */
  stream_unref(s);
  databricks__zerobus__ephemeral_stream_request__free_unpacked(req, NULL);
  return 0;
}
