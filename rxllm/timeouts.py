"""``Timeouts``: how long a stream may take, and the operators that enforce it.

Every limit is in seconds; ``None`` means no limit. Exceeding one delivers
``StreamTimeoutError`` whose ``which`` names it, and closes the connection.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from reactivex import Observable, abc
from reactivex.scheduler import TimeoutScheduler
from reactivex.scheduler.eventloop import AsyncIOScheduler, AsyncIOThreadSafeScheduler
from reactivex.scheduler.virtualtimescheduler import VirtualTimeScheduler

from rxllm._aio import event_loop, on_loop
from rxllm._fusion import Link, Stage
from rxllm.control import throttles
from rxllm.errors import StreamTimeoutError

__all__ = ["Pausable", "Timeouts", "progress_timeout", "timer_scheduler", "total_timeout"]

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeouts:
    """Time limits of one ``provider.stream(request)``, in seconds (``None``: no limit).

    ===============  =========  ===========================================================
    limit            default    what it bounds
    ===============  =========  ===========================================================
    ``connect``      10         opening the TCP (and TLS) connection; retried like any
                                connection failure
    ``first_event``  600        from subscribing to the first server-sent event: the wait
                                for headers and for the model to start (reasoning models
                                think before their first token)
    ``idle``         300        between two server-sent events; reset by events only, so a
                                server sending nothing but ``: ping`` comments times out
    ``total``        None       the whole stream, retries and their waits included
    ===============  =========  ===========================================================

    ::

        OpenAIChat("gpt-4o", timeouts=Timeouts(first_event=30, idle=10))
        OpenAIChat("gpt-4o", timeouts=Timeouts(total=120))     # a hard budget per turn
        OpenAIChat("o3", timeouts=Timeouts(first_event=None))  # wait for the model however long

    The defaults never hang: a server that accepts and then says nothing fails
    after ``first_event``, a stalled one after ``idle``. ``total`` is off by
    default because a long answer that keeps streaming is not a hang.

    **Pausing** (``stream(request, pause=control)``) is the user's choice, so no
    limit counts paused time: while paused, the ``first_event`` and ``idle``
    clocks stop, and on resume the current window starts afresh; ``total``
    counts only the time the stream was not paused. (The connection may still be
    closed by the server or a proxy during a long pause; that is a
    ``StreamTruncatedError``.)

    ``first_event``, ``idle`` and ``total`` timeouts are not retried: the provider
    may be working on, and billing, the request. A ``connect`` timeout is.
    """

    connect: float | None = 10.0
    first_event: float | None = 600.0
    idle: float | None = 300.0
    total: float | None = None

    def __post_init__(self) -> None:
        for name in ("connect", "first_event", "idle", "total"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(
                    f"Timeouts.{name} must be a positive number of seconds or None, not {value!r}"
                )


class Pausable(Protocol):
    """What the timeout operators need of a ``PauseControl``."""

    @property
    def is_paused(self) -> bool: ...

    def add_listener(self, listener: Callable[[bool], None]) -> abc.DisposableBase: ...


def timer_scheduler(
    scheduler: abc.SchedulerBase | None,
) -> tuple[abc.SchedulerBase, Callable[[], float]]:
    """The scheduler to run timers on, and a clock in seconds that matches it.

    A virtual-time scheduler (marble tests) is used as it is. Otherwise timers
    run on the asyncio loop the stream runs on (an ``AsyncIOScheduler``'s, or the
    running one), through a thread-safe scheduler so a pause or a dispose from
    another thread is safe; the clock is monotonic.
    """
    if isinstance(scheduler, VirtualTimeScheduler):
        virtual = scheduler
        return virtual, lambda: virtual.now.timestamp()
    loop: asyncio.AbstractEventLoop | None = None
    if isinstance(scheduler, AsyncIOScheduler):
        # reactivex keeps the scheduler's loop in ``_loop`` and offers no public accessor.
        loop = scheduler._loop  # noqa: SLF001
    else:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
    if loop is None:
        # No loop: the HTTP source fails the subscription anyway; timers must not start threads.
        return scheduler or TimeoutScheduler.singleton(), time.monotonic
    if isinstance(scheduler, AsyncIOThreadSafeScheduler) and scheduler._loop is loop:  # noqa: SLF001
        return scheduler, time.monotonic
    return AsyncIOThreadSafeScheduler(loop), time.monotonic


class _Timers:
    """Where one stream's time limits run, and its clock.

    On an asyncio loop the limits use the loop's own timers (``call_later``),
    touched only on the loop's thread: work asked for from another thread (a
    GUI subscribing, pausing or disposing) is handed over with
    ``call_soon_threadsafe``. A virtual-time scheduler (marble tests) is used as
    it is.
    """

    __slots__ = ("_loop", "_scheduler")

    def __init__(self, scheduler: abc.SchedulerBase | None) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._scheduler: abc.SchedulerBase | None = None
        if isinstance(scheduler, VirtualTimeScheduler):
            self._scheduler = scheduler
            return
        # No loop: EventLoopError, as the HTTP source would raise; no timer thread is started.
        self._loop = event_loop(scheduler)

    def now(self) -> float:
        if isinstance(self._scheduler, VirtualTimeScheduler):
            return self._scheduler.now.timestamp()
        return time.monotonic()

    def call_later(self, seconds: float, action: Callable[[], None]) -> Callable[[], None]:
        """Run ``action`` after ``seconds``; returns its cancel. Call on the timers' own thread."""
        if self._loop is not None:
            return self._loop.call_later(seconds, action).cancel
        assert self._scheduler is not None

        def run(_scheduler: abc.SchedulerBase, _state: object = None) -> None:
            action()

        return self._scheduler.schedule_relative(seconds, run).dispose

    def soon(self, action: Callable[[], None]) -> None:
        """Run ``action`` on the timers' thread: now when already there, else as soon as it can."""
        if self._loop is not None:
            on_loop(self._loop, action)
        else:
            action()


