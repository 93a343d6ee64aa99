#!/usr/bin/env python3
"""Writes the seed corpora under tests/fuzz/corpus/<target>/ (run once; the
output is committed). Hand-rolled protobuf encoding keeps it dependency-free."""
import hashlib
import os
import struct
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def varint(v):
    if v < 0:
        v += 1 << 64
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def key(field, wt):
    return varint((field << 3) | wt)


def ld(field, payload):
    return key(field, 2) + varint(len(payload)) + payload


def vi(field, v):
    return key(field, 0) + varint(v)


def write(target, items):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    for data in items:
        if isinstance(data, str):
            data = data.encode()
        name = hashlib.sha1(data).hexdigest()[:16]
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


json_seeds = [
    '{}', ' {"a":1} ', '{"id":12,"device":"sensor-3","temp":21.5,"ok":true,"tags":["x","y"],"n":null}',
    '{"s":"\\u00e9\\ud83d\\ude00\\n\\t\\"\\\\\\/"}', '{"e":-0.5e+10,"z":0,"neg":-12,"big":1E400}',
    '{"nested":{"a":{"b":{"c":[1,[2,[3,{}]]]}}}}', '{"k":"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"}',
    '[]', '"str"', '{"a":01}', '{"a":1.}', '{"a":.5}', '{"a":"\\x"}', '{"a":"\\ud800"}', '{"a":1,}',
    '{"a" 1}', '{"a":1}{"b":2}', '{"a":tru}', '\xef\xbb\xbf{}', '{"a":"\x01"}', '{"a":"\xc0\xaf"}',
    '{' * 40 + '}' * 40, '{"a":' + '[' * 600 + ']' * 600 + '}', '{"a":"\\u00zz"}', '\t\r\n{}\n',
]
write("fuzz_json_check", json_seeds)

token_seeds = [
    '{"access_token":"eyJhbGciOi.abc.def","token_type":"Bearer","expires_in":3600}',
    '{"access_token":"tok","expires_in":"3600"}', '{"access_token":"tok"}', '{"access_token":""}',
    '{"expires_in":3600}', '{"access_token":"tok","expires_in":-1}', '{"access_token":"tok","expires_in":"1e3x"}',
    '{"access_token":"tok","expires_in":null}', '{"access_token":123}', '[]', 'not json', '',
    '{"error":"invalid_client","error_description":"bad secret"}', '{"access_token":"tok","expires_in":1e300}',
]
write("fuzz_token", token_seeds)

# headers: provider rc byte, then NUL-separated key/value pairs
def hdr(rc, *pairs):
    return bytes([rc]) + b"\0".join(p.encode() if isinstance(p, str) else p for p in pairs)

header_seeds = [
    hdr(0, "authorization", "Bearer abc.def", "x-databricks-zerobus-table-name", "c.s.t"),
    hdr(0, "Authorization", "Bearer x", "X-Databricks-Zerobus-Table-Name", "c.s.t", "x-extra", "v"),
    hdr(0, "authorization", "Bearer x"),
    hdr(0, "authorization", "", "x-databricks-zerobus-table-name", "c.s.t"),
    hdr(0, "authorization", "Bearer x", "x-databricks-zerobus-table-name", "c.s.t", "grpc-timeout", "1S"),
    hdr(0, "authorization", "Bearer x", "x-databricks-zerobus-table-name", "c.s.t", "bad key", "v"),
    hdr(0, "authorization", "Bearer x\r\nevil: 1", "x-databricks-zerobus-table-name", "c.s.t"),
    hdr(0, "authorization", "Bearer x", "x-databricks-zerobus-table-name", "c.s.t", "k-bin", b"\x01\x80"),
    hdr(0, "authorization", "Bearer x", "x-databricks-zerobus-table-name", "c.s.t", "!fail", "provider said no"),
    hdr(0, "!fail", "x retry"),
    hdr(205, "authorization", "Bearer x", "x-databricks-zerobus-table-name", "c.s.t"),
]
write("fuzz_headers", header_seeds)

# options: selector byte (< 0xf0 = option index) NUL value NUL ...
def opts(*pairs):
    out = b""
    for sel, val in pairs:
        s = bytes([sel]) if isinstance(sel, int) else b"\xf0" + sel.encode()
        out += s + b"\0" + val.encode() + b"\0"
    return out

