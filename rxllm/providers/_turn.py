"""A turn fused: its decoding in one step, and its accounts.

::

    TurnDecoder(dialect) = SseDecoder ─► dialect.parser() ─► _ToolCalls ─► FinalPieces   (+ the record)
    accounted(build) = per subscription: accounts = Accounts(dialect); build(accounts), which is
        http_events(decoder=accounts.decoder) ─► retry_turn(...) ─► total_timeout(...)

``Provider.stream`` gives it to the HTTP source (``rxllm.transport._source.http_events``),
so a turn's events go from the task that reads the socket to the retries with no
operator between: the steps that ``sse_source``, ``parse_chunk``,
``accumulate_tool_calls`` and ``dedupe_final`` wrap, called in one loop per
piece read. Each operator keeps working alone, over the same step classes, in
any ``pipe`` (and keeps its marble tests).

The decoder also keeps the attempt's record, for the error that may end it:
what the attempt reported (``usage``) and, for a ``StreamTruncatedError``, the
``partial`` response that arrived. Text is kept as its pieces joined every
``TEXT_CHUNK`` (the event objects are not kept); the rest is folded into a
``ResponseBuilder`` as it comes, so what a stream holds for its partial grows
with its text, not with its event count.

``accounted`` is the turn, outside its retries and time limit. Each
subscription gets its ``Accounts``: the attempts' decoders are made there (the
latest is the current attempt), and with mid-stream resends the ``StreamReset``
that discards an attempt sets its reported usage aside (``SetAside``, as
``dedupe_final`` does), charged to the turn's ``Final``. Without resends no
attempt is ever discarded and the events go straight from the retries to the
observer. Either way the error that ends the turn gets the turn's usage so far
and the request's method and URL. An attempt that failed and was retried
before its first event is not counted in that error: the server refused it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import msgspec
from reactivex import Observable, abc

from rxllm.errors import RxLLMError, StreamTruncatedError
from rxllm.events import (
    AssistantEvent,
    ChunkEvent,
    Final,
    ReasoningDelta,
    StreamReset,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from rxllm.operators._accumulate_tool_calls import _ToolCalls
from rxllm.operators._dedupe_final import FinalPieces, SetAside
from rxllm.operators._parse_chunk import truncation_message
from rxllm.response import ResponseBuilder
from rxllm.transport._fusion import Fused, Link
from rxllm.transport._http import METHOD, name_request
from rxllm.transport.sse import SseDecoder
from rxllm.typing import ChunkParser, Dialect

__all__ = ["TEXT_CHUNK", "Accounts", "TurnDecoder", "accounted"]

TEXT_CHUNK = 64
"""Text pieces joined into one string at a time in the record (a string costs about 50 bytes of its own)."""


class TurnDecoder:
    """One attempt's decoding state: a ``rxllm.transport._source.PieceDecoder`` of assistant events."""

    __slots__ = (
        "failure",
        "reported",
        "_builder",
        "_calls",
        "_chunks",
        "_final",
        "_parser",
        "_sse",
        "_text",
        "_truncated",
        "ended",
        "error",
        "progressed",
    )

    def __init__(self, dialect: Dialect, max_event_size: int) -> None:
        self._sse = SseDecoder(max_event_size=max_event_size)
        self._parser: ChunkParser = dialect.parser()
        self._truncated = truncation_message(dialect)
        self._calls: _ToolCalls | None = None  # made at the first event that is not plain text
        self._final = FinalPieces()
        self._text: list[str] = []  # the record: the latest text pieces,
        self._chunks: list[str] = []  # the earlier ones joined TEXT_CHUNK at a time,
        self._builder: ResponseBuilder | None = None  # and everything else but progress
        self.error: Exception | None = None
        self.ended = False
        self.progressed = False  # the last piece completed an SSE event (a ping included)
        self.failure: Exception | None = None  # the error that ended the attempt
        self.reported: Usage | None = None  # what it reported, the failed response's own included

    def feed(self, piece: bytes) -> list[AssistantEvent]:
        """The events ``piece`` completes; a failure after events is kept in ``error`` (raised next)."""
        if self.error is not None:
            raise self.error
        out: list[AssistantEvent] = []
        try:
            sse = self._sse
            decoded = sse.feed(piece)
            self.progressed = bool(decoded)
            # _decode, inlined for the common case (text): one call per event fewer.
            parser = self._parser
            parse = parser.feed
            text = self._text
            for event in decoded:
                for made in parse(event.event, event.data):
                    if type(made) is TextDelta:
                        text.append(made.text)
                        if len(text) >= TEXT_CHUNK:
                            self._chunks.append("".join(text))
                            text.clear()
                        out.append(made)
                    else:
                        self._made(made, out)
                if parser.done:
                    self.ended = True
                    return out
            if sse.error is not None:
                raise sse.error
        except Exception as error:  # noqa: BLE001 - delivered after the events before it
            if not out:
                raise
            self.error = error
        return out

    def finish(self) -> list[AssistantEvent]:
        """The body ended (or the end marker came): the last events, the open calls, the one ``Final``."""
        if self.error is not None:
            raise self.error
        out: list[AssistantEvent] = []
        if not self.ended:
            try:
                for event in self._sse.finish():
                    self._decode(event.event, event.data, out)
                    if self.ended:
                        break
            except Exception as error:  # noqa: BLE001 - delivered after the events before it
                if not out:
                    raise
                self.error = error
                return out
        if not self._parser.finished:
            self.error = StreamTruncatedError(self._truncated)
            return out
        if self._calls is not None:
            for call in self._calls.close():
                self._keep(call)
                out.append(call)
        out.append(self._final.whole())
        return out

    def _decode(self, name: str, data: str, out: list[AssistantEvent]) -> None:
        parser = self._parser
        for event in parser.feed(name, data):
            if type(event) is TextDelta:
                text = self._text
                text.append(event.text)
                if len(text) >= TEXT_CHUNK:
                    self._chunks.append("".join(text))
                    text.clear()
                out.append(event)
            else:
                self._made(event, out)
        if parser.done:
            self.ended = True

    def _made(self, event: ChunkEvent, out: list[AssistantEvent]) -> None:
        """An event that is not text: the turn's end, reasoning, or a tool call's part."""
        kind = type(event)
        if kind is Final:
            self._end(event, out)  # type: ignore[arg-type]  # kind is Final
        elif kind is ReasoningDelta:
            self._keep(event)  # type: ignore[arg-type]  # kind is ReasoningDelta
            out.append(event)  # type: ignore[arg-type]
        else:
            self._other(event, out)

    def _end(self, final: Final, out: list[AssistantEvent]) -> None:
        # A finish reason completes the open calls, in order, before the turn's end (as
        # accumulate_tool_calls does); the pieces are held for the one Final at the end.
        if final.finish_reason is not None and self._calls is not None:
            for call in self._calls.close():
                self._keep(call)
                out.append(call)
        self._final.feed(final)

    def _other(self, event: ChunkEvent, out: list[AssistantEvent]) -> None:
        calls = self._calls
        if calls is None:
            calls = self._calls = _ToolCalls()
        for made in calls.feed(event):
            if type(made) is not ToolCallDelta:
                self._keep(made)
            out.append(made)

    def _keep(self, event: AssistantEvent) -> None:
        builder = self._builder
        if builder is None:
            builder = self._builder = ResponseBuilder()
        builder.feed(event)

    @property
    def usage(self) -> Usage | None:
        """What the attempt reported so far."""
        return self._final.usage

    def failed(self, error: Exception) -> None:
        """The attempt ended with ``error``: it gets the attempt's usage and, when cut, its partial."""
        self.failure = error
        if not isinstance(error, RxLLMError):
            self.reported = self._final.usage
            return
        # The error's own usage (a failed response's) is that response's last report.
        error.usage = self.reported = Usage.merged(self._final.usage, error.usage)
        if isinstance(error, StreamTruncatedError) and error.partial is None:
            builder = self._builder if self._builder is not None else ResponseBuilder()
            held = self._final.held
            if held is not None:
                builder.feed(held)
            text = "".join(self._chunks) + "".join(self._text)
            error.partial = msgspec.structs.replace(builder.build(), text=text)


