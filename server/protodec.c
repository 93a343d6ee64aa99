/* zerobus-local: dynamic proto2 decoder.
 *
 * A PROTO stream sends a serialized google.protobuf.DescriptorProto (self-contained:
 * nested message types live inside it). pd_schema_parse() resolves it once per stream
 * into an immutable table of messages and fields; pd_decode() turns one record into a
 * cJSON object keyed by field name (scalars, strings, bytes as base64, enums as their
 * numbers, nested messages as objects, repeated fields as arrays, maps as objects).
 * 64-bit integers beyond 2^53 are kept exact as raw JSON numbers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "google/protobuf/descriptor.pb-c.h"
#include "zl.h"

#define MAX_DEPTH 64

typedef struct pd_field {
  int number;
  int type; /* Google__Protobuf__FieldDescriptorProto__Type */
  int repeated;
  const char *name;
  int msg; /* index into schema->msgs for TYPE_MESSAGE, else -1 */
} pd_field;

typedef struct pd_msg {
  char *full_name;
  const Google__Protobuf__DescriptorProto *dp;
  pd_field *fields;
  size_t nfields;
  int map_entry;
} pd_msg;

typedef struct pd_enum_name {
  char *full_name;
} pd_enum_name;

struct pd_schema {
  Google__Protobuf__DescriptorProto *root;
  pd_msg *msgs;
  size_t nmsgs, cap;
  pd_enum_name *enums;
  size_t nenums, ecap;
};

/* ------------------------------------------------------------------ base64 */
static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *zl_base64_encode(const uint8_t *d, size_t n) {
  char *out = malloc((n + 2) / 3 * 4 + 1);
  if (!out) return NULL;
  char *p = out;
  size_t i = 0;
  for (; i + 2 < n; i += 3) {
    uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8 | d[i + 2];
    *p++ = B64[v >> 18];
    *p++ = B64[(v >> 12) & 63];
    *p++ = B64[(v >> 6) & 63];
    *p++ = B64[v & 63];
  }
  if (i < n) {
    uint32_t v = (uint32_t)d[i] << 16 | (i + 1 < n ? (uint32_t)d[i + 1] << 8 : 0);
    *p++ = B64[v >> 18];
    *p++ = B64[(v >> 12) & 63];
    *p++ = i + 1 < n ? B64[(v >> 6) & 63] : '=';
    *p++ = '=';
  }
  *p = 0;
  return out;
}

static int b64val(int c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;
  if (c == '/' || c == '_') return 63;
  return -1;
}

int zl_base64_decode(const char *in, uint8_t **out, size_t *outlen) {
  size_t n = strlen(in);
  uint8_t *buf = malloc(n / 4 * 3 + 4);
  if (!buf) return -1;
  size_t o = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; i++) {
    if (in[i] == '=') break;
    int v = b64val((unsigned char)in[i]);
    if (v < 0) {
      free(buf);
      return -1;
    }
    acc = acc << 6 | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      buf[o++] = (uint8_t)(acc >> bits);
    }
  }
  *out = buf;
  *outlen = o;
  return 0;
}

