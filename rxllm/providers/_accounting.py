"""A turn's accounting: what its attempts reported, charged to its ``Final`` and to the error that ends it.

::

    accounted(build) ─► per subscription: ledger = _Ledger(); build(ledger), which is
        attempt ─► recorded(ledger) ─► retry_turn(...) ─► total_timeout(...)

``recorded(ledger)`` is each attempt's ``dedupe_final()``, where the attempt's
events are known (after ``accumulate_tool_calls``; the ``Final`` pieces it holds
are part of the record): it keeps the attempt's text pieces in one list (the ``str``, not the
event) and its other events in another, one ``append`` each, and reads them
only when the attempt fails. Both are compacted as they grow, so what a stream
holds for its partial grows with its text, not with its event count: every
``TEXT_CHUNK`` text pieces are joined into one string, and the other events,
every ``COMPACT_AT`` of them at first (then twice what a compaction left), have
runs of one reasoning block's deltas joined. ``ToolCallDelta`` progress is not
kept (the ``ToolCall`` follows it). Then the error gets the usage the
attempt reported (its ``Final`` pieces, and the usage a failed response's
``ProviderError`` carries), and a ``StreamTruncatedError`` its ``partial``: the
events folded into a ``CompletionResponse``.

``accounted`` is the turn, outside its retries and time limit. With mid-stream
resends it watches the events for the ``StreamReset`` that discards an attempt
(whose reported usage it sets aside) and adds the discarded attempts' usage to
the turn's ``Final`` (``usage_complete`` false when one of them reported none).
Without resends no attempt is ever discarded, and the events go straight from
the retries to the observer, past it. Either way, the error that ends the turn
gets the turn's usage so far and the request's method and URL. An attempt that
failed and was retried before its first event, or resent, is not counted in
that error: the server refused it (as without resends), or it was set aside.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import msgspec
from reactivex import Observable, abc

from rxllm._fusion import Fused, Link
from rxllm._http import METHOD, name_request
from rxllm.errors import RxLLMError, StreamTruncatedError
from rxllm.events import (
    AssistantEvent,
    Final,
    ReasoningDelta,
    StreamReset,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from rxllm.operators._dedupe_final import _DedupeFinal
from rxllm.response import ResponseBuilder
from rxllm.typing import EventOperator

__all__ = ["COMPACT_AT", "TEXT_CHUNK", "Ledger", "accounted", "compact", "recorded"]

COMPACT_AT = 32
"""Events other than text an attempt's record holds before its first compaction."""

TEXT_CHUNK = 16
"""Text pieces joined into one string at a time (a string costs about 50 bytes beyond its text)."""


class Ledger:
    """One turn subscription's accounts: the current attempt's events, the discarded attempts' usage."""

    __slots__ = ("attempt_usage", "chunks", "discarded", "events", "failure", "text", "unreported")

    def __init__(self) -> None:
        self.events: list[AssistantEvent] = []  # the current attempt's, but its text
        self.text: list[str] = []  # its latest text pieces
        self.chunks: list[str] = []  # its earlier text pieces, joined TEXT_CHUNK at a time
        self.failure: Exception | None = None  # what the current attempt failed with (its usage below)
        self.attempt_usage: Usage | None = None
        self.discarded: Usage | None = None  # summed over the attempts a StreamReset discarded
        self.unreported = False  # one of those reported no usage

    def start_attempt(self) -> None:
        self.events = []
        self.text = []
        self.chunks = []
        self.failure = None
        self.attempt_usage = None

    def chunk_text(self) -> None:
        self.chunks.append("".join(self.text))
        self.text.clear()

    def failed(self, error: Exception) -> None:
        """The current attempt ended with ``error``: give it the attempt's usage and, if cut, its partial."""
        self.failure = error
        reported = _reported(self.events)
        if not isinstance(error, RxLLMError):
            self.attempt_usage = reported
            return
        # The error's own usage (a failed response's) is that response's last report.
        error.usage = self.attempt_usage = Usage.merged(reported, error.usage)
        if isinstance(error, StreamTruncatedError) and error.partial is None:
            builder = ResponseBuilder()
            for event in self.events:
                builder.feed(event)
            text = "".join(self.chunks) + "".join(self.text)
            error.partial = msgspec.structs.replace(builder.build(), text=text)

    def discard(self) -> None:
        """A ``StreamReset``: the attempt that just failed is discarded; its usage is set aside."""
        usage = self.attempt_usage if self.failure is not None else _reported(self.events)
        if usage is None:
            self.unreported = True
        else:
            self.discarded = usage if self.discarded is None else self.discarded + usage

    def so_far(self, error: Exception) -> Usage | None:
        """What the turn reported before ``error`` ended it: the discarded attempts', and the current one's.

        The current attempt counts while it runs (a time limit stops it) and when
        its own failure is ``error``; one that failed otherwise was retried before
        its first event, or resent (its usage is in ``discarded`` then).
        """
        current: Usage | None = None
        if self.failure is None:
            current = _reported(self.events)
        elif self.failure is error:
            current = self.attempt_usage
        return Usage.summed((self.discarded, current))

    def charge(self, final: Final) -> Final:
        """The turn's ``Final`` with the discarded attempts' usage added."""
        return msgspec.structs.replace(
            final,
            usage=Usage.summed((self.discarded, final.usage)),
            usage_complete=final.usage_complete and final.usage is not None and not self.unreported,
        )