class Accounts:
    """One turn subscription's accounts: its attempts' decoders (the latest is current), usage set aside."""

    __slots__ = ("aside", "current", "dialect", "max_event_size")

    def __init__(self, dialect: Dialect, max_event_size: int) -> None:
        self.dialect = dialect
        self.max_event_size = max_event_size
        self.aside = SetAside()
        self.current: TurnDecoder | None = None

    def decoder(self) -> TurnDecoder:
        """A new attempt's decoder (``http_events`` makes one per subscription: each attempt)."""
        decoder = self.current = TurnDecoder(self.dialect, self.max_event_size)
        return decoder

    def discard(self) -> None:
        """A ``StreamReset``: the current attempt is discarded; what it reported is set aside."""
        current = self.current
        if current is not None:
            self.aside.add(current.reported if current.failure is not None else current.usage)

    def so_far(self, error: Exception) -> Usage | None:
        """What the turn reported before ``error`` ended it: the discarded attempts', and the current one's.

        The current attempt counts while it runs (a time limit stops it) and when
        its own failure is ``error``; one that failed otherwise was retried before
        its first event, or resent (its usage was set aside then).
        """
        current = self.current
        usage: Usage | None = None
        if current is not None:
            if current.failure is None:
                usage = current.usage
            elif current.failure is error:
                usage = current.reported
        return Usage.summed((self.aside.discarded, usage))


