/* zerobus-local: the storage thread (SQLite, group commit).
 *
 * Workers hand every accepted ingest request to storage_submit(); the storage thread
 * takes everything queued, decodes the records (JSON via cJSON, PROTO via the stream's
 * dynamic decoder), inserts them in ONE transaction, commits, and only then publishes
 * `stream->durable = wire offset` for each request. Worker ticks turn that into acks.
 *
 * Table layout: SQLite table named exactly "cat.sch.tbl" with the columns
 * _zerobus_stream_id TEXT, _zerobus_offset INTEGER, _zerobus_payload (BLOB for PROTO,
 * TEXT for JSON), plus one column per top-level record field, added with ALTER TABLE as
 * new keys appear. Nested and repeated values are stored as JSON text.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "zerobus_service.pb-c.h"
#include "zl.h"

#define QUEUE_MAX_REQUESTS 200000
#define QUEUE_MAX_BYTES (512LL << 20)
#define RESERVED_COL (-1)

/* ------------------------------------------------------------------ streams */
zl_stream *stream_new(zl_table *t, int record_type, pd_schema *schema) {
  zl_stream *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  atomic_init(&s->refs, 1);
  s->table = t;
  s->record_type = record_type;
  s->schema = schema;
  atomic_init(&s->durable, -1);
  atomic_init(&s->error, 0);
  return s;
}

void stream_ref(zl_stream *s) {
  atomic_fetch_add(&s->refs, 1);
}

void stream_unref(zl_stream *s) {
  if (s && atomic_fetch_sub(&s->refs, 1) == 1) {
    pd_schema_free(s->schema);
    free(s);
  }
}

/* ------------------------------------------------------------------ queue */
typedef struct sreq {
  struct sreq *next;
  zl_stream *st;
  Databricks__Zerobus__EphemeralStreamRequest *msg;
  long long first, wire, bytes;
} sreq;

static pthread_mutex_t q_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t q_cv = PTHREAD_COND_INITIALIZER;
static pthread_cond_t q_space_cv = PTHREAD_COND_INITIALIZER;
static sreq *q_head, *q_tail;
static long long q_count, q_bytes;
static int q_stop;
static pthread_t g_storage_thread;
static int g_storage_running;

static long long request_bytes(Databricks__Zerobus__EphemeralStreamRequest *m) {
  if (m->payload_case == DATABRICKS__ZEROBUS__EPHEMERAL_STREAM_REQUEST__PAYLOAD_INGEST_RECORD) {
    Databricks__Zerobus__IngestRecordRequest *r = m->ingest_record;
    return r->record_case == DATABRICKS__ZEROBUS__INGEST_RECORD_REQUEST__RECORD_JSON_RECORD
               ? (long long)strlen(r->json_record)
               : (long long)r->proto_encoded_record.len;
  }
  long long n = 0;
  Databricks__Zerobus__IngestRecordBatchRequest *b = m->ingest_record_batch;
  if (b->batch_case == DATABRICKS__ZEROBUS__INGEST_RECORD_BATCH_REQUEST__BATCH_JSON_BATCH)
    for (size_t i = 0; i < b->json_batch->n_records; i++)
      n += (long long)strlen(b->json_batch->records[i]);
  else
    for (size_t i = 0; i < b->proto_encoded_batch->n_records; i++)
      n += (long long)b->proto_encoded_batch->records[i].len;
  return n + 64;
}

