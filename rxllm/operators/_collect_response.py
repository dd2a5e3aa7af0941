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

        -a-b-c-f-|          a, b: text; c: a tool call; f: the turn's Final
        [ collect_response() ]
        ---------(r,|)      r: the whole turn as one CompletionResponse

        -a-#                # = StreamTruncatedError("the connection was lost", connection_lost=True)
        [ collect_response() ]
        ---#                the error, and no response

        :values: a, b = TextDelta(text="Hel"), TextDelta(text="lo")
                 c = ToolCall(id="call_7", call_id="call_7", internal_call_id="rx_7", name="clock")
                 f = Final(usage=Usage(input_tokens=9, output_tokens=4, total_tokens=13),
                           finish_reason="tool_calls")
                 r = CompletionResponse(text="Hello", tool_calls=(c,), usage=f.usage,
                                        finish_reason="tool_calls", usage_complete=True)
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
