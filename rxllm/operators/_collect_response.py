"""``collect_response()``: fold one completion turn into a ``CompletionResponse``."""

from __future__ import annotations

from collections.abc import Callable

from reactivex import Observable, abc

from rxllm.events import AssistantEvent
from rxllm.response import CompletionResponse, ResponseBuilder

__all__ = ["collect_response"]


def collect_response() -> Callable[[Observable[AssistantEvent]], Observable[CompletionResponse]]:
    """Emit one ``CompletionResponse`` when the turn completes, then complete.

    Text pieces are gathered and joined once. ``ReasoningDelta`` pieces are
    joined too, a ``Reasoning`` block replacing the deltas with its ``id``.
    ``ToolCall`` events make ``tool_calls`` (``ToolCallDelta`` is progress only
    and is ignored); usage, finish reason, response id and model come from the
    ``Final`` (pieces merged with ``Final.updated``). A ``StreamReset`` clears
    everything gathered, so the response is the last attempt's (with the usage
    its ``Final`` reports: after ``dedupe_final``, every attempt's); an error
    passes through and nothing is emitted.

    .. marble::
        :alt: collect_response

        -a-b-c-f-|
        [ collect_response() ]
        ---------(r,|)      r = CompletionResponse(text=a+b, tool_calls=(c,), usage=f.usage, ...)

        -a-#
        [ collect_response() ]
        ---#
    """

    def _collect_response(source: Observable[AssistantEvent]) -> Observable[CompletionResponse]:
        def subscribe(
            observer: abc.ObserverBase[CompletionResponse],
            scheduler: abc.SchedulerBase | None = None,
        ) -> abc.DisposableBase:
            builder = ResponseBuilder()

            def on_completed() -> None:
                observer.on_next(builder.build())
                observer.on_completed()

            return source.subscribe(builder.feed, observer.on_error, on_completed, scheduler=scheduler)

        return Observable(subscribe)

    return _collect_response
