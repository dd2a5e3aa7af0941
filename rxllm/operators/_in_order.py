"""``in_order()``: tool results tagged with their call index, released in call order."""

from __future__ import annotations

from collections.abc import Callable

from reactivex import Observable, abc

from rxllm.events import AgentEvent, ToolResult

__all__ = ["in_order"]


def in_order() -> Callable[[Observable[tuple[int, ToolResult]]], Observable[AgentEvent]]:
    """Results tagged with their call index, released in index order."""

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
