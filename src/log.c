/*
 * log.c - leveled logging with secret redaction.
 *
 * Every line is formatted, passed through zb_redact() and then handed to the
 * logger's sink (the engine points it at a stream's event queue) or written to
 * stderr as "zerobus[LEVEL] message". The level comes from the logger, or for a
 * NULL logger from ZEROBUS_LOG / RUST_LOG read once per process.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

/* ------------------------------------------------------------ levels */

static const char *const k_level_names[] = {"OFF", "ERROR", "WARN", "INFO", "DEBUG", "TRACE"};

int32_t zb_log_level_parse(const char *s) {
  if (!s) return -1;
  while (isspace((unsigned char)*s)) s++;
  size_t n = strlen(s);
  while (n > 0 && isspace((unsigned char)s[n - 1])) n--;
  if (n == 1 && s[0] >= '0' && s[0] <= '5') return s[0] - '0';
  static const struct {
    const char *name;
    int32_t level;
  } names[] = {{"off", ZEROBUS_LOG_OFF},      {"none", ZEROBUS_LOG_OFF},
               {"error", ZEROBUS_LOG_ERROR},  {"warn", ZEROBUS_LOG_WARN},
               {"warning", ZEROBUS_LOG_WARN}, {"info", ZEROBUS_LOG_INFO},
               {"debug", ZEROBUS_LOG_DEBUG},  {"trace", ZEROBUS_LOG_TRACE}};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strlen(names[i].name) == n && strncasecmp(s, names[i].name, n) == 0) return names[i].level;
  return -1;
}

/* A RUST_LOG-style directive list ("info", "zerobus=debug,info", "h2=off"): the
 * most verbose level any directive names; -1 when no directive holds a level. */
static int32_t parse_directives(const char *spec) {
  int32_t best = -1;
  const char *p = spec;
  while (p && *p) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    char item[64];
    if (len < sizeof item) {
      memcpy(item, p, len);
      item[len] = '\0';
      char *value = strchr(item, '=');
      value = value ? value + 1 : item;
      char *slash = strchr(value, '/'); /* env_logger filter regex suffix */
      if (slash) *slash = '\0';
      int32_t lv = zb_log_level_parse(value);
      if (lv > best) best = lv;
    }
    p = end ? end + 1 : NULL;
  }
  return best;
}

int32_t zb_log_env_level(void) {
  const char *vars[] = {"ZEROBUS_LOG", "RUST_LOG"};
  for (size_t i = 0; i < 2; i++) {
    const char *v = getenv(vars[i]);
    if (!v || !*v) continue;
    int32_t lv = parse_directives(v);
    if (lv >= 0) return lv;
  }
  return ZEROBUS_LOG_WARN;
}

static pthread_once_t g_env_once = PTHREAD_ONCE_INIT;
static int32_t g_env_level = ZEROBUS_LOG_WARN;
static void env_level_init(void) {
  g_env_level = zb_log_env_level();
}

/* ------------------------------------------------------------ redaction */

static const char k_redacted[] = "[REDACTED]";

typedef struct strbuf {
  char *p;
  size_t len, cap;
  int oom;
} strbuf;

static void sb_put(strbuf *b, const char *s, size_t n) {
  if (b->oom) return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + n + 1) cap *= 2;
    char *np = realloc(b->p, cap);
    if (!np) {
      b->oom = 1;
      return;
    }
    b->p = np;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static int is_word(char c) {
  return isalnum((unsigned char)c) || c == '_' || c == '-';
}

static int starts_ci(const char *s, const char *word) {
  return strncasecmp(s, word, strlen(word)) == 0;
}

/* Length of an unquoted secret value starting at s. `header` values
 * ("authorization: Bearer x") may contain spaces and run to the end of the line. */
static size_t value_len(const char *s, int header) {
  size_t n = 0;
  for (; s[n]; n++) {
    char c = s[n];
    if (c == '\n' || c == '\r' || c == '"' || c == '\'' || c == '&' || c == ',' || c == ';') break;
    if (!header && (isspace((unsigned char)c) || c == '}' || c == ')' || c == ']')) break;
  }
  if (header)
    while (n > 0 && isspace((unsigned char)s[n - 1])) n--;
  return n;
}

/* Length of a quoted value's body (up to, not including, the closing quote q). */
static size_t quoted_len(const char *s, char q) {
  size_t n = 0;
  while (s[n] && s[n] != q) {
    if (s[n] == '\\' && s[n + 1]) n++;
    n++;
  }
  return n;
}

/* Keys whose value is a secret, and whether the value is a whole header value. */
static const struct {
  const char *key;
  int header;
} k_secret_keys[] = {{"access_token", 0},
                     {"refresh_token", 0},
                     {"id_token", 0},
                     {"client_secret", 0},
                     {"authorization", 1}};

