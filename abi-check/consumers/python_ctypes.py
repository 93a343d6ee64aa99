#!/usr/bin/env python3
"""Proof consumer: CPython drives libzerobus.so.1 through plain ctypes (no glue).

Starts zerobus-local (--no-auth), opens a JSON stream on main.default.abi_python
with a headers provider written in Python (it runs on a LIBRARY thread: ctypes
takes the GIL for it), ingests 1,000 records, receives the 1,000 acks through
on_ack callbacks run by zerobus_stream_poll() on this (main) thread, flushes,
closes, and reads the row count back from SQLite (exactly 1,000, ids 0..999 in
order).

What the ABI asks of a ctypes binding, and how it is met here:
  - ownership: the CFUNCTYPE thunks must outlive every call the library may make;
    the library says when with user_data_free (called exactly once), so the
    thunks live in a registry entry keyed by user_data and are dropped there;
  - errors: every fallible call takes a zerobus_error** and the caller frees it;
    turned into a Python exception carrying code, name, message, retryable flag;
  - threads: acks/errors/logs never arrive on a library thread (poll runs them);
    only the headers provider does, and it may not call stream functions.

env: ZEROBUS_LIB (default build/plain/src/libzerobus.so.1),
     ZEROBUS_LOCAL_BIN (default build/plain/server/zerobus-local)
"""
import ctypes
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("BUILD", os.path.join(ROOT, "build", "plain"))
LIB = os.environ.get("ZEROBUS_LIB", os.path.join(BUILD, "src", "libzerobus.so.1"))
SERVER = os.environ.get("ZEROBUS_LOCAL_BIN", os.path.join(BUILD, "server", "zerobus-local"))
TABLE = "main.default.abi_python"
N = 1000

ZEROBUS_OK = 0
ZEROBUS_ERR_INVALID_RECORD = 7
ZEROBUS_STATE_CLOSED = 5

c_err_p = ctypes.c_void_p  # zerobus_error * (opaque)

ON_ACK = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64)
ON_ERROR = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64, c_err_p)
ON_LOG = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int32, ctypes.c_char_p)
HEADERS = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p)
USER_DATA_FREE = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
ON_ACK_RANGE = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64)
ON_THREAD_START = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_char_p)
ON_THREAD_STOP = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


class Callbacks(ctypes.Structure):
    """zerobus_callbacks as this binding knows it (struct_size = its sizeof)."""
    _fields_ = [("struct_size", ctypes.c_uint32), ("user_data", ctypes.c_void_p),
                ("on_ack", ON_ACK), ("on_error", ON_ERROR), ("on_log", ON_LOG),
                ("headers", HEADERS), ("user_data_free", USER_DATA_FREE),
                ("on_ack_range", ON_ACK_RANGE), ("on_thread_start", ON_THREAD_START),
                ("on_thread_stop", ON_THREAD_STOP)]


class Stats(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_uint32), ("state", ctypes.c_int32)] + [
        (n, ctypes.c_int64) for n in (
            "records_queued", "bytes_queued", "records_sent", "bytes_sent", "records_acked",
            "bytes_acked", "records_resent", "requests_sent", "acks_received", "reconnects",
            "recovery_attempts", "inflight_records", "inflight_bytes", "last_offset",
            "acked_offset", "records_failed")]


lib = ctypes.CDLL(LIB)


def proto(name, restype, *argtypes):
    f = getattr(lib, name)
    f.restype, f.argtypes = restype, list(argtypes)
    return f


P = ctypes.POINTER
proto("zerobus_abi_version", ctypes.c_int32)
proto("zerobus_status_name", ctypes.c_char_p, ctypes.c_int32)
proto("zerobus_error_code", ctypes.c_int32, c_err_p)
proto("zerobus_error_message", ctypes.c_char_p, c_err_p)
proto("zerobus_error_retryable", ctypes.c_int32, c_err_p)
proto("zerobus_error_destroy", None, c_err_p)
proto("zerobus_options_new", ctypes.c_int32, P(ctypes.c_void_p))
proto("zerobus_options_set", ctypes.c_int32, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p,
      P(c_err_p))
proto("zerobus_options_destroy", None, ctypes.c_void_p)
proto("zerobus_callbacks_init", None, P(Callbacks), ctypes.c_size_t)
proto("zerobus_headers_add", ctypes.c_int32, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p)
proto("zerobus_sdk_new", ctypes.c_int32, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p,
      P(ctypes.c_void_p), P(c_err_p))
proto("zerobus_sdk_destroy", None, ctypes.c_void_p)
proto("zerobus_stream_create", ctypes.c_int32, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p,
      ctypes.c_size_t, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p, P(Callbacks),
      P(ctypes.c_void_p), P(c_err_p))
