"""Blocking API: ``from zerobus.sdk.sync import ZerobusSdk``.

Blocking calls (create, flush, wait_for_offset, close, ingest at the in-flight
limit) release the GIL. Acknowledgment callbacks run on one daemon thread per
stream, started only when the stream has an ack_callback, a
RecordAcknowledgment.add_done_callback() was used, or core logs at INFO or more
verbose are enabled; it waits in zerobus_stream_poll_events() without the GIL.
"""
from __future__ import annotations

import heapq
import itertools
import threading
import time
from typing import Any, List, Optional, Sequence

from ... import _core, _log
from ..._errors import ZerobusException
from ..shared import (
    HeadersProvider,
    RecordAcknowledgment,
    StreamConfigurationOptions,
    TableProperties,
    _check_create_args,
    _SdkHandle,
    headers_provider_object,
)

__all__ = ["ZerobusSdk", "ZerobusStream", "RecordAcknowledgment"]

_native = _core._native
_ingest = _native.ingest
_ingest_batch = _native.ingest_batch
_POLL_TIMEOUT_MS = 200
_WAIT_SLICE_MS = 250
_TIMEOUT = 5  # ZEROBUS_ERR_TIMEOUT


class ZerobusStream(_core.StreamBase):
    """A stream into one table. Create it with ZerobusSdk.create_stream()."""

    def __init__(self, sdk: "ZerobusSdk", handle: Any, table_properties: TableProperties,
                 options: StreamConfigurationOptions, headers_provider: Any,
                 client_id: Optional[str], client_secret: Optional[str]) -> None:
        super().__init__(sdk, handle, table_properties, options, headers_provider, client_id,
                         client_secret)
        self._lock = threading.Lock()
        self._waiters: List[Any] = []  # heap of (offset, seq, RecordAcknowledgment)
        self._seq = itertools.count()
        self._dispatch = _core.AckDispatch(options.ack_callback, self._settle)
        self._poller: Optional[threading.Thread] = None
        # One thread at a time may poll (event pointers live until the next poll).
        self._poll_lock = threading.Lock()
        self._stop_polling = False
        self._cb_wait = sdk._h.effective(options, "callback_max_wait_time_ms")
        self._flush_timeout_ms = sdk._h.effective(options, "flush_timeout_ms")
        if options.ack_callback is not None or _log.logger.isEnabledFor(20):
            self._start_poller()

    # ------------------------------------------------------------ ingestion
    def ingest_record_offset(self, record: Any) -> int:
        """Queues one record and returns its logical offset (blocks only while the
        in-flight limits are reached)."""
        return _ingest(self._handle, record, self._json, 0)

    def ingest_record_nowait(self, record: Any) -> None:
        """Queues one record without returning its offset."""
        _ingest(self._handle, record, self._json, 0)

    def ingest_records_offset(self, records: Sequence[Any]) -> Optional[int]:
        """Queues a list of records as one batch (one logical offset, returned);
        None for an empty list."""
        return _ingest_batch(self._handle, records, self._json, 0)

    def ingest_records_nowait(self, records: Sequence[Any]) -> None:
        """Queues a list of records as one batch without returning its offset."""
        _ingest_batch(self._handle, records, self._json, 0)

    def ingest_record(self, record: Any) -> RecordAcknowledgment:
        """Deprecated: queues one record and returns a RecordAcknowledgment.
        Prefer ingest_record_offset() / ingest_record_nowait()."""
        return RecordAcknowledgment(self, _ingest(self._handle, record, self._json, 0))

    # ------------------------------------------------------------ waiting
    def wait_for_offset(self, offset: int, timeout_sec: Optional[float] = None) -> None:
        """Blocks until logical offset `offset` is durable. timeout_sec None means
        the stream's flush_timeout_ms. Raises the stream's error if it failed."""
        total = _core.timeout_ms(timeout_sec)
        if total < 0:
            total = self._flush_timeout_ms
        try:
            self._wait_interruptibly(offset, total)
        finally:
            self._drain_if_unpolled()

    def flush(self) -> None:
        """Blocks until every record queued before the call is durable (at most
        flush_timeout_ms)."""
        try:
            last = _native.get_stats(self._handle)[14]  # last_offset
            if last < 0 or self._flush_timeout_ms is None:
                _native.zerobus_stream_flush(self._handle)
                return
            self._wait_interruptibly(last, self._flush_timeout_ms)
            if _native.zerobus_stream_state(self._handle) == _core.STATE_FAILED:
                # as the core's flush: a failed stream reports its failure
                _native.zerobus_stream_flush(self._handle)
        finally:
            self._drain_if_unpolled()

    def _wait_interruptibly(self, offset: int, total_ms: Optional[int]) -> None:
        """zerobus_stream_wait_for_offset in slices, so that Ctrl-C (a signal
        handler) runs between them instead of after a wait of minutes. The core
        decides every outcome (durable, the stream's error, INVALID_ARGUMENT,
        TIMEOUT at the deadline)."""
        if total_ms is None or total_ms <= _WAIT_SLICE_MS:
            _native.zerobus_stream_wait_for_offset(self._handle, offset,
                                                   -1 if total_ms is None else total_ms)
            return
        deadline = time.monotonic() + total_ms / 1000.0
        while True:
            left_ms = int((deadline - time.monotonic()) * 1000)
            step = max(0, min(_WAIT_SLICE_MS, left_ms))
            try:
                _native.zerobus_stream_wait_for_offset(self._handle, offset, step)
                return
            except ZerobusException as e:
                if e.code != _TIMEOUT or step >= left_ms or self._is_final():
                    raise

    def close(self) -> None:
        """Flushes, ends the stream and delivers the remaining callbacks (waiting up
        to callback_max_wait_time_ms for them). Idempotent; raises the failure if
        the flush failed (the records not acknowledged are then in
        get_unacked_records())."""
        error: Optional[BaseException] = None
        try:
            _native.zerobus_stream_close(self._handle)
        except ZerobusException as e:
            error = e
        self._closed = True
        self._finish_polling()
        if error is not None:
            raise error

    # ------------------------------------------------------------ failure handling
    def get_unacked_records(self) -> List[bytes]:
        """Records never acknowledged, in order (after close or failure)."""
        return self._unacked()[0]

    def get_unacked_batches(self) -> List[List[bytes]]:
        """Records never acknowledged, grouped by ingest call."""
        return self._unacked()[1]

    # ------------------------------------------------------------ context manager
    def __enter__(self) -> "ZerobusStream":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            self.close()
        except ZerobusException:
            if exc_type is None:
                raise
            _log.logger.warning("closing the stream after an error also failed", exc_info=True)

    # ------------------------------------------------------------ events
    def _probe_offset(self, offset: int) -> None:
        _native.zerobus_stream_wait_for_offset(self._handle, offset, 0)

    def _watch_ack(self, ack: RecordAcknowledgment) -> None:
        with self._lock:
            heapq.heappush(self._waiters, (ack.offset, next(self._seq), ack))
        self._start_poller()
        ack._poll_state()  # it may have settled before it was watched

    def _settle(self, upto: int, error: Optional[BaseException]) -> None:
        ready = []
        with self._lock:
            while self._waiters and self._waiters[0][0] <= upto:
                ready.append(heapq.heappop(self._waiters)[2])
        for ack in ready:
            ack._settle(error)

    def _start_poller(self) -> None:
        with self._lock:
            if self._poller is not None or self._closed:
                return
            self._poller = threading.Thread(target=self._poll_loop, daemon=True,
                                            name="zerobus-callbacks")
        self._poller.start()

    def _poll_loop(self) -> None:
        handle = self._handle
        dispatch = self._dispatch.dispatch
        while True:
            stopping = self._stop_polling
            try:
                with self._poll_lock:
                    events = _native.poll_events(handle, 256,
                                                 0 if stopping else _POLL_TIMEOUT_MS)
            except ZerobusException:
                _log.logger.exception("polling the stream's events failed")
                return
            if events:
                dispatch(events)
            elif stopping:
                return

    def _drain_if_unpolled(self) -> None:
        # Without a callback thread, deliver log lines at the natural sync points.
        if self._poller is None and self._handle is not None:
            try:
                while self._poller is None:
                    if not self._poll_lock.acquire(blocking=False):
                        return
                    try:
                        events = _native.poll_events(self._handle, 256, 0)
                    finally:
                        self._poll_lock.release()
                    if not events:
                        break
                    self._dispatch.dispatch(events)
            except ZerobusException:
                pass

    def _finish_polling(self) -> None:
        poller = self._poller
        if poller is None:
            self._drain_if_unpolled()
            return
        self._stop_polling = True
        if poller is threading.current_thread():
            return
        wait = self._cb_wait
        poller.join(None if wait is None else wait / 1000.0)
        if poller.is_alive():
            _log.logger.warning("ack callbacks still running after callback_max_wait_time_ms=%s",
                                wait)

    def __del__(self) -> None:
        if self._poller is not None and self._poller.is_alive():
            return  # the thread keeps a reference; cannot happen while it runs
        super().__del__()

    def __repr__(self) -> str:
        return "<zerobus.sdk.sync.ZerobusStream table=%s id=%s>" % (
            self._table_properties.table_name, self.stream_id if self._handle else None)


