"""Happy path: create_stream, single and batched JSON ingest, cumulative acks after
commit, storage layout, half-close, SIGTERM durability, concurrency."""
import json
import threading

import pytest

from zlclient import OK, Server, CallEnded, pb

T = "main.default.basic"


@pytest.fixture
def srv():
    s = Server("--no-auth")
    yield s
    s.kill()


def test_ready_line_and_health(srv):
    assert srv.http("GET", "/zerobus-local/health") == (200, "ok")


def test_create_returns_unique_stream_ids(srv):
    ids = set()
    for _ in range(5):
        c = srv.call(table=T)
        ids.add(c.create(T))
        c.half_close()
        assert c.wait_status()[0] == OK
    assert len(ids) == 5


def test_json_single_and_batch_stored_with_offsets(srv):
    c = srv.call(table=T)
    sid = c.create(T)
    assert c.ingest_json('{"id": 1, "name": "a"}') == 0
    assert c.ingest_json(['{"id": 2, "name": "b"}', '{"id": 3, "name": "c", "x": 1.5}']) == 1
    assert c.ingest_json(['{"id": 4, "tags": ["p", "q"], "m": {"k": 1}, "ok": true}']) == 2
    assert c.wait_ack(2) == 2
    # acks are cumulative and monotone, never beyond what was sent
    assert all(a is not None for a in c.acks)
    assert c.acks == sorted(c.acks) and c.acks[-1] == 2
    c.half_close()
    assert c.wait_status() == (OK, "")
    rows = srv.rows(T, "_zerobus_stream_id, _zerobus_offset, _zerobus_payload, id, name, x, "
                       "tags, m, ok")
    assert rows == [
        (sid, 0, '{"id": 1, "name": "a"}', 1, "a", None, None, None, None),
        (sid, 1, '{"id": 2, "name": "b"}', 2, "b", None, None, None, None),
        (sid, 2, '{"id": 3, "name": "c", "x": 1.5}', 3, "c", 1.5, None, None, None),
        (sid, 3, '{"id": 4, "tags": ["p", "q"], "m": {"k": 1}, "ok": true}', 4, None, None,
         '["p","q"]', '{"k":1}', 1),
    ]
    assert srv.rows(T, "typeof(_zerobus_payload)")[0] == ("text",)


def test_acks_are_coalesced_not_per_message(srv):
    c = srv.call(table=T)
    c.create(T)
    n = 2000
    for i in range(n):
        c.ingest_json(json.dumps({"i": i}))
    assert c.wait_ack(n - 1, timeout=30) == n - 1
    c.half_close()
    assert c.wait_status()[0] == OK
    assert srv.row_count(T) == n
    assert len(c.acks) < n / 2, len(c.acks)
    assert srv.counters()["tables"][T]["acks_sent"] == len(c.acks)


def test_sigterm_keeps_everything_acked(tmp_path):
    db = str(tmp_path / "d.db")
    s = Server("--no-auth", db=db)
    c = s.call(table=T)
    c.create(T)
    for i in range(300):
        c.ingest_json(['{"i": %d}' % (2 * i), '{"i": %d}' % (2 * i + 1)])
    acked = c.wait_ack(299, timeout=30)
    assert acked == 299
    assert s.stop() == 0
    code, details = c.wait_status()
    assert code.name in ("UNAVAILABLE", "OK"), (code, details)
    s2 = Server("--no-auth", db=db)
    try:
        assert s2.row_count(T) == 600
        assert [r[0] for r in s2.rows(T, "i")] == list(range(600))
    finally:
        s2.kill()


def test_sigterm_ends_live_call_with_unavailable(srv):
    c = srv.call(table=T)
    c.create(T)
    c.ingest_json('{"a": 1}')
    c.wait_ack(0)
    assert srv.stop() == 0
    code, details = c.wait_status()
    assert code.name == "UNAVAILABLE", (code, details)
    assert "shutting down" in details


def test_16_concurrent_streams_exact_counts(srv):
    errors = []

    def run(k):
        try:
            table = f"main.conc.t{k % 4}"
            c = srv.call(table=table)
            c.create(table)
            for i in range(50):
                c.ingest_json([json.dumps({"k": k, "i": i, "j": j}) for j in range(10)])
            c.wait_ack(49, timeout=60)
            c.half_close()
            assert c.wait_status(30)[0] == OK
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    ts = [threading.Thread(target=run, args=(k,)) for k in range(16)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    assert errors == []
    for t in range(4):
        assert srv.row_count(f"main.conc.t{t}") == 4 * 500
        rows = srv.rows(f"main.conc.t{t}", "k, i, j, _zerobus_offset")
        for k in range(t, 16, 4):
            mine = [r for r in rows if r[0] == k]
            assert [r[3] for r in mine] == list(range(500))
    cnt = srv.counters()
    assert cnt["creates"] == 16 and cnt["records"] == 8000 and cnt["requests"] == 800
