"""PROTO streams: descriptors are resolved and records decoded into typed columns."""
import json
import os
import subprocess
import sys
import tempfile

import pytest

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from zlclient import OK, Server, CallEnded, temp_dir

T = "p.s.t"

PROTO_SRC = r'''
syntax = "proto2";
package test.pkg;
message Row {
  enum Color { RED = 0; GREEN = 1; BLUE = 2; }
  message Inner { optional int32 a = 1; optional string b = 2; repeated int64 r = 3; }
  optional int32 i32 = 1;
  optional int64 i64 = 2;
  optional uint64 u64 = 3;
  optional sint32 s32 = 4;
  optional sint64 s64 = 5;
  optional fixed32 f32 = 6;
  optional fixed64 f64 = 7;
  optional sfixed32 sf32 = 8;
  optional sfixed64 sf64 = 9;
  optional float fl = 10;
  optional double db = 11;
  optional bool bo = 12;
  optional string st = 13;
  optional bytes by = 14;
  optional Color color = 15;
  optional Inner inner = 16;
  repeated string tags = 17;
  repeated int32 packed = 18 [packed = true];
  repeated int32 unpacked = 19;
  map<string, int32> m = 20;
  repeated Inner inners = 21;
  map<int64, Inner> mi = 22;
  optional uint32 u32 = 23;
}
'''


def compile_row():
    from grpc_tools import protoc
    import grpc_tools
    d = temp_dir("zl-proto-")
    with open(os.path.join(d, "row.proto"), "w") as f:
        f.write(PROTO_SRC)
    out = os.path.join(d, "row.pb")
    inc = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    assert protoc.main(["protoc", f"-I{d}", f"-I{inc}", f"--descriptor_set_out={out}",
                        os.path.join(d, "row.proto")]) == 0
    fds = descriptor_pb2.FileDescriptorSet()
    with open(out, "rb") as f:
        fds.ParseFromString(f.read())
    pool = descriptor_pool.DescriptorPool()
    for fp in fds.file:
        pool.Add(fp)
    desc = pool.FindMessageTypeByName("test.pkg.Row")
    cls = message_factory.GetMessageClass(desc)
    dp = [m for m in fds.file[0].message_type if m.name == "Row"][0]
    return cls, dp.SerializeToString()


Row, ROW_DESC = compile_row()


@pytest.fixture(scope="module")
def srv():
    s = Server("--no-auth")
    yield s
    s.kill()


def test_proto_all_field_kinds(srv):
    r = Row(i32=-5, i64=-(2**62), u64=2**64 - 1, s32=-7, s64=-(2**40), f32=4000000000,
            f64=2**60, sf32=-3, sf64=-(2**63), fl=1.5, db=-2.25, bo=True, st="héllo",
            by=b"\x00\x01\xff", color=Row.BLUE, tags=["a", "b"], packed=[1, 2, 300],
            unpacked=[-1, 5], u32=7)
    r.inner.a = 9
    r.inner.b = "x"
    r.inner.r.extend([1, 2**60])
    r.m["k1"] = 1
    r.m["k2"] = -2
    r.inners.add(a=1)
    r.inners.add(b="z")
    r.mi[5].a = 6
    payload = r.SerializeToString()
    c = srv.call(table=T)
    sid = c.create(T, "PROTO", ROW_DESC)
    c.ingest_proto(payload)
    c.ingest_proto([Row(i32=1).SerializeToString(), Row(st="only").SerializeToString()])
    assert c.wait_ack(1) == 1
    c.half_close()
    assert c.wait_status()[0] == OK
    cols = ("_zerobus_stream_id, _zerobus_offset, _zerobus_payload, typeof(_zerobus_payload), "
            "i32, i64, u64, s32, s64, f32, f64, sf32, sf64, fl, db, bo, st, by, color, inner, "
            "tags, packed, unpacked, m, inners, mi, u32")
    rows = srv.rows(T, cols)
    assert len(rows) == 3
    got = rows[0]
    assert got[:4] == (sid, 0, payload, "blob")
    # uint64 above 2^63-1 cannot be an SQLite INTEGER: stored as REAL (payload is exact)
    assert got[4:19] == (-5, -(2**62), float(2**64 - 1), -7, -(2**40), 4000000000, 2**60, -3,
                         -(2**63), 1.5, -2.25, 1, "héllo", b"\x00\x01\xff", 2)
    assert json.loads(got[19]) == {"a": 9, "b": "x", "r": [1, 2**60]}
    assert json.loads(got[20]) == ["a", "b"]
    assert json.loads(got[21]) == [1, 2, 300]
    assert json.loads(got[22]) == [-1, 5]
    assert json.loads(got[23]) == {"k1": 1, "k2": -2}
    assert json.loads(got[24]) == [{"a": 1}, {"b": "z"}]
    assert json.loads(got[25]) == {"5": {"a": 6}}
    assert got[26] == 7
    assert rows[1][1] == 1 and rows[1][4] == 1 and rows[1][16] is None
    assert rows[2][1] == 2 and rows[2][16] == "only" and rows[2][4] is None


