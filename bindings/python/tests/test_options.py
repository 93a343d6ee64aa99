"""Options, record types and exception classes (no server needed)."""
import pytest

import zerobus
from zerobus import _core
from zerobus.sdk.shared import (
    InvalidOptionError,
    NonRetriableException,
    RecordType,
    StreamConfigurationOptions,
    ZerobusException,
    option_defaults,
)

REFERENCE_OPTIONS = [
    "record_type", "max_inflight_records", "recovery", "recovery_timeout_ms",
    "recovery_backoff_ms", "recovery_retries", "flush_timeout_ms",
    "server_lack_of_ack_timeout_ms", "stream_paused_max_wait_time_ms",
    "callback_max_wait_time_ms",
]


def core_defaults():
    out = {}
    for i in range(_core._native.zerobus_option_count()):
        name, typ, default, scope, doc = _core._native.option_info(i)
        out[name] = (typ, default, scope)
    return out


def test_record_type_values():
    assert RecordType.PROTO == 1 and RecordType.JSON == 2


def test_defaults_come_from_the_core():
    table = core_defaults()
    opts = StreamConfigurationOptions()
    for name in REFERENCE_OPTIONS:
        assert name in table, name
        typ, default, scope = table[name]
        assert scope == "stream"
        value = getattr(opts, name)
        if default == "none":
            assert value is None
        elif name == "record_type":
            assert value == (RecordType.JSON if default == "json" else RecordType.PROTO)
        elif typ == "bool":
            assert value is (default == "true")
        else:
            assert value == int(default), name
    assert opts.ack_callback is None
    # the documented defaults (SEMANTICS.md) as the core reports them
    d = option_defaults()
    assert d["max_inflight_records"] == 1000000
    assert d["recovery_retries"] == 4
    assert d["recovery_timeout_ms"] == 15000
    assert d["recovery_backoff_ms"] == 2000
    assert d["flush_timeout_ms"] == 300000
    assert d["server_lack_of_ack_timeout_ms"] == 60000
    assert d["stream_paused_max_wait_time_ms"] is None
    assert d["callback_max_wait_time_ms"] == 5000
    assert d["record_type"] == RecordType.PROTO
    assert d["recovery"] is True
    assert "dispatch_thread" not in d  # the binding delivers callbacks itself


def test_every_reference_keyword_is_accepted():
    opts = StreamConfigurationOptions(
        record_type=RecordType.JSON, max_inflight_records=10, recovery=False,
        recovery_timeout_ms=1000, recovery_backoff_ms=10, recovery_retries=1,
        flush_timeout_ms=5000, server_lack_of_ack_timeout_ms=3000,
        stream_paused_max_wait_time_ms=0, callback_max_wait_time_ms=None, ack_callback=None)
    assert opts.record_type is RecordType.JSON
    assert opts.max_inflight_records == 10
    assert opts.recovery is False
    assert opts.recovery_retries == 1
    assert opts.stream_paused_max_wait_time_ms == 0
    assert opts.callback_max_wait_time_ms is None
    items = dict(opts.core_items())
    assert items["record_type"] == "json"
    assert items["recovery"] == "false"
    assert items["callback_max_wait_time_ms"] == "none"
    assert "ack_callback" not in items


def test_extra_core_options_and_assignment():
    opts = StreamConfigurationOptions(max_inflight_bytes=1 << 20, validate_json=False)
    assert opts.max_inflight_bytes == 1 << 20 and opts.validate_json is False
    opts.recovery_retries = 7
    assert opts.recovery_retries == 7
    assert dict(opts.core_items())["recovery_retries"] == "7"


def test_unknown_option_is_a_type_error():
    with pytest.raises(TypeError, match="unexpected option 'max_inflight'"):
        StreamConfigurationOptions(max_inflight=5)
    with pytest.raises(TypeError):
        StreamConfigurationOptions(dispatch_thread=True)
    opts = StreamConfigurationOptions()
    with pytest.raises(TypeError):
        opts.nope = 1
    with pytest.raises(AttributeError):
        opts.nope


def test_bad_values():
    with pytest.raises(InvalidOptionError) as ei:
        StreamConfigurationOptions(recovery_retries=-5)
    e = ei.value
    assert isinstance(e, ValueError) and isinstance(e, NonRetriableException)
    assert e.code == 9 and e.status_name == "ZEROBUS_ERR_INVALID_OPTION"
    assert e.retryable is False
    with pytest.raises(TypeError):
        StreamConfigurationOptions(max_inflight_records="many")
    with pytest.raises(TypeError):
        StreamConfigurationOptions(recovery_retries=True)
    with pytest.raises(TypeError):
        StreamConfigurationOptions(ack_callback=42)


def test_exception_classes():
    cause = OSError("x")
    e = ZerobusException("boom", cause)
    assert str(e) == "boom" and e.cause is cause and e.__cause__ is cause
    assert e.retryable is True and e.code is None
    n = NonRetriableException("fatal")
    assert isinstance(n, ZerobusException) and n.retryable is False and n.cause is None
    assert zerobus.ZerobusException is ZerobusException
    assert zerobus.NonRetriableException is NonRetriableException


def test_sdk_options_are_validated():
    from zerobus.sdk.sync import ZerobusSdk

    with pytest.raises(TypeError):
        ZerobusSdk("http://127.0.0.1:1", "http://127.0.0.1:1", bogus=1)
    sdk = ZerobusSdk("http://127.0.0.1:1", "http://127.0.0.1:1", application_name="t",
                     recovery_retries=1)
    sdk.close()
    with pytest.raises(NonRetriableException) as ei:
        ZerobusSdk("ftp://nowhere", "http://127.0.0.1:1")
    assert ei.value.status_name == "ZEROBUS_ERR_INVALID_ARGUMENT"


def test_readme_defaults_table_matches_the_core():
    """bindings/python/README.md documents the core's defaults; keep them in sync."""
    import os
    import re

    readme = open(os.path.join(os.path.dirname(__file__), "..", "README.md")).read()
    rows = dict(re.findall(r"^\| `(\w+)` \| stream \| [^|]+\| `([^`]+)`", readme, re.M))
    defaults = option_defaults()
    assert set(rows) == set(defaults), (set(rows) ^ set(defaults))
    for name, text in rows.items():
        value = defaults[name]
        if name == "log_level":
            continue  # documented as "from the environment or the logger"
        if value is None:
            assert text == "None", name
        elif isinstance(value, bool):
            assert text == str(value), name
        elif name == "record_type":
            assert text == value.name, name
        else:
            assert int(text) == value, name
