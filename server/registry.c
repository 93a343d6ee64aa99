/* zerobus-local: the table registry (per-table counters, fault scripts, Unity Catalog
 * declarations) and the OAuth token store. Both are shared by the gRPC workers and the
 * HTTP thread, each behind its own mutex. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "zl.h"

/* ------------------------------------------------------------------ tables */
static pthread_mutex_t g_tables_mu = PTHREAD_MUTEX_INITIALIZER;
static zl_table *g_tables;

int table_name_valid(const char *name) {
  if (!name || !name[0] || strlen(name) > 765) return 0;
  int parts = 1;
  const char *start = name;
  for (const char *p = name;; p++) {
    if (*p == '.' || *p == 0) {
      if (p == start) return 0; /* empty part */
      if (*p == 0) break;
      parts++;
      start = p + 1;
    } else if ((unsigned char)*p < 0x20) {
      return 0;
    }
  }
  return parts == 3;
}

zl_table *tables_get(const char *name, int create) {
  pthread_mutex_lock(&g_tables_mu);
  zl_table *t = g_tables;
  while (t && strcmp(t->name, name) != 0) t = t->next;
  if (!t && create) {
    t = calloc(1, sizeof *t);
    if (t) {
      t->name = strdup(name);
      t->next = g_tables;
      g_tables = t;
    }
  }
  pthread_mutex_unlock(&g_tables_mu);
  return t;
}

void tables_foreach(void (*fn)(zl_table *t, void *arg), void *arg) {
  pthread_mutex_lock(&g_tables_mu);
  for (zl_table *t = g_tables; t; t = t->next) fn(t, arg);
  pthread_mutex_unlock(&g_tables_mu);
}

int tables_any_declared(void) {
  int any = 0;
  pthread_mutex_lock(&g_tables_mu);
  for (zl_table *t = g_tables; t; t = t->next) any |= t->uc_columns != NULL;
  pthread_mutex_unlock(&g_tables_mu);
  return any;
}

/* UC type_name for a type_text (upper-case base type, with Databricks' aliases). */
static void uc_type_name(const char *type_text, char *out, size_t cap) {
  size_t n = 0;
  while (type_text[n] && type_text[n] != '<' && type_text[n] != '(' && n + 1 < cap) {
    out[n] = (char)toupper((unsigned char)type_text[n]);
    n++;
  }
  out[n] = 0;
  while (n > 0 && out[n - 1] == ' ') out[--n] = 0;
  static const char *alias[][2] = {
      {"BIGINT", "LONG"},    {"INTEGER", "INT"}, {"SMALLINT", "SHORT"}, {"TINYINT", "BYTE"},
      {"VARCHAR", "STRING"}, {"REAL", "FLOAT"},  {"BOOL", "BOOLEAN"}};
  for (size_t i = 0; i < sizeof alias / sizeof alias[0]; i++)
    if (strcmp(out, alias[i][0]) == 0) snprintf(out, cap, "%s", alias[i][1]);
}

static int declare_columns(const char *table, cJSON *cols, char *err, size_t errlen) {
  if (!table_name_valid(table)) {
    snprintf(err, errlen, "table name '%s' is not catalog.schema.table", table);
    return -1;
  }
  /* fill type_name and position */
  int pos = 0;
  for (cJSON *c = cols->child; c; c = c->next, pos++) {
    cJSON *name = cJSON_GetObjectItemCaseSensitive(c, "name");
    cJSON *tt = cJSON_GetObjectItemCaseSensitive(c, "type_text");
    if (!cJSON_IsString(name) || !cJSON_IsString(tt) || !name->valuestring[0] ||
        !tt->valuestring[0]) {
      snprintf(err, errlen, "table %s: column %d needs a name and a type_text", table, pos);
      return -1;
    }
    if (!cJSON_GetObjectItemCaseSensitive(c, "type_name")) {
      char tn[64];
      uc_type_name(tt->valuestring, tn, sizeof tn);
      cJSON_AddStringToObject(c, "type_name", tn);
    }
    if (!cJSON_GetObjectItemCaseSensitive(c, "nullable")) cJSON_AddBoolToObject(c, "nullable", 1);
    cJSON_DeleteItemFromObjectCaseSensitive(c, "position");
    cJSON_AddNumberToObject(c, "position", pos);
  }
  zl_table *t = tables_get(table, 1);
  if (!t) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  pthread_mutex_lock(&g_tables_mu);
  cJSON *old = t->uc_columns;
  t->uc_columns = cols;
  pthread_mutex_unlock(&g_tables_mu);
  cJSON_Delete(old);
  return 0;
}

