"""Sequencing as fused links: ``chain`` (``concat`` of parts made on demand) and ``watch`` (``do_action``).

The agent's run is a chain of steps, each made when the one before it ends: the
hook before a turn, the turn's events, the tools, the next turn, and so on.
Written with ``reactivex.concat`` and ``defer``, every turn nested the next one
inside its own ``concat``, so a later turn's events passed one more Rx observer
per turn before it. ``chain`` is one link per run: a part that is itself a
``chain`` is spliced into the parts still to come, so the events of every turn
pass one link, and a step that completes while it is being subscribed does not
nest the next (the link trampolines).

::

    chain(a, lambda: b, c)  =  concat(a, defer(lambda _: b), c)
    watch(source, f, g)     =  source.pipe(ops.do_action(on_next=f, on_error=g))
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

from reactivex import Observable, abc

from rxllm.transport._fusion import Fused, Link, Stage

__all__ = ["Part", "chain", "watch"]

_T = TypeVar("_T")

Part = Observable[_T] | Callable[[], Observable[_T]]
"""A step of a chain: an Observable, or a function that makes it when the steps before it have ended."""


def chain(*parts: Part[_T]) -> Observable[_T]:
    """The parts' items one part after the other, each part made (when a function) as its turn comes.

    .. marble::
        :alt: chain

        -a-|                    the first part
        --b-|                   the second, made when the first completed
        -a---b-|                chain(first, lambda: second)

        -a-#                    the first part fails
        -a-#                    chain(first, lambda: second): the second is never made

        :values: a = 1; b = 2
    """
    return _Chain(parts)


class _Chain(Fused[_T]):
    def __init__(self, parts: Iterable[Part[_T]]) -> None:
        self.parts = tuple(parts)

    def _subscribe_core(
        self, observer: abc.ObserverBase[_T], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        link = _ChainLink(observer, scheduler, self.parts)
        link.advance()
        return link


class _ChainLink(Link[_T, _T], Generic[_T]):
    """One subscription: the parts still to come and the current part's subscription."""

    __slots__ = ("again", "busy", "lock", "parts", "scheduler")

    def __init__(
        self, observer: abc.ObserverBase[_T], scheduler: abc.SchedulerBase | None, parts: Iterable[Part[_T]]
    ) -> None:
        super().__init__(observer)
        self.parts: deque[Part[_T]] = deque(parts)
        self.scheduler = scheduler
        self.lock = threading.Lock()
        self.busy = False  # a round is running: a completion meanwhile only asks for another
        self.again = False

    def on_completed(self) -> None:
        if not self.stopped:
            self.advance()

    def advance(self) -> None:
        """The current part ended (or none began): subscribe the next, or complete when none is left.

        Trampolined under the lock: a completion that comes while a round runs (on
        this thread, from a part that completed as it was subscribed, or on another)
        asks for one more round, which the running one makes; none nests, none is lost.
        """
        with self.lock:
            if self.busy:
                self.again = True
                return
            self.busy = True
        while True:
            if self.stopped:
                return  # busy stays set: a stopped link advances no more
            self.detach()  # the part that ended
            source = self._next()
            if source is None:
                if not self.stopped:
                    super().on_completed()
                return
            self.subscribe_to(source, self.scheduler)
            with self.lock:
                if not self.again:
                    self.busy = False
                    return
                self.again = False

    def _next(self) -> Observable[_T] | None:
        parts = self.parts
        while parts:
            part = parts.popleft()
            if not isinstance(part, Observable):
                try:
                    part = part()
                except Exception as error:  # noqa: BLE001 - as defer delivers a factory's error
                    parts.clear()
                    self.on_error(error)
                    return None
            if isinstance(part, _Chain):
                parts.extendleft(reversed(part.parts))  # spliced: its parts come next, in order
                continue
            return part
        return None


def watch(
    source: Observable[_T],
    on_next: Callable[[_T], None] | None = None,
    on_error: Callable[[Exception], None] | None = None,
) -> Observable[_T]:
    """``source`` with ``on_next`` called before each item passes and ``on_error`` before its error.

    What a callback raises ends the stream with that error, as with ``do_action``.

    .. marble::
        :alt: watch

        -a-b-|
        [ lambda source: watch(source, seen.append) ]
        -a-b-|                  and seen == [a, b]

        :values: seen = []; a = 1; b = 2
    """

    def link(observer: abc.ObserverBase[_T], _scheduler: abc.SchedulerBase | None) -> _Watch[_T]:
        return _Watch(observer, on_next, on_error)

    return Stage(source, link)


class _Watch(Link[_T, _T], Generic[_T]):
    """One subscription. Without ``on_next`` to call, the items go to the observer's own ``on_next``:
    they pass this link without a call of their own (the link before it keeps the rule that nothing
    follows a terminal: it is disposed when this one stops)."""

    __slots__ = ("heard", "heard_error", "on_next")

    def __init__(
        self,
        observer: abc.ObserverBase[_T],
        heard: Callable[[_T], None] | None,
        heard_error: Callable[[Exception], None] | None,
    ) -> None:
        super().__init__(observer)
        self.heard = heard
        self.heard_error = heard_error
        self.on_next = self.passed if heard is not None else observer.on_next  # type: ignore[method-assign]

    def passed(self, value: _T) -> None:
        if self.stopped:
            return
        if self.heard is not None:
            try:
                self.heard(value)
            except Exception as error:  # noqa: BLE001 - ends the stream, as do_action's would
                self.on_error(error)
                return
        self.observer.on_next(value)

    def on_error(self, error: Exception) -> None:
        if self.stopped:
            return
        if self.heard_error is not None:
            try:
                self.heard_error(error)
            except Exception as failure:  # noqa: BLE001 - as above
                error = failure
        super().on_error(error)