void storage_submit(zl_stream *s, void *msg, long long first_record_offset, long long wire_offset) {
  sreq *r = malloc(sizeof *r);
  if (!r) {
    atomic_store(&s->error, 8 /* RESOURCE_EXHAUSTED */);
    snprintf(s->errmsg, sizeof s->errmsg, "zerobus-local: out of memory");
    databricks__zerobus__ephemeral_stream_request__free_unpacked(msg, NULL);
    return;
  }
  stream_ref(s);
  r->next = NULL;
  r->st = s;
  r->msg = msg;
  r->first = first_record_offset;
  r->wire = wire_offset;
  r->bytes = request_bytes(msg);
  pthread_mutex_lock(&q_mu);
  /* Backpressure: a full queue blocks the worker, which stops reading, which lets
   * HTTP/2 flow control slow the clients down. */
  while (!q_stop && (q_count >= QUEUE_MAX_REQUESTS || q_bytes >= QUEUE_MAX_BYTES))
    pthread_cond_wait(&q_space_cv, &q_mu);
  if (q_tail)
    q_tail->next = r;
  else
    q_head = r;
  q_tail = r;
  q_count++;
  q_bytes += r->bytes;
  pthread_cond_signal(&q_cv);
  pthread_mutex_unlock(&q_mu);
}

/* ------------------------------------------------------------------ SQLite schema cache */
typedef struct colmap_ent {
  char *key; /* lowercased column name */
  int idx;   /* column index in tschema->cols, or RESERVED_COL */
} colmap_ent;

typedef struct tschema {
  char *name;
  char **cols; /* user columns in table order */
  int ncols, cap;
  colmap_ent *map;
  int map_cap, map_len;
  sqlite3_stmt *ins;
  int dirty; /* columns changed: re-prepare */
  int *set_gen;
  int gen;
  struct tschema *next;
} tschema;

static sqlite3 *g_db;
static tschema *g_schemas;

static char *lowerdup(const char *s) {
  char *d = strdup(s);
  if (d)
    for (char *p = d; *p; p++) *p = (char)tolower((unsigned char)*p);
  return d;
}

static unsigned hash_str(const char *s) {
  unsigned h = 2166136261u;
  for (; *s; s++) h = (h ^ (unsigned char)tolower((unsigned char)*s)) * 16777619u;
  return h;
}

static int map_find(tschema *t, const char *name) {
  if (!t->map_cap) return -2;
  unsigned i = hash_str(name) & (unsigned)(t->map_cap - 1);
  for (;;) {
    colmap_ent *e = &t->map[i];
    if (!e->key) return -2;
    if (strcasecmp(e->key, name) == 0) return e->idx;
    i = (i + 1) & (unsigned)(t->map_cap - 1);
  }
}

static void map_put(tschema *t, const char *name, int idx) {
  if ((t->map_len + 1) * 2 > t->map_cap) {
    int ncap = t->map_cap ? t->map_cap * 2 : 64;
    colmap_ent *n = calloc((size_t)ncap, sizeof *n);
    if (!n) return;
    for (int i = 0; i < t->map_cap; i++)
      if (t->map[i].key) {
        unsigned j = hash_str(t->map[i].key) & (unsigned)(ncap - 1);
        while (n[j].key) j = (j + 1) & (unsigned)(ncap - 1);
        n[j] = t->map[i];
      }
    free(t->map);
    t->map = n;
    t->map_cap = ncap;
  }
  unsigned i = hash_str(name) & (unsigned)(t->map_cap - 1);
  while (t->map[i].key) i = (i + 1) & (unsigned)(t->map_cap - 1);
  t->map[i].key = lowerdup(name);
  t->map[i].idx = idx;
  t->map_len++;
}

/* Appends a SQL-quoted identifier to buf. */
static void quote_ident(char **buf, size_t *len, size_t *cap, const char *id) {
  size_t need = *len + strlen(id) * 2 + 4;
  if (need > *cap) {
    size_t ncap = need * 2;
    char *n = realloc(*buf, ncap);
    if (!n) return;
    *buf = n;
    *cap = ncap;
  }
  char *p = *buf + *len;
  *p++ = '"';
  for (const char *s = id; *s; s++) {
    if (*s == '"') *p++ = '"';
    *p++ = *s;
  }
  *p++ = '"';
  *p = 0;
  *len = (size_t)(p - *buf);
}

static void append(char **buf, size_t *len, size_t *cap, const char *s) {
  size_t n = strlen(s);
  if (*len + n + 1 > *cap) {
    size_t ncap = (*len + n + 1) * 2;
    char *nb = realloc(*buf, ncap);
    if (!nb) return;
    *buf = nb;
    *cap = ncap;
  }
  memcpy(*buf + *len, s, n + 1);
  *len += n;
}

