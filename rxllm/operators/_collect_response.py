"""``collect_response()``: fold one completion turn into a ``CompletionResponse``."""

from __future__ import annotations

from collections.abc import Callable

from reactivex import Observable, abc

from rxllm.events import AssistantEvent, Final, Reasoning, ReasoningDelta, StreamReset, TextDelta, ToolCall
from rxllm.response import CompletionResponse

__all__ = ["collect_response"]


class _ReasoningParts:
    """Reasoning in order of appearance: open runs of deltas, and whole blocks that replace them.

    A ``Reasoning`` block replaces the open run of deltas with the same ``id``
    (the Responses API sends both the deltas and the completed block), so
    nothing is counted twice; a block with no open run is added as it is.
    """

    def __init__(self) -> None:
        self.segments: list[list[str]] = []
        self.open: dict[str | None, int] = {}

    def delta(self, event: ReasoningDelta) -> None:
        at = self.open.get(event.id)
        if at is None:
            self.open[event.id] = len(self.segments)
            self.segments.append([event.text])
        else:
            self.segments[at].append(event.text)

    def block(self, event: Reasoning) -> None:
        at = self.open.pop(event.id, None)
        if at is None:
            self.segments.append([event.text])
        else:
            self.segments[at] = [event.text]

    def text(self) -> str:
        return "".join(piece for segment in self.segments for piece in segment)


def collect_response() -> Callable[[Observable[AssistantEvent]], Observable[CompletionResponse]]:
    """Emit one ``CompletionResponse`` when the turn completes, then complete.

    Text pieces are gathered and joined once. ``ReasoningDelta`` pieces are
    joined too, a ``Reasoning`` block replacing the deltas with its ``id``.
    ``ToolCall`` events make ``tool_calls`` (``ToolCallDelta`` is progress only
    and is ignored); usage, finish reason, response id and model come from the
    ``Final`` (pieces merged with ``Final.updated``). A ``StreamReset`` clears
    everything gathered; an error passes through and nothing is emitted.

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
            text: list[str] = []
            reasoning = _ReasoningParts()
            tool_calls: list[ToolCall] = []
            final: Final | None = None

            def on_next(event: AssistantEvent) -> None:
                nonlocal reasoning, final
                if isinstance(event, TextDelta):
                    text.append(event.text)
                elif isinstance(event, ReasoningDelta):
                    reasoning.delta(event)
                elif isinstance(event, Reasoning):
                    reasoning.block(event)
                elif isinstance(event, ToolCall):
                    tool_calls.append(event)
                elif isinstance(event, Final):
                    final = event if final is None else final.updated(event)
                elif isinstance(event, StreamReset):
                    text.clear()
                    reasoning = _ReasoningParts()
                    tool_calls.clear()
                    final = None

            def on_completed() -> None:
                end = final if final is not None else Final()
                observer.on_next(
                    CompletionResponse(
                        text="".join(text),
                        reasoning=reasoning.text(),
                        tool_calls=tuple(tool_calls),
                        usage=end.usage,
                        finish_reason=end.finish_reason,
                        response_id=end.response_id,
                        model=end.model,
                    )
                )
                observer.on_completed()

            return source.subscribe(on_next, observer.on_error, on_completed, scheduler=scheduler)

        return Observable(subscribe)

    return _collect_response
