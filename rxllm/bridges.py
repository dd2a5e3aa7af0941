"""Bridges from Observables to plain Python: ``aiter`` for coroutines, ``iterate`` and ``run`` for scripts.

::

    async for event in rxllm.aiter(agent.stream_prompt("Hi")):    # in a coroutine
        ...

    for event in rxllm.iterate(agent.stream_prompt("Hi")):         # in a plain script, as it streams
        ...

    events = rxllm.run(agent.stream_prompt("Hi"))                  # in a plain script: the list

Each subscribes when iteration (or ``run``) starts, so every call runs the stream
anew, as any cold Observable would. Each is bounded: it holds at most
``max_buffered`` events its consumer has not taken yet, and beyond that pauses
the source (``rxllm.control.Backlog``), so a slow consumer stops the socket
being read, as ``pause_gate`` does; it resumes when half of them are taken.
The events of the piece the source was reading still arrive, so the bound is
``max_buffered`` plus one read's worth. Sources other than rxllm's cannot be
paused; their events are held as they come.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncGenerator, Callable, Coroutine, Iterator
from typing import Any, TypeVar

from reactivex import Observable, abc

from rxllm.control import DEFAULT_BACKLOG, Backlog, throttled
from rxllm.transport._aio import on_loop

__all__ = ["aiter", "iterate", "run"]

_T = TypeVar("_T")


class _End:
    __slots__ = ("error",)

    def __init__(self, error: Exception | None) -> None:
        self.error = error

    def finish(self) -> None:
        """The stream's end: its error raised, when it failed."""
        __tracebackhide__ = True
        if self.error is not None:
            raise self.error


async def aiter(
    observable: Observable[_T], *, max_buffered: int = DEFAULT_BACKLOG
) -> AsyncGenerator[_T, None]:
    """Iterate an Observable's items in the running loop; its error is raised after the items before it.

    The subscription is made on the running loop when iteration starts. Items
    are queued as they arrive (from any thread) and handed out in order; above
    ``max_buffered`` queued items the source is paused. Leaving the ``async
    for`` early (``break``, an exception, a cancelled task) disposes the
    subscription, which closes the HTTP response and cancels running tools: at
    once when the iterator is closed (``contextlib.aclosing``), otherwise as
    soon as the loop finalizes the abandoned iterator, right after the loop body
    drops it.
    """
    __tracebackhide__ = True
    loop = asyncio.get_running_loop()
    items: asyncio.Queue[_T | _End] = asyncio.Queue()
    backlog = Backlog(max_buffered)

    def put(item: _T | _End) -> None:
        def enqueue() -> None:
            if not isinstance(item, _End):
                backlog.added()
            items.put_nowait(item)

        on_loop(loop, enqueue)

    subscription: abc.DisposableBase | None = None
    try:
        with throttled(backlog.control):
            subscription = observable.subscribe(put, lambda error: put(_End(error)), lambda: put(_End(None)))
        while True:
            item = await items.get()
            if isinstance(item, _End):
                item.finish()
                return
            backlog.removed()
            yield item
    finally:
        if subscription is not None:
            subscription.dispose()


def iterate(observable: Observable[_T], *, max_buffered: int = DEFAULT_BACKLOG) -> Iterator[_T]:
    """Iterate an Observable's items in a plain script, each as it arrives; its error after them.

    The stream runs on a fresh asyncio loop in a worker thread, and this
    generator blocks until the next item arrives. Leaving the ``for`` loop early
    (``break``, an exception, Ctrl-C) disposes the subscription, which closes
    the connection, and ends the worker. Bounded like ``aiter``.
    """
    __tracebackhide__ = True
    handoff: queue.SimpleQueue[Any] = queue.SimpleQueue()
    backlog = Backlog(max_buffered)
    runner = _Worker(observable, handoff, backlog)
    runner.start()
    try:
        while True:
            item = handoff.get()
            if isinstance(item, _End):
                item.finish()
                return
            backlog.removed()
            yield item
    finally:
        runner.stop()


