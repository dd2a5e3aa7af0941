"""OpenTelemetry GenAI spans and metrics, read back from the SDK's in-memory exporter and metric reader.

Every test talks to a loopback ``ScriptedServer`` through a real provider of
each of the three dialects, with a private TracerProvider and MeterProvider
given to ``enable_tracing`` and tracing switched off again after it.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
import reactivex
from conftest import collect_events
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from reactivex import operators as ops
from reactivex.scheduler.eventloop import AsyncIOScheduler

import rxllm
from rxllm import tracing
from rxllm.errors import ProviderError, StreamTruncatedError
from rxllm.events import AssistantEvent, Final, Retrying, StreamReset, TextDelta, ToolCall
from rxllm.messages import Message
from rxllm.providers._base import Provider
from rxllm.providers.anthropic import AnthropicMessages
from rxllm.providers.openai import OpenAIChat, OpenAIResponses
from rxllm.providers.scripted import DialectName
from rxllm.request import CompletionRequest
from rxllm.retry import Backoff
from rxllm.testing import Call, Reply, ScriptedServer, Turn, sse_bytes

FAST = Backoff(initial=0.01, maximum=0.01)
REQUEST = CompletionRequest([Message.user("Hi")], temperature=0.2, max_tokens=64, params={"top_p": 0.9})
DURATION_BOUNDS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TOKEN_BOUNDS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
INSTRUMENTS = {
    "gen_ai.client.operation.duration": ("s", DURATION_BOUNDS),
    "gen_ai.client.token.usage": ("{token}", TOKEN_BOUNDS),
    "gen_ai.client.operation.time_to_first_chunk": ("s", DURATION_BOUNDS),
    "gen_ai.client.operation.time_per_output_chunk": ("s", DURATION_BOUNDS),
}


@dataclass(frozen=True)
class Dialect:
    name: DialectName  # ScriptedServer's
    provider: str  # gen_ai.provider.name
    api_type: str | None  # openai.api.type
    response_id: str
    stop: str  # the finish reason of a turn without calls
    tool_stop: str  # ... and of a turn with calls


DIALECTS = [
    Dialect("openai", "openai", "chat_completions", "chatcmpl-scripted", "stop", "tool_calls"),
    Dialect("responses", "openai", "responses", "resp_scripted", "completed", "completed"),
    Dialect("anthropic", "anthropic", None, "msg_scripted", "end_turn", "tool_use"),
]
by_dialect = pytest.mark.parametrize("dialect", DIALECTS, ids=[d.name for d in DIALECTS])


@dataclass
class Otel:
    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader
    tracer_provider: TracerProvider
    meter_provider: MeterProvider

    def spans(self) -> list[ReadableSpan]:
        return sorted(self.exporter.get_finished_spans(), key=lambda span: span.start_time or 0)

    def points(self) -> dict[str, list[tuple[dict[str, Any], int, float]]]:
        """Each histogram's data points as ``(attributes, count, sum)``; units and bounds checked."""
        found: dict[str, list[tuple[dict[str, Any], int, float]]] = {}
        data = self.reader.get_metrics_data()
        if data is None:
            return found
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                assert scope.scope.name == "rxllm"
                assert scope.scope.schema_url == "https://opentelemetry.io/schemas/1.41.0"
                for metric in scope.metrics:
                    unit, bounds = INSTRUMENTS[metric.name]
                    assert metric.unit == unit, metric.name
                    for point in metric.data.data_points:
                        assert isinstance(point, HistogramDataPoint)
                        assert tuple(point.explicit_bounds) == bounds, metric.name
                        found.setdefault(metric.name, []).append(
                            (dict(point.attributes or {}), point.count, point.sum)
                        )
        return found


@pytest.fixture
def otel() -> Iterator[Otel]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    rxllm.enable_tracing(tracer_provider, meter_provider)
    try:
        yield Otel(exporter, reader, tracer_provider, meter_provider)
    finally:
        rxllm.disable_tracing()
        tracer_provider.shutdown()
        meter_provider.shutdown()


def attributes_of(span: ReadableSpan) -> dict[str, Any]:
    """The span's attributes but ``gen_ai.response.time_to_first_chunk``, checked: 0 < it <= duration."""
    attributes = dict(span.attributes or {})
    first_chunk = attributes.pop("gen_ai.response.time_to_first_chunk", None)
    if first_chunk is not None:
        assert isinstance(first_chunk, float)
        assert span.end_time is not None and span.start_time is not None
        assert 0 < first_chunk <= (span.end_time - span.start_time) / 1e9
    return attributes