def accounted(
    build: Callable[[Accounts], Observable[AssistantEvent]],
    dialect: Dialect,
    max_event_size: int,
    *,
    url: str | None = None,
    resends: bool = False,
) -> Observable[AssistantEvent]:
    """A turn whose each subscription gets fresh ``Accounts``, given to ``build`` to make the turn's pipe.

    With ``resends`` (the pipe may emit ``StreamReset``), the turn's ``Final`` is
    charged the usage of the attempts a reset discarded. An error that ends the
    turn gets ``usage`` (the turn's so far, ``None`` when nothing was reported)
    and, with ``url`` (already safe to show), the request's method and URL
    (``rxllm.transport._http.name_request``).
    """
    return _Accounted(build, dialect, max_event_size, url, resends)


class _Accounted(Fused[AssistantEvent]):
    def __init__(
        self,
        build: Callable[[Accounts], Observable[AssistantEvent]],
        dialect: Dialect,
        max_event_size: int,
        url: str | None,
        resends: bool,
    ) -> None:
        self._build = build
        self._dialect = dialect
        self._max_event_size = max_event_size
        self._url = url
        self._resends = resends

    def _subscribe_core(
        self, observer: abc.ObserverBase[AssistantEvent], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        accounts = Accounts(self._dialect, self._max_event_size)
        link = _Turn(observer, accounts, self._url, self._resends)
        link.subscribe_to(self._build(accounts), scheduler)
        return link


class _Turn(Link[AssistantEvent, AssistantEvent]):
    """One turn subscription: a reset sets the discarded attempt aside; the Final and the error are charged.

    ``on_next`` is a slot: with resends, ``watched``; without, the observer's own
    ``on_next``, so the events pass this link without a call of their own (the
    links before it keep the rule that nothing follows a terminal).
    """

    __slots__ = ("accounts", "on_next", "url")

    def __init__(
        self, observer: abc.ObserverBase[AssistantEvent], accounts: Accounts, url: str | None, resends: bool
    ) -> None:
        super().__init__(observer)
        self.accounts = accounts
        self.url = url
        self.on_next = self.watched if resends else observer.on_next  # type: ignore[method-assign, assignment]

    def watched(self, event: AssistantEvent) -> None:
        if self.stopped:
            return
        kind = type(event)
        if kind is Final:
            event = self.accounts.aside.charge(cast(Final, event))
        elif kind is StreamReset:
            self.accounts.discard()
        self.observer.on_next(event)

    def on_error(self, error: Exception) -> None:
        if self.stopped:
            return
        if isinstance(error, RxLLMError):
            error.usage = self.accounts.so_far(error)
            if self.url is not None:
                name_request(error, METHOD, self.url)
        super().on_error(error)
