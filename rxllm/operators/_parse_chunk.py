"""``parse_chunk``: server-sent events to raw chunk events, through a provider's dialect."""

from __future__ import annotations

from collections.abc import Callable

from reactivex import Observable, abc

from rxllm.errors import StreamTruncatedError
from rxllm.events import ChunkEvent
from rxllm.transport._fusion import Link, Stage
from rxllm.transport.sse import SseEvent
from rxllm.typing import ChunkParser, Dialect

__all__ = ["parse_chunk", "truncation_message"]


def parse_chunk(dialect: Dialect) -> Callable[[Observable[SseEvent]], Observable[ChunkEvent]]:
    """Decode each server-sent event with ``dialect`` and emit the events it yields, in order.

    Each subscription gets its own ``dialect.parser()``. The provider's end marker
    completes at once and unsubscribes the source (servers may hold the connection
    open after it). A source that completes before the turn is whole gives
    ``StreamTruncatedError``; an error the parser raises (``ChunkDecodeError``,
    ``ProviderError``) is delivered and unsubscribes the source. Nothing follows a
    terminal notification.

    .. marble::
        :alt: parse_chunk

        -a-b-c-D-x-|        a, b: content chunks; c: the finish reason; D: [DONE]
        [ parse_chunk(OpenAIChatDialect()) ]
        -t-u-f-|            complete at D, and the source is unsubscribed: x is never read

        -a-b-|
        [ parse_chunk(OpenAIChatDialect()) ]
        -t-u-#              # = StreamTruncatedError  (no [DONE], no finish reason)

        -a-c-|              the body ends after the finish reason, before its usage and [DONE]
        [ parse_chunk(OpenAIChatDialect()) ]
        -t-f-#              # = StreamTruncatedError

        -a-c-|
        [ parse_chunk(OpenAIChatDialect(require_end_marker=False)) ]
        -t-f-|              for servers that send neither usage nor [DONE]

        :values: from rxllm.providers._openai_chat import OpenAIChatDialect
                 a = SseEvent(data='{"choices": [{"index": 0, "delta": {"content": "Hel"}}]}')
                 b = SseEvent(data='{"choices": [{"index": 0, "delta": {"content": "lo"}}]}')
                 c = SseEvent(data='{"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}')
                 D, x = SseEvent(data="[DONE]"), SseEvent(data="not even JSON")
                 t, u, f = TextDelta(text="Hel"), TextDelta(text="lo"), Final(finish_reason="stop")
    """

    truncated = truncation_message(dialect)

    def link(observer: abc.ObserverBase[ChunkEvent], _scheduler: abc.SchedulerBase | None) -> _ParseChunk:
        return _ParseChunk(observer, dialect.parser(), truncated)

    def _parse_chunk(source: Observable[SseEvent]) -> Observable[ChunkEvent]:
        return Stage(source, link)

    return _parse_chunk


def truncation_message(dialect: Dialect) -> str:
    """What a ``StreamTruncatedError`` says when ``dialect``'s stream ends before its turn is whole."""
    return f"the {dialect.name} stream ended before {dialect.end_of_turn}"


class _ParseChunk(Link[SseEvent, ChunkEvent]):
    """One subscription: its own parser. Nothing reaches the parser after a terminal."""

    __slots__ = ("parser", "truncated")

    def __init__(self, observer: abc.ObserverBase[ChunkEvent], parser: ChunkParser, truncated: str) -> None:
        super().__init__(observer)
        self.parser = parser
        self.truncated = truncated

    def on_next(self, event: SseEvent) -> None:
        if self.stopped:
            return
        try:
            events = self.parser.feed(event.event, event.data)
        except Exception as error:
            # Unsubscribes the source (closing the connection) before the error is delivered.
            self.on_error(error)
            return
        observer = self.observer
        for chunk_event in events:
            observer.on_next(chunk_event)
        if self.parser.done:
            self.on_completed()  # servers may hold the connection open after the end marker

    def on_completed(self) -> None:
        if self.parser.finished:
            super().on_completed()
        else:
            self.on_error(StreamTruncatedError(self.truncated))
