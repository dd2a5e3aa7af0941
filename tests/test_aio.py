import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from conftest import collect_events
from reactivex import abc
from reactivex.scheduler.eventloop import AsyncIOScheduler

from rxllm.errors import CallbackError, EventLoopError, StreamTimeoutError
from rxllm.transport._aio import _TaskSubscription, from_async, from_coroutine, on_loop
from rxllm.transport._fusion import subscribe_fused


class Raw(abc.ObserverBase[Any]):
    """A raw observer (no ``AutoDetachObserver`` between it and the source): records every call.

    ``raises`` is raised from the callbacks named in ``raising``; ``ended`` is set at a terminal.
    """

    def __init__(self, *, raises: Exception | None = None, raising: tuple[str, ...] = ()) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.raises = raises
        self.raising = raising
        self.ended = asyncio.Event()
        self.threads: set[threading.Thread] = set()

    def _record(self, kind: str, value: Any) -> None:
        self.calls.append((kind, value))
        self.threads.add(threading.current_thread())
        if kind != "next":
            self.ended.set()
        if self.raises is not None and kind in self.raising:
            raise self.raises

    def on_next(self, value: Any) -> None:
        self._record("next", value)

    def on_error(self, error: Exception) -> None:
        self._record("error", error)

    def on_completed(self) -> None:
        self._record("completed", None)


@contextmanager
def loop_reports(loop: asyncio.AbstractEventLoop) -> Iterator[list[dict[str, Any]]]:
    """What reaches ``loop``'s exception handler inside the block."""
    reports: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: reports.append(context))
    try:
        yield reports
    finally:
        loop.set_exception_handler(None)


async def test_emits_the_result_then_completes() -> None:
    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    result = await collect_events(from_coroutine(answer))
    assert (result.events, result.completed) == ([42], True)


async def test_an_exception_is_the_error() -> None:
    boom = ValueError("boom")

    async def fail() -> int:
        raise boom

    result = await collect_events(from_coroutine(fail))
    assert (result.events, result.error) == ([], boom)


async def test_each_subscription_runs_the_coroutine_again() -> None:
    calls: list[int] = []

    async def count() -> int:
        calls.append(1)
        return len(calls)

    observable = from_coroutine(count)
    assert (await collect_events(observable)).events == [1]
    assert (await collect_events(observable)).events == [2]


async def test_dispose_cancels_the_task() -> None:
    cancelled = asyncio.Event()
    started = asyncio.Event()

    async def wait() -> int:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return 0

    seen: list[Any] = []
    subscription = from_coroutine(wait).subscribe(seen.append, seen.append, lambda: seen.append("done"))
    await asyncio.wait_for(started.wait(), 1)
    subscription.dispose()
    await asyncio.wait_for(cancelled.wait(), 1)
    assert seen == []


def test_without_a_loop_the_error_says_what_to_do() -> None:
    async def never() -> int:
        return 0

    errors: list[Exception] = []
    from_coroutine(never).subscribe(on_error=errors.append)
    (error,) = errors
    assert isinstance(error, EventLoopError)
    assert str(error) == (
        "an rxllm stream needs a running asyncio event loop: subscribe from inside a coroutine, "
        "pass scheduler=AsyncIOScheduler(loop) to subscribe(), or use rxllm.run(observable) "
        "in a plain script"
    )


async def test_an_on_next_that_raises_ends_the_stream_with_callback_error() -> None:
    boom = ValueError("boom")

    async def answer() -> int:
        return 42

    raw = Raw(raises=boom, raising=("next",))
    subscribe_fused(from_coroutine(answer), raw, None)
    await asyncio.wait_for(raw.ended.wait(), 1)
    assert raw.calls[0] == ("next", 42)
    (_, error), *_ = raw.calls[1:]
    assert len(raw.calls) == 2 and type(error) is CallbackError
    assert (str(error), error.callback) == ("on_next raised ValueError: boom", "on_next")
    assert error.__cause__ is boom


@pytest.mark.parametrize(
    ("outcome", "where"), [("value", "a subscriber's on_completed"), ("error", "on_error")]
)
async def test_a_subscriber_terminal_that_raises_reaches_the_loops_exception_handler(
    outcome: str, where: str
) -> None:
    oops = RuntimeError("subscriber broke")
    failure = ValueError("the source failed")

    async def produce() -> int:
        if outcome == "error":
            raise failure
        return 1

    raw = Raw(raises=oops, raising=("completed", "error"))
    loop = asyncio.get_running_loop()
    with loop_reports(loop) as reports:
        subscribe_fused(from_coroutine(produce), raw, None)
        await asyncio.wait_for(raw.ended.wait(), 1)
    # Reported at once, from inside the terminal's own call: no wait for garbage collection.
    assert reports == [{"message": f"rxllm: {where} raised", "exception": oops}]
    expected = [("next", 1), ("completed", None)] if outcome == "value" else [("error", failure)]
    assert raw.calls == expected


async def test_dispose_cancels_the_task_and_delivers_nothing_even_to_a_raw_observer() -> None:
    cancelled = asyncio.Event()
    started = asyncio.Event()

    async def wait() -> int:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return 0

    raw = Raw()
    subscription = subscribe_fused(from_coroutine(wait), raw, None)
    await asyncio.wait_for(started.wait(), 1)
    subscription.dispose()
    # The task handles the cancellation to its end in the step that set ``cancelled``.
    await asyncio.wait_for(cancelled.wait(), 1)
    assert raw.calls == []


