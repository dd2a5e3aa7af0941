"""What tracing costs: CPU per turn of Chat turns with ``rxllm.enable_tracing`` off and on, side by side.

Run by ``python -m benchmarks`` (section ``tracing``) against its loopback server. Each
repetition streams ``turns`` turns of a short stream (``short`` events) and of a long one
(``long`` events) in three modes, in rotated order:

* ``off``: tracing never switched on (a turn has no tracing layer at all);
* ``noop``: tracing on with OpenTelemetry's no-op providers (what the API does with no SDK
  configured): rxllm's own work, the side observer, its chunk clock and its calls;
* ``sdk``: tracing on into the SDK, a ``TracerProvider`` ending every span into an in-memory
  exporter and a ``MeterProvider`` aggregating every measurement (an application's SDK
  before it exports).

The added CPU of a turn is ``a + b * chunks``: the two sizes give the cost per turn ``a``
and per chunk ``b`` of each mode. ``sdk_record_us`` is one ``Histogram.record`` of the SDK
with a chat metric's attributes, measured alone: ``time_per_output_chunk`` makes one per chunk.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from benchmarks.cases import Clients, _rxllm, check
from benchmarks.harness import Stopwatch, rotated, summary
from benchmarks.streams import build

_pipeline: tuple[Any, Any, Any] | None = None


def _sdk() -> tuple[Any, Any, Any]:
    """One private SDK pipeline per process, as an application makes one."""
    global _pipeline
    if _pipeline is None:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        exporter = InMemorySpanExporter()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
        _pipeline = (tracer_provider, MeterProvider(metric_readers=[InMemoryMetricReader()]), exporter)
    return _pipeline


@contextmanager
def traced(mode: str = "sdk") -> Iterator[None]:
    """Tracing on, into the SDK pipeline (``sdk``) or OpenTelemetry's no-op providers (``noop``)."""
    import rxllm

    exporter = None
    if mode == "sdk":
        tracer_provider, meter_provider, exporter = _sdk()
    else:
        from opentelemetry.metrics import NoOpMeterProvider
        from opentelemetry.trace import NoOpTracerProvider

        tracer_provider, meter_provider = NoOpTracerProvider(), NoOpMeterProvider()
    rxllm.enable_tracing(tracer_provider, meter_provider)
    try:
        yield
    finally:
        rxllm.disable_tracing()
        if exporter is not None:
            exporter.clear()


MODES = ("off", "noop", "sdk")


async def measure(origin: str, *, reps: int, turns: int, short: int, long: int) -> dict[str, Any]:
    clients = Clients(origin)
    case = _rxllm("chat")
    cpu: dict[str, list[float]] = {f"{mode} {size}": [] for mode in MODES for size in (short, long)}
    try:
        for events in (short, long):  # warm-up: connections, imports, first-call caches
            for mode in MODES:
                await _turns(clients, case, events, 1, mode)
        for rep in range(reps):
            for name in rotated(list(cpu), rep):
                mode, size = name.split()
                events = int(size)
                count = turns if events == short else max(1, turns * short // long)
                cpu[name].append(await _turns(clients, case, events, count, mode) / count * 1e6)
    finally:
        await clients.aclose()
    added: dict[str, dict[str, dict[str, float]]] = {}
    for mode in MODES[1:]:
        extra = {
            size: [on - off for on, off in zip(cpu[f"{mode} {size}"], cpu[f"off {size}"], strict=True)]
            for size in (short, long)
        }
        per_chunk = [(b - a) / (long - short) for a, b in zip(extra[short], extra[long], strict=True)]
        per_turn = [a - short * b for a, b in zip(extra[short], per_chunk, strict=True)]
        added[mode] = {"us_per_turn": summary(per_turn), "us_per_chunk": summary(per_chunk)}
    return {
        "reps": reps,
        "turns": turns,
        "sizes": [short, long],
        "cpu_us_per_turn": {name: summary(values) for name, values in cpu.items()},
        "added": added,
        "sdk_record_us": _sdk_record_us(),
    }


async def _turns(clients: Clients, case: Any, events: int, count: int, mode: str) -> float:
    """CPU seconds of ``count`` turns of ``events`` events in tracing ``mode``."""
    expected = build("chat", events, "tool")
    gc.collect()
    if mode == "off":
        with Stopwatch() as watch:
            for _ in range(count):
                check("rxllm-chat", await case(clients, events, "burst"), expected)
    else:
        with traced(mode):  # switching tracing on and off is not a turn's work: outside the stopwatch
            with Stopwatch() as watch:
                for _ in range(count):
                    check(f"rxllm-chat {mode}", await case(clients, events, "burst"), expected)
    return watch.cpu


def _sdk_record_us(count: int = 20_000) -> dict[str, float]:
    """CPU of one SDK ``Histogram.record`` with a chat metric's attributes (median of 5 runs)."""
    _, meter_provider, _ = _sdk()
    histogram = meter_provider.get_meter("benchmarks").create_histogram("benchmarks.record", unit="s")
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "bench-model",
        "server.address": "127.0.0.1",
        "server.port": 8000,
        "gen_ai.response.model": "bench-model",
    }
    runs = []
    for _ in range(5):
        with Stopwatch() as watch:
            for _ in range(count):
                histogram.record(0.001, attributes)
        runs.append(watch.cpu / count * 1e6)
    return summary(runs)