option_seeds = [opts((i, v)) for i in range(40) for v in ("1", "0", "true", "none", "json", "-1", "2147483648", "")]
option_seeds += [
    opts(("record_type", "json"), ("max_inflight_records", "10")),
    opts(("no_such_option", "1")), opts((0, "proto"), (1, "1000000000"), (2, "99999999999999999999")),
    opts((5, " 12"), (5, "12 "), (5, "0x10"), (5, "1e3")),
    opts((9, "http://user:pass@proxy:3128"), (9, "none"), (9, "http://[::1]:8080"), (9, "")),
]
write("fuzz_options", option_seeds)

# server responses
def resp_create(sid):
    return ld(1, ld(1, sid.encode()))

def resp_ack(off=None):
    return ld(2, b"" if off is None else vi(1, off))

def resp_close(sec, nanos):
    return ld(3, ld(1, vi(1, sec) + vi(2, nanos)))

response_seeds = [
    resp_create("stream-1"), resp_create(""), ld(1, b""), resp_ack(0), resp_ack(41), resp_ack(-1),
    resp_ack(None), resp_ack((1 << 63) - 1), resp_close(0, 500000000), resp_close(3, 0), resp_close(-5, 0),
    resp_close((1 << 62), 999999999), ld(3, b""), b"", b"\x08\x01", resp_ack(5) + resp_create("x"),
]
write("fuzz_response", [b"\0\0" + r for r in response_seeds] + response_seeds)

# server proto decoder: byte0 even = rich descriptor; records each prefixed by one length byte
def rec(*fields):
    return b"".join(fields)

rich_records = [
    rec(vi(1, 5), vi(2, -7), vi(3, (1 << 64) - 1), vi(4, 3), key(5, 1) + struct.pack("<Q", 2**60),
        key(6, 1) + struct.pack("<d", 1.5), key(7, 5) + struct.pack("<f", -2.25), vi(8, 1), ld(9, b"hello"),
        ld(10, b"\x00\xff\x10"), vi(11, 1), ld(12, varint(1) + varint(2) + varint(300))),
    rec(ld(13, ld(1, b"in") + ld(2, ld(1, b"child") + ld(2, b""))), ld(14, ld(1, b"a")), ld(14, b""),
        ld(15, ld(1, b"k1") + vi(2, 9)), ld(15, ld(1, b"k2") + vi(2, -9))),
    rec(vi(16, 123456789), key(17, 5) + struct.pack("<i", -3), vi(18, 4000000000)),
    rec(vi(12, 7), vi(12, 8)), rec(vi(99, 1), ld(98, b"unknown")), b"", b"\xff\xff\xff",
    rec(ld(9, b"\xc3\x28")), rec(vi(11, 77)),
]
proto_seeds = [b"\0" + b"".join(bytes([len(r)]) + r for r in rich_records)]
proto_seeds += [b"\0" + bytes([len(r)]) + r for r in rich_records]

def field(name, num, typ, label=1, type_name=None, packed=False):
    f = ld(1, name.encode()) + vi(3, num) + vi(4, label) + vi(5, typ)
    if type_name:
        f += ld(6, type_name.encode())
    if packed:
        f += ld(8, vi(2, 1))
    return f

chaos_desc = ld(1, b"ChaosRecord") + ld(2, field("l", 1, 3)) + ld(2, field("p", 2, 3)) + ld(2, field("q", 3, 3)) + ld(2, field("pad", 4, 9))
recur = ld(1, b"Node") + ld(2, field("next", 1, 11, 1, ".Node")) + ld(2, field("v", 2, 5, 3))
bad = ld(1, b"Bad") + ld(2, field("x", 1, 11, 1, ".Missing"))
dup = ld(1, b"Dup") + ld(2, field("a", 1, 5)) + ld(2, field("b", 1, 5))
for d, recs in ((chaos_desc, [vi(1, 0) + vi(2, 1) + vi(3, 2) + ld(4, b"aaa")]),
                (recur, [ld(1, ld(1, ld(1, b""))) + vi(2, 1) + vi(2, 2)]),
                (bad, [ld(1, b"")]), (dup, [vi(1, 1)])):
    body = b"".join(bytes([len(r)]) + r for r in recs)
    proto_seeds.append(b"\x01" + struct.pack("<H", len(d)) + d + body)
