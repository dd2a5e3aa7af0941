"""``dedupe_final()``: exactly one merged ``Final`` per turn, last, just before completion."""

from __future__ import annotations

import msgspec
from reactivex import Observable, abc

from rxllm._fusion import Link, Stage
from rxllm.events import AssistantEvent, Final, StreamReset, Usage
from rxllm.typing import EventOperator

__all__ = ["dedupe_final"]


def dedupe_final() -> EventOperator:
    """Deliver one merged ``Final`` just before completion, none on error.

    Providers spread a turn's end over several chunks (the finish reason on one,
    usage on another, usage sometimes twice); the pieces merge with
    ``Final.updated``. A source that completes without any ``Final`` still gets
    one, with no usage (``None``): completion means a whole turn (a missing end
    marker is an error upstream). The ``Final`` delivered has ``usage_complete``
    false when its usage leaves a request out: ``usage`` is ``None``, or an
    attempt a reset discarded reported none.

    A ``StreamReset`` passes through. The usage held so far belonged to the
    discarded attempt, which the provider reported (and bills): it is set aside
    and added, with ``Usage.__add__``, to the usage of the ``Final`` delivered
    at completion, so that ``Final`` counts every attempt's reported tokens; a
    discarded attempt that reported no usage makes that ``Final``'s
    ``usage_complete`` false. The other held fields (finish reason, response id,
    model) stay as defaults that the new attempt's pieces replace. (This is for
    a pipe of raw attempts: a provider's stream already ends with its one merged
    ``Final``, and a reset there comes with nothing held.)

    Any other event, ``Retrying`` among them, passes through unchanged and in order.

    .. marble::
        :alt: dedupe_final

        -a-f-g-|            f, g: pieces of the turn's Final
        [ dedupe_final() ]
        -a-----(h,|)        h = f.updated(g): one Final, last

        -a-|
        [ dedupe_final() ]
        -a-(z,|)            z: no Final came, so no usage was reported

        -a-f-#              # = ProviderError("Overloaded", status=529)
        [ dedupe_final() ]
        -a---#              no Final after an error

        -a-g-R-b-f-g-|      the discarded attempt reported g's usage before the reset R
        [ dedupe_final() ]
        -a---R-b-----(s,|)  s: the usage of both attempts, the finish reason of the last

        -a-R-b-f-g-|        the discarded attempt reported no usage
        [ dedupe_final() ]
        -a-R-b-----(k,|)    k: so the usage is incomplete

        :values: a, b = TextDelta(text="Hi"), TextDelta(text="Hello")
                 f = Final(finish_reason="stop")
                 g = Final(usage=Usage(input_tokens=12, output_tokens=7, total_tokens=19))
                 h, z = f.updated(g), Final(usage=None, usage_complete=False)
                 R = StreamReset(attempt=2, reason="connection lost mid-stream")
                 s = Final(usage=g.usage + g.usage, finish_reason="stop")
                 k = Final(usage=g.usage, finish_reason="stop", usage_complete=False)
    """

    def _dedupe_final(source: Observable[AssistantEvent]) -> Observable[AssistantEvent]:
        return Stage(source, _DedupeFinal)

    return _dedupe_final


class _DedupeFinal(Link[AssistantEvent, AssistantEvent]):
    """One subscription: the ``Final`` pieces merged so far, and the usage of discarded attempts."""

    __slots__ = ("discarded", "held", "unreported")

    def __init__(
        self, observer: abc.ObserverBase[AssistantEvent], _scheduler: abc.SchedulerBase | None
    ) -> None:
        super().__init__(observer)
        self.held: Final | None = None
        self.discarded: Usage | None = None  # usage of attempts a StreamReset discarded
        self.unreported = False  # a discarded attempt reported no usage

    def on_next(self, event: AssistantEvent) -> None:
        if self.stopped:
            return
        held = self.held
        if isinstance(event, Final):
            self.held = event if held is None else held.updated(event)
            return
        # ``type() is``: a negative isinstance on a msgspec Struct costs several times more.
        if type(event) is StreamReset:
            self._discard(held)
        self.observer.on_next(event)

    def _discard(self, held: Final | None) -> None:
        """A reset: set the discarded attempt's usage aside (or note it reported none)."""
        if held is None or held.usage is None:
            self.unreported = True
            return
        self.discarded = held.usage if self.discarded is None else self.discarded + held.usage
        self.held = msgspec.structs.replace(held, usage=None)

    def on_completed(self) -> None:
        if self.stopped:
            return
        final = self.held if self.held is not None else Final()
        usage = final.usage if self.discarded is None else Usage.summed((self.discarded, final.usage))
        complete = final.usage_complete and final.usage is not None and not self.unreported
        if usage is not final.usage or complete is not final.usage_complete:
            final = msgspec.structs.replace(final, usage=usage, usage_complete=complete)
        self.observer.on_next(final)
        super().on_completed()
