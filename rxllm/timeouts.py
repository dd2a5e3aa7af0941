"""``Timeouts``: how long a stream may take, and the operators that enforce it.

Every limit is in seconds; ``None`` means no limit. Exceeding one delivers
``StreamTimeoutError`` whose ``which`` names it, and closes the connection.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable, SerialDisposable, SingleAssignmentDisposable
from reactivex.scheduler import TimeoutScheduler
from reactivex.scheduler.eventloop import AsyncIOScheduler, AsyncIOThreadSafeScheduler
from reactivex.scheduler.virtualtimescheduler import VirtualTimeScheduler

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


def _soon(scheduler: abc.SchedulerBase, action: Callable[[], None]) -> None:
    """Run ``action`` on ``scheduler`` (from any thread)."""

    def run(_scheduler: abc.SchedulerBase, _state: object = None) -> None:
        action()

    scheduler.schedule(run)


class _Clock:
    """One limit's window: arm it, stop it while paused, and fire when it really ran out.

    Progress only records a time stamp (no timer is touched per item); when the
    timer fires early because progress moved the deadline, it re-arms itself for
    the rest.
    """

    __slots__ = ("_fire", "_now", "_scheduler", "_timer", "deadline")

    def __init__(
        self,
        scheduler: abc.SchedulerBase,
        now: Callable[[], float],
        fire: Callable[[], None],
    ) -> None:
        self._scheduler = scheduler
        self._now = now
        self._fire = fire
        self._timer = SerialDisposable()
        self.deadline: float | None = None

    def arm(self, seconds: float) -> None:
        self.deadline = self._now() + seconds
        self._schedule(seconds)

    def stop(self) -> None:
        self.deadline = None
        self._timer.disposable = Disposable()

    def dispose(self) -> None:
        self.deadline = None
        self._timer.dispose()

    def _schedule(self, seconds: float) -> None:
        self._timer.disposable = self._scheduler.schedule_relative(max(seconds, 0.0), self._due)

    def _due(self, _scheduler: abc.SchedulerBase, _state: object = None) -> None:
        if self.deadline is None:
            return
        left = self.deadline - self._now()
        if left > 1e-6:
            self._schedule(left)
            return
        self.deadline = None
        self._fire()


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
        -a--b---#           # = StreamTimeoutError("idle", 4)

        -----a-|
        [ progress_timeout(first_event=3, idle=4) ]
        ---#                # = StreamTimeoutError("first_event", 3)
    """

    def _progress_timeout(source: Observable[_T]) -> Observable[_T]:
        if first_event is None and idle is None:
            return source

        def subscribe(
            observer: abc.ObserverBase[_T],
            scheduler_: abc.SchedulerBase | None = None,
        ) -> abc.DisposableBase:
            timers, now = timer_scheduler(scheduler or scheduler_)
            upstream = SingleAssignmentDisposable()
            seen = False
            stopped = False

            def fire() -> None:
                nonlocal stopped
                if stopped:
                    return
                stopped = True
                listening.dispose()
                upstream.dispose()
                which, seconds = ("idle", idle) if seen else ("first_event", first_event)
                assert seconds is not None
                observer.on_error(StreamTimeoutError(which, seconds))

            clock = _Clock(timers, now, fire)

            def window() -> float | None:
                return idle if seen else first_event

            def restart() -> None:
                if stopped:
                    return
                limit = window()
                if pause is not None and pause.is_paused or limit is None:
                    clock.stop()
                else:
                    clock.arm(limit)

            def on_next(item: _T) -> None:
                nonlocal seen
                if stopped:
                    return
                if not seen:
                    seen = True
                    restart()
                elif clock.deadline is not None and idle is not None:
                    clock.deadline = now() + idle
                observer.on_next(item)

            def on_error(error: Exception) -> None:
                nonlocal stopped
                if stopped:
                    return
                stopped = True
                clock.dispose()
                observer.on_error(error)

            def on_completed() -> None:
                nonlocal stopped
                if stopped:
                    return
                stopped = True
                clock.dispose()
                observer.on_completed()

            listening: abc.DisposableBase = Disposable()
            if pause is not None:
                # A pause or resume may come from any thread: act on it on the timers' scheduler.
                listening = pause.add_listener(lambda _paused: _soon(timers, restart))
            restart()
            upstream.disposable = source.subscribe(on_next, on_error, on_completed, scheduler=scheduler_)

            def stop() -> None:
                nonlocal stopped
                stopped = True
                clock.dispose()

            return CompositeDisposable(Disposable(stop), listening, upstream)

        return Observable(subscribe)

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
        -a-b-c#
    """

    def _total_timeout(source: Observable[_T]) -> Observable[_T]:
        if total is None:
            return source

        def subscribe(
            observer: abc.ObserverBase[_T],
            scheduler_: abc.SchedulerBase | None = None,
        ) -> abc.DisposableBase:
            timers, now = timer_scheduler(scheduler or scheduler_)
            upstream = SingleAssignmentDisposable()
            stopped = False
            used = 0.0  # seconds spent unpaused before the current run
            running_since: float | None = None

            def fire() -> None:
                nonlocal stopped
                if stopped:
                    return
                stopped = True
                listening.dispose()
                upstream.dispose()
                assert total is not None
                observer.on_error(StreamTimeoutError("total", total))

            clock = _Clock(timers, now, fire)

            def update() -> None:
                nonlocal used, running_since
                if stopped:
                    return
                paused = pause is not None and pause.is_paused
                if paused and running_since is not None:
                    used += now() - running_since
                    running_since = None
                    clock.stop()
                elif not paused and running_since is None:
                    assert total is not None
                    running_since = now()
                    clock.arm(total - used)

            def on_next(item: _T) -> None:
                if not stopped:
                    observer.on_next(item)

            def on_error(error: Exception) -> None:
                nonlocal stopped
                if not stopped:
                    stopped = True
                    clock.dispose()
                    observer.on_error(error)

            def on_completed() -> None:
                nonlocal stopped
                if not stopped:
                    stopped = True
                    clock.dispose()
                    observer.on_completed()

            listening: abc.DisposableBase = Disposable()
            if pause is not None:
                listening = pause.add_listener(lambda _paused: _soon(timers, update))
            update()
            upstream.disposable = source.subscribe(on_next, on_error, on_completed, scheduler=scheduler_)

            def stop() -> None:
                nonlocal stopped
                stopped = True
                clock.dispose()

            return CompositeDisposable(Disposable(stop), listening, upstream)

        return Observable(subscribe)

    return _total_timeout