def tree(spans: Sequence[ReadableSpan]) -> list[tuple[str, SpanKind, str | None]]:
    """``(name, kind, parent name)`` of each span, in start order."""
    names = {span.context.span_id: span.name for span in spans if span.context is not None}
    return [(span.name, span.kind, names.get(span.parent.span_id) if span.parent else None) for span in spans]


def chat_attributes(dialect: Dialect, server: ScriptedServer, *, options: bool = True) -> dict[str, Any]:
    """What a ``chat`` span carries from its creation (``options``: ``REQUEST``'s settings)."""
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": dialect.provider,
        "gen_ai.request.model": "scripted-model",
        "server.address": "127.0.0.1",
        "server.port": server.port,
    }
    if options:
        attributes.update(
            {"gen_ai.request.temperature": 0.2, "gen_ai.request.top_p": 0.9, "gen_ai.request.max_tokens": 64}
        )
    attributes["gen_ai.request.stream"] = True
    if dialect.api_type is not None:
        attributes["openai.api.type"] = dialect.api_type
    return attributes


def metric_attributes(dialect: Dialect, server: ScriptedServer, *, answered: bool = True) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": dialect.provider,
        "gen_ai.request.model": "scripted-model",
        "server.address": "127.0.0.1",
        "server.port": server.port,
    }
    if answered:
        attributes["gen_ai.response.model"] = "scripted-model"
    return attributes


def ended(final: Final) -> dict[str, Any]:
    """What a ``chat`` span gets from the turn's ``Final``."""
    assert final.usage is not None
    return {
        "gen_ai.response.id": final.response_id,
        "gen_ai.response.model": final.model,
        "gen_ai.response.finish_reasons": (final.finish_reason,),
        "gen_ai.usage.input_tokens": final.usage.input_tokens,
        "gen_ai.usage.output_tokens": final.usage.output_tokens,
    }


# -- a streamed turn ----------------------------------------------------------------------------


@by_dialect
async def test_a_streamed_turn_is_one_chat_span_under_the_current_span(otel: Otel, dialect: Dialect) -> None:
    app = otel.tracer_provider.get_tracer("app")
    async with ScriptedServer([Turn(text=["Hel", "lo", "!"])], dialect=dialect.name) as server:
        async with server.provider() as provider:
            with app.start_as_current_span("request"):
                result = await collect_events(provider.stream(REQUEST))
    assert result.completed
    final = result.events[-1]
    assert final == Final(
        usage=final.usage,
        finish_reason=dialect.stop,
        response_id=dialect.response_id,
        model="scripted-model",
    )
    spans = otel.spans()
    assert tree(spans) == [
        ("request", SpanKind.INTERNAL, None),
        ("chat scripted-model", SpanKind.CLIENT, "request"),
    ]
    chat = spans[1]
    assert chat.status.status_code is StatusCode.UNSET
    assert chat.events == ()
    assert attributes_of(chat) == {
        **chat_attributes(dialect, server),
        "gen_ai.response.id": dialect.response_id,
        "gen_ai.response.model": "scripted-model",
        "gen_ai.response.finish_reasons": (dialect.stop,),
        "gen_ai.usage.input_tokens": 10,
        "gen_ai.usage.output_tokens": 5,
    }
    assert isinstance((chat.attributes or {})["gen_ai.response.time_to_first_chunk"], float)
    attributes = metric_attributes(dialect, server)
    points = otel.points()
    assert [(a, n) for a, n, _ in points["gen_ai.client.operation.duration"]] == [(attributes, 1)]
    assert points["gen_ai.client.token.usage"] == [
        ({**attributes, "gen_ai.token.type": "input"}, 1, 10),
        ({**attributes, "gen_ai.token.type": "output"}, 1, 5),
    ]
    assert [(a, n) for a, n, _ in points["gen_ai.client.operation.time_to_first_chunk"]] == [(attributes, 1)]
    # Three chunks: two gaps after the first.
    assert [(a, n) for a, n, _ in points["gen_ai.client.operation.time_per_output_chunk"]] == [
        (attributes, 2)
    ]
    first_chunk = points["gen_ai.client.operation.time_to_first_chunk"][0][2]
    assert first_chunk == (chat.attributes or {})["gen_ai.response.time_to_first_chunk"]
    assert 0 < first_chunk <= points["gen_ai.client.operation.duration"][0][2]