class _Clock:
    """One limit's window: arm it, stop it while paused, and fire when it really ran out.

    Progress only records a time stamp (no timer is touched per item); when the
    timer fires early because progress moved the deadline, it re-arms itself for
    the rest. Used on the timers' thread only.
    """

    __slots__ = ("_cancel", "_fire", "_timers", "deadline")

    def __init__(self, timers: _Timers, fire: Callable[[], None]) -> None:
        self._timers = timers
        self._fire = fire
        self._cancel: Callable[[], None] | None = None
        self.deadline: float | None = None

    def arm(self, seconds: float) -> None:
        self.deadline = self._timers.now() + seconds
        self._schedule(seconds)

    def stop(self) -> None:
        self.deadline = None
        self._unschedule()

    dispose = stop

    def _unschedule(self) -> None:
        cancel, self._cancel = self._cancel, None
        if cancel is not None:
            cancel()

    def _schedule(self, seconds: float) -> None:
        self._unschedule()
        self._cancel = self._timers.call_later(max(seconds, 0.0), self._due)

    def _due(self) -> None:
        self._cancel = None
        if self.deadline is None:
            return
        left = self.deadline - self._timers.now()
        if left > 1e-6:
            self._schedule(left)
            return
        self.deadline = None
        self._fire()


class _Limited(Link[Any, Any]):
    """What both limits share, for one subscription: the clock, pause, and stopping once.

    A subclass says when the clock runs (``update``), what an item does to it
    (``on_next``) and which error running out is (``expired``). Running out
    unsubscribes the source (closing the connection) before the error is
    delivered; nothing follows a terminal. One ``Link`` with slots per
    subscription, rather than a closure per callback, keeps a stream's fixed
    cost small (see ``rxllm._fusion``).
    """

    __slots__ = ("_listening", "clock", "pauses", "timers")

    def __init__(
        self, observer: abc.ObserverBase[Any], pause: Pausable | None, scheduler: abc.SchedulerBase | None
    ) -> None:
        super().__init__(observer)
        # The user's pause, and the throttles of bounded consumers (a slow consumer is no stall).
        own: tuple[Pausable, ...] = () if pause is None else (pause,)
        self.pauses: tuple[Pausable, ...] = own + throttles()
        self.timers = _Timers(scheduler)
        self.clock = _Clock(self.timers, self._fire)
        self._listening: list[abc.DisposableBase] = []

    def start(self) -> None:
        """Listen to the pauses and set the clock; a subclass calls it once its own fields are set."""
        # A pause or resume may come from any thread: act on it on the timers' thread.
        self._listening = [pause.add_listener(self._changed) for pause in self.pauses]
        self.timers.soon(self.update)

    @property
    def paused(self) -> bool:
        return any(pause.is_paused for pause in self.pauses)

    def update(self) -> None:
        raise NotImplementedError

    def expired(self) -> StreamTimeoutError:
        raise NotImplementedError

    def dispose(self) -> None:
        self.stop()

    def _changed(self, _paused: bool) -> None:
        self.timers.soon(self.update)

    def _fire(self) -> None:
        if self.stop():
            self.observer.on_error(self.expired())

    def stop(self) -> bool:
        """Stop once: the pause listener, the source's subscription, the clock. False when already stopped."""
        if self.stopped:
            return False
        listening, self._listening = self._listening, []
        for listener in listening:
            listener.dispose()
        super().stop()
        self.timers.soon(self.clock.dispose)
        return True


