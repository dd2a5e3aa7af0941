"""``dedupe_final()``: exactly one merged ``Final`` per turn, last, just before completion."""

from __future__ import annotations

from reactivex import Observable, abc

from rxllm.events import AssistantEvent, Final
from rxllm.typing import EventOperator

__all__ = ["dedupe_final"]


def dedupe_final() -> EventOperator:
    """Deliver one merged ``Final`` just before completion, none on error.

    Providers spread a turn's end over several chunks (the finish reason on one,
    usage on another, usage sometimes twice); the pieces merge with
    ``Final.updated``. A source that completes without any ``Final`` still gets
    one, with zero usage: completion means a whole turn (a missing end marker is
    an error upstream). A ``StreamReset`` passes through and the pieces held so
    far stay held.

    .. marble::
        :alt: dedupe_final

        -a-f-g-|
        [ dedupe_final() ]
        -a-----(h,|)        h = f.updated(g)

        -a-|
        [ dedupe_final() ]
        -a-(z,|)            z = Final()

        -a-f-#
        [ dedupe_final() ]
        -a---#
    """

    def _dedupe_final(source: Observable[AssistantEvent]) -> Observable[AssistantEvent]:
        def subscribe(
            observer: abc.ObserverBase[AssistantEvent],
            scheduler: abc.SchedulerBase | None = None,
        ) -> abc.DisposableBase:
            held: Final | None = None

            def on_next(event: AssistantEvent) -> None:
                nonlocal held
                if not isinstance(event, Final):
                    observer.on_next(event)
                else:
                    held = event if held is None else held.updated(event)

            def on_completed() -> None:
                observer.on_next(held if held is not None else Final())
                observer.on_completed()

            return source.subscribe(on_next, observer.on_error, on_completed, scheduler=scheduler)

        return Observable(subscribe)

    return _dedupe_final
