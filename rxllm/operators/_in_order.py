"""``in_order()``: tool results tagged with their call index, released in call order."""

from __future__ import annotations

from collections.abc import Callable

from reactivex import Observable, abc

from rxllm.events import AgentEvent, ToolResult

__all__ = ["in_order"]


def in_order() -> Callable[[Observable[tuple[int, ToolResult]]], Observable[AgentEvent]]:
    """Results tagged with their call index, released in index order.

    A result waits until every result of a lower index has been released; an
    error or the completion passes through at once.

    .. marble::
        :alt: in_order

        -s-f-----|      s: the second call's result (index 1) comes first, f: the first's (index 0)
        [ in_order() ]
        ---(x,y)-|      x, y: the first call's result, then the second's

        -s-#            # = RuntimeError("the tools failed")
        [ in_order() ]
        ---#            s waits for index 0, which never comes: the error passes through

        :values: x = ToolResult(id="c1", call_id="c1", internal_call_id="rx_1", name="lookup", content="A")
                 y = ToolResult(id="c2", call_id="c2", internal_call_id="rx_2", name="pay", content="B")
                 f = (0, x); s = (1, y)
    """

    def _reorder(source: Observable[tuple[int, ToolResult]]) -> Observable[AgentEvent]:
        def subscribe(
            observer: abc.ObserverBase[AgentEvent],
            scheduler: abc.SchedulerBase | None = None,
        ) -> abc.DisposableBase:
            waiting: dict[int, ToolResult] = {}
            next_index = 0

            def on_next(item: tuple[int, ToolResult]) -> None:
                nonlocal next_index
                waiting[item[0]] = item[1]
                while next_index in waiting:
                    observer.on_next(waiting.pop(next_index))
                    next_index += 1

            return source.subscribe(on_next, observer.on_error, observer.on_completed, scheduler=scheduler)

        return Observable(subscribe)

    return _reorder
