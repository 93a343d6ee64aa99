"""Interop: the official Python SDK (databricks-zerobus-ingest-sdk) ingests JSON and
PROTO records into zerobus-local over plaintext, once with OAuth through zerobus-local's
token endpoint and once with a custom headers provider; the SQLite rows must equal what
was sent. Run by scripts/test.d/a-25-interop.sh (not collected by pytest: its own venv)."""
import json
import os
import sys
import traceback

sys.path.insert(0, os.path.dirname(__file__))

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory  # noqa: E402

from zlclient import Server  # noqa: E402

from zerobus.sdk.sync import ZerobusSdk  # noqa: E402
from zerobus.sdk.shared import RecordType, StreamConfigurationOptions, TableProperties  # noqa: E402
from zerobus.sdk.shared.headers_provider import HeadersProvider  # noqa: E402

CLIENT_ID, SECRET = "interop-client", "interop-secret"


def sensor_message_class():
    fdp = descriptor_pb2.FileDescriptorProto(name="interop_sensor.proto", package="interop",
                                             syntax="proto2")
    m = fdp.message_type.add(name="Sensor")
    m.field.add(name="device", number=1, type=9, label=1)
    m.field.add(name="temp", number=2, type=5, label=1)
    m.field.add(name="ratio", number=3, type=1, label=1)
    m.field.add(name="tags", number=4, type=9, label=3)
    inner = m.nested_type.add(name="Pos")
    inner.field.add(name="x", number=1, type=3, label=1)
    m.field.add(name="pos", number=5, type=11, label=1, type_name=".interop.Sensor.Pos")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("interop.Sensor"))


Sensor = sensor_message_class()


class TokenHeaders(HeadersProvider):
    """Fetches a token from zerobus-local's endpoint itself and supplies both headers."""

    def __init__(self, srv, table):
        super().__init__()
        self.srv, self.table = srv, table
        self.calls = 0

    def get_headers(self):
        self.calls += 1
        tok = self.srv.token(self.table, CLIENT_ID, SECRET)
        return [("authorization", f"Bearer {tok}"),
                ("x-databricks-zerobus-table-name", self.table)]


def json_records(tag, n):
    return [{"id": i, "tag": tag, "v": i * 1.5, "tags": [tag, str(i)]} for i in range(n)]


def check_json(srv, table, sent):
    rows = srv.rows(table, "_zerobus_offset, id, tag, v, tags, _zerobus_payload")
    assert len(rows) == len(sent), (len(rows), len(sent))
    for k, (r, s) in enumerate(zip(rows, sent)):
        assert r[0] == k, (r, k)
        assert (r[1], r[2], r[3], json.loads(r[4])) == (s["id"], s["tag"], s["v"], s["tags"]), r
        assert json.loads(r[5]) == s


def check_proto(srv, table, sent):
    rows = srv.rows(table, "_zerobus_offset, device, temp, ratio, tags, pos, _zerobus_payload")
    assert len(rows) == len(sent), (len(rows), len(sent))
    for k, (r, s) in enumerate(zip(rows, sent)):
        assert r[0] == k
        assert (r[1], r[2], r[3]) == (s.device, s.temp, s.ratio), r
        assert json.loads(r[4]) == list(s.tags)
        assert json.loads(r[5]) == {"x": s.pos.x}
        assert Sensor.FromString(r[6]) == s


def sensors(n, base):
    out = []
    for i in range(n):
        s = Sensor(device=f"dev-{base}-{i}", temp=base + i, ratio=i / 4, tags=["a", str(i)])
        s.pos.x = -i * 1000000007
        out.append(s)
    return out


def ingest_all(stream, singles, batch):
    for r in singles:
        stream.ingest_record_offset(r)
    stream.ingest_records_offset(batch)
    stream.flush()
    stream.close()


def run(name, fn, results):
    try:
        fn()
        results.append((name, "PASS"))
        print(f"PASS {name}", flush=True)
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        results.append((name, "FAIL"))
        print(f"FAIL {name}", flush=True)


def main():
    srv = Server("--client-id", CLIENT_ID, "--client-secret", SECRET)
    results = []
    endpoint = f"http://127.0.0.1:{srv.grpc_port}"
    sdk = ZerobusSdk(endpoint, srv.http_url)
    try:
        def oauth_json():
            t = "interop.oauth.json"
            recs = json_records("oauth", 60)
            s = sdk.create_stream(CLIENT_ID, SECRET, TableProperties(t),
                                  StreamConfigurationOptions(record_type=RecordType.JSON))
            ingest_all(s, recs[:40], [json.dumps(r) for r in recs[40:]])
            check_json(srv, t, recs)
            assert srv.table_counter(t, "creates") >= 1

        def oauth_proto():
            t = "interop.oauth.proto"
            recs = sensors(50, 10)
            s = sdk.create_stream(CLIENT_ID, SECRET, TableProperties(t, Sensor.DESCRIPTOR))
            ingest_all(s, recs[:30], [r.SerializeToString() for r in recs[30:]])
            check_proto(srv, t, recs)

        def headers_json():
            t = "interop.headers.json"
            recs = json_records("hdr", 25)
            hp = TokenHeaders(srv, t)
            s = sdk.create_stream("unused", "unused", TableProperties(t),
                                  StreamConfigurationOptions(record_type=RecordType.JSON),
                                  headers_provider=hp)
            ingest_all(s, recs[:5], recs[5:])
            check_json(srv, t, recs)
            assert hp.calls >= 1

        def headers_proto():
            t = "interop.headers.proto"
            recs = sensors(20, 99)
            hp = TokenHeaders(srv, t)
            s = sdk.create_stream("unused", "unused", TableProperties(t, Sensor.DESCRIPTOR),
                                  headers_provider=hp)
            ingest_all(s, recs[:10], recs[10:])
            check_proto(srv, t, recs)

        def bad_secret_is_refused():
            try:
                sdk.create_stream(CLIENT_ID, "wrong", TableProperties("interop.bad.t"),
                                  StreamConfigurationOptions(record_type=RecordType.JSON))
            except Exception as e:  # noqa: BLE001
                print(f"  refused as expected: {type(e).__name__}: {str(e)[:120]}")
                return
            raise AssertionError("a wrong client secret was accepted")

        run("oauth_json", oauth_json, results)
        run("oauth_proto", oauth_proto, results)
        run("headers_provider_json", headers_json, results)
        run("headers_provider_proto", headers_proto, results)
        run("bad_secret_is_refused", bad_secret_is_refused, results)
    finally:
        code = srv.stop()
        if code != 0:
            print(srv.read_stderr()[-2000:])
            results.append(("clean_shutdown", "FAIL"))
    passed = sum(1 for _, r in results if r == "PASS")
    failed = len(results) - passed
    print(f"interop: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
