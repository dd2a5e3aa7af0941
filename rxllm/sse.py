"""Server-sent events: a bounded byte splitter, the event decoder, and ``sse_source``.

The decoder follows the WHATWG rules for interpreting an event stream, in small
pure pieces that never touch the network:

* ``LineSplitter`` cuts bytes, as they arrive from the socket in pieces of any
  size, into complete lines. LF, CR and CRLF all end a line, and a CR at the end
  of one piece followed by an LF at the start of the next is one line end. A line
  is handed on only once it is complete, so a UTF-8 character split between two
  pieces is whole again by then. An incomplete line is kept as a list of pieces
  joined once, and its size is bounded.
* ``SseDecoder`` strips a leading byte order mark, decodes each complete line
  once (invalid UTF-8 is an ``SseError``), assembles fields into events and
  dispatches one ``SseEvent`` at each blank line. The bytes held for one event are
  bounded by ``max_event_size`` (``EventTooLargeError``).

and one I/O function:

* ``sse_source`` is the cold Observable that POSTs through ``rxllm._http`` and
  emits the decoded events.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import msgspec
from reactivex import Observable, abc

from rxllm import _log
from rxllm._aio import from_async
from rxllm._http import HttpClient
from rxllm.control import PauseControl, throttles
from rxllm.errors import CallbackError, EventTooLargeError, ResponseTooLargeError, SseError

__all__ = [
    "DEFAULT_MAX_EVENT_SIZE",
    "DEFAULT_MAX_RESPONSE_SIZE",
    "LineSplitter",
    "SseDecoder",
    "SseEvent",
    "sse_source",
]

DEFAULT_MAX_EVENT_SIZE = 16 * 1024 * 1024
"""The largest server-sent event accepted, in bytes (``EventTooLargeError`` beyond)."""

DEFAULT_MAX_RESPONSE_SIZE = 256 * 1024 * 1024
"""The largest whole response body accepted, in bytes (``ResponseTooLargeError`` beyond)."""


class SseEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One dispatched server-sent event: ``data`` lines joined with LF."""

    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


_BOM = b"\xef\xbb\xbf"
_CR = 0x0D
_LF = 0x0A
_SHOWN_BYTES = 40


class LineSplitter:
    """Bytes in, complete lines out (without their line ends), with a bounded incomplete line.

    ``feed`` takes bytes as they arrive and returns the lines they complete;
    ``finish`` says the bytes ended and returns the incomplete last line, if any.
    An incomplete line longer than ``max_line_size`` bytes raises
    ``EventTooLargeError`` at once, so one endless line cannot grow memory
    without bound; when the same piece completed lines before it, those are
    returned first and the next ``feed`` raises::

        splitter = LineSplitter(max_line_size=1024)
        splitter.feed(b"data: a\\r")     # [b"data: a"]
        splitter.feed(b"\\ndata: b")     # [] (the LF closes the CRLF; "data: b" waits)
        splitter.feed(b"c\\n\\n")        # [b"data: bc", b""]
        splitter.finish()               # None: the bytes ended at a line end
    """

    __slots__ = ("_after_cr", "_error", "_max_line_size", "_pending", "_pending_size")

    def __init__(self, *, max_line_size: int = DEFAULT_MAX_EVENT_SIZE) -> None:
        self._max_line_size = max_line_size
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._after_cr = False
        self._error: EventTooLargeError | None = None

    @property
    def pending_size(self) -> int:
        """The number of bytes of the incomplete line held so far."""
        return self._pending_size

    def feed(self, chunk: bytes) -> list[bytes]:
        """The lines that ``chunk`` completes, in order; an empty line is ``b""``."""
        if self._error is not None:
            raise self._error
        if self._after_cr and chunk:
            self._after_cr = False
            if chunk[0] == _LF:
                # The LF of a CRLF whose CR ended the previous piece: that line already ended.
                chunk = chunk[1:]
        if not chunk:
            return []
        lines = chunk.splitlines()
        last = chunk[-1]
        tail: bytes | None = None
        if last == _CR:
            self._after_cr = True
        elif last != _LF:
            tail = lines.pop()
        pending = self._pending
        if pending and lines:
            pending.append(lines[0])
            lines[0] = b"".join(pending)
            pending.clear()
            self._pending_size = 0
        if tail is not None:
            pending.append(tail)
            self._pending_size += len(tail)
            if self._pending_size > self._max_line_size:
                pending.clear()
                self._pending_size = 0
                error = EventTooLargeError(self._max_line_size)
                if not lines:
                    raise error
                self._error = error  # the lines before it are delivered; the next call raises
        return lines

    def finish(self) -> bytes | None:
        """The incomplete last line, or ``None`` when the bytes ended at a line end; then start afresh."""
        error, self._error = self._error, None
        rest = b"".join(self._pending) if self._pending else None
        self._pending = []
        self._pending_size = 0
        self._after_cr = False
        if error is not None:
            raise error
        return rest


