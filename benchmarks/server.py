"""The benchmark's loopback server, run as a process of its own: ``python -m benchmarks.server``.

It prints ``PORT <n>`` on its first line once it listens on 127.0.0.1, then serves:

``POST /{api}/{events}/{mode}/...``
    the pre-encoded stream of ``api`` (``chat``, ``responses``, ``anthropic``) with
    ``events`` server-sent events. The rest of the path is whatever the client appends
    (``/v1/chat/completions``, ``/v1/responses``, ``/v1/messages``). A request carrying a
    tool result gets the text turn, any other the tool turn. ``mode``:

    * ``burst``: the whole body written at once, as fast as the socket takes it;
    * ``paced<ms>``: one event per write, ``<ms>`` milliseconds apart;
    * ``flood``: a Chat stream that never ends, written as fast as the client reads
      (for the pause benchmark); the bytes each connection took are counted;
    * ``stamped``: a Chat text stream whose first event comes 20 ms after the headers
      and says when it was written (``time.perf_counter_ns()``, the machine's monotonic
      clock, the same in every process), for the latency benchmark.

``GET /stats``
    ``{"flood": [bytes written on each flood connection so far]}``.
"""

from __future__ import annotations

import asyncio
import resource
import sys
import time

import msgspec
from aiohttp import web

from benchmarks.streams import APIS, Api, build, turn_for

_FLOOD_BLOCK_EVENTS = 200


def raise_file_limit() -> None:
    """As many open sockets as the hard limit allows: 1,000 streams need more than the usual 1,024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


class BenchServer:
    def __init__(self) -> None:
        self.flood_written: list[int] = []
        flood = build("chat", _FLOOD_BLOCK_EVENTS, "text")
        self._flood_head = flood.pieces[0]
        self._flood_block = b"".join(flood.pieces[1:-3])  # text chunks only, no end

    async def stream(self, request: web.Request) -> web.StreamResponse:
        api = request.match_info["api"]
        if api not in APIS:
            raise web.HTTPNotFound(text=f"unknown api {api!r}")
        body = await request.read()
        mode = request.match_info["mode"]
        response = web.StreamResponse(
            headers={"content-type": "text/event-stream", "cache-control": "no-cache"}
        )
        await response.prepare(request)
        try:
            if mode == "flood":
                await self._flood(response)
                return response
            if mode == "stamped":
                await self._stamped(response)
                return response
            the_api: Api = api
            stream = build(the_api, int(request.match_info["events"]), turn_for(the_api, body))
            if mode == "burst":
                await response.write(stream.body)
            elif mode.startswith("paced"):
                delay = int(mode[5:]) / 1000
                for piece in stream.pieces:
                    await asyncio.sleep(delay)
                    await response.write(piece)
            else:
                raise web.HTTPNotFound(text=f"unknown mode {mode!r}")
            await response.write_eof()
        except (ConnectionError, asyncio.CancelledError):
            pass  # the client went away: a disposed or paused-then-closed stream
        return response

    async def _flood(self, response: web.StreamResponse) -> None:
        slot = len(self.flood_written)
        self.flood_written.append(0)
        await response.write(self._flood_head)
        block = self._flood_block
        while True:
            await response.write(block)  # waits while the transport's buffer is full
            self.flood_written[slot] += len(block)

    async def _stamped(self, response: web.StreamResponse) -> None:
        # The client is idle, waiting on its socket, when the first event is written.
        await asyncio.sleep(0.02)
        stamp = str(time.perf_counter_ns())
        delta = {"role": "assistant", "content": stamp}
        first = {"id": "c1", "object": "chat.completion.chunk", "model": "bench", "choices": [
            {"index": 0, "delta": delta, "finish_reason": None}]}  # fmt: skip
        await response.write(b"data: " + msgspec.json.encode(first) + b"\n\n")
        last = {"id": "c1", "object": "chat.completion.chunk", "model": "bench", "choices": [
            {"index": 0, "delta": {}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}  # fmt: skip
        await response.write(b"data: " + msgspec.json.encode(last) + b"\n\ndata: [DONE]\n\n")
        await response.write_eof()

    async def stats(self, request: web.Request) -> web.Response:
        return web.Response(
            body=msgspec.json.encode({"flood": self.flood_written}), content_type="application/json"
        )


async def main() -> None:
    raise_file_limit()
    server = BenchServer()
    app = web.Application()
    app.router.add_get("/stats", server.stats)
    app.router.add_post("/{api}/{events}/{mode}/{tail:.*}", server.stream)
    runner = web.AppRunner(app, handle_signals=True, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
    await site.start()
    port = runner.addresses[0][1]
    print(f"PORT {port}", flush=True)
    # Runs until the parent closes our stdin (or kills us).
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    await reader.read()
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
