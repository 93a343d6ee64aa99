"""asyncio API against zerobus-local."""
import asyncio
import logging

import pytest

from conftest import CLIENT_ID, CLIENT_SECRET, compile_proto
from test_sync import AIR_QUALITY_PROTO
from zerobus import NonRetriableException, ZerobusException
from zerobus.sdk.aio import ZerobusSdk, ZerobusStream
from zerobus.sdk.shared import AckCallback, RecordType, StreamConfigurationOptions, TableProperties


async def test_readme_async_json_example(server, table):
    logging.basicConfig(level=logging.INFO)
    sdk = ZerobusSdk(server.endpoint, server.http_url)
    table_properties = TableProperties(table)
    options = StreamConfigurationOptions(record_type=RecordType.JSON)
    stream = await sdk.create_stream(CLIENT_ID, CLIENT_SECRET, table_properties, options)
    try:
        for i in range(100):
            record_dict = {"device_name": f"sensor-{i % 10}", "temp": 20 + (i % 15),
                           "humidity": 50 + (i % 40)}
            future = await stream.ingest_record(record_dict)
            await future
    finally:
        await stream.close()
    assert server.rows(table, "device_name, temp, humidity") == [
        ("sensor-%d" % (i % 10), 20 + i % 15, 50 + i % 40) for i in range(100)]


async def test_readme_async_proto_nonblocking_example(server, table, tmp_path):
    record_pb2 = compile_proto(AIR_QUALITY_PROTO, "record", tmp_path)
    acked = []

    class MyCallback(AckCallback):
        def on_ack(self, offset: int):
            acked.append(offset)

    options = StreamConfigurationOptions(max_inflight_records=50000, ack_callback=MyCallback())
    sdk = ZerobusSdk(server.endpoint, server.http_url)
    table_properties = TableProperties(table, record_pb2.AirQuality.DESCRIPTOR)
    stream = await sdk.create_stream(CLIENT_ID, CLIENT_SECRET, table_properties, options)
    futures = []
    try:
        for i in range(2000):
            record = record_pb2.AirQuality(device_name=f"sensor-{i % 10}", temp=20 + i % 15,
                                           humidity=50 + i % 40)
            future = await stream.ingest_record(record)
            futures.append(future)
        await stream.flush()
        await asyncio.gather(*futures)
    finally:
        await stream.close()
    assert acked == list(range(2000))
    assert len(server.rows(table)) == 2000


async def test_methods_offsets_and_context_manager(aio_sdk, server, table):
    stream = await aio_sdk.create_stream(CLIENT_ID, CLIENT_SECRET, TableProperties(table),
                                         StreamConfigurationOptions(record_type=RecordType.JSON))
    assert isinstance(stream, ZerobusStream)
    async with stream:
        assert stream.stream_id
        assert await stream.ingest_record_offset({"n": 0}) == 0
        assert await stream.ingest_records_offset([{"n": 1}, '{"n":2}']) == 1
        assert await stream.ingest_records_offset([]) is None
        assert stream.ingest_record_nowait(b'{"n":3}') is None
        assert stream.ingest_records_nowait([{"n": 4}]) is None
        await stream.wait_for_offset(3)
        await stream.wait_for_offset(3, timeout_sec=5)
        await stream.flush()
        assert stream.get_stats().acked_offset == 3
    assert stream.state == "CLOSED"
    await stream.close()
    assert await stream.get_unacked_records() == []
    assert await stream.get_unacked_batches() == []
    assert server.payloads(table) == [b'{"n":%d}' % i for i in range(5)]
    with pytest.raises(NonRetriableException) as ei:
        await stream.ingest_record_offset({"n": 5})
    assert ei.value.status_name == "ZEROBUS_ERR_STREAM_CLOSED"


async def test_callbacks_on_the_loop(aio_sdk, server, table):
    loop_thread = []
    got = []

    class CB(AckCallback):
        def on_ack(self, offset):
            import threading
            loop_thread.append(threading.current_thread() is threading.main_thread())
            got.append(offset)

    stream = await aio_sdk.create_stream(
        CLIENT_ID, CLIENT_SECRET, TableProperties(table),
        StreamConfigurationOptions(record_type=RecordType.JSON, ack_callback=CB()))
    for i in range(300):
        stream.ingest_record_nowait({"i": i})
    await stream.flush()
    await stream.close()
    assert got == list(range(300)) and all(loop_thread)


