"""The I/O source: one HTTP POST per subscription, its body fed to a pure decoder, the events emitted.

::

    http_events(client, url, decoder=...)  ─► subscribe ─► POST ─► piece ─► decoder.feed ─► -e-e-e-|

The decoder is a pure step object (``PieceDecoder``): bytes in, events out, no
I/O. ``sse_source`` gives it ``SseDecoder``'s events; a provider's turn gives it
the whole turn's decoding (SSE, its dialect, tool calls, the one ``Final``), so a
turn's events reach the retries straight from the task that reads the socket,
with no operator in between (``rxllm.providers._turn``).

What the source does itself, once per piece read (never per event):

* bounds the body (``max_response_size``: ``ResponseTooLargeError``);
* keeps the ``first_event`` and ``idle`` limits when given (a
  ``rxllm.timeouts.ProgressWindow``: a piece that completed events is progress);
* stops reading while the user's ``pause`` or a bounded consumer's throttle is
  paused (TCP flow control holds the server back);
* turns an exception from a subscriber's ``on_next`` into ``CallbackError``.

Exactly one request per subscription; it never reconnects. Disposing cancels
the task, which closes the response. An error the decoder or the transport
raises is given to ``decoder.failed`` (to charge what the attempt reported),
then, with ``name_errors``, named with the request's method and URL.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Generic, Protocol, TypeVar

from reactivex import Observable, abc

from rxllm import _log
from rxllm.control import PauseControl, throttles
from rxllm.errors import CallbackError, ResponseTooLargeError
from rxllm.transport._aio import _TaskSubscription, event_loop, on_loop
from rxllm.transport._fusion import Fused, Link, Stage
from rxllm.transport._http import METHOD, HttpClient, name_request, safe_url
from rxllm.transport.sse import DEFAULT_MAX_EVENT_SIZE, DEFAULT_MAX_RESPONSE_SIZE, SseDecoder, SseEvent
from rxllm.transport.timeouts import ProgressWindow

__all__ = ["PieceDecoder", "decoded", "http_events", "sse_source"]

_T = TypeVar("_T")
_T_co = TypeVar("_T_co", covariant=True)


class PieceDecoder(Protocol[_T_co]):
    """A response body's pieces in, events out: the pure step a source feeds.

    ``feed`` returns the events a piece completes; when a piece fails after
    events, those are returned and ``error`` holds the failure (raised by the
    source once they are delivered). ``finish`` says the body ended cleanly.
    ``ended`` says an end marker arrived: nothing more is read. ``progressed``
    says the last piece completed something, even when it made no event (a
    keep-alive event is progress for the ``idle`` limit). ``failed(error)``
    hears the error that ends the attempt, whatever raised it.
    """

    @property
    def progressed(self) -> bool: ...

    @property
    def error(self) -> Exception | None: ...

    @property
    def ended(self) -> bool: ...

    def feed(self, piece: bytes) -> Sequence[_T_co]: ...

    def finish(self) -> Sequence[_T_co]: ...

    def failed(self, error: Exception) -> None: ...


def http_events(
    client: HttpClient,
    url: str,
    *,
    body: bytes,
    headers: Mapping[str, str],
    decoder: Callable[[], PieceDecoder[_T]],
    pause: PauseControl | None = None,
    max_response_size: int | None = None,
    first_event: float | None = None,
    idle: float | None = None,
    name_errors: bool = False,
) -> Fused[_T]:
    """A cold Observable: each subscription POSTs ``body`` once and emits what ``decoder()`` makes of it."""
    return _HttpEvents(
        _Request(
            client, url, body, headers, decoder, pause, max_response_size, first_event, idle, name_errors
        )
    )


class _Request(Generic[_T]):
    """What one ``http_events`` sends and how its reply is read, shared by its subscriptions."""

    __slots__ = (
        "body",
        "client",
        "decoder",
        "first_event",
        "headers",
        "idle",
        "max_response_size",
        "name_errors",
        "pause",
        "url",
    )

    def __init__(
        self,
        client: HttpClient,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        decoder: Callable[[], PieceDecoder[_T]],
        pause: PauseControl | None,
        max_response_size: int | None,
        first_event: float | None,
        idle: float | None,
        name_errors: bool,
    ) -> None:
        self.client = client
        self.url = url
        self.body = body
        self.headers = headers
        self.decoder = decoder
        self.pause = pause
        self.max_response_size = max_response_size
        self.first_event = first_event
        self.idle = idle
        self.name_errors = name_errors


class _HttpEvents(Fused[_T]):
    def __init__(self, request: _Request[_T]) -> None:
        self._request = request

    def _subscribe_core(
        self, observer: abc.ObserverBase[_T], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        # Without a loop this raises EventLoopError: delivered to the observer by the subscribe
        # call (or raised from it when the subscriber has no on_error, as plain Rx does).
        loop = event_loop(scheduler)
        pump = _Pump(loop, observer, self._request, scheduler)
        on_loop(loop, pump.start)
        return pump


class _Pump(_TaskSubscription[_T], Generic[_T]):
    """One subscription: its task reads the body, its decoder, its progress window (one slotted object)."""

    __slots__ = ("decoder", "request", "scheduler", "window")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        observer: abc.ObserverBase[_T],
        request: _Request[_T],
        scheduler: abc.SchedulerBase | None,
    ) -> None:
        super().__init__(loop, observer, self._pump)
        self.request = request
        self.scheduler = scheduler
        self.decoder: PieceDecoder[_T] = request.decoder()
        self.window: ProgressWindow | None = None

    def start(self) -> None:
        if self.disposed:
            return
        request = self.request
        if request.first_event is not None or request.idle is not None:
            self.window = ProgressWindow(
                request.pause, self.scheduler, self.fail, request.first_event, request.idle
            )
        self.task = self.loop.create_task(self.run())

    async def _pump(self, observer: abc.ObserverBase[_T], disposed: Callable[[], bool]) -> None:
        request = self.request
        decoder = self.decoder
        window = self.window
        limit = request.max_response_size
        pause = request.pause
        # The user's pause and the throttles of bounded consumers: the body is not read while any
        # of them is paused.
        pauses = ((pause,) if pause is not None else ()) + throttles()
        received = 0
        # Disposal cancels the task; leaving ``async with`` closes the response.
        async with request.client.open_stream(
            request.url, body=request.body, headers=request.headers
        ) as pieces:
            async for piece in pieces:
                received += len(piece)
                if limit is not None and received > limit:
                    raise ResponseTooLargeError(limit)
                events = decoder.feed(piece)
                if events:
                    if _log.is_enabled():  # once per piece, not per event
                        for event in events:
                            _log.log("TRACE", f"event {type(event).__name__} from {len(piece)} bytes read")
                    if not self._deliver(observer, events):
                        return
                # After the delivery, so the events reach the subscriber first (the first event's
                # latency: the first progress arms the idle clock); the idle window starts afresh then.
                if window is not None and (events or decoder.progressed):
                    window.progress()
                error = decoder.error
                if error is not None:
                    raise error
                if decoder.ended:
                    break  # servers may hold the connection open after the end marker
                while pauses and any(paused.is_paused for paused in pauses):
                    for paused in pauses:
                        await paused.wait_resumed()
            if not self._deliver(observer, decoder.finish()):
                return
            error = decoder.error
            if error is not None:
                raise error

    def _deliver(self, observer: abc.ObserverBase[_T], events: Sequence[_T]) -> bool:
        """Pass ``events`` on; false when the subscription was disposed meanwhile."""
        for event in events:
            try:
                observer.on_next(event)
            except Exception as exc:  # noqa: BLE001 - a subscriber's callback failed: end loud
                raise CallbackError("on_next", exc) from exc
            if self.disposed:
                return False
        return True

    def end(self, error: Exception | None) -> None:
        window = self.window
        if window is not None:
            window.stop()
        if error is not None:
            self.decoder.failed(error)
            if self.request.name_errors:
                name_request(error, METHOD, safe_url(self.request.url))
        super().end(error)

    def dispose(self) -> None:
        window = self.window
        if window is not None:
            window.stop()
        super().dispose()


def decoded(decoder: Callable[[], PieceDecoder[_T]]) -> Callable[[Observable[bytes]], Observable[_T]]:
    """Body pieces from any source through ``decoder()``, as ``http_events`` reads a response body.

    For bytes that do not come from an HTTP response (a recording replayed, a
    marble test): each subscription gets its own decoder; the source's
    completion is the body's end, its error the attempt's failure.

    .. marble::
        :alt: decoded

        -p-q-|                  p, q = pieces of an event stream's body, cut anywhere
        [ decoded(SseDecoder) ]
        -a-b-|                  a, b = the events they complete

        -p-#                    # = ConnectionResetError("peer closed")
        [ decoded(SseDecoder) ]
        -a-#

        :values: from rxllm.transport.sse import SseDecoder, SseEvent
                 blank_line = bytes([10, 10])
                 p = b"data: 1" + blank_line + b"data: "; q = b"2" + blank_line
                 a = SseEvent(data="1"); b = SseEvent(data="2")
    """

    def link(observer: abc.ObserverBase[_T], _scheduler: abc.SchedulerBase | None) -> _Decoded[_T]:
        return _Decoded(observer, decoder())

    def _decoded(source: Observable[bytes]) -> Observable[_T]:
        return Stage(source, link)

    return _decoded


class _Decoded(Link[bytes, _T], Generic[_T]):
    """One subscription: its decoder. Nothing reaches the decoder after a terminal."""

    __slots__ = ("decoder",)

    def __init__(self, observer: abc.ObserverBase[_T], decoder: PieceDecoder[_T]) -> None:
        super().__init__(observer)
        self.decoder = decoder

    def on_next(self, piece: bytes) -> None:
        if not self.stopped:
            self._take(piece)

    def on_completed(self) -> None:
        if not self.stopped:
            self._take(None)

    def _take(self, piece: bytes | None) -> None:
        """Decode ``piece`` (``None``: the body ended), pass on what it completes, then the decoder's end."""
        decoder = self.decoder
        try:
            events = decoder.feed(piece) if piece is not None else decoder.finish()
        except Exception as error:  # noqa: BLE001 - the attempt's failure, delivered
            self.on_error(error)
            return
        observer = self.observer
        for event in events:
            if self.stopped:
                return
            observer.on_next(event)
        if self.stopped:
            return
        if decoder.error is not None:
            self.on_error(decoder.error)
        elif piece is None:
            super().on_completed()
        elif decoder.ended:
            self._take(None)  # an end marker: the rest of the body is not read

    def on_error(self, error: Exception) -> None:
        if self.stopped:
            return
        self.decoder.failed(error)
        super().on_error(error)


