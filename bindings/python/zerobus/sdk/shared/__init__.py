"""Types shared by the sync and asyncio APIs (same names as the reference SDK)."""
from __future__ import annotations

import abc
import threading
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from ... import _core
from ..._core import RecordType, StreamStats
from ..._errors import InvalidOptionError, NonRetriableException, ZerobusException

__all__ = [
    "RecordType",
    "StreamConfigurationOptions",
    "TableProperties",
    "AckCallback",
    "HeadersProvider",
    "RecordAcknowledgment",
    "StreamStats",
    "ZerobusException",
    "NonRetriableException",
    "InvalidOptionError",
    "option_defaults",
]

# Options handled by the binding itself rather than passed to the core.
_BINDING_ONLY = ("ack_callback",)
# Core options the binding must control (it delivers callbacks itself).
_NOT_USER_SETTABLE = ("dispatch_thread",)


class _Unset:
    def __repr__(self) -> str:
        return "<default>"


_UNSET: Any = _Unset()


def _stream_option(name: str) -> _core.OptionInfo:
    table = _core.option_table()
    info = table.get(name)
    if info is None or info.scope != "stream" or name in _NOT_USER_SETTABLE:
        known = sorted(n for n, i in table.items()
                       if i.scope == "stream" and n not in _NOT_USER_SETTABLE)
        raise TypeError(
            "StreamConfigurationOptions got an unexpected option %r; known options: %s"
            % (name, ", ".join(known + list(_BINDING_ONLY)))
        )
    return info


def option_defaults(scope: str = "stream") -> Dict[str, Any]:
    """{option name: default value} as the loaded core reports them."""
    return {n: i.default_value for n, i in _core.option_table().items()
            if i.scope == scope and n not in _NOT_USER_SETTABLE}


class StreamConfigurationOptions:
    """Configuration of a stream.

    Every keyword is optional; an option not given takes the core's default (read
    at runtime through zerobus_option_info(); see README "Configuration" or
    option_defaults()). Besides the reference SDK's options (record_type,
    max_inflight_records, recovery, recovery_timeout_ms, recovery_backoff_ms,
    recovery_retries, flush_timeout_ms, server_lack_of_ack_timeout_ms,
    stream_paused_max_wait_time_ms, callback_max_wait_time_ms, ack_callback) every
    stream option of the core is accepted by name (max_inflight_bytes,
    max_request_bytes, validate_json, log_level, ...). Unknown names raise
    TypeError; values the core refuses raise InvalidOptionError (a ValueError).
    Attributes can be read (explicit value or default) and assigned.
    """

    def __init__(
        self,
        *,
        record_type: RecordType = _UNSET,
        max_inflight_records: int = _UNSET,
        recovery: bool = _UNSET,
        recovery_timeout_ms: int = _UNSET,
        recovery_backoff_ms: int = _UNSET,
        recovery_retries: int = _UNSET,
        flush_timeout_ms: int = _UNSET,
        server_lack_of_ack_timeout_ms: int = _UNSET,
        stream_paused_max_wait_time_ms: Optional[int] = _UNSET,
        callback_max_wait_time_ms: Optional[int] = _UNSET,
        ack_callback: Optional["AckCallback"] = None,
        **extra_options: Any,
    ) -> None:
        object.__setattr__(self, "_values", {})
        given = dict(
            record_type=record_type,
            max_inflight_records=max_inflight_records,
            recovery=recovery,
            recovery_timeout_ms=recovery_timeout_ms,
            recovery_backoff_ms=recovery_backoff_ms,
            recovery_retries=recovery_retries,
            flush_timeout_ms=flush_timeout_ms,
            server_lack_of_ack_timeout_ms=server_lack_of_ack_timeout_ms,
            stream_paused_max_wait_time_ms=stream_paused_max_wait_time_ms,
            callback_max_wait_time_ms=callback_max_wait_time_ms,
        )
        given.update(extra_options)
        for name, value in given.items():
            if value is not _UNSET:
                setattr(self, name, value)
        self.ack_callback = ack_callback

    def __setattr__(self, name: str, value: Any) -> None:
        values: Dict[str, Any] = self.__dict__["_values"]
        if name == "ack_callback":
            if value is not None and not hasattr(value, "on_ack") and not callable(value):
                raise TypeError("ack_callback must be an AckCallback, not %s"
                                % type(value).__name__)
            values[name] = value
            return
        info = _stream_option(name)
        if value is _UNSET:
            values.pop(name, None)
            return
        text = _core.to_core_text(info, value)
        _core.check_option(name, text)
        if name == "record_type":
            value = _core.from_core_text(info, text)
        values[name] = value

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        values = self.__dict__["_values"]
        if name in values:
            return values[name]
        if name == "ack_callback":
            return None
        try:
            info = _stream_option(name)
        except TypeError as e:
            raise AttributeError(str(e)) from None
        return info.default_value

    def explicit(self) -> Dict[str, Any]:
        """The options set explicitly (not defaults)."""
        return dict(self.__dict__["_values"])

    def core_items(self) -> Iterator[Tuple[str, str]]:
        """(key, text) pairs for zerobus_options_set, explicit values only."""
        for name, value in self.__dict__["_values"].items():
            if name in _BINDING_ONLY:
                continue
            yield name, _core.to_core_text(_core.option_table()[name], value)

    def __repr__(self) -> str:
        inner = ", ".join("%s=%r" % kv for kv in self.__dict__["_values"].items())
        return "StreamConfigurationOptions(%s)" % inner


