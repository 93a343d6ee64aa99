"""Fault injection per server/FAULTS.md: one test per fault kind, exact effects."""
import json
import queue
import time

import pytest

from zlclient import OK, Server, CallEnded

T = "f.s.t"


@pytest.fixture
def srv():
    s = Server("--no-auth")
    yield s
    s.kill()


def open_stream(srv, table=T):
    c = srv.call(table=table)
    sid = c.create(table)
    return c, sid


def rec(i):
    return json.dumps({"i": i})


def wait_rows(srv, table, n, timeout=5):
    deadline = time.time() + timeout
    while srv.row_count(table) < n and time.time() < deadline:
        time.sleep(0.02)
    time.sleep(0.1)  # and nothing more arrives
    return srv.row_count(table)


def test_fail_create_then_normal(srv):
    srv.set_faults({"tables": {T: [{"fail_create": 14, "message": "try later"}]}})
    c = srv.call(table=T)
    with pytest.raises(CallEnded) as e:
        c.create(T)
    assert (e.value.code.name, e.value.details) == ("UNAVAILABLE", "try later")
    c2, _ = open_stream(srv)  # the script is used up: normal call
    c2.ingest_json(rec(0))
    assert c2.wait_ack(0) == 0
    cnt = srv.counters()["tables"][T]
    assert (cnt["create_attempts"], cnt["creates"]) == (2, 1)
    assert srv.row_count(T) == 1


def test_fail_create_by_name_and_repeat(srv):
    srv.set_faults({"tables": {T: [{"fail_create": "RESOURCE_EXHAUSTED", "repeat": 2}, {}]}})
    codes = []
    for _ in range(4):
        c = srv.call(table=T)
        try:
            c.create(T)
            codes.append("OK")
            c.half_close()
            c.wait_status()
        except CallEnded as e:
            codes.append(e.value.code.name if hasattr(e, "value") else e.code.name)
    assert codes == ["RESOURCE_EXHAUSTED", "RESOURCE_EXHAUSTED", "OK", "OK"]


def test_cursor_is_per_table_and_survives_reconnects(srv):
    other = "f.s.other"
    srv.set_faults({"tables": {T: [{}, {"fail_create": 13}]}})
    c, _ = open_stream(srv, other)  # other table: unaffected
    c, _ = open_stream(srv, T)      # entry 0: normal
    c.cancel()
    c = srv.call(table=T, channel=srv.channel())  # new connection: entry 1
    with pytest.raises(CallEnded) as e:
        c.create(T)
    assert e.value.code.name == "INTERNAL"


def test_post_replaces_and_resets_cursor_delete_clears(srv):
    srv.set_faults({"tables": {T: [{"fail_create": 13}]}})
    srv.set_faults({"tables": {T: [{"fail_create": 10}]}})
    c = srv.call(table=T)
    with pytest.raises(CallEnded) as e:
        c.create(T)
    assert e.value.code.name == "ABORTED"
    srv.set_faults({"tables": {T: [{"fail_create": 10}]}})
    srv.clear_faults()
    open_stream(srv)


def test_bad_script_is_400(srv):
    for bad in ['{"tables": {"x.y": []}}', '{"tables": {"a.b.c": [{"bogus": 1}]}}',
                '{"tables": {"a.b.c": [{"fail_at_request": 1}]}}',
                '{"tables": {"a.b.c": [{"malformed_ack": "sideways", "after_request": 0}]}}',
                'not json']:
        st, body = srv.http("POST", "/zerobus-local/faults", bad)
        assert st == 400, bad
        assert json.loads(body)["error"] == "invalid_fault_script"


def test_faults_file_at_start(tmp_path):
    f = tmp_path / "faults.json"
    f.write_text(json.dumps({"tables": {T: [{"fail_create": 16}]}}))
    s = Server("--no-auth", "--faults", str(f))
    try:
        c = s.call(table=T)
        with pytest.raises(CallEnded) as e:
            c.create(T)
        assert e.value.code.name == "UNAUTHENTICATED"
    finally:
        s.kill()


