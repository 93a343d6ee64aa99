"""asyncio API: ``from zerobus.sdk.aio import ZerobusSdk``.

Acknowledgments, errors and log lines are read on the event loop: each stream
registers the core's wakeup file descriptor with loop.add_reader() and drains
zerobus_stream_poll_events() when it becomes readable, so no thread is used per
call. Awaiting an offset (ingest_record futures, wait_for_offset, flush) waits for
those events; ingest at the in-flight limit awaits acknowledgments instead of
blocking the loop. Stream creation and close(), which block in the core, run in
the loop's default executor.
"""
from __future__ import annotations

import asyncio
import functools
import heapq
import itertools
from typing import Any, List, Optional, Sequence

from ... import _core, _log
from ..._errors import ZerobusException
from ..shared import (
    HeadersProvider,
    StreamConfigurationOptions,
    TableProperties,
    _check_create_args,
    _SdkHandle,
    headers_provider_object,
)

__all__ = ["ZerobusSdk", "ZerobusStream"]

_native = _core._native
_ingest = _native.ingest
_ingest_batch = _native.ingest_batch
_QUEUE_FULL = 4
_TIMEOUT = 5
_STREAM_CLOSED = 3


class ZerobusStream(_core.StreamBase):
    """A stream into one table, bound to the event loop that created it."""

    def __init__(self, sdk: "ZerobusSdk", handle: Any, table_properties: TableProperties,
                 options: StreamConfigurationOptions, headers_provider: Any,
                 client_id: Optional[str], client_secret: Optional[str],
                 loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(sdk, handle, table_properties, options, headers_provider, client_id,
                         client_secret)
        self._loop = loop
        self._waiters: List[Any] = []  # heap of (offset, seq, future)
        self._seq = itertools.count()
        self._space_waiters: List["asyncio.Future[None]"] = []
        # Highest offset an ACK event reported, and whether an ERROR event was seen:
        # lets _offset_future settle the common cases without calling the core.
        self._acked_upto = -1
        self._error_seen = False
        self._dispatch = _core.AckDispatch(options.ack_callback, self._settle)
        flush_ms = sdk._h.effective(options, "flush_timeout_ms")
        self._flush_timeout_s = None if flush_ms is None else flush_ms / 1000.0
        self._fd = _native.zerobus_stream_wakeup_fd(handle)
        self._reading = False
        if self._fd >= 0:
            loop.add_reader(self._fd, self._on_events)
            self._reading = True

    # ------------------------------------------------------------ ingestion
    async def ingest_record_offset(self, record: Any) -> int:
        """Queues one record and returns its logical offset; at the in-flight limit
        it awaits acknowledgments (the loop keeps running)."""
        while True:
            try:
                return _ingest(self._handle, record, self._json, 1)
            except ZerobusException as e:
                if e.code != _QUEUE_FULL:
                    raise
            await self._wait_for_space()

    def ingest_record_nowait(self, record: Any) -> None:
        """Queues one record (not a coroutine). At the in-flight limit it blocks the
        calling thread until there is room."""
        _ingest(self._handle, record, self._json, 0)

    async def ingest_records_offset(self, records: Sequence[Any]) -> Optional[int]:
        """Queues a list of records as one batch; returns its logical offset (None
        for an empty list)."""
        while True:
            try:
                return _ingest_batch(self._handle, records, self._json, 1)
            except ZerobusException as e:
                if e.code != _QUEUE_FULL:
                    raise
            await self._wait_for_space()

    def ingest_records_nowait(self, records: Sequence[Any]) -> None:
        """Queues a list of records as one batch (not a coroutine)."""
        _ingest_batch(self._handle, records, self._json, 0)

    async def ingest_record(self, record: Any) -> "asyncio.Future[None]":
        """Deprecated: queues one record and returns a future that completes when it
        is durable (await it). Prefer ingest_record_offset() / ingest_record_nowait()."""
        offset = await self.ingest_record_offset(record)
        fut = self._offset_future(offset, handed_out=True)
        fut.add_done_callback(_consume_exception)
        return fut

    # ------------------------------------------------------------ waiting
    async def wait_for_offset(self, offset: int, timeout_sec: Optional[float] = None) -> None:
        """Waits until logical offset `offset` is durable (timeout_sec None = the
        stream's flush_timeout_ms); raises the stream's error if it failed."""
        fut = self._offset_future(offset)
        timeout = self._flush_timeout_s if timeout_sec is None else timeout_sec
        try:
            await asyncio.wait_for(asyncio.shield(fut), timeout)
        except asyncio.TimeoutError:
            pass
        except ZerobusException:
            pass
        # The core decides the outcome: durable, the stream's error, or TIMEOUT.
        _native.zerobus_stream_wait_for_offset(self._handle, offset, 0)

    async def flush(self) -> None:
        """Waits until every record queued before the call is durable (at most
        flush_timeout_ms)."""
        last = _native.get_stats(self._handle)[14]  # last_offset
        if last >= 0:
            await self.wait_for_offset(last)
        if _native.zerobus_stream_state(self._handle) == _core.STATE_FAILED:
            err = self.last_error()
            if err is not None:
                raise err
        if last < 0:
            _native.zerobus_stream_flush(self._handle)  # nothing queued: returns at once

    async def close(self) -> None:
        """Flushes and ends the stream (in the default executor), then delivers the
        remaining callbacks. Idempotent; raises the failure if the flush failed."""
        if self._closed:
            _native.zerobus_stream_close(self._handle)  # returns the first result
            return
        error: Optional[BaseException] = None
        try:
            await self._loop.run_in_executor(None, _native.zerobus_stream_close, self._handle)
        except ZerobusException as e:
            error = e
        finally:
            self._closed = True
            self._stop_reading()
        if error is not None:
            raise error

    # ------------------------------------------------------------ failure handling
    async def get_unacked_records(self) -> List[bytes]:
        """Records never acknowledged, in order (after close or failure)."""
        return self._unacked()[0]

    async def get_unacked_batches(self) -> List[List[bytes]]:
        """Records never acknowledged, grouped by ingest call."""
        return self._unacked()[1]

    # ------------------------------------------------------------ context manager
    async def __aenter__(self) -> "ZerobusStream":
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            await self.close()
        except ZerobusException:
            if exc_type is None:
                raise
            _log.logger.warning("closing the stream after an error also failed", exc_info=True)

    # ------------------------------------------------------------ events
    def _on_events(self) -> None:
        """Reader callback: drains the stream's events and dispatches them."""
        if self._handle is None:
            return
        while True:
            try:
                events = _native.poll_events(self._handle, 256, 0)
            except ZerobusException:
                _log.logger.exception("polling the stream's events failed")
                if self._reading:
                    self._reading = False
                    self._loop.remove_reader(self._fd)
                return
            if not events:
                return
            self._dispatch.dispatch(events)
            if len(events) < 256:
                return

    def _settle(self, upto: int, error: Optional[BaseException]) -> None:
        if error is None:
            if upto > self._acked_upto:
                self._acked_upto = upto
        else:
            self._error_seen = True
        while self._waiters and self._waiters[0][0] <= upto:
            fut = heapq.heappop(self._waiters)[2]
            if not fut.done():
                if error is None:
                    fut.set_result(None)
                else:
                    fut.set_exception(error)
        self._wake_space_waiters()

    def _wake_space_waiters(self) -> None:
        waiters, self._space_waiters = self._space_waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(None)

    async def _wait_for_space(self) -> None:
        if self._closed or self._handle is None:
            return  # the next ingest attempt reports the closed stream
        fut = self._loop.create_future()
        self._space_waiters.append(fut)
        try:
            # Acks wake us; the timeout only guards against a missed wakeup.
            await asyncio.wait_for(fut, 1.0)
        except asyncio.TimeoutError:
            pass

    def _offset_future(self, offset: int, handed_out: bool = False) -> "asyncio.Future[None]":
        """A future settled when `offset` is durable (or will never be). With
        handed_out (an offset this stream just returned) the common cases need no
        call into the core."""
        fut = self._loop.create_future()
        if handed_out and not self._closed and not self._error_seen:
            if offset <= self._acked_upto:
                fut.set_result(None)
            else:
                # Not yet reported acked: an ACK or ERROR event will settle it
                # (events are read until close, which settles what is left).
                heapq.heappush(self._waiters, (offset, next(self._seq), fut))
            return fut
        try:
            _native.zerobus_stream_wait_for_offset(self._handle, offset, 0)
            fut.set_result(None)
        except ZerobusException as e:
            if e.code == _TIMEOUT and not self._closed and not self._is_final():
                heapq.heappush(self._waiters, (offset, next(self._seq), fut))
            else:
                fut.set_exception(e)
        return fut

    def _stop_reading(self) -> None:
        if self._reading:
            self._reading = False
            self._loop.remove_reader(self._fd)
            self._on_events()  # the last acks, errors and logs
        # Anything still waiting learns the outcome from the core.
        waiters, self._waiters = self._waiters, []
        for offset, _, fut in waiters:
            if fut.done():
                continue
            try:
                _native.zerobus_stream_wait_for_offset(self._handle, offset, 0)
                fut.set_result(None)
            except ZerobusException as e:
                fut.set_exception(e)
        self._wake_space_waiters()

    def __repr__(self) -> str:
        return "<zerobus.sdk.aio.ZerobusStream table=%s id=%s>" % (
            self._table_properties.table_name, self.stream_id if self._handle else None)


def _consume_exception(fut: "asyncio.Future[None]") -> None:
    # A deprecated ingest_record() future that nobody awaits must not warn at GC.
    if not fut.cancelled():
        fut.exception()


class ZerobusSdk:
    """asyncio entry point: same constructor as zerobus.sdk.sync.ZerobusSdk."""

    def __init__(self, server_endpoint: str, unity_catalog_endpoint: str,
                 **sdk_options: Any) -> None:
        self._h = _SdkHandle(server_endpoint, unity_catalog_endpoint, sdk_options)

    async def create_stream(self, client_id: Optional[str], client_secret: Optional[str],
                            table_properties: TableProperties,
                            options: Optional[StreamConfigurationOptions] = None,
                            headers_provider: Optional[HeadersProvider] = None
                            ) -> ZerobusStream:
        """Opens a stream (in the default executor: creation blocks in the core)."""
        options = _check_create_args(table_properties, options)
        provider = headers_provider_object(headers_provider)
        loop = asyncio.get_running_loop()
        handle = await _in_executor(loop, functools.partial(
            self._h.open_stream, client_id, client_secret, table_properties, options, provider))
        return ZerobusStream(self, handle, table_properties, options, provider, client_id,
                             client_secret, loop)

    async def recreate_stream(self, old_stream: ZerobusStream) -> ZerobusStream:
        """A new stream like old_stream, into which old_stream's unacknowledged records
        are ingested first. The old stream is closed first if still open."""
        if not isinstance(old_stream, ZerobusStream):
            raise TypeError("recreate_stream takes a zerobus.sdk.aio.ZerobusStream")
        if not old_stream._closed:
            try:
                await old_stream.close()
            except ZerobusException:
                pass
        loop = asyncio.get_running_loop()
        handle = await _in_executor(loop, functools.partial(
            _native.stream_recreate, old_stream._handle, old_stream._headers_provider))
        return ZerobusStream(self, handle, old_stream._table_properties, old_stream._options,
                             old_stream._headers_provider, old_stream._client_id,
                             old_stream._client_secret, loop)

    def close(self) -> None:
        """Releases the SDK handle (streams already created keep working)."""
        self._h.close()

    def __enter__(self) -> "ZerobusSdk":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    async def __aenter__(self) -> "ZerobusSdk":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()


async def _in_executor(loop: asyncio.AbstractEventLoop, fn: Any) -> Any:
    """Runs a stream-creating call in the executor; if the caller is cancelled the
    stream it still creates is destroyed rather than leaked."""
    fut = loop.run_in_executor(None, fn)
    try:
        return await asyncio.shield(fut)
    except asyncio.CancelledError:
        def _discard(f: "asyncio.Future[Any]") -> None:
            if not f.cancelled() and f.exception() is None:
                _native.zerobus_stream_destroy(f.result())
        fut.add_done_callback(_discard)
        raise