async def test_subscribed_from_another_thread_it_runs_on_the_schedulers_loop() -> None:
    loop = asyncio.get_running_loop()
    here = threading.current_thread()
    ran_on: list[threading.Thread] = []

    async def answer() -> int:
        ran_on.append(threading.current_thread())
        return 7

    raw = Raw()
    await asyncio.to_thread(subscribe_fused, from_coroutine(answer), raw, AsyncIOScheduler(loop))
    await asyncio.wait_for(raw.ended.wait(), 1)
    assert (ran_on, raw.threads, raw.calls) == ([here], {here}, [("next", 7), ("completed", None)])


async def test_disposed_from_another_thread_before_it_starts_runs_nothing() -> None:
    loop = asyncio.get_running_loop()
    calls: list[str] = []
    marker = asyncio.Event()

    async def answer() -> int:
        calls.append("ran")
        return 7

    def subscribe_and_dispose() -> None:
        raw = Raw()
        subscription = subscribe_fused(from_coroutine(answer), raw, AsyncIOScheduler(loop))
        subscription.dispose()
        calls.extend(kind for kind, _ in raw.calls)
        # Posted after the subscription's start and its dispose: it runs after both (calls keep their order).
        loop.call_soon_threadsafe(marker.set)

    with loop_reports(loop) as reports:
        # The loop is held (joined here) while the other thread subscribes and disposes: both wait for it.
        other = threading.Thread(target=subscribe_and_dispose)
        other.start()
        other.join()
        await asyncio.wait_for(marker.wait(), 1)
        await asyncio.sleep(0)  # a task the start would have made runs its first step now
    assert (calls, reports) == ([], [])


async def test_on_loop_runs_at_once_on_the_loops_thread_and_in_order_from_another() -> None:
    loop = asyncio.get_running_loop()
    here = threading.current_thread()
    ran: list[tuple[str, threading.Thread]] = []
    on_loop(loop, lambda: ran.append(("at once", threading.current_thread())))
    assert ran == [("at once", here)]

    def elsewhere() -> None:
        for name in ("first", "second"):
            on_loop(loop, lambda name=name: ran.append((name, threading.current_thread())))  # type: ignore[misc]

    done = asyncio.Event()
    await asyncio.to_thread(elsewhere)
    loop.call_soon(done.set)
    await done.wait()
    assert ran == [("at once", here), ("first", here), ("second", here)]


def test_on_loop_with_a_closed_loop_drops_the_action_quietly() -> None:
    loop = asyncio.new_event_loop()
    loop.close()
    ran: list[int] = []
    on_loop(loop, lambda: ran.append(1))
    assert ran == []


def _waiting(started: asyncio.Event, ended: list[str]) -> Any:
    """A ``from_async`` produce that waits until cancelled, recording how it ended."""

    async def produce(_observer: abc.ObserverBase[int], _disposed: Any) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            ended.append("cancelled")
            raise

    return produce


async def test_fail_cancels_the_task_and_ends_with_that_error() -> None:
    started, raw = asyncio.Event(), Raw()
    ended: list[str] = []
    subscription = subscribe_fused(from_async(_waiting(started, ended)), raw, None)
    await asyncio.wait_for(started.wait(), 1)
    assert isinstance(subscription, _TaskSubscription)
    late = StreamTimeoutError("idle", 1.0)
    subscription.fail(late)
    subscription.fail(StreamTimeoutError("first_event", 2.0))  # the first failure is the one delivered
    await asyncio.wait_for(raw.ended.wait(), 1)
    assert (ended, raw.calls) == (["cancelled"], [("error", late)])


async def test_fail_after_dispose_delivers_nothing() -> None:
    started, raw = asyncio.Event(), Raw()
    ended: list[str] = []
    subscription = subscribe_fused(from_async(_waiting(started, ended)), raw, None)
    await asyncio.wait_for(started.wait(), 1)
    assert isinstance(subscription, _TaskSubscription)
    subscription.dispose()
    subscription.fail(StreamTimeoutError("idle", 1.0))
    task = subscription.task
    assert task is not None
    await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 1)
    assert (ended, raw.calls) == (["cancelled"], [])


async def test_a_dispose_from_inside_on_next_lets_the_task_return_by_itself() -> None:
    steps: list[str] = []
    finished = asyncio.Event()
    subscription: list[abc.DisposableBase] = []

    class Disposing(Raw):
        def on_next(self, value: Any) -> None:
            super().on_next(value)
            subscription[0].dispose()

    async def produce(observer: abc.ObserverBase[int], disposed: Any) -> None:
        await asyncio.sleep(0)  # subscribe_fused has returned: the subscription is known
        observer.on_next(1)
        try:
            # The cleanup a source awaits after a dispose (closing its response) is not cancelled.
            await asyncio.sleep(0)
            steps.append(f"cleaned up, disposed={disposed()}")
        except asyncio.CancelledError:
            steps.append("cancelled")
            raise
        finally:
            finished.set()

    raw = Disposing()
    subscription.append(subscribe_fused(from_async(produce), raw, None))
    await asyncio.wait_for(finished.wait(), 1)
    assert (steps, raw.calls) == (["cleaned up, disposed=True"], [("next", 1)])
