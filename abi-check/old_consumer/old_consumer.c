/*
 * old_consumer - a C program built against the BASELINE header
 * (abi-check/baseline/zerobus_abi.h, the released ABI) and run, unchanged,
 * against the current libzerobus.so.1. If the library broke a struct layout, a
 * constant, a function's meaning or an ownership rule the baseline promised, one
 * of the exact assertions below fails.
 *
 * usage: old_consumer ENDPOINT WORKSPACE_URL
 *   The server (zerobus-local, with auth: test-client/test-secret) is started by
 *   run.sh, which also checks the stored rows afterwards. Tables used:
 *     main.default.abi_old         1000 records: 500 single ingests + 5 batches of 100
 *     main.default.abi_old_events  1000 records in 10 batches, acks via poll_events
 *     main.default.abi_old_unacked 3 ingests, the server never acks (fault script)
 * Prints one line per check group and "old_consumer: N checks passed"; exits 1 at
 * the first failed check.
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zerobus_abi.h" /* the baseline copy: -I abi-check/baseline comes first */

static int g_checks;

#define CHECK(cond, ...)                                                                       \
  do {                                                                                         \
    g_checks++;                                                                                \
    if (!(cond)) {                                                                             \
      fprintf(stderr, "old_consumer: %s:%d: check failed: %s\n  ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                                            \
      fprintf(stderr, "\n");                                                                   \
      exit(1);                                                                                 \
    }                                                                                          \
  } while (0)

#define CHECK_OK(call, err)                                                   \
  do {                                                                        \
    zerobus_status rc_ = (call);                                              \
    CHECK(rc_ == ZEROBUS_OK, "%s -> %s: %s", #call, zerobus_status_name(rc_), \
          zerobus_error_message(err));                                        \
    CHECK((err) == NULL, "%s succeeded but left an error object", #call);     \
  } while (0)

/* ---- callback state (one per stream) ---- */
typedef struct consumer_state {
  int64_t next_ack; /* the offset on_ack must report next */
  int64_t acks;
  int64_t next_error;
  int64_t errors;
  int32_t last_error_code;
  int64_t logs;
  int freed;
} consumer_state;

static void on_ack(void *ud, int64_t offset) {
  consumer_state *st = ud;
  CHECK(offset == st->next_ack, "on_ack(%" PRId64 ") but expected %" PRId64, offset, st->next_ack);
  st->next_ack++;
  st->acks++;
}

static void on_error(void *ud, int64_t offset, const zerobus_error *err) {
  consumer_state *st = ud;
  CHECK(offset == st->next_error, "on_error(%" PRId64 ") but expected %" PRId64, offset,
        st->next_error);
  CHECK(err != NULL, "on_error without an error");
  st->last_error_code = zerobus_error_code(err);
  st->next_error++;
  st->errors++;
}

static void on_log(void *ud, int32_t level, const char *message) {
  consumer_state *st = ud;
  CHECK(level >= ZEROBUS_LOG_ERROR && level <= ZEROBUS_LOG_TRACE, "log level %d", (int)level);
  CHECK(message != NULL, "log without a message");
  st->logs++;
}

static void user_data_free(void *ud) {
  ((consumer_state *)ud)->freed++;
}

static zerobus_callbacks make_callbacks(consumer_state *st) {
  zerobus_callbacks cb;
  memset(&cb, 0xAB, sizeof cb); /* init must clear everything */
  zerobus_callbacks_init(&cb, sizeof cb);
  CHECK(cb.struct_size == sizeof cb, "callbacks_init struct_size %u", (unsigned)cb.struct_size);
  CHECK(cb.on_ack == NULL && cb.user_data == NULL && cb.headers == NULL &&
            cb.on_ack_range == NULL && cb.user_data_free == NULL,
        "callbacks_init left garbage");
  memset(st, 0, sizeof *st);
  cb.user_data = st;
  cb.on_ack = on_ack;
  cb.on_error = on_error;
  cb.on_log = on_log;
  cb.user_data_free = user_data_free;
  return cb;
}

static void check_versions_and_status(void) {
  CHECK(zerobus_abi_version() == ZEROBUS_ABI_MAJOR, "abi_version %d", (int)zerobus_abi_version());
  const char *v = zerobus_version();
  CHECK(v != NULL && v[0] >= '0' && v[0] <= '9', "version '%s'", v ? v : "(null)");
  CHECK(strcmp(zerobus_status_name(ZEROBUS_OK), "ZEROBUS_OK") == 0, "name of OK");
  CHECK(strcmp(zerobus_status_name(ZEROBUS_ERR_QUEUE_FULL), "ZEROBUS_ERR_QUEUE_FULL") == 0,
        "name of QUEUE_FULL: %s", zerobus_status_name(ZEROBUS_ERR_QUEUE_FULL));
  CHECK(strcmp(zerobus_status_name(ZEROBUS_ERR_INTERNAL), "ZEROBUS_ERR_INTERNAL") == 0,
        "name of INTERNAL: %s", zerobus_status_name(ZEROBUS_ERR_INTERNAL));
  for (int32_t c = ZEROBUS_OK; c <= ZEROBUS_ERR_INTERNAL; c++) {
    const char *n = zerobus_status_name(c), *s = zerobus_status_str(c);
    CHECK(n && strncmp(n, "ZEROBUS_", 8) == 0 && strcmp(n, "ZEROBUS_UNKNOWN") != 0,
          "status %d has name %s", (int)c, n ? n : "(null)");
    CHECK(s && s[0], "status %d has no description", (int)c);
  }
  CHECK(strcmp(zerobus_status_name(100000), "ZEROBUS_UNKNOWN") == 0, "unknown status name");
  /* The table as the baseline knew it: at least as large, same members in place. */
  const zerobus_api *api = zerobus_get_api(ZEROBUS_ABI_MAJOR);
  CHECK(api && api->struct_size >= sizeof(zerobus_api) && api->abi_major == ZEROBUS_ABI_MAJOR,
        "get_api: struct_size %u < baseline sizeof %zu", api ? (unsigned)api->struct_size : 0u,
        sizeof(zerobus_api));
  CHECK(api->version == zerobus_version && api->stream_ingest == zerobus_stream_ingest &&
            api->stream_poll_events == zerobus_stream_poll_events &&
            api->stream_last_error == zerobus_stream_last_error,
        "get_api members moved");
  CHECK(zerobus_get_api(ZEROBUS_ABI_MAJOR + 1) == NULL, "get_api(2)");
  /* NULL error objects read as documented */
  CHECK(zerobus_error_code(NULL) == ZEROBUS_OK && zerobus_error_retryable(NULL) == 0 &&
            zerobus_error_grpc_status(NULL) == -1 && zerobus_error_http_status(NULL) == -1 &&
            strcmp(zerobus_error_message(NULL), "") == 0 && zerobus_error_clone(NULL) == NULL,
        "NULL error accessors");
  zerobus_error_destroy(NULL);
  printf("versions/status: %s, abi %d, %d status names\n", v, (int)zerobus_abi_version(),
         ZEROBUS_ERR_INTERNAL + 1);
}

static void check_options(void) {
  zerobus_options *o = NULL;
  zerobus_error *err = NULL;
  CHECK_OK(zerobus_options_new(&o), err);
  const char *val = NULL;
  CHECK_OK(zerobus_options_get(o, "record_type", &val, &err), err);
  CHECK(strcmp(val, "proto") == 0, "default record_type '%s'", val);
  CHECK_OK(zerobus_options_set(o, "record_type", "json", &err), err);
  CHECK_OK(zerobus_options_get(o, "record_type", &val, &err), err);
  CHECK(strcmp(val, "json") == 0, "record_type '%s' after set", val);
  CHECK_OK(zerobus_options_set(o, "recovery", "yes", &err), err);
  CHECK_OK(zerobus_options_get(o, "recovery", &val, &err), err);
  CHECK(strcmp(val, "true") == 0, "canonical bool '%s'", val);

  zerobus_status rc = zerobus_options_set(o, "no_such_option_abi", "1", &err);
  CHECK(rc == ZEROBUS_ERR_UNKNOWN_OPTION && err != NULL &&
            zerobus_error_code(err) == ZEROBUS_ERR_UNKNOWN_OPTION &&
            zerobus_error_message(err)[0] != '\0' && zerobus_error_retryable(err) == 0,
        "unknown option -> %s", zerobus_status_name(rc));
  zerobus_error *copy = zerobus_error_clone(err);
  CHECK(copy && copy != err && zerobus_error_code(copy) == ZEROBUS_ERR_UNKNOWN_OPTION &&
            strcmp(zerobus_error_message(copy), zerobus_error_message(err)) == 0,
        "error_clone");
  zerobus_error_destroy(err);
  err = NULL;
  zerobus_error_destroy(copy);
  rc = zerobus_options_set(o, "max_inflight_records", "lots", &err);
  CHECK(rc == ZEROBUS_ERR_INVALID_OPTION && zerobus_error_code(err) == ZEROBUS_ERR_INVALID_OPTION,
        "bad value -> %s", zerobus_status_name(rc));
  zerobus_error_destroy(err);
  err = NULL;
  CHECK_OK(zerobus_options_get(o, "max_inflight_records", &val, &err), err);
  CHECK(strcmp(val, "1000000") == 0, "bad value must keep the old one, got '%s'", val);
  rc = zerobus_options_set(o, "max_inflight_records", "1000", NULL); /* err may be NULL */
  CHECK(rc == ZEROBUS_OK, "set with err=NULL -> %s", zerobus_status_name(rc));

  /* Enumeration with the baseline's struct size; every key readable through get(). */
  size_t n = zerobus_option_count();
  CHECK(n >= 10, "only %zu options", n);
  int saw_record_type = 0, saw_dispatch = 0;
  for (size_t i = 0; i < n; i++) {
    zerobus_option_desc d;
    memset(&d, 0, sizeof d);
    d.struct_size = sizeof d;
    CHECK(zerobus_option_info(i, &d) == ZEROBUS_OK, "option_info(%zu)", i);
    CHECK(d.struct_size == sizeof d, "option_info: struct_size written back %u",
          (unsigned)d.struct_size);
    CHECK(d.name && d.type && d.default_value && d.scope && d.doc && d.name[0] && d.doc[0],
          "option %zu has NULL/empty fields", i);
    CHECK(strcmp(d.scope, "sdk") == 0 || strcmp(d.scope, "stream") == 0, "scope %s", d.scope);
    zerobus_options *fresh = NULL;
    CHECK(zerobus_options_new(&fresh) == ZEROBUS_OK, "options_new");
    CHECK(zerobus_options_get(fresh, d.name, &val, NULL) == ZEROBUS_OK &&
              strcmp(val, d.default_value) == 0,
          "option %s: get() '%s' != default '%s'", d.name, val, d.default_value);
    zerobus_options_destroy(fresh);
    if (strcmp(d.name, "record_type") == 0) saw_record_type = 1;
    if (strcmp(d.name, "dispatch_thread") == 0) saw_dispatch = 1;
  }
  CHECK(saw_record_type && saw_dispatch, "record_type/dispatch_thread not enumerated");
  zerobus_option_desc d;
  d.struct_size = sizeof d;
  CHECK(zerobus_option_info(n, &d) == ZEROBUS_ERR_INVALID_ARGUMENT, "option_info(count)");
  /* An older, smaller struct: only the covered fields may be written. */
  struct {
    zerobus_option_desc d;
    char guard[64];
  } small;
  memset(&small, 0x5A, sizeof small);
  small.d.struct_size = (uint32_t)offsetof(zerobus_option_desc, type);
  CHECK(zerobus_option_info(0, &small.d) == ZEROBUS_OK, "option_info small");
  CHECK(small.d.name != NULL, "small desc: name not filled");
  CHECK(small.d.struct_size == offsetof(zerobus_option_desc, type),
        "option_info small: struct_size written back %u", (unsigned)small.d.struct_size);
  unsigned char *tail = (unsigned char *)&small.d.type;
  for (size_t i = 0; i < sizeof small - offsetof(zerobus_option_desc, type); i++)
    CHECK(tail[i] == 0x5A, "option_info wrote beyond struct_size (byte %zu)", i);
  zerobus_options_destroy(o);
  zerobus_options_destroy(NULL);
  printf("options: %zu keys enumerated, set/get/errors as documented\n", n);
}

static zerobus_options *json_options(void) {
  zerobus_options *o = NULL;
  CHECK(zerobus_options_new(&o) == ZEROBUS_OK, "options_new");
  CHECK(zerobus_options_set(o, "record_type", "json", NULL) == ZEROBUS_OK, "record_type");
  return o;
}

static void check_auth_failure(zerobus_sdk *sdk) {
  consumer_state st;
  zerobus_callbacks cb = make_callbacks(&st);
  zerobus_options *o = json_options();
  CHECK(zerobus_options_set(o, "recovery", "false", NULL) == ZEROBUS_OK, "recovery off");
  zerobus_stream *s = (zerobus_stream *)&st; /* must be set to NULL */
  zerobus_error *err = NULL;
  zerobus_status rc = zerobus_stream_create(sdk, "main.default.abi_old", NULL, 0, "test-client",
                                            "wrong-secret", o, &cb, &s, &err);
  CHECK(rc == ZEROBUS_ERR_UNAUTHENTICATED && s == NULL && err &&
            zerobus_error_code(err) == ZEROBUS_ERR_UNAUTHENTICATED &&
            zerobus_error_retryable(err) == 0,
        "wrong secret -> %s (%s)", zerobus_status_name(rc), zerobus_error_message(err));
  CHECK(zerobus_error_http_status(err) == 401 || zerobus_error_http_status(err) == 400 ||
            zerobus_error_http_status(err) == 403,
        "http status %d", (int)zerobus_error_http_status(err));
  CHECK(strstr(zerobus_error_message(err), "wrong-secret") == NULL, "secret in the message");
  CHECK(st.freed == 1, "user_data_free called %d times on a failed create", st.freed);
  int http = (int)zerobus_error_http_status(err);
  zerobus_error_destroy(err);
  zerobus_options_destroy(o);
  printf("auth failure: UNAUTHENTICATED (http %d), user_data_free once\n", http);
}

/* 500 single ingests then 5 batches of 100, acks through on_ack via poll. */
static void check_callback_stream(zerobus_sdk *sdk) {
  consumer_state st;
  zerobus_callbacks cb = make_callbacks(&st);
  zerobus_options *o = json_options();
  zerobus_stream *s = NULL;
  zerobus_error *err = NULL;
  CHECK_OK(zerobus_stream_create(sdk, "main.default.abi_old", NULL, 0, "test-client", "test-secret",
                                 o, &cb, &s, &err),
           err);
  zerobus_options_destroy(o); /* copied by create */
  CHECK(zerobus_stream_state(s) == ZEROBUS_STATE_ACTIVE, "state %d", (int)zerobus_stream_state(s));
  CHECK(strcmp(zerobus_stream_table_name(s), "main.default.abi_old") == 0, "table name");
  CHECK(zerobus_stream_id(s) && zerobus_stream_id(s)[0], "stream id");
  CHECK(zerobus_stream_wakeup_fd(s) >= 0, "wakeup fd");
  CHECK(zerobus_stream_wakeup_fd(NULL) == -1, "wakeup fd of NULL");

  zerobus_records *recs = NULL;
  zerobus_status rc = zerobus_stream_get_unacked(s, &recs, &err);
  CHECK(rc == ZEROBUS_ERR_INVALID_STATE, "get_unacked on an active stream -> %s",
        zerobus_status_name(rc));
  zerobus_error_destroy(err);
  err = NULL;

  char buf[128];
  int64_t off = -2;
  for (int i = 0; i < 500; i++) {
    int len = snprintf(buf, sizeof buf, "{\"id\":%d,\"kind\":\"single\"}", i);
    CHECK_OK(zerobus_stream_ingest(s, buf, (size_t)len, 0, &off, &err), err);
    CHECK(off == i, "ingest %d got offset %" PRId64, i, off);
    if (i == 250) { /* a bad record is refused, nothing queued */
      rc = zerobus_stream_ingest(s, "{not json", 9, 0, &off, &err);
      CHECK(
          rc == ZEROBUS_ERR_INVALID_RECORD && zerobus_error_code(err) == ZEROBUS_ERR_INVALID_RECORD,
          "invalid JSON -> %s", zerobus_status_name(rc));
      zerobus_error_destroy(err);
      err = NULL;
    }
  }
  char bodies[100][64];
  const void *ptrs[100];
  size_t lens[100];
  for (int b = 0; b < 5; b++) {
    for (int j = 0; j < 100; j++) {
      lens[j] = (size_t)snprintf(bodies[j], sizeof bodies[j], "{\"id\":%d,\"kind\":\"batch\"}",
                                 500 + b * 100 + j);
      ptrs[j] = bodies[j];
    }
    CHECK_OK(zerobus_stream_ingest_batch(s, ptrs, lens, 100, 0, &off, &err), err);
    CHECK(off == 500 + b, "batch %d got offset %" PRId64, b, off);
  }
  CHECK_OK(zerobus_stream_ingest_batch(s, ptrs, lens, 0, 0, &off, &err), err);
  CHECK(off == -1, "empty batch offset %" PRId64, off);

  CHECK_OK(zerobus_stream_flush(s, &err), err);
  CHECK_OK(zerobus_stream_wait_for_offset(s, 504, 10000, &err), err);
  rc = zerobus_stream_wait_for_offset(s, 505, 100, &err);
  CHECK(rc == ZEROBUS_ERR_INVALID_ARGUMENT, "wait for an offset never handed out -> %s",
        zerobus_status_name(rc));
  zerobus_error_destroy(err);
  err = NULL;
  for (int spins = 0; st.acks < 505 && spins < 100; spins++) {
    int32_t n = zerobus_stream_poll(s, 100);
    CHECK(n >= 0, "poll -> %d", (int)n);
  }
  CHECK(st.acks == 505 && st.next_ack == 505 && st.errors == 0,
        "acks %" PRId64 " (want 505 logical offsets), errors %" PRId64, st.acks, st.errors);

  zerobus_stream_stats stats;
  memset(&stats, 0, sizeof stats);
  stats.struct_size = sizeof stats;
  CHECK(zerobus_stream_get_stats(s, &stats) == ZEROBUS_OK, "get_stats");
  CHECK(stats.records_queued == 1000 && stats.records_acked == 1000 &&
            stats.inflight_records == 0 && stats.last_offset == 504 && stats.acked_offset == 504 &&
            stats.records_failed == 0 && stats.state == ZEROBUS_STATE_ACTIVE &&
            stats.requests_sent >= 1 && stats.records_sent >= 1000 &&
            stats.bytes_acked == stats.bytes_queued,
        "stats: queued %" PRId64 " acked %" PRId64 " inflight %" PRId64 " last %" PRId64
        " acked_off %" PRId64,
        stats.records_queued, stats.records_acked, stats.inflight_records, stats.last_offset,
        stats.acked_offset);
  /* An older, smaller stats struct: nothing written beyond its size. */
  struct {
    zerobus_stream_stats st;
    char guard[64];
  } small;
  memset(&small, 0x77, sizeof small);
  small.st.struct_size = (uint32_t)offsetof(zerobus_stream_stats, bytes_queued);
  CHECK(zerobus_stream_get_stats(s, &small.st) == ZEROBUS_OK, "get_stats small");
  CHECK(small.st.struct_size == offsetof(zerobus_stream_stats, bytes_queued),
        "get_stats small: struct_size written back %u", (unsigned)small.st.struct_size);
  CHECK(small.st.records_queued == 1000, "small stats records_queued %" PRId64,
        small.st.records_queued);
  unsigned char *tail = (unsigned char *)&small.st.bytes_queued;
  for (size_t i = 0; i < sizeof small - offsetof(zerobus_stream_stats, bytes_queued); i++)
    CHECK(tail[i] == 0x77, "get_stats wrote beyond struct_size (byte %zu)", i);

  /* A NEWER consumer's larger struct on this library: the known part is filled,
   * the unknown tail is left alone (not zeroed, not overrun). */
  struct {
    zerobus_stream_stats st;
    int64_t future_field;
    char guard[32];
  } big;
  memset(&big, 0x33, sizeof big);
  big.st.struct_size = (uint32_t)(sizeof big.st + sizeof big.future_field);
  CHECK(zerobus_stream_get_stats(s, &big.st) == ZEROBUS_OK, "get_stats larger struct");
  /* this consumer's size or more (a later library may know more than the baseline) */
  CHECK(big.st.struct_size >= sizeof big.st &&
            big.st.struct_size <= sizeof big.st + sizeof big.future_field,
        "get_stats larger: struct_size written back %u", (unsigned)big.st.struct_size);
  CHECK(big.st.records_acked == 1000 && big.st.records_failed == 0,
        "larger stats struct: records_acked %" PRId64, big.st.records_acked);
  unsigned char *ftail = (unsigned char *)&big.future_field;
  for (size_t i = 0; i < sizeof big.future_field + sizeof big.guard; i++)
    CHECK(ftail[i] == 0x33, "get_stats wrote past its own struct (byte %zu)", i);

  CHECK_OK(zerobus_stream_close(s, &err), err);
  CHECK_OK(zerobus_stream_close(s, &err), err); /* idempotent */
  CHECK(zerobus_stream_state(s) == ZEROBUS_STATE_CLOSED, "state after close %d",
        (int)zerobus_stream_state(s));
  rc = zerobus_stream_ingest(s, "{}", 2, 0, &off, &err);
  CHECK(rc == ZEROBUS_ERR_STREAM_CLOSED && zerobus_error_retryable(err) == 0,
        "ingest after close -> %s", zerobus_status_name(rc));
  zerobus_error_destroy(err);
  err = NULL;
  CHECK_OK(zerobus_stream_get_unacked(s, &recs, &err), err);
  CHECK(zerobus_records_count(recs) == 0 && zerobus_records_batch_count(recs) == 0,
        "unacked after a clean close: %zu", zerobus_records_count(recs));
  zerobus_records_destroy(recs);
  zerobus_error *last = (zerobus_error *)&st;
  CHECK(zerobus_stream_last_error(s, &last) == ZEROBUS_OK && last == NULL, "last_error");
  CHECK(st.freed == 0, "user_data freed before destroy");
  zerobus_stream_destroy(s);
  CHECK(st.freed == 1, "user_data_free called %d times", st.freed);
  printf("callback stream: 1000 records (505 offsets) acked in order via poll, stats exact\n");
}

/* 10 batches of 100, acks as ranges through poll_events (no callbacks at all). */
static void check_event_stream(zerobus_sdk *sdk) {
  zerobus_options *o = json_options();
  zerobus_stream *s = NULL;
  zerobus_error *err = NULL;
  /* A newer consumer's larger callbacks table (one more trailing member, all NULL
   * here): accepted; the library reads only the members it knows. */
  struct {
    zerobus_callbacks cb;
    void (*future_callback)(void *user_data);
  } big;
  memset(&big, 0, sizeof big);
  big.cb.struct_size = (uint32_t)sizeof big;
  CHECK_OK(zerobus_stream_create(sdk, "main.default.abi_old_events", NULL, 0, "test-client",
                                 "test-secret", o, &big.cb, &s, &err),
           err);
  zerobus_options_destroy(o);
  char bodies[100][64];
  const void *ptrs[100];
  size_t lens[100];
  int64_t off = -1;
  for (int b = 0; b < 10; b++) {
    for (int j = 0; j < 100; j++) {
      lens[j] = (size_t)snprintf(bodies[j], sizeof bodies[j], "{\"id\":%d}", b * 100 + j);
      ptrs[j] = bodies[j];
    }
    CHECK_OK(zerobus_stream_ingest_batch(s, ptrs, lens, 100, 0, &off, &err), err);
    CHECK(off == b, "batch offset %" PRId64, off);
  }
  CHECK_OK(zerobus_stream_flush(s, &err), err);
  int64_t next = 0;
  zerobus_event ev[8];
  for (int spins = 0; next < 10 && spins < 100; spins++) {
    size_t n = 99;
    /* event_size: zerobus_event as this program knew it (the baseline's) */
    CHECK_OK(zerobus_stream_poll_events(s, ev, 8, sizeof ev[0], 100, &n, &err), err);
    CHECK(n <= 8, "poll_events n %zu", n);
    for (size_t i = 0; i < n; i++) {
      if (ev[i].kind == ZEROBUS_EVENT_LOG) continue;
      CHECK(ev[i].kind == ZEROBUS_EVENT_ACK && ev[i].first == next && ev[i].last >= ev[i].first &&
                ev[i].error == NULL,
            "event kind %d %" PRId64 "..%" PRId64 " (next %" PRId64 ")", (int)ev[i].kind,
            ev[i].first, ev[i].last, next);
      next = ev[i].last + 1;
    }
  }
  CHECK(next == 10, "acked through poll_events up to %" PRId64, next - 1);
  CHECK_OK(zerobus_stream_close(s, &err), err);
  zerobus_stream_destroy(s);
  printf("event stream: 10 batches / 1000 records acked as ranges via poll_events\n");
}

/* The server stores but never acks: close times out, records come back. */
static void check_unacked(zerobus_sdk *sdk) {
  consumer_state st;
  zerobus_callbacks cb = make_callbacks(&st);
  zerobus_options *o = json_options();
  CHECK(zerobus_options_set(o, "flush_timeout_ms", "300", NULL) == ZEROBUS_OK, "flush timeout");
  zerobus_stream *s = NULL;
  zerobus_error *err = NULL;
  CHECK_OK(zerobus_stream_create(sdk, "main.default.abi_old_unacked", NULL, 0, "test-client",
                                 "test-secret", o, &cb, &s, &err),
           err);
  zerobus_options_destroy(o);
  int64_t off;
  CHECK_OK(zerobus_stream_ingest(s, "{\"n\":0}", 7, 0, &off, &err), err);
  const void *ptrs[2] = {"{\"n\":1}", "{\"n\":22}"};
  size_t lens[2] = {7, 8};
  CHECK_OK(zerobus_stream_ingest_batch(s, ptrs, lens, 2, 0, &off, &err), err);
  CHECK_OK(zerobus_stream_ingest(s, "{\"n\":3}", 7, ZEROBUS_INGEST_NONBLOCK, &off, &err), err);
  CHECK(off == 2, "offset %" PRId64, off);
  zerobus_status rc = zerobus_stream_close(s, &err);
  CHECK(rc == ZEROBUS_ERR_TIMEOUT && zerobus_error_code(err) == ZEROBUS_ERR_TIMEOUT,
        "close without acks -> %s (%s)", zerobus_status_name(rc), zerobus_error_message(err));
  zerobus_error_destroy(err);
  err = NULL;
  for (int spins = 0; st.errors < 3 && spins < 50; spins++) zerobus_stream_poll(s, 100);
  CHECK(st.errors == 3 && st.acks == 0, "on_error %" PRId64 " times, acks %" PRId64, st.errors,
        st.acks);
  zerobus_records *r = NULL;
  CHECK_OK(zerobus_stream_get_unacked(s, &r, &err), err);
  CHECK(zerobus_records_count(r) == 4 && zerobus_records_batch_count(r) == 3,
        "unacked: %zu records in %zu batches", zerobus_records_count(r),
        zerobus_records_batch_count(r));
  const char *want[4] = {"{\"n\":0}", "{\"n\":1}", "{\"n\":22}", "{\"n\":3}"};
  for (size_t i = 0; i < 4; i++) {
    const void *data = NULL;
    size_t len = 0;
    CHECK(zerobus_records_get(r, i, &data, &len) == ZEROBUS_OK, "records_get %zu", i);
    CHECK(len == strlen(want[i]) && memcmp(data, want[i], len) == 0, "record %zu differs", i);
  }
  size_t first = 9, count = 9;
  int64_t boff = -9;
  CHECK(zerobus_records_batch(r, 1, &first, &count, &boff) == ZEROBUS_OK && first == 1 &&
            count == 2 && boff == 1,
        "batch 1: first %zu count %zu offset %" PRId64, first, count, boff);
  CHECK(zerobus_records_batch(r, 2, NULL, NULL, &boff) == ZEROBUS_OK && boff == 2, "batch 2");
  CHECK(zerobus_records_get(r, 4, NULL, NULL) == ZEROBUS_ERR_INVALID_ARGUMENT, "get out of range");
  zerobus_records_destroy(r);
  zerobus_stream_destroy(s);
  CHECK(st.freed == 1, "user_data_free %d", st.freed);
  printf("unacked: close -> TIMEOUT, 3 on_error in order, 4 records / 3 batches returned\n");
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s ENDPOINT WORKSPACE_URL\n", argv[0]);
    return 2;
  }
  check_versions_and_status();
  check_options();
  zerobus_sdk *sdk = NULL;
  zerobus_error *err = NULL;
  zerobus_status rc = zerobus_sdk_new("", argv[2], NULL, &sdk, &err);
  CHECK(rc == ZEROBUS_ERR_INVALID_ARGUMENT && sdk == NULL, "empty endpoint -> %s",
        zerobus_status_name(rc));
  zerobus_error_destroy(err);
  err = NULL;
  CHECK_OK(zerobus_sdk_new(argv[1], argv[2], NULL, &sdk, &err), err);
  check_auth_failure(sdk);
  check_callback_stream(sdk);
  check_event_stream(sdk);
  check_unacked(sdk);
  zerobus_sdk_destroy(sdk);
  zerobus_sdk_destroy(NULL);
  printf("old_consumer: %d checks passed\n", g_checks);
  return 0;
}