class TableProperties:
    """The target table, and for PROTO streams the message descriptor of its
    records (e.g. ``record_pb2.AirQuality.DESCRIPTOR``)."""

    def __init__(self, table_name: str, descriptor: Any = None) -> None:
        if not isinstance(table_name, str):
            raise TypeError("table_name must be a str")
        self.table_name = table_name
        self.descriptor = descriptor
        self._descriptor_bytes: Optional[bytes] = None
        if descriptor is not None:
            self._descriptor_bytes = _core.descriptor_bytes(descriptor)

    @property
    def descriptor_proto(self) -> Optional[bytes]:
        """The serialized self-contained DescriptorProto sent at stream creation."""
        return self._descriptor_bytes

    def __repr__(self) -> str:
        d = self.descriptor.full_name if self.descriptor is not None else None
        return "TableProperties(%r, descriptor=%s)" % (self.table_name, d)


class AckCallback(abc.ABC):
    """Base class of acknowledgment callbacks (StreamConfigurationOptions.ack_callback).

    on_ack(offset) runs once per ingest call (logical offset), in increasing order,
    when it is durable; on_error(offset, error_message) once per ingest call that
    will never be acknowledged. Sync streams call them on one thread of the stream,
    asyncio streams on the event loop. A callback may call the stream's methods
    (except close() from a sync callback thread, which would wait for itself)."""

    @abc.abstractmethod
    def on_ack(self, offset: int) -> None:
        ...

    def on_error(self, offset: int, error_message: str) -> None:
        pass


class HeadersProvider(abc.ABC):
    """Supplies the gRPC headers of every connection attempt (creation and each
    recovery) instead of OAuth. get_headers() returns a list of (name, value)
    pairs and must include "authorization" and "x-databricks-zerobus-table-name".
    It runs on a library thread (holding the GIL); raising fails that attempt
    (NonRetriableException makes it final)."""

    @abc.abstractmethod
    def get_headers(self) -> List[Tuple[str, str]]:
        ...


class _CallableHeadersProvider(HeadersProvider):
    def __init__(self, fn: Callable[[], List[Tuple[str, str]]]) -> None:
        self._fn = fn

    def get_headers(self) -> List[Tuple[str, str]]:
        return self._fn()


def headers_provider_object(provider: Any) -> Any:
    if provider is None or hasattr(provider, "get_headers"):
        return provider
    if callable(provider):
        return _CallableHeadersProvider(provider)
    raise TypeError("headers_provider must be a HeadersProvider, not %s" % type(provider).__name__)