class _Progress(_Limited):
    __slots__ = ("first_event", "idle", "seen")

    def __init__(
        self,
        observer: abc.ObserverBase[Any],
        pause: Pausable | None,
        scheduler: abc.SchedulerBase | None,
        first_event: float | None,
        idle: float | None,
    ) -> None:
        super().__init__(observer, pause, scheduler)
        self.first_event = first_event
        self.idle = idle
        self.seen = False
        self.start()

    def update(self) -> None:
        if self.stopped:
            return
        limit = self.idle if self.seen else self.first_event
        if limit is None or self.paused:
            self.clock.stop()
        else:
            self.clock.arm(limit)

    def on_next(self, item: Any) -> None:
        if self.stopped:
            return
        if not self.seen:
            self.seen = True
            self.update()
        elif self.clock.deadline is not None and self.idle is not None:
            # Progress only moves the deadline: no timer is touched per item.
            self.clock.deadline = self.timers.now() + self.idle
        self.observer.on_next(item)

    def expired(self) -> StreamTimeoutError:
        which, seconds = ("idle", self.idle) if self.seen else ("first_event", self.first_event)
        assert seconds is not None
        return StreamTimeoutError(which, seconds)


class _Total(_Limited):
    __slots__ = ("running_since", "total", "used")

    def __init__(
        self,
        observer: abc.ObserverBase[Any],
        pause: Pausable | None,
        scheduler: abc.SchedulerBase | None,
        total: float,
    ) -> None:
        super().__init__(observer, pause, scheduler)
        self.total = total
        self.used = 0.0  # seconds spent unpaused before the current run
        self.running_since: float | None = None
        self.start()

    def update(self) -> None:
        if self.stopped:
            return
        if self.paused and self.running_since is not None:
            self.used += self.timers.now() - self.running_since
            self.running_since = None
            self.clock.stop()
        elif not self.paused and self.running_since is None:
            self.running_since = self.timers.now()
            self.clock.arm(self.total - self.used)

    def expired(self) -> StreamTimeoutError:
        return StreamTimeoutError("total", self.total)


def progress_timeout(
    first_event: float | None,
    idle: float | None,
    *,
    pause: Pausable | None = None,
    scheduler: abc.SchedulerBase | None = None,
) -> Callable[[Observable[_T]], Observable[_T]]:
    """Fail with ``StreamTimeoutError`` when the first item or the next one takes too long.

    ``first_event`` bounds the wait from subscribing to the first item, ``idle``
    each wait after an item. The timeout unsubscribes the source (which closes
    the connection) before the error is delivered. While ``pause`` is paused no
    clock runs; on resume the current window starts afresh.

    .. marble::
        :alt: progress_timeout

        -a--b------c-|
        [ progress_timeout(first_event=3, idle=4) ]
        -a--b---#           # = StreamTimeoutError("idle", 4)  (4 ticks after b, and c is never read)

        -----a-|
        [ progress_timeout(first_event=3, idle=4) ]
        ---#                # = StreamTimeoutError("first_event", 3)
    """

    def link(observer: abc.ObserverBase[_T], scheduler_: abc.SchedulerBase | None) -> _Progress:
        return _Progress(observer, pause, scheduler or scheduler_, first_event, idle)

    def _progress_timeout(source: Observable[_T]) -> Observable[_T]:
        if first_event is None and idle is None:
            return source

        return Stage(source, link)

    return _progress_timeout


def total_timeout(
    total: float | None,
    *,
    pause: Pausable | None = None,
    scheduler: abc.SchedulerBase | None = None,
) -> Callable[[Observable[_T]], Observable[_T]]:
    """Fail with ``StreamTimeoutError("total", total)`` when the source runs longer than ``total``.

    Only time not paused counts. The timeout unsubscribes the source (closing
    the connection) before the error is delivered.

    .. marble::
        :alt: total_timeout

        -a-b-c-d-e-|
        [ total_timeout(6) ]
        -a-b-c#             # = StreamTimeoutError("total", 6)
    """

    def link(observer: abc.ObserverBase[_T], scheduler_: abc.SchedulerBase | None) -> _Total:
        assert total is not None
        return _Total(observer, pause, scheduler or scheduler_, total)

    def _total_timeout(source: Observable[_T]) -> Observable[_T]:
        if total is None:
            return source

        return Stage(source, link)

    return _total_timeout
