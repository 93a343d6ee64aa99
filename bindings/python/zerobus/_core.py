"""Glue between the SWIG module (zerobus._native) and the Python API.

Owns: registration of the exception factory and record converter with the native
module, the option table read from the core at runtime, record conversion, the
self-contained descriptor builder, and the parts of a stream that sync and aio
share (handle, events, unacked records, stats).
"""
from __future__ import annotations

import atexit
import collections
import enum
import json
import threading
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Tuple

from . import _errors, _log
from . import _native  # type: ignore[attr-defined]

# ----------------------------------------------------------------- registration

_native.set_error_factory(_errors.from_core)

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
try:
    # The C encoder behind json.dumps, built once (JSONEncoder.encode builds it on
    # every call): same output as json.dumps(separators=(",", ":"),
    # ensure_ascii=False, check_circular=False).
    from _json import encode_basestring as _c_encode_str
    from _json import make_encoder as _c_make_encoder

    def _json_default(o: Any) -> Any:
        raise TypeError("Object of type %s is not JSON serializable" % type(o).__name__)

    _c_encoder = _c_make_encoder(None, _json_default, _c_encode_str, None, ":", ",", False,
                                 False, True)
    _join = "".join

    def _fast_dumps(obj: Any) -> str:
        return _join(_c_encoder(obj, 0))
except ImportError:  # pragma: no cover - CPython always has _json
    _fast_dumps = _dumps  # type: ignore[assignment]
_Message: Optional[type] = None


def _message_class() -> type:
    global _Message
    if _Message is None:
        from google.protobuf.message import Message

        _Message = Message
    return _Message


def convert_record(record: Any, json_mode: int) -> Any:
    """Turns a record the fast path did not take into bytes or str (called from C).

    JSON streams take dict (serialized compactly), str, or bytes (already
    serialized JSON); PROTO streams take a protobuf Message or bytes."""
    if json_mode:
        if type(record) is dict:
            return _fast_dumps(record)
        if isinstance(record, dict):
            return _dumps(record)
        if isinstance(record, str):
            return str(record)
        if isinstance(record, (bytes, bytearray, memoryview)):
            return bytes(record)
        raise TypeError(
            "a JSON stream accepts dict, str or bytes records, not %s" % type(record).__name__
        )
    if isinstance(record, (bytes, bytearray, memoryview)):
        return bytes(record)
    if isinstance(record, _message_class()):
        return record.SerializeToString()  # type: ignore[attr-defined]
    raise TypeError(
        "a PROTO stream accepts protobuf Message or bytes records, not %s"
        % type(record).__name__
    )


_native.set_record_converter(convert_record)
atexit.register(_native.shutdown)
_log.configure_from_env()

# ---------------------------------------------------------------------- options


class RecordType(enum.IntEnum):
    """Serialization of a stream's records."""

    PROTO = 1
    JSON = 2


@dataclass(frozen=True)
class OptionInfo:
    name: str
    type: str  # "int", "bool", "duration_ms", "string", "enum", "path"
    default: str  # canonical text, e.g. "1000000", "none"
    scope: str  # "sdk" or "stream"
    doc: str

    @property
    def default_value(self) -> Any:
        return from_core_text(self, self.default)


_OPTIONS: Optional[Dict[str, OptionInfo]] = None
_options_lock = threading.Lock()


def option_table() -> Dict[str, OptionInfo]:
    """Every option the loaded core supports, from zerobus_option_info()."""
    global _OPTIONS
    if _OPTIONS is None:
        with _options_lock:
            if _OPTIONS is None:
                table = {}
                for i in range(_native.zerobus_option_count()):
                    name, typ, default, scope, doc = _native.option_info(i)
                    table[name] = OptionInfo(name, typ or "string", default or "", scope or "",
                                             doc or "")
                _OPTIONS = table
    return _OPTIONS


