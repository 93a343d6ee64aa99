"""One Python ingest measurement per process, for our binding or the official SDK.

Both packages install as the import name ``zerobus``; run this file with the Python of
the venv that holds the package to measure (scripts/bench.sh uses build/venv-bench for
ours and build/venv-bench-official for the official SDK). The code below calls only the
API the two share, with the same options and the same data.

    python bench_py.py --impl ours|official --method offset|nowait|batch \
        --endpoint http://127.0.0.1:P --workspace http://127.0.0.1:H --table c.s.t \
        --size 20 --records 1000000 [--batch 1000] [--counters URL]

Records: PROTO stream, descriptor = message BenchRecord { optional bytes payload = 1; };
each record is a valid encoding of it of exactly --size bytes (same generator as
bench/c/zb_bench_c.c), 1024 distinct records used round-robin, built before timing.
Timed section: the ingest loop plus one ``flush()``. ``--counters`` (zerobus-local's
/zerobus-local/counters URL): after flush, wait until the server has received every
record (the official SDK documents that flush() may return before fire-and-forget
records were queued); the wait is part of the timed section and reported.

Prints one JSON object: wall_s, user_s, sys_s (CPU of this process during the timed
section), maxrss_kib (peak RSS of the process), records_per_s, mb_per_s, and
flush_short (records the server had not received when flush returned).
"""
import argparse
import json
import resource
import sys
import time
import urllib.request

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

POOL = 1024


def bench_descriptor():
    fdp = descriptor_pb2.FileDescriptorProto(name="zb_bench_record.proto", package="zbbench",
                                             syntax="proto2")
    m = fdp.message_type.add(name="BenchRecord")
    m.field.add(name="payload", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_BYTES,
                label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    cls = message_factory.GetMessageClass(pool.FindMessageTypeByName("zbbench.BenchRecord"))
    return cls.DESCRIPTOR, cls


def varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def filler(n):
    """n pseudo-random lowercase letters (xorshift32), as bench/c/zb_bench_c.c makes them."""
    x = 2463534242
    out = bytearray(n)
    for i in range(n):
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        out[i] = 97 + x % 26
    return bytes(out)


def make_pool(size):
    """POOL distinct records: tag 0x0a + varint(L) + L filler bytes == size bytes; record k
    takes its filler from offset k of one shared letter stream."""
    length = size - 2
    while length > 0 and 1 + len(varint(length)) + length > size:
        length -= 1
    assert 1 + len(varint(length)) + length == size, size
    letters = filler(length + POOL)
    head = b"\x0a" + varint(length)
    return [head + letters[k:k + length] for k in range(POOL)]


def server_records(url, table):
    with urllib.request.urlopen(url, timeout=5) as r:
        c = json.load(r)
    return c.get("tables", {}).get(table, {}).get("records", 0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--impl", required=True, choices=["ours", "official"])
    ap.add_argument("--method", required=True, choices=["offset", "nowait", "batch"])
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--workspace", required=True)
    ap.add_argument("--table", required=True)
    ap.add_argument("--size", type=int, required=True)
    ap.add_argument("--records", type=int, required=True)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--max-inflight-records", type=int, default=1000000)
    ap.add_argument("--client-id", default="test-client")
    ap.add_argument("--client-secret", default="test-secret")
    ap.add_argument("--counters", default=None)
    ap.add_argument("--dry", action="store_true",
                    help="everything but the SDK calls: each ingest call is replaced by the "
                         "builtin len() (the callgrind baseline of the same loop)")
    a = ap.parse_args()

    import zerobus
    from zerobus.sdk.shared import RecordType, StreamConfigurationOptions, TableProperties
    from zerobus.sdk.sync import ZerobusSdk

    desc, _cls = bench_descriptor()
    recs = make_pool(a.size)
    n = a.records
    if a.method == "batch":
        # batches cut from the round-robin sequence; POOL distinct lists cover a full cycle
        nb = (n + a.batch - 1) // a.batch
        distinct = []
        k = 0
        for _ in range(min(nb, POOL)):
            distinct.append([recs[(k + j) % POOL] for j in range(a.batch)])
            k = (k + a.batch) % POOL
        last = n - (nb - 1) * a.batch
        batches = [distinct[b % len(distinct)] for b in range(nb)]
        if nb and last != a.batch:
            batches[-1] = batches[-1][:last]

    sdk = ZerobusSdk(a.endpoint, a.workspace)
    opts = StreamConfigurationOptions(record_type=RecordType.PROTO,
                                      max_inflight_records=a.max_inflight_records)
    stream = sdk.create_stream(a.client_id, a.client_secret, TableProperties(a.table, desc), opts)

    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    if a.method == "offset":
        f = len if a.dry else stream.ingest_record_offset
        for i in range(n):
            f(recs[i & (POOL - 1)])
    elif a.method == "nowait":
        f = len if a.dry else stream.ingest_record_nowait
        for i in range(n):
            f(recs[i & (POOL - 1)])
    else:
        f = len if a.dry else stream.ingest_records_offset
        for b in batches:
            f(b)
    t_ingest = time.perf_counter()
    stream.flush()
    t_flush = time.perf_counter()
    short = 0
    if a.counters and not a.dry:
        got = server_records(a.counters, a.table)
        short = n - got
        deadline = time.perf_counter() + 120
        while got < n and time.perf_counter() < deadline:
            time.sleep(0.002)
            got = server_records(a.counters, a.table)
        if got < n:
            print(f"bench_py: server received {got} of {n} records", file=sys.stderr)
            return 1
    t1 = time.perf_counter()
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    stream.close()

    wall = t1 - t0
    try:
        from importlib.metadata import version as _v
        version = _v("libzerobus" if a.impl == "ours" else "databricks-zerobus-ingest-sdk")
    except Exception:  # noqa: BLE001
        version = getattr(zerobus, "__version__", "?")
    print(json.dumps({
        "impl": a.impl, "version": version, "method": a.method, "records": n, "size": a.size,
        "batch": a.batch if a.method == "batch" else 1,
        "wall_s": round(wall, 6), "ingest_s": round(t_ingest - t0, 6), "flush_return_s": round(t_flush - t0, 6),
        "user_s": round(r1.ru_utime - r0.ru_utime, 6), "sys_s": round(r1.ru_stime - r0.ru_stime, 6),
        "maxrss_kib": r1.ru_maxrss,
        "records_per_s": round(n / wall, 1) if wall > 0 else 0.0,
        "mb_per_s": round(n * a.size / wall / 1e6, 3) if wall > 0 else 0.0,
        "flush_short": short,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