class _Worker:
    """The loop thread behind ``iterate``: subscribes there, hands items over, stops when asked."""

    def __init__(
        self, observable: Observable[Any], handoff: queue.SimpleQueue[Any], backlog: Backlog
    ) -> None:
        self.observable = observable
        self.handoff = handoff
        self.backlog = backlog
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="rxllm-iterate", daemon=True)
        self.subscription: abc.DisposableBase | None = None
        self.finished: asyncio.Event | None = None

    def start(self) -> None:
        ready = threading.Event()
        self._ready = ready
        self.thread.start()
        ready.wait()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._main())
        finally:
            try:
                self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            finally:
                self.loop.close()

    async def _main(self) -> None:
        self.finished = asyncio.Event()
        finished = self.finished

        def on_next(item: Any) -> None:
            self.backlog.added()
            self.handoff.put(item)

        def end(error: Exception | None) -> None:
            self.handoff.put(_End(error))
            finished.set()

        try:
            with throttled(self.backlog.control):
                self.subscription = self.observable.subscribe(on_next, end, lambda: end(None))
        except Exception as exc:  # noqa: BLE001 - a source that fails to subscribe: its error, raised
            end(exc)
        finally:
            self._ready.set()
        await finished.wait()

    def stop(self) -> None:
        """Dispose the subscription (if it is still running) and wait for the worker to end."""

        def finish() -> None:
            if self.subscription is not None:
                self.subscription.dispose()
            if self.finished is not None:
                self.finished.set()

        if self.thread.is_alive():
            on_loop(self.loop, finish)
            self.thread.join()


def run(observable: Observable[_T], *, timeout: float | None = None) -> list[_T]:
    """Subscribe, block until the Observable ends, and return its items; raise its error.

    For plain scripts and REPLs: the stream runs on a fresh asyncio loop. Where
    a loop already runs in this thread (a Jupyter cell), that loop cannot be
    blocked from inside, so the stream runs on a fresh loop in a worker thread
    and this call waits for it (in a notebook prefer ``await`` with ``aiter``).
    ``timeout`` (seconds) bounds the wait with ``TimeoutError``. Ctrl-C
    (``KeyboardInterrupt``) disposes the subscription, closing the connection,
    and propagates. To see each event as it arrives, use ``iterate``.
    """
    __tracebackhide__ = True

    async def collect() -> list[_T]:
        __tracebackhide__ = True
        items: list[_T] = []
        async with asyncio.timeout(timeout):
            async for item in aiter(observable):
                items.append(item)
        return items

    if not _loop_running():
        try:
            return asyncio.run(collect())
        except KeyboardInterrupt:
            # asyncio.run raises it while handling the task's CancelledError: Ctrl-C alone shows.
            raise KeyboardInterrupt from None
        except Exception as error:
            raise _from_its_origin(error)  # noqa: B904 - the error itself, raised again
    return _run_in_worker(collect)


def _run_in_worker(collect: Callable[[], Coroutine[Any, Any, list[_T]]]) -> list[_T]:
    """``run`` where this thread's loop runs (a notebook cell): a fresh loop in a worker thread.

    Ctrl-C in the waiting thread cancels the worker's task, which disposes the
    subscription (the connection closes), and then propagates.
    """
    __tracebackhide__ = True
    result: list[list[_T]] = []
    failure: list[BaseException] = []
    started = threading.Event()
    running: list[tuple[asyncio.AbstractEventLoop, asyncio.Task[Any]]] = []

    async def main() -> list[_T]:
        __tracebackhide__ = True
        task = asyncio.current_task()
        assert task is not None
        running.append((asyncio.get_running_loop(), task))
        started.set()
        return await collect()

    def work() -> None:
        __tracebackhide__ = True
        try:
            result.append(asyncio.run(main()))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
            failure.append(exc)
        finally:
            started.set()

    worker = threading.Thread(target=work, name="rxllm-run", daemon=True)
    worker.start()
    try:
        worker.join()
    except KeyboardInterrupt:
        started.wait()
        if running:
            loop, task = running[0]

            def cancel() -> None:
                task.cancel()

            on_loop(loop, cancel)
        worker.join()
        raise KeyboardInterrupt from None
    if failure:
        error = failure[0]
        raise _from_its_origin(error)
    return result[0]


def _from_its_origin(error: BaseException) -> BaseException:
    """``error`` with the frames of ``run``'s machinery (asyncio's runner, this module) cut off its traceback.

    What stays is where the error was raised, if it was raised before it was
    delivered (a provider's failure); the traceback then reads from the caller's
    ``rxllm.run(...)`` line straight to it.
    """
    origin = traceback = error.__traceback__
    while traceback is not None:
        if traceback.tb_frame.f_globals.get("__name__") == __name__:
            origin = traceback.tb_next
        traceback = traceback.tb_next
    return error.with_traceback(origin)


def _loop_running() -> bool:
    # Outside the ``except``: a stream's error raised later must not show this lookup as its context.
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
