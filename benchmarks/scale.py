"""Many concurrent streams on one event loop, in a process of its own: ``python -m benchmarks.scale``.

One run opens ``--streams`` Chat streams at once (``--case`` ``floor``, ``rxllm`` or
``openai``: ``chat.completions.create(stream=True)``) against the server's ``--mode``
(``burst`` or ``paced100``: one event per write, 100 ms apart) and waits for all of
them, checking each rebuilt text and tool arguments. It prints one JSON line: wall
time, CPU per chunk, chunks per second, and memory per open stream (the peak resident
set during the run, sampled every 10 ms, less the resident set just before it, divided by the streams).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
from typing import Any

from benchmarks.cases import CASES, Clients, check, expected_for
from benchmarks.harness import Stopwatch, rss_bytes
from benchmarks.server import raise_file_limit

_CASES = {"floor": "floor-chat", "rxllm": "rxllm-chat", "openai": "openai-create"}


async def run(origin: str, case: str, mode: str, streams: int, events: int) -> dict[str, Any]:
    spec = next(spec for spec in CASES if spec.name == _CASES[case])
    expected = expected_for(spec, events)
    clients = Clients(origin)
    try:
        # Warm up on a few streams: imports, first-call caches, the code paths.
        for outcome in await asyncio.gather(*(spec.run(clients, events, "burst") for _ in range(4))):
            check(spec.name, outcome, expected)
        gc.collect()
        before = rss_bytes()
        peak = before
        running = True

        async def sample() -> None:
            # Reading /proc/self/statm every 10 ms costs a few microseconds each time.
            nonlocal peak
            while running:
                peak = max(peak, rss_bytes())
                await asyncio.sleep(0.01)

        sampler = asyncio.create_task(sample())
        with Stopwatch() as watch:
            outcomes = await asyncio.gather(*(spec.run(clients, events, mode) for _ in range(streams)))
        running = False
        await sampler
        peak = max(peak, rss_bytes())
    finally:
        await clients.aclose()
    for outcome in outcomes:
        check(spec.name, outcome, expected)
    chunks = streams * events
    return {
        "case": case,
        "mode": mode,
        "streams": streams,
        "events_per_stream": events,
        "wall_s": watch.wall,
        "cpu_s": watch.cpu,
        "cpu_us_per_chunk": watch.cpu / chunks * 1e6,
        "chunks_per_s": chunks / watch.wall,
        "memory_per_stream_kib": max(peak - before, 0) / streams / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--origin", required=True)
    parser.add_argument("--case", choices=sorted(_CASES), required=True)
    parser.add_argument("--mode", default="burst")
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--events", type=int, default=50)
    args = parser.parse_args()
    raise_file_limit()
    print(json.dumps(asyncio.run(run(args.origin, args.case, args.mode, args.streams, args.events))))


if __name__ == "__main__":
    main()
