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

The I/O, ``sse_source`` (the cold Observable that POSTs through ``rxllm.transport._http``
and emits the decoded events), lives in ``rxllm.transport._source``; ``rxllm.sse.sse_source``
names it, loaded on first use, so that importing the decoder loads no HTTP
client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from rxllm.errors import EventTooLargeError, SseError

if TYPE_CHECKING:
    from rxllm.transport._source import sse_source as sse_source

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


class SseEvent(msgspec.Struct, frozen=True, kw_only=True, gc=False):
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

    progressed = False
    """Progress is the events ``feed`` returns (``rxllm.transport._source.PieceDecoder``)."""

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

    ended = False
    """Never: an event stream has no end marker of its own (for ``rxllm.transport._source.PieceDecoder``)."""

    @property
    def error(self) -> SseError | None:
        """The failure a ``feed`` met after returning the events before it (raised by the next call)."""
        return self._error

    def failed(self, error: Exception) -> None:
        """Nothing to charge: a plain event stream keeps no accounts (a ``_source.PieceDecoder``)."""

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
            if b"\r" in chunk:
                self._lines_of(chunk, events)
            else:
                if not self._between_events():
                    # An event is in progress: the general rules finish it, up to the blank line that
                    # ends it (at the very start when the bytes so far ended at a line end).
                    at_line_end = not self._lines._pending
                    # With no blank line in this piece, find gives -1: end is 1 and the rest of the piece
                    # goes through the general rules below, as the same event.
                    end = 1 if at_line_end and chunk[:1] == b"\n" else chunk.find(b"\n\n") + 2
                    self._lines_of(chunk[:end], events)
                    chunk = chunk[end:]
                if chunk and self._between_events():
                    self._blocks(chunk, events)
                elif chunk:
                    self._lines_of(chunk, events)
        except SseError as error:
            self._fail(error)
            if not events:
                raise
        return events

    def _between_events(self) -> bool:
        """Nothing of an event is held: the next bytes start one (the fast path may cut at blank lines)."""
        lines = self._lines
        return not (
            lines._pending or lines._after_cr or self._data or self._event_type or self._retry is not None
        )

    def _lines_of(self, chunk: bytes, events: list[SseEvent]) -> None:
        """The general rules: cut lines, assemble fields (any line ends, comments, every field)."""
        lines = self._lines.feed(chunk)
        if lines:
            self._assemble(lines, events)
        if self._lines.pending_size + self._data_size > self._max_event_size:
            raise EventTooLargeError(self._max_event_size)

    def _blocks(self, chunk: bytes, events: list[SseEvent]) -> None:
        """The common path: whole events cut at blank lines, in C; the usual forms read without a line loop.

        An event that is one ``data: ...`` line, or an ``event: ...`` line and one
        ``data: ...`` line (what every provider sends), is read here; any other
        block (comments, ``id:``, ``retry:``, several data lines, an oversized or
        undecodable one) and the incomplete rest go through the general rules,
        which give the same result for the common forms too.
        """
        blocks = chunk.split(b"\n\n")
        rest = blocks.pop()  # after the last blank line: an event still arriving (or nothing)
        limit = self._max_event_size
        for block in blocks:
            # ``10 in block`` (a newline) is a memchr; ``b"\n" in block`` costs several times more.
            if len(block) <= limit:
                if block[:6] == b"data: ":
                    if 10 not in block:
                        try:
                            events.append(SseEvent(data=block[6:].decode(), id=self._last_id))
                            continue
                        except UnicodeDecodeError:
                            pass
                elif block[:7] == b"event: ":
                    end = block.find(10)
                    data = block[end + 1 :]
                    if end > 7 and data[:6] == b"data: " and 10 not in data:
                        try:
                            events.append(
                                SseEvent(
                                    data=data[6:].decode(), event=block[7:end].decode(), id=self._last_id
                                )
                            )
                            continue
                        except UnicodeDecodeError:
                            pass
            self._lines_of(block + b"\n\n", events)
        if rest:
            self._lines_of(rest, events)

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


def __getattr__(name: str) -> Any:
    # ``sse_source`` is the I/O source's (rxllm.transport._source), loaded on first use (PEP 562).
    if name == "sse_source":
        from rxllm.transport._source import sse_source

        return sse_source
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