def from_core_text(info: OptionInfo, text: Optional[str]) -> Any:
    """A core option value (canonical text) as a Python value."""
    if text is None or text == "none":
        return None
    if info.name == "record_type":
        return RecordType.JSON if text.lower() == "json" else RecordType.PROTO
    if info.type in ("int", "duration_ms"):
        try:
            return int(text)
        except ValueError:
            return text
    if info.type == "bool":
        return text.lower() in ("true", "1", "yes", "on")
    return text


def to_core_text(info: OptionInfo, value: Any) -> str:
    """A Python option value as the text zerobus_options_set() takes."""
    if value is None:
        return "none"
    if info.name == "record_type":
        if isinstance(value, RecordType):
            return "json" if value is RecordType.JSON else "proto"
        if isinstance(value, int) and not isinstance(value, bool) and value in (1, 2):
            return "json" if value == 2 else "proto"
        if isinstance(value, str):
            return value.lower()
        raise TypeError("record_type must be a RecordType, not %s" % type(value).__name__)
    if isinstance(value, bool):
        if info.type != "bool":
            raise TypeError("option %s takes %s, not bool" % (info.name, _type_word(info)))
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        value = value.value
    if info.type in ("int", "duration_ms"):
        if not isinstance(value, int):
            raise TypeError(
                "option %s takes %s, not %s" % (info.name, _type_word(info), type(value).__name__)
            )
        return str(value)
    if info.type == "bool":
        if isinstance(value, int):
            return "true" if value else "false"
        raise TypeError("option %s takes a bool, not %s" % (info.name, type(value).__name__))
    if isinstance(value, str):
        return value
    if hasattr(value, "__fspath__"):
        import os

        return os.fspath(value)
    raise TypeError("option %s takes a str, not %s" % (info.name, type(value).__name__))


def _type_word(info: OptionInfo) -> str:
    return {"int": "an int", "duration_ms": "an int (milliseconds) or None"}.get(info.type, info.type)


class NativeOptions:
    """A zerobus_options object filled from (name, text) pairs; a context manager
    that frees it."""

    def __init__(self, items: Iterator[Tuple[str, str]] = iter(())) -> None:
        self.handle = _native.zerobus_options_new()
        try:
            for key, text in items:
                _native.zerobus_options_set(self.handle, key, text)
        except BaseException:
            self.close()
            raise

    def get(self, key: str) -> Optional[str]:
        return _native.zerobus_options_get(self.handle, key)

    def close(self) -> None:
        if self.handle is not None:
            _native.zerobus_options_destroy(self.handle)
            self.handle = None

    def __enter__(self) -> "NativeOptions":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def check_option(name: str, text: str) -> None:
    """Validates one value with the core (raises InvalidOptionError)."""
    with NativeOptions(iter([(name, text)])):
        pass


# ------------------------------------------------------------------ descriptors