class SseDecoder:
    """An event stream's bytes in, ``SseEvent`` objects out, one decoder per response body.

    ``feed`` takes bytes as they arrive, split anywhere, and returns the events
    they complete; ``finish`` says the body ended::

        decoder = SseDecoder()
        decoder.feed(b'data: {"a":')             # []
        decoder.feed(b' 1}\\n\\n: ping\\n\\nda')    # [SseEvent(data='{"a": 1}')]
        decoder.feed(b"ta: [DONE]\\n")           # []
        decoder.finish()                        # [SseEvent(data='[DONE]')]

    The fields, as the WHATWG event-stream rules have them:

    * ``data:`` appends a line to the event's data (one leading space is
      stripped, no more); the lines are joined with LF.
    * ``event:`` sets the event type (``"message"`` when absent or empty).
    * ``id:`` sets the last event id, which every later event carries until
      another ``id:`` changes it (``id:`` with no value sets it to ``""``; ``None``
      means the server never sent one). An id containing NUL is ignored.
    * ``retry:`` with ASCII digits only sets ``retry`` on the event it belongs
      to; any other value is ignored. (A browser keeps it as its reconnection
      delay; rxllm never reconnects and only reports it.)
    * A line starting with ``:`` is a comment (keep-alives such as ``: ping``); a
      line without a colon is a field with an empty value; unknown fields are
      ignored.
    * A blank line dispatches the event; an event without any ``data`` line is
      not dispatched (its ``id:`` still counts).
    * One UTF-8 byte order mark at the very start of the body is dropped.

    Errors, after which the decoder raises the same error on every call:

    * ``SseError`` when a complete line is not valid UTF-8;
    * ``EventTooLargeError`` as soon as the bytes held for one event exceed
      ``max_event_size``: the bytes of its ``data`` lines (as sent, without line
      ends) plus its incomplete current line, or any single line of it. It is
      raised while the line is still arriving, so memory stays bounded by the
      limit even for an endless line.

    Nothing that arrived whole is lost to an error: when a piece completes
    events before the bad part, ``feed`` returns those and the next call raises.
    """

    __slots__ = (
        "_at_start",
        "_data",
        "_data_size",
        "_error",
        "_event_type",
        "_head",
        "_last_id",
        "_lines",
        "_max_event_size",
        "_retry",
    )

    def __init__(self, *, max_event_size: int = DEFAULT_MAX_EVENT_SIZE) -> None:
        self._max_event_size = max_event_size
        self._lines = LineSplitter(max_line_size=max_event_size)
        self._at_start = True
        self._head = b""
        self._data: list[str] = []
        self._data_size = 0
        self._event_type = ""
        self._last_id: str | None = None
        self._retry: int | None = None
        self._error: SseError | None = None

    def feed(self, chunk: bytes) -> list[SseEvent]:
        """The events that ``chunk`` completes, in order."""
        if self._error is not None:
            raise self._error
        if self._at_start:
            chunk = self._without_bom(chunk)
            if not chunk:
                return []
        events: list[SseEvent] = []
        try:
            lines = self._lines.feed(chunk)
            if lines:
                self._assemble(lines, events)
            if self._lines.pending_size + self._data_size > self._max_event_size:
                raise EventTooLargeError(self._max_event_size)
        except SseError as error:
            self._fail(error)
            if not events:
                raise
        return events

    def finish(self) -> list[SseEvent]:
        """The body ended: the event still pending, if it is whole; then start afresh.

        A deliberate deviation from the WHATWG rules, which discard an event not
        followed by a blank line at the end of the stream: when the body ends
        right after a complete line (``data: [DONE]\\n`` and close, as some
        servers do), the pending event is dispatched. When the body was cut in
        the middle of a line, that event is discarded whole, its complete lines
        too: it is not known what was lost, and the caller notices the missing
        end marker.
        """
        if self._error is not None:
            raise self._error
        try:
            partial = self._lines.finish()
        except SseError as error:
            self._fail(error)
            raise
        events: list[SseEvent] = []
        if partial is None and self._data:
            events.append(
                SseEvent(
                    data="\n".join(self._data),
                    event=self._event_type or "message",
                    id=self._last_id,
                    retry=self._retry,
                )
            )
        self._reset()
        return events

    def _without_bom(self, chunk: bytes) -> bytes:
        """``chunk`` without the byte order mark that may open the body, once it is known whether one does."""
        head = self._head + chunk
        if len(head) < len(_BOM) and _BOM.startswith(head):
            self._head = head  # perhaps the start of a byte order mark: wait for more
            return b""
        self._at_start = False
        self._head = b""
        return head[len(_BOM) :] if head.startswith(_BOM) else head

    def _assemble(self, lines: list[bytes], events: list[SseEvent]) -> None:
        """Fields of complete lines into ``events``; the state lives in locals for speed."""
        data = self._data
        size = self._data_size
        event_type = self._event_type
        last_id = self._last_id
        retry = self._retry
        limit = self._max_event_size
        for line in lines:
            if not line:
                if data:
                    events.append(
                        SseEvent(data="\n".join(data), event=event_type or "message", id=last_id, retry=retry)
                    )
                    data = []
                size = 0
                event_type = ""
                retry = None
                continue
            if size + len(line) > limit:
                raise EventTooLargeError(limit)
            try:
                text = line.decode()
            except UnicodeDecodeError as exc:
                raise SseError(_invalid_utf8(line, exc)) from exc
            if text.startswith("data: "):
                # The usual line, first; the general rules below give the same result.
                data.append(text[6:])
                size += len(line)
                continue
            name, colon, value = text.partition(":")
            if colon:
                if not name:
                    continue  # a comment
                if value[:1] == " ":
                    value = value[1:]
            if name == "data":
                data.append(value)
                size += len(line)
            elif name == "event":
                event_type = value
            elif name == "id":
                if "\x00" not in value:
                    last_id = value
            elif name == "retry":
                if value.isascii() and value.isdigit():
                    retry = int(value)
        self._data = data
        self._data_size = size
        self._event_type = event_type
        self._last_id = last_id
        self._retry = retry

    def _fail(self, error: SseError) -> None:
        self._reset()
        self._error = error

    def _reset(self) -> None:
        self._lines = LineSplitter(max_line_size=self._max_event_size)
        self._at_start = True
        self._head = b""
        self._data = []
        self._data_size = 0
        self._event_type = ""
        self._last_id = None
        self._retry = None