/* ------------------------------------------------------------------ schema */
static int collect(pd_schema *s, const Google__Protobuf__DescriptorProto *dp, const char *prefix,
                   int depth, char *err, size_t errlen) {
  if (depth > MAX_DEPTH) {
    snprintf(err, errlen, "message nesting deeper than %d", MAX_DEPTH);
    return -1;
  }
  if (!dp->name || !dp->name[0]) {
    snprintf(err, errlen, "a message type has no name");
    return -1;
  }
  if (s->nmsgs == s->cap) {
    size_t ncap = s->cap ? s->cap * 2 : 8;
    pd_msg *n = realloc(s->msgs, ncap * sizeof *n);
    if (!n) return -1;
    s->msgs = n;
    s->cap = ncap;
  }
  size_t fl = strlen(prefix) + strlen(dp->name) + 2;
  char *full = malloc(fl);
  if (!full) return -1;
  snprintf(full, fl, "%s%s%s", prefix, prefix[0] ? "." : "", dp->name);
  pd_msg *m = &s->msgs[s->nmsgs++];
  memset(m, 0, sizeof *m);
  m->full_name = full;
  m->dp = dp;
  m->map_entry = dp->options && dp->options->has_map_entry && dp->options->map_entry;
  for (size_t i = 0; i < dp->n_enum_type; i++) {
    const char *en = dp->enum_type[i]->name ? dp->enum_type[i]->name : "";
    if (s->nenums == s->ecap) {
      size_t ncap = s->ecap ? s->ecap * 2 : 8;
      pd_enum_name *n = realloc(s->enums, ncap * sizeof *n);
      if (!n) return -1;
      s->enums = n;
      s->ecap = ncap;
    }
    size_t l = strlen(full) + strlen(en) + 2;
    char *e = malloc(l);
    if (!e) return -1;
    snprintf(e, l, "%s.%s", full, en);
    s->enums[s->nenums++].full_name = e;
  }
  for (size_t i = 0; i < dp->n_nested_type; i++) {
    /* m may move on realloc: use the index-stable full name copy */
    char *pfx = strdup(full);
    if (!pfx) return -1;
    int rc = collect(s, dp->nested_type[i], pfx, depth + 1, err, errlen);
    free(pfx);
    if (rc) return rc;
  }
  return 0;
}

static int name_matches(const char *full, const char *ref) {
  if (strcmp(full, ref) == 0) return 2;
  size_t lf = strlen(full), lr = strlen(ref);
  if (lf > lr && full[lf - lr - 1] == '.' && strcmp(full + lf - lr, ref) == 0) return 1;
  if (lr > lf && ref[lr - lf - 1] == '.' && strcmp(ref + lr - lf, full) == 0) return 1;
  return 0;
}

static int find_msg(const pd_schema *s, const char *type_name) {
  const char *ref = type_name[0] == '.' ? type_name + 1 : type_name;
  int best = -1, best_score = 0;
  for (size_t i = 0; i < s->nmsgs; i++) {
    int sc = name_matches(s->msgs[i].full_name, ref);
    if (sc > best_score) {
      best = (int)i;
      best_score = sc;
    }
  }
  return best;
}

static int find_enum(const pd_schema *s, const char *type_name) {
  const char *ref = type_name[0] == '.' ? type_name + 1 : type_name;
  for (size_t i = 0; i < s->nenums; i++)
    if (name_matches(s->enums[i].full_name, ref)) return 1;
  return 0;
}

void pd_schema_free(pd_schema *s) {
  if (!s) return;
  for (size_t i = 0; i < s->nmsgs; i++) {
    free(s->msgs[i].full_name);
    free(s->msgs[i].fields);
  }
  for (size_t i = 0; i < s->nenums; i++) free(s->enums[i].full_name);
  free(s->msgs);
  free(s->enums);
  if (s->root) google__protobuf__descriptor_proto__free_unpacked(s->root, NULL);
  free(s);
}