proto("zerobus_stream_ingest", ctypes.c_int32, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t,
      ctypes.c_uint32, P(ctypes.c_int64), P(c_err_p))
proto("zerobus_stream_poll", ctypes.c_int32, ctypes.c_void_p, ctypes.c_int32)
proto("zerobus_stream_flush", ctypes.c_int32, ctypes.c_void_p, P(c_err_p))
proto("zerobus_stream_close", ctypes.c_int32, ctypes.c_void_p, P(c_err_p))
proto("zerobus_stream_destroy", None, ctypes.c_void_p)
proto("zerobus_stream_state", ctypes.c_int32, ctypes.c_void_p)
proto("zerobus_stream_get_stats", ctypes.c_int32, ctypes.c_void_p, P(Stats))


class ZerobusError(Exception):
    def __init__(self, status, message, retryable):
        self.status = status
        self.name = lib.zerobus_status_name(status).decode()
        self.retryable = bool(retryable)
        super().__init__("%s: %s" % (self.name, message))


def check(status, err):
    """Raise for a failed call; always frees the error object the call produced."""
    if err.value:
        e = ZerobusError(lib.zerobus_error_code(err), lib.zerobus_error_message(err).decode(),
                         lib.zerobus_error_retryable(err))
        lib.zerobus_error_destroy(err)
        err.value = None
        raise e
    if status != ZEROBUS_OK:
        raise ZerobusError(status, "(no error detail)", 0)


# user_data -> the Python objects the library may still call (released by user_data_free)
_registry = {}
_registry_lock = threading.Lock()


class StreamHandlers:
    def __init__(self, table):
        self.table = table
        self.acked = []
        self.errors = []
        self.header_threads = set()
        self.thread_events = []  # ("start", ident, name) / ("stop", ident), in call order
        self.freed = 0

    def headers(self, _ud, h):
        # Library thread: only zerobus_headers_* calls on `h` are allowed here.
        self.header_threads.add(threading.get_ident())
        if lib.zerobus_headers_add(h, b"authorization", b"Bearer abi-python") != ZEROBUS_OK:
            return 1
        return lib.zerobus_headers_add(h, b"x-databricks-zerobus-table-name",
                                       self.table.encode())

    def make_callbacks(self):
        cb = Callbacks()
        lib.zerobus_callbacks_init(ctypes.byref(cb), ctypes.sizeof(cb))
        key = id(self)
        thunks = (ON_ACK(lambda ud, off: self.acked.append(off)),
                  ON_ERROR(lambda ud, off, e: self.errors.append(
                      (off, lib.zerobus_error_code(e)))),
                  ON_LOG(lambda ud, lvl, msg: None),
                  HEADERS(self.headers),
                  USER_DATA_FREE(self._free),
                  # The library thread that runs the headers provider (the engine)
                  # announces itself first and says goodbye last.
                  ON_THREAD_START(lambda ud, name: self.thread_events.append(
                      ("start", threading.get_ident(), name.decode()))),
                  ON_THREAD_STOP(lambda ud: self.thread_events.append(
                      ("stop", threading.get_ident()))))
        with _registry_lock:
            _registry[key] = (self, thunks)
        cb.user_data = key
        (cb.on_ack, cb.on_error, cb.on_log, cb.headers, cb.user_data_free, cb.on_thread_start,
         cb.on_thread_stop) = thunks
        return cb

    def _free(self, ud):
        self.freed += 1
        with _registry_lock:
            # Dropping the thunks while one of them is on the stack is fine: ctypes
            # keeps the running one alive until it returns.
            _registry.pop(ud, None)


def start_server(db):
    proc = subprocess.Popen([SERVER, "--no-auth", "--port", "0", "--http-port", "0", "--db", db],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line.startswith("zerobus-local "):
        proc.kill()
        raise RuntimeError("zerobus-local did not start: %r %s" % (line, proc.stderr.read()))
    parts = dict(p.split("=", 1) for p in line.split()[1:])
    return proc, "http://" + parts["grpc"], "http://" + parts["http"]


def main():
    assert lib.zerobus_abi_version() == 1
    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "python.db")
        server, endpoint, workspace = start_server(db)
        try:
            run(endpoint, workspace)
        finally:
            server.send_signal(signal.SIGTERM)
            rc = server.wait(timeout=30)
        assert rc == 0, "zerobus-local exited with %d" % rc
        con = sqlite3.connect(db)
        count = con.execute('SELECT count(*) FROM "%s"' % TABLE).fetchone()[0]
        ids = [r[0] for r in con.execute('SELECT id FROM "%s" ORDER BY rowid' % TABLE)]
        con.close()
        assert count == N, "stored rows %d != %d" % (count, N)
        assert ids == list(range(N)), "stored ids are not 0..%d in order" % (N - 1)
        print("python_ctypes: stored rows %d, ids 0..%d in order" % (count, N - 1))


