"""rxllm.notebook shows a call waiting for approval, at once, and then what was decided."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from approval_kit import lookup, pay
from IPython.core.displaypub import CapturingDisplayPublisher
from IPython.core.interactiveshell import InteractiveShell
from reactivex import Observable
from reactivex import operators as ops

from rxllm import Agent, Approvals, ToolApprovalRequest
from rxllm.notebook import display_stream
from rxllm.testing import Call, ScriptedServer, Turn

END = "[2 turns · input 20 · output 10 · total 30 tokens]"


@pytest.fixture
def published() -> Iterator[list[dict[str, Any]]]:
    """What IPython's display machinery publishes, captured as a kernel would send it."""
    shell = InteractiveShell.instance()
    before = shell.display_pub
    capture = CapturingDisplayPublisher()  # type: ignore[no-untyped-call]
    shell.display_pub = capture
    yield capture.outputs
    shell.display_pub = before


def script() -> list[Turn]:
    calls = [Call("pay", {"to": "Ada", "amount": 120}, id="call_pay"), Call("lookup", {"name": "Ada"})]
    return [Turn(calls=calls), Turn(text=["Done."])]


def signalling(run: Observable[Any], asked: asyncio.Event) -> Observable[Any]:
    """``run``, setting ``asked`` as its ``ToolApprovalRequest`` passes on to the view."""
    return run.pipe(
        ops.do_action(on_next=lambda event: asked.set() if isinstance(event, ToolApprovalRequest) else None)
    )


def plain(output: dict[str, Any]) -> str:
    return str(output["data"]["text/plain"])


async def test_a_waiting_call_shows_at_once_and_its_result_says_what_was_decided(
    published: list[dict[str, Any]],
) -> None:
    async with ScriptedServer(script()) as server, server.provider() as model:
        control, asked = Approvals(), asyncio.Event()
        run = Agent(model, tools=[pay, lookup]).stream_prompt("Pay Ada.", approvals=control)
        # min_interval=60: every update but the first and the last is held back, the question's is not.
        view = display_stream(signalling(run, asked), min_interval=60, approvals=control)
        await asyncio.wait_for(asked.wait(), 10)
        (request,) = control.pending
        waiting = published[-1]
        control.approve(request.internal_call_id, {"to": "Ada", "amount": 90})
        await view
    key = request.internal_call_id
    assert [output["update"] for output in published] == [False, True, True]
    assert plain(waiting) == (
        f'[tool call] pay {{"to":"Ada","amount":120}} ⏸ waiting for approval: {key}\n'
        '[tool call] lookup {"name":"Ada"}\n[waiting for approval…]'
    )
    assert (
        '<div class="rxllm-approval">🔧 '
        "<code>pay({&quot;to&quot;:&quot;Ada&quot;,&quot;amount&quot;:120})</code> "
        '<span style="color: #a60">⏸ waiting for approval: '
        f"<code>approvals.approve(&#x27;{key}&#x27;)</code> "
        f"or <code>approvals.deny(&#x27;{key}&#x27;, reason)</code></span></div>"
    ) in waiting["data"]["text/html"]
    assert plain(published[-1]) == (
        '[tool call] pay {"to":"Ada","amount":120} → paid 90 EUR to Ada '
        '(approved with {"to":"Ada","amount":90})\n'
        '[tool call] lookup {"name":"Ada"} → Ada is a mathematician\n'
        f"Done.\n{END}"
    )
    assert (
        '→ <span>paid 90 EUR to Ada</span> <span style="opacity: 0.6">(approved with {&quot;to'
        in (published[-1]["data"]["text/html"])
    )
    assert server.requests[1].json["messages"][2]["content"] == "paid 90 EUR to Ada"


@pytest.mark.parametrize(
    ("answer", "shown"),
    [
        ("approve", "→ paid 120 EUR to Ada (approved)"),
        ("deny", "→ error: Not this month. (denied)"),
    ],
)
async def test_approved_and_denied_calls_say_so(
    published: list[dict[str, Any]], answer: str, shown: str
) -> None:
    async with ScriptedServer(script()) as server, server.provider() as model:
        control, asked = Approvals(), asyncio.Event()
        run = Agent(model, tools=[pay, lookup]).stream_prompt("Pay Ada.", approvals=control)
        view = display_stream(signalling(run, asked), min_interval=0, approvals=control)
        await asyncio.wait_for(asked.wait(), 10)
        (request,) = control.pending
        if answer == "approve":
            control.approve(request.internal_call_id)
        else:
            control.deny(request.internal_call_id, "Not this month.")
        await view
    assert plain(published[-1]).startswith(f'[tool call] pay {{"to":"Ada","amount":120}} {shown}\n')


async def test_without_the_control_the_result_shows_as_any_result(published: list[dict[str, Any]]) -> None:
    async with ScriptedServer(script()) as server, server.provider() as model:
        control, asked = Approvals(), asyncio.Event()
        run = Agent(model, tools=[pay, lookup]).stream_prompt("Pay Ada.", approvals=control)
        view = display_stream(signalling(run, asked), min_interval=0)
        await asyncio.wait_for(asked.wait(), 10)
        assert "⏸ waiting for approval: " in plain(published[-1])
        control.deny(control.pending[0].internal_call_id, "No.")
        await view
    assert plain(published[-1]).startswith('[tool call] pay {"to":"Ada","amount":120} → error: No.\n')


async def test_dispose_while_waiting_says_the_call_was_not_answered(published: list[dict[str, Any]]) -> None:
    async with ScriptedServer(script()) as server, server.provider() as model:
        control, asked = Approvals(), asyncio.Event()
        run = Agent(model, tools=[pay, lookup]).stream_prompt("Pay Ada.", approvals=control)
        view = display_stream(signalling(run, asked), min_interval=0, approvals=control)
        await asyncio.wait_for(asked.wait(), 10)
        view.dispose()
        await view
    assert control.pending == ()
    assert plain(published[-1]) == (
        '[tool call] pay {"to":"Ada","amount":120} (not answered: the run ended)\n'
        '[tool call] lookup {"name":"Ada"}\n[cancelled]'
    )
    assert len(server.requests) == 1


async def test_a_suspended_run_names_the_calls_that_wait(published: list[dict[str, Any]]) -> None:
    async with ScriptedServer(script()) as server, server.provider() as model:
        events = await display_stream(
            Agent(model, tools=[pay, lookup]).stream_prompt("Pay Ada.", suspend=True), min_interval=0
        )
    (request,) = [event for event in events if isinstance(event, ToolApprovalRequest)]
    assert plain(published[-1]) == (
        f'[tool call] pay {{"to":"Ada","amount":120}} ⏸ waiting for approval: {request.internal_call_id}\n'
        '[tool call] lookup {"name":"Ada"} → Ada is a mathematician\n'
        f"[suspended: waiting for approval of pay ({request.internal_call_id})]\n"
        "[1 turn · input 10 · output 5 · total 15 tokens]"
    )