static int exec_sql(const char *sql) {
  char *err = NULL;
  int rc = sqlite3_exec(g_db, sql, NULL, NULL, &err);
  if (rc != SQLITE_OK) {
    zl_log("sqlite: %s (%.200s)", err ? err : "?", sql);
    sqlite3_free(err);
  }
  return rc;
}

static void add_col_local(tschema *t, const char *name) {
  if (t->ncols == t->cap) {
    int ncap = t->cap ? t->cap * 2 : 16;
    char **n = realloc(t->cols, (size_t)ncap * sizeof *n);
    int *g = realloc(t->set_gen, (size_t)ncap * sizeof *g);
    if (!n || !g) {
      if (n) t->cols = n;
      if (g) t->set_gen = g;
      return;
    }
    t->cols = n;
    t->set_gen = g;
    t->cap = ncap;
  }
  t->cols[t->ncols] = strdup(name);
  t->set_gen[t->ncols] = 0;
  map_put(t, name, t->ncols);
  t->ncols++;
  t->dirty = 1;
}

static tschema *schema_get(const char *table) {
  for (tschema *t = g_schemas; t; t = t->next)
    if (strcmp(t->name, table) == 0) return t;
  tschema *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  t->name = strdup(table);
  char *sql = NULL;
  size_t len = 0, cap = 0;
  append(&sql, &len, &cap, "CREATE TABLE IF NOT EXISTS ");
  quote_ident(&sql, &len, &cap, table);
  append(&sql, &len, &cap,
         " (\"_zerobus_stream_id\" TEXT, \"_zerobus_offset\" INTEGER, \"_zerobus_payload\")");
  exec_sql(sql);
  map_put(t, "_zerobus_stream_id", RESERVED_COL);
  map_put(t, "_zerobus_offset", RESERVED_COL);
  map_put(t, "_zerobus_payload", RESERVED_COL);
  /* existing columns (restart on the same database) */
  len = 0;
  append(&sql, &len, &cap, "SELECT name FROM pragma_table_info(?)");
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(g_db, sql, -1, &st, NULL) == SQLITE_OK) {
    sqlite3_bind_text(st, 1, table, -1, SQLITE_TRANSIENT);
    while (sqlite3_step(st) == SQLITE_ROW) {
      const char *col = (const char *)sqlite3_column_text(st, 0);
      if (col && map_find(t, col) == -2) add_col_local(t, col);
    }
  }
  sqlite3_finalize(st);
  free(sql);
  t->dirty = 1;
  t->next = g_schemas;
  g_schemas = t;
  return t;
}

static const char *sql_type_for(const cJSON *v, int is_blob) {
  if (is_blob) return "BLOB";
  if (cJSON_IsBool(v)) return "INTEGER";
  if (cJSON_IsRaw(v)) return "INTEGER";
  if (cJSON_IsNumber(v)) {
    double d = v->valuedouble;
    return (d == floor(d) && fabs(d) < 9.2e18) ? "INTEGER" : "REAL";
  }
  if (cJSON_IsString(v) || cJSON_IsObject(v) || cJSON_IsArray(v)) return "TEXT";
  return "";
}

/* Makes sure column `name` exists; returns its index, RESERVED_COL, or -3 on failure. */
static int ensure_col(tschema *t, const char *name, const cJSON *v, int is_blob) {
  int idx = map_find(t, name);
  if (idx != -2) return idx;
  char *sql = NULL;
  size_t len = 0, cap = 0;
  append(&sql, &len, &cap, "ALTER TABLE ");
  quote_ident(&sql, &len, &cap, t->name);
  append(&sql, &len, &cap, " ADD COLUMN ");
  quote_ident(&sql, &len, &cap, name);
  append(&sql, &len, &cap, " ");
  append(&sql, &len, &cap, sql_type_for(v, is_blob));
  int rc = sql ? exec_sql(sql) : SQLITE_NOMEM;
  free(sql);
  if (rc != SQLITE_OK) {
    map_put(t, name, -3); /* don't retry on every record; the payload column keeps it */
    return -3;
  }
  if (t->ins) {
    sqlite3_finalize(t->ins);
    t->ins = NULL;
  }
  add_col_local(t, name);
  return t->ncols - 1;
}

