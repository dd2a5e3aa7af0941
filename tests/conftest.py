"""Shared fixtures: loopback aiohttp servers that replay provider-shaped SSE bytes.

``sse_server(reply)`` starts a real server on 127.0.0.1 that answers every POST
with the scripted reply (or, given a list, the n-th request with the n-th reply)
and records what it received; ``collect(observable)``
subscribes inside the running loop and gathers events and the terminal.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from reactivex import Observable


@dataclass
class Reply:
    """What the server sends: ``pieces`` written one by one with ``delay`` seconds between them."""

    pieces: Sequence[bytes] = ()
    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"content-type": "text/event-stream"})
    delay: float = 0.0
    body: bytes | None = None  # a plain (non-streamed) body, for error replies
    hold_open: float = 0.0  # keep the connection open this long after the last piece
    endless: bytes | None = None  # after the pieces, write this forever until the client goes away
    abort: bool = False  # after the pieces, drop the connection without ending the body


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return msgspec.json.decode(self.body)


@dataclass
class Server:
    base_url: str
    requests: list[Received]
    disconnected: asyncio.Event
    bytes_written: int = 0
    written_all: asyncio.Event = field(default_factory=asyncio.Event)  # every piece of a reply was written


@dataclass
class Collected:
    events: list[Any]
    error: BaseException | None
    completed: bool


async def _serve(replies: Sequence[Reply], server: Server, request: web.Request) -> web.StreamResponse:
    server.requests.append(Received(request.path, dict(request.headers), await request.read()))
    # One reply per request in order; the last one answers every request after it.
    reply = replies[min(len(server.requests), len(replies)) - 1]
    if reply.body is not None:
        return web.Response(status=reply.status, body=reply.body, headers=reply.headers)
    response = web.StreamResponse(status=reply.status, headers=reply.headers)
    await response.prepare(request)
    try:
        for piece in reply.pieces:
            if reply.delay:
                await asyncio.sleep(reply.delay)
            await response.write(piece)
            server.bytes_written += len(piece)
        server.written_all.set()
        if reply.endless is not None:
            while True:
                await response.write(reply.endless)
                server.bytes_written += len(reply.endless)
                await asyncio.sleep(reply.delay or 0)
        if reply.abort:
            assert request.transport is not None
            request.transport.close()
            return response
        if reply.hold_open:
            await asyncio.sleep(reply.hold_open)
    except (ConnectionResetError, asyncio.CancelledError):
        server.disconnected.set()
        raise
    return response


@pytest.fixture
async def sse_server() -> Any:
    servers: list[TestServer] = []

    async def start(reply: Reply | Sequence[Reply]) -> Server:
        app = web.Application()
        state = Server("", [], asyncio.Event())
        replies = [reply] if isinstance(reply, Reply) else list(reply)

        async def handler(request: web.Request) -> web.StreamResponse:
            return await _serve(replies, state, request)

        app.router.add_post("/{tail:.*}", handler)
        test_server = TestServer(app, host="127.0.0.1")
        await test_server.start_server()
        servers.append(test_server)
        state.base_url = f"http://127.0.0.1:{test_server.port}/v1"
        return state

    yield start
    for test_server in servers:
        await test_server.close()


async def collect_events(observable: Observable[Any], *, timeout: float = 10.0) -> Collected:
    """Subscribe in the running loop; wait for the terminal (bounded by ``timeout``)."""
    events: list[Any] = []
    done: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()

    def on_error(error: Exception) -> None:
        if not done.done():
            done.set_result(error)

    def on_completed() -> None:
        if not done.done():
            done.set_result(None)

    observable.subscribe(events.append, on_error, on_completed)
    error = await asyncio.wait_for(done, timeout)
    return Collected(events, error, error is None)


def rxllm_tasks() -> list[asyncio.Task[Any]]:
    """The running loop's tasks that run rxllm's own code (a stream's request, a tool), the caller's aside."""
    current = asyncio.current_task()
    return [
        task
        for task in asyncio.all_tasks()
        if task is not current and "/rxllm/" in getattr(task.get_coro(), "cr_code", _NO_CODE).co_filename
    ]


_NO_CODE = compile("", "<none>", "exec")


async def rxllm_tasks_finish(timeout: float = 5.0) -> None:
    """Wait until rxllm's tasks have ended (a disposed stream's task closes its connection as it ends)."""
    running = rxllm_tasks()
    if running:
        _done, pending = await asyncio.wait(running, timeout=timeout)
        assert not pending, f"rxllm tasks still running after {timeout} s: {pending}"


class _Closable(Protocol):
    async def aclose(self) -> None: ...


_C = TypeVar("_C", bound=_Closable)


class Closing(Protocol):
    """The ``closing`` fixture: returns what it is given, and closes it when the test ends."""

    def __call__(self, provider: _C, /) -> _C: ...


@pytest.fixture
async def closing() -> AsyncIterator[Closing]:
    """``closing(provider)`` returns the provider and closes it (its own session) when the test ends."""
    made: list[_Closable] = []

    def keep(provider: _C) -> _C:
        made.append(provider)
        return provider

    yield keep
    for provider in made:
        await provider.aclose()


@pytest.fixture
def collect() -> Callable[[Observable[Any]], Awaitable[Collected]]:
    return collect_events