def sse_source(
    client: HttpClient,
    url: str,
    *,
    body: bytes,
    headers: Mapping[str, str],
    pause: PauseControl | None = None,
    max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
    max_response_size: int | None = DEFAULT_MAX_RESPONSE_SIZE,
) -> Observable[SseEvent]:
    """A cold Observable: each subscription POSTs ``body`` once and emits the reply's events.

    .. marble::
        :alt: sse_source

        -e-e-e-|            from the subscription (the POST) on: an SseEvent e a piece; the body ended
        -e-e-#              ... or an HTTP error, a transport error, bad bytes

    * Exactly one request per subscription; it never reconnects or re-sends.
    * A non-2xx reply is a ``ProviderError`` with the provider's own message.
    * More than ``max_response_size`` bytes of body (``None``: no bound) is a
      ``ResponseTooLargeError``; the connection is closed.
    * Disposing cancels the request task, which closes the HTTP response.
    * With ``pause``, the body is not read while paused (TCP flow control holds
      the server back); the events of a piece already read are still emitted,
      and ``pause_gate`` holds them. The same holds while a bounded consumer
      the subscription was made for (``rxllm.control.throttled``) is full.
    * Events are emitted on the event loop: from the running loop of the
      subscribing coroutine, or the loop of an ``AsyncIOScheduler`` passed to
      ``subscribe``. Anywhere else the subscription fails with ``EventLoopError``.
    """
    return http_events(
        client,
        url,
        body=body,
        headers=headers,
        decoder=functools.partial(SseDecoder, max_event_size=max_event_size),
        pause=pause,
        max_response_size=max_response_size,
    )
