"""``dedupe_final()``: exactly one merged ``Final`` per turn, last, just before completion."""

from __future__ import annotations

import msgspec
from reactivex import Observable, abc

from rxllm.errors import RxLLMError
from rxllm.events import AssistantEvent, Final, StreamReset, Usage
from rxllm.transport._fusion import Link, Stage
from rxllm.typing import EventOperator

__all__ = ["FinalPieces", "SetAside", "dedupe_final"]


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


class FinalPieces:
    """The step of ``dedupe_final``: a turn's ``Final`` pieces merged, given whole at its end."""

    __slots__ = ("held",)

    def __init__(self) -> None:
        self.held: Final | None = None

    def feed(self, piece: Final) -> None:
        held = self.held
        self.held = piece if held is None else held.updated(piece)

    @property
    def usage(self) -> Usage | None:
        """What the pieces so far reported."""
        held = self.held
        return None if held is None else held.usage

    def set_usage_aside(self) -> Usage | None:
        """The usage held so far, taken out (a reset discarded its attempt); the other fields stay."""
        held = self.held
        if held is None or held.usage is None:
            return None
        self.held = msgspec.structs.replace(held, usage=None)
        return held.usage

    def whole(self) -> Final:
        """The one ``Final`` (``Final()`` when none came); ``usage_complete`` false without usage."""
        final = self.held if self.held is not None else Final()
        if final.usage is None and final.usage_complete:
            final = msgspec.structs.replace(final, usage_complete=False)
        return final


class SetAside:
    """The usage of attempts a ``StreamReset`` discarded: summed, and added to the turn's ``Final``.

    The one way rxllm charges a discarded attempt (``dedupe_final`` and
    ``retry_turn`` both hold one): the provider reported that usage and may
    bill it. ``unreported`` notes a discarded attempt that reported none.
    """

    __slots__ = ("discarded", "unreported")

    def __init__(self) -> None:
        self.discarded: Usage | None = None
        self.unreported = False

    def add(self, usage: Usage | None) -> None:
        if usage is None:
            self.unreported = True
        else:
            self.discarded = usage if self.discarded is None else self.discarded + usage

    @property
    def empty(self) -> bool:
        return self.discarded is None and not self.unreported

    def charge(self, final: Final) -> Final:
        """``final`` with the discarded attempts' usage added (``usage_complete`` false when one had none)."""
        if self.empty:
            return final
        return msgspec.structs.replace(
            final,
            usage=Usage.summed((self.discarded, final.usage)),
            usage_complete=final.usage_complete and final.usage is not None and not self.unreported,
        )

    def charge_error(self, error: Exception) -> None:
        """The error that ends the turn: its usage (the last attempt's) with the discarded attempts' added."""
        if not self.empty and isinstance(error, RxLLMError):
            error.usage = Usage.summed((self.discarded, error.usage))


class _DedupeFinal(Link[AssistantEvent, AssistantEvent]):
    """One subscription: the ``Final`` pieces merged so far, and the usage of discarded attempts."""

    __slots__ = ("aside", "pieces")

    def __init__(
        self, observer: abc.ObserverBase[AssistantEvent], _scheduler: abc.SchedulerBase | None
    ) -> None:
        super().__init__(observer)
        self.pieces = FinalPieces()
        self.aside = SetAside()

    def on_next(self, event: AssistantEvent) -> None:
        if self.stopped:
            return
        if isinstance(event, Final):
            self.pieces.feed(event)
            return
        # ``type() is``: a negative isinstance on a msgspec Struct costs several times more.
        if type(event) is StreamReset:
            # The discarded attempt's usage is set aside; the other held fields stay as defaults
            # that the next attempt's pieces replace.
            self.aside.add(self.pieces.set_usage_aside())
        self.observer.on_next(event)

    def on_completed(self) -> None:
        if self.stopped:
            return
        self.observer.on_next(self.aside.charge(self.pieces.whole()))
        super().on_completed()