async def test_subscribed_from_another_thread_the_span_has_that_threads_parent(otel: Otel) -> None:
    app = otel.tracer_provider.get_tracer("app")
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    delivered_on: list[threading.Thread] = []
    async with ScriptedServer([Turn(text=["Hi"])]) as server:
        async with server.provider() as provider:
            stream = provider.stream(REQUEST)

            def on_next(event: object) -> None:
                delivered_on.append(threading.current_thread())

            def finish() -> None:
                loop.call_soon_threadsafe(done.set)

            def subscribe_from_a_thread() -> None:
                with app.start_as_current_span("worker"):
                    stream.subscribe(
                        on_next,
                        lambda error: finish(),
                        finish,
                        scheduler=AsyncIOScheduler(loop),
                    )

            worker = threading.Thread(target=subscribe_from_a_thread)
            worker.start()
            worker.join()
            await asyncio.wait_for(done.wait(), 10)
    assert set(delivered_on) == {threading.main_thread()}, "events arrive on the loop's thread"
    assert tree(otel.spans()) == [
        ("worker", SpanKind.INTERNAL, None),
        ("chat scripted-model", SpanKind.CLIENT, "worker"),
    ]


async def test_the_chat_span_is_current_in_the_task_that_sends_the_request(otel: Otel) -> None:
    # So an HTTP client instrumentation's spans, and spans made in callbacks, nest under it.
    current: list[int] = []
    async with ScriptedServer([Turn(text=["Hel", "lo"])]) as server:
        async with server.provider() as provider:
            stream = provider.stream(REQUEST).pipe(
                ops.do_action(
                    on_next=lambda _: current.append(trace.get_current_span().get_span_context().span_id)
                )
            )
            result = await collect_events(stream)
    assert result.completed
    (chat,) = otel.spans()
    assert chat.context is not None
    assert current == [chat.context.span_id] * 3
    assert trace.get_current_span() is trace.INVALID_SPAN, "and nowhere else"


# -- an agent run with two tools at once -------------------------------------------------------------


@by_dialect
async def test_an_agent_run_nests_its_turns_and_parallel_tools(otel: Otel, dialect: Dialect) -> None:
    app = otel.tracer_provider.get_tracer("app")
    async_started = threading.Event()

    @rxllm.tool
    def clock(timezone: str) -> str:
        """The time in a time zone."""
        # Runs in a worker thread; waits until the other tool runs too: both at once, or no answer.
        with app.start_as_current_span("inside clock"):
            return "noon" if async_started.wait(5) else "the other tool never started"

    @rxllm.tool
    async def weather(city: str) -> str:
        """The weather in a city."""
        async_started.set()
        return "sunny"

    script = [
        Turn(calls=[Call("clock", {"timezone": "UTC"}), Call("weather", {"city": "Paris"})]),
        Turn(text=["Noon ", "and sunny."]),
    ]
    async with ScriptedServer(script, dialect=dialect.name) as server:
        async with server.provider() as provider:
            agent = rxllm.Agent(provider, tools=[clock, weather], tool_concurrency=2, name="helper")
            result = await collect_events(agent.stream_prompt("Time and weather?"))
    assert result.completed, result.error
    results = [event for event in result.events if isinstance(event, rxllm.ToolResult)]
    assert [r.content for r in results] == ["noon", "sunny"]
    calls = [event for event in result.events if isinstance(event, ToolCall)]
    finals = [event for event in result.events if isinstance(event, Final)]
    assert [f.finish_reason for f in finals] == [dialect.tool_stop, dialect.stop]

    spans = otel.spans()
    names = tree(spans)
    agent_span = ("invoke_agent helper", SpanKind.INTERNAL, None)
    chat = ("chat scripted-model", SpanKind.CLIENT, "invoke_agent helper")
    tools = sorted(names[2:5])
    assert names[:2] == [agent_span, chat] and names[5] == chat and len(names) == 6
    assert tools == [
        ("execute_tool clock", SpanKind.INTERNAL, "invoke_agent helper"),
        ("execute_tool weather", SpanKind.INTERNAL, "invoke_agent helper"),
        ("inside clock", SpanKind.INTERNAL, "execute_tool clock"),
    ]
    by_name = {span.name: span for span in spans}
    run, first, second = spans[0], spans[1], spans[5]
    assert attributes_of(run) == {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.provider.name": dialect.provider,
        "gen_ai.request.model": "scripted-model",
        "gen_ai.agent.name": "helper",
        "gen_ai.response.finish_reasons": (dialect.stop,),
        "gen_ai.usage.input_tokens": 20,
        "gen_ai.usage.output_tokens": 10,
    }
    request = chat_attributes(dialect, server, options=False)
    assert attributes_of(first) == {**request, **ended(finals[0])}
    assert attributes_of(second) == {**request, **ended(finals[1])}
    for call, description in zip(calls, ["The time in a time zone.", "The weather in a city."], strict=True):
        assert attributes_of(by_name[f"execute_tool {call.name}"]) == {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": call.name,
            "gen_ai.tool.call.id": call.call_id,
            "gen_ai.tool.type": "function",
            "gen_ai.tool.description": description,
        }
    # The two tool spans overlap: they ran at once.
    clock_span, weather_span = by_name["execute_tool clock"], by_name["execute_tool weather"]
    assert clock_span.start_time and clock_span.end_time and weather_span.start_time and weather_span.end_time
    assert clock_span.start_time < weather_span.end_time and weather_span.start_time < clock_span.end_time
    assert all(span.status.status_code is StatusCode.UNSET for span in spans)
    points = otel.points()
    assert [n for _, n, _ in points["gen_ai.client.operation.duration"]] == [2]


