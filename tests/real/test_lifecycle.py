"""Dispose, pause and the idle timeout against real servers, each proved on the server's side.

* Disposing mid-stream: llama-server's slot goes idle before the turn's token budget
  was spent and its log says it cancelled the task; llama-cpp-python's log says the
  client left.
* Pausing: the bytes rxllm has read (counted on a session passed with ``session=``)
  stay put while llama-server's slot keeps generating; after ``resume()`` the turn
  completes with every token the server generated.
* The idle timeout: a stream paused for many idle periods, long enough for the server
  to finish generating and be held back by TCP (its socket has bytes it cannot send),
  is not timed out, and completes when resumed.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import Closing

from real.endpoints import ENDPOINTS, Endpoint
from real.servers import RunningServer
from real.slots import decoded, slot, wait_for_slot, wait_until_idle
from rxllm.control import PauseControl
from rxllm.events import Final, TextDelta
from rxllm.messages import Message
from rxllm.providers.openai import OpenAIChat
from rxllm.request import CompletionRequest
from rxllm.timeouts import Timeouts

TIMEOUT = 60.0
LONG = 3000
"""Tokens asked for by a stream that is disposed: far more than it gets to generate."""


@dataclass
class Meter:
    """Body bytes the client has read from responses (what ``content.readany()`` returned)."""

    read: int = 0


class _CountedContent:
    """A response's ``content`` that counts what ``readany()`` returns; the rest is the reader's own."""

    def __init__(self, content: aiohttp.StreamReader, meter: Meter) -> None:
        self._content = content
        self._meter = meter

    async def readany(self) -> bytes:
        piece = await self._content.readany()
        self._meter.read += len(piece)
        return piece

    def __getattr__(self, name: str) -> Any:
        return getattr(self._content, name)


@pytest.fixture
async def metered() -> AsyncIterator[tuple[aiohttp.ClientSession, Meter]]:
    """A real aiohttp session whose responses count the body bytes their reader takes."""
    meter = Meter()

    class CountingResponse(aiohttp.ClientResponse):
        async def start(self, connection: Any) -> aiohttp.ClientResponse:
            started = await super().start(connection)
            self.content = _CountedContent(self.content, meter)  # type: ignore[assignment]
            return started

    session = aiohttp.ClientSession(response_class=CountingResponse)
    yield session, meter
    await session.close()


class Subscribed:
    """A subscription whose events and terminal are awaitable."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.first_text = asyncio.Event()
        self.done: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
        self.on_first_text: Callable[[], None] | None = None

    async def started(self) -> None:
        """Wait for the first text delta; a stream that ended before it fails the test with its error."""
        first: asyncio.Future[Any] = asyncio.ensure_future(self.first_text.wait())
        waited: list[asyncio.Future[Any]] = [first, self.done]
        await asyncio.wait(waited, timeout=TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
        first.cancel()
        assert self.first_text.is_set(), f"no text: {self.done.result() if self.done.done() else 'timed out'}"

    def on_next(self, event: Any) -> None:
        self.events.append(event)
        if isinstance(event, TextDelta) and not self.first_text.is_set():
            if self.on_first_text is not None:
                self.on_first_text()
            self.first_text.set()

    def on_error(self, error: Exception) -> None:
        if not self.done.done():
            self.done.set_result(error)

    def on_completed(self) -> None:
        if not self.done.done():
            self.done.set_result(None)


def cancelled_tasks(server: RunningServer) -> list[int]:
    return [int(task) for task in re.findall(r"stop: cancel task, id_task = (\d+)", server.log_text())]


CLIENT_LEFT = "Disconnected from client (via refresh/close)"
"""What llama-cpp-python's server prints when a streaming client goes away."""


@pytest.mark.parametrize("endpoint", [e for e in ENDPOINTS if e.server == "llama_server"], ids=lambda e: e.id)
async def test_disposing_mid_stream_frees_llama_servers_slot(
    endpoint: Endpoint, llama_server: RunningServer, closing: Closing
) -> None:
    await wait_until_idle(llama_server)
    provider = closing(endpoint.provider(llama_server.origin))
    watch = Subscribed()
    subscription = provider.stream(endpoint.request("Hello", max_tokens=LONG)).subscribe(
        watch.on_next, watch.on_error, watch.on_completed
    )
    await watch.started()
    busy = await slot(llama_server)
    assert busy["is_processing"]
    subscription.dispose()
    idle = await wait_until_idle(llama_server, timeout=10)
    assert not idle["is_processing"]
    # The server stopped the task because the client went away, long before its budget.
    assert busy["id_task"] in cancelled_tasks(llama_server)
    released = re.findall(
        rf"task {busy['id_task']} \| stop processing: n_tokens = (\d+)", llama_server.log_text()
    )
    assert released and int(released[-1]) < busy["n_prompt_tokens"] + LONG
    assert not watch.done.done(), "a disposed subscription gets no terminal"


async def test_disposing_mid_stream_tells_llama_cpp_python_the_client_left(
    llama_cpp_python: RunningServer, closing: Closing
) -> None:
    (endpoint,) = [e for e in ENDPOINTS if e.server == "llama_cpp_python"]
    left_before = llama_cpp_python.log_text().count(CLIENT_LEFT)
    provider = closing(endpoint.provider(llama_cpp_python.origin))
    watch = Subscribed()
    subscription = provider.stream(endpoint.request("Hello", max_tokens=LONG)).subscribe(
        watch.on_next, watch.on_error, watch.on_completed
    )
    await watch.started()
    subscription.dispose()
    assert await llama_cpp_python.logged(CLIENT_LEFT, times=left_before + 1) == left_before + 1
    assert not watch.done.done()


# Top-20 logprobs make each Chat chunk about 2 KB: a few hundred tokens are more than the
# client's and the kernel's buffers hold, so a paused client holds the server back.
HEAVY = {"logprobs": True, "top_logprobs": 20, "seed": 15}
PAUSED_TOKENS = 300


def heavy_request() -> CompletionRequest:
    return CompletionRequest([Message.user("Hello")], temperature=0.0, max_tokens=PAUSED_TOKENS, params=HEAVY)


async def test_pause_stops_reading_while_llama_server_keeps_generating(
    llama_server: RunningServer, metered: tuple[aiohttp.ClientSession, Meter], closing: Closing
) -> None:
    session, meter = metered
    await wait_until_idle(llama_server)
    provider = closing(OpenAIChat("tiny-random", base_url=llama_server.v1, session=session))
    control = PauseControl()
    watch = Subscribed()
    at_pause: list[int] = []

    def pause() -> None:
        control.pause()
        at_pause.append(meter.read)

    watch.on_first_text = pause
    provider.stream(heavy_request(), pause=control).subscribe(
        watch.on_next, watch.on_error, watch.on_completed
    )
    await watch.started()
    generated = decoded(await slot(llama_server))
    # The server goes on: a hundred tokens more, or all of them.
    await wait_for_slot(
        llama_server,
        lambda state: not state["is_processing"] or decoded(state) >= generated + 100,
        what="a hundred tokens more",
    )
    assert meter.read == at_pause[0], "a paused stream read from the socket"
    assert [type(event) for event in watch.events] == [TextDelta]
    control.resume()
    assert await asyncio.wait_for(watch.done, TIMEOUT) is None
    final = watch.events[-1]
    assert isinstance(final, Final) and final.usage is not None
    assert final.usage.output_tokens == PAUSED_TOKENS
    assert meter.read > at_pause[0]


def unsent_by(server: RunningServer) -> int:
    """Bytes llama-server's sockets hold that the peer has not taken (Linux: /proc/net/tcp tx_queue)."""
    port = int(server.origin.rsplit(":", 1)[1])
    unsent = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port:
            unsent += int(fields[4].split(":")[0], 16)
    return unsent


async def test_an_idle_timeout_is_not_tripped_by_a_paused_consumer(
    llama_server: RunningServer, closing: Closing
) -> None:
    idle = 0.5
    await wait_until_idle(llama_server)
    provider = closing(OpenAIChat("tiny-random", base_url=llama_server.v1, timeouts=Timeouts(idle=idle)))
    control = PauseControl()
    watch = Subscribed()
    watch.on_first_text = control.pause
    provider.stream(heavy_request(), pause=control).subscribe(
        watch.on_next, watch.on_error, watch.on_completed
    )
    await watch.started()
    loop = asyncio.get_running_loop()
    paused_at = loop.time()
    # The server finishes generating while the consumer holds the stream, and what it
    # wrote waits in its socket: throttled by TCP, no event reaches the client.
    await wait_until_idle(llama_server)
    assert unsent_by(llama_server) > 0
    assert loop.time() - paused_at > 3 * idle
    assert not watch.done.done()
    control.resume()
    assert await asyncio.wait_for(watch.done, TIMEOUT) is None
    final = watch.events[-1]
    assert isinstance(final, Final) and final.usage is not None
    assert (final.finish_reason, final.usage.output_tokens) == ("length", PAUSED_TOKENS)
