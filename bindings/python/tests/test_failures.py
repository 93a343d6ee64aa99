"""Failure kinds -> exception class, status and retryable flag; failure handling
(unacked records retried on a new stream, recreate_stream); callbacks."""
import threading
import time

import pytest

from conftest import CLIENT_ID, CLIENT_SECRET
from zerobus import NonRetriableException, ZerobusException
from zerobus.sdk.shared import AckCallback, RecordType, StreamConfigurationOptions, TableProperties
from zerobus.sdk.sync import ZerobusSdk


def json_opts(**kw):
    return StreamConfigurationOptions(record_type=RecordType.JSON, **kw)


class Recorder(AckCallback):
    def __init__(self):
        self.acks = []
        self.errors = []
        self.threads = set()

    def on_ack(self, offset):
        self.acks.append(offset)
        self.threads.add(threading.current_thread().name)

    def on_error(self, offset, error_message):
        self.errors.append((offset, error_message))


def wait_until(pred, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.01)
    return pred()


def test_bad_credentials(sdk, table):
    with pytest.raises(NonRetriableException) as ei:
        sdk.create_stream(CLIENT_ID, "wrong-secret", TableProperties(table), json_opts())
    e = ei.value
    assert e.code == 10 and e.status_name == "ZEROBUS_ERR_UNAUTHENTICATED"
    assert e.retryable is False and e.http_status == 401
    assert "wrong-secret" not in str(e)


def test_unknown_table(sdk, server, table):
    server.set_faults(table, [{"fail_create": 5, "message": "no such table"}])
    with pytest.raises(NonRetriableException) as ei:
        sdk.create_stream(CLIENT_ID, CLIENT_SECRET, TableProperties(table), json_opts())
    e = ei.value
    assert e.code == 12 and e.status_name == "ZEROBUS_ERR_NOT_FOUND"
    assert e.retryable is False and e.grpc_status == 5
    assert server.table_counter(table, "create_attempts") == 1  # not retried


def test_permission_denied(sdk, server, table):
    server.set_faults(table, [{"fail_create": 7}])
    with pytest.raises(NonRetriableException) as ei:
        sdk.create_stream(CLIENT_ID, CLIENT_SECRET, TableProperties(table), json_opts())
    assert ei.value.status_name == "ZEROBUS_ERR_PERMISSION_DENIED" and ei.value.grpc_status == 7


def test_retryable_create_failure_is_retried(sdk, server, table):
    server.set_faults(table, [{"fail_create": 14}, {"fail_create": 14}])
    with sdk.create_stream(CLIENT_ID, CLIENT_SECRET, TableProperties(table),
                           json_opts(recovery_backoff_ms=10)) as stream:
        stream.ingest_record_offset({"ok": 1})
    assert server.table_counter(table, "create_attempts") == 3
    assert server.rows(table) == ['{"ok":1}']


def test_retries_exhausted(sdk, server, table):
    server.set_faults(table, [{"fail_create": 14, "repeat": 5}])
    with pytest.raises(ZerobusException) as ei:
        sdk.create_stream(CLIENT_ID, CLIENT_SECRET, TableProperties(table),
                          json_opts(recovery_retries=1, recovery_backoff_ms=10))
    e = ei.value
    assert e.code == 18 and e.status_name == "ZEROBUS_ERR_RETRIES_EXHAUSTED"
    assert "UNAVAILABLE" in str(e)
    # the class follows the core's retryable flag
    assert type(e) is (ZerobusException if e.retryable else NonRetriableException)
    assert server.table_counter(table, "create_attempts") == 2
    server.clear_faults()


def test_retryable_error_with_recovery_off(sdk, server, table):
    server.set_faults(table, [{"fail_create": 14}])
    with pytest.raises(ZerobusException) as ei:
        sdk.create_stream(CLIENT_ID, CLIENT_SECRET, TableProperties(table),
                          json_opts(recovery=False))
    assert ei.value.code == 14 and ei.value.retryable is True
    assert type(ei.value) is ZerobusException


def test_connection_refused(table):
    sdk = ZerobusSdk("http://127.0.0.1:1", "http://127.0.0.1:1")
    with pytest.raises(ZerobusException) as ei:
        sdk.create_stream(CLIENT_ID, CLIENT_SECRET, TableProperties(table),
                          json_opts(recovery=False))
    assert ei.value.status_name in ("ZEROBUS_ERR_TOKEN", "ZEROBUS_ERR_UNAVAILABLE")