async def test_a_failing_tool_is_an_execute_tool_span_in_error_and_the_run_goes_on(otel: Otel) -> None:
    @rxllm.tool
    def broken(x: int) -> str:
        """Fails."""
        raise RuntimeError("the tool broke")

    script = [Turn(calls=[Call("broken", {"x": 1})]), Turn(text=["Sorry."])]
    async with ScriptedServer(script) as server:
        async with server.provider() as provider:
            result = await collect_events(rxllm.Agent(provider, tools=[broken]).stream_prompt("Go"))
    assert result.completed
    tool_span = next(span for span in otel.spans() if span.name == "execute_tool broken")
    assert tool_span.status.status_code is StatusCode.ERROR
    assert tool_span.status.description == "the tool broke"
    assert (tool_span.attributes or {})["error.type"] == "RuntimeError"
    run = otel.spans()[0]
    assert run.name == "invoke_agent" and run.status.status_code is StatusCode.UNSET


# -- retries, resends ---------------------------------------------------------------------------------


@by_dialect
async def test_a_retry_before_the_first_event_stays_inside_one_chat_span_without_error(
    otel: Otel, dialect: Dialect
) -> None:
    busy = Reply(status=503, body=b'{"error": {"message": "busy", "type": "overloaded"}}')
    async with ScriptedServer([busy, Turn(text=["Hi"])], dialect=dialect.name) as server:
        async with server.provider(backoff=FAST) as provider:
            result = await collect_events(provider.stream(REQUEST))
    assert result.completed and len(server.requests) == 2
    retries = [event for event in result.events if isinstance(event, Retrying)]
    (chat,) = otel.spans()
    assert chat.name == "chat scripted-model" and chat.status.status_code is StatusCode.UNSET
    assert "error.type" not in (chat.attributes or {})
    # One span event per Retrying the stream emitted (the retried 503 is handled: not an error).
    assert [(event.name, dict(event.attributes or {})) for event in chat.events] == [
        (
            "rxllm.retry",
            {
                "rxllm.attempt": retry.attempt,
                "rxllm.delay": retry.delay,
                "rxllm.reason": retry.reason,
                "http.response.status_code": 503,
            },
        )
        for retry in retries
    ]
    assert attributes_of(chat) == {**chat_attributes(dialect, server), **ended(result.events[-1])}
    points = otel.points()
    assert [(a, n) for a, n, _ in points["gen_ai.client.operation.duration"]] == [
        (metric_attributes(dialect, server), 1)
    ]


