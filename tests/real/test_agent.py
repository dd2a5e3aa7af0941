"""A two-turn agent run against each real server: a forced tool call, its result, then an answer.

The recording proxy shows the exact second request the server received: the first
request's fields, the history grown by the assistant's call (with the id, name and
arguments the server streamed) and the tool's result, in that provider's wire form.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import Closing, collect_events

from real.endpoints import ENDPOINTS, Endpoint, ForcedFirstTurn, Streamed, get_weather
from real.proxy import RecordingProxy
from real.servers import RunningServer
from rxllm.agent import Agent
from rxllm.events import Final, FinalResponse, TextDelta, ToolCall, ToolResult, Usage
from rxllm.messages import Message, TextPart, ToolCallPart, ToolResultPart

TIMEOUT = 60.0
MAX_TOKENS = 64
PROMPT, PREAMBLE = "Weather in Zürich?", "Use the tool."


def compact(arguments: Any) -> str:
    """Arguments as rxllm sends them back: compact JSON, UTF-8, the server's key order."""
    return json.dumps(arguments, separators=(",", ":"), ensure_ascii=False)


def second_request(endpoint: Endpoint, first: dict[str, Any], call: Any, result: str) -> dict[str, Any]:
    """The exact body of the answer turn, given the first turn's body and the call the server streamed."""
    if endpoint.dialect == "openai-chat":
        return {
            **first,
            "messages": [
                *first["messages"],
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [
                        {
                            "id": call.id,
                            "type": "function",
                            "function": {"name": call.name, "arguments": compact(call.arguments)},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": call.call_id, "content": result},
            ],
            "tool_choice": "none",
        }
    if endpoint.dialect == "openai-responses":
        return {
            **first,
            "input": [
                *first["input"],
                {
                    "type": "function_call",
                    "call_id": call.call_id,
                    "name": call.name,
                    "arguments": compact(call.arguments),
                    "id": call.id,
                },
                {"type": "function_call_output", "call_id": call.call_id, "output": result},
            ],
            "tool_choice": "none",
        }
    answer = {key: value for key, value in first.items() if key not in ("tools", "tool_choice")}
    return {
        **answer,
        "messages": [
            *first["messages"],
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments}],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": call.call_id, "content": result}],
            },
        ],
    }


AGENT_ENDPOINTS = [pytest.param(e, id=e.id) for e in ENDPOINTS]


@pytest.mark.parametrize("endpoint", AGENT_ENDPOINTS)
async def test_two_turn_agent_run_sends_the_exact_second_request(
    endpoint: Endpoint, server: RunningServer, proxy: Any, closing: Closing
) -> None:
    recording: RecordingProxy = await proxy(server)
    provider = closing(endpoint.provider(recording.origin))
    agent = Agent(
        ForcedFirstTurn(provider, endpoint),
        preamble=PREAMBLE,
        tools=[get_weather],
        temperature=0.0,
        max_tokens=MAX_TOKENS,
        params={"seed": 15},
    )
    run = await collect_events(agent.stream_prompt(PROMPT), timeout=TIMEOUT)

    first, second = recording.exchanges[:2]
    (sent_call,) = Streamed.read(endpoint.dialect, first).calls
    content = get_weather(**sent_call.arguments)
    assert second.request_json == second_request(endpoint, first.request_json, sent_call, content)
    assert run.completed, run.error
    assert len(recording.exchanges) == 2
    answered = Streamed.read(endpoint.dialect, second)
    assert (answered.calls, answered.finish_reason) == ([], endpoint.finish_reasons["length"])

    (call,) = [event for event in run.events if isinstance(event, ToolCall)]
    (result,) = [event for event in run.events if isinstance(event, ToolResult)]
    assert (call.id, call.call_id, call.arguments) == (sent_call.id, sent_call.call_id, sent_call.arguments)
    assert (result.call_id, result.internal_call_id, result.content, result.is_error) == (
        call.call_id,
        call.internal_call_id,
        content,
        False,
    )
    finals = [event for event in run.events if isinstance(event, Final)]
    assert [final.finish_reason for final in finals] == [
        endpoint.finish_reasons["tool_calls"],
        endpoint.finish_reasons["length"],
    ]
    last = run.events[-1]
    assert isinstance(last, FinalResponse)
    answer = "".join(event.text for event in run.events if isinstance(event, TextDelta))
    assert (last.text, last.turns) == ("".join(answered.text), 2)
    assert answer == last.text
    assert last.usage == (Usage.summed((finals[0].usage, finals[1].usage)) or Usage())
    assert last.usage_complete == (finals[0].usage is not None and finals[1].usage is not None)
    assert last.history[0] == Message.user(PROMPT)
    assert [message.role for message in last.history] == ["user", "assistant", "tool", "assistant"]
    assert last.history[1].content == (
        ToolCallPart(id=call.id, call_id=call.call_id, name=call.name, arguments=call.arguments),
    )
    assert last.history[2].content == (
        ToolResultPart(call_id=call.call_id, name=call.name, content=content, is_error=False),
    )
    assert last.history[3].content == (TextPart(text=last.text),)
