/* A descriptor that covers every field kind zerobus-local's dynamic decoder
 * handles (scalars of each wire type, string, bytes, enum, nested and recursive
 * messages, repeated and packed fields, a map), built with protobuf-c:
 *
 *   message Rich {
 *     optional int32 i32 = 1;  optional int64 i64 = 2;  optional uint64 u64 = 3;
 *     optional sint32 s32 = 4; optional fixed64 f64 = 5; optional double d = 6;
 *     optional float f = 7;    optional bool b = 8;      optional string s = 9;
 *     optional bytes by = 10;  optional Kind e = 11;     repeated int32 ri = 12 [packed];
 *     optional Inner inner = 13; repeated Inner rin = 14; map<string, int64> m = 15;
 *     optional sint64 s64 = 16; optional sfixed32 sf32 = 17; optional uint32 u32 = 18;
 *     message Inner { optional string name = 1; optional Inner child = 2; repeated sfixed32 x = 3;
 * } enum Kind { A = 0; B = 1; }
 *   }
 * Returns a malloc'd serialized DescriptorProto. */
#ifndef RICH_DESCRIPTOR_H
#define RICH_DESCRIPTOR_H
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "google/protobuf/descriptor.pb-c.h"

static void rich_field(Google__Protobuf__FieldDescriptorProto *f, const char *name, int num,
                       int type, int repeated, const char *type_name) {
  google__protobuf__field_descriptor_proto__init(f);
  f->name = (char *)name;
  f->has_number = 1;
  f->number = num;
  f->has_label = 1;
  f->label = repeated ? GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_REPEATED
                      : GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_OPTIONAL;
  f->has_type = 1;
  f->type = (Google__Protobuf__FieldDescriptorProto__Type)type;
  f->type_name = (char *)type_name;
}

static uint8_t *rich_descriptor(size_t *len) {
  enum {
    T_DOUBLE = 1,
    T_FLOAT = 2,
    T_INT64 = 3,
    T_UINT64 = 4,
    T_INT32 = 5,
    T_FIXED64 = 6,
    T_BOOL = 8,
    T_STRING = 9,
    T_MESSAGE = 11,
    T_BYTES = 12,
    T_UINT32 = 13,
    T_ENUM = 14,
    T_SFIXED32 = 15,
    T_SINT32 = 17,
    T_SINT64 = 18
  };
  static Google__Protobuf__FieldDescriptorProto f[18], inf[3], mf[2];
  static Google__Protobuf__FieldDescriptorProto *fp[18], *infp[3], *mfp[2];
  static Google__Protobuf__FieldOptions packed;
  static Google__Protobuf__MessageOptions map_opt;
  static Google__Protobuf__DescriptorProto rich, inner, entry, *nested[2];
  static Google__Protobuf__EnumDescriptorProto kind, *enums[1];
  static Google__Protobuf__EnumValueDescriptorProto ka, kb, *kv[2];
  rich_field(&f[0], "i32", 1, T_INT32, 0, NULL);
  rich_field(&f[1], "i64", 2, T_INT64, 0, NULL);
  rich_field(&f[2], "u64", 3, T_UINT64, 0, NULL);
  rich_field(&f[3], "s32", 4, T_SINT32, 0, NULL);
  rich_field(&f[4], "f64", 5, T_FIXED64, 0, NULL);
  rich_field(&f[5], "d", 6, T_DOUBLE, 0, NULL);
  rich_field(&f[6], "f", 7, T_FLOAT, 0, NULL);
  rich_field(&f[7], "b", 8, T_BOOL, 0, NULL);
  rich_field(&f[8], "s", 9, T_STRING, 0, NULL);
  rich_field(&f[9], "by", 10, T_BYTES, 0, NULL);
  rich_field(&f[10], "e", 11, T_ENUM, 0, ".Rich.Kind");
  rich_field(&f[11], "ri", 12, T_INT32, 1, NULL);
  google__protobuf__field_options__init(&packed);
  packed.has_packed = 1;
  packed.packed = 1;
  f[11].options = &packed;
  rich_field(&f[12], "inner", 13, T_MESSAGE, 0, ".Rich.Inner");
  rich_field(&f[13], "rin", 14, T_MESSAGE, 1, ".Rich.Inner");
  rich_field(&f[14], "m", 15, T_MESSAGE, 1, ".Rich.MEntry");
  rich_field(&f[15], "s64", 16, T_SINT64, 0, NULL);
  rich_field(&f[16], "sf32", 17, T_SFIXED32, 0, NULL);
  rich_field(&f[17], "u32", 18, T_UINT32, 0, NULL);
  for (int i = 0; i < 18; i++) fp[i] = &f[i];
  rich_field(&inf[0], "name", 1, T_STRING, 0, NULL);
  rich_field(&inf[1], "child", 2, T_MESSAGE, 0, ".Rich.Inner");
  rich_field(&inf[2], "x", 3, T_SFIXED32, 1, NULL);
  for (int i = 0; i < 3; i++) infp[i] = &inf[i];
  rich_field(&mf[0], "key", 1, T_STRING, 0, NULL);
  rich_field(&mf[1], "value", 2, T_INT64, 0, NULL);
  mfp[0] = &mf[0];
  mfp[1] = &mf[1];
  google__protobuf__descriptor_proto__init(&inner);
  inner.name = "Inner";
  inner.n_field = 3;
  inner.field = infp;
  google__protobuf__descriptor_proto__init(&entry);
  entry.name = "MEntry";
  entry.n_field = 2;
  entry.field = mfp;
  google__protobuf__message_options__init(&map_opt);
  map_opt.has_map_entry = 1;
  map_opt.map_entry = 1;
  entry.options = &map_opt;
  nested[0] = &inner;
  nested[1] = &entry;
  google__protobuf__enum_value_descriptor_proto__init(&ka);
  ka.name = "A";
  ka.has_number = 1;
  ka.number = 0;
  google__protobuf__enum_value_descriptor_proto__init(&kb);
  kb.name = "B";
  kb.has_number = 1;
  kb.number = 1;
  kv[0] = &ka;
  kv[1] = &kb;
  google__protobuf__enum_descriptor_proto__init(&kind);
  kind.name = "Kind";
  kind.n_value = 2;
  kind.value = kv;
  enums[0] = &kind;
  google__protobuf__descriptor_proto__init(&rich);
  rich.name = "Rich";
  rich.n_field = 18;
  rich.field = fp;
  rich.n_nested_type = 2;
  rich.nested_type = nested;
  rich.n_enum_type = 1;
  rich.enum_type = enums;
  *len = google__protobuf__descriptor_proto__get_packed_size(&rich);
  uint8_t *out = malloc(*len);
  if (out) google__protobuf__descriptor_proto__pack(&rich, out);
  return out;
}
#endif