def test_retrying_and_stream_reset_events_become_span_events_of_the_chat_span(otel: Otel) -> None:
    provider = Provider.__new__(Provider)  # only what the layer reads: the model and the server
    provider.model, provider.base_url = "gpt-x", "https://api.example.com/v1"
    layer = tracing.chat_layer(provider, CompletionRequest([Message.user("Hi")]))
    assert layer is not None
    events: list[AssistantEvent] = [
        Retrying(attempt=2, delay=0.5, reason="HTTP 503", status=503),
        Retrying(attempt=3, delay=1.0, reason="connection failed"),
        TextDelta(text="a"),
        StreamReset(attempt=1, reason="the stream ended before its end marker"),
        TextDelta(text="b"),
        Final(finish_reason="stop"),
    ]
    seen: list[object] = []
    source: reactivex.Observable[AssistantEvent] = reactivex.from_iterable(events)
    source.pipe(layer).subscribe(seen.append)
    assert seen == events, "the layer passes every event on"
    (chat,) = otel.spans()
    assert chat.name == "chat gpt-x"
    assert [(event.name, dict(event.attributes or {})) for event in chat.events] == [
        (
            "rxllm.retry",
            {
                "rxllm.attempt": 2,
                "rxllm.delay": 0.5,
                "rxllm.reason": "HTTP 503",
                "http.response.status_code": 503,
            },
        ),
        ("rxllm.retry", {"rxllm.attempt": 3, "rxllm.delay": 1.0, "rxllm.reason": "connection failed"}),
        (
            "rxllm.stream_reset",
            {"rxllm.attempt": 1, "rxllm.reason": "the stream ended before its end marker"},
        ),
    ]
    assert attributes_of(chat) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "Provider",
        "gen_ai.request.model": "gpt-x",
        "server.address": "api.example.com",
        "server.port": 443,
        "gen_ai.request.stream": True,
        "gen_ai.response.finish_reasons": ("stop",),  # no usage: the Final reported none
    }
    points = otel.points()
    # The chunk after the reset starts the gaps anew: "a" and "b" are each a first chunk, no gap.
    assert "gen_ai.client.operation.time_per_output_chunk" not in points
    assert [n for _, n, _ in points["gen_ai.client.operation.time_to_first_chunk"]] == [1]


@by_dialect
async def test_a_midstream_resend_is_a_span_event_and_the_turn_one_span(otel: Otel, dialect: Dialect) -> None:
    whole = Turn(text=["Hel", "lo"])
    cut = {"openai": 2, "responses": 3, "anthropic": 3}[dialect.name]
    broken = sse_bytes(whole, dialect.name)[:cut]  # up to "Hel", then the body ends without its end marker
    async with ScriptedServer([Reply(pieces=broken), whole], dialect=dialect.name) as server:
        async with server.provider(backoff=FAST, midstream_retries=1) as provider:
            result = await collect_events(provider.stream(REQUEST))
    assert result.completed and len(server.requests) == 2
    resets = [event for event in result.events if isinstance(event, StreamReset)]
    assert [r.attempt for r in resets] == [2]
    (chat,) = otel.spans()
    assert chat.status.status_code is StatusCode.UNSET
    assert [(event.name, dict(event.attributes or {})) for event in chat.events] == [
        ("rxllm.stream_reset", {"rxllm.attempt": 2, "rxllm.reason": resets[0].reason})
    ]
    final = result.events[-1]
    assert isinstance(final, Final) and final.usage is not None
    # Anthropic's discarded attempt reported usage (10 in, 1 out): it is billed, so it is counted.
    expected_usage = (20, 6) if dialect.name == "anthropic" else (10, 5)
    assert (final.usage.input_tokens, final.usage.output_tokens) == expected_usage
    assert attributes_of(chat) == {**chat_attributes(dialect, server), **ended(final)}
    points = otel.points()
    attributes = metric_attributes(dialect, server)
    assert [(a, n) for a, n, _ in points["gen_ai.client.operation.time_to_first_chunk"]] == [(attributes, 1)]
    # "Hel" | reset | "Hel", "lo": one gap, in the resent attempt.
    assert [(a, n) for a, n, _ in points["gen_ai.client.operation.time_per_output_chunk"]] == [
        (attributes, 1)
    ]
    assert [(a["gen_ai.token.type"], s) for a, _, s in points["gen_ai.client.token.usage"]] == [
        ("input", expected_usage[0]),
        ("output", expected_usage[1]),
    ]


# -- cancel, error ------------------------------------------------------------------------------------


@by_dialect
async def test_a_disposed_stream_ends_its_span_as_cancelled(otel: Otel, dialect: Dialect) -> None:
    first = asyncio.Event()
    async with ScriptedServer([Turn(text=["Hel", "lo"])], dialect=dialect.name, delay=0.2) as server:
        async with server.provider() as provider:

            def on_next(event: object) -> None:
                if isinstance(event, TextDelta):
                    first.set()

            subscription = provider.stream(REQUEST).subscribe(on_next)
            await asyncio.wait_for(first.wait(), 10)
            subscription.dispose()
            (chat,) = otel.spans()  # ended at once, not when the server notices
            subscription.dispose()  # a second dispose changes nothing
    assert len(otel.spans()) == 1
    assert chat.status.status_code is StatusCode.ERROR
    assert attributes_of(chat) == {**chat_attributes(dialect, server), "error.type": "CancelledError"}
    points = otel.points()
    attributes = metric_attributes(dialect, server, answered=False)
    assert [(a, n) for a, n, _ in points["gen_ai.client.operation.duration"]] == [
        ({**attributes, "error.type": "CancelledError"}, 1)
    ]
    assert "gen_ai.client.token.usage" not in points, "no usage is known: none is recorded"
    assert [(a, n) for a, n, _ in points["gen_ai.client.operation.time_to_first_chunk"]] == [(attributes, 1)]


