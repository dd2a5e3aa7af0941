"""Bridges between asyncio and Rx: which loop a subscription runs on, and coroutines as Observables."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import Disposable
from reactivex.scheduler.eventloop import AsyncIOScheduler

from rxllm._fusion import Fused
from rxllm.errors import EventLoopError

__all__ = ["event_loop", "from_async", "from_coroutine", "on_loop"]

_T = TypeVar("_T")


def event_loop(scheduler: abc.SchedulerBase | None) -> asyncio.AbstractEventLoop:
    """The loop to run on: an ``AsyncIOScheduler``'s, else the running one; else ``EventLoopError``."""
    if isinstance(scheduler, AsyncIOScheduler):
        # reactivex keeps the scheduler's loop in ``_loop`` and offers no public
        # accessor; it is the loop the user asked events to run on.
        loop: asyncio.AbstractEventLoop = scheduler._loop
        return loop
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        raise EventLoopError(
            "an rxllm stream needs a running asyncio event loop: subscribe from inside a coroutine, "
            "pass scheduler=AsyncIOScheduler(loop) to subscribe(), or use rxllm.run(observable) "
            "in a plain script"
        ) from None


def on_loop(loop: asyncio.AbstractEventLoop, action: Callable[[], None]) -> None:
    """Run ``action`` now when on ``loop``'s thread, else soon on that loop (calls keep their order)."""
    try:
        here = asyncio.get_running_loop() is loop
    except RuntimeError:
        here = False
    if here:
        action()
    else:
        loop.call_soon_threadsafe(action)


def from_async(
    produce: Callable[[abc.ObserverBase[_T], Callable[[], bool]], Awaitable[None]],
) -> Observable[_T]:
    """A cold Observable: each subscription runs ``produce(observer, disposed)`` as a task.

    .. marble::
        :alt: from_async

        subscribe ──► task ──► -a-b-c-|     (produce returned)
                               -a-b-#       (produce raised)

    ``produce`` emits with ``observer.on_next`` and checks ``disposed()`` after
    each emission (an observer may dispose from inside ``on_next``); returning
    completes, raising delivers the error. Disposing cancels the task. It runs
    on the loop of an ``AsyncIOScheduler`` passed to ``subscribe``, or the
    running loop; anywhere else the subscription fails with ``EventLoopError``.
    """

    return _AsyncSource(produce)


class _AsyncSource(Fused[_T]):
    """``from_async(produce)``: each subscription runs ``produce`` in a ``_TaskSubscription``."""

    def __init__(
        self, produce: Callable[[abc.ObserverBase[_T], Callable[[], bool]], Awaitable[None]]
    ) -> None:
        self._produce = produce

    def _subscribe_core(
        self, observer: abc.ObserverBase[_T], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        try:
            loop = event_loop(scheduler)
        except EventLoopError as exc:
            observer.on_error(exc)
            return Disposable()
        subscription = _TaskSubscription(loop, observer, self._produce)
        on_loop(loop, subscription.start)
        return subscription


class _TaskSubscription(abc.DisposableBase, Generic[_T]):
    """One ``from_async`` subscription: its task, and whether it was disposed (one slotted object)."""

    __slots__ = ("disposed", "loop", "observer", "produce", "task")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        observer: abc.ObserverBase[_T],
        produce: Callable[[abc.ObserverBase[_T], Callable[[], bool]], Awaitable[None]],
    ) -> None:
        self.loop = loop
        self.observer = observer
        self.produce = produce
        self.disposed = False
        self.task: asyncio.Task[None] | None = None

    def is_disposed(self) -> bool:
        return self.disposed

    def start(self) -> None:
        if not self.disposed:
            self.task = self.loop.create_task(self.run())

    async def run(self) -> None:
        try:
            await self.produce(self.observer, self.is_disposed)
        except asyncio.CancelledError:
            return  # disposed
        except Exception as exc:  # noqa: BLE001 - every failure reaches the observer
            if not self.disposed:
                self.observer.on_error(exc)
            return
        if not self.disposed:
            self.observer.on_completed()

    def dispose(self) -> None:
        self.disposed = True
        on_loop(self.loop, self._stop)

    def _stop(self) -> None:
        # Disposed from inside the task's own on_next: it sees ``disposed`` and returns by itself.
        task = self.task
        if task is not None and task is not asyncio.current_task(self.loop):
            task.cancel()


def from_coroutine(factory: Callable[[], Awaitable[_T]]) -> Observable[_T]:
    """A cold Observable: each subscription awaits ``factory()`` as a task and emits its result.

    .. marble::
        :alt: from_coroutine

        subscribe ──► task ──► ----r|      (or # when the coroutine raises)
    """

    async def produce(observer: abc.ObserverBase[_T], disposed: Callable[[], bool]) -> None:
        value = await factory()
        if not disposed():
            observer.on_next(value)

    return from_async(produce)