def _reported(events: list[AssistantEvent]) -> Usage | None:
    usage: Usage | None = None
    for event in events:
        if type(event) is Final:
            usage = Usage.merged(usage, event.usage)
    return usage


def compact(events: list[AssistantEvent]) -> None:
    """Join runs of text, and of one reasoning block's deltas, in place; drop tool-call progress.

    What ``ResponseBuilder`` makes of the list stays the same.
    """
    out: list[AssistantEvent] = []
    pieces: list[str] = []
    kind: type[AssistantEvent] | None = None  # of the run in ``pieces``
    block: str | None = None  # the reasoning run's id

    def flush() -> None:
        if pieces:
            text = "".join(pieces)
            out.append(TextDelta(text=text) if kind is TextDelta else ReasoningDelta(text=text, id=block))
            pieces.clear()

    for event in events:
        if type(event) is TextDelta:
            if kind is not TextDelta:
                flush()
                kind = TextDelta
            pieces.append(event.text)
        elif type(event) is ReasoningDelta:
            if kind is not ReasoningDelta or event.id != block:
                flush()
                kind, block = ReasoningDelta, event.id
            pieces.append(event.text)
        elif type(event) is not ToolCallDelta:
            flush()
            kind = None
            out.append(event)
    flush()
    events[:] = out


def recorded(ledger: Ledger) -> EventOperator:
    """``dedupe_final()`` that keeps each attempt's record in ``ledger``: a failing attempt's error
    gets the attempt's usage and, when it is a ``StreamTruncatedError``, its partial response.

    .. marble::
        :alt: recorded

        -a-f-g-|
        [ recorded(ledger) ]
        -a-----(h,|)        h = f.updated(g), as dedupe_final gives

        -a-f-#              # = StreamTruncatedError("the stream ended early")
        [ recorded(ledger) ]
        -a---#              the same error, now with usage = f.usage and partial = (a, f) folded

        :values: ledger = Ledger()
                 a = TextDelta(text="Hi")
                 f = Final(usage=Usage(input_tokens=5, output_tokens=1, total_tokens=6))
                 g = Final(finish_reason="stop")
                 h = f.updated(g)
    """

    def _recorded(source: Observable[AssistantEvent]) -> Observable[AssistantEvent]:
        return _RecordedStage(source, ledger)

    return _recorded


