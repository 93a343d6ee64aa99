"""Each stream option reaches the core and changes behaviour."""
import threading
import time

import pytest

from conftest import CLIENT_ID, CLIENT_SECRET
from zerobus import NonRetriableException, ZerobusException
from zerobus.sdk.shared import AckCallback, RecordType, StreamConfigurationOptions, TableProperties


def opts(**kw):
    return StreamConfigurationOptions(record_type=RecordType.JSON, **kw)


def test_validate_json_off(sdk, table):
    stream = sdk.create_stream(CLIENT_ID, CLIENT_SECRET, TableProperties(table),
                               opts(validate_json=False, recovery=False))
    assert stream.ingest_record_offset("not json") == 0  # not checked at ingest
    with pytest.raises(NonRetriableException) as ei:
        stream.flush()  # the server refuses it instead
    assert ei.value.status_name == "ZEROBUS_ERR_SERVER_REJECTED"
    with pytest.raises(NonRetriableException):
        stream.close()
    assert stream.get_unacked_records() == [b"not json"]


def test_max_inflight_records_blocks_without_the_gil(sdk, server, table):
    server.set_faults(table, [{"ack_delay_ms": 100}])
    ticks = []
    stop = threading.Event()

    def ticker():
        while not stop.is_set():
            ticks.append(1)
            time.sleep(0.005)

    with sdk.create_stream(CLIENT_ID, CLIENT_SECRET, TableProperties(table),
                           opts(max_inflight_records=2)) as stream:
        t = threading.Thread(target=ticker)
        t.start()
        start = time.monotonic()
        for i in range(6):
            stream.ingest_record_offset({"i": i})
        elapsed = time.monotonic() - start
        stop.set()
        t.join()
    assert elapsed >= 0.15  # blocked waiting for acks (2 at a time, 100 ms each)
    assert len(ticks) >= 10  # other Python threads ran meanwhile
    assert len(server.rows(table)) == 6


def test_max_request_bytes_refuses_large_records(sdk, table):
    with sdk.create_stream(CLIENT_ID, CLIENT_SECRET, TableProperties(table),
                           opts(max_request_bytes=1024)) as stream:
        with pytest.raises(NonRetriableException) as ei:
            stream.ingest_record_offset({"big": "x" * 2000})
        assert ei.value.status_name == "ZEROBUS_ERR_RECORD_TOO_LARGE"


def test_server_lack_of_ack_timeout_recovers(sdk, server, table):
    server.set_faults(table, [{"no_ack": True}])
    with sdk.create_stream(CLIENT_ID, CLIENT_SECRET, TableProperties(table),
                           opts(server_lack_of_ack_timeout_ms=300,
                                recovery_backoff_ms=10)) as stream:
        stream.ingest_record_offset({"a": 1})
        stream.flush()
        stats = stream.get_stats()
        assert stats.reconnects == 1 and stats.records_resent == 1
    sid = stream.stream_id
    assert server.rows(table, "_zerobus_stream_id, _zerobus_payload")[-1] == (sid, '{"a":1}')


def test_stream_paused_max_wait_time_ms(sdk, server, table):
    server.set_faults(table, [{"close_signal_ms": 5000, "after_request": 0}])
    with sdk.create_stream(CLIENT_ID, CLIENT_SECRET, TableProperties(table),
                           opts(stream_paused_max_wait_time_ms=0,
                                recovery_backoff_ms=10)) as stream:
        stream.ingest_record_offset({"a": 0})
        stream.flush()
        start = time.monotonic()
        stream.ingest_record_offset({"a": 1})
        stream.flush()
        assert time.monotonic() - start < 3  # did not wait the server's 5 s
        assert stream.get_stats().reconnects >= 1
    rows = server.rows(table)  # at-least-once: a record may be stored twice
    assert rows[0] == '{"a":0}' and rows[-1] == '{"a":1}' and set(rows) == {'{"a":0}', '{"a":1}'}


def test_recovery_retries_and_timeout_options_reach_the_core(sdk, server, table):
    server.set_faults(table, [{"hang_headers": True, "repeat": 3}])
    start = time.monotonic()
    with pytest.raises(ZerobusException) as ei:
        sdk.create_stream(CLIENT_ID, CLIENT_SECRET, TableProperties(table),
                          opts(recovery_retries=1, recovery_timeout_ms=300,
                               recovery_backoff_ms=50))
    elapsed = time.monotonic() - start
    assert ei.value.status_name == "ZEROBUS_ERR_RETRIES_EXHAUSTED"
    assert 0.5 < elapsed < 5
    assert server.table_counter(table, "create_attempts") <= 2
    server.clear_faults()


def test_callback_max_wait_time_ms_bounds_close(sdk, table):
    class Slow(AckCallback):
        def on_ack(self, offset):
            time.sleep(0.2)

    stream = sdk.create_stream(CLIENT_ID, CLIENT_SECRET, TableProperties(table),
                               opts(ack_callback=Slow(), callback_max_wait_time_ms=100))
    for i in range(20):
        stream.ingest_record_offset({"i": i})
        stream.flush()
    start = time.monotonic()
    stream.close()
    assert time.monotonic() - start < 2  # did not wait 20 x 0.2 s for the callbacks


def test_flush_timeout_ms(sdk, server, table):
    server.set_faults(table, [{"no_ack": True}])
    stream = sdk.create_stream(CLIENT_ID, CLIENT_SECRET, TableProperties(table),
                               opts(flush_timeout_ms=200, server_lack_of_ack_timeout_ms=60000))
    stream.ingest_record_offset({"a": 1})
    start = time.monotonic()
    with pytest.raises(ZerobusException) as ei:
        stream.flush()
    assert ei.value.status_name == "ZEROBUS_ERR_TIMEOUT" and ei.value.retryable
    assert 0.15 < time.monotonic() - start < 2
    with pytest.raises(ZerobusException):
        stream.close()
    assert stream.get_unacked_records() == [b'{"a":1}']


def test_batches_block_at_the_limit(sdk, server, table):
    server.set_faults(table, [{"ack_delay_ms": 50}])
    with sdk.create_stream(CLIENT_ID, CLIENT_SECRET, TableProperties(table),
                           opts(max_inflight_records=4)) as stream:
        offsets = [stream.ingest_records_offset([{"b": i, "j": j} for j in range(3)])
                   for i in range(5)]
        stream.ingest_records_nowait(({"b": 5, "j": 0}, b'{"b":5,"j":1}'))
    assert offsets == [0, 1, 2, 3, 4]
    rows = server.rows(table)
    assert len(rows) == 17 and rows[-1] == '{"b":5,"j":1}'
