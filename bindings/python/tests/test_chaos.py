"""Under zerobus-local's chaos mode (drops, stalls, malformed acks, close signals):
every record arrives (at least once), callbacks report every offset exactly once
in order, and nothing is left unacknowledged."""
from conftest import CLIENT_ID, CLIENT_SECRET
from zerobus.sdk.shared import AckCallback, RecordType, StreamConfigurationOptions, TableProperties


class Recorder(AckCallback):
    def __init__(self):
        self.acks = []
        self.errors = []

    def on_ack(self, offset):
        self.acks.append(offset)

    def on_error(self, offset, message):
        self.errors.append(offset)


def test_chaos_sync(fresh_server, table):
    from zerobus.sdk.sync import ZerobusSdk

    server = fresh_server("--chaos-seed", "11", "--chaos-rate", "0.03")
    sdk = ZerobusSdk(server.endpoint, server.http_url)
    cb = Recorder()
    options = StreamConfigurationOptions(
        record_type=RecordType.JSON, ack_callback=cb, recovery_retries=20,
        recovery_timeout_ms=1000, recovery_backoff_ms=10, server_lack_of_ack_timeout_ms=1000,
        stream_paused_max_wait_time_ms=100)
    n_calls = 0
    with sdk.create_stream(CLIENT_ID, CLIENT_SECRET, TableProperties(table), options) as stream:
        for i in range(300):
            if i % 3 == 0:
                stream.ingest_records_offset([b'{"i":%d,"j":%d}' % (i, j) for j in range(10)])
            else:
                stream.ingest_record_offset({"i": i, "j": 0})
            n_calls += 1
            stream.flush()  # one request per call: ~300 calls for chaos to hit
        reconnects = stream.get_stats().reconnects
    assert cb.errors == []
    assert cb.acks == list(range(n_calls))
    expected = {'{"i":%d,"j":%d}' % (i, j) for i in range(300)
                for j in (range(10) if i % 3 == 0 else range(1))}
    assert set(server.rows(table)) == expected
    assert reconnects >= 1  # chaos did strike


async def test_chaos_aio(fresh_server, table):
    from zerobus.sdk.aio import ZerobusSdk

    server = fresh_server("--chaos-seed", "11", "--chaos-rate", "0.03")
    sdk = ZerobusSdk(server.endpoint, server.http_url)
    cb = Recorder()
    options = StreamConfigurationOptions(
        record_type=RecordType.JSON, ack_callback=cb, recovery_retries=20,
        recovery_timeout_ms=1000, recovery_backoff_ms=10, server_lack_of_ack_timeout_ms=1000,
        stream_paused_max_wait_time_ms=100)
    stream = await sdk.create_stream(CLIENT_ID, CLIENT_SECRET, TableProperties(table), options)
    async with stream:
        futures = []
        for i in range(300):
            futures.append(await stream.ingest_record({"i": i}))
            await futures[-1]
        reconnects = stream.get_stats().reconnects
    assert cb.errors == [] and cb.acks == list(range(300))
    assert all(f.done() and f.exception() is None for f in futures)
    assert set(server.rows(table)) == {'{"i":%d}' % i for i in range(300)}
    assert reconnects >= 1