pd_schema *pd_schema_parse(const uint8_t *data, size_t len, char *err, size_t errlen) {
  pd_schema *s = calloc(1, sizeof *s);
  if (!s) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  s->root = google__protobuf__descriptor_proto__unpack(NULL, len, data);
  if (!s->root) {
    snprintf(err, errlen, "not a serialized google.protobuf.DescriptorProto");
    goto fail;
  }
  err[0] = 0;
  if (collect(s, s->root, "", 0, err, errlen) != 0) {
    if (!err[0]) snprintf(err, errlen, "out of memory");
    goto fail;
  }
  for (size_t i = 0; i < s->nmsgs; i++) {
    pd_msg *m = &s->msgs[i];
    const Google__Protobuf__DescriptorProto *dp = m->dp;
    m->fields = calloc(dp->n_field ? dp->n_field : 1, sizeof *m->fields);
    if (!m->fields) goto fail;
    for (size_t j = 0; j < dp->n_field; j++) {
      const Google__Protobuf__FieldDescriptorProto *fd = dp->field[j];
      pd_field *f = &m->fields[m->nfields];
      if (!fd->name || !fd->name[0] || !fd->has_number || fd->number <= 0) {
        snprintf(err, errlen, "field %zu of %s has no name or number", j, m->full_name);
        goto fail;
      }
      for (size_t k = 0; k < m->nfields; k++)
        if (m->fields[k].number == fd->number) {
          snprintf(err, errlen, "%s: field number %d used twice", m->full_name, fd->number);
          goto fail;
        }
      f->number = fd->number;
      f->name = fd->name;
      f->repeated = fd->has_label &&
                    fd->label == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_REPEATED;
      f->msg = -1;
      int type = fd->has_type ? (int)fd->type : 0;
      if (type == 0 || type == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_MESSAGE ||
          type == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_ENUM) {
        if (!fd->type_name || !fd->type_name[0]) {
          snprintf(err, errlen, "%s.%s: type_name missing", m->full_name, fd->name);
          goto fail;
        }
        int mi = find_msg(s, fd->type_name);
        int is_enum = find_enum(s, fd->type_name);
        if (type == 0)
          type = mi >= 0   ? GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_MESSAGE
                 : is_enum ? GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_ENUM
                           : 0;
        if (type == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_MESSAGE) {
          if (mi < 0) {
            snprintf(err, errlen, "%s.%s: message type '%s' is not inside the descriptor",
                     m->full_name, fd->name, fd->type_name);
            goto fail;
          }
          f->msg = mi;
        } else if (type == 0) {
          snprintf(err, errlen, "%s.%s: cannot resolve type '%s'", m->full_name, fd->name,
                   fd->type_name);
          goto fail;
        }
        /* enums declared outside the descriptor still decode (as numbers) */
      } else if (type == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_GROUP) {
        snprintf(err, errlen, "%s.%s: group fields are not supported", m->full_name, fd->name);
        goto fail;
      } else if (type < 1 || type > 18) {
        snprintf(err, errlen, "%s.%s: unknown field type %d", m->full_name, fd->name, type);
        goto fail;
      }
      f->type = type;
      m->nfields++;
    }
  }
  return s;
fail:
  pd_schema_free(s);
  return NULL;
}

int pd_top_field_is_bytes(const pd_schema *s, const char *name) {
  const pd_msg *m = &s->msgs[0];
  for (size_t i = 0; i < m->nfields; i++)
    if (strcmp(m->fields[i].name, name) == 0)
      return !m->fields[i].repeated &&
             m->fields[i].type == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_BYTES;
  return 0;
}

/* ------------------------------------------------------------------ decoding */
typedef struct rd {
  const uint8_t *p, *end;
} rd;

static int rd_varint(rd *r, uint64_t *out) {
  uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (r->p >= r->end) return -1;
    uint8_t b = *r->p++;
    v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *out = v;
      return 0;
    }
  }
  return -1;
}

static int rd_fixed(rd *r, int n, uint64_t *out) {
  if (r->end - r->p < n) return -1;
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; i--) v = v << 8 | r->p[i];
  r->p += n;
  *out = v;
  return 0;
}

static int skip_field(rd *r, int wt, int depth) {
  uint64_t v;
  switch (wt) {
    case 0:
      return rd_varint(r, &v);
    case 1:
      return rd_fixed(r, 8, &v);
    case 5:
      return rd_fixed(r, 4, &v);
    case 2:
      if (rd_varint(r, &v) || v > (uint64_t)(r->end - r->p)) return -1;
      r->p += v;
      return 0;
    case 3: /* group: skip until the matching end-group */
      if (depth > MAX_DEPTH) return -1;
      for (;;) {
        uint64_t tag;
        if (rd_varint(r, &tag)) return -1;
        if ((tag & 7) == 4) return 0;
        if (skip_field(r, (int)(tag & 7), depth + 1)) return -1;
      }
    default:
      return -1;
  }
}