def test_failure_handling_example(sdk, server, table):
    """README "Handling Stream Failures": a non-retryable failure mid-stream, the
    unacked records read back and retried on a new stream; on_error per offset."""
    cb = Recorder()
    # request 3 ends the call with INVALID_ARGUMENT (non-retryable): fails the stream
    server.set_faults(table, [{"fail_at_request": 3, "status": 3}])
    options = json_opts(ack_callback=cb)
    stream = sdk.create_stream(CLIENT_ID, CLIENT_SECRET, TableProperties(table), options)
    records = [{"i": i} for i in range(6)]
    ingested = 0
    with pytest.raises(NonRetriableException) as ei:
        for r in records:
            stream.ingest_record_offset(r)
            ingested += 1
            stream.wait_for_offset(ingested - 1)  # one request per record
        stream.flush()
    assert ingested == 4  # request 3 killed the stream; the 5th ingest was refused
    assert ei.value.status_name in ("ZEROBUS_ERR_STREAM_CLOSED", "ZEROBUS_ERR_SERVER_REJECTED")
    assert "INVALID_ARGUMENT" in str(ei.value)
    unacked_records = stream.get_unacked_records()
    unacked_batches = stream.get_unacked_batches()
    with pytest.raises(NonRetriableException):
        stream.close()  # closing a failed stream reports its failure
    assert cb.acks == [0, 1, 2]
    assert unacked_records == [b'{"i":3}']
    assert unacked_batches == [[b'{"i":3}']]
    assert [o for o, _ in cb.errors] == [3]
    assert "INVALID_ARGUMENT" in cb.errors[0][1]
    assert server.rows(table) == ['{"i":%d}' % i for i in range(3)]
    # retry them on a new stream, then the records never sent
    new_stream = sdk.create_stream(CLIENT_ID, CLIENT_SECRET, TableProperties(table), options)
    for record_bytes in unacked_records:
        new_stream.ingest_record_offset(record_bytes)
    for r in records[ingested:]:
        new_stream.ingest_record_offset(r)
    new_stream.flush()
    new_stream.close()
    assert server.rows(table) == ['{"i":%d}' % i for i in range(6)]


def test_recreate_stream(sdk, server, table):
    server.set_faults(table, [{"no_ack": True}])
    stream = sdk.create_stream(CLIENT_ID, CLIENT_SECRET, TableProperties(table),
                               json_opts(flush_timeout_ms=1000))
    stream.ingest_records_offset([{"b": 0}, {"b": 1}])
    stream.ingest_record_offset({"b": 2})
    with pytest.raises(ZerobusException):
        stream.close()
    assert stream.get_unacked_batches() == [[b'{"b":0}', b'{"b":1}'], [b'{"b":2}']]
    new_stream = sdk.recreate_stream(stream)
    new_stream.flush()
    new_stream.ingest_record_offset({"b": 3})
    new_stream.close()
    # the no_ack call stored its records too (at-least-once): the new stream's rows
    sid = new_stream.stream_id
    rows = server.rows(table, "_zerobus_stream_id, _zerobus_payload")
    assert [p for s, p in rows if s == sid] == ['{"b":0}', '{"b":1}', '{"b":2}', '{"b":3}']


def test_recovery_is_transparent(sdk, server, table):
    cb = Recorder()
    server.set_faults(table, [{"drop_at_request": 2}])
    with sdk.create_stream(CLIENT_ID, CLIENT_SECRET, TableProperties(table),
                           json_opts(ack_callback=cb, recovery_backoff_ms=10)) as stream:
        for i in range(5):
            assert stream.ingest_record_offset({"i": i}) == i
            stream.flush()
        assert stream.get_stats().reconnects == 1
    assert cb.acks == [0, 1, 2, 3, 4] and cb.errors == []
    assert server.rows(table) == ['{"i":%d}' % i for i in range(5)]


def test_ack_callback_offsets_in_order(sdk, server, table):
    cb = Recorder()
    with sdk.create_stream(CLIENT_ID, CLIENT_SECRET, TableProperties(table),
                           json_opts(ack_callback=cb)) as stream:
        for i in range(200):
            stream.ingest_record_nowait({"i": i})
        stream.ingest_records_offset([{"i": 200}, {"i": 201}])
    # close() delivered every callback before returning
    assert cb.acks == list(range(201))
    assert cb.threads == {"zerobus-callbacks"}
    assert cb.errors == []


def test_callable_ack_callback_and_raising_callback(sdk, table, caplog):
    seen = []

    def plain(offset):
        seen.append(offset)
        if offset == 1:
            raise RuntimeError("user bug")

    with sdk.create_stream(CLIENT_ID, CLIENT_SECRET, TableProperties(table),
                           json_opts(ack_callback=plain)) as stream:
        for i in range(3):
            stream.ingest_record_offset({"i": i})
    assert seen == [0, 1, 2]  # a raising callback does not stop delivery
    assert any("on_ack" in r.getMessage() or "raised" in r.getMessage() for r in caplog.records)


def test_callback_may_call_stream_methods(sdk, server, table):
    results = []

    class Chained(AckCallback):
        def __init__(self):
            self.stream = None

        def on_ack(self, offset):
            if offset < 3:
                results.append(self.stream.ingest_record_offset({"chained": offset}))

    cb = Chained()
    stream = sdk.create_stream(CLIENT_ID, CLIENT_SECRET, TableProperties(table),
                               json_opts(ack_callback=cb))
    cb.stream = stream
    stream.ingest_record_offset({"start": 1})
    assert wait_until(lambda: len(results) == 3)
    stream.close()
    assert results == [1, 2, 3]
    assert len(server.rows(table)) == 4