write("fuzz_server_proto", proto_seeds)

# server requests: byte0 bit0 = stream type (1 PROTO), then EphemeralStreamRequest
def ingest_json(off, *recs):
    if len(recs) == 1:
        return ld(2, vi(1, off) + ld(3, recs[0].encode()))
    return ld(3, vi(1, off) + ld(3, b"".join(ld(1, r.encode()) for r in recs)))

def ingest_proto(off, *recs):
    if len(recs) == 1:
        return ld(2, vi(1, off) + ld(2, recs[0]))
    return ld(3, vi(1, off) + ld(2, b"".join(ld(1, r) for r in recs)))

request_seeds = [
    b"\x00" + ingest_json(0, '{"a":1,"b":"x"}'),
    b"\x00" + ingest_json(1, '{"a":1}', '{"A":2,"c":[1,2],"d":{"e":null}}', '{"weird col\\"":true}'),
    b"\x00" + ingest_json(2, '{"a":1}', 'not json'),
    b"\x00" + ingest_json(3, '[1]'),
    b"\x01" + ingest_proto(0, rich_records[0]),
    b"\x01" + ingest_proto(1, *rich_records[:3]),
    b"\x01" + ingest_proto(2, rich_records[4], b"\xff\xff"),
    b"\x00" + ld(1, ld(1, b"c.s.t") + vi(4, 2)),
]
write("fuzz_server_request", request_seeds)

# fuzz_ack: first byte = ring head, then events (see tests/fuzz/fuzz_ack.c):
# pack k offsets = (k-1)<<2, write = 1, reconnect = 3, ack = 2 | 4 (no offset) |
# mode<<3 followed by a delta byte (mode 0: last ack + delta, 1: highest wire
# sent + delta, 2: last ack + 1 + (delta & 7)) or 8 bytes (mode 3: any value).
A_PACK = lambda k: bytes([(k - 1) << 2])
A_SEND = b"\x01"
A_RECONNECT = b"\x03"
def a_ack(mode, delta, has=True):
    return bytes([2 | (0 if has else 4) | (mode << 3), delta & 0xFF])
def a_ack_any(v):
    return bytes([2 | (3 << 3)]) + struct.pack(">q", v)

a_flow = A_PACK(3) + A_PACK(1) + A_PACK(8) + A_SEND * 3
ack_seeds = [
    b"\x05" + a_flow + a_ack(2, 0) + a_ack(2, 1),                    # ack wire 0, then 2
    b"\x07" + a_flow + a_ack(1, 0) + A_PACK(2) + A_SEND + a_ack(1, 0),  # highest sent, twice
    b"\x00" + a_flow + a_ack(2, 0) + a_ack(0, 0) + a_ack(2, 0),      # duplicate ignored
    b"\x02" + a_flow + a_ack(2, 1) + a_ack(0, -1) + A_SEND * 2 + a_ack(1, 0),  # backwards
    b"\x03" + a_flow + a_ack(2, 0) + a_ack(1, 5) + A_SEND * 2 + a_ack(1, 0),   # beyond (+5)
    b"\x04" + a_flow + a_ack(2, 0, has=False) + A_SEND * 3 + a_ack(1, 0),      # no offset
    b"\x06" + a_flow + a_ack(2, 0) + A_RECONNECT + A_PACK(4) + A_SEND * 3 + a_ack(2, 0)
    + a_ack(1, 0),                                                    # replay after reconnect
    b"\x01" + A_PACK(1) * 8 + A_SEND * 8 + a_ack(2, 3) + A_PACK(1) * 4 + A_SEND * 4
    + a_ack(1, 0),                                                    # full ring, wrap
    b"\x00" + a_flow + a_ack_any(2**63 - 1) + A_SEND * 3 + a_ack_any(-2**63) + a_ack_any(1),
    b"\x00" + a_ack(0, 0) + a_ack(0, -1) + a_ack(1, 1) + A_PACK(1) + a_ack(2, 0),  # nothing sent
]
write("fuzz_ack", ack_seeds)
print("corpus written to", ROOT)