static cJSON *make_i64(int64_t v) {
  if (v > 9007199254740992LL || v < -9007199254740992LL) {
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", (long long)v);
    return cJSON_CreateRaw(buf);
  }
  return cJSON_CreateNumber((double)v);
}

static cJSON *make_u64(uint64_t v) {
  if (v > 9007199254740992ULL) {
    char buf[32];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
    return cJSON_CreateRaw(buf);
  }
  return cJSON_CreateNumber((double)v);
}

static cJSON *decode_msg(const pd_schema *s, int mi, const uint8_t *p, size_t len, int depth,
                         char *err, size_t errlen);

static int wire_type_for(int type) {
  switch (type) {
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_DOUBLE:
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_FIXED64:
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_SFIXED64:
      return 1;
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_FLOAT:
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_FIXED32:
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_SFIXED32:
      return 5;
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_STRING:
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_BYTES:
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_MESSAGE:
      return 2;
    default:
      return 0;
  }
}

/* Reads one scalar (non length-delimited) value of `type` with wire type wt. */
static cJSON *read_scalar(rd *r, int type, int wt) {
  uint64_t v;
  if (wt == 0 ? rd_varint(r, &v) : rd_fixed(r, wt == 1 ? 8 : 4, &v)) return NULL;
  switch (type) {
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_DOUBLE: {
      double d;
      memcpy(&d, &v, 8);
      return cJSON_CreateNumber(d);
    }
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_FLOAT: {
      uint32_t u = (uint32_t)v;
      float f;
      memcpy(&f, &u, 4);
      return cJSON_CreateNumber((double)f);
    }
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_INT64:
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_SFIXED64:
      return make_i64((int64_t)v);
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_UINT64:
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_FIXED64:
      return make_u64(v);
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_INT32:
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_ENUM:
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_SFIXED32:
      return cJSON_CreateNumber((double)(int32_t)(uint32_t)v);
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_UINT32:
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_FIXED32:
      return cJSON_CreateNumber((double)(uint32_t)v);
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_BOOL:
      return cJSON_CreateBool(v != 0);
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_SINT32: {
      uint32_t u = (uint32_t)v;
      return cJSON_CreateNumber((double)(int32_t)((u >> 1) ^ (~(u & 1) + 1)));
    }
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_SINT64:
      return make_i64((int64_t)((v >> 1) ^ (~(v & 1) + 1)));
    default:
      return NULL;
  }
}

static cJSON *read_len_value(const pd_schema *s, const pd_field *f, const uint8_t *p, size_t n,
                             int depth, char *err, size_t errlen) {
  if (f->type == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_STRING) {
    char *tmp = malloc(n + 1);
    if (!tmp) return NULL;
    memcpy(tmp, p, n);
    tmp[n] = 0;
    cJSON *v = cJSON_CreateString(tmp);
    free(tmp);
    return v;
  }
  if (f->type == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_BYTES) {
    char *b = zl_base64_encode(p, n);
    if (!b) return NULL;
    cJSON *v = cJSON_CreateString(b);
    free(b);
    return v;
  }
  return decode_msg(s, f->msg, p, n, depth + 1, err, errlen);
}

static char *map_key_string(const cJSON *k) {
  if (!k) return strdup("");
  if (cJSON_IsString(k)) return strdup(k->valuestring);
  if (cJSON_IsBool(k)) return strdup(cJSON_IsTrue(k) ? "true" : "false");
  if (cJSON_IsRaw(k)) return strdup(k->valuestring);
  char buf[40];
  snprintf(buf, sizeof buf, "%.0f", k->valuedouble);
  return strdup(buf);
}

