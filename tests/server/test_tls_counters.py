"""TLS on both sides with a throwaway CA; the counters endpoint; storage modes."""
import json
import os
import subprocess
import tempfile

import grpc
import pytest

from zlclient import OK, Server, CallEnded

T = "tls.s.t"


@pytest.fixture(scope="module")
def pki():
    from zlclient import temp_dir
    d = temp_dir("zl-pki-")
    def run(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "2", "-subj", "/CN=zerobus-local test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=localhost")
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf")
    return tuple(os.path.join(d, n) for n in ("ca.pem", "server.pem", "server.key"))


def test_tls_grpc_and_https_token(pki):
    s = Server(tls=pki)
    try:
        assert s.http_url.startswith("https://")
        tok = s.token(T)  # over HTTPS, verified against the CA
        c = s.call(table=T, token=tok)
        c.create(T)
        c.ingest_json(['{"a": 1}', '{"a": 2}'])
        assert c.wait_ack(0) == 0
        c.half_close()
        assert c.wait_status()[0] == OK
        assert s.rows(T, "a") == [(1,), (2,)]
        # a plaintext client cannot talk to the TLS port
        ch = grpc.insecure_channel(s.target)
        from zlclient import Call
        p = Call(ch, [("x-databricks-zerobus-table-name", T), ("authorization", "Bearer " + tok)])
        with pytest.raises(CallEnded) as e:
            p.create(T)
        assert e.value.code.name == "UNAVAILABLE"
    finally:
        s.kill()


def test_tls_wrong_ca_fails(pki, tmp_path):
    s = Server("--no-auth", tls=pki)
    try:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                        str(tmp_path / "o.key"), "-out", str(tmp_path / "o.pem"), "-days", "1",
                        "-subj", "/CN=other"], check=True, capture_output=True)
        s.tls = (str(tmp_path / "o.pem"),) + pki[1:]
        c = s.call(table=T)
        with pytest.raises(CallEnded) as e:
            c.create(T)
        assert e.value.code.name == "UNAVAILABLE"
    finally:
        s.kill()


def test_tls_needs_both_files():
    import subprocess as sp
    from zlclient import server_bin
    r = sp.run([server_bin(), "--tls-cert", "/nonexistent"], capture_output=True)
    assert r.returncode == 2 and b"go together" in r.stderr


def test_counters_exact():
    s = Server()
    try:
        t1, t2 = "c.s.one", "c.s.two"
        tok = s.token(t1)
        s.token(t2)
        c = s.call(table=t1, token=tok)
        c.create(t1)
        sizes = []
        from zlclient import pb
        for recs in (['{"a":1}'], ['{"a":2}', '{"a":3}'], ['{"a":4}', '{"a":5}', '{"a":6}']):
            off = c.ingest_json(recs)
            if len(recs) == 1:
                m = pb.EphemeralStreamRequest(ingest_record=pb.IngestRecordRequest(
                    offset_id=off, json_record=recs[0]))
            else:
                m = pb.EphemeralStreamRequest(ingest_record_batch=pb.IngestRecordBatchRequest(
                    offset_id=off, json_batch=pb.JsonRecordBatch(records=recs)))
            sizes.append(m.ByteSize())
        c.wait_ack(2)
        c.half_close()
        assert c.wait_status()[0] == OK
        bad = s.call(table=t2, token=tok)  # token for t1 on t2
        with pytest.raises(CallEnded):
            bad.create(t2)
        cnt = s.counters()
        assert cnt["tokens_issued"] == 2
        assert cnt["calls"] == 2
        assert cnt["connections"] == 2  # each Server.call() opens its own channel
        assert (cnt["create_attempts"], cnt["creates"]) == (1, 1)
        assert (cnt["requests"], cnt["records"], cnt["bytes"]) == (3, 6, sum(sizes))
        assert cnt["acks_sent"] == len(c.acks) and 1 <= len(c.acks) <= 3
        one = cnt["tables"][t1]
        assert one == {"create_attempts": 1, "creates": 1, "requests": 3, "records": 6,
                       "bytes": sum(sizes), "acks_sent": len(c.acks), "auth_failures": 0}
        assert cnt["tables"][t2]["auth_failures"] == 1
        assert cnt["tables"][t2]["create_attempts"] == 0
    finally:
        s.kill()


def test_store_null_acks_without_storing():
    s = Server("--no-auth", "--store", "null")
    try:
        c = s.call(table=T)
        c.create(T)
        for i in range(100):
            c.ingest_json('{"i": %d}' % i)
        assert c.wait_ack(99) == 99
        c.half_close()
        assert c.wait_status()[0] == OK
        assert not os.path.exists(s.db)
        assert s.counters()["records"] == 100
    finally:
        s.kill()


def test_store_memory_acks_without_file():
    s = Server("--no-auth", "--store", "memory")
    try:
        c = s.call(table=T)
        c.create(T)
        c.ingest_json(['{"i": 1}', '{"i": 2}'])
        assert c.wait_ack(0) == 0
        assert not os.path.exists(s.db)
    finally:
        s.kill()


def test_help_documents_every_flag():
    from zlclient import server_bin
    out = subprocess.run([server_bin(), "--help"], capture_output=True, text=True).stdout
    for flag in ["--host", "--port", "--http-port", "--db", "--store", "--no-auth", "--client-id",
                 "--client-secret", "--token-ttl", "--table", "--config", "--faults",
                 "--chaos-seed", "--chaos-rate", "--chaos-fatal", "--ack-interval-ms",
                 "--tls-cert", "--tls-key", "--max-message-bytes", "--strict-tables",
                 "--workers", "--verbose"]:
        assert flag in out, flag
    r = subprocess.run([server_bin(), "--bogus"], capture_output=True, text=True)
    assert r.returncode == 2 and "unknown option" in r.stderr


@pytest.mark.parametrize("args,code,msg", [
    (["--table", "a.b.c"], 2, "expected"),
    (["--table", "a.b=x:int"], 2, "catalog.schema.table"),
    (["--table", "a.b.c=x:int:maybe"], 2, "third part"),
    (["--config", "/nonexistent.json"], 2, "cannot open"),
    (["--store", "disk"], 2, "--store"),
    (["--port", "70000"], 2, "not an integer"),
    (["--chaos-rate", "2"], 2, "chaos-rate"),
    (["--faults", "/nonexistent.json"], 2, "cannot open"),
    (["--db", "/nonexistent-dir/x.db"], 1, "cannot open database"),
])
def test_bad_command_lines(args, code, msg):
    from zlclient import server_bin
    r = subprocess.run([server_bin(), "--port", "0", "--http-port", "0", *args],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == code, r.stderr
    assert msg in r.stderr
    assert r.stdout == ""  # no ready line


def test_port_in_use_exits_1():
    s = Server("--no-auth")
    try:
        from zlclient import server_bin
        r = subprocess.run([server_bin(), "--port", str(s.grpc_port), "--http-port", "0",
                            "--store", "null"], capture_output=True, text=True, timeout=30)
        assert r.returncode == 1 and "cannot listen" in r.stderr
        r = subprocess.run([server_bin(), "--port", "0", "--http-port", str(s.http_port),
                            "--store", "null"], capture_output=True, text=True, timeout=30)
        assert r.returncode == 1 and "cannot listen" in r.stderr
    finally:
        s.kill()


def test_bad_faults_file_content(tmp_path):
    from zlclient import server_bin
    f = tmp_path / "f.json"
    f.write_text('{"tables": {"a.b.c": [{"nope": 1}]}}')
    r = subprocess.run([server_bin(), "--faults", str(f)], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 2 and "unknown key 'nope'" in r.stderr
