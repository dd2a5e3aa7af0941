"""A loopback server flooding a Chat Completions stream; it says, server-side, when the client stops reading.

``stalled`` is set when one write has waited ``stall_after`` seconds for the
socket to take it: TCP flow control is holding the server back because the
client no longer reads. ``finished`` is set when everything was written: the
client read it all. A test waits for the first of the two.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.test_utils import TestServer
from openai_sse import DONE, chunk, usage_chunk


@dataclass
class Flood:
    base_url: str = ""
    written: int = 0
    events_written: int = 0
    stalled: asyncio.Event = field(default_factory=asyncio.Event)
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    left: asyncio.Event = field(default_factory=asyncio.Event)

    async def outcome(self, timeout: float = 60) -> str:
        """``"stalled"`` or ``"finished"``, whichever happens first."""
        waits = {
            asyncio.ensure_future(self.stalled.wait()): "stalled",
            asyncio.ensure_future(self.finished.wait()): "finished",
        }
        done, pending = await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        assert done, "the server neither stalled nor finished"
        return waits[done.pop()]


def text_event(number: int, size: int) -> bytes:
    return chunk({"content": f"{number:08d}" + "x" * (size - 8)})


@asynccontextmanager
async def flood_server(
    deltas: int,
    *,
    size: int = 2048,
    stall_after: float = 0.5,
    event: Callable[[int, int], bytes] = text_event,
) -> AsyncIterator[Flood]:
    """Serve one turn of ``deltas`` text deltas of ``size`` characters each, written as fast as taken."""
    state = Flood()

    async def handler(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        pieces = [chunk({"role": "assistant", "content": ""})]
        try:
            for number in range(deltas):
                pieces.append(event(number, size))
                if len(pieces) == 16 or number == deltas - 1:
                    await write(response, b"".join(pieces), len(pieces))
                    pieces = []
            await write(response, chunk({}, "stop") + usage_chunk(10, deltas) + DONE, 0)
            state.finished.set()
        except (ConnectionResetError, asyncio.CancelledError):
            state.left.set()
            raise
        return response

    async def write(response: web.StreamResponse, data: bytes, events: int) -> None:
        task = asyncio.ensure_future(response.write(data))
        done, _ = await asyncio.wait({task}, timeout=stall_after)
        if not done:
            state.stalled.set()
        await task
        state.written += len(data)
        state.events_written += events

    app = web.Application()
    app.router.add_post("/{tail:.*}", handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    state.base_url = f"http://127.0.0.1:{server.port}/v1"
    try:
        yield state
    finally:
        await server.close()