/* Splits on `sep` at bracket depth 0. Returns the next piece (NUL-terminated in place). */
static char *split_top(char **cursor, char sep) {
  char *s = *cursor;
  if (!s) return NULL;
  int depth = 0;
  for (char *p = s;; p++) {
    if (*p == '<' || *p == '(')
      depth++;
    else if ((*p == '>' || *p == ')') && depth > 0)
      depth--;
    if (*p == 0) {
      *cursor = NULL;
      return s;
    }
    if (*p == sep && depth == 0) {
      *p = 0;
      *cursor = p + 1;
      return s;
    }
  }
}

static char *trim(char *s) {
  while (isspace((unsigned char)*s)) s++;
  size_t n = strlen(s);
  while (n > 0 && isspace((unsigned char)s[n - 1])) s[--n] = 0;
  return s;
}

int tables_declare_spec(const char *spec, char *err, size_t errlen) {
  char *copy = strdup(spec);
  if (!copy) return -1;
  char *eq = strchr(copy, '=');
  if (!eq) {
    snprintf(err, errlen, "--table '%s': expected 'cat.sch.tbl=col:type[:nullable],...'", spec);
    free(copy);
    return -1;
  }
  *eq = 0;
  char *table = trim(copy);
  cJSON *cols = cJSON_CreateArray();
  char *cur = eq + 1, *piece;
  while ((piece = split_top(&cur, ',')) != NULL) {
    piece = trim(piece);
    if (!piece[0]) continue;
    char *pc = piece;
    char *name = trim(split_top(&pc, ':'));
    char *type = pc ? split_top(&pc, ':') : NULL;
    char *nullable = pc ? trim(pc) : NULL;
    if (!type || !name[0] || !trim(type)[0]) {
      snprintf(err, errlen, "--table column '%s': expected name:type[:nullable]", piece);
      cJSON_Delete(cols);
      free(copy);
      return -1;
    }
    type = trim(type);
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "name", name);
    cJSON_AddStringToObject(c, "type_text", type);
    int nb = 1;
    if (nullable) {
      if (!strcasecmp(nullable, "nullable") || !strcasecmp(nullable, "true") ||
          !strcasecmp(nullable, "null"))
        nb = 1;
      else if (!strcasecmp(nullable, "false") || !strcasecmp(nullable, "not_null") ||
               !strcasecmp(nullable, "notnull") || !strcasecmp(nullable, "required") ||
               !strcasecmp(nullable, "not null"))
        nb = 0;
      else {
        snprintf(err, errlen,
                 "--table column '%s': third part must be nullable|true|false|required", name);
        cJSON_Delete(c);
        cJSON_Delete(cols);
        free(copy);
        return -1;
      }
    }
    cJSON_AddBoolToObject(c, "nullable", nb);
    cJSON_AddItemToArray(cols, c);
  }
  int rc = declare_columns(table, cols, err, errlen);
  if (rc) cJSON_Delete(cols);
  free(copy);
  return rc;
}

int tables_declare_config(const char *path, char *err, size_t errlen) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, errlen, "cannot open --config %s", path);
    return -1;
  }
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)(n > 0 ? n : 0) + 1);
  size_t got = buf ? fread(buf, 1, (size_t)(n > 0 ? n : 0), f) : 0;
  fclose(f);
  if (!buf) return -1;
  buf[got] = 0;
  cJSON *root = cJSON_Parse(buf);
  free(buf);
  cJSON *tables = root ? cJSON_GetObjectItemCaseSensitive(root, "tables") : NULL;
  if (!cJSON_IsObject(tables)) {
    snprintf(err, errlen, "--config %s: expected {\"tables\": {\"cat.sch.tbl\": [columns]}}", path);
    cJSON_Delete(root);
    return -1;
  }
  for (cJSON *t = tables->child; t; t = t->next) {
    if (!cJSON_IsArray(t)) {
      snprintf(err, errlen, "--config %s: table %s: columns must be an array", path, t->string);
      cJSON_Delete(root);
      return -1;
    }
    cJSON *cols = cJSON_Duplicate(t, 1);
    if (declare_columns(t->string, cols, err, errlen) != 0) {
      cJSON_Delete(cols);
      cJSON_Delete(root);
      return -1;
    }
  }
  cJSON_Delete(root);
  return 0;
}

