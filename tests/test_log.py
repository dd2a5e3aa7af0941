"""Logging: off by default, free per event when off, records with OpenTelemetry GenAI fields when on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from conftest import collect_events
from fault_server import MODEL, StartFaultServer, Step, chat_chunk, fault_server, text_stream
from loguru import logger

import rxllm._log
from rxllm._log import log, log_tool_call
from rxllm.messages import Message
from rxllm.providers.openai import OpenAIChat
from rxllm.request import CompletionRequest

__all__ = ["fault_server"]

HELLO = CompletionRequest([Message.user("Hello")])
USAGE = {"prompt_tokens": 12, "completion_tokens": 34, "total_tokens": 46}


@pytest.fixture
def sink() -> Iterator[list[Any]]:
    captured: list[Any] = []
    handler = logger.add(captured.append, level="TRACE", format="{message}")
    try:
        yield captured
    finally:
        logger.remove(handler)
        rxllm._log.disable_logging()


def records(captured: list[Any]) -> list[dict[str, Any]]:
    return [message.record for message in captured]


def _stream(n: int) -> list[bytes]:
    return [
        *text_stream(*(f"t{i}" for i in range(n)))[:-1],
        chat_chunk(usage=USAGE, choices=[]),
        b"data: [DONE]\n\n",
    ]


async def test_off_by_default(fault_server: StartFaultServer, sink: list[Any]) -> None:
    assert not rxllm._log.is_enabled()
    server = await fault_server(Step(pieces=_stream(3)))
    async with OpenAIChat(MODEL, base_url=server.base_url) as chat:
        result = await collect_events(chat.stream(HELLO))
    assert result.completed
    assert sink == []


class _Counting:
    """Stands in for loguru's logger and counts every use."""

    def __init__(self) -> None:
        self.uses = 0

    def __getattr__(self, name: str) -> Any:
        self.uses += 1
        return getattr(logger, name)


async def test_off_means_no_logging_call_at_all(
    fault_server: StartFaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    counting = _Counting()
    monkeypatch.setattr(rxllm._log, "logger", counting)
    server = await fault_server(Step(pieces=_stream(500)))
    async with OpenAIChat(MODEL, base_url=server.base_url) as chat:
        result = await collect_events(chat.stream(HELLO))
    assert len(result.events) == 501
    assert counting.uses == 0, "with logging off, no event, request or error touches loguru"

    rxllm._log.enable_logging()
    try:
        async with OpenAIChat(MODEL, base_url=server.base_url) as chat:
            await collect_events(chat.stream(HELLO))
    finally:
        rxllm._log.disable_logging()
    assert counting.uses > 500, "the same stream with logging on: a record per event at TRACE"


async def test_records_carry_gen_ai_fields(fault_server: StartFaultServer, sink: list[Any]) -> None:
    rxllm._log.enable_logging()
    server = await fault_server(Step(pieces=_stream(2)))
    async with OpenAIChat(MODEL, base_url=server.base_url) as chat:
        result = await collect_events(chat.stream(HELLO))
    assert result.completed
    got = records(sink)
    start, *events, end = got
    assert start["level"].name == "DEBUG"
    assert start["message"] == f"streaming {MODEL} from {server.base_url}/chat/completions"
    assert start["extra"] == {"gen_ai.operation.name": "chat", "gen_ai.request.model": MODEL}
    assert {r["level"].name for r in events} == {"TRACE"}
    assert [r["name"] for r in events] == ["rxllm.transport._source"] * len(events)
    assert end["message"] == f"{MODEL} turn complete (stop)"
    assert end["extra"] == {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": MODEL,
        "gen_ai.usage.input_tokens": 12,
        "gen_ai.usage.output_tokens": 34,
        "gen_ai.response.id": "chatcmpl-1",
        "gen_ai.response.model": MODEL,
        "gen_ai.response.finish_reasons": ["stop"],
    }


async def test_a_failure_is_logged_with_its_error_type(
    fault_server: StartFaultServer, sink: list[Any]
) -> None:
    rxllm._log.enable_logging()
    server = await fault_server(Step(status=401, body=b'{"error": {"message": "no {braces} formatting"}}'))
    async with OpenAIChat(MODEL, base_url=server.base_url) as chat:
        result = await collect_events(chat.stream(HELLO))
    assert result.error is not None
    end = records(sink)[-1]
    assert end["message"] == f"{MODEL} stream failed: AuthenticationError"
    assert end["extra"]["error.type"] == "AuthenticationError"


def test_log_tool_call_for_the_agent(sink: list[Any]) -> None:
    log_tool_call("get_weather", call_id="call_1", phase="call", model=MODEL)
    assert sink == [], "off: nothing"
    rxllm._log.enable_logging()
    log_tool_call("get_weather", call_id="call_1", phase="call", model=MODEL)
    log_tool_call("get_weather", call_id="call_1", phase="result", is_error=True)
    call, result = records(sink)
    assert call["message"] == "calling tool get_weather (call_1)"
    assert call["extra"] == {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.request.model": MODEL,
        "gen_ai.tool.name": "get_weather",
        "gen_ai.tool.call.id": "call_1",
        "rxllm.phase": "call",
    }
    assert result["message"] == "tool failed get_weather (call_1)"
    assert result["extra"] == {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "get_weather",
        "gen_ai.tool.call.id": "call_1",
        "rxllm.phase": "result",
        "rxllm.is_error": True,
        "error.type": "tool_error",
    }
    assert call["name"] == result["name"] == "test_log", "attributed to the caller's module"


def test_log_keeps_braces_and_fields(sink: list[Any]) -> None:
    rxllm._log.enable_logging()
    log("INFO", "a {literal} brace", operation="chat", input_tokens=1, fields={"rxllm.attempt": 2})
    (record,) = records(sink)
    assert record["message"] == "a {literal} brace"
    assert record["extra"] == {
        "gen_ai.operation.name": "chat",
        "gen_ai.usage.input_tokens": 1,
        "rxllm.attempt": 2,
    }


def test_enable_and_disable() -> None:
    assert not rxllm._log.is_enabled()
    rxllm._log.enable_logging()
    assert rxllm._log.is_enabled()
    rxllm._log.disable_logging()
    assert not rxllm._log.is_enabled()