class _RecordedStage(Fused[AssistantEvent]):
    """``recorded(ledger)`` applied to a source: one object (a turn makes one per subscription)."""

    def __init__(self, source: Observable[AssistantEvent], ledger: Ledger) -> None:
        self._source = source
        self._ledger = ledger

    def _subscribe_core(
        self, observer: abc.ObserverBase[AssistantEvent], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        link = _Recorded(observer, self._ledger)
        link.subscribe_to(self._source, scheduler)
        return link


class _Recorded(_DedupeFinal):
    """One attempt: ``dedupe_final``'s link that also keeps the attempt's record in the ledger.

    One link for both, so a turn's events pay one call here, not two.
    """

    __slots__ = ("events", "ledger", "limit", "text")

    def __init__(self, observer: abc.ObserverBase[AssistantEvent], ledger: Ledger) -> None:
        super().__init__(observer, None)
        self.ledger = ledger
        ledger.start_attempt()
        self.events = ledger.events
        self.text = ledger.text
        self.limit = COMPACT_AT

    def on_next(self, event: AssistantEvent) -> None:
        if self.stopped:
            return
        kind = type(event)
        if kind is TextDelta:
            text = self.text
            text.append(event.text)  # type: ignore[union-attr]  # kind is TextDelta
            if len(text) >= TEXT_CHUNK:
                self.ledger.chunk_text()
            self.observer.on_next(event)
            return
        if kind is ToolCallDelta:
            self.observer.on_next(event)
            return
        events = self.events
        events.append(event)
        if len(events) >= self.limit:
            compact(events)
            self.limit = max(COMPACT_AT, 2 * len(events))  # linear, however little it could join
        super().on_next(event)  # holds the Final pieces, passes the rest

    def on_error(self, error: Exception) -> None:
        if not self.stopped:
            self.ledger.failed(error)
            super().on_error(error)


def accounted(
    build: Callable[[Ledger], Observable[AssistantEvent]], *, url: str | None = None, resends: bool = False
) -> Observable[AssistantEvent]:
    """A turn whose each subscription gets a fresh ``Ledger``, given to ``build`` to make the turn's pipe.

    With ``resends`` (the pipe may emit ``StreamReset``), the turn's ``Final`` is
    charged the usage of the attempts a reset discarded. An error that ends the
    turn gets ``usage`` (the turn's so far, ``None`` when nothing was reported)
    and, with ``url`` (already safe to show), the request's method and URL
    (``rxllm._http.name_request``).
    """
    return _Accounted(build, url, resends)


class _Accounted(Fused[AssistantEvent]):
    def __init__(
        self, build: Callable[[Ledger], Observable[AssistantEvent]], url: str | None, resends: bool
    ) -> None:
        self._build = build
        self._url = url
        self._resends = resends

    def _subscribe_core(
        self, observer: abc.ObserverBase[AssistantEvent], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        ledger = Ledger()
        link = _Turn(observer, ledger, self._url, self._resends)
        link.subscribe_to(self._build(ledger), scheduler)
        return link


class _Turn(Link[AssistantEvent, AssistantEvent]):
    """One turn subscription: resets move the accounts; the Final and the error are charged.

    ``on_next`` is a slot: with resends, ``watched``; without, the observer's own
    ``on_next``, so the events pass this link without a call of their own (the
    links before it keep the rule that nothing follows a terminal).
    """

    __slots__ = ("ledger", "on_next", "url")

    def __init__(
        self, observer: abc.ObserverBase[AssistantEvent], ledger: Ledger, url: str | None, resends: bool
    ) -> None:
        super().__init__(observer)
        self.ledger = ledger
        self.url = url
        self.on_next = self.watched if resends else observer.on_next  # type: ignore[method-assign, assignment]

    def watched(self, event: AssistantEvent) -> None:
        if self.stopped:
            return
        kind = type(event)
        if kind is Final:
            ledger = self.ledger
            if ledger.discarded is not None or ledger.unreported:
                event = ledger.charge(cast(Final, event))
        elif kind is StreamReset:
            self.ledger.discard()
        self.observer.on_next(event)

    def on_error(self, error: Exception) -> None:
        if self.stopped:
            return
        if isinstance(error, RxLLMError):
            error.usage = self.ledger.so_far(error)
            if self.url is not None:
                name_request(error, METHOD, self.url)
        super().on_error(error)