async def test_a_subscriber_that_stops_at_the_final_ends_the_span_as_a_whole_turn(otel: Otel) -> None:
    async with ScriptedServer([Turn(text=["Hi"])]) as server:
        async with server.provider() as provider:
            upto_final = provider.stream(REQUEST).pipe(
                ops.take_while(lambda event: not isinstance(event, Final), inclusive=True)
            )
            result = await collect_events(upto_final)
    assert result.completed
    (chat,) = otel.spans()
    assert chat.status.status_code is StatusCode.UNSET
    assert "error.type" not in (chat.attributes or {})
    assert (chat.attributes or {})["gen_ai.usage.output_tokens"] == 5


async def test_a_run_disposed_while_a_tool_runs_ends_every_span_as_cancelled(otel: Otel) -> None:
    running, cancelled = asyncio.Event(), asyncio.Event()

    @rxllm.tool
    async def slow() -> str:
        """Never returns by itself."""
        running.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()  # the span ends as this cancellation leaves the tool, in the same step
            raise
        return "never"

    async with ScriptedServer([Turn(calls=[Call("slow")])]) as server:
        async with server.provider() as provider:
            subscription = rxllm.Agent(provider, tools=[slow]).stream_prompt("Go").subscribe(lambda _: None)
            await asyncio.wait_for(running.wait(), 10)
            subscription.dispose()
            await asyncio.wait_for(cancelled.wait(), 10)
    names = tree(otel.spans())
    assert sorted(names) == [
        ("chat scripted-model", SpanKind.CLIENT, "invoke_agent"),
        ("execute_tool slow", SpanKind.INTERNAL, "invoke_agent"),
        ("invoke_agent", SpanKind.INTERNAL, None),
    ]
    statuses = {
        span.name: ((span.attributes or {}).get("error.type"), span.status.status_code)
        for span in otel.spans()
    }
    assert statuses == {
        "invoke_agent": ("CancelledError", StatusCode.ERROR),
        "chat scripted-model": (None, StatusCode.UNSET),
        "execute_tool slow": ("CancelledError", StatusCode.ERROR),
    }


@by_dialect
async def test_an_error_ends_the_span_in_error_with_its_type_and_message(
    otel: Otel, dialect: Dialect
) -> None:
    bad = Reply(
        status=400, body=b'{"error": {"message": "max_tokens is too large", "type": "invalid_request_error"}}'
    )
    async with ScriptedServer([bad], dialect=dialect.name) as server:
        async with server.provider() as provider:
            result = await collect_events(provider.stream(REQUEST))
    assert isinstance(result.error, ProviderError) and result.error.status == 400
    # The class's own name: ProviderError, or its subclass for the status where there is one.
    error_type = type(result.error).__qualname__
    (chat,) = otel.spans()
    assert chat.status.status_code is StatusCode.ERROR
    assert chat.status.description == str(result.error)
    assert "max_tokens is too large" in str(result.error)
    assert attributes_of(chat) == {**chat_attributes(dialect, server), "error.type": error_type}
    points = otel.points()
    assert [(a, n) for a, n, _ in points["gen_ai.client.operation.duration"]] == [
        ({**metric_attributes(dialect, server, answered=False), "error.type": error_type}, 1)
    ]
    assert "gen_ai.client.token.usage" not in points
    assert "gen_ai.client.operation.time_to_first_chunk" not in points


async def test_a_stream_cut_after_content_is_an_error_with_its_first_chunk_time(otel: Otel) -> None:
    broken = sse_bytes(Turn(text=["Hel", "lo"]), "openai")[:3]
    async with ScriptedServer([Reply(pieces=broken)]) as server:
        async with server.provider() as provider:
            result = await collect_events(provider.stream(REQUEST))
    assert isinstance(result.error, StreamTruncatedError)
    (chat,) = otel.spans()
    assert (chat.attributes or {})["error.type"] == "StreamTruncatedError"
    assert "gen_ai.response.time_to_first_chunk" in (chat.attributes or {})


# -- content ------------------------------------------------------------------------------------------