def test_unknown_fields_are_skipped(srv):
    # a record written with a newer schema (field 99) still decodes
    extra = Row(i32=3).SerializeToString() + b"\x98\x06\x01"  # field 99, varint 1
    c = srv.call(table="p.s.unknown")
    c.create("p.s.unknown", "PROTO", ROW_DESC)
    c.ingest_proto(extra)
    assert c.wait_ack(0) == 0
    assert srv.rows("p.s.unknown", "i32") == [(3,)]


def test_descriptor_with_relative_and_unqualified_type_names(srv):
    inner = descriptor_pb2.DescriptorProto(name="In")
    inner.field.add(name="v", number=1, type=9, label=1)
    d = descriptor_pb2.DescriptorProto(name="Out")
    d.field.add(name="in1", number=1, type=11, label=1, type_name="In")
    d.field.add(name="in2", number=2, type=11, label=1, type_name=".some.pkg.Out.In")
    d.nested_type.add().CopyFrom(inner)
    # encode by hand: in1 {v:"a"} in2 {v:"b"}
    payload = b"\x0a\x03\x0a\x01a" + b"\x12\x03\x0a\x01b"
    c = srv.call(table="p.s.rel")
    c.create("p.s.rel", "PROTO", d.SerializeToString())
    c.ingest_proto(payload)
    c.wait_ack(0)
    assert srv.rows("p.s.rel", "in1, in2") == [('{"v":"a"}', '{"v":"b"}')]


@pytest.mark.parametrize("desc,why", [
    (b"\xff\xff\xff", "not a serialized"),
    (descriptor_pb2.DescriptorProto(name="X", field=[descriptor_pb2.FieldDescriptorProto(
        name="n", number=1, type=11, label=1, type_name=".Missing")]).SerializeToString(),
     "not inside the descriptor"),
    (descriptor_pb2.DescriptorProto(name="X", field=[descriptor_pb2.FieldDescriptorProto(
        name="a", number=1, type=5, label=1), descriptor_pb2.FieldDescriptorProto(
        name="b", number=1, type=5, label=1)]).SerializeToString(), "used twice"),
    (descriptor_pb2.DescriptorProto(name="X", field=[descriptor_pb2.FieldDescriptorProto(
        name="g", number=1, type=10, label=1, type_name="G")]).SerializeToString(),
     "group"),
])
def test_invalid_descriptor_rejected(srv, desc, why):
    c = srv.call(table=T)
    with pytest.raises(CallEnded) as e:
        c.create(T, "PROTO", desc)
    assert e.value.code.name == "INVALID_ARGUMENT" and why in e.value.details


def test_proto_without_descriptor_rejected(srv):
    c = srv.call(table=T)
    with pytest.raises(CallEnded) as e:
        c.create(T, "PROTO")
    assert e.value.code.name == "INVALID_ARGUMENT" and "descriptor_proto" in e.value.details


def test_record_not_matching_descriptor_rejected(srv):
    table = "p.s.bad"
    c = srv.call(table=table)
    c.create(table, "PROTO", ROW_DESC)
    c.ingest_proto(Row(i32=1).SerializeToString())
    c.wait_ack(0)
    c.ingest_proto([Row(i32=2).SerializeToString(), b"\x0a\xff"])  # truncated string
    code, details = c.wait_status()
    assert code.name == "INVALID_ARGUMENT" and "record 1 of request 1" in details
    assert srv.rows(table, "i32") == [(1,)]  # nothing of the bad request
