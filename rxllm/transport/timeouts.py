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
from reactivex.scheduler.virtualtimescheduler import VirtualTimeScheduler

from rxllm.control import throttles
from rxllm.errors import StreamTimeoutError
from rxllm.transport._aio import event_loop, on_loop
from rxllm.transport._fusion import Link, Stage

__all__ = [
    "Clock",
    "Pausable",
    "ProgressWindow",
    "Timeouts",
    "Timers",
    "TotalWindow",
    "Window",
    "progress_timeout",
    "total_timeout",
]

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


class Timers:
    """Where one stream's timers run, and its clock: the one timer mechanism of rxllm.

    On an asyncio loop (an ``AsyncIOScheduler``'s, or the running one) timers are
    the loop's own (``call_later``), touched only on the loop's thread: work asked
    for from another thread (a GUI subscribing, pausing or disposing) is handed
    over with ``call_soon_threadsafe``. A virtual-time scheduler (marble tests) is
    used as it is. Anywhere else: ``EventLoopError``, as the HTTP source would
    raise; no timer thread is started. The time limits and the retries' waits
    both run on it.
    """

    __slots__ = ("_loop", "_scheduler")

    def __init__(self, scheduler: abc.SchedulerBase | None) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._scheduler: VirtualTimeScheduler | None = None
        if isinstance(scheduler, VirtualTimeScheduler):
            self._scheduler = scheduler
            return
        self._loop = event_loop(scheduler)

    def now(self) -> float:
        virtual = self._scheduler
        return time.monotonic() if virtual is None else virtual.now.timestamp()

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


class Clock:
    """One limit's window: arm it, stop it while paused, and fire when it really ran out.

    Progress only records a time stamp (no timer is touched per item); when the
    timer fires early because progress moved the deadline, it re-arms itself for
    the rest. Used on the timers' thread only.
    """

    __slots__ = ("_cancel", "_fire", "_timers", "deadline")

    def __init__(self, timers: Timers, fire: Callable[[], None]) -> None:
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


class Window:
    """What one stream's time limit needs: its clock, the pauses it stops for, and stopping once.

    A subclass says when the clock runs (``update``) and which error running out
    is (``expired``); ``fire`` gets that error. The pauses are the user's
    ``pause`` and the throttles of bounded consumers the stream was subscribed
    for (``rxllm.control.throttled``): a slow consumer is no stalled server.
    Both the operators (``progress_timeout``, ``total_timeout``) and the HTTP
    source of a provider's turn, which keeps the progress limits itself, use it.
    """

    __slots__ = ("_fire", "_listening", "clock", "pauses", "stopped", "timers")

    def __init__(
        self,
        pause: Pausable | None,
        scheduler: abc.SchedulerBase | None,
        fire: Callable[[StreamTimeoutError], None],
    ) -> None:
        own: tuple[Pausable, ...] = () if pause is None else (pause,)
        self.pauses: tuple[Pausable, ...] = own + throttles()
        self.timers = Timers(scheduler)
        self.clock = Clock(self.timers, self._expire)
        self._fire = fire
        self._listening: list[abc.DisposableBase] = []
        self.stopped = False

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

    def _changed(self, _paused: bool) -> None:
        self.timers.soon(self.update)

    def _expire(self) -> None:
        if not self.stopped:
            self._fire(self.expired())

    def stop(self) -> None:
        """Stop once: the pause listeners, then the clock (on the timers' thread)."""
        if self.stopped:
            return
        self.stopped = True
        listening, self._listening = self._listening, []
        for listener in listening:
            listener.dispose()
        self.timers.soon(self.clock.dispose)


class ProgressWindow(Window):
    """``first_event`` until the first item, then ``idle`` between items; no clock while paused."""

    __slots__ = ("first_event", "idle", "seen")

    def __init__(
        self,
        pause: Pausable | None,
        scheduler: abc.SchedulerBase | None,
        fire: Callable[[StreamTimeoutError], None],
        first_event: float | None,
        idle: float | None,
    ) -> None:
        super().__init__(pause, scheduler, fire)
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

    def progress(self) -> None:
        """An item arrived (on the timers' thread): the idle window starts again."""
        if not self.seen:
            self.seen = True
            self.update()
        elif self.clock.deadline is not None and self.idle is not None:
            # Progress only moves the deadline: no timer is touched per item.
            self.clock.deadline = self.timers.now() + self.idle

    def expired(self) -> StreamTimeoutError:
        which, seconds = ("idle", self.idle) if self.seen else ("first_event", self.first_event)
        assert seconds is not None
        return StreamTimeoutError(which, seconds)


class TotalWindow(Window):
    """The whole stream's time, paused time left out."""

    __slots__ = ("running_since", "total", "used")

    def __init__(
        self,
        pause: Pausable | None,
        scheduler: abc.SchedulerBase | None,
        fire: Callable[[StreamTimeoutError], None],
        total: float,
    ) -> None:
        super().__init__(pause, scheduler, fire)
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


class _Limited(Link[Any, Any]):
    """A time limit as an operator's link: running out unsubscribes the source, then the error.

    One ``Link`` with slots per subscription, rather than a closure per callback,
    keeps a stream's fixed cost small (see ``rxllm.transport._fusion``); nothing follows a
    terminal.
    """

    __slots__ = ("window",)

    window: Window

    def _fire(self, error: StreamTimeoutError) -> None:
        if self.stop():
            self.observer.on_error(error)

    def dispose(self) -> None:
        self.stop()

    def stop(self) -> bool:
        """Stop once: the window (listeners, clock) and the source's subscription; false when stopped."""
        if self.stopped:
            return False
        self.window.stop()
        return super().stop()


class _Progress(_Limited):
    __slots__ = ()

    window: ProgressWindow

    def __init__(
        self,
        observer: abc.ObserverBase[Any],
        pause: Pausable | None,
        scheduler: abc.SchedulerBase | None,
        first_event: float | None,
        idle: float | None,
    ) -> None:
        super().__init__(observer)
        self.window = ProgressWindow(pause, scheduler, self._fire, first_event, idle)

    def on_next(self, item: Any) -> None:
        if self.stopped:
            return
        self.window.progress()
        self.observer.on_next(item)


class _Total(_Limited):
    __slots__ = ()

    def __init__(
        self,
        observer: abc.ObserverBase[Any],
        pause: Pausable | None,
        scheduler: abc.SchedulerBase | None,
        total: float,
    ) -> None:
        super().__init__(observer)
        self.window = TotalWindow(pause, scheduler, self._fire, total)


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
