"""Bridges between asyncio and Rx: which loop a subscription runs on, and coroutines as Observables."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from reactivex import Observable, abc
from reactivex.scheduler.eventloop import AsyncIOScheduler

from rxllm.errors import CallbackError, EventLoopError
from rxllm.transport._fusion import Fused

__all__ = ["LOOP_CLOSED", "event_loop", "from_async", "from_coroutine", "on_loop", "unsubscribable"]

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
    """Run ``action`` now when on ``loop``'s thread, else soon on that loop (calls keep their order).

    A loop that is closed runs nothing any more: ``action`` is dropped, never
    raised about, so a ``dispose()`` after the loop ended is quiet.
    """
    try:
        here = asyncio.get_running_loop() is loop
    except RuntimeError:
        here = False
    if here:
        action()
        return
    try:
        loop.call_soon_threadsafe(action)
    except RuntimeError:
        if not loop.is_closed():
            raise


LOOP_CLOSED = (
    "the event loop this stream runs on shut down under it (asyncio.run returned, or the loop cancelled "
    "the stream's task): dispose the subscription before leaving the loop, or wait for the stream's end"
)
"""The message of the ``EventLoopError`` a stream ends with when its loop goes away first."""


def unsubscribable(error: BaseException, loop: asyncio.AbstractEventLoop, where: str) -> None:
    """Report an error no observer can take (a subscriber's ``on_error`` raised, or it had none).

    Plain Rx raises it where it happened; inside a task or a loop callback that
    is the loop's exception handler, told at once rather than when the task is
    collected.
    """
    loop.call_exception_handler({"message": f"rxllm: {where} raised", "exception": error})


def from_async(
    produce: Callable[[abc.ObserverBase[_T], Callable[[], bool]], Awaitable[None]],
) -> Observable[_T]:
    """A cold Observable: each subscription runs ``produce(observer, disposed)`` as a task.

    .. marble::
        :alt: from_async

        -a-b-c-|            from the subscription on: produce emitted a, b, c and returned
        -a-b-#              ... or raised (# is its exception)

    ``produce`` emits with ``observer.on_next`` and checks ``disposed()`` after
    each emission (an observer may dispose from inside ``on_next``); returning
    completes, raising delivers the error. ``produce`` turns an exception that
    an ``on_next`` raises into ``CallbackError("on_next", exc)``, so it is told
    apart from the source's own failures. Disposing cancels the task. It runs
    on the loop of an ``AsyncIOScheduler`` passed to ``subscribe``, or the
    running loop; anywhere else the subscription fails with ``EventLoopError``
    (raised from ``subscribe`` when the subscriber has no ``on_error``, as plain
    Rx does).

    Every subscription ends with one terminal or its dispose: when the loop
    cancels the task itself (it is shutting down), the observer gets
    ``EventLoopError``; a subscriber's ``on_error`` or ``on_completed`` that
    raises is reported to the loop's exception handler at once.
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
        # Without a loop this raises EventLoopError: delivered to the observer by the subscribe
        # call (or raised from it when the subscriber has no on_error, as plain Rx does).
        loop = event_loop(scheduler)
        subscription = _TaskSubscription(loop, observer, self._produce)
        on_loop(loop, subscription.start)
        return subscription


class _TaskSubscription(abc.DisposableBase, Generic[_T]):
    """One ``from_async`` subscription: its task, and whether it was disposed (one slotted object)."""

    __slots__ = ("disposed", "failure", "loop", "observer", "produce", "task")

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
        self.failure: Exception | None = None
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
            if self.failure is not None:
                self.end(self.failure)  # stopped by ``fail`` (a time limit ran out)
            elif not self.disposed:
                # Not cancelled by a dispose: the loop is cancelling what is left (asyncio.run
                # returning). The stream ends loud, with an error saying so.
                self.end(EventLoopError(LOOP_CLOSED))
            return
        except Exception as exc:  # noqa: BLE001 - every failure reaches the observer
            if not self.disposed:
                self.end(exc)
            return
        if not self.disposed:
            self.end(None)

    def end(self, error: Exception | None) -> None:
        """Deliver the terminal; what the subscriber's own terminal callback raises goes to the loop."""
        self.disposed = True
        try:
            if error is None:
                self.observer.on_completed()
            else:
                self.observer.on_error(error)
        except Exception as raised:  # noqa: BLE001 - no observer is left to take it
            unsubscribable(raised, self.loop, "a subscriber's on_completed" if error is None else "on_error")

    def fail(self, error: Exception) -> None:
        """Stop the task and end with ``error`` (on the loop's thread; ignored once it ended)."""
        if self.disposed or self.failure is not None:
            return
        self.failure = error
        task = self.task
        if task is not None:
            task.cancel()

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

        ----(r,|)           from the subscription on: the coroutine's result r, then the end
        ----#               ... or the coroutine raised (# is its exception)
    """

    async def produce(observer: abc.ObserverBase[_T], disposed: Callable[[], bool]) -> None:
        value = await factory()
        if not disposed():
            try:
                observer.on_next(value)
            except Exception as exc:  # noqa: BLE001 - a subscriber's callback failed: end the stream loud
                raise CallbackError("on_next", exc) from exc

    return from_async(produce)