static int prepare_insert(tschema *t) {
  if (t->ins && !t->dirty) return 0;
  if (t->ins) sqlite3_finalize(t->ins);
  t->ins = NULL;
  char *sql = NULL;
  size_t len = 0, cap = 0;
  append(&sql, &len, &cap, "INSERT INTO ");
  quote_ident(&sql, &len, &cap, t->name);
  append(&sql, &len, &cap, " (\"_zerobus_stream_id\", \"_zerobus_offset\", \"_zerobus_payload\"");
  for (int i = 0; i < t->ncols; i++) {
    append(&sql, &len, &cap, ", ");
    quote_ident(&sql, &len, &cap, t->cols[i]);
  }
  append(&sql, &len, &cap, ") VALUES (?, ?, ?");
  for (int i = 0; i < t->ncols; i++) append(&sql, &len, &cap, ", ?");
  append(&sql, &len, &cap, ")");
  int rc = sql ? sqlite3_prepare_v2(g_db, sql, -1, &t->ins, NULL) : SQLITE_NOMEM;
  if (rc != SQLITE_OK) zl_log("sqlite prepare: %s", sqlite3_errmsg(g_db));
  free(sql);
  t->dirty = 0;
  return rc == SQLITE_OK ? 0 : -1;
}

/* ------------------------------------------------------------------ one record */
typedef struct record_view {
  const void *data;
  size_t len;
  int is_json;
} record_view;

/* Strings are bound SQLITE_STATIC: the cJSON value outlives the sqlite3_step(). */
static void bind_value(sqlite3_stmt *st, int param, const cJSON *v, int is_blob) {
  if (is_blob && cJSON_IsString(v)) {
    uint8_t *raw = NULL;
    size_t n = 0;
    if (zl_base64_decode(v->valuestring, &raw, &n) == 0) {
      sqlite3_bind_blob(st, param, raw ? (const void *)raw : "", (int)n, free);
      return;
    }
    free(raw);
  }
  if (cJSON_IsNull(v))
    sqlite3_bind_null(st, param);
  else if (cJSON_IsBool(v))
    sqlite3_bind_int(st, param, cJSON_IsTrue(v) ? 1 : 0);
  else if (cJSON_IsRaw(v)) { /* exact 64-bit integers from the proto decoder */
    const char *s = v->valuestring;
    if (s[0] == '-')
      sqlite3_bind_int64(st, param, strtoll(s, NULL, 10));
    else {
      unsigned long long u = strtoull(s, NULL, 10);
      if (u <= 0x7fffffffffffffffULL)
        sqlite3_bind_int64(st, param, (long long)u);
      else
        sqlite3_bind_text(st, param, s, -1, SQLITE_STATIC);
    }
  } else if (cJSON_IsNumber(v)) {
    double d = v->valuedouble;
    if (d == floor(d) && fabs(d) < 9.2e18)
      sqlite3_bind_int64(st, param, (long long)d);
    else
      sqlite3_bind_double(st, param, d);
  } else if (cJSON_IsString(v))
    sqlite3_bind_text(st, param, v->valuestring, -1, SQLITE_STATIC);
  else {
    char *txt = cJSON_PrintUnformatted(v);
    if (txt)
      sqlite3_bind_text(st, param, txt, -1, free);
    else
      sqlite3_bind_null(st, param);
  }
}

