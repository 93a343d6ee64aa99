"""Hostile input: every bad request gets a gRPC error status (or HTTP error) and the
server keeps serving. The a-20 stage also runs this file against an ASan+UBSan build."""
import json
import os
import socket
import time

import grpc
import pytest

from zlclient import OK, Server, CallEnded, pb

T = "h.s.t"
SANITIZED = os.environ.get("ZL_SANITIZED") == "1"


@pytest.fixture(scope="module")
def srv():
    s = Server("--no-auth")
    yield s
    code = s.stop()
    assert code == 0, f"exit {code}; stderr:\n{s.read_stderr()[-3000:]}"


@pytest.fixture(autouse=True)
def still_serving(srv):
    yield
    assert srv.alive(), srv.read_stderr()[-3000:]
    c = srv.call(table=T)
    c.create(T)
    off = c.ingest_json('{"ok": 1}')
    assert c.wait_ack(off) == off
    c.half_close()
    assert c.wait_status()[0] == OK


def raw_call(srv, frames, metadata=(("x-databricks-zerobus-table-name", T),), timeout=10):
    """Sends arbitrary bytes as request messages; returns the final (code, details)."""
    ch = srv.channel()
    method = ch.stream_stream("/databricks.zerobus.Zerobus/EphemeralStream",
                              request_serializer=lambda b: b,
                              response_deserializer=lambda b: b)
    try:
        for _ in method(iter(frames), metadata=list(metadata), timeout=timeout):
            pass
        return OK, ""
    except grpc.RpcError as e:
        return e.code(), e.details()
    finally:
        ch.close()


def create_bytes(table=T, rtype=pb.JSON):
    return pb.EphemeralStreamRequest(create_stream=pb.CreateIngestStreamRequest(
        table_name=table, record_type=rtype)).SerializeToString()


def test_garbage_bytes_as_first_message(srv):
    code, details = raw_call(srv, [b"\xff\xfe\xfd\x00garbage"])
    assert code.name == "INVALID_ARGUMENT" and "malformed" in details


def test_garbage_after_create(srv):
    code, details = raw_call(srv, [create_bytes(), os.urandom(64) + b"\xff\xff\xff\xff\x0f"])
    assert code.name == "INVALID_ARGUMENT"


def test_empty_message(srv):
    code, details = raw_call(srv, [b""])
    assert code.name == "INVALID_ARGUMENT" and "without a payload" in details


def test_wrong_first_message(srv):
    c = srv.call(table=T)
    c.ingest_json('{"a": 1}')
    code, details = c.wait_status()
    assert code.name == "INVALID_ARGUMENT" and "first message must be create_stream" in details


def test_half_close_before_create(srv):
    c = srv.call(table=T)
    c.half_close()
    assert c.wait_status()[0].name == "INVALID_ARGUMENT"


def test_second_create_stream(srv):
    c = srv.call(table=T)
    c.create(T)
    with pytest.raises(CallEnded) as e:
        c.create(T)
    assert e.value.code.name == "INVALID_ARGUMENT" and "twice" in e.value.details


@pytest.mark.parametrize("name", ["", "a.b", "a..c", ".b.c", "a.b.c.d", "a.b.", "x\x01.y.z"])
def test_bad_table_names(srv, name):
    c = srv.call(table=None)
    with pytest.raises(CallEnded) as e:
        c.create(name)
    assert e.value.code.name == "INVALID_ARGUMENT"


def test_unspecified_record_type(srv):
    code, details = raw_call(srv, [create_bytes(rtype=pb.RECORD_TYPE_UNSPECIFIED)])
    assert code.name == "INVALID_ARGUMENT" and "record_type" in details
    # record_type missing entirely
    raw = pb.EphemeralStreamRequest(create_stream=pb.CreateIngestStreamRequest(
        table_name=T)).SerializeToString()
    assert raw_call(srv, [raw])[0].name == "INVALID_ARGUMENT"


def test_wrong_record_type_json_in_proto_stream(srv):
    from test_proto import ROW_DESC
    c = srv.call(table=T)
    c.create(T, "PROTO", ROW_DESC)
    c.ingest_json('{"a": 1}')
    code, details = c.wait_status()
    assert code.name == "INVALID_ARGUMENT" and "record type mismatch" in details


def test_wrong_record_type_proto_in_json_stream(srv):
    c = srv.call(table=T)
    c.create(T)
    c.ingest_proto([b"\x08\x01", b"\x08\x02"])
    assert c.wait_status()[0].name == "INVALID_ARGUMENT"


def test_offset_out_of_sequence(srv):
    c = srv.call(table=T)
    c.create(T)
    c.ingest_json('{"a": 1}', offset=5)
    code, details = c.wait_status()
    assert code.name == "INVALID_ARGUMENT" and "expected 0" in details


def test_missing_offset(srv):
    req = pb.EphemeralStreamRequest(ingest_record=pb.IngestRecordRequest(json_record="{}"))
    code, details = raw_call(srv, [create_bytes(), req.SerializeToString()])
    assert code.name == "INVALID_ARGUMENT" and "offset_id missing" in details


def test_empty_batch(srv):
    req = pb.EphemeralStreamRequest(ingest_record_batch=pb.IngestRecordBatchRequest(
        offset_id=0, json_batch=pb.JsonRecordBatch()))
    code, details = raw_call(srv, [create_bytes(), req.SerializeToString()])
    assert code.name == "INVALID_ARGUMENT"