def _invalid_utf8(line: bytes, exc: UnicodeDecodeError) -> str:
    start = max(0, exc.start - _SHOWN_BYTES // 2)
    shown = line[start : start + _SHOWN_BYTES]
    return (
        f"the event stream is not valid UTF-8: {exc.reason} at byte {exc.start} of a line "
        f"({len(line)} bytes); around it: {shown!r}"
    )


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

    request = _SseRequest(client, url, body, headers, pause, max_event_size, max_response_size)
    return from_async(request.pump)


class _SseRequest:
    """What one ``sse_source`` sends, and ``pump``, which each subscription runs (slots, not closures)."""

    __slots__ = ("body", "client", "headers", "max_event_size", "max_response_size", "pause", "url")

    def __init__(
        self,
        client: HttpClient,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        pause: PauseControl | None,
        max_event_size: int,
        max_response_size: int | None,
    ) -> None:
        self.client = client
        self.url = url
        self.body = body
        self.headers = headers
        self.pause = pause
        self.max_event_size = max_event_size
        self.max_response_size = max_response_size

    async def pump(self, observer: abc.ObserverBase[SseEvent], disposed: Callable[[], bool]) -> None:
        decoder = SseDecoder(max_event_size=self.max_event_size)
        max_response_size = self.max_response_size
        # The user's pause and the throttles of bounded consumers: the body is not read while
        # any of them is paused.
        pauses = ((self.pause,) if self.pause is not None else ()) + throttles()
        received = 0
        # Disposal cancels the task; leaving ``async with`` closes the response.
        async with self.client.open_stream(self.url, body=self.body, headers=self.headers) as pieces:
            async for piece in pieces:
                received += len(piece)
                if max_response_size is not None and received > max_response_size:
                    raise ResponseTooLargeError(max_response_size)
                events = decoder.feed(piece)
                if _log.is_enabled():  # once per piece, not per event
                    for event in events:
                        _log.log("TRACE", f"SSE event {event.event!r}, {len(event.data)} characters")
                for event in events:
                    try:
                        observer.on_next(event)
                    except Exception as exc:  # noqa: BLE001 - a subscriber's callback failed: end loud
                        raise CallbackError("on_next", exc) from exc
                    if disposed():
                        return
                while pauses and any(pause.is_paused for pause in pauses):
                    for pause in pauses:
                        await pause.wait_resumed()
            for event in decoder.finish():
                try:
                    observer.on_next(event)
                except Exception as exc:  # noqa: BLE001 - as above
                    raise CallbackError("on_next", exc) from exc
                if disposed():
                    return