/* Inserts one decoded record. 0 ok, -1 SQLite error. */
static int insert_record(tschema *t, zl_stream *s, long long offset, const record_view *rv,
                         const cJSON *obj) {
  /* pass 1: columns */
  for (const cJSON *it = obj->child; it; it = it->next) {
    if (!it->string) continue;
    int is_blob = !rv->is_json && s->schema && pd_top_field_is_bytes(s->schema, it->string);
    ensure_col(t, it->string, it, is_blob);
  }
  if (prepare_insert(t) != 0) return -1;
  sqlite3_stmt *st = t->ins;
  sqlite3_bind_text(st, 1, s->stream_id, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, offset);
  if (rv->is_json)
    sqlite3_bind_text(st, 3, rv->data, (int)rv->len, SQLITE_STATIC);
  else
    sqlite3_bind_blob(st, 3, rv->len ? rv->data : "", (int)rv->len, SQLITE_STATIC);
  for (const cJSON *it = obj->child; it; it = it->next) {
    if (!it->string) continue;
    int idx = map_find(t, it->string);
    if (idx < 0) continue;
    int is_blob = !rv->is_json && s->schema && pd_top_field_is_bytes(s->schema, it->string);
    bind_value(st, 4 + idx, it, is_blob);
  }
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  if (rc != SQLITE_DONE) {
    zl_log("sqlite insert into %s: %s", t->name, sqlite3_errmsg(g_db));
    return -1;
  }
  return 0;
}

static size_t request_records(Databricks__Zerobus__EphemeralStreamRequest *m, record_view *out,
                              size_t cap) {
  if (m->payload_case == DATABRICKS__ZEROBUS__EPHEMERAL_STREAM_REQUEST__PAYLOAD_INGEST_RECORD) {
    Databricks__Zerobus__IngestRecordRequest *r = m->ingest_record;
    if (cap < 1) return 1;
    if (r->record_case == DATABRICKS__ZEROBUS__INGEST_RECORD_REQUEST__RECORD_JSON_RECORD)
      out[0] = (record_view){r->json_record, strlen(r->json_record), 1};
    else
      out[0] = (record_view){r->proto_encoded_record.data, r->proto_encoded_record.len, 0};
    return 1;
  }
  Databricks__Zerobus__IngestRecordBatchRequest *b = m->ingest_record_batch;
  if (b->batch_case == DATABRICKS__ZEROBUS__INGEST_RECORD_BATCH_REQUEST__BATCH_JSON_BATCH) {
    size_t n = b->json_batch->n_records;
    for (size_t i = 0; i < n && i < cap; i++)
      out[i] = (record_view){b->json_batch->records[i], strlen(b->json_batch->records[i]), 1};
    return n;
  }
  size_t n = b->proto_encoded_batch->n_records;
  for (size_t i = 0; i < n && i < cap; i++)
    out[i] = (record_view){b->proto_encoded_batch->records[i].data,
                           b->proto_encoded_batch->records[i].len, 0};
  return n;
}

static void fail_stream(zl_stream *s, int code, const char *msg) {
  if (atomic_load(&s->error)) return;
  snprintf(s->errmsg, sizeof s->errmsg, "%.319s", msg);
  atomic_store(&s->error, code);
}

