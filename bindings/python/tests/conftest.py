"""Fixtures: zerobus-local on free loopback ports with a temporary database.

The server binary is $ZEROBUS_LOCAL_BIN, else <repo>/build/plain/server/zerobus-local
($BUILD/server/zerobus-local when BUILD is set).
"""
from __future__ import annotations

import base64
import importlib
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
import uuid
from typing import Any, Dict, List, Optional, Sequence

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
CLIENT_ID = "test-client"
CLIENT_SECRET = "test-secret"

# Unity Catalog tables declared at startup (for generate_proto tests).
UC_TABLES = {
    "main.default.air_quality": "device_name:string,temp:int,humidity:bigint",
    "main.default.all_types": (
        "c_tinyint:tinyint,c_byte:byte,c_smallint:smallint,c_short:short,c_int:int,"
        "c_bigint:bigint,c_long:long,c_float:float,c_double:double,c_string:string,"
        "c_varchar:varchar(20),c_boolean:boolean,c_binary:binary,c_date:date,"
        "c_timestamp:timestamp,c_timestamp_ntz:timestamp_ntz,c_variant:variant,"
        "c_req:int:false,"
        "c_array:array<string>,c_array_struct:array<struct<x:int,y:string>>,"
        "c_map:map<string,bigint>,c_map_struct:map<int,struct<z:double>>,"
        "c_struct:struct<a:int,b:string,inner:struct<deep:boolean>,tags:array<int>>"
    ),
    "main.default.bad_decimal": "id:int,amount:decimal(10,2)",
    "main.default.bad_nested_array": "id:int,grid:array<array<int>>",
}


def server_binary() -> str:
    env = os.environ.get("ZEROBUS_LOCAL_BIN")
    if env:
        return env
    build = os.environ.get("BUILD") or os.path.join(REPO, "build", "plain")
    return os.path.join(build, "server", "zerobus-local")


class Server:
    """A running zerobus-local."""

    def __init__(self, extra_args: Sequence[str] = (), db_path: Optional[str] = None) -> None:
        self.tmpdir = tempfile.mkdtemp(prefix="zl-py-")
        self.db_path = db_path or os.path.join(self.tmpdir, "zl.db")
        args = [server_binary(), "--port", "0", "--http-port", "0", "--db", self.db_path]
        args += list(extra_args)
        self.log = open(os.path.join(self.tmpdir, "server.log"), "w")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.proc.stdout.readline().strip()
        parts = dict(p.split("=", 1) for p in line.split()[1:] if "=" in p)
        if "grpc" not in parts:
            self.proc.kill()
            raise RuntimeError("zerobus-local did not start: %r" % line)
        self.grpc = parts["grpc"]
        self.http = parts["http"]
        self.endpoint = "http://" + self.grpc
        self.http_url = "http://" + self.http

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    # --- control endpoint
    def _request(self, method: str, path: str, body: Optional[bytes] = None) -> bytes:
        req = urllib.request.Request(self.http_url + path, data=body, method=method)
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.read()

    def set_faults(self, table: str, entries: List[Dict[str, Any]]) -> None:
        self._request("POST", "/zerobus-local/faults",
                      json.dumps({"tables": {table: entries}}).encode())

    def clear_faults(self) -> None:
        self._request("DELETE", "/zerobus-local/faults")

    def counters(self) -> Dict[str, Any]:
        return json.loads(self._request("GET", "/zerobus-local/counters"))

    def table_counter(self, table: str, name: str) -> int:
        return self.counters().get("tables", {}).get(table, {}).get(name, 0)

    def token(self, table: Optional[str] = None) -> str:
        basic = base64.b64encode(("%s:%s" % (CLIENT_ID, CLIENT_SECRET)).encode()).decode()
        form = {"grant_type": "client_credentials", "scope": "all-apis"}
        if table:
            cat, sch, _ = table.split(".")
            form["authorization_details"] = json.dumps([
                {"type": "unity_catalog_privileges", "privileges": ["USE CATALOG"],
                 "object_type": "CATALOG", "object_full_path": cat},
                {"type": "unity_catalog_privileges", "privileges": ["USE SCHEMA"],
                 "object_type": "SCHEMA", "object_full_path": cat + "." + sch},
                {"type": "unity_catalog_privileges", "privileges": ["SELECT", "MODIFY"],
                 "object_type": "TABLE", "object_full_path": table}], separators=(",", ":"))
        req = urllib.request.Request(
            self.http_url + "/oidc/v1/token", data=urllib.parse.urlencode(form).encode(),
            headers={"Authorization": "Basic " + basic}, method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())["access_token"]

    # --- database
    def rows(self, table: str, columns: str = "_zerobus_payload") -> List[Any]:
        db = sqlite3.connect(self.db_path)
        try:
            cur = db.execute('SELECT %s FROM "%s" ORDER BY rowid' % (columns, table))
            out = cur.fetchall()
        except sqlite3.OperationalError as e:
            if "no such table" in str(e):
                return []
            raise
        finally:
            db.close()
        return [r[0] for r in out] if "," not in columns else out

    def payloads(self, table: str) -> List[Any]:
        return [bytes(p) if isinstance(p, (bytes, memoryview)) else p.encode()
                for p in self.rows(table)]


@pytest.fixture(scope="session")
def server():
    args: List[str] = []
    for name, cols in UC_TABLES.items():
        args += ["--table", "%s=%s" % (name, cols)]
    s = Server(args)
    yield s
    s.stop()


@pytest.fixture
def fresh_server():
    """A private server (for tests that stop it or need other flags): call with args."""
    servers: List[Server] = []

    def start(*args: str, db_path: Optional[str] = None) -> Server:
        s = Server(args, db_path=db_path)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.stop()


@pytest.fixture
def table() -> str:
    return "main.default.t_%s" % uuid.uuid4().hex[:12]


@pytest.fixture
def sdk(server):
    from zerobus.sdk.sync import ZerobusSdk

    return ZerobusSdk(server.endpoint, server.http_url)


@pytest.fixture
def aio_sdk(server):
    from zerobus.sdk.aio import ZerobusSdk

    return ZerobusSdk(server.endpoint, server.http_url)


_compiled: Dict[str, Any] = {}


def compile_proto(source: str, name: str, tmp_path) -> Any:
    """Compiles proto source with grpc_tools.protoc (or protoc) and imports it. The
    same source is compiled once per session (protobuf's default pool refuses a
    message name twice)."""
    if source not in _compiled:
        path = tmp_path / ("%s.proto" % name)
        path.write_text(source)
        _compiled[source] = compile_proto_file(str(path), str(tmp_path))
    return _compiled[source]


def compile_proto_file(proto_path: str, out_dir: str, load: bool = True) -> Any:
    proto_dir, fname = os.path.split(proto_path)
    try:
        from grpc_tools import protoc  # type: ignore

        rc = protoc.main(["protoc", "--python_out=" + out_dir, "--proto_path=" + proto_dir,
                          "--proto_path=" + os.path.join(os.path.dirname(protoc.__file__),
                                                          "_proto"), proto_path])
    except ImportError:
        rc = subprocess.call(["protoc", "--python_out=" + out_dir, "--proto_path=" + proto_dir,
                              proto_path])
    assert rc == 0, "protoc failed for %s" % proto_path
    if not load:
        return None
    if out_dir not in sys.path:
        sys.path.insert(0, out_dir)
    modname = fname[:-len(".proto")] + "_pb2"
    if modname in sys.modules:
        del sys.modules[modname]
    return importlib.import_module(modname)
