"""Bridges from Observables to plain Python: ``aiter`` for coroutines, ``run`` for scripts.

::

    async for event in rxllm.aiter(agent.stream_prompt("Hi")):    # in a coroutine
        ...

    events = rxllm.run(agent.stream_prompt("Hi"))                  # in a plain script

Both subscribe when iteration (or ``run``) starts, so every call runs the stream
anew, as any cold Observable would.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator
from typing import TypeVar

from reactivex import Observable
from reactivex.disposable import SerialDisposable

from rxllm._aio import on_loop

__all__ = ["aiter", "run"]

_T = TypeVar("_T")


class _End:
    __slots__ = ("error",)

    def __init__(self, error: Exception | None) -> None:
        self.error = error


async def aiter(observable: Observable[_T]) -> AsyncGenerator[_T, None]:
    """Iterate an Observable's items in the running loop; its error is raised at the end.

    The subscription is made on the running loop when iteration starts. Items
    are queued as they arrive (from any thread) and handed out in order. Leaving
    the ``async for`` early (``break``, an exception, a cancelled task) disposes
    the subscription, which closes the HTTP response and cancels running tools:
    at once when the iterator is closed (``contextlib.aclosing``), otherwise as
    soon as the loop finalizes the abandoned iterator, right after the loop body
    drops it.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[_T | _End] = asyncio.Queue()

    def put(item: _T | _End) -> None:
        on_loop(loop, lambda: queue.put_nowait(item))

    subscription = SerialDisposable()
    try:
        subscription.disposable = observable.subscribe(
            put, lambda error: put(_End(error)), lambda: put(_End(None))
        )
        while True:
            item = await queue.get()
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            yield item
    finally:
        subscription.dispose()


def run(observable: Observable[_T], *, timeout: float | None = None) -> list[_T]:
    """Subscribe, block until the Observable ends, and return its items; raise its error.

    For plain scripts and REPLs: the stream runs on a fresh asyncio loop. Where
    a loop already runs in this thread (a Jupyter cell), that loop cannot be
    blocked from inside, so the stream runs on a fresh loop in a worker thread
    and this call waits for it (in a notebook prefer ``await`` with ``aiter``).
    ``timeout`` (seconds) bounds the wait with ``TimeoutError``. Ctrl-C
    (``KeyboardInterrupt``) disposes the subscription, closing the connection,
    and propagates.
    """

    async def collect() -> list[_T]:
        items: list[_T] = []
        async with asyncio.timeout(timeout):
            async for item in aiter(observable):
                items.append(item)
        return items

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(collect())

    result: list[list[_T]] = []
    failure: list[BaseException] = []

    def work() -> None:
        try:
            result.append(asyncio.run(collect()))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
            failure.append(exc)

    worker = threading.Thread(target=work, name="rxllm-run", daemon=True)
    worker.start()
    worker.join()
    if failure:
        raise failure[0]
    return result[0]
