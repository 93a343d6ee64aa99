/* zerobus-local: fault scripts and chaos mode (contract: server/FAULTS.md).
 *
 * Each table has a script (a JSON array of CALL_FAULT entries) and a cursor. Every new
 * call on the table takes the entry at the cursor (an entry with "repeat": N covers N
 * calls) and advances it; the cursor survives reconnects. When the script is used up
 * and chaos mode is on, a fault is drawn from the seed and the call's sequence number.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zl.h"

static pthread_mutex_t g_faults_mu = PTHREAD_MUTEX_INITIALIZER;

void faults_init(void) {}

static const struct {
  const char *name;
  int code;
} CODES[] = {{"OK", 0},
             {"CANCELLED", 1},
             {"UNKNOWN", 2},
             {"INVALID_ARGUMENT", 3},
             {"DEADLINE_EXCEEDED", 4},
             {"NOT_FOUND", 5},
             {"ALREADY_EXISTS", 6},
             {"PERMISSION_DENIED", 7},
             {"RESOURCE_EXHAUSTED", 8},
             {"FAILED_PRECONDITION", 9},
             {"ABORTED", 10},
             {"OUT_OF_RANGE", 11},
             {"UNIMPLEMENTED", 12},
             {"INTERNAL", 13},
             {"UNAVAILABLE", 14},
             {"DATA_LOSS", 15},
             {"UNAUTHENTICATED", 16}};

/* A status code given as a number or a name; -1 if invalid. */
static int parse_code(const cJSON *v) {
  if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= 16 &&
      v->valuedouble == (int)v->valuedouble)
    return (int)v->valuedouble;
  if (cJSON_IsString(v))
    for (size_t i = 0; i < sizeof CODES / sizeof CODES[0]; i++)
      if (strcasecmp(v->valuestring, CODES[i].name) == 0) return CODES[i].code;
  return -1;
}

static int is_int(const cJSON *v) {
  return cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) && v->valuedouble >= -1;
}

static const char *KNOWN_KEYS[] = {"fail_create",
                                   "message",
                                   "hang_headers",
                                   "fail_at_request",
                                   "status",
                                   "drop_at_request",
                                   "ack_delay_ms",
                                   "no_ack",
                                   "ack_prefix",
                                   "malformed_ack",
                                   "after_request",
                                   "close_signal_ms",
                                   "reject_over_bytes",
                                   "max_records_per_sec",
                                   "repeat"};

/* Validates one entry; 0 ok, -1 with err. */
static int check_entry(const char *table, int idx, const cJSON *e, char *err, size_t errlen) {
  if (!cJSON_IsObject(e)) {
    snprintf(err, errlen, "%s[%d]: an entry must be a JSON object", table, idx);
    return -1;
  }
  for (const cJSON *k = e->child; k; k = k->next) {
    int known = 0;
    for (size_t i = 0; i < sizeof KNOWN_KEYS / sizeof KNOWN_KEYS[0]; i++)
      if (strcmp(k->string, KNOWN_KEYS[i]) == 0) known = 1;
    if (!known) {
      snprintf(err, errlen, "%s[%d]: unknown key '%s'", table, idx, k->string);
      return -1;
    }
  }
  const cJSON *v;
  if ((v = cJSON_GetObjectItemCaseSensitive(e, "fail_create")) && parse_code(v) <= 0) {
    snprintf(err, errlen, "%s[%d]: fail_create must be a non-OK gRPC status code", table, idx);
    return -1;
  }
  if (cJSON_GetObjectItemCaseSensitive(e, "fail_at_request")) {
    v = cJSON_GetObjectItemCaseSensitive(e, "status");
    if (!v || parse_code(v) <= 0) {
      snprintf(err, errlen, "%s[%d]: fail_at_request needs \"status\": a non-OK code", table, idx);
      return -1;
    }
  }
  const char *ints[] = {"fail_at_request",   "drop_at_request",     "ack_delay_ms",
                        "ack_prefix",        "after_request",       "close_signal_ms",
                        "reject_over_bytes", "max_records_per_sec", "repeat"};
  for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
    v = cJSON_GetObjectItemCaseSensitive(e, ints[i]);
    if (v && (!is_int(v) || v->valuedouble < 0)) {
      snprintf(err, errlen, "%s[%d]: %s must be a non-negative integer", table, idx, ints[i]);
      return -1;
    }
  }
  if ((v = cJSON_GetObjectItemCaseSensitive(e, "malformed_ack"))) {
    if (!cJSON_IsString(v) ||
        (strcmp(v->valuestring, "backwards") && strcmp(v->valuestring, "duplicate") &&
         strcmp(v->valuestring, "beyond") && strcmp(v->valuestring, "no_offset"))) {
      snprintf(err, errlen, "%s[%d]: malformed_ack must be backwards|duplicate|beyond|no_offset",
               table, idx);
      return -1;
    }
  }
  if ((cJSON_GetObjectItemCaseSensitive(e, "malformed_ack") ||
       cJSON_GetObjectItemCaseSensitive(e, "close_signal_ms")) &&
      !cJSON_GetObjectItemCaseSensitive(e, "after_request")) {
    snprintf(err, errlen, "%s[%d]: malformed_ack and close_signal_ms need after_request", table,
             idx);
    return -1;
  }
  return 0;
}

