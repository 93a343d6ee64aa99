"""The protocol checks against a `--store null` server, which reads ingest requests
straight from gRPC's slices instead of unpacking them (server/grpc_server.c, fast_scan).
Every check must give the same outcome as the storing server; a differential test sends
the same hand-made byte sequences to both and compares status, details and counters."""
import os

import pytest

from zlclient import OK, Server, pb
from test_hostile import create_bytes, raw_call

T = "n.s.t"


@pytest.fixture(scope="module")
def nsrv():
    s = Server("--no-auth", "--store", "null")
    yield s
    code = s.stop()
    assert code == 0, f"exit {code}; stderr:\n{s.read_stderr()[-3000:]}"


@pytest.fixture(scope="module")
def ssrv():
    s = Server("--no-auth")
    yield s
    code = s.stop()
    assert code == 0, f"exit {code}; stderr:\n{s.read_stderr()[-3000:]}"


@pytest.fixture(autouse=True)
def still_serving(nsrv):
    yield
    assert nsrv.alive(), nsrv.read_stderr()[-3000:]


def tcounts(srv, table):
    t = srv.counters()["tables"].get(table, {})
    return (t.get("requests", 0), t.get("records", 0), t.get("bytes", 0))


def req_single_json(off, rec):
    return pb.EphemeralStreamRequest(ingest_record=pb.IngestRecordRequest(
        offset_id=off, json_record=rec))


def req_batch_json(off, recs):
    return pb.EphemeralStreamRequest(ingest_record_batch=pb.IngestRecordBatchRequest(
        offset_id=off, json_batch=pb.JsonRecordBatch(records=recs)))


def req_batch_proto(off, recs):
    return pb.EphemeralStreamRequest(ingest_record_batch=pb.IngestRecordBatchRequest(
        offset_id=off, proto_encoded_batch=pb.ProtoEncodedRecordBatch(records=recs)))


# ------------------------------------------------------------------ counters
def test_batch_record_counts_and_bytes_exact(nsrv):
    table = "n.s.counts"
    c = nsrv.call(table=table)
    c.create(table)
    reqs = [req_single_json(0, '{"a": 1}'),
            req_batch_json(1, ['{"b": %d}' % i for i in range(100)]),
            req_batch_json(2, ["x" * 10000] * 7),      # 10 KB records
            req_batch_json(3, [""] * 3),               # empty records still count
            req_batch_json(4, ["y" * 200000] * 40)]    # 8 MB: spans many slices
    for r in reqs:
        c.send(r)
    c.next_offset = len(reqs)
    assert c.wait_ack(len(reqs) - 1, timeout=60) == len(reqs) - 1
    c.half_close()
    assert c.wait_status(30) == (OK, "")
    assert tcounts(nsrv, table) == (5, 1 + 100 + 7 + 3 + 40,
                                    sum(len(r.SerializeToString()) for r in reqs))


def test_proto_batch_counts(nsrv):
    from test_proto import ROW_DESC
    table = "n.s.pcounts"
    c = nsrv.call(table=table)
    c.create(table, "PROTO", ROW_DESC)
    r0 = req_batch_proto(0, [b"\x08\x01"] * 250)
    r1 = pb.EphemeralStreamRequest(ingest_record=pb.IngestRecordRequest(
        offset_id=1, proto_encoded_record=b""))
    c.send(r0)
    c.send(r1)
    c.next_offset = 2
    assert c.wait_ack(1) == 1
    c.half_close()
    assert c.wait_status() == (OK, "")
    assert tcounts(nsrv, table) == (2, 251, len(r0.SerializeToString()) + len(r1.SerializeToString()))


# ------------------------------------------------------------------ protocol checks
def test_create_stream_first(nsrv):
    c = nsrv.call(table=T)
    c.ingest_json('{"a": 1}')
    code, details = c.wait_status()
    assert code.name == "INVALID_ARGUMENT"
    assert details == "the first message must be create_stream"
    code, details = raw_call(nsrv, [req_batch_json(0, ["{}", "{}"]).SerializeToString()])
    assert (code.name, details) == ("INVALID_ARGUMENT", "the first message must be create_stream")