async def test_content_is_recorded_only_when_asked_for(otel: Otel) -> None:
    rxllm.enable_tracing(otel.tracer_provider, otel.meter_provider, capture_content=True)

    @rxllm.tool
    def clock(timezone: str) -> str:
        """The time in a time zone."""
        return "noon"

    script = [Turn(calls=[Call("clock", {"timezone": "UTC"}, id="call_1")]), Turn(text=["It is ", "noon."])]
    async with ScriptedServer(script) as server:
        async with server.provider() as provider:
            agent = rxllm.Agent(provider, preamble="Be brief.", tools=[clock])
            result = await collect_events(agent.stream_prompt("Time?"))
    assert result.completed
    run, first, tool_span, second = otel.spans()
    user = {"role": "user", "parts": [{"type": "text", "content": "Time?"}]}
    call = {"type": "tool_call", "id": "call_1", "name": "clock", "arguments": {"timezone": "UTC"}}
    instructions = '[{"type":"text","content":"Be brief."}]'
    definitions = '[{"type":"function","name":"clock","description":"The time in a time zone."}]'
    content = {
        key: value
        for key, value in (first.attributes or {}).items()
        if key.startswith(("gen_ai.input", "gen_ai.output", "gen_ai.system", "gen_ai.tool.def"))
    }
    assert content == {
        "gen_ai.system_instructions": instructions,
        "gen_ai.tool.definitions": definitions,
        "gen_ai.input.messages": _json([user]),
        "gen_ai.output.messages": _json(
            [{"role": "assistant", "parts": [call], "finish_reason": "tool_call"}]
        ),
    }
    assert (second.attributes or {})["gen_ai.input.messages"] == _json(
        [
            user,
            {"role": "assistant", "parts": [call]},
            {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_1", "response": "noon"}]},
        ]
    )
    assert (second.attributes or {})["gen_ai.output.messages"] == _json(
        [
            {
                "role": "assistant",
                "parts": [{"type": "text", "content": "It is noon."}],
                "finish_reason": "stop",
            }
        ]
    )
    assert (tool_span.attributes or {})["gen_ai.tool.call.arguments"] == '{"timezone":"UTC"}'
    assert (tool_span.attributes or {})["gen_ai.tool.call.result"] == "noon"
    assert (run.attributes or {})["gen_ai.input.messages"] == _json([user])
    assert (run.attributes or {})["gen_ai.system_instructions"] == instructions
    assert (run.attributes or {})["gen_ai.output.messages"] == _json(
        [
            {
                "role": "assistant",
                "parts": [{"type": "text", "content": "It is noon."}],
                "finish_reason": "stop",
            }
        ]
    )


def _json(value: object) -> str:
    import msgspec

    return msgspec.json.encode(value).decode()


# -- off ----------------------------------------------------------------------------------------------


async def test_turns_built_after_disable_tracing_record_nothing(otel: Otel) -> None:
    rxllm.disable_tracing()
    assert not tracing.is_enabled()
    async with ScriptedServer([Turn(text=["Hi"])]) as server:
        async with server.provider() as provider:
            result = await collect_events(provider.stream(REQUEST))
    assert result.completed
    assert otel.spans() == [] and otel.points() == {}


def test_without_tracing_nothing_imports_opentelemetry() -> None:
    code = """
import sys
import rxllm
from rxllm.testing import ScriptedServer, Turn, Call

@rxllm.tool
def clock(timezone: str) -> str:
    '''The time.'''
    return "noon"

with ScriptedServer([Turn(calls=[Call("clock", {"timezone": "UTC"})]), Turn(text=["Noon."])]) as server:
    events = rxllm.run(rxllm.Agent(server.provider(), tools=[clock]).stream_prompt("Time?"))
assert events[-1].text == "Noon.", events
print(sorted(name for name in sys.modules if name.split(".")[0] in ("opentelemetry", "genai_prices")))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_enable_tracing_without_the_extra_says_which_to_install() -> None:
    code = """
import sys
sys.modules["opentelemetry"] = None  # as if opentelemetry-api were not installed
import rxllm
try:
    rxllm.enable_tracing()
except ModuleNotFoundError as exc:
    print(exc)
print(rxllm.tracing.is_enabled())
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "rxllm.enable_tracing needs OpenTelemetry: pip install 'rxllm[otel]'",
        "False",
    ]


# -- what the attributes say --------------------------------------------------------------------------


def _one_span(otel: Otel, model: Any, request: CompletionRequest) -> dict[str, Any]:
    layer = tracing.chat_layer(model, request)
    assert layer is not None
    source: reactivex.Observable[AssistantEvent] = reactivex.from_iterable([Final(finish_reason="stop")])
    source.pipe(layer).subscribe()
    (span,) = otel.spans()
    otel.exporter.clear()
    return attributes_of(span)