class RecordAcknowledgment:
    """Future-like acknowledgment of one record (returned by the deprecated sync
    ingest_record()). Done when the record is durable, or failed when the stream
    reported it will never be."""

    def __init__(self, stream: Any, offset: int) -> None:
        self._stream = stream
        self._offset = offset
        self._lock = threading.Lock()
        self._done = False
        self._error: Optional[BaseException] = None
        self._callbacks: List[Callable[["RecordAcknowledgment"], Any]] = []

    @property
    def offset(self) -> int:
        """The record's logical offset."""
        return self._offset

    def wait_for_ack(self, timeout_sec: Optional[float] = None) -> None:
        """Blocks until the record is durable (raises the stream's error if it will
        never be, ZerobusException TIMEOUT after timeout_sec; None = the stream's
        flush_timeout_ms)."""
        if not self._done:
            try:
                self._stream.wait_for_offset(self._offset, timeout_sec)
            except ZerobusException as e:
                if e.status_name != "ZEROBUS_ERR_TIMEOUT" or self._stream._is_final():
                    self._settle(e)
                raise
            self._settle(None)
        if self._error is not None:
            raise self._error

    def result(self, timeout: Optional[float] = None) -> None:
        self.wait_for_ack(timeout)

    def is_done(self) -> bool:
        """True once the record is durable or has failed."""
        if not self._done:
            self._poll_state()
        return self._done

    def exception(self) -> Optional[BaseException]:
        """The error if the record failed (None while pending or when acked)."""
        if not self._done:
            self._poll_state()
        return self._error

    def add_done_callback(self, fn: Callable[["RecordAcknowledgment"], Any]) -> None:
        """Calls fn(self) when done (at once if already done); on the stream's
        callback thread otherwise."""
        with self._lock:
            if not self._done:
                self._callbacks.append(fn)
                register = len(self._callbacks) == 1
            else:
                register = False
        if register:
            self._stream._watch_ack(self)
        if self._done:
            self._run_callbacks()

    def _poll_state(self) -> None:
        try:
            self._stream._probe_offset(self._offset)
        except ZerobusException as e:
            # TIMEOUT means "not yet" on a live stream; on a closed or failed one
            # (close gave up waiting) it is the record's final outcome.
            if e.status_name != "ZEROBUS_ERR_TIMEOUT" or self._stream._is_final():
                self._settle(e)
            return
        self._settle(None)

    def _settle(self, error: Optional[BaseException]) -> None:
        with self._lock:
            if self._done:
                return
            self._error = error
            self._done = True
        self._run_callbacks()

    def _run_callbacks(self) -> None:
        with self._lock:
            cbs, self._callbacks = self._callbacks, []
        for fn in cbs:
            try:
                fn(self)
            except Exception:
                _core._log.logger.exception("RecordAcknowledgment callback raised")

    def __repr__(self) -> str:
        state = "pending" if not self._done else ("failed" if self._error else "acked")
        return "<RecordAcknowledgment offset=%d %s>" % (self._offset, state)


# ----------------------------------------------------------- SDK plumbing (private)


class _SdkHandle:
    """The native SDK handle plus the SDK-level option values (stream options given
    to the SDK become defaults of its streams)."""

    def __init__(self, server_endpoint: str, unity_catalog_endpoint: str,
                 sdk_options: Dict[str, Any]) -> None:
        if not isinstance(server_endpoint, str) or not isinstance(unity_catalog_endpoint, str):
            raise TypeError("server_endpoint and unity_catalog_endpoint must be str")
        table = _core.option_table()
        items = []
        for name, value in sdk_options.items():
            info = table.get(name)
            if info is None or name in _NOT_USER_SETTABLE:
                raise TypeError("ZerobusSdk got an unexpected option %r; known options: %s"
                                % (name, ", ".join(sorted(n for n in table
                                                          if n not in _NOT_USER_SETTABLE))))
            items.append((name, _core.to_core_text(info, value)))
        self.stream_defaults = {k: v for k, v in sdk_options.items()
                                if table[k].scope == "stream"}
        with _core.NativeOptions(iter(items)) as opts:
            self.handle = _core._native.zerobus_sdk_new(server_endpoint, unity_catalog_endpoint,
                                                        opts.handle)
        self.server_endpoint = server_endpoint
        self.unity_catalog_endpoint = unity_catalog_endpoint

    def effective(self, options: StreamConfigurationOptions, name: str) -> Any:
        explicit = options.explicit()
        if name in explicit:
            return explicit[name]
        if name in self.stream_defaults:
            return self.stream_defaults[name]
        return getattr(options, name)

    def open_stream(self, client_id: Optional[str], client_secret: Optional[str],
                    table_properties: TableProperties, options: StreamConfigurationOptions,
                    headers_provider: Any) -> Any:
        """Creates the native stream (blocks, without the GIL)."""
        if self.handle is None:
            raise NonRetriableException("the ZerobusSdk is closed")
        items = list(options.core_items())
        if "log_level" in _core.option_table() and "log_level" not in options.explicit() \
                and "log_level" not in self.stream_defaults:
            items.append(("log_level", _core._log.core_level_name()))
        json_mode = self.effective(options, "record_type") == RecordType.JSON
        descriptor = None if json_mode else table_properties.descriptor_proto
        with _core.NativeOptions(iter(items)) as opts:
            return _core._native.stream_create(self.handle, table_properties.table_name,
                                               descriptor, client_id, client_secret,
                                               opts.handle, headers_provider)

    def close(self) -> None:
        h, self.handle = self.handle, None
        if h is not None:
            _core._native.zerobus_sdk_destroy(h)

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


def _check_create_args(table_properties: Any, options: Any) -> StreamConfigurationOptions:
    if not isinstance(table_properties, TableProperties):
        raise TypeError("table_properties must be a TableProperties, not %s"
                        % type(table_properties).__name__)
    if options is None:
        return StreamConfigurationOptions()
    if not isinstance(options, StreamConfigurationOptions):
        raise TypeError("options must be a StreamConfigurationOptions, not %s"
                        % type(options).__name__)
    return options