class ZerobusSdk:
    """Entry point: one per application and endpoint.

    ZerobusSdk(server_endpoint, unity_catalog_endpoint, **sdk_options): the Zerobus
    endpoint ("<workspace-id>.zerobus.<region>.cloud.databricks.com", with or
    without https://; http:// for plaintext) and the workspace URL (OAuth, Unity
    Catalog). sdk_options are core options of scope "sdk" (tls_ca_file, proxy,
    application_name, ...) or stream defaults."""

    def __init__(self, server_endpoint: str, unity_catalog_endpoint: str,
                 **sdk_options: Any) -> None:
        self._h = _SdkHandle(server_endpoint, unity_catalog_endpoint, sdk_options)

    def create_stream(self, client_id: Optional[str], client_secret: Optional[str],
                      table_properties: TableProperties,
                      options: Optional[StreamConfigurationOptions] = None,
                      headers_provider: Optional[HeadersProvider] = None) -> ZerobusStream:
        """Opens a stream (OAuth client credentials unless headers_provider is given)
        and waits until the server created it."""
        options = _check_create_args(table_properties, options)
        provider = headers_provider_object(headers_provider)
        handle = self._h.open_stream(client_id, client_secret, table_properties, options,
                                     provider)
        return ZerobusStream(self, handle, table_properties, options, provider, client_id,
                             client_secret)

    def recreate_stream(self, old_stream: ZerobusStream) -> ZerobusStream:
        """A new stream with the old one's table, options and credentials, into which
        the old stream's unacknowledged records are ingested first (in order). The old
        stream is closed first if it is still open."""
        if not isinstance(old_stream, ZerobusStream):
            raise TypeError("recreate_stream takes a zerobus.sdk.sync.ZerobusStream")
        if not old_stream._closed:
            try:
                old_stream.close()
            except ZerobusException:
                pass  # a failed stream: its records are in the unacked set
        handle = _native.stream_recreate(old_stream._handle, old_stream._headers_provider)
        return ZerobusStream(self, handle, old_stream._table_properties, old_stream._options,
                             old_stream._headers_provider, old_stream._client_id,
                             old_stream._client_secret)

    def close(self) -> None:
        """Releases the SDK handle (streams already created keep working)."""
        self._h.close()

    def __enter__(self) -> "ZerobusSdk":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
