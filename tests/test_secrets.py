"""A known API key, every error path, loguru at TRACE with tracebacks, spans and metrics: no key anywhere."""

from __future__ import annotations

import socket
import sys
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import collect_events
from fault_server import (
    ROLE,
    FaultServer,
    StartFaultServer,
    Step,
    chat_chunk,
    fault_server,
    in_stream_error,
    text_stream,
)
from loguru import logger
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import rxllm
import rxllm._log
from rxllm.errors import InsecureTransportError, RxLLMError
from rxllm.messages import Message
from rxllm.providers.openai import OpenAIChat
from rxllm.request import CompletionRequest
from rxllm.retry import Backoff
from rxllm.timeouts import Timeouts

__all__ = ["fault_server"]

KEY = "sk-rxllm-SECRET-7f3a9c1e5d"
SECRET_PARTS = (KEY, "SECRET-7f3a9c1e5d", "7f3a9c1e5d")
REQUEST = CompletionRequest([Message.user("Hello")], params={"user": "u-1"})
FAST = Backoff(initial=0.01, maximum=0.01)


@pytest.fixture
def everything_logged() -> Iterator[list[str]]:
    """rxllm logging on; one sink at TRACE rendering messages, fields, tracebacks and their variables."""
    out: list[str] = []
    rxllm._log.enable_logging()
    sink = logger.add(
        out.append,
        level="TRACE",
        format="{time} {level} {name}:{function}:{line} {message} {extra}\n{exception}",
        backtrace=True,
        diagnose=True,
        catch=False,
    )
    try:
        yield out
    finally:
        logger.remove(sink)
        rxllm._log.disable_logging()


@pytest.fixture
def everything_traced() -> Iterator[Callable[[], list[str]]]:
    """rxllm tracing on, content included; gives every span and metric exported so far, as JSON."""
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    rxllm.enable_tracing(tracer_provider, meter_provider, capture_content=True)

    def exported() -> list[str]:
        spans = [span.to_json() for span in exporter.get_finished_spans()]
        data = reader.get_metrics_data()
        return [*spans, data.to_json() if data is not None else ""]

    try:
        yield exported
    finally:
        rxllm.disable_tracing()
        tracer_provider.shutdown()
        meter_provider.shutdown()


def _scenarios() -> list[tuple[str, list[Step], dict[str, Any]]]:
    whole = text_stream("Hi")
    echo = b'{"error": {"message": "Incorrect API key provided: sk-rxll***************3a9c. ", "type": "invalid_request_error", "code": "invalid_api_key"}}'  # noqa: E501
    return [
        ("success", [Step(pieces=whole)], {}),
        ("drop before the first byte", [Step(drop_at_once=True)], {}),
        ("drop mid-stream", [Step(pieces=[ROLE, chat_chunk({"content": "a"})], ending="drop")], {}),
        ("401 echoing a masked key", [Step(status=401, body=echo)], {}),
        (
            "400",
            [Step(status=400, body=b'{"error": {"message": "bad", "type": "invalid_request_error"}}')],
            {},
        ),
        ("503 forever", [Step(status=503, headers={"retry-after": "0"}, body=b"busy")], {}),
        ("malformed chunk", [Step(pieces=[ROLE, b"data: {nope\n\n"])], {}),
        ("in-stream error", [Step(pieces=[ROLE, in_stream_error("Overloaded", "overloaded_error")])], {}),
        ("error after content", [Step(pieces=[whole[1], in_stream_error("boom", "server_error")])], {}),
        ("truncated", [Step(pieces=[ROLE])], {}),
        ("oversized event", [Step(pieces=[chat_chunk({"content": "x" * 3000})])], {"max_event_size": 1024}),
        ("response too large", [Step(pieces=whole * 20)], {"max_response_size": 1500}),
        ("invalid utf-8", [Step(pieces=[b"data: \xff\xfe\n\n"])], {}),
        ("idle timeout", [Step(pieces=[ROLE], ending="stall")], {"timeouts": Timeouts(idle=0.1)}),
        ("first event timeout", [Step(pieces=whole, first_delay=5)], {"timeouts": Timeouts(first_event=0.1)}),
        (
            "total timeout",
            [Step(pieces=[ROLE], ending="ping", delay=0.01)],
            {"timeouts": Timeouts(total=0.2)},
        ),
    ]


