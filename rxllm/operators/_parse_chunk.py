"""``parse_chunk``: server-sent events to raw chunk events, through a provider's dialect."""

from __future__ import annotations

from collections.abc import Callable

from reactivex import Observable, abc
from reactivex.disposable import SingleAssignmentDisposable

from rxllm.errors import StreamTruncatedError
from rxllm.events import ChunkEvent
from rxllm.sse import SseEvent
from rxllm.typing import Dialect

__all__ = ["parse_chunk"]


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
        -t-u-f-|            the source is unsubscribed at D; x is never read

        -a-b-|
        [ parse_chunk(OpenAIChatDialect()) ]
        -t-u-#              # = StreamTruncatedError: no [DONE], no finish reason
    """

    truncated = f"the {dialect.name} stream ended before {dialect.end_of_turn}"

    def _parse_chunk(source: Observable[SseEvent]) -> Observable[ChunkEvent]:
        def subscribe(
            observer: abc.ObserverBase[ChunkEvent],
            scheduler: abc.SchedulerBase | None = None,
        ) -> abc.DisposableBase:
            parser = dialect.parser()
            stopped = False
            upstream = SingleAssignmentDisposable()

            def on_next(event: SseEvent) -> None:
                nonlocal stopped
                if stopped:
                    return
                try:
                    events = parser.feed(event.event, event.data)
                except Exception as error:
                    stopped = True
                    upstream.dispose()
                    observer.on_error(error)
                    return
                for chunk_event in events:
                    observer.on_next(chunk_event)
                if parser.done:
                    stopped = True
                    upstream.dispose()
                    observer.on_completed()

            def on_completed() -> None:
                if parser.finished:
                    observer.on_completed()
                else:
                    observer.on_error(StreamTruncatedError(truncated))

            # A source that emits synchronously while being subscribed cannot be unsubscribed yet:
            # ``stopped`` keeps its later items from the parser, and the observer (auto-detaching,
            # as every Rx subscription is) ignores any terminal after ours.
            upstream.disposable = source.subscribe(
                on_next, observer.on_error, on_completed, scheduler=scheduler
            )
            return upstream

        return Observable(subscribe)

    return _parse_chunk
