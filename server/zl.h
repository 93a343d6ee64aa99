/* zerobus-local: internal interfaces between the server's modules.
 *
 * Threads (each has one job):
 *   main     parses flags, starts everything, waits for SIGTERM/SIGINT (sigwait), shuts down.
 *   workers  (grpc_server.c) one gRPC completion queue each; own their calls, no per-call locks.
 *   storage  (storage.c) one thread; takes decoded requests from a queue, commits them in
 *            group transactions, then publishes "durable up to wire offset X" per stream.
 *   http     (http.c) libmicrohttpd's own thread: OAuth, Unity Catalog, control endpoints.
 */
#ifndef ZL_H
#define ZL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

/* ---------------------------------------------------------------- configuration */
typedef enum { STORE_SQLITE, STORE_MEMORY, STORE_NULL } zl_store_kind;

typedef struct zl_config {
  const char *host;
  int grpc_port, http_port;
  const char *db_path;
  zl_store_kind store;
  int no_auth;
  const char *client_id, *client_secret;
  long token_ttl;
  const char *faults_file;
  int chaos_on;
  unsigned long long chaos_seed;
  double chaos_rate;
  int chaos_fatal;
  int ack_interval_ms;
  const char *tls_cert, *tls_key;
  long long max_message_bytes;
  int strict_tables; /* create_stream for an undeclared table -> NOT_FOUND */
  int workers;
  int verbose;
} zl_config;

extern zl_config g_cfg;
extern atomic_int g_stopping;

long long zl_now_ms(void); /* CLOCK_MONOTONIC, milliseconds */
void zl_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---------------------------------------------------------------- tables, counters */
typedef struct zl_counters {
  atomic_llong create_attempts, creates, requests, records, bytes, acks_sent, auth_failures;
} zl_counters;

typedef struct zl_global_counters {
  atomic_llong connections, calls, creates, create_attempts, requests, records, bytes, acks_sent,
      tokens_issued;
} zl_global_counters;

extern zl_global_counters g_counters;

/* One per table name ever seen (never freed before exit, so pointers stay valid). */
typedef struct zl_table {
  char *name;
  zl_counters c;
  /* fault script state, guarded by the faults mutex in faults.c */
  cJSON *script; /* JSON array or NULL */
  int cursor;    /* index into the expanded entry list (repeat counted) */
  /* UC declaration (NULL when not declared); an array of column objects */
  cJSON *uc_columns;
  struct zl_table *next;
} zl_table;

zl_table *tables_get(const char *name, int create); /* thread-safe */
/* Calls fn for every table under the registry lock. */
void tables_foreach(void (*fn)(zl_table *t, void *arg), void *arg);
int table_name_valid(const char *name); /* three non-empty dot-separated parts */

/* Parses a --table spec; 0 ok, -1 with err filled. */
int tables_declare_spec(const char *spec, char *err, size_t errlen);
/* Loads --config JSON; 0 ok, -1 with err. */
int tables_declare_config(const char *path, char *err, size_t errlen);
int tables_any_declared(void);

/* ---------------------------------------------------------------- auth */
/* Issues an opaque token for `table` (may be NULL = workspace token, UC only). Caller frees. */
char *auth_issue_token(const char *table, long ttl_sec);
/* 0 = ok; otherwise a gRPC status code (16 UNAUTHENTICATED, 7 PERMISSION_DENIED) and msg. */
int auth_check_grpc(const char *authorization, const char *table, char *msg, size_t msglen);
/* HTTP bearer check for the UC endpoint: 0 ok, -1 bad. */
int auth_check_bearer(const char *authorization);

/* ---------------------------------------------------------------- faults */
enum { MAL_NONE = 0, MAL_BACKWARDS, MAL_DUPLICATE, MAL_BEYOND, MAL_NO_OFFSET };

typedef struct zl_call_faults {
  int active;      /* any key set */
  int fail_create; /* gRPC code, 0 = off */
  char fail_message[160];
  int hang_headers;
  long long fail_at_request; /* -1 = off */
  int fail_status;
  long long drop_at_request; /* -1 = off */
  int ack_delay_ms;
  int no_ack;
  long long ack_prefix;          /* -1 = off */
  int malformed;                 /* MAL_* */
  long long malformed_after;     /* request index N */
  long long close_signal_ms;     /* -1 = off */
  long long close_after;         /* request index N */
  long long reject_over_bytes;   /* -1 = off */
  long long max_records_per_sec; /* 0 = off */
  char source[16];               /* "script" / "chaos" */
} zl_call_faults;

void faults_init(void);
/* Loads a script (POST body / --faults file). 0 ok, -1 with err. */
int faults_load(const char *json, char *err, size_t errlen);
void faults_clear_all(void);
/* Takes the next script entry of `t` (or a chaos draw); fills *f (f->active=0 if none). */
void faults_next_call(zl_table *t, unsigned long long call_seq, zl_call_faults *f);

/* ---------------------------------------------------------------- proto decoding */
typedef struct pd_schema pd_schema; /* immutable after creation: shareable between threads */
pd_schema *pd_schema_parse(const uint8_t *data, size_t len, char *err, size_t errlen);
void pd_schema_free(pd_schema *s);
/* Decodes one record into a JSON object (bytes as base64 strings in nested values;
 * top-level bytes fields are marked via pd_is_bytes_field). NULL on malformed input. */
cJSON *pd_decode(const pd_schema *s, const uint8_t *data, size_t len, char *err, size_t errlen);
/* 1 if the top-level field of that name is `bytes` (stored as BLOB). */
int pd_top_field_is_bytes(const pd_schema *s, const char *name);
/* base64 helpers */
char *zl_base64_encode(const uint8_t *data, size_t len);
int zl_base64_decode(const char *in, uint8_t **out, size_t *outlen);

/* ---------------------------------------------------------------- streams + storage */
/* One per successful create_stream; refcounted because queued storage work and the
 * owning call both hold it. `durable` is written by the storage thread (or the worker
 * in null mode) and read by the worker tick. */
typedef struct zl_stream {
  atomic_int refs;
  zl_table *table;
  char stream_id[40];
  int record_type;      /* 1 PROTO, 2 JSON */
  pd_schema *schema;    /* PROTO only */
  atomic_llong durable; /* highest wire offset committed, -1 none */
  atomic_int error;     /* gRPC code set by storage when a record could not be decoded */
  char errmsg[320];
} zl_stream;

zl_stream *stream_new(zl_table *t, int record_type, pd_schema *schema);
void stream_ref(zl_stream *s);
void stream_unref(zl_stream *s);

/* Hands one decoded request to the storage thread. `msg` ownership passes (it is an
 * unpacked EphemeralStreamRequest freed by storage). */
struct ProtobufCMessage;
void storage_submit(zl_stream *s, void *msg, long long first_record_offset, long long wire_offset);
int storage_start(char *err, size_t errlen);
void storage_stop(void); /* drains, commits, closes */

/* ---------------------------------------------------------------- gRPC + HTTP */
int grpc_side_start(char *err, size_t errlen); /* sets g_cfg.grpc_port to the bound port */
void grpc_side_stop(void);
long long grpc_live_calls(void);
int http_side_start(char *err, size_t errlen); /* sets g_cfg.http_port */
void http_side_stop(void);

#endif
