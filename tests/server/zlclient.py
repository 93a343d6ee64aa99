"""A minimal Zerobus test client and zerobus-local launcher for the conformance tests.

Stubs are generated at import time from proto/zerobus_service.proto into a temp dir
(grpcio-tools), so nothing generated is committed.
"""
import atexit
import base64
import json
import os
import queue
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import grpc

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
_TEMP_DIRS = []


def temp_dir(prefix):
    """A temporary directory removed when the test process exits."""
    d = tempfile.mkdtemp(prefix=prefix)
    _TEMP_DIRS.append(d)
    return d


@atexit.register
def _remove_temp_dirs():
    if os.environ.get("ZL_KEEP_DB", "0") not in ("", "0"):
        return
    for d in _TEMP_DIRS:
        shutil.rmtree(d, ignore_errors=True)


_GEN = temp_dir("zl-pystubs-")


def _generate_stubs():
    from grpc_tools import protoc
    import grpc_tools

    inc = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    rc = protoc.main([
        "protoc", f"-I{ROOT}/proto", f"-I{inc}", f"--python_out={_GEN}",
        f"--grpc_python_out={_GEN}", f"{ROOT}/proto/zerobus_service.proto"])
    if rc != 0:
        raise RuntimeError("protoc failed")
    sys.path.insert(0, _GEN)


_generate_stubs()
import zerobus_service_pb2 as pb  # noqa: E402
import zerobus_service_pb2_grpc as pb_grpc  # noqa: E402

from google.protobuf import descriptor_pb2  # noqa: E402

OK = grpc.StatusCode.OK


def server_bin():
    b = os.environ.get("ZEROBUS_LOCAL_BIN")
    if b:
        return b
    return os.path.join(os.environ.get("BUILD", os.path.join(ROOT, "build", "plain")),
                        "server", "zerobus-local")