@pytest.mark.parametrize(
    ("kind", "base_url", "provider", "api_type", "address", "port"),
    [
        (OpenAIChat, None, "openai", "chat_completions", "api.openai.com", 443),
        (OpenAIResponses, None, "openai", "responses", "api.openai.com", 443),
        (AnthropicMessages, None, "anthropic", None, "api.anthropic.com", 443),
        (OpenAIChat, "https://api.deepseek.com/v1", "deepseek", None, "api.deepseek.com", 443),
        (OpenAIChat, "https://api.groq.com/openai/v1", "groq", None, "api.groq.com", 443),
        (
            OpenAIChat,
            "https://team.openai.azure.com/openai/v1",
            "azure.ai.openai",
            None,
            "team.openai.azure.com",
            443,
        ),
        (OpenAIChat, "http://localhost:11434/v1", "openai", "chat_completions", "localhost", 11434),
        (OpenAIChat, "http://127.0.0.1/v1", "openai", "chat_completions", "127.0.0.1", 80),
    ],
)
def test_the_provider_name_and_server_follow_the_class_and_the_base_url(
    otel: Otel,
    kind: type[Provider],
    base_url: str | None,
    provider: str,
    api_type: str | None,
    address: str,
    port: int,
) -> None:
    model = kind("m-1", api_key="sk-test", base_url=base_url)
    expected: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": "m-1",
        "server.address": address,
        "server.port": port,
        "gen_ai.request.stream": True,
        "gen_ai.response.finish_reasons": ("stop",),  # no usage: the Final reported none
    }
    if api_type is not None:
        expected["openai.api.type"] = api_type
    assert _one_span(otel, model, CompletionRequest([Message.user("Hi")])) == expected


def test_request_settings_become_gen_ai_request_attributes_and_params_win(otel: Otel) -> None:
    model = OpenAIChat("m-1", api_key="sk-test")
    request = CompletionRequest(
        [Message.user("Hi")],
        temperature=1,
        max_tokens=10,
        params={
            "max_completion_tokens": 20,
            "stop": "END",
            "seed": 7,
            "n": 2,
            "frequency_penalty": 0.5,
            "presence_penalty": -1,
            "top_k": True,  # not an int: left out
        },
    )
    attributes = _one_span(otel, model, request)
    assert {key: value for key, value in attributes.items() if key.startswith("gen_ai.request.")} == {
        "gen_ai.request.model": "m-1",
        "gen_ai.request.temperature": 1.0,
        "gen_ai.request.max_tokens": 20,
        "gen_ai.request.stop_sequences": ("END",),
        "gen_ai.request.seed": 7,
        "gen_ai.request.choice.count": 2,
        "gen_ai.request.frequency_penalty": 0.5,
        "gen_ai.request.presence_penalty": -1.0,
        "gen_ai.request.stream": True,
    }
    anthropic = AnthropicMessages("claude-x", api_key="sk-test")
    request = CompletionRequest(
        [Message.user("Hi")], params={"top_k": 5, "stop_sequences": ["a", "b"], "n": 1}
    )
    attributes = _one_span(otel, anthropic, request)
    assert attributes["gen_ai.request.top_k"] == 5
    assert attributes["gen_ai.request.stop_sequences"] == ("a", "b")
    assert "gen_ai.request.choice.count" not in attributes, "one choice is the default: not recorded"


async def test_an_agent_run_that_runs_out_of_turns_is_an_invoke_agent_span_in_error(otel: Otel) -> None:
    @rxllm.tool
    def again() -> str:
        """Once more."""
        return "more"

    async with ScriptedServer([Turn(calls=[Call("again")])]) as server:
        async with server.provider() as provider:
            result = await collect_events(
                rxllm.Agent(provider, tools=[again], max_turns=1).stream_prompt("Go")
            )
    assert isinstance(result.error, rxllm.MaxTurnsError)
    names = tree(otel.spans())
    assert names == [
        ("invoke_agent", SpanKind.INTERNAL, None),
        ("chat scripted-model", SpanKind.CLIENT, "invoke_agent"),
    ]
    run = otel.spans()[0]
    assert run.status.status_code is StatusCode.ERROR
    assert (run.attributes or {})["error.type"] == "MaxTurnsError"
    assert (run.attributes or {})["gen_ai.response.finish_reasons"] == ("tool_calls",)