/* At text[i] a secret key may start: if "key" [quote] [ws] (':'|'=') [ws] [quote]
 * value follows, copies the prefix, writes [REDACTED] and returns the number of
 * bytes consumed; 0 when nothing matched. */
static size_t redact_key_value(strbuf *b, const char *text, size_t i) {
  if (i > 0 && is_word(text[i - 1])) return 0;
  for (size_t k = 0; k < sizeof k_secret_keys / sizeof k_secret_keys[0]; k++) {
    const char *key = k_secret_keys[k].key;
    if (!starts_ci(text + i, key)) continue;
    size_t j = i + strlen(key);
    if (text[j] == '"' || text[j] == '\'') j++;
    while (text[j] == ' ' || text[j] == '\t') j++;
    if (text[j] != ':' && text[j] != '=') continue;
    j++;
    while (text[j] == ' ' || text[j] == '\t') j++;
    char q = (text[j] == '"' || text[j] == '\'') ? text[j] : 0;
    if (q) j++;
    if (strncmp(text + j, k_redacted, sizeof k_redacted - 1) == 0) return 0; /* done already */
    size_t vlen = q ? quoted_len(text + j, q) : value_len(text + j, k_secret_keys[k].header);
    if (vlen == 0) return 0;
    sb_put(b, text + i, j - i);
    sb_put(b, k_redacted, sizeof k_redacted - 1);
    return j + vlen - i;
  }
  return 0;
}

/* At text[i], "Bearer <token>": copies "Bearer " and redacts the token. */
static size_t redact_bearer(strbuf *b, const char *text, size_t i) {
  if (i > 0 && is_word(text[i - 1])) return 0;
  if (!starts_ci(text + i, "bearer")) return 0;
  size_t j = i + 6;
  if (text[j] != ' ' && text[j] != '\t') return 0;
  while (text[j] == ' ' || text[j] == '\t') j++;
  if (strncmp(text + j, k_redacted, sizeof k_redacted - 1) == 0) return 0; /* done already */
  size_t vlen = value_len(text + j, 0);
  if (vlen == 0) return 0;
  sb_put(b, text + i, j - i);
  sb_put(b, k_redacted, sizeof k_redacted - 1);
  return j + vlen - i;
}

char *zb_redact(const char *text) {
  if (!text) return strdup("");
  strbuf b = {0};
  size_t n = strlen(text);
  sb_put(&b, "", 0);
  size_t i = 0, plain = 0; /* text[plain..i) is pending verbatim output */
  while (i < n) {
    char c = text[i] | 0x20; /* cheap first-letter filter: a, b, c, i, r */
    if (c == 'a' || c == 'b' || c == 'c' || c == 'i' || c == 'r') {
      strbuf tmp = {0};
      size_t used = redact_key_value(&tmp, text, i);
      if (!used) used = redact_bearer(&tmp, text, i);
      if (used) {
        sb_put(&b, text + plain, i - plain);
        sb_put(&b, tmp.p, tmp.len);
        free(tmp.p);
        if (tmp.oom) b.oom = 1;
        i += used;
        plain = i;
        continue;
      }
      free(tmp.p);
    }
    i++;
  }
  sb_put(&b, text + plain, n - plain);
  if (b.oom) {
    free(b.p);
    return NULL;
  }
  return b.p;
}

/* ------------------------------------------------------------ emitting */

static void log_emitv(const zb_logger *lg, int32_t level, const char *fmt, va_list ap) {
  char stackbuf[512];
  char *heap = NULL;
  const char *raw = stackbuf;
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(stackbuf, sizeof stackbuf, fmt, ap);
  if (n < 0) {
    va_end(ap2);
    return;
  }
  if ((size_t)n >= sizeof stackbuf) {
    heap = malloc((size_t)n + 1);
    if (!heap) {
      va_end(ap2);
      return;
    }
    vsnprintf(heap, (size_t)n + 1, fmt, ap2);
    raw = heap;
  }
  va_end(ap2);
  char *clean = zb_redact(raw);
  free(heap);
  if (!clean) return;
  if (lg && lg->sink) {
    lg->sink(lg->ctx, level, clean);
  } else {
    /* One fputs per line keeps lines whole when threads log at once. */
    char *line = NULL;
    if (asprintf(&line, "zerobus[%s] %s\n", k_level_names[level], clean) >= 0) {
      fputs(line, stderr);
      free(line);
    }
  }
  free(clean);
}

void zb_log(const zb_logger *lg, int32_t level, const char *fmt, ...) {
  if (level <= ZEROBUS_LOG_OFF || level > ZEROBUS_LOG_TRACE || !fmt) return;
  int32_t threshold;
  if (lg) {
    threshold = lg->level;
  } else {
    pthread_once(&g_env_once, env_level_init);
    threshold = g_env_level;
  }
  if (level > threshold) return;
  va_list ap;
  va_start(ap, fmt);
  log_emitv(lg, level, fmt, ap);
  va_end(ap);
}