def descriptor_bytes(descriptor: Any) -> bytes:
    """Serialized, self-contained DescriptorProto for a message Descriptor.

    The result describes the message the user named (not the first message of its
    file). Message and enum types it references from elsewhere (other messages of
    the file, imported files, well-known types) are copied in as nested types of
    it, and every type name is rewritten to point inside it, so the server needs
    nothing but this one DescriptorProto."""
    from google.protobuf import descriptor_pb2

    if isinstance(descriptor, descriptor_pb2.DescriptorProto):
        return descriptor.SerializeToString()  # already a DescriptorProto: sent as is
    if isinstance(descriptor, bytes):
        descriptor_pb2.DescriptorProto.FromString(descriptor)  # must parse
        return descriptor
    if not hasattr(descriptor, "CopyToProto") or not hasattr(descriptor, "fields"):
        raise TypeError(
            "descriptor must be a protobuf message Descriptor (e.g. MyMessage.DESCRIPTOR), "
            "not %s" % type(descriptor).__name__
        )
    root = descriptor_pb2.DescriptorProto()
    descriptor.CopyToProto(root)
    new_names: Dict[str, str] = {}  # original full name -> full name inside root
    used = {n.name for n in root.nested_type} | {e.name for e in root.enum_type}
    pending: List[Any] = []

    def register(desc: Any, new_full: str) -> None:
        new_names[desc.full_name] = new_full
        pending.append(desc)
        for nested in desc.nested_types:
            register(nested, new_full + "." + nested.name)
        for en in desc.enum_types:
            new_names[en.full_name] = new_full + "." + en.name

    def flat_name(full_name: str) -> str:
        base = full_name.replace(".", "_")
        name, i = base, 2
        while name in used:
            name, i = "%s_%d" % (base, i), i + 1
        used.add(name)
        return name

    register(descriptor, descriptor.name)
    while pending:
        desc = pending.pop()
        for field in desc.fields:
            if field.message_type is not None and field.message_type.full_name not in new_names:
                mt = field.message_type
                copy = root.nested_type.add()
                mt.CopyToProto(copy)
                copy.name = flat_name(mt.full_name)
                register(mt, root.name + "." + copy.name)
            if field.enum_type is not None and field.enum_type.full_name not in new_names:
                et = field.enum_type
                ecopy = root.enum_type.add()
                et.CopyToProto(ecopy)
                ecopy.name = flat_name(et.full_name)
                new_names[et.full_name] = root.name + "." + ecopy.name

    def rewrite(msg: Any) -> None:
        for field in msg.field:
            if field.type_name:
                old = field.type_name.lstrip(".")
                if old not in new_names:
                    raise ValueError("descriptor references unknown type %s" % field.type_name)
                field.type_name = "." + new_names[old]
        for nested in msg.nested_type:
            rewrite(nested)

    rewrite(root)
    return root.SerializeToString()


# ----------------------------------------------------------------- stream stats

STATE_NAMES = {0: "OPENING", 1: "ACTIVE", 2: "RECOVERING", 3: "PAUSED", 4: "CLOSING",
               5: "CLOSED", 6: "FAILED"}
STATE_CLOSED = 5
STATE_FAILED = 6


class StreamStats(NamedTuple):
    """Counters of a stream since its creation (zerobus_stream_stats)."""

    state: int
    records_queued: int
    bytes_queued: int
    records_sent: int
    bytes_sent: int
    records_acked: int
    bytes_acked: int
    records_resent: int
    requests_sent: int
    acks_received: int
    reconnects: int
    recovery_attempts: int
    inflight_records: int
    inflight_bytes: int
    last_offset: int
    acked_offset: int
    records_failed: int

    @property
    def state_name(self) -> str:
        return STATE_NAMES.get(self.state, str(self.state))


# ------------------------------------------------------------------ events

EVENT_ACK = 1
EVENT_ERROR = 2
EVENT_LOG = 3

EventTuple = Tuple[int, int, int, int, Optional[str], int, int, int]


def event_error(ev: EventTuple) -> _errors.ZerobusException:
    _, status, _, _, message, retryable, grpc, http = ev
    return _errors.from_core(status, _native.zerobus_status_name(status), message or "",
                             retryable, grpc, http)


class AckDispatch:
    """Runs the user's ack callback and settles per-offset waiters for a batch of
    events. `settle(offset_upto, error)` is supplied by the sync/aio stream."""

    def __init__(self, ack_callback: Any, settle: Callable[[int, Optional[BaseException]], None]):
        self.on_ack: Optional[Callable[[int], Any]] = None
        self.on_error: Optional[Callable[[int, str], Any]] = None
        if ack_callback is not None:
            if hasattr(ack_callback, "on_ack"):
                self.on_ack = ack_callback.on_ack
                self.on_error = getattr(ack_callback, "on_error", None)
            elif callable(ack_callback):
                self.on_ack = ack_callback
            else:
                raise TypeError("ack_callback must be an AckCallback (or a callable taking an offset)")
        self.settle = settle

    def dispatch(self, events: List[EventTuple]) -> None:
        for ev in events:
            kind, status, first, last, message = ev[0], ev[1], ev[2], ev[3], ev[4]
            if kind == EVENT_ACK:
                if self.on_ack is not None:
                    for off in range(first, last + 1):
                        try:
                            self.on_ack(off)
                        except Exception:  # a user callback must not kill delivery
                            _log.logger.exception("ack_callback.on_ack(%d) raised", off)
                self.settle(last, None)
            elif kind == EVENT_ERROR:
                text = message or _native.zerobus_status_name(status)
                if self.on_error is not None:
                    for off in range(first, last + 1):
                        try:
                            self.on_error(off, text)
                        except Exception:
                            _log.logger.exception("ack_callback.on_error(%d) raised", off)
                self.settle(last, event_error(ev))
            elif kind == EVENT_LOG:
                _log.emit(status, message or "")


