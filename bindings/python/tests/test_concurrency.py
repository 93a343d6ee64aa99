"""Threads and tasks: distinct ordered offsets, no deadlock with the headers
provider (which needs the GIL on a core thread) during recovery."""
import asyncio
import threading

from conftest import CLIENT_ID, CLIENT_SECRET
from zerobus.sdk.shared import AckCallback, RecordType, StreamConfigurationOptions, TableProperties


def opts(**kw):
    return StreamConfigurationOptions(record_type=RecordType.JSON, **kw)


def test_threads_get_distinct_offsets(sdk, server, table):
    got = [[] for _ in range(4)]
    with sdk.create_stream(CLIENT_ID, CLIENT_SECRET, TableProperties(table), opts()) as stream:
        def worker(k):
            for i in range(2000):
                if i % 100 == 0:
                    got[k].append(stream.ingest_records_offset([{"k": k, "i": i}] * 3))
                else:
                    got[k].append(stream.ingest_record_offset({"k": k, "i": i}))

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    flat = sorted(o for g in got for o in g)
    assert flat == list(range(8000))
    assert all(g == sorted(g) for g in got)  # increasing within a thread
    assert len(server.rows(table)) == 8000 + 4 * 20 * 2


def test_no_deadlock_provider_during_recovery_under_load(sdk, server, table):
    calls = []

    class Provider:
        def get_headers(self):
            calls.append(threading.current_thread().name)
            return [("authorization", "Bearer " + server.token(table)),
                    ("x-databricks-zerobus-table-name", table)]

    class CB(AckCallback):
        n = 0

        def on_ack(self, offset):
            CB.n += 1

    server.set_faults(table, [{"drop_at_request": 5}, {"drop_at_request": 3}])
    done = threading.Event()

    def run():
        with sdk.create_stream(None, None, TableProperties(table),
                               opts(ack_callback=CB(), recovery_backoff_ms=10),
                               headers_provider=Provider()) as stream:
            for i in range(20000):  # tight loop holding the GIL between calls
                stream.ingest_record_nowait(b'{"i":%d}' % i)
                if i % 500 == 0:
                    stream.get_stats()
                    _ = stream.stream_id
                if i % 1000 == 999:
                    stream.flush()  # at least one request per 1000 records
        done.set()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(60)
    assert done.is_set(), "deadlock: ingest did not finish"
    assert len(calls) == 3  # creation + two recoveries
    assert CB.n == 20000
    rows = server.rows(table)
    assert set(rows) == {'{"i":%d}' % i for i in range(20000)}


async def test_tasks_share_a_stream(aio_sdk, server, table):
    stream = await aio_sdk.create_stream(CLIENT_ID, CLIENT_SECRET, TableProperties(table),
                                         opts(max_inflight_records=50))

    async def task(k):
        offs = []
        for i in range(300):
            offs.append(await stream.ingest_record_offset({"k": k, "i": i}))
        await stream.wait_for_offset(offs[-1])
        return offs

    results = await asyncio.gather(*(task(k) for k in range(5)))
    await stream.close()
    assert sorted(o for r in results for o in r) == list(range(1500))
    assert len(server.rows(table)) == 1500
