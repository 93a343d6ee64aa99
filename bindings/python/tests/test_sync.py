"""Sync API against zerobus-local: the README examples and every stream method."""
import json
import logging

import pytest

from conftest import CLIENT_ID, CLIENT_SECRET, compile_proto
from zerobus import NonRetriableException, ZerobusException
from zerobus.sdk.shared import (
    RecordAcknowledgment,
    RecordType,
    StreamConfigurationOptions,
    TableProperties,
)
from zerobus.sdk.sync import ZerobusSdk, ZerobusStream

AIR_QUALITY_PROTO = '''
syntax = "proto2";
message AirQuality {
  optional string device_name = 1;
  optional int32 temp = 2;
  optional int64 humidity = 3;
}
'''

JSON_OPTS = dict(record_type=RecordType.JSON)


def test_readme_sync_json_example(server, table):
    # The reference README's sync JSON quick start, with local endpoints.
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s - %(name)s - %(levelname)s - %(message)s")
    server_endpoint = server.endpoint
    workspace_url = server.http_url
    table_name = table
    client_id = CLIENT_ID
    client_secret = CLIENT_SECRET
    sdk = ZerobusSdk(server_endpoint, workspace_url)
    table_properties = TableProperties(table_name)
    options = StreamConfigurationOptions(record_type=RecordType.JSON)
    stream = sdk.create_stream(client_id, client_secret, table_properties, options)
    try:
        for i in range(100):
            record_dict = {
                "device_name": f"sensor-{i % 10}",
                "temp": 20 + (i % 15),
                "humidity": 50 + (i % 40)
            }
            if i % 2:
                ack = stream.ingest_record(record_dict)
            else:
                ack = stream.ingest_record(json.dumps(record_dict))
            ack.wait_for_ack()
    finally:
        stream.close()
    rows = server.rows(table, "device_name, temp, humidity")
    assert rows == [("sensor-%d" % (i % 10), 20 + i % 15, 50 + i % 40) for i in range(100)]


def test_readme_sync_proto_example(server, table, tmp_path):
    record_pb2 = compile_proto(AIR_QUALITY_PROTO, "record", tmp_path)
    sdk = ZerobusSdk(server.endpoint, server.http_url)
    table_properties = TableProperties(table, record_pb2.AirQuality.DESCRIPTOR)
    stream = sdk.create_stream(CLIENT_ID, CLIENT_SECRET, table_properties)
    expected = []
    try:
        for i in range(100):
            record = record_pb2.AirQuality(device_name=f"sensor-{i % 10}", temp=20 + (i % 15),
                                           humidity=50 + (i % 40))
            ack = stream.ingest_record(record if i % 2 else record.SerializeToString())
            ack.wait_for_ack()
            expected.append(record.SerializeToString())
    finally:
        stream.close()
    assert server.payloads(table) == expected
    assert server.rows(table, "device_name, temp, humidity")[:2] == [
        ("sensor-0", 20, 50), ("sensor-1", 21, 51)]


def test_offsets_batches_and_nowait(sdk, server, table):
    stream = sdk.create_stream(CLIENT_ID, CLIENT_SECRET, TableProperties(table),
                               StreamConfigurationOptions(**JSON_OPTS))
    with stream:
        assert isinstance(stream, ZerobusStream)
        assert stream.stream_id and stream.state == "ACTIVE"
        assert stream.ingest_record_offset({"n": 0}) == 0
        assert stream.ingest_record_offset('{"n":1}') == 1
        assert stream.ingest_record_offset(b'{"n":2}') == 2
        assert stream.ingest_records_offset([{"n": 3}, '{"n":4}', b'{"n":5}']) == 3
        assert stream.ingest_records_offset([]) is None
        assert stream.ingest_records_offset(()) is None
        assert stream.ingest_record_nowait({"n": 6}) is None
        assert stream.ingest_records_nowait([{"n": 7}, {"n": 8}]) is None
        assert stream.ingest_record_offset({"n": 9}) == 6
        stream.wait_for_offset(6)
        stream.wait_for_offset(6, timeout_sec=5)
        stream.flush()
        stats = stream.get_stats()
        assert stats.records_queued == 10 and stats.last_offset == 6
        assert stats.acked_offset == 6 and stats.inflight_records == 0
    assert stream.state == "CLOSED"
    assert server.payloads(table) == [b'{"n":%d}' % i for i in range(10)]
    stream.close()  # idempotent
    assert stream.get_unacked_records() == [] and stream.get_unacked_batches() == []


def test_dict_serialization_is_compact_json(sdk, server, table):
    with sdk.create_stream(CLIENT_ID, CLIENT_SECRET, TableProperties(table),
                           StreamConfigurationOptions(**JSON_OPTS)) as stream:
        stream.ingest_record_offset({"a": 1, "b": [1, 2], "c": "é"})
    assert server.rows(table) == ['{"a":1,"b":[1,2],"c":"é"}']