async def test_on_error_and_unacked_after_failure(aio_sdk, server, table):
    errors = []

    class CB(AckCallback):
        def on_ack(self, offset):
            pass

        def on_error(self, offset, message):
            errors.append(offset)

    server.set_faults(table, [{"no_ack": True}])
    stream = await aio_sdk.create_stream(
        CLIENT_ID, CLIENT_SECRET, TableProperties(table),
        StreamConfigurationOptions(record_type=RecordType.JSON, ack_callback=CB(),
                                   flush_timeout_ms=1000))
    fut = await stream.ingest_record({"a": 1})
    await stream.ingest_records_offset([{"a": 2}, {"a": 3}])
    with pytest.raises(ZerobusException) as ei:
        await stream.wait_for_offset(1, timeout_sec=0.1)
    assert ei.value.status_name == "ZEROBUS_ERR_TIMEOUT"
    with pytest.raises(ZerobusException):
        await stream.flush()
    with pytest.raises(ZerobusException):
        await stream.close()
    assert errors == [0, 1]
    assert fut.done() and fut.exception() is not None
    assert await stream.get_unacked_batches() == [[b'{"a":1}'], [b'{"a":2}', b'{"a":3}']]
    new_stream = await aio_sdk.recreate_stream(stream)
    await new_stream.flush()
    await new_stream.close()
    sid = new_stream.stream_id
    rows = server.rows(table, "_zerobus_stream_id, _zerobus_payload")
    assert [p for s, p in rows if s == sid] == ['{"a":1}', '{"a":2}', '{"a":3}']


async def test_backpressure_awaits_without_blocking_the_loop(aio_sdk, server, table):
    server.set_faults(table, [{"ack_delay_ms": 30}])
    stream = await aio_sdk.create_stream(
        CLIENT_ID, CLIENT_SECRET, TableProperties(table),
        StreamConfigurationOptions(record_type=RecordType.JSON, max_inflight_records=5))
    ticks = 0
    stop = False

    async def ticker():
        nonlocal ticks
        while not stop:
            ticks += 1
            await asyncio.sleep(0.005)

    t = asyncio.ensure_future(ticker())
    for i in range(40):
        assert await stream.ingest_record_offset({"i": i}) == i
    stop = True
    await t
    await stream.close()
    assert ticks >= 10  # the loop kept running while ingest waited for room
    assert len(server.rows(table)) == 40


async def test_create_errors(aio_sdk, server, table):
    with pytest.raises(NonRetriableException) as ei:
        await aio_sdk.create_stream(CLIENT_ID, "bad", TableProperties(table),
                                    StreamConfigurationOptions(record_type=RecordType.JSON))
    assert ei.value.status_name == "ZEROBUS_ERR_UNAUTHENTICATED"
    server.set_faults(table, [{"fail_create": 5}])
    with pytest.raises(NonRetriableException) as ei:
        await aio_sdk.create_stream(CLIENT_ID, CLIENT_SECRET, TableProperties(table),
                                    StreamConfigurationOptions(record_type=RecordType.JSON))
    assert ei.value.status_name == "ZEROBUS_ERR_NOT_FOUND"


async def test_aio_headers_provider_and_sdk_context(server, table):
    calls = []

    class P:
        def get_headers(self):
            calls.append(1)
            return [("authorization", "Bearer " + server.token(table)),
                    ("x-databricks-zerobus-table-name", table)]

    async with ZerobusSdk(server.endpoint, server.http_url) as sdk:
        stream = await sdk.create_stream(None, None, TableProperties(table),
                                         StreamConfigurationOptions(record_type=RecordType.JSON),
                                         headers_provider=P())
        async with stream:
            await stream.ingest_record_offset({"p": 1})
    assert calls == [1]
    assert server.rows(table) == ['{"p":1}']
