"""Memory an open stream holds, exactly: ``python -m benchmarks.held --events 25``.

``--streams`` rxllm Chat streams (90: under aiohttp's 100-connection pool) read
``--events`` text deltas each from an in-process server that then holds the stream
open. With every stream open and every delta delivered, ``tracemalloc`` compares the
heap with the one before the streams started and prints one JSON line: the bytes held
per open stream, and the biggest holders by file. Unlike the scale section's resident
set, this counts Python allocations only, so a few hundred bytes of difference between
two versions (run it in each checkout) show, as the accounts a turn keeps for its
partial response do.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import tracemalloc
from typing import Any

import msgspec
from aiohttp import web

from rxllm import CompletionRequest, Message
from rxllm.providers.openai import OpenAIChat


def _chunk(text: str) -> bytes:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
    }
    return b"data: " + msgspec.json.encode(body) + b"\n\n"


async def run(streams: int, events: int) -> dict[str, Any]:
    release = asyncio.Event()
    served = 0

    async def handler(request: web.Request) -> web.StreamResponse:
        nonlocal served
        await request.read()
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        for number in range(events):
            await response.write(_chunk(f"wörd{number} "))
        served += 1
        await release.wait()
        await response.write(_chunk("") + b"data: [DONE]\n\n")
        return response

    app = web.Application()
    app.router.add_post("/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    model = OpenAIChat("m", base_url=f"http://127.0.0.1:{port}/v1")
    request = CompletionRequest([Message.user("hi")])
    delivered = [0] * streams
    ended: list[object] = []
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    subscriptions = []
    for index in range(streams):

        def count(_event: object, index: int = index) -> None:
            delivered[index] += 1

        subscriptions.append(model.stream(request).subscribe(count, ended.append, lambda: ended.append(None)))
    while served < streams or sum(delivered) < streams * events:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    gc.collect()
    held = tracemalloc.take_snapshot().compare_to(before, "filename")
    tracemalloc.stop()
    release.set()
    while len(ended) < streams:
        await asyncio.sleep(0.01)
    await model.aclose()
    await runner.cleanup()
    return {
        "streams": streams,
        "events": events,
        "held_kib_per_stream": sum(stat.size_diff for stat in held) / streams / 1024,
        "by_file": {stat.traceback[0].filename: stat.size_diff // streams for stat in held[:8]},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--streams", type=int, default=90)
    parser.add_argument("--events", type=int, default=25)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.streams, args.events))))


if __name__ == "__main__":
    main()