@pytest.mark.parametrize("batch", [False, True])
def test_wrong_offset(nsrv, batch):
    table = "n.s.off"
    before = tcounts(nsrv, table)
    c = nsrv.call(table=table)
    c.create(table)
    c.ingest_json('{"a": 1}')
    c.ingest_json(['{"a": 2}', '{"a": 3}'] if batch else '{"a": 2}', offset=3)
    code, details = c.wait_status()
    assert (code.name, details) == ("INVALID_ARGUMENT",
                                    "offset_id 3 out of sequence: expected 1")
    after = tcounts(nsrv, table)
    assert (after[0] - before[0], after[1] - before[1]) == (1, 1)  # only request 0 counted


def test_missing_offset(nsrv):
    req = pb.EphemeralStreamRequest(ingest_record_batch=pb.IngestRecordBatchRequest(
        json_batch=pb.JsonRecordBatch(records=["{}"])))
    code, details = raw_call(nsrv, [create_bytes(T), req.SerializeToString()])
    assert (code.name, details) == ("INVALID_ARGUMENT", "offset_id missing: expected 0")


@pytest.mark.parametrize("kind", ["json_in_proto", "proto_in_json", "proto_batch_in_json",
                                  "json_batch_in_proto", "no_record"])
def test_wrong_record_type(nsrv, kind):
    from test_proto import ROW_DESC
    c = nsrv.call(table=T)
    if kind in ("json_in_proto", "json_batch_in_proto"):
        c.create(T, "PROTO", ROW_DESC)
        want = "record type mismatch: this stream was created for PROTO records"
    else:
        c.create(T)
        want = "record type mismatch: this stream was created for JSON records"
    if kind == "json_in_proto":
        c.ingest_json('{"a": 1}')
    elif kind == "json_batch_in_proto":
        c.ingest_json(['{"a": 1}', '{"a": 2}'])
    elif kind == "proto_in_json":
        c.ingest_proto(b"\x08\x01")
    elif kind == "proto_batch_in_json":
        c.ingest_proto([b"\x08\x01", b"\x08\x02"])
    else:
        c.send(pb.EphemeralStreamRequest(ingest_record=pb.IngestRecordRequest(offset_id=0)))
    code, details = c.wait_status()
    assert (code.name, details) == ("INVALID_ARGUMENT", want)


def test_empty_batch(nsrv):
    code, details = raw_call(nsrv, [create_bytes(T), req_batch_json(0, []).SerializeToString()])
    assert (code.name, details) == ("INVALID_ARGUMENT", "ingest_record_batch with no records")


def test_garbage(nsrv):
    code, details = raw_call(nsrv, [b"\xff\xfe\xfd\x00garbage"])
    assert (code.name, details) == ("INVALID_ARGUMENT", "malformed EphemeralStreamRequest")
    for junk in [os.urandom(64) + b"\xff\xff\xff\xff\x0f", b"\x1a\x05\x08\x00\x1a",
                 b"\x12\x80\x80\x80\x80\x10", b"\x1a\x03\x08\x00\x1a\x7f"]:
        code, details = raw_call(nsrv, [create_bytes(T), junk])
        assert (code.name, details) == ("INVALID_ARGUMENT", "malformed EphemeralStreamRequest"), junk


def test_oversized_request():
    s = Server("--no-auth", "--store", "null", "--max-message-bytes", "1000")
    try:
        c = s.call(table=T)
        c.create(T)
        c.ingest_json(["x" * 500])
        assert c.wait_ack(0) == 0
        c.ingest_json(["x" * 600, "y" * 600])
        code, details = c.wait_status()
        assert code.name == "INVALID_ARGUMENT"
        assert "exceeds the maximum of 1000 bytes" in details
        assert tcounts(s, T)[:2] == (1, 1)
    finally:
        assert s.stop() == 0