int faults_load(const char *json, char *err, size_t errlen) {
  cJSON *root = cJSON_Parse(json);
  cJSON *tables = root ? cJSON_GetObjectItemCaseSensitive(root, "tables") : NULL;
  if (!cJSON_IsObject(tables)) {
    snprintf(err, errlen, "expected {\"tables\": {\"cat.sch.tbl\": [entries]}}");
    cJSON_Delete(root);
    return -1;
  }
  for (cJSON *t = tables->child; t; t = t->next) {
    if (!table_name_valid(t->string)) {
      snprintf(err, errlen, "'%s' is not catalog.schema.table", t->string);
      cJSON_Delete(root);
      return -1;
    }
    if (!cJSON_IsArray(t)) {
      snprintf(err, errlen, "%s: the script must be an array", t->string);
      cJSON_Delete(root);
      return -1;
    }
    int i = 0;
    for (cJSON *e = t->child; e; e = e->next, i++)
      if (check_entry(t->string, i, e, err, errlen)) {
        cJSON_Delete(root);
        return -1;
      }
  }
  for (cJSON *t = tables->child; t; t = t->next) {
    zl_table *tab = tables_get(t->string, 1);
    if (!tab) continue;
    cJSON *copy = cJSON_Duplicate(t, 1);
    pthread_mutex_lock(&g_faults_mu);
    cJSON *old = tab->script;
    tab->script = copy;
    tab->cursor = 0;
    pthread_mutex_unlock(&g_faults_mu);
    cJSON_Delete(old);
  }
  cJSON_Delete(root);
  return 0;
}

static void clear_one(zl_table *t, void *arg) {
  (void)arg;
  cJSON_Delete(t->script);
  t->script = NULL;
  t->cursor = 0;
}

void faults_clear_all(void) {
  pthread_mutex_lock(&g_faults_mu);
  tables_foreach(clear_one, NULL);
  pthread_mutex_unlock(&g_faults_mu);
}

static long long get_ll(const cJSON *e, const char *key, long long dflt) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, key);
  return cJSON_IsNumber(v) ? (long long)v->valuedouble : dflt;
}

static void reset(zl_call_faults *f) {
  memset(f, 0, sizeof *f);
  f->fail_at_request = f->drop_at_request = f->ack_prefix = f->close_signal_ms = -1;
  f->reject_over_bytes = -1;
  f->malformed_after = -1;
  f->close_after = -1;
}

