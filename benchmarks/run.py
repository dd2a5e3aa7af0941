"""The benchmark: ``python -m benchmarks`` (``--smoke`` for the seconds-long exactness check).

Sections, all in one run against one loopback server process:

1. **streams**: every case of ``benchmarks.cases`` on the same N-event streams, interleaved
   (the case order rotated each repetition), CPU per chunk and chunks per second;
2. **scale**: 1,000 concurrent streams on one loop, bursty and paced (``benchmarks.scale``,
   one process per run so memory readings stay apart); **huge**: 10,000 paced ones;
   **latency**: from the first byte on the socket to the first event (``benchmarks.latency``);
3. **pause**: 100 paused streams (``benchmarks.pause``);
4. **scaling**: ``collect_response``, the agent, tool-argument assembly and ``parse_output`` at two sizes
   (``benchmarks.scaling``);
5. **tracing**: CPU per turn with ``rxllm.enable_tracing`` off and on, at two stream sizes
   (``benchmarks.tracing``): what tracing adds per turn and per chunk;
6. **import**: the time ``import rxllm`` takes in a fresh interpreter.

It prints the tables, writes ``results.json`` and ``table.md``, and draws ``chart.png``
into ``--out`` (default ``benchmarks/results``). Timings are reported, never asserted;
the rebuilt text and tool arguments are checked in every run and any mismatch fails it.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import json
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.cases import CASES, CaseSpec, Clients, check, events_for, expected_for
from benchmarks.harness import ROOT, Stopwatch, rotated, server_process, summary

# (numerator, denominator, target ratio or None): CPU per chunk, taken within each repetition.
RATIOS: tuple[tuple[str, str, float | None], ...] = (
    ("rxllm-chat", "floor-chat", 1.5),
    ("rxllm-chat", "openai-create", 0.1),
    ("rxllm-chat", "openai-stream", None),
    ("rxllm-responses", "floor-responses", 1.7),
    ("rxllm-responses", "openai-responses", 0.12),
    ("rxllm-anthropic", "floor-anthropic", 1.7),
    ("rxllm-anthropic", "anthropic-stream", 0.12),
    ("agent-rxllm-chat", "agent-floor-chat", 2.0),
    ("rxllm-chat-traced", "rxllm-chat", None),
    ("openai-create", "floor-chat", None),
    ("openai-stream", "floor-chat", None),
    ("openai-responses", "floor-responses", None),
    ("anthropic-stream", "floor-anthropic", None),
)


def available(spec: CaseSpec) -> bool:
    return spec.needs is None or importlib.util.find_spec(spec.needs) is not None


async def _streams(origin: str, events: int, reps: int, names: list[str]) -> dict[str, Any]:
    specs = {spec.name: spec for spec in CASES if spec.name in names}
    clients = Clients(origin)
    cpu: dict[str, list[float]] = {name: [] for name in specs}
    rate: dict[str, list[float]] = {name: [] for name in specs}
    try:
        # One warm-up run of each case: imports, connections, first-call caches.
        for name, spec in specs.items():
            check(name, await spec.run(clients, events, "burst"), expected_for(spec, events))
        for rep in range(reps):
            for name in rotated(list(specs), rep):
                spec = specs[name]
                gc.collect()
                with Stopwatch() as watch:
                    outcome = await spec.run(clients, events, "burst")
                check(name, outcome, expected_for(spec, events))
                chunks = events_for(spec, events)
                cpu[name].append(watch.cpu / chunks * 1e6)
                rate[name].append(chunks / watch.wall)
    finally:
        await clients.aclose()
    cases = {
        name: {
            "kind": specs[name].kind,
            "api": specs[name].api,
            "chunks": events_for(specs[name], events),
            "cpu_us_per_chunk": summary(cpu[name]),
            "chunks_per_s": summary(rate[name]),
            "cpu_us_per_chunk_runs": cpu[name],
        }
        for name in specs
    }
    ratios = []
    for top, bottom, target in RATIOS:
        if top in cpu and bottom in cpu:
            values = [a / b for a, b in zip(cpu[top], cpu[bottom], strict=True)]
            middle = summary(values)
            entry: dict[str, Any] = {"case": top, "versus": bottom, **middle, "target": target}
            entry["holds"] = None if target is None else middle["median"] <= target
            ratios.append(entry)
    return {"events": events, "reps": reps, "cases": cases, "ratios": ratios}


def _child(module: str, args: list[str]) -> dict[str, Any]:
    """Run ``python -m module args`` and read the JSON it prints last."""
    done = subprocess.run(
        [sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        raise RuntimeError(f"{module} {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _scale(origin: str, streams: int, modes: dict[str, int], reps: int, sdk: bool) -> dict[str, Any]:
    cases = ["floor", "rxllm"] + (["openai"] if sdk else [])
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {mode: {case: [] for case in cases} for mode in modes}
    for rep in range(reps):
        for mode, events in modes.items():
            for case in rotated(cases, rep):
                args = ["--origin", origin, "--case", case, "--mode", mode]
                args += ["--streams", str(streams), "--events", str(events)]
                runs[mode][case].append(_child("benchmarks.scale", args))
    out: dict[str, Any] = {"streams": streams, "reps": reps, "modes": {}}
    for mode, by_case in runs.items():
        table: dict[str, Any] = {}
        for case, results in by_case.items():
            table[case] = {
                key: summary([result[key] for result in results])
                for key in ("wall_s", "cpu_us_per_chunk", "chunks_per_s", "memory_per_stream_kib")
            }
            table[case]["events_per_stream"] = modes[mode]
        ratios = {}
        for case in cases:
            if case == "floor":
                continue
            for key in ("wall_s", "cpu_us_per_chunk", "memory_per_stream_kib"):
                values = [
                    a[key] / b[key] if b[key] > 0 else float("nan")
                    for a, b in zip(by_case[case], by_case["floor"], strict=True)
                ]
                ratios[f"{case}/floor {key}"] = summary(values)
        out["modes"][mode] = {"cases": table, "ratios": ratios}
    return out


def _import_time(reps: int) -> dict[str, float]:
    code = "import time; t = time.perf_counter(); import rxllm; print(time.perf_counter() - t)"
    times = []
    for _ in range(reps):
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
        )
        times.append(float(done.stdout.strip()))
    return summary(times)


def _machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import os

    versions: dict[str, str | None] = {}
    for name in ("aiohttp", "msgspec", "reactivex", "openai", "anthropic"):
        try:
            from importlib.metadata import version

            versions[name] = version(name)
        except Exception:  # noqa: BLE001 - not installed
            versions[name] = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="seconds: small sizes, exactness only")
    parser.add_argument("--events", type=int, default=20_000, help="server-sent events per stream")
    parser.add_argument("--reps", type=int, default=7, help="repetitions (medians over them)")
    parser.add_argument("--scale-reps", type=int, default=5)
    parser.add_argument("--streams", type=int, default=1000, help="concurrent streams in the scale runs")
    parser.add_argument("--huge-streams", type=int, default=10_000, help="concurrent paced streams, huge run")
    parser.add_argument("--huge-reps", type=int, default=2)
    parser.add_argument(
        "--only",
        default="streams,scale,huge,latency,pause,tracing,scaling,import",
        help="sections to run",
    )
    parser.add_argument("--cases", default="", help="comma-separated case names (default: all available)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--no-chart", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.smoke:
        args.events, args.reps, args.scale_reps, args.streams = 200, 1, 1, 20
        args.huge_streams, args.huge_reps = 40, 1
    sections = set(args.only.split(","))
    names = [spec.name for spec in CASES if available(spec)]
    if args.cases:
        names = [name for name in names if name in args.cases.split(",")]
    skipped = [spec.name for spec in CASES if not available(spec)]
    sdk = importlib.util.find_spec("openai") is not None
    results: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": _machine(),
        "smoke": args.smoke,
        "skipped_cases": skipped,
    }
    if skipped:
        print(f"skipped (SDK not installed; pip install -e '.[bench]'): {', '.join(skipped)}", flush=True)
    started = time.perf_counter()
    with server_process() as origin:
        if "streams" in sections:
            print(
                f"streams: {len(names)} cases x {args.reps} repetitions, {args.events} events each",
                flush=True,
            )
            results["streams"] = asyncio.run(_streams(origin, args.events, args.reps, names))
        if "scale" in sections:
            # Smoke: the same code paths, paced 10 ms apart rather than 100.
            modes = {"burst": 40, "paced10": 32} if args.smoke else {"burst": 50, "paced100": 32}
            print(f"scale: {args.streams} concurrent streams x {args.scale_reps} repetitions", flush=True)
            results["scale"] = _scale(origin, args.streams, modes, args.scale_reps, sdk)
        if "huge" in sections:
            mode = {"paced10": 32} if args.smoke else {"paced100": 50}
            print(f"huge: {args.huge_streams:,} concurrent paced streams x {args.huge_reps}", flush=True)
            results["huge"] = _scale(origin, args.huge_streams, mode, args.huge_reps, False)
        if "latency" in sections:
            print("latency: first byte on the socket to first event", flush=True)
            streams = "20" if args.smoke else "300"
            results["latency"] = _child("benchmarks.latency", ["--origin", origin, "--streams", streams])
        if "pause" in sections:
            print("pause: 100 paused streams", flush=True)
            pause_args = ["--origin", origin] + (
                ["--streams", "10", "--seconds", "0.5"] if args.smoke else []
            )
            results["pause"] = _child("benchmarks.pause", pause_args)
        if "tracing" in sections and importlib.util.find_spec("opentelemetry.sdk") is not None:
            from benchmarks.tracing import measure

            print("tracing: Chat turns with tracing off and on", flush=True)
            sizes = {"reps": 1, "turns": 5, "short": 32, "long": 64} if args.smoke else {
                "reps": args.reps, "turns": 200, "short": 32, "long": 2000}  # fmt: skip
            results["tracing"] = asyncio.run(measure(origin, **sizes))
    if "scaling" in sections:
        print("scaling: collect_response, agent, tool arguments, parse_output", flush=True)
        results["scaling"] = _child("benchmarks.scaling", ["--smoke"] if args.smoke else [])
    if "import" in sections:
        results["import_s"] = _import_time(1 if args.smoke else 5)
    results["elapsed_s"] = time.perf_counter() - started

    from benchmarks.report import chart, table, targets

    results["targets"] = targets(results)
    text = table(results)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "table.md").write_text(text + "\n")
    if not args.no_chart and not args.smoke and importlib.util.find_spec("matplotlib") is not None:
        chart(results, args.out / "chart.png")
        print(f"chart: {args.out / 'chart.png'}")
    return 0