/* Decodes and stores one request; all of its records or none. */
static void store_request(sreq *r) {
  zl_stream *s = r->st;
  if (atomic_load(&s->error)) return;
  record_view stackv[64], *views = stackv;
  size_t n = request_records(r->msg, stackv, 64);
  if (n > 64) {
    views = malloc(n * sizeof *views);
    if (!views) {
      fail_stream(s, 8, "zerobus-local: out of memory");
      return;
    }
    request_records(r->msg, views, n);
  }
  cJSON *stack_objs[64], **objs = n <= 64 ? stack_objs : calloc(n, sizeof *objs);
  if (!objs) {
    if (views != stackv) free(views);
    fail_stream(s, 8, "zerobus-local: out of memory");
    return;
  }
  size_t ok_n = 0;
  char err[200], msg[300];
  for (; ok_n < n; ok_n++) {
    cJSON *o;
    if (views[ok_n].is_json) {
      o = cJSON_ParseWithLength(views[ok_n].data, views[ok_n].len);
      if (!o || !cJSON_IsObject(o)) {
        cJSON_Delete(o);
        snprintf(msg, sizeof msg, "record %zu of request %lld is not a JSON object", ok_n, r->wire);
        fail_stream(s, 3, msg);
        break;
      }
    } else {
      o = pd_decode(s->schema, views[ok_n].data, views[ok_n].len, err, sizeof err);
      if (!o) {
        snprintf(msg, sizeof msg, "record %zu of request %lld does not match the descriptor: %s",
                 ok_n, r->wire, err);
        fail_stream(s, 3, msg);
        break;
      }
    }
    objs[ok_n] = o;
  }
  if (ok_n == n && g_db) {
    tschema *t = schema_get(s->table->name);
    for (size_t i = 0; i < n && t; i++) {
      if (insert_record(t, s, r->first + (long long)i, &views[i], objs[i]) != 0) {
        fail_stream(s, 13, "zerobus-local: SQLite insert failed");
        break;
      }
    }
  }
  for (size_t i = 0; i < ok_n; i++) cJSON_Delete(objs[i]);
  if (objs != stack_objs) free(objs);
  if (views != stackv) free(views);
}

static void *storage_main(void *arg) {
  (void)arg;
  for (;;) {
    pthread_mutex_lock(&q_mu);
    while (!q_head && !q_stop) pthread_cond_wait(&q_cv, &q_mu);
    sreq *batch = q_head;
    q_head = q_tail = NULL;
    q_count = 0;
    q_bytes = 0;
    int stop = q_stop;
    pthread_cond_broadcast(&q_space_cv);
    pthread_mutex_unlock(&q_mu);
    if (!batch && stop) break;
    if (g_db) exec_sql("BEGIN");
    for (sreq *r = batch; r; r = r->next) store_request(r);
    int committed = g_db ? exec_sql("COMMIT") == SQLITE_OK : 1;
    if (!committed) exec_sql("ROLLBACK");
    for (sreq *r = batch, *next; r; r = next) {
      next = r->next;
      if (!committed)
        fail_stream(r->st, 13, "zerobus-local: SQLite commit failed");
      else if (!atomic_load(&r->st->error))
        atomic_store(&r->st->durable, r->wire);
      stream_unref(r->st);
      databricks__zerobus__ephemeral_stream_request__free_unpacked(r->msg, NULL);
      free(r);
    }
  }
  return NULL;
}

int storage_start(char *err, size_t errlen) {
  if (g_cfg.store == STORE_NULL) return 0;
  const char *path = g_cfg.store == STORE_MEMORY ? ":memory:" : g_cfg.db_path;
  if (sqlite3_open_v2(path, &g_db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      NULL) != SQLITE_OK) {
    snprintf(err, errlen, "cannot open database %s: %s", path, g_db ? sqlite3_errmsg(g_db) : "?");
    sqlite3_close(g_db);
    g_db = NULL;
    return -1;
  }
  sqlite3_busy_timeout(g_db, 5000);
  if (g_cfg.store == STORE_SQLITE) {
    if (exec_sql("PRAGMA journal_mode=WAL") != SQLITE_OK) {
      snprintf(err, errlen, "cannot use database %s: %s", path, sqlite3_errmsg(g_db));
      return -1;
    }
    /* NORMAL in WAL mode: committed data survives a crash of this process. */
    exec_sql("PRAGMA synchronous=NORMAL");
  }
  g_storage_running = 1;
  pthread_create(&g_storage_thread, NULL, storage_main, NULL);
  return 0;
}

void storage_stop(void) {
  if (!g_storage_running) return;
  pthread_mutex_lock(&q_mu);
  q_stop = 1;
  pthread_cond_broadcast(&q_cv);
  pthread_cond_broadcast(&q_space_cv);
  pthread_mutex_unlock(&q_mu);
  pthread_join(g_storage_thread, NULL);
  g_storage_running = 0;
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
  if (g_db) {
    exec_sql("PRAGMA wal_checkpoint(TRUNCATE)");
    sqlite3_close(g_db);
    g_db = NULL;
  }
}