async def test_the_key_appears_nowhere(
    fault_server: StartFaultServer,
    everything_logged: list[str],
    everything_traced: Callable[[], list[str]],
    capfd: pytest.CaptureFixture[str],
) -> None:
    seen: list[str] = []
    servers: list[FaultServer] = []

    async def run(base_url: str, **options: Any) -> None:
        options.setdefault("backoff", FAST)
        async with OpenAIChat("gpt-4o", api_key=KEY, base_url=base_url, **options) as provider:
            seen.append(repr(provider))
            seen.append(repr(vars(provider)))
            result = await collect_events(provider.stream(REQUEST))
        seen.extend(repr(event) for event in result.events)
        error = result.error
        if error is not None:
            assert isinstance(error, RxLLMError), repr(error)
            _describe(error, seen)
            # What an application does with the error it got: log it, with its traceback.
            logger.opt(exception=error).error("the stream failed")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _name, steps, options in _scenarios():
            server = await fault_server(*steps)
            servers.append(server)
            await run(server.base_url, **options)
        await run(f"http://127.0.0.1:{_closed_port()}/v1")
        with pytest.raises(InsecureTransportError) as refused:
            OpenAIChat("gpt-4o", api_key=KEY, base_url="http://api.example.com/v1")
        _describe(refused.value, seen)
    seen.extend(str(warning.message) for warning in caught)
    seen.append(repr(REQUEST))

    # The key was really in use: the servers got it.
    assert any(r.headers.get("authorization") == f"Bearer {KEY}" for s in servers for r in s.requests)
    printed = capfd.readouterr()
    traced = everything_traced()
    haystack = "\n".join([*everything_logged, *seen, *traced, printed.out, printed.err])
    assert "the stream failed" in haystack and "Traceback" in haystack, "the sink saw the tracebacks"
    assert "TRACE" in haystack and "gen_ai.request.model" in haystack
    # The spans were there to be searched: one per stream, with content and errors.
    spans = "\n".join(traced)
    assert spans.count('"name": "chat gpt-4o"') == len(servers) + 1
    assert "gen_ai.input.messages" in spans and "gen_ai.client.operation.duration" in spans
    assert '"status_code": "ERROR"' in spans and "Incorrect API key provided" in spans
    for part in SECRET_PARTS:
        assert part not in haystack


async def test_credentials_in_a_url_stay_out_of_messages_reprs_and_rxllm_logs(
    everything_logged: list[str], capfd: pytest.CaptureFixture[str]
) -> None:
    # A key in the URL is the user's choice; rxllm still never repeats the URL's user info or query.
    for base_url in (
        f"http://user:{KEY}@127.0.0.1:{_closed_port()}/v1",
        f"http://127.0.0.1:{_closed_port()}/v1?key={KEY}",
    ):
        seen: list[str] = []
        async with OpenAIChat("gpt-4o", base_url=base_url, backoff=FAST) as provider:
            seen.append(repr(provider))
            result = await collect_events(provider.stream(REQUEST))
        assert isinstance(result.error, RxLLMError)
        seen += [str(result.error), repr(result.error)]
        printed = capfd.readouterr()
        haystack = "\n".join([*everything_logged, *seen, printed.out, printed.err])
        assert "gpt-4o stream failed" in haystack
        for part in SECRET_PARTS:
            assert part not in haystack


def _describe(error: BaseException, seen: list[str]) -> None:
    """Everything an error shows: its text, repr, attributes, and the same of its causes."""
    current: BaseException | None = error
    while current is not None:
        seen += [str(current), repr(current), repr(vars(current)), repr(current.args)]
        current = current.__cause__ or current.__context__


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_provider_and_headers_show_no_key() -> None:
    provider = OpenAIChat("gpt-4o", api_key=KEY)
    headers = provider.headers()
    assert headers["authorization"] == f"Bearer {KEY}", "on the wire, the key is the key"
    shown = [repr(provider), repr(vars(provider)), repr(headers), str(provider)]
    for text in shown:
        assert KEY not in text and "SECRET" not in text
    assert repr(headers["authorization"]) == "'<secret>'"


def test_loguru_traceback_variables_hide_the_key(everything_logged: list[str]) -> None:
    provider = OpenAIChat("gpt-4o", api_key=KEY)

    def fails(headers: Callable[[], Any]) -> None:
        sent = headers()
        raise RuntimeError("failed", len(sent), sent["authorization"].startswith("Bearer"))

    try:
        fails(provider.headers)
    except RuntimeError:
        logger.exception("an application error near rxllm")
    text = "".join(everything_logged)
    assert "an application error near rxllm" in text and "'<secret>'" in text
    assert KEY not in text
    print(text, file=sys.stderr)