static cJSON *decode_msg(const pd_schema *s, int mi, const uint8_t *p, size_t len, int depth,
                         char *err, size_t errlen) {
  if (depth > MAX_DEPTH) {
    snprintf(err, errlen, "nesting deeper than %d", MAX_DEPTH);
    return NULL;
  }
  const pd_msg *m = &s->msgs[mi];
  cJSON *obj = cJSON_CreateObject();
  if (!obj) return NULL;
  rd r = {p, p ? p + len : p}; /* protobuf-c gives NULL for empty bytes */
  while (r.p < r.end) {
    uint64_t tag;
    if (rd_varint(&r, &tag) || (tag >> 3) == 0 || (tag >> 3) > 0x1fffffff) {
      snprintf(err, errlen, "%s: bad field tag", m->full_name);
      goto fail;
    }
    int num = (int)(tag >> 3), wt = (int)(tag & 7);
    const pd_field *f = NULL;
    for (size_t i = 0; i < m->nfields; i++)
      if (m->fields[i].number == num) {
        f = &m->fields[i];
        break;
      }
    if (!f) { /* unknown field: skip it, as protobuf does */
      if (wt == 4 || skip_field(&r, wt, depth)) {
        snprintf(err, errlen, "%s: malformed unknown field %d", m->full_name, num);
        goto fail;
      }
      continue;
    }
    int want = wire_type_for(f->type);
    int is_map = f->msg >= 0 && s->msgs[f->msg].map_entry && f->repeated;
    cJSON *arr = NULL;
    if (f->repeated) {
      arr = cJSON_GetObjectItemCaseSensitive(obj, f->name);
      if (!arr) {
        arr = is_map ? cJSON_CreateObject() : cJSON_CreateArray();
        if (!arr) goto fail;
        cJSON_AddItemToObject(obj, f->name, arr);
      }
    }
    if (wt == 2 && want != 2) {
      /* packed repeated scalars */
      uint64_t n;
      if (!f->repeated || rd_varint(&r, &n) || n > (uint64_t)(r.end - r.p)) {
        snprintf(err, errlen, "%s.%s: wrong wire type", m->full_name, f->name);
        goto fail;
      }
      rd sub = {r.p, r.p + n};
      r.p += n;
      while (sub.p < sub.end) {
        cJSON *v = read_scalar(&sub, f->type, want);
        if (!v) {
          snprintf(err, errlen, "%s.%s: truncated packed value", m->full_name, f->name);
          goto fail;
        }
        cJSON_AddItemToArray(arr, v);
      }
      continue;
    }
    if (wt != want) {
      snprintf(err, errlen, "%s.%s: wire type %d, expected %d", m->full_name, f->name, wt, want);
      goto fail;
    }
    cJSON *v;
    if (want == 2) {
      uint64_t n;
      if (rd_varint(&r, &n) || n > (uint64_t)(r.end - r.p)) {
        snprintf(err, errlen, "%s.%s: truncated length-delimited value", m->full_name, f->name);
        goto fail;
      }
      v = read_len_value(s, f, r.p, (size_t)n, depth, err, errlen);
      r.p += n;
    } else {
      v = read_scalar(&r, f->type, want);
      if (!v) snprintf(err, errlen, "%s.%s: truncated value", m->full_name, f->name);
    }
    if (!v) goto fail;
    if (is_map) {
      char *key = map_key_string(cJSON_GetObjectItemCaseSensitive(v, "key"));
      cJSON *val = cJSON_DetachItemFromObjectCaseSensitive(v, "value");
      cJSON_Delete(v);
      if (!key) {
        cJSON_Delete(val);
        goto fail;
      }
      if (!val) val = cJSON_CreateNull();
      cJSON_DeleteItemFromObjectCaseSensitive(arr, key);
      cJSON_AddItemToObject(arr, key, val);
      free(key);
    } else if (arr) {
      cJSON_AddItemToArray(arr, v);
    } else {
      cJSON_DeleteItemFromObjectCaseSensitive(obj, f->name); /* last one wins */
      cJSON_AddItemToObject(obj, f->name, v);
    }
  }
  return obj;
fail:
  cJSON_Delete(obj);
  return NULL;
}

cJSON *pd_decode(const pd_schema *s, const uint8_t *data, size_t len, char *err, size_t errlen) {
  err[0] = 0;
  cJSON *o = decode_msg(s, 0, data, len, 0, err, errlen);
  if (!o && !err[0]) snprintf(err, errlen, "out of memory");
  return o;
}