def run(endpoint, workspace):
    err = c_err_p()
    opts = ctypes.c_void_p()
    check(lib.zerobus_options_new(ctypes.byref(opts)), err)
    check(lib.zerobus_options_set(opts, b"record_type", b"json", ctypes.byref(err)), err)
    try:
        check(lib.zerobus_options_set(opts, b"record_typo", b"json", ctypes.byref(err)), err)
        raise AssertionError("unknown option accepted")
    except ZerobusError as e:
        assert e.name == "ZEROBUS_ERR_UNKNOWN_OPTION" and not e.retryable, e
    sdk = ctypes.c_void_p()
    check(lib.zerobus_sdk_new(endpoint.encode(), workspace.encode(), None, ctypes.byref(sdk),
                              ctypes.byref(err)), err)
    handlers = StreamHandlers(TABLE)
    cb = handlers.make_callbacks()
    stream = ctypes.c_void_p()
    check(lib.zerobus_stream_create(sdk, TABLE.encode(), None, 0, None, None, opts,
                                    ctypes.byref(cb), ctypes.byref(stream), ctypes.byref(err)),
          err)
    lib.zerobus_options_destroy(opts)  # copied by create; cb was copied too
    del cb
    assert handlers.header_threads and threading.get_ident() not in handlers.header_threads, \
        "headers provider must run on a library thread"

    offset = ctypes.c_int64(-1)
    for i in range(N):
        rec = b'{"id": %d, "lang": "python"}' % i
        check(lib.zerobus_stream_ingest(stream, rec, len(rec), 0, ctypes.byref(offset),
                                        ctypes.byref(err)), err)
        assert offset.value == i, (offset.value, i)
    try:
        check(lib.zerobus_stream_ingest(stream, b"[1,2]", 5, 0, ctypes.byref(offset),
                                        ctypes.byref(err)), err)
        raise AssertionError("non-object JSON accepted")
    except ZerobusError as e:
        assert e.status == ZEROBUS_ERR_INVALID_RECORD, e

    polls = 0
    while len(handlers.acked) < N and polls < 600:
        n = lib.zerobus_stream_poll(stream, 100)
        assert n >= 0, "poll failed: %d" % n
        polls += 1
    assert handlers.acked == list(range(N)), "acks: %d, first wrong at %s" % (
        len(handlers.acked),
        next((i for i, o in enumerate(handlers.acked) if o != i), None))
    check(lib.zerobus_stream_flush(stream, ctypes.byref(err)), err)
    stats = Stats()
    stats.struct_size = ctypes.sizeof(Stats)
    check(lib.zerobus_stream_get_stats(stream, ctypes.byref(stats)), err)
    assert stats.struct_size == ctypes.sizeof(Stats), "struct_size written back %d" % (
        stats.struct_size)
    assert stats.records_acked == N and stats.acked_offset == N - 1 and stats.inflight_records == 0
    check(lib.zerobus_stream_close(stream, ctypes.byref(err)), err)
    assert lib.zerobus_stream_state(stream) == ZEROBUS_STATE_CLOSED
    assert not handlers.errors, handlers.errors
    lib.zerobus_stream_destroy(stream)
    assert handlers.freed == 1 and id(handlers) not in _registry, "user_data_free not called once"
    # One library thread ran our callbacks (the engine, for the headers provider):
    # on_thread_start before its first headers call, on_thread_stop after the last.
    assert len(handlers.thread_events) == 2, handlers.thread_events
    (start, t1, name), (stop, t2) = handlers.thread_events
    assert (start, stop, name) == ("start", "stop", "zerobus-engine") and t1 == t2, \
        handlers.thread_events
    assert handlers.header_threads == {t1}, "headers provider ran off the hooked thread"
    lib.zerobus_sdk_destroy(sdk)
    print("python_ctypes: %d acks in order via on_ack (poll on the main thread, %d polls), "
          "headers provider ran on %d library thread(s), between its on_thread_start('%s') "
          "and on_thread_stop" % (len(handlers.acked), polls, len(handlers.header_threads), name))


if __name__ == "__main__":
    try:
        main()
    except (AssertionError, ZerobusError, RuntimeError) as e:
        print("python_ctypes: FAILED: %s" % e)
        sys.exit(1)
