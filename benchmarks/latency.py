"""From the first byte on the socket to the first event delivered: ``python -m benchmarks.latency``.

The server (``stamped`` mode) writes a Chat stream's first event 20 ms after the
headers, when the client is idle on its socket, with the time it was written in the
text (``time.perf_counter_ns()``: CLOCK_MONOTONIC, the same clock in every process).
The client takes the time when the text reaches its callback: for the floor, its
handler (aiohttp, a blank-line split, msgspec); for rxllm, the subscriber's ``on_next``
for the ``TextDelta``. Both pay the same kernel, event loop wake-up and aiohttp parsing,
so the difference of the medians is what rxllm adds between the socket and the event.
Streams run one after another, alternating floor and rxllm; prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import aiohttp
import msgspec

from benchmarks.cases import _chat_decoder
from benchmarks.harness import median, server_process, summary
from benchmarks.streams import MODEL
from rxllm import CompletionRequest, Message, TextDelta
from rxllm.providers.openai import OpenAIChat

_REQUEST = CompletionRequest([Message.user("Hi")])
_BODY = msgspec.json.encode({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "stream": True})


async def _floor(session: aiohttp.ClientSession, url: str) -> float:
    latency: float | None = None
    async with session.post(url, data=_BODY, headers={"content-type": "application/json"}) as response:
        tail = b""
        async for piece in response.content.iter_any():
            if tail:
                piece = tail + piece
            *events, tail = piece.split(b"\n\n")
            for event in events:
                data = event[event.find(b"data: ") + 6 :]
                if data == b"[DONE]":
                    continue
                chunk = _chat_decoder.decode(data)
                for choice in chunk.choices:
                    if latency is None and choice.delta is not None and choice.delta.content:
                        latency = (time.perf_counter_ns() - int(choice.delta.content)) / 1000
    assert latency is not None
    return latency


async def _rxllm(model: OpenAIChat) -> float:
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    latency: list[float] = []

    def on_next(event: object) -> None:
        if not latency and type(event) is TextDelta:
            latency.append((time.perf_counter_ns() - int(event.text)) / 1000)

    def on_error(error: Exception) -> None:
        done.set_exception(error)

    model.stream(_REQUEST).subscribe(on_next, on_error, lambda: done.set_result(None))
    await done
    return latency[0]


async def run(origin: str, streams: int) -> dict[str, Any]:
    base = f"{origin}/chat/1/stamped"
    async with aiohttp.ClientSession() as session:
        model = OpenAIChat(MODEL, base_url=base + "/v1", api_key="", session=session)
        floor: list[float] = []
        ours: list[float] = []
        for _ in range(5):  # warm up both paths
            await _floor(session, base + "/v1/chat/completions")
            await _rxllm(model)
        for _ in range(streams):
            floor.append(await _floor(session, base + "/v1/chat/completions"))
            ours.append(await _rxllm(model))
    return {
        "streams": streams,
        "floor_us": summary(floor),
        "rxllm_us": summary(ours),
        "added_us": median(ours) - median(floor),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--origin", help="a running benchmarks.server (default: start one)")
    parser.add_argument("--streams", type=int, default=200)
    args = parser.parse_args()
    if args.origin:
        print(json.dumps(asyncio.run(run(args.origin, args.streams))))
        return
    with server_process() as origin:
        print(json.dumps(asyncio.run(run(origin, args.streams))))


if __name__ == "__main__":
    main()
