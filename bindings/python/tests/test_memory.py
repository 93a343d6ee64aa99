"""RSS stays flat over 1,000,000 records (batch and single-record paths)."""
import gc
import os

from conftest import CLIENT_ID, CLIENT_SECRET
from zerobus.sdk.shared import AckCallback, RecordType, StreamConfigurationOptions, TableProperties


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / (1 << 20)


class Count(AckCallback):
    n = 0

    def on_ack(self, offset):
        self.n += 1


def test_rss_flat_over_a_million_batched_records(fresh_server, table):
    from zerobus.sdk.sync import ZerobusSdk

    server = fresh_server("--store", "null")
    sdk = ZerobusSdk(server.endpoint, server.http_url)
    cb = Count()
    stream = sdk.create_stream(CLIENT_ID, CLIENT_SECRET, TableProperties(table),
                               StreamConfigurationOptions(record_type=RecordType.JSON,
                                                          ack_callback=cb,
                                                          max_inflight_records=100000))
    batch = [b'{"v":1%08d}' % i for i in range(1000)]  # 15-byte records
    at_200k = None
    for i in range(1000):
        stream.ingest_records_nowait(batch)
        if i == 199:
            stream.flush()
            gc.collect()
            at_200k = rss_mb()
    stream.flush()
    gc.collect()
    growth = rss_mb() - at_200k
    stream.close()
    assert stream.get_stats().records_acked == 1000000
    assert cb.n == 1000
    assert growth < 16, "RSS grew %.1f MB between 200k and 1M records" % growth


def test_rss_flat_over_a_million_single_records(fresh_server, table):
    from zerobus.sdk.sync import ZerobusSdk

    server = fresh_server("--store", "null")
    sdk = ZerobusSdk(server.endpoint, server.http_url)
    stream = sdk.create_stream(CLIENT_ID, CLIENT_SECRET, TableProperties(table),
                               StreamConfigurationOptions(record_type=RecordType.JSON))
    rec = {"device": "sensor-1", "v": 1}
    ingest = stream.ingest_record_nowait
    at_200k = None
    for i in range(1000000):
        ingest(rec)
        if i == 199999:
            stream.flush()
            gc.collect()
            at_200k = rss_mb()
    stream.flush()
    gc.collect()
    growth = rss_mb() - at_200k
    stream.close()
    assert stream.get_stats().records_acked == 1000000
    assert growth < 16, "RSS grew %.1f MB between 200k and 1M records" % growth