def test_hang_headers(srv):
    srv.set_faults({"tables": {T: [{"hang_headers": True}]}})
    c = srv.call(table=T)
    with pytest.raises(queue.Empty):
        c.create(T, timeout=1.0)
    assert c.status is None and c.acks == []
    c.cancel()
    assert c.wait_status()[0].name == "CANCELLED"
    c2, _ = open_stream(srv)  # next call is normal
    c2.ingest_json(rec(0))
    assert c2.wait_ack(0) == 0
    assert srv.row_count(T) == 1


def test_fail_at_request(srv):
    srv.set_faults({"tables": {T: [{"fail_at_request": 3, "status": 10}]}})
    c, sid = open_stream(srv)
    for i in range(6):
        c.ingest_json(rec(i))
    code, details = c.wait_status()
    assert code.name == "ABORTED" and "request 3" in details
    # requests before 3 were committed and acked before the status; 3.. not stored
    assert c.acks[-1] == 2
    assert srv.rows(T, "i, _zerobus_offset") == [(0, 0), (1, 1), (2, 2)]


def test_drop_at_request(srv):
    srv.set_faults({"tables": {T: [{"drop_at_request": 2}]}})
    c, _ = open_stream(srv)
    for i in range(5):
        c.ingest_json(rec(i))
    code, details = c.wait_status()
    assert code.name == "UNAVAILABLE" and "dropped" in details
    assert wait_rows(srv, T, 2) == 2
    assert [r[0] for r in srv.rows(T, "i")] == [0, 1]


def test_ack_delay(srv):
    srv.set_faults({"tables": {T: [{"ack_delay_ms": 400}]}})
    c, _ = open_stream(srv)
    t0 = time.time()
    c.ingest_json(rec(0))
    assert wait_rows(srv, T, 1) == 1  # stored at once ...
    assert c.acks == []
    assert c.wait_ack(0) == 0         # ... acked 400 ms after commit
    assert time.time() - t0 >= 0.38
    t1 = time.time()
    c.ingest_json(rec(1))
    c.wait_ack(1)
    assert time.time() - t1 >= 0.38


def test_no_ack(srv):
    srv.set_faults({"tables": {T: [{"no_ack": True}]}})
    c, _ = open_stream(srv)
    for i in range(4):
        c.ingest_json(rec(i))
    assert wait_rows(srv, T, 4) == 4
    with pytest.raises(TimeoutError):
        c.wait_ack(0, timeout=0.5)
    c.half_close()
    assert c.wait_status()[0] == OK
    assert c.acks == []


def test_ack_prefix(srv):
    srv.set_faults({"tables": {T: [{"ack_prefix": 3}]}})
    c, _ = open_stream(srv)
    for i in range(6):
        c.ingest_json(rec(i))
    assert c.wait_ack(2) == 2
    assert wait_rows(srv, T, 6) == 6
    c.collect_for(0.4)
    assert max(c.acks) == 2
    c.half_close()
    assert c.wait_status()[0] == OK
    assert max(c.acks) == 2


@pytest.mark.parametrize("kind,expected", [("backwards", 1), ("duplicate", 2),
                                           ("beyond", 7), ("no_offset", None)])
def test_malformed_ack(srv, kind, expected):
    srv.set_faults({"tables": {T: [{"malformed_ack": kind, "after_request": 2}]}})
    c, _ = open_stream(srv)
    for i in range(3):
        c.ingest_json(rec(i))
    c.wait_ack(2)
    assert c.acks[-1] == 2
    c.next_event(5)  # the bad ack follows right after the normal ack of request 2
    assert c.acks[-1] == expected
    assert all(a is not None and a <= 2 for a in c.acks[:-1])
    # then the stream continues normally: the next ack is 3
    n = len(c.acks)
    c.ingest_json(rec(3))
    while len(c.acks) == n:
        c.next_event(5)
    assert c.acks[n:] == [3]
    c.half_close()
    assert c.wait_status()[0] == OK
    assert srv.row_count(T) == 4


def test_malformed_backwards_at_zero_is_minus_one(srv):
    srv.set_faults({"tables": {T: [{"malformed_ack": "backwards", "after_request": 0}]}})
    c, _ = open_stream(srv)
    c.ingest_json(rec(0))
    c.wait_ack(0)
    c.next_event(5)
    assert c.acks == [0, -1]


