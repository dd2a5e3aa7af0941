"""Each provider's exact second request after a denial and after an edit, answered live or resumed."""

from __future__ import annotations

from typing import Any, Literal

import msgspec
import pytest
from approval_kit import Recorder, pay

from rxllm import Agent, Approvals, Approve, Deny, RunSuspended, ToolApprovalRequest
from rxllm.providers.scripted import DialectName
from rxllm.testing import Call, ScriptedServer, Turn

Action = Literal["deny", "edit"]
FIRST = Turn(reasoning=["Needs ", "approval."], calls=[Call("pay", {"to": "Ada", "amount": 120})])
REASON = "The user said no."
EDIT = {"to": "Ada", "amount": 100}
PARAMETERS = {
    "type": "object",
    "properties": {
        "to": {"description": "Who gets the money.", "type": "string"},
        "amount": {"description": "How much, in whole units.", "type": "integer"},
        "currency": {"description": "The currency's ISO code.", "type": "string", "default": "EUR"},
    },
    "required": ["to", "amount"],
    "additionalProperties": False,
}


def second_request(dialect: DialectName, action: Action) -> dict[str, Any]:
    """The exact body each provider must receive after the call was denied, or run with edited arguments."""
    denied = action == "deny"
    amount = 120 if denied else 100
    result = REASON if denied else "paid 100 EUR to Ada"
    arguments = f'{{"to":"Ada","amount":{amount}}}'
    if dialect == "openai":
        return {
            "model": "m",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Pay Ada 120"},
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [
                        {
                            "id": "call_0",
                            "type": "function",
                            "function": {"name": "pay", "arguments": arguments},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "call_0", "content": result},
            ],
            "stream": True,
            "stream_options": {"include_usage": True},
            "tools": [
                {
                    "type": "function",
                    "function": {"name": "pay", "description": "Pay someone.", "parameters": PARAMETERS},
                }
            ],
        }
    if dialect == "responses":
        return {
            "model": "m",
            "input": [
                {"type": "message", "role": "user", "content": "Pay Ada 120"},
                {
                    "type": "reasoning",
                    "id": "rs_0",
                    "summary": [{"type": "summary_text", "text": "Needs approval."}],
                },
                {
                    "type": "function_call",
                    "call_id": "call_0",
                    "name": "pay",
                    "arguments": arguments,
                    "id": "fc_0",
                },
                {"type": "function_call_output", "call_id": "call_0", "output": result},
            ],
            "stream": True,
            "instructions": "Be brief.",
            "tools": [
                {"type": "function", "name": "pay", "description": "Pay someone.", "parameters": PARAMETERS}
            ],
        }
    tool_result: dict[str, Any] = {"type": "tool_result", "tool_use_id": "toolu_0", "content": result}
    if denied:
        tool_result["is_error"] = True
    return {
        "model": "m",
        "max_tokens": 4096,
        "messages": [
            {"role": "user", "content": "Pay Ada 120"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "Needs approval.", "signature": "scripted-sig"},
                    {
                        "type": "tool_use",
                        "id": "toolu_0",
                        "name": "pay",
                        "input": {"to": "Ada", "amount": amount},
                    },
                ],
            },
            {"role": "user", "content": [tool_result]},
        ],
        "stream": True,
        "system": "Be brief.",
        "tools": [{"name": "pay", "description": "Pay someone.", "input_schema": PARAMETERS}],
    }


def decision(action: Action) -> Approve | Deny:
    return Deny(REASON) if action == "deny" else Approve(arguments=EDIT)


@pytest.mark.parametrize("action", ["deny", "edit"])
@pytest.mark.parametrize("dialect", ["openai", "responses", "anthropic"])
async def test_the_second_request_after_a_live_answer(dialect: DialectName, action: Action) -> None:
    async with ScriptedServer([FIRST, Turn(text=["Ok."])], dialect=dialect, model="m") as server:
        async with server.provider() as model:
            control = Approvals()
            recorder = Recorder()
            recorder.subscribe_to(
                Agent(model, preamble="Be brief.", tools=[pay]).stream_prompt(
                    "Pay Ada 120", approvals=control
                )
            )
            (request,) = await recorder.wait_for(ToolApprovalRequest)
            control.answer(request.internal_call_id, decision(action))
            assert await recorder.ended() == "completed"
    assert len(server.requests) == 2
    assert server.requests[1].json == second_request(dialect, action)


@pytest.mark.parametrize("action", ["deny", "edit"])
@pytest.mark.parametrize("dialect", ["openai", "responses", "anthropic"])
async def test_the_second_request_after_a_resume_is_the_live_ones_byte_for_byte(
    dialect: DialectName, action: Action
) -> None:
    bodies: list[bytes] = []
    for live in (True, False):
        async with ScriptedServer([FIRST, Turn(text=["Ok."])], dialect=dialect, model="m") as server:
            async with server.provider() as model:
                agent = Agent(model, preamble="Be brief.", tools=[pay])
                recorder = Recorder()
                if live:
                    control = Approvals()
                    recorder.subscribe_to(agent.stream_prompt("Pay Ada 120", approvals=control))
                    (request,) = await recorder.wait_for(ToolApprovalRequest)
                    control.answer(request.internal_call_id, decision(action))
                else:
                    recorder.subscribe_to(agent.stream_prompt("Pay Ada 120", suspend=True))
                    assert await recorder.ended() == "completed"
                    suspended = recorder.events[-1]
                    assert isinstance(suspended, RunSuspended)
                    state = msgspec.json.decode(
                        msgspec.json.encode(suspended.state), type=type(suspended.state)
                    )
                    (call,) = state.pending
                    recorder = Recorder()
                    recorder.subscribe_to(
                        Agent(model, tools=[pay]).resume(state, {call.internal_call_id: decision(action)})
                    )
                assert await recorder.ended() == "completed"
        bodies.append(server.requests[1].body)
    live_body, resumed_body = bodies
    assert resumed_body == live_body
    assert msgspec.json.decode(resumed_body) == second_request(dialect, action)