/* ------------------------------------------------------------------ tokens */
typedef struct token_ent {
  char token[48];
  char *table; /* NULL: workspace token (Unity Catalog only) */
  long long expires_ms;
  struct token_ent *next;
} token_ent;

#define TOKEN_BUCKETS 4096
static token_ent *g_tokens[TOKEN_BUCKETS];
static pthread_mutex_t g_tokens_mu = PTHREAD_MUTEX_INITIALIZER;

static unsigned token_hash(const char *s) {
  unsigned h = 5381;
  for (; *s; s++) h = h * 33 + (unsigned char)*s;
  return h % TOKEN_BUCKETS;
}

char *auth_issue_token(const char *table, long ttl_sec) {
  uint8_t rnd[18];
  if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) return NULL;
  token_ent *e = calloc(1, sizeof *e);
  if (!e) return NULL;
  char *b = zl_base64_encode(rnd, sizeof rnd);
  if (!b) {
    free(e);
    return NULL;
  }
  for (char *p = b; *p; p++) /* URL-safe, no padding needed for 18 bytes */
    if (*p == '+')
      *p = '-';
    else if (*p == '/')
      *p = '_';
  snprintf(e->token, sizeof e->token, "zl-%s", b);
  free(b);
  e->table = table ? strdup(table) : NULL;
  e->expires_ms = zl_now_ms() + ttl_sec * 1000;
  unsigned h = token_hash(e->token);
  pthread_mutex_lock(&g_tokens_mu);
  e->next = g_tokens[h];
  g_tokens[h] = e;
  pthread_mutex_unlock(&g_tokens_mu);
  atomic_fetch_add(&g_counters.tokens_issued, 1);
  return strdup(e->token);
}

/* Looks a token up: 0 unknown, 1 valid, 2 expired. Copies the table (or "") to tbl. */
static int token_lookup(const char *token, char *tbl, size_t cap) {
  int r = 0;
  unsigned h = token_hash(token);
  pthread_mutex_lock(&g_tokens_mu);
  for (token_ent *e = g_tokens[h]; e; e = e->next)
    if (strcmp(e->token, token) == 0) {
      r = zl_now_ms() >= e->expires_ms ? 2 : 1;
      snprintf(tbl, cap, "%s", e->table ? e->table : "");
      break;
    }
  pthread_mutex_unlock(&g_tokens_mu);
  return r;
}

static const char *bearer(const char *authorization) {
  if (!authorization || strncasecmp(authorization, "Bearer ", 7) != 0) return NULL;
  const char *t = authorization + 7;
  while (*t == ' ') t++;
  return *t ? t : NULL;
}

int auth_check_grpc(const char *authorization, const char *table, char *msg, size_t msglen) {
  const char *tok = bearer(authorization);
  if (!tok) {
    snprintf(msg, msglen, "missing or malformed authorization header (expected 'Bearer <token>')");
    return 16;
  }
  char tbl[800];
  int r = token_lookup(tok, tbl, sizeof tbl);
  if (r == 0) {
    snprintf(msg, msglen, "invalid access token");
    return 16;
  }
  if (r == 2) {
    snprintf(msg, msglen, "access token expired");
    return 16;
  }
  if (strcmp(tbl, table) != 0) {
    snprintf(msg, msglen, "access token was not issued for table %.200s", table);
    return 7;
  }
  return 0;
}

int auth_check_bearer(const char *authorization) {
  const char *tok = bearer(authorization);
  if (!tok) return -1;
  char tbl[800];
  return token_lookup(tok, tbl, sizeof tbl) == 1 ? 0 : -1;
}