def test_close_signal(srv):
    srv.set_faults({"tables": {T: [{"close_signal_ms": 500, "after_request": 1}]}})
    c, _ = open_stream(srv)
    c.ingest_json(rec(0))
    c.ingest_json(rec(1))
    c.wait_ack(1)
    while not c.signals:
        c.next_event(5)
    t0 = time.time()
    assert c.signals == [500]
    assert c.acks[-1] == 1
    c.ingest_json(rec(2))  # still served until the deadline
    assert c.wait_ack(2) == 2
    code, details = c.wait_status()
    assert code.name == "UNAVAILABLE" and "close signal" in details
    assert 0.3 <= time.time() - t0 <= 3.0
    assert srv.row_count(T) == 3


def test_reject_over_bytes(srv):
    srv.set_faults({"tables": {T: [{"reject_over_bytes": 100}]}})
    c, _ = open_stream(srv)
    c.ingest_json(rec(0))
    c.wait_ack(0)
    c.ingest_json(json.dumps({"big": "x" * 200}))
    code, details = c.wait_status()
    assert code.name == "INVALID_ARGUMENT" and "exceeds" in details
    assert srv.row_count(T) == 1


def test_max_records_per_sec(srv):
    srv.set_faults({"tables": {T: [{"max_records_per_sec": 200}]}})
    c, _ = open_stream(srv)
    t0 = time.time()
    for b in range(10):
        c.ingest_json([rec(10 * b + j) for j in range(10)])
    assert c.wait_ack(9, timeout=10) == 9
    elapsed = time.time() - t0
    assert 0.4 <= elapsed <= 2.0, elapsed  # 100 records at 200/s
    assert srv.row_count(T) == 100


def test_combined_keys(srv):
    srv.set_faults({"tables": {T: [{"ack_delay_ms": 200, "fail_at_request": 2,
                                    "status": "INTERNAL"}]}})
    c, _ = open_stream(srv)
    t0 = time.time()
    for i in range(3):
        c.ingest_json(rec(i))
    code, _ = c.wait_status()
    assert code.name == "INTERNAL"
    assert c.acks and c.acks[-1] == 1
    assert time.time() - t0 >= 0.18


def run_chaos_calls(s, ncalls=12, nreq=6):
    """Each call sends requests one at a time, waiting for each ack, so what it sees
    depends only on the faults drawn (not on timing)."""
    outcomes = []
    for k in range(ncalls):
        c = s.call(table=T)
        try:
            c.create(T, timeout=1.0)
        except queue.Empty:
            c.cancel()
            outcomes.append(("hang",))
            continue
        except CallEnded as e:
            outcomes.append(("create", e.code.name))
            continue
        for i in range(nreq):
            c.ingest_json(rec(i))
            try:
                c.wait_ack(i, timeout=3)
            except (CallEnded, TimeoutError):
                break
        if c.status is None:
            c.half_close()
        try:
            code, _ = c.wait_status(timeout=5)
        except TimeoutError:
            c.cancel()
            code = None
        acks = c.acks
        bad = c.ack_beyond_sent or any(a is None for a in acks) or \
            any(b <= a for a, b in zip(acks, acks[1:]) if a is not None and b is not None)
        name = code.name if code else "timeout"
        if c.signals:  # OK or UNAVAILABLE depending on how fast the client finishes
            name = "after-signal"
        outcomes.append(("call", name, bool(c.signals), bad))
    return outcomes


def test_chaos_is_deterministic_from_seed():
    runs = []
    for _ in range(2):
        s = Server("--no-auth", "--chaos-seed", "42", "--chaos-rate", "0.25")
        try:
            runs.append(run_chaos_calls(s))
        finally:
            s.kill()
    assert runs[0] == runs[1]
    faulted = [o for o in runs[0] if o != ("call", "OK", False, False)]
    assert len(faulted) >= 3, runs[0]
    # only retryable statuses without --chaos-fatal
    fatal = {"INVALID_ARGUMENT", "PERMISSION_DENIED", "NOT_FOUND", "UNAUTHENTICATED"}
    assert not any(o[1] in fatal for o in runs[0] if len(o) > 1)


def test_chaos_rate_zero_is_quiet():
    s = Server("--no-auth", "--chaos-seed", "1", "--chaos-rate", "0")
    try:
        assert run_chaos_calls(s, 3) == [("call", "OK", False, False)] * 3
    finally:
        s.kill()