def test_record_type_errors(sdk, table, tmp_path):
    record_pb2 = compile_proto(AIR_QUALITY_PROTO, "record_te", tmp_path)
    with sdk.create_stream(CLIENT_ID, CLIENT_SECRET, TableProperties(table),
                           StreamConfigurationOptions(**JSON_OPTS)) as js:
        for bad in (3, 1.5, None, [1], record_pb2.AirQuality()):
            with pytest.raises(TypeError, match="JSON stream accepts dict, str or bytes"):
                js.ingest_record_offset(bad)
        with pytest.raises(TypeError, match="record 1: a JSON stream accepts"):
            js.ingest_records_offset([{"a": 1}, 7])
        for not_a_list in (5, {"a": 1}, '{"a":1}', b'{"a":1}'):
            with pytest.raises(TypeError, match="list"):
                js.ingest_records_offset(not_a_list)
        assert js.ingest_records_offset(r for r in [{"gen": 1}]) == 0  # any iterable
        assert js.get_stats().records_queued == 1
    proto_table = table + "_p"
    with sdk.create_stream(CLIENT_ID, CLIENT_SECRET,
                           TableProperties(proto_table, record_pb2.AirQuality.DESCRIPTOR)) as ps:
        for bad in ("text", {"a": 1}, 3):
            with pytest.raises(TypeError, match="PROTO stream accepts protobuf Message or bytes"):
                ps.ingest_record_offset(bad)
        assert ps.ingest_records_offset([record_pb2.AirQuality(temp=1), b"\x10\x02",
                                         bytearray(b"\x10\x03")]) == 0


def test_invalid_json_record_is_non_retriable(sdk, server, table):
    with sdk.create_stream(CLIENT_ID, CLIENT_SECRET, TableProperties(table),
                           StreamConfigurationOptions(**JSON_OPTS)) as stream:
        for bad in ('{"a":', "[1,2]", b"\xff\xfe"):
            with pytest.raises(NonRetriableException) as ei:
                stream.ingest_record_offset(bad)
            assert ei.value.code == 7 and ei.value.status_name == "ZEROBUS_ERR_INVALID_RECORD"
            assert ei.value.retryable is False
        with pytest.raises(NonRetriableException) as ei:
            stream.ingest_records_offset([{"ok": 1}, "nope"])
        assert ei.value.code == 7
        assert stream.ingest_record_offset({"ok": 2}) == 0  # the stream is still usable
    assert server.rows(table) == ['{"ok":2}']


def test_closed_stream_raises_stream_closed(sdk, table):
    stream = sdk.create_stream(CLIENT_ID, CLIENT_SECRET, TableProperties(table),
                               StreamConfigurationOptions(**JSON_OPTS))
    stream.close()
    for call in (lambda: stream.ingest_record_offset({"a": 1}),
                 lambda: stream.ingest_records_offset([{"a": 1}]),
                 lambda: stream.ingest_record_nowait({"a": 1}),
                 lambda: stream.ingest_record({"a": 1})):
        with pytest.raises(NonRetriableException) as ei:
            call()
        assert ei.value.code == 3 and ei.value.status_name == "ZEROBUS_ERR_STREAM_CLOSED"
        assert ei.value.retryable is False


def test_record_acknowledgment(sdk, server, table):
    with sdk.create_stream(CLIENT_ID, CLIENT_SECRET, TableProperties(table),
                           StreamConfigurationOptions(**JSON_OPTS)) as stream:
        server.set_faults(table, [])  # no faults
        acks = [stream.ingest_record({"i": i}) for i in range(50)]
        assert all(isinstance(a, RecordAcknowledgment) for a in acks)
        assert [a.offset for a in acks] == list(range(50))
        done = []
        acks[10].add_done_callback(lambda a: done.append(a.offset))
        acks[49].wait_for_ack(timeout_sec=10)
        assert acks[49].is_done() and acks[0].is_done()
        assert acks[0].exception() is None
        deadline_ok = False
        import time
        for _ in range(100):
            if done:
                deadline_ok = True
                break
            time.sleep(0.02)
        assert deadline_ok and done == [10]
        late = []
        acks[3].add_done_callback(lambda a: late.append(a.offset))  # already done: at once
        assert late == [3]


def test_wait_for_offset_errors(sdk, server, table):
    with sdk.create_stream(CLIENT_ID, CLIENT_SECRET, TableProperties(table),
                           StreamConfigurationOptions(**JSON_OPTS)) as stream:
        with pytest.raises(NonRetriableException) as ei:
            stream.wait_for_offset(5)  # never handed out
        assert ei.value.status_name == "ZEROBUS_ERR_INVALID_ARGUMENT"


