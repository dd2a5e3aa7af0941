"""Runs that survive a restart: ``suspend=True`` ends with ``RunSuspended(state)``; ``resume`` goes on."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import reactivex
from approval_kit import TOOLS, Recorder, pay

from rxllm import (
    Agent,
    ApprovalError,
    Approvals,
    Approve,
    CallState,
    Deny,
    FinalResponse,
    Hook,
    Message,
    RunState,
    RunStateError,
    RunSuspended,
    Skip,
    ToolApprovalRequest,
    ToolCall,
    ToolResult,
    Usage,
    tool,
)
from rxllm.messages import ToolCallPart
from rxllm.operators import agent as agent_operator
from rxllm.testing import Call, ScriptedServer, Turn

TESTS = Path(__file__).parent

PAY_ADA = Call("pay", {"to": "Ada", "amount": 120}, id="call_ada")
PAY_BOB = Call("pay", {"to": "Bob", "amount": 300}, id="call_bob")
LOOKUP = Call("lookup", {"name": "Ada"}, id="call_lookup")
FIRST = Turn(text=["Paying."], calls=[PAY_ADA, LOOKUP, PAY_BOB])
DONE = Turn(text=["Done."])
SETTINGS: dict[str, Any] = {
    "preamble": "Be brief.",
    "temperature": 0.2,
    "max_tokens": 300,
    "tool_choice": "auto",
    "params": {"top_p": 1, "metadata": {"app": "ledger"}},
    "max_turns": 4,
}
USAGE = Usage(input_tokens=10, output_tokens=5, total_tokens=15)


@pytest.fixture
async def server_for() -> AsyncIterator[Any]:
    servers: list[ScriptedServer] = []

    async def start(*turns: Any) -> ScriptedServer:
        server = await ScriptedServer(list(turns)).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.close()


async def suspended(server: ScriptedServer, **options: Any) -> tuple[Recorder, RunState]:
    async with server.provider() as model:
        agent = Agent(model, tools=TOOLS, **{**SETTINGS, **options})
        recorder = Recorder()
        recorder.subscribe_to(agent.stream_prompt("Pay Ada and Bob", suspend=True))
        assert await recorder.ended() == "completed"
    last = recorder.events[-1]
    assert isinstance(last, RunSuspended)
    return recorder, last.state


def decisions_for(state: RunState) -> dict[str, Approve | Deny]:
    ada, bob = state.pending
    return {
        ada.internal_call_id: Approve(arguments={"to": "Ada", "amount": 100}),
        bob.internal_call_id: Deny("No."),
    }


# -- suspending ---------------------------------------------------------------------------------------


async def test_a_suspended_run_completes_with_its_state(server_for: Any) -> None:
    server = await server_for(FIRST, DONE)
    recorder, state = await suspended(server)
    ada, look, bob = recorder.of(ToolCall)
    assert recorder.kinds() == ["TextDelta"] + ["ToolCallDelta"] * 6 + [
        "ToolCall", "ToolCall", "ToolCall", "Final",
        "ToolApprovalRequest", "ToolApprovalRequest", "ToolResult", "RunSuspended",
    ]  # fmt: skip
    assert [r.internal_call_id for r in recorder.of(ToolApprovalRequest)] == [
        ada.internal_call_id,
        bob.internal_call_id,
    ]
    (looked_up,) = recorder.of(ToolResult)
    assert (looked_up.call_id, looked_up.content) == ("call_lookup", "Ada is a mathematician")
    assert recorder.terminals == ["completed"] and recorder.after_terminal == []
    assert len(server.requests) == 1
    assert state == RunState(
        prompt="Pay Ada and Bob",
        history=(Message.user("Pay Ada and Bob"),),
        assistant=Message(
            role="assistant",
            content=(
                *Message.assistant("Paying.").content,
                ToolCallPart(
                    id="call_ada", call_id="call_ada", name="pay", arguments={"to": "Ada", "amount": 120}
                ),
                ToolCallPart(
                    id="call_lookup", call_id="call_lookup", name="lookup", arguments={"name": "Ada"}
                ),
                ToolCallPart(
                    id="call_bob", call_id="call_bob", name="pay", arguments={"to": "Bob", "amount": 300}
                ),
            ),
        ),
        calls=(
            CallState(call=ada, status="pending"),
            CallState(call=look, status="not_needed", result=looked_up),
            CallState(call=bob, status="pending"),
        ),
        turns=1,
        usage=USAGE,
        usage_reported=True,
        usage_complete=True,
        output_retries_left=1,
        preamble="Be brief.",
        max_turns=4,
        temperature=0.2,
        max_tokens=300,
        tool_choice="auto",
        params={"top_p": 1, "metadata": {"app": "ledger"}},
        tool_set=state.tool_set,
        tool_names=("pay", "lookup"),
    )
    assert len(state.tool_set) == 64
    assert state.pending == (ada, bob)


async def test_the_state_round_trips_through_json(server_for: Any) -> None:
    server = await server_for(FIRST, DONE)
    _, state = await suspended(server)
    data = msgspec.json.encode(state)
    assert msgspec.json.decode(data, type=RunState) == state
    assert (
        msgspec.json.decode(msgspec.json.encode(RunSuspended(state=state)), type=RunSuspended).state == state
    )
    decisions = decisions_for(state)
    assert msgspec.json.decode(msgspec.json.encode(decisions), type=dict[str, Approve | Deny]) == decisions


# -- resuming -----------------------------------------------------------------------------------------


async def live_second_request(server_for: Any) -> bytes:
    """The second request of the same run answered live, with the same decisions."""
    server = await server_for(FIRST, DONE)
    async with server.provider() as model:
        agent = Agent(model, tools=TOOLS, **SETTINGS)
        control = Approvals()
        recorder = Recorder()
        recorder.subscribe_to(agent.stream_prompt("Pay Ada and Bob", approvals=control))
        ada, bob = await recorder.wait_for(ToolApprovalRequest, 2)
        control.approve(ada.internal_call_id, {"to": "Ada", "amount": 100})
        control.deny(bob.internal_call_id, "No.")
        assert await recorder.ended() == "completed"
    body: bytes = server.requests[1].body
    return body


async def test_resume_continues_with_the_request_the_run_would_have_sent(server_for: Any) -> None:
    live = await live_second_request(server_for)
    server = await server_for(FIRST, DONE)
    _, state = await suspended(server)
    ada, bob = state.pending
    async with server.provider() as model:
        agent = Agent(model, tools=TOOLS)  # none of the settings: the state holds them
        recorder = Recorder()
        recorder.subscribe_to(agent.resume(state, decisions_for(state)))
        assert await recorder.ended() == "completed"
    assert server.requests[1].body == live
    assert msgspec.json.decode(live)["messages"][1:] == [
        {"role": "user", "content": "Pay Ada and Bob"},
        {
            "role": "assistant",
            "content": "Paying.",
            "tool_calls": [
                {
                    "id": "call_ada",
                    "type": "function",
                    "function": {"name": "pay", "arguments": '{"to":"Ada","amount":100}'},
                },
                {
                    "id": "call_lookup",
                    "type": "function",
                    "function": {"name": "lookup", "arguments": '{"name":"Ada"}'},
                },
                {
                    "id": "call_bob",
                    "type": "function",
                    "function": {"name": "pay", "arguments": '{"to":"Bob","amount":300}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_ada", "content": "paid 100 EUR to Ada"},
        {"role": "tool", "tool_call_id": "call_lookup", "content": "Ada is a mathematician"},
        {"role": "tool", "tool_call_id": "call_bob", "content": "No."},
    ]
    assert recorder.kinds() == ["ToolResult", "ToolResult", "TextDelta", "Final", "FinalResponse"]
    assert [(r.internal_call_id, r.content, r.is_error) for r in recorder.of(ToolResult)] == [
        (ada.internal_call_id, "paid 100 EUR to Ada", False),
        (bob.internal_call_id, "No.", True),
    ]
    final = recorder.events[-1]
    assert isinstance(final, FinalResponse)
    assert (final.turns, final.usage, final.usage_complete) == (2, USAGE + USAGE, True)
    assert [m.role for m in final.history] == ["user", "assistant", "tool", "assistant"]


RESUME_SCRIPT = """
import asyncio, sys
import msgspec
import rxllm
from approval_kit import TOOLS
from rxllm.providers.openai import OpenAIChat