# ------------------------------------------------------------------ faults still work
def test_faults_in_null_mode(nsrv):
    table = "n.s.faults"
    nsrv.set_faults({"tables": {table: [{"fail_at_request": 2, "status": 14},
                                        {"reject_over_bytes": 100}]}})
    try:
        c = nsrv.call(table=table)
        c.create(table)
        for i in range(3):
            c.ingest_json(['{"i": %d}' % i] * 3)
        assert c.wait_status()[0].name == "UNAVAILABLE"
        assert c.acks[-1] == 1
        c = nsrv.call(table=table)
        c.create(table)
        c.ingest_json(["z" * 200])
        code, details = c.wait_status()
        assert code.name == "INVALID_ARGUMENT" and "(injected)" in details
        assert tcounts(nsrv, table)[:2] == (2, 6)
    finally:
        nsrv.clear_faults()


# ------------------------------------------------------------------ differential
def _v(n):
    out = b""
    while True:
        b = n & 0x7f
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def _ld(tag, payload):
    return bytes([tag]) + _v(len(payload)) + payload


def _batch(off_bytes, recs, kind_tag=0x1a):
    inner = b"".join(_ld(0x0a, r) for r in recs)
    return _ld(0x1a, off_bytes + _ld(kind_tag, inner))


# Hand-made encodings, canonical and not: the null server must treat each exactly like the
# storing server (which always unpacks with protobuf-c).
ODD = {
    "canonical_single": _ld(0x12, b"\x08\x00" + _ld(0x1a, b'{"a":1}')),
    "record_before_offset": _ld(0x12, _ld(0x1a, b'{"a":1}') + b"\x08\x00"),
    "overlong_offset_varint": _ld(0x12, b"\x08\x80\x80\x00" + _ld(0x1a, b"{}")),
    "offset_twice_last_wins": _ld(0x12, b"\x08\x07\x08\x00" + _ld(0x1a, b"{}")),
    "negative_offset": _ld(0x12, b"\x08" + _v((1 << 64) - 1) + _ld(0x1a, b"{}")),
    "unknown_field": _ld(0x12, b"\x08\x00" + _ld(0x1a, b"{}") + b"\x28\x05"),
    "unknown_top_field": _ld(0x12, b"\x08\x00" + _ld(0x1a, b"{}")) + b"\x20\x01",
    "two_record_fields": _ld(0x12, b"\x08\x00" + _ld(0x12, b"\x08\x01") + _ld(0x1a, b"{}")),
    "batch_canonical": _batch(b"\x08\x00", [b"{}", b'{"b":2}', b"{}"]),
    "batch_offset_last": _ld(0x1a, _ld(0x1a, _ld(0x0a, b"{}")) + b"\x08\x00"),
    "batch_twice_merged": _ld(0x1a, b"\x08\x00" + _ld(0x1a, _ld(0x0a, b"{}"))
                              + _ld(0x1a, _ld(0x0a, b"{}") + _ld(0x0a, b"{}"))),
    "batch_with_unknown_inner": _ld(0x1a, b"\x08\x00" + _ld(0x1a, _ld(0x0a, b"{}") + b"\x10\x01")),
    "batch_proto_kind_in_json": _batch(b"\x08\x00", [b"\x08\x01"], 0x12),
    "batch_truncated_record": _ld(0x1a, b"\x08\x00" + _ld(0x1a, b"\x0a\x05ab")),
    "batch_wrong_wiretype": _ld(0x1a, b"\x08\x00" + _ld(0x1a, b"\x08\x01")),
    "payload_twice": _ld(0x12, b"\x08\x00" + _ld(0x1a, b"{}")) * 2,
    "single_then_batch": _ld(0x12, b"\x08\x05" + _ld(0x1a, b"{}")) + _batch(b"\x08\x00", [b"{}"]),
    "length_past_end": b"\x12\x7f\x08\x00",
    "offset_unterminated": _ld(0x12, b"\x08\x80\x80"),
    "empty_payload": _ld(0x12, b""),
    "zero_field_tag": _ld(0x12, b"\x00\x00"),
}


@pytest.mark.parametrize("name", sorted(ODD))
def test_same_outcome_as_storing_server(nsrv, ssrv, name):
    table = "n.s.diff_" + name
    results = []
    for s in (ssrv, nsrv):
        code, details = raw_call(s, [create_bytes(table), ODD[name]])
        results.append((code.name, details, tcounts(s, table)))
    assert results[1] == results[0]