@pytest.mark.parametrize("record", ["not json", "[1,2]", "42", '{"a": ', "[" * 5000 + "]" * 5000])
def test_bad_json_records(srv, record):
    table = "h.s.badjson"
    before = srv.row_count(table)
    c = srv.call(table=table)
    c.create(table)
    c.ingest_json(['{"fine": 1}', record])
    code, details = c.wait_status()
    assert code.name == "INVALID_ARGUMENT" and "not a JSON object" in details
    assert srv.row_count(table) == before  # all of the request or nothing


def test_many_columns_and_odd_keys(srv):
    table = "h.s.wide"
    c = srv.call(table=table)
    c.create(table)
    wide = json.dumps({f"k{i}": i for i in range(2500)})  # beyond SQLite's column limit
    odd = json.dumps({'we"ird': 1, "": 2, "_zerobus_offset": 99, "UPPER": 3, "upper": 4})
    c.ingest_json([wide, odd])
    assert c.wait_ack(0, timeout=120) == 0  # 2000 ALTER TABLEs: slow under ASan
    rows = srv.rows(table, "_zerobus_offset, _zerobus_payload")
    assert rows == [(0, wide), (1, odd)]  # payloads intact; the offset is the server's
    assert len(srv.columns(table)) == 2000  # SQLite's limit: the rest lives in the payload
    table = "h.s.odd"
    c = srv.call(table=table)
    c.create(table)
    c.ingest_json(odd)
    assert c.wait_ack(0) == 0
    assert srv.rows(table, '_zerobus_offset, "we""ird", "", upper') == [(0, 1, 2, 4)]


def test_too_large_request(srv):
    c = srv.call(table=T)
    c.create(T)
    c.ingest_json(json.dumps({"x": "y" * (10 * 1024 * 1024 + 10)}))
    code, details = c.wait_status(30)
    assert code.name == "INVALID_ARGUMENT" and "exceeds the maximum" in details


def test_ten_mib_request_is_legal(srv):
    table = "h.s.big"
    c = srv.call(table=table)
    c.create(table)
    rec = json.dumps({"x": "y" * (1024 * 1024)})
    c.ingest_json([rec] * 9)  # ~9 MiB in one request
    assert c.wait_ack(0, timeout=60) == 0
    assert srv.row_count(table) == 9


def test_small_max_message_bytes():
    s = Server("--no-auth", "--max-message-bytes", "1000")
    try:
        c = s.call(table=T)
        c.create(T)
        c.ingest_json(json.dumps({"x": "y" * 2000}))
        assert c.wait_status()[0].name == "INVALID_ARGUMENT"
    finally:
        s.kill()


def test_unregistered_method_unimplemented(srv):
    ch = srv.channel()
    m = ch.unary_unary("/databricks.zerobus.Zerobus/Nope", request_serializer=lambda b: b,
                       response_deserializer=lambda b: b)
    with pytest.raises(grpc.RpcError) as e:
        m(b"", timeout=5)
    assert e.value.code().name == "UNIMPLEMENTED"
    ch.close()


def test_client_cancel_mid_stream(srv):
    c = srv.call(table=T)
    c.create(T)
    for i in range(100):
        c.ingest_json('{"i": %d}' % i)
    c.cancel()
    assert c.wait_status()[0].name == "CANCELLED"


def test_client_vanishes_without_closing(srv):
    for _ in range(3):
        ch = srv.channel()
        c = srv.call(table=T, channel=ch)
        c.create(T)
        c.ingest_json('{"i": 1}')
        ch.close()


def test_raw_tcp_garbage_on_grpc_port(srv):
    for payload in [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", os.urandom(4096),
                    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + os.urandom(512)]:
        s = socket.create_connection(("127.0.0.1", srv.grpc_port), timeout=5)
        try:
            s.sendall(payload)
            s.settimeout(2)
            try:
                s.recv(1024)
            except (socket.timeout, ConnectionResetError):
                pass
        finally:
            s.close()


def test_http_garbage(srv):
    for path, method, body in [("/oidc/v1/token", "POST", "%%%&&&=="),
                               ("/oidc/v1/token", "GET", None),
                               ("/zerobus-local/faults", "POST", "[" * 10000),
                               ("/api/2.1/unity-catalog/tables/" + "a" * 5000, "GET", None),
                               ("/nope", "GET", None)]:
        st, _ = srv.http(method, path, body)
        assert 400 <= st < 500
    s = socket.create_connection(("127.0.0.1", srv.http_port), timeout=5)
    s.sendall(os.urandom(2048) + b"\r\n\r\n")
    s.close()


def test_many_failed_calls_do_not_leak_slots(srv):
    for _ in range(40 if SANITIZED else 100):
        assert raw_call(srv, [b"\xff"])[0].name == "INVALID_ARGUMENT"


def test_beyond_grpc_limit_resource_exhausted(srv):
    # gRPC itself refuses messages above max(64 MiB, --max-message-bytes + 1 MiB)
    c = srv.call(table=T)
    c.create(T)
    c.ingest_json(json.dumps({"x": "y" * (65 * 1024 * 1024)}))
    code, _ = c.wait_status(60)
    assert code.name == "RESOURCE_EXHAUSTED"