static void from_entry(const cJSON *e, zl_call_faults *f) {
  const cJSON *v;
  f->active = 1;
  snprintf(f->source, sizeof f->source, "script");
  if ((v = cJSON_GetObjectItemCaseSensitive(e, "fail_create"))) f->fail_create = parse_code(v);
  if ((v = cJSON_GetObjectItemCaseSensitive(e, "message")) && cJSON_IsString(v))
    snprintf(f->fail_message, sizeof f->fail_message, "%s", v->valuestring);
  f->hang_headers = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "hang_headers"));
  f->fail_at_request = get_ll(e, "fail_at_request", -1);
  if ((v = cJSON_GetObjectItemCaseSensitive(e, "status"))) f->fail_status = parse_code(v);
  f->drop_at_request = get_ll(e, "drop_at_request", -1);
  f->ack_delay_ms = (int)get_ll(e, "ack_delay_ms", 0);
  f->no_ack = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "no_ack"));
  f->ack_prefix = get_ll(e, "ack_prefix", -1);
  long long after = get_ll(e, "after_request", -1);
  if ((v = cJSON_GetObjectItemCaseSensitive(e, "malformed_ack")) && cJSON_IsString(v)) {
    f->malformed = !strcmp(v->valuestring, "backwards")   ? MAL_BACKWARDS
                   : !strcmp(v->valuestring, "duplicate") ? MAL_DUPLICATE
                   : !strcmp(v->valuestring, "beyond")    ? MAL_BEYOND
                                                          : MAL_NO_OFFSET;
    f->malformed_after = after;
  }
  f->close_signal_ms = get_ll(e, "close_signal_ms", -1);
  if (f->close_signal_ms >= 0) f->close_after = after;
  f->reject_over_bytes = get_ll(e, "reject_over_bytes", -1);
  f->max_records_per_sec = get_ll(e, "max_records_per_sec", 0);
}

/* splitmix64: a small, well-mixed PRNG; reproducible from (seed, call sequence). */
static uint64_t splitmix(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static double unit(uint64_t *x) {
  return (double)(splitmix(x) >> 11) / 9007199254740992.0;
}

static void chaos_draw(unsigned long long call_seq, zl_call_faults *f) {
  double rate = g_cfg.chaos_rate;
  if (rate <= 0) return;
  uint64_t x = g_cfg.chaos_seed ^ (call_seq * 0xd1b54a32d192ed03ULL);
  splitmix(&x);
  /* index of the first request (0-based) that draws a fault: geometric(rate) */
  long long k;
  if (rate >= 1)
    k = 0;
  else {
    double u = unit(&x);
    if (u <= 0) u = 1e-300;
    double kk = floor(log(u) / log(1 - rate));
    k = kk > 1e12 ? (long long)1e12 : (long long)kk;
  }
  static const int retryable[] = {14, 13, 8, 10};
  static const int fatal[] = {3, 7, 5};
  f->active = 1;
  snprintf(f->source, sizeof f->source, "chaos");
  int kind = (int)(splitmix(&x) % 7);
  if (k > 0 && kind >= 5) kind = 0; /* hangs and failed creates only hit a call's start */
  switch (kind) {
    case 0: { /* status */
      f->fail_at_request = k;
      int nfatal = g_cfg.chaos_fatal ? 3 : 0;
      int pick = (int)(splitmix(&x) % (uint64_t)(4 + nfatal));
      f->fail_status = pick < 4 ? retryable[pick] : fatal[pick - 4];
      break;
    }
    case 1:
      f->drop_at_request = k;
      break;
    case 2:
      f->close_signal_ms = 50 + (long long)(splitmix(&x) % 451);
      f->close_after = k;
      break;
    case 3: /* stall: acks held */
      f->ack_delay_ms = 50 + (int)(splitmix(&x) % 251);
      break;
    case 4:
      f->malformed = 1 + (int)(splitmix(&x) % 4);
      f->malformed_after = k;
      break;
    case 5:
      f->hang_headers = 1;
      break;
    default: /* fail the creation itself with a retryable status */
      f->fail_create = retryable[splitmix(&x) % 4];
      snprintf(f->fail_message, sizeof f->fail_message, "zerobus-local chaos: create failed");
      break;
  }
  if (g_cfg.verbose) zl_log("chaos: call %llu kind %d at request %lld", call_seq, kind, k);
}

void faults_next_call(zl_table *t, unsigned long long call_seq, zl_call_faults *f) {
  reset(f);
  int from_script = 0;
  pthread_mutex_lock(&g_faults_mu);
  if (t->script) {
    int pos = 0;
    for (cJSON *e = t->script->child; e; e = e->next) {
      long long rep = get_ll(e, "repeat", 1);
      if (rep < 1) rep = 1;
      if (t->cursor < pos + rep) {
        from_entry(e, f);
        from_script = 1;
        t->cursor++;
        break;
      }
      pos += (int)rep;
    }
  }
  pthread_mutex_unlock(&g_faults_mu);
  if (!from_script && g_cfg.chaos_on) chaos_draw(call_seq, f);
}