base_url, state_file, decisions_file = sys.argv[1:]
state = msgspec.json.decode(open(state_file, "rb").read(), type=rxllm.RunState)
decisions = msgspec.json.decode(open(decisions_file, "rb").read(), type=dict[str, rxllm.Approve | rxllm.Deny])

async def main() -> None:
    async with OpenAIChat("scripted-model", base_url=base_url, api_key="") as model:
        agent = rxllm.Agent(model, tools=TOOLS)
        async for event in rxllm.aiter(agent.resume(state, decisions)):
            print(msgspec.json.encode(event).decode(), flush=True)

asyncio.run(main())
"""


async def test_a_fresh_process_resumes_the_state_from_json(server_for: Any, tmp_path: Path) -> None:
    live = await live_second_request(server_for)
    server = await server_for(FIRST, DONE)
    _, state = await suspended(server)
    (tmp_path / "state.json").write_bytes(msgspec.json.encode(state))
    (tmp_path / "decisions.json").write_bytes(msgspec.json.encode(decisions_for(state)))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        RESUME_SCRIPT,
        server.base_url,
        str(tmp_path / "state.json"),
        str(tmp_path / "decisions.json"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={"PYTHONPATH": str(TESTS), "PATH": "/usr/bin:/bin"},
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    assert server.requests[1].body == live, "byte for byte the request the live run sent"
    events = [msgspec.json.decode(line) for line in out.decode().splitlines()]
    assert [e["type"] for e in events] == [
        "tool_result",
        "tool_result",
        "text_delta",
        "final",
        "final_response",
    ]
    assert [(e["call_id"], e["content"], e["is_error"]) for e in events[:2]] == [
        ("call_ada", "paid 100 EUR to Ada", False),
        ("call_bob", "No.", True),
    ]
    assert (events[-1]["text"], events[-1]["turns"], events[-1]["usage"]["total_tokens"]) == ("Done.", 2, 30)


# -- resume errors: raised before any request -------------------------------------------------------


async def resume_error(
    server: ScriptedServer, state: RunState, decisions: Any, tools: Any = TOOLS
) -> Exception:
    async with server.provider() as model:
        agent = Agent(model, tools=tools)
        with pytest.raises((ApprovalError, RunStateError, TypeError)) as raised:
            agent.resume(state, decisions)
    assert len(server.requests) == 1, "no request was sent"
    return raised.value


async def test_a_decision_for_a_call_the_state_does_not_hold_pending_fails_first(server_for: Any) -> None:
    server = await server_for(FIRST, DONE)
    _, state = await suspended(server)
    ada, bob = state.pending
    looked_up = state.calls[1].call.internal_call_id
    pending = f"{ada.internal_call_id}, {bob.internal_call_id}"
    error = await resume_error(server, state, {**decisions_for(state), "rx_nobody": Approve()})
    assert isinstance(error, ApprovalError)
    assert str(error) == (
        f"approval of call 'rx_nobody': the run state holds no pending call with this id (pending: {pending})"
    )
    error = await resume_error(server, state, {**decisions_for(state), looked_up: Deny("no")})
    assert isinstance(error, ApprovalError) and error.internal_call_id == looked_up


async def test_a_missing_decision_fails_first(server_for: Any) -> None:
    server = await server_for(FIRST, DONE)
    _, state = await suspended(server)
    ada, bob = state.pending
    error = await resume_error(server, state, {ada.internal_call_id: Approve()})
    assert isinstance(error, ApprovalError)
    assert (
        str(error)
        == f"approval of call {bob.internal_call_id!r}: no decision was given for this pending call of 'pay'"
    )


async def test_an_invalid_edit_or_a_wrong_decision_type_fails_first(server_for: Any) -> None:
    server = await server_for(FIRST, DONE)
    _, state = await suspended(server)
    ada, bob = state.pending
    error = await resume_error(
        server,
        state,
        {ada.internal_call_id: Approve(arguments={"to": "Ada"}), bob.internal_call_id: Approve()},
    )
    assert isinstance(error, ApprovalError)
    assert str(error) == (
        f"approval of call {ada.internal_call_id!r}: the edited arguments do not fit: "
        "invalid arguments for tool 'pay': Object missing required field `amount`"
    )
    error = await resume_error(server, state, {ada.internal_call_id: True, bob.internal_call_id: Approve()})
    assert isinstance(error, TypeError)
    assert str(error) == "a decision is Approve(...) or Deny(reason), not True"


async def test_a_state_from_another_tool_set_fails_first(server_for: Any) -> None:
    server = await server_for(FIRST, DONE)
    _, state = await suspended(server)
    decisions = decisions_for(state)
    error = await resume_error(server, state, decisions, tools=[pay])
    assert isinstance(error, RunStateError)
    assert str(error) == (
        "the run was suspended with the tools ['pay', 'lookup'], this agent has ['pay']: "
        "resume it with an agent that has the same tools"
    )

    @tool(name="lookup")
    def other_lookup(name: str, exact: bool = False) -> str:
        """Look a person up."""
        return name

    error = await resume_error(server, state, decisions, tools=[pay, other_lookup])
    assert isinstance(error, RunStateError)
    assert str(error) == (
        "the run was suspended with tools of the same names ['pay', 'lookup'] but another description or "
        "schema (or another output type): resume it with an agent that has the same tools"
    )
    async with server.provider() as model:
        with pytest.raises(RunStateError, match="another output type"):
            Agent(model, tools=TOOLS, output=dict[str, int]).resume(state, decisions)
    old = msgspec.structs.replace(state, version=2)
    error = await resume_error(server, old, decisions)
    assert str(error) == "the run state has format version 2; this rxllm reads version 1"


# -- resumed runs go on as runs ---------------------------------------------------------------------


async def test_a_resumed_run_may_suspend_again_and_counts_the_whole_run(server_for: Any) -> None:
    again = Turn(calls=[Call("pay", {"to": "Cy", "amount": 999}, id="call_cy")])
    server = await server_for(FIRST, again, DONE)
    _, state = await suspended(server)
    async with server.provider() as model:
        agent = Agent(model, tools=TOOLS)
        recorder = Recorder()
        recorder.subscribe_to(agent.resume(state, decisions_for(state), suspend=True))
        assert await recorder.ended() == "completed"
        last = recorder.events[-1]
        assert isinstance(last, RunSuspended)
        second = last.state
        assert (second.turns, second.usage, second.max_turns, second.preamble) == (
            2,
            USAGE + USAGE,
            4,
            "Be brief.",
        )
        assert [c.call.call_id for c in second.calls] == ["call_cy"]
        assert [m.role for m in second.history] == ["user", "assistant", "tool"]
        resumed = Recorder()
        resumed.subscribe_to(agent.resume(second, {second.pending[0].internal_call_id: Deny("Enough.")}))
        assert await resumed.ended() == "completed"
    final = resumed.events[-1]
    assert isinstance(final, FinalResponse)
    assert (final.turns, final.usage.total_tokens, final.text) == (3, 45, "Done.")
    assert len(server.requests) == 3
    assert server.requests[2].json["messages"][-1] == {
        "role": "tool",
        "tool_call_id": "call_cy",
        "content": "Enough.",
    }


async def test_hooks_hear_the_resumed_run(server_for: Any) -> None:
    heard: list[str] = []

    class Listen(Hook):
        async def on_completion_call(self, prompt: str, history: Any) -> None:
            heard.append(f"request for {prompt!r} with {len(history)} messages")

        async def on_tool_result(
            self, name: str, call_id: str, internal_call_id: str, arguments: Any, result: str
        ) -> None:
            heard.append(f"{call_id} {arguments} -> {result}")

    server = await server_for(FIRST, DONE)
    _, state = await suspended(server)
    async with server.provider() as model:
        recorder = Recorder()
        recorder.subscribe_to(Agent(model, tools=TOOLS).resume(state, decisions_for(state), hook=Listen()))
        assert await recorder.ended() == "completed"
    # The two calls settle concurrently (a denial needs no tool slot): their hooks in either order.
    assert sorted(heard[:2]) == [
        "call_ada {'to': 'Ada', 'amount': 100} -> paid 100 EUR to Ada",
        "call_bob {'to': 'Bob', 'amount': 300} -> No.",
    ]
    assert heard[2:] == ["request for 'Pay Ada and Bob' with 3 messages"]


async def test_a_call_a_hook_skipped_is_recorded_as_skipped(server_for: Any) -> None:
    class NoBob(Hook):
        async def on_tool_call(
            self, name: str, call_id: str, internal_call_id: str, arguments: Any
        ) -> Skip | None:
            return Skip("Bob is blocked.") if call_id == "call_bob" else None

    server = await server_for(FIRST, DONE)
    async with server.provider() as model:
        recorder = Recorder()
        recorder.subscribe_to(Agent(model, tools=TOOLS).stream_prompt("Pay", suspend=True, hook=NoBob()))
        assert await recorder.ended() == "completed"
    last = recorder.events[-1]
    assert isinstance(last, RunSuspended)
    assert [(c.call.call_id, c.status) for c in last.state.calls] == [
        ("call_ada", "pending"),
        ("call_lookup", "not_needed"),
        ("call_bob", "skipped"),
    ]
    assert [r.content for r in recorder.of(ToolResult)] == ["Ada is a mathematician", "Bob is blocked."]
    assert [r.call_id for r in recorder.of(ToolApprovalRequest)] == ["call_ada"]


async def test_the_operator_form_suspends_a_prompts_run_and_answers_the_next(server_for: Any) -> None:
    server = await server_for(FIRST, Turn(text=["Hello."]))
    async with server.provider() as model:
        recorder = Recorder()
        prompts = reactivex.from_iterable(["Pay them", "Hello"])
        recorder.subscribe_to(prompts.pipe(agent_operator(model, tools=TOOLS, suspend=True)))
        assert await recorder.ended() == "completed"
    assert len(recorder.of(RunSuspended)) == 1
    assert [f.text for f in recorder.of(FinalResponse)] == ["Hello."]
    # The next prompt starts from the history before the suspended run: its exchange is in the state.
    assert server.requests[1].json["messages"] == [{"role": "user", "content": "Hello"}]