class Server:
    """One zerobus-local child process on free ports and a fresh database."""

    def __init__(self, *args, db=None, tls=None, timeout=10):
        self.dir = temp_dir("zl-test-")
        self.db = db or os.path.join(self.dir, "zl.db")
        self.tls = tls  # (ca_pem, cert, key) or None
        cmd = [server_bin(), "--port", "0", "--http-port", "0", "--db", self.db]
        if tls:
            cmd += ["--tls-cert", tls[1], "--tls-key", tls[2]]
        cmd += list(args)
        self.stderr_path = os.path.join(self.dir, "stderr.log")
        self.stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.stderr)
        line = self._read_ready(timeout)
        parts = dict(p.split("=", 1) for p in line.split()[1:])
        self.grpc_port = int(parts["grpc"].rsplit(":", 1)[1])
        self.http_port = int(parts["http"].rsplit(":", 1)[1])
        scheme = "https" if tls else "http"
        self.http_url = f"{scheme}://127.0.0.1:{self.http_port}"
        self.target = f"127.0.0.1:{self.grpc_port}"

    def _read_ready(self, timeout):
        out = {}

        def rd():
            out["line"] = self.proc.stdout.readline().decode()

        t = threading.Thread(target=rd, daemon=True)
        t.start()
        t.join(timeout)
        line = out.get("line", "")
        if not line.startswith("zerobus-local grpc="):
            self.proc.kill()
            raise RuntimeError(f"no ready line: {line!r}; stderr: {self.read_stderr()}")
        return line

    def read_stderr(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout=20):
        """SIGTERM; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def alive(self):
        return self.proc.poll() is None

    # -------------------------------------------------------------- HTTP
    def http(self, method, path, body=None, headers=None):
        import ssl
        data = body.encode() if isinstance(body, str) else body
        req = urllib.request.Request(self.http_url + path, data=data, method=method,
                                     headers=headers or {})
        ctx = None
        if self.tls:
            ctx = ssl.create_default_context(cafile=self.tls[0])
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                             urllib.request.HTTPSHandler(context=ctx))
        try:
            with opener.open(req, timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def counters(self):
        st, body = self.http("GET", "/zerobus-local/counters")
        assert st == 200, body
        return json.loads(body)

    def table_counter(self, table, name):
        return self.counters()["tables"].get(table, {}).get(name, 0)

    def set_faults(self, script):
        st, body = self.http("POST", "/zerobus-local/faults", json.dumps(script),
                             {"Content-Type": "application/json"})
        assert st == 200, body

    def clear_faults(self):
        assert self.http("DELETE", "/zerobus-local/faults")[0] == 200

    def token(self, table, client_id="test-client", secret="test-secret"):
        status, body = self.token_request(table, client_id, secret)
        assert status == 200, body
        return json.loads(body)["access_token"]

    def token_request(self, table, client_id="test-client", secret="test-secret", form=None):
        if form is None:
            cat, sch, _ = table.split(".")
            details = [
                {"type": "unity_catalog_privileges", "privileges": ["USE CATALOG"],
                 "object_type": "CATALOG", "object_full_path": cat},
                {"type": "unity_catalog_privileges", "privileges": ["USE SCHEMA"],
                 "object_type": "SCHEMA", "object_full_path": f"{cat}.{sch}"},
                {"type": "unity_catalog_privileges", "privileges": ["SELECT", "MODIFY"],
                 "object_type": "TABLE", "object_full_path": table,
                 "operations": ["zerobuswrite"]},
            ]
            form = {"grant_type": "client_credentials", "scope": "all-apis",
                    "resource": "api://databricks/workspaces/123/zerobusDirectWriteApi",
                    "authorization_details": json.dumps(details, separators=(",", ":"))}
        basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        return self.http("POST", "/oidc/v1/token", urllib.parse.urlencode(form),
                         {"Authorization": f"Basic {basic}",
                          "Content-Type": "application/x-www-form-urlencoded"})

    # -------------------------------------------------------------- SQLite
    def rows(self, table, cols="*", where=""):
        if not os.path.exists(self.db):
            return []
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10)
        try:
            exists = con.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?",
                                 (table,)).fetchone()
            if not exists:
                return []
            q = '"' + table.replace('"', '""') + '"'
            return con.execute(f"SELECT {cols} FROM {q} {where} ORDER BY rowid").fetchall()
        finally:
            con.close()

    def row_count(self, table):
        r = self.rows(table, "count(*)")
        return r[0][0] if r else 0

    def columns(self, table):
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10)
        try:
            return [(r[1], r[2]) for r in con.execute("SELECT * FROM pragma_table_info(?)",
                                                      (table,))]
        finally:
            con.close()

    # -------------------------------------------------------------- gRPC
    def channel(self):
        opts = [("grpc.max_send_message_length", 64 << 20),
                ("grpc.max_receive_message_length", 64 << 20),
                ("grpc.enable_http_proxy", 0),
                ("grpc.use_local_subchannel_pool", 1)]  # one connection per channel
        if self.tls:
            with open(self.tls[0], "rb") as f:
                creds = grpc.ssl_channel_credentials(root_certificates=f.read())
            return grpc.secure_channel(f"localhost:{self.grpc_port}", creds, options=opts)
        return grpc.insecure_channel(self.target, options=opts)

    def call(self, table=None, token=None, metadata=None, channel=None):
        md = [] if metadata is None else list(metadata)
        if metadata is None:
            if table is not None:
                md.append(("x-databricks-zerobus-table-name", table))
            if token is not None:
                md.append(("authorization", f"Bearer {token}"))
        return Call(channel or self.channel(), md)


class CallEnded(Exception):
    def __init__(self, code, details):
        super().__init__(f"{code} {details}")
        self.code = code
        self.details = details


class Call:
    """One EphemeralStream call: send() queues requests, responses arrive on a thread."""

    def __init__(self, channel, metadata):
        self.channel = channel
        self.stub = pb_grpc.ZerobusStub(channel)
        self.q = queue.Queue()
        self.out = queue.Queue()
        self.acks = []  # every durability_ack_up_to_offset received (None if absent)
        self.ack_beyond_sent = False  # an ack above the highest offset sent so far
        self.signals = []
        self.status = None  # (code, details) once the call ended
        self.next_offset = 0
        self._it = self.stub.EphemeralStream(iter(self.q.get, None), metadata=metadata)
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self):
        try:
            for r in self._it:
                self.out.put(("msg", r))
            self.out.put(("status", OK, ""))
        except grpc.RpcError as e:
            self.out.put(("status", e.code(), e.details()))

    def send(self, req):
        self.q.put(req)

    def half_close(self):
        self.q.put(None)

    def cancel(self):
        self._it.cancel()

    def next_event(self, timeout=10):
        """The next response or the end of the call; raises queue.Empty on timeout."""
        kind, *rest = self.out.get(timeout=timeout)
        if kind == "status":
            self.status = (rest[0], rest[1])
            return ("status", rest[0], rest[1])
        r = rest[0]
        which = r.WhichOneof("payload")
        if which == "ingest_record_response":
            a = r.ingest_record_response
            self.acks.append(a.durability_ack_up_to_offset
                             if a.HasField("durability_ack_up_to_offset") else None)
            if self.acks[-1] is not None and self.acks[-1] > self.next_offset - 1:
                self.ack_beyond_sent = True
        elif which == "close_stream_signal":
            d = r.close_stream_signal.duration
            self.signals.append(d.seconds * 1000 + d.nanos // 1000000)
        return ("msg", which, r)

    def create(self, table, record_type="JSON", descriptor=None, timeout=10):
        cs = pb.CreateIngestStreamRequest(table_name=table,
                                          record_type=getattr(pb, record_type))
        if descriptor is not None:
            cs.descriptor_proto = descriptor
        self.send(pb.EphemeralStreamRequest(create_stream=cs))
        ev = self.next_event(timeout)
        if ev[0] == "status":
            raise CallEnded(ev[1], ev[2])
        assert ev[1] == "create_stream_response", ev
        return ev[2].create_stream_response.stream_id

    def ingest_json(self, records, offset=None):
        """One request: a single record or a batch. Returns its wire offset."""
        off = self.next_offset if offset is None else offset
        if isinstance(records, (list, tuple)) and len(records) != 1:
            req = pb.EphemeralStreamRequest(ingest_record_batch=pb.IngestRecordBatchRequest(
                offset_id=off, json_batch=pb.JsonRecordBatch(records=list(records))))
        else:
            rec = records[0] if isinstance(records, (list, tuple)) else records
            req = pb.EphemeralStreamRequest(ingest_record=pb.IngestRecordRequest(
                offset_id=off, json_record=rec))
        self.send(req)
        self.next_offset = off + 1
        return off

    def ingest_proto(self, records, offset=None):
        off = self.next_offset if offset is None else offset
        if isinstance(records, (list, tuple)) and len(records) != 1:
            req = pb.EphemeralStreamRequest(ingest_record_batch=pb.IngestRecordBatchRequest(
                offset_id=off,
                proto_encoded_batch=pb.ProtoEncodedRecordBatch(records=list(records))))
        else:
            rec = records[0] if isinstance(records, (list, tuple)) else records
            req = pb.EphemeralStreamRequest(ingest_record=pb.IngestRecordRequest(
                offset_id=off, proto_encoded_record=rec))
        self.send(req)
        self.next_offset = off + 1
        return off

    def wait_ack(self, offset, timeout=10):
        """Waits until an ack >= offset arrives; raises CallEnded if the call ends first."""
        deadline = time.time() + timeout
        while not (self.acks and self.acks[-1] is not None and self.acks[-1] >= offset):
            left = deadline - time.time()
            if left <= 0:
                raise TimeoutError(f"no ack for {offset}; acks={self.acks[-5:]}")
            try:
                ev = self.next_event(left)
            except queue.Empty:
                raise TimeoutError(f"no ack for {offset}; acks={self.acks[-5:]}") from None
            if ev[0] == "status":
                raise CallEnded(ev[1], ev[2])
        return self.acks[-1]

    def wait_status(self, timeout=10):
        """Drains responses until the call ends; returns (code, details)."""
        deadline = time.time() + timeout
        while self.status is None:
            left = deadline - time.time()
            if left <= 0:
                raise TimeoutError(f"call did not end; acks={self.acks[-5:]}")
            try:
                self.next_event(left)
            except queue.Empty:
                raise TimeoutError(f"call did not end; acks={self.acks[-5:]}") from None
        return self.status

    def collect_for(self, seconds):
        """Collects events for a while (or until the call ends)."""
        deadline = time.time() + seconds
        while self.status is None:
            left = deadline - time.time()
            if left <= 0:
                break
            try:
                self.next_event(left)
            except queue.Empty:
                break


def no_auth_call(srv, table="main.default.t"):
    return srv.call(table=table)


def make_descriptor(fields, name="Rec", nested=()):
    """fields: [(name, number, type, label, type_name)]; nested: DescriptorProtos."""
    d = descriptor_pb2.DescriptorProto(name=name)
    for f in fields:
        fname, num, ftype, label = f[:4]
        fd = d.field.add(name=fname, number=num, type=ftype, label=label)
        if len(f) > 4 and f[4]:
            fd.type_name = f[4]
    for n in nested:
        d.nested_type.add().CopyFrom(n)
    return d