def test_wait_for_offset_timeout(sdk, server, table):
    server.set_faults(table, [{"no_ack": True}])
    stream = sdk.create_stream(CLIENT_ID, CLIENT_SECRET, TableProperties(table),
                               StreamConfigurationOptions(record_type=RecordType.JSON,
                                                          flush_timeout_ms=300))
    off = stream.ingest_record_offset({"a": 1})
    with pytest.raises(ZerobusException) as ei:
        stream.wait_for_offset(off, timeout_sec=0.2)
    assert ei.value.status_name == "ZEROBUS_ERR_TIMEOUT"
    ack = stream.ingest_record({"a": 2})
    assert ack.is_done() is False
    with pytest.raises(ZerobusException) as ei:
        ack.wait_for_ack(timeout_sec=0.1)
    assert ei.value.status_name == "ZEROBUS_ERR_TIMEOUT"
    with pytest.raises(ZerobusException) as ei:
        stream.flush()  # bounded by flush_timeout_ms
    assert ei.value.status_name == "ZEROBUS_ERR_TIMEOUT"
    with pytest.raises(ZerobusException):
        stream.close()
    # nothing lost: both records are in the unacked set, grouped by ingest call
    assert stream.get_unacked_records() == [b'{"a":1}', b'{"a":2}']
    assert stream.get_unacked_batches() == [[b'{"a":1}'], [b'{"a":2}']]
    assert ack.is_done() and ack.exception() is not None
    server.clear_faults()


def test_sdk_context_manager(server, table):
    with ZerobusSdk(server.endpoint, server.http_url) as sdk:
        with sdk.create_stream(CLIENT_ID, CLIENT_SECRET, TableProperties(table),
                               StreamConfigurationOptions(**JSON_OPTS)) as stream:
            stream.ingest_record_offset({"x": 1})
    assert server.rows(table) == ['{"x":1}']
    with pytest.raises(NonRetriableException):
        sdk.create_stream(CLIENT_ID, CLIENT_SECRET, TableProperties(table),
                          StreamConfigurationOptions(**JSON_OPTS))


def test_create_stream_argument_errors(sdk, table):
    with pytest.raises(TypeError):
        sdk.create_stream(CLIENT_ID, CLIENT_SECRET, table)  # not a TableProperties
    with pytest.raises(TypeError):
        sdk.create_stream(CLIENT_ID, CLIENT_SECRET, TableProperties(table), {"record_type": 2})
    with pytest.raises(TypeError):
        TableProperties(table, descriptor="not a descriptor")
    # PROTO (the default) without a descriptor is refused with a clear error
    with pytest.raises(NonRetriableException) as ei:
        sdk.create_stream(CLIENT_ID, CLIENT_SECRET, TableProperties(table))
    assert "descriptor" in str(ei.value)


def test_unclosed_stream_warns_and_is_freed(sdk, table):
    import gc
    import warnings

    stream = sdk.create_stream(CLIENT_ID, CLIENT_SECRET, TableProperties(table),
                               StreamConfigurationOptions(**JSON_OPTS))
    stream.ingest_record_offset({"x": 1})
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        del stream
        gc.collect()
    assert any(issubclass(x.category, ResourceWarning) for x in w)


def test_long_waits_are_interruptible(sdk, server, table):
    """A signal handler (e.g. Ctrl-C) runs during flush()/wait_for_offset() instead of
    after flush_timeout_ms."""
    import os
    import signal
    import threading
    import time

    class Interrupted(Exception):
        pass

    def handler(signum, frame):
        raise Interrupted()

    server.set_faults(table, [{"no_ack": True}])
    stream = sdk.create_stream(CLIENT_ID, CLIENT_SECRET, TableProperties(table),
                               StreamConfigurationOptions(record_type=RecordType.JSON,
                                                          flush_timeout_ms=60000,
                                                          server_lack_of_ack_timeout_ms=60000))
    off = stream.ingest_record_offset({"a": 1})
    old = signal.signal(signal.SIGUSR1, handler)
    try:
        for wait in (stream.flush, lambda: stream.wait_for_offset(off)):
            timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGUSR1))
            start = time.monotonic()
            timer.start()
            with pytest.raises(Interrupted):
                wait()
            assert time.monotonic() - start < 3
            timer.join()
    finally:
        signal.signal(signal.SIGUSR1, old)
    stream._destroy()  # abort: do not wait for the unacked record
    server.clear_faults()


def test_sdk_level_stream_defaults(server, table):
    # stream options given to the SDK are defaults of its streams, record_type too
    sdk = ZerobusSdk(server.endpoint, server.http_url, record_type=RecordType.JSON,
                     max_inflight_records=7)
    with sdk.create_stream(CLIENT_ID, CLIENT_SECRET, TableProperties(table)) as stream:
        assert stream.ingest_record_offset({"sdk": "default"}) == 0
        assert stream.ingest_record_offset('{"s":1}') == 1
    assert server.rows(table) == ['{"sdk":"default"}', '{"s":1}']
