"""Core logs reach Python logging (logger "zerobus"); ZEROBUS_LOG / RUST_LOG."""
import logging
import os
import subprocess
import sys
import textwrap

from conftest import CLIENT_ID, CLIENT_SECRET
from zerobus.sdk.shared import RecordType, StreamConfigurationOptions, TableProperties

SCRIPT = textwrap.dedent('''
    import sys
    from zerobus.sdk.sync import ZerobusSdk
    from zerobus.sdk.shared import RecordType, StreamConfigurationOptions, TableProperties
    sdk = ZerobusSdk(sys.argv[1], sys.argv[2])
    with sdk.create_stream("test-client", "test-secret", TableProperties(sys.argv[3]),
                           StreamConfigurationOptions(record_type=RecordType.JSON)) as s:
        s.ingest_record_offset({"a": 1})
''')


def run(server, table, **env):
    full = dict(os.environ)
    full.pop("ZEROBUS_LOG", None)
    full.pop("RUST_LOG", None)
    full.update(env)
    return subprocess.run([sys.executable, "-c", SCRIPT, server.endpoint, server.http_url, table],
                          capture_output=True, text=True, env=full, timeout=60)


def test_zerobus_log_debug_shows_core_lines(server, table):
    r = run(server, table, ZEROBUS_LOG="debug")
    assert r.returncode == 0, r.stderr
    assert "zerobus DEBUG" in r.stderr and "created" in r.stderr
    assert "test-secret" not in r.stderr


def test_rust_log_is_an_alias(server, table):
    r = run(server, table, RUST_LOG="zerobus_sdk=debug,tokio=info")
    assert r.returncode == 0, r.stderr
    assert "zerobus DEBUG" in r.stderr


def test_quiet_by_default(server, table):
    r = run(server, table)
    assert r.returncode == 0 and r.stderr == ""


def test_logger_level_drives_the_core(server, sdk, table, caplog):
    caplog.set_level(logging.DEBUG, logger="zerobus")
    with sdk.create_stream(CLIENT_ID, CLIENT_SECRET, TableProperties(table),
                           StreamConfigurationOptions(record_type=RecordType.JSON)) as s:
        s.ingest_record_offset({"a": 1})
    msgs = [r for r in caplog.records if r.name == "zerobus"]
    assert any(r.levelno == logging.DEBUG and table in r.getMessage() for r in msgs)


def test_explicit_log_level_option(server, sdk, table, caplog):
    caplog.set_level(logging.DEBUG, logger="zerobus")
    with sdk.create_stream(CLIENT_ID, CLIENT_SECRET, TableProperties(table),
                           StreamConfigurationOptions(record_type=RecordType.JSON,
                                                      log_level="error")) as s:
        s.ingest_record_offset({"a": 1})
    assert not [r for r in caplog.records if r.name == "zerobus" and r.levelno < logging.ERROR]