# ------------------------------------------------------------------ stream base


class StreamBase:
    """What sync and aio streams share. Owns the native stream handle; the handle
    is destroyed when the Python object is collected (close() first to flush)."""

    _handle: Any = None

    def __init__(self, sdk: Any, handle: Any, table_properties: Any, options: Any,
                 headers_provider: Any, client_id: Optional[str], client_secret: Optional[str]):
        self._handle = handle
        self._sdk = sdk  # keeps credentials/options for recreate_stream
        self._table_properties = table_properties
        self._options = options
        self._headers_provider = headers_provider
        self._client_id = client_id
        self._client_secret = client_secret
        # the record type in effect: the stream's option, else the SDK's default
        self._json = 1 if sdk._h.effective(options, "record_type") == RecordType.JSON else 0
        self._closed = False
        self._close_error: Optional[BaseException] = None

    # -- introspection
    @property
    def stream_id(self) -> Optional[str]:
        """The server's id of the current call's stream (changes after a recovery)."""
        return _native.zerobus_stream_id(self._handle)

    @property
    def table_name(self) -> str:
        return _native.zerobus_stream_table_name(self._handle)

    @property
    def options(self) -> Any:
        return self._options

    @property
    def state(self) -> str:
        """"OPENING", "ACTIVE", "RECOVERING", "PAUSED", "CLOSING", "CLOSED" or "FAILED"."""
        return STATE_NAMES.get(_native.zerobus_stream_state(self._handle), "UNKNOWN")

    def _is_final(self) -> bool:
        """True once the stream is closed or failed (no record can be acked any more)."""
        return _native.zerobus_stream_state(self._handle) in (STATE_CLOSED, STATE_FAILED)

    def get_stats(self) -> StreamStats:
        return StreamStats(*_native.get_stats(self._handle))

    def last_error(self) -> Optional[_errors.ZerobusException]:
        """The failure that ended the stream or the last recovered one, or None."""
        return _native.last_error(self._handle)

    # -- unacked records
    def _unacked(self) -> Tuple[List[bytes], List[List[bytes]]]:
        return _native.get_unacked(self._handle)

    # -- destruction
    def _destroy(self) -> None:
        h, self._handle = self._handle, None
        if h is not None:
            _native.zerobus_stream_destroy(h)

    def __del__(self) -> None:
        try:
            if self._handle is not None and not self._closed:
                import warnings

                warnings.warn("unclosed Zerobus stream to %s: records not yet acknowledged "
                              "are discarded (call close())" % self._table_properties.table_name,
                              ResourceWarning, source=self)
            self._destroy()
        except Exception:
            pass


def timeout_ms(timeout_sec: Optional[float]) -> int:
    """Seconds (None = the stream's flush_timeout_ms) as the core's int32 ms."""
    if timeout_sec is None:
        return -1
    if timeout_sec < 0:
        raise ValueError("timeout_sec must be >= 0 or None")
    return min(int(timeout_sec * 1000), 2**31 - 1)


def deque_settle(waiters: "collections.deque[Any]", upto: int, error: Optional[BaseException],
                 resolve: Callable[[Any, Optional[BaseException]], None]) -> None:
    """Settles the waiters (offset, obj) of an offset-ordered deque up to `upto`."""
    while waiters and waiters[0][0] <= upto:
        _, obj = waiters.popleft()
        resolve(obj, error)
