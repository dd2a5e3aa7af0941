"""Paused streams, in a process of its own: ``python -m benchmarks.pause``.

``--streams`` rxllm Chat streams (100 by default) read from the server's ``flood``
endpoint, which writes as fast as the client takes. Each stream is paused on its first
event. Once the flood has backed up, the run measures, over ``--seconds`` (5):

* the CPU this process uses (``time.process_time``), as a share of one core;
* the bytes the server managed to hand to each connection: everything the client read
  plus what sits in the two kernels' socket buffers. While paused, that number must
  stop growing: the rest stays unwritten on the server's side.

It prints one JSON line, with the kernel's socket-buffer limits for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import aiohttp

from benchmarks.cases import Clients
from benchmarks.streams import MODEL, PROMPT
from rxllm import CompletionRequest, Message, PauseControl
from rxllm.providers.openai import OpenAIChat
from rxllm.transport._http import DEFAULT_READ_BUFSIZE


async def _flood(session: aiohttp.ClientSession, origin: str) -> list[int]:
    async with session.get(origin + "/stats") as response:
        written: list[int] = (await response.json())["flood"]
    return written


def _kernel_limits() -> dict[str, str]:
    limits = {}
    for name in ("tcp_rmem", "tcp_wmem"):
        try:
            with open(f"/proc/sys/net/ipv4/{name}") as value:
                limits[name] = value.read().strip()
        except OSError:
            limits[name] = "unknown"
    return limits


async def run(origin: str, streams: int, seconds: float) -> dict[str, Any]:
    clients = Clients(origin)
    provider = OpenAIChat(MODEL, base_url=origin + "/chat/1/flood/v1", api_key="", session=clients.session)
    request = CompletionRequest([Message.user(PROMPT)])
    loop = asyncio.get_running_loop()
    paused_all = loop.create_future()
    paused = 0
    subscriptions = []
    errors: list[Exception] = []
    try:
        already = len(await _flood(clients.session, origin))
        for _ in range(streams):
            control = PauseControl()

            def on_next(_event: object, control: PauseControl = control) -> None:
                nonlocal paused
                if not control.is_paused:
                    control.pause()
                    paused += 1
                    if paused == streams and not paused_all.done():
                        paused_all.set_result(None)

            subscriptions.append(provider.stream(request, pause=control).subscribe(on_next, errors.append))
        await asyncio.wait_for(paused_all, 60)
        # Let the flood fill every buffer on the way, then watch.
        settled: list[int] = []
        for _ in range(100):
            await asyncio.sleep(0.2)
            now = (await _flood(clients.session, origin))[already:]
            if now == settled:
                break
            settled = now
        start = (await _flood(clients.session, origin))[already:]
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        end = (await _flood(clients.session, origin))[already:]
    finally:
        for subscription in subscriptions:
            subscription.dispose()
        await asyncio.sleep(0.1)
        await clients.aclose()
    if errors:
        raise errors[0]
    grew = [b - a for a, b in zip(start, end, strict=True)]
    return {
        "streams": streams,
        "seconds": wall,
        "cpu_s": cpu,
        "cpu_percent_of_one_core": cpu / wall * 100,
        "bytes_per_stream_when_paused": {"median": sorted(end)[len(end) // 2], "max": max(end)},
        "bytes_grown_while_paused": {"total": sum(grew), "max": max(grew)},
        "read_bufsize": DEFAULT_READ_BUFSIZE,
        "kernel": _kernel_limits(),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--origin", required=True)
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.origin, args.streams, args.seconds))))


if __name__ == "__main__":
    main()
