"""The native module's view of the ABI revision: poll_events (event_size passed by
the SWIG helper) and zerobus_stream_wake ending a poll that waits forever."""
import threading
import time

from conftest import CLIENT_ID, CLIENT_SECRET
from zerobus import _core
from zerobus.sdk.shared import RecordType, StreamConfigurationOptions, TableProperties

_native = _core._native


def test_wake_ends_a_blocked_poll(sdk, server, table):
    stream = sdk.create_stream(CLIENT_ID, CLIENT_SECRET, TableProperties(table),
                               StreamConfigurationOptions(record_type=RecordType.JSON))
    with stream:
        assert stream._poller is None  # no ack callback: nobody else polls
        assert stream.ingest_record_offset({"n": 0}) == 0
        stream.flush()
        while _native.poll_events(stream._handle, 8, 0):  # nothing left pending
            pass
        result = {}

        def poll_forever():
            result["events"] = _native.poll_events(stream._handle, 8, -1)
            result["at"] = time.monotonic()

        t = threading.Thread(target=poll_forever)
        t.start()
        time.sleep(0.2)
        assert t.is_alive() and "at" not in result  # waiting without a timeout
        woke = time.monotonic()
        assert _native.zerobus_stream_wake(stream._handle) == 0
        t.join(5)
        assert not t.is_alive(), "zerobus_stream_wake did not end poll_events(-1)"
        assert result["events"] == []
        assert result["at"] - woke < 1.0
    assert server.payloads(table) == [b'{"n":0}']
