import asyncio
from typing import Any

from conftest import collect_events

from rxllm._aio import from_coroutine
from rxllm.errors import EventLoopError


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
    assert "running asyncio event loop" in str(error)
