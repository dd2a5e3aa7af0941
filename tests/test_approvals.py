"""Live approval of tool calls: an agent run against a loopback server, answered through ``Approvals``."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
import reactivex
from approval_kit import Recorder, lookup, pay

from rxllm import (
    Agent,
    ApprovalError,
    Approvals,
    Approve,
    CallbackError,
    Deny,
    FinalResponse,
    Hook,
    Message,
    PromptCancelledError,
    Skip,
    Terminate,
    Timeouts,
    ToolApprovalRequest,
    ToolCall,
    ToolResult,
    tool,
)
from rxllm.messages import ToolCallPart, ToolResultPart
from rxllm.operators import agent as agent_operator
from rxllm.testing import Call, ScriptedServer, Turn

PAY_ADA = Call("pay", {"to": "Ada", "amount": 120}, id="call_pay")
PAID = Turn(text=["Paid."])


@pytest.fixture
async def serve() -> AsyncIterator[Any]:
    servers: list[ScriptedServer] = []

    async def start(*turns: Any, **options: Any) -> ScriptedServer:
        server = await ScriptedServer(list(turns), **options).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.close()


@pytest.fixture
async def agent_for(serve: Any) -> AsyncIterator[Any]:
    models: list[Any] = []

    async def make(*turns: Any, tools: Any = (pay, lookup), provider: Any = None, **options: Any) -> Any:
        server = await serve(*turns)
        model = server.provider(**(provider or {}))
        models.append(model)
        return Agent(model, tools=tools, **options), server

    yield make
    for model in models:
        await model.aclose()


def request_of(call: ToolCall) -> ToolApprovalRequest:
    return ToolApprovalRequest(
        internal_call_id=call.internal_call_id, call_id=call.call_id, name=call.name, arguments=call.arguments
    )


# -- the tool's side --------------------------------------------------------------------------


def test_a_tool_says_whether_a_call_needs_approval() -> None:
    @tool(needs_approval=True)
    def delete(path: str) -> str:
        """Delete a file."""
        return path

    assert delete.needs_approval({"path": "/tmp/x"}) is True
    assert lookup.needs_approval({"name": "Ada"}) is False
    assert pay.needs_approval({"to": "Ada", "amount": 120}) is True
    assert pay.needs_approval({"to": "Ada", "amount": 100}) is False
    assert pay.needs_approval('{"to": "Ada", "amount": 101}') is True


def test_the_predicate_gets_the_converted_arguments_with_the_defaults() -> None:
    seen: list[dict[str, Any]] = []

    def decide(arguments: dict[str, Any]) -> bool:
        seen.append(arguments)
        return False

    @tool(needs_approval=decide)
    def transfer(to: str, amount: int, currency: str = "EUR") -> str:
        """Transfer money."""
        return to

    assert transfer.needs_approval({"to": "Ada", "amount": 5}) is False
    assert seen == [{"to": "Ada", "amount": 5, "currency": "EUR"}]
    with pytest.raises(Exception, match=r"invalid arguments for tool 'transfer': Expected `int`, got `str`"):
        transfer.needs_approval({"to": "Ada", "amount": "lots"})


def test_needs_approval_must_be_a_bool_or_a_function() -> None:
    def f(x: int) -> int:
        """F."""
        return x

    with pytest.raises(
        TypeError, match="needs_approval is True, False or a function of the arguments, not 'yes'"
    ):
        tool(needs_approval="yes")(f)  # type: ignore[call-overload]


# -- approve, deny, edit ------------------------------------------------------------------------


async def test_approve_runs_the_call_and_the_run_goes_on(agent_for: Any) -> None:
    agent, server = await agent_for(Turn(calls=[PAY_ADA]), PAID)
    control = Approvals()
    recorder = Recorder()
    recorder.subscribe_to(agent.stream_prompt("Pay Ada 120", approvals=control))
    (request,) = await recorder.wait_for(ToolApprovalRequest)
    (call,) = recorder.of(ToolCall)
    assert request == request_of(call)
    assert request == ToolApprovalRequest(
        internal_call_id=call.internal_call_id,
        call_id="call_pay",
        name="pay",
        arguments={"to": "Ada", "amount": 120},
    )
    assert control.pending == (request,)
    assert recorder.kinds()[-2:] == ["Final", "ToolApprovalRequest"], "the request follows the turn's end"
    assert len(server.requests) == 1, "nothing else is requested while the call waits"

    control.approve(request.internal_call_id)
    assert await recorder.ended() == "completed"
    assert recorder.kinds() == [
        "ToolCallDelta", "ToolCallDelta", "ToolCall", "Final", "ToolApprovalRequest",
        "ToolResult", "TextDelta", "Final", "FinalResponse",
    ]  # fmt: skip
    assert recorder.of(ToolResult) == [
        ToolResult(
            id="call_pay",
            call_id="call_pay",
            internal_call_id=call.internal_call_id,
            name="pay",
            content="paid 120 EUR to Ada",
        )
    ]
    assert server.requests[1].json["messages"][1:] == [
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "call_pay",
                    "type": "function",
                    "function": {"name": "pay", "arguments": '{"to":"Ada","amount":120}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_pay", "content": "paid 120 EUR to Ada"},
    ]
    assert not control.pending, "answered: nothing waits"
    assert control.decision(request.internal_call_id) == Approve()
    assert recorder.terminals == ["completed"] and recorder.after_terminal == []


async def test_deny_is_the_calls_error_result_and_the_tool_never_runs(agent_for: Any) -> None:
    ran: list[dict[str, Any]] = []

    @tool(name="pay", needs_approval=True)
    def spy(to: str, amount: int) -> str:
        """Pay someone."""
        ran.append({"to": to, "amount": amount})
        return "paid"

    agent, server = await agent_for(Turn(calls=[PAY_ADA]), PAID, tools=[spy])
    control = Approvals()
    recorder = Recorder()
    recorder.subscribe_to(agent.stream_prompt("Pay Ada 120", approvals=control))
    (request,) = await recorder.wait_for(ToolApprovalRequest)
    control.deny(request.internal_call_id, "The user declined: too much.")
    assert await recorder.ended() == "completed"
    (result,) = recorder.of(ToolResult)
    assert (result.content, result.is_error) == ("The user declined: too much.", True)
    assert ran == []
    assert server.requests[1].json["messages"][-1] == {
        "role": "tool",
        "tool_call_id": "call_pay",
        "content": "The user declined: too much.",
    }
    final = recorder.events[-1]
    assert isinstance(final, FinalResponse)
    assert final.history[-2] == Message(
        role="tool",
        content=(
            ToolResultPart(
                call_id="call_pay", name="pay", content="The user declined: too much.", is_error=True
            ),
        ),
    )
    assert control.decision(request.internal_call_id) == Deny("The user declined: too much.")


async def test_an_edit_runs_the_call_with_the_new_arguments_and_the_history_says_so(agent_for: Any) -> None:
    heard: list[tuple[Any, str]] = []

    class Listen(Hook):
        async def on_tool_result(
            self, name: str, call_id: str, internal_call_id: str, arguments: Any, result: str
        ) -> None:
            heard.append((arguments, result))

    agent, server = await agent_for(Turn(calls=[PAY_ADA]), PAID)
    control = Approvals()
    recorder = Recorder()
    recorder.subscribe_to(agent.stream_prompt("Pay Ada 120", approvals=control, hook=Listen()))
    (request,) = await recorder.wait_for(ToolApprovalRequest)
    control.approve(request.internal_call_id, {"to": "Ada", "amount": 100, "currency": "GBP"})
    assert await recorder.ended() == "completed"
    (result,) = recorder.of(ToolResult)
    assert (result.content, result.is_error) == ("paid 100 GBP to Ada", False)
    assert heard == [({"to": "Ada", "amount": 100, "currency": "GBP"}, "paid 100 GBP to Ada")]
    assert server.requests[1].json["messages"][1]["tool_calls"][0]["function"] == {
        "name": "pay",
        "arguments": '{"to":"Ada","amount":100,"currency":"GBP"}',
    }
    final = recorder.events[-1]
    assert isinstance(final, FinalResponse)
    assert final.history[1] == Message(
        role="assistant",
        content=(
            ToolCallPart(
                id="call_pay",
                call_id="call_pay",
                name="pay",
                arguments={"to": "Ada", "amount": 100, "currency": "GBP"},
            ),
        ),
    )
    (call,) = recorder.of(ToolCall)
    assert call.arguments == {"to": "Ada", "amount": 120}, "the ToolCall event stays what the model sent"


async def test_an_invalid_edit_is_an_error_to_the_caller_and_the_call_still_waits(agent_for: Any) -> None:
    agent, server = await agent_for(Turn(calls=[PAY_ADA]), PAID)
    control = Approvals()
    recorder = Recorder()
    recorder.subscribe_to(agent.stream_prompt("Pay Ada 120", approvals=control))
    (request,) = await recorder.wait_for(ToolApprovalRequest)
    rid = request.internal_call_id
    with pytest.raises(ApprovalError) as raised:
        control.approve(rid, {"to": "Ada", "amount": "lots"})
    assert str(raised.value) == (
        f"approval of call {rid!r}: the edited arguments do not fit: invalid arguments for tool 'pay': "
        "Expected `int`, got `str` - at `$.amount`; the call still waits for an answer"
    )
    assert raised.value.internal_call_id == rid
    assert type(raised.value.__cause__).__name__ == "ToolArgumentsError"
    with pytest.raises(ApprovalError, match=r"Object contains unknown field `tip`"):
        control.approve(rid, {"to": "Ada", "amount": 1, "tip": 5})
    assert control.pending == (request,)
    assert recorder.terminals == [] and len(server.requests) == 1
    control.approve(rid, {"to": "Ada", "amount": 99})
    assert await recorder.ended() == "completed"
    assert [r.content for r in recorder.of(ToolResult)] == ["paid 99 EUR to Ada"]
    assert len(server.requests) == 2


# -- which calls ask ------------------------------------------------------------------------------


async def test_the_predicate_decides_per_call_and_calls_that_cannot_run_never_ask(agent_for: Any) -> None:
    small = Call("pay", {"to": "Ada", "amount": 50}, id="call_small")
    big = Call("pay", {"to": "Bob", "amount": 500}, id="call_big")
    broken = Call("pay", {"to": "Cy", "amount": "lots"}, id="call_broken")
    unknown = Call("launch", {"amount": 1000}, id="call_unknown")
    wrong = Call("wire", {"iban": 12}, id="call_wrong")

    @tool(needs_approval=True)
    def wire(iban: str) -> str:
        """Wire money."""
        return iban

    agent, server = await agent_for(Turn(calls=[small, big, broken, unknown, wrong]), PAID, tools=[pay, wire])
    control = Approvals()
    recorder = Recorder()
    recorder.subscribe_to(agent.stream_prompt("Pay them", approvals=control))
    (request,) = await recorder.wait_for(ToolApprovalRequest)
    assert (request.call_id, request.arguments) == ("call_big", {"to": "Bob", "amount": 500})
    control.approve(request.internal_call_id)
    assert await recorder.ended() == "completed"
    assert [(r.call_id, r.content, r.is_error) for r in recorder.of(ToolResult)] == [
        ("call_small", "paid 50 EUR to Ada", False),
        ("call_big", "paid 500 EUR to Bob", False),
        ("call_broken", "invalid arguments for tool 'pay': Expected `int`, got `str` - at `$.amount`", True),
        ("call_unknown", "unknown tool 'launch'; the tools are: pay, wire", True),
        ("call_wrong", "invalid arguments for tool 'wire': Expected `str`, got `int` - at `$.iban`", True),
    ]


async def test_a_predicate_that_raises_ends_the_run_with_callback_error(agent_for: Any) -> None:
    @tool(name="pay", needs_approval=lambda arguments: arguments["missing"] > 1)
    def careless(to: str, amount: int) -> str:
        """Pay."""
        return "paid"

    agent, server = await agent_for(Turn(calls=[PAY_ADA]), PAID, tools=[careless])
    recorder = Recorder()
    recorder.subscribe_to(agent.stream_prompt("Pay", approvals=Approvals()))
    error = await recorder.ended()
    assert isinstance(error, CallbackError)
    assert str(error) == "pay.needs_approval raised KeyError: 'missing'"
    assert error.usage is not None and error.usage.total_tokens == 15, "the turn's usage is charged"
    assert len(server.requests) == 1


async def test_a_call_that_needs_approval_without_a_control_is_a_typed_error(agent_for: Any) -> None:
    agent, server = await agent_for(Turn(calls=[PAY_ADA, Call("lookup", {"name": "Ada"})]), PAID)
    recorder = Recorder()
    recorder.subscribe_to(agent.stream_prompt("Pay"))
    error = await recorder.ended()
    (call, _) = recorder.of(ToolCall)
    assert isinstance(error, ApprovalError)
    assert str(error) == (
        f"approval of call {call.internal_call_id!r}: tool 'pay' needs approval, but the run was given "
        "neither approvals=Approvals() nor suspend=True"
    )
    assert recorder.of(ToolResult) == [], "no tool of the turn ran"
    assert len(server.requests) == 1


def test_a_run_takes_approvals_or_suspend_not_both() -> None:
    with pytest.raises(ValueError, match="give a run approvals= to wait for answers, or suspend=True"):
        agent_operator(object(), approvals=Approvals(), suspend=True)  # type: ignore[arg-type]


# -- concurrency and call order ------------------------------------------------------------------


async def test_a_call_without_approval_runs_while_the_other_waits_and_results_keep_call_order(
    agent_for: Any,
) -> None:
    looked_up = asyncio.Event()

    @tool(name="lookup")
    async def signalling(name: str) -> str:
        """Look up."""
        looked_up.set()
        return f"{name} is known"

    script = Turn(calls=[PAY_ADA, Call("lookup", {"name": "Ada"}, id="call_lookup")])
    agent, server = await agent_for(script, PAID, tools=[pay, signalling], tool_concurrency=1)
    control = Approvals()
    recorder = Recorder()
    recorder.subscribe_to(agent.stream_prompt("Pay Ada", approvals=control))
    (request,) = await recorder.wait_for(ToolApprovalRequest)
    # With one slot, the lookup runs at once: the waiting call holds none.
    await asyncio.wait_for(looked_up.wait(), 5)
    assert recorder.of(ToolResult) == [], "its result waits for the call before it (call order)"
    control.approve(request.internal_call_id)
    assert await recorder.ended() == "completed"
    assert [r.call_id for r in recorder.of(ToolResult)] == ["call_pay", "call_lookup"]
    assert [m["tool_call_id"] for m in server.requests[1].json["messages"][2:]] == ["call_pay", "call_lookup"]
    assert recorder.terminals == ["completed"] and recorder.after_terminal == []


async def test_tool_concurrency_bounds_approved_and_unapproved_tools_alike(agent_for: Any) -> None:
    running = 0
    most = 0
    started: list[str] = []
    gate = asyncio.Event()
    two_started = asyncio.Event()

    def counted(label: str) -> Any:
        async def body(amount: int) -> str:
            nonlocal running, most
            running += 1
            most = max(most, running)
            started.append(f"{label}:{amount}")
            if len(started) == 2:
                two_started.set()
            await gate.wait()
            running -= 1
            return f"{label} {amount}"

        body.__doc__ = "A tool."
        return body

    ask = tool(name="ask", needs_approval=True)(counted("ask"))
    free = tool(name="free")(counted("free"))
    calls = [Call("free", {"amount": 1}), Call("ask", {"amount": 2}), Call("free", {"amount": 3})]
    agent, server = await agent_for(Turn(calls=calls), PAID, tools=[ask, free], tool_concurrency=2)
    control = Approvals()
    recorder = Recorder()
    recorder.subscribe_to(agent.stream_prompt("Go", approvals=control))
    (request,) = await recorder.wait_for(ToolApprovalRequest)
    await asyncio.wait_for(two_started.wait(), 5)
    control.approve(request.internal_call_id)
    for _ in range(10):  # loop iterations (not time): the answer is delivered, the call wakes and waits
        await asyncio.sleep(0)
    assert started == ["free:1", "free:3"], (
        "the two free calls hold both slots; the approved one waits for one"
    )
    gate.set()
    assert await recorder.ended() == "completed"
    assert most == 2
    assert sorted(started) == ["ask:2", "free:1", "free:3"]
    assert [r.content for r in recorder.of(ToolResult)] == ["free 1", "ask 2", "free 3"]


# -- hooks ------------------------------------------------------------------------------------------


async def test_on_tool_call_runs_before_the_request_and_a_skip_sends_none(agent_for: Any) -> None:
    order: list[str] = []

    class Guard(Hook):
        async def on_tool_call(
            self, name: str, call_id: str, internal_call_id: str, arguments: Any
        ) -> Skip | None:
            order.append(f"on_tool_call {call_id}")
            return Skip("Bob is blocked.") if arguments.get("to") == "Bob" else None

        async def on_tool_result(
            self, name: str, call_id: str, internal_call_id: str, arguments: Any, result: str
        ) -> None:
            order.append(f"on_tool_result {call_id}: {result}")

    bob = Call("pay", {"to": "Bob", "amount": 300}, id="call_bob")
    agent, server = await agent_for(Turn(calls=[bob, PAY_ADA]), PAID)
    control = Approvals()

    def note(event: Any) -> None:
        if isinstance(event, ToolApprovalRequest | ToolResult):
            order.append(f"{type(event).__name__} {event.call_id}")

    recorder = Recorder(note)
    recorder.subscribe_to(agent.stream_prompt("Pay", approvals=control, hook=Guard()))
    (request,) = await recorder.wait_for(ToolApprovalRequest)
    assert request.call_id == "call_pay"
    control.deny(request.internal_call_id, "Not today.")
    assert await recorder.ended() == "completed"
    assert order == [
        "on_tool_call call_bob",
        "on_tool_call call_pay",
        "ToolApprovalRequest call_pay",
        "on_tool_result call_bob: Bob is blocked.",
        "ToolResult call_bob",
        "on_tool_result call_pay: Not today.",
        "ToolResult call_pay",
    ]
    assert [(r.content, r.is_error) for r in recorder.of(ToolResult)] == [
        ("Bob is blocked.", False),
        ("Not today.", True),
    ]


async def test_a_hook_that_skips_every_asking_call_leaves_nothing_to_wait_for(agent_for: Any) -> None:
    class Never(Hook):
        async def on_tool_call(
            self, name: str, call_id: str, internal_call_id: str, arguments: Any
        ) -> Skip | None:
            return Skip("Payments are off.") if name == "pay" else None

    agent, server = await agent_for(Turn(calls=[PAY_ADA]), PAID)
    recorder = Recorder()
    recorder.subscribe_to(agent.stream_prompt("Pay", hook=Never()))  # no control: none is needed
    assert await recorder.ended() == "completed"
    assert recorder.of(ToolApprovalRequest) == []
    assert [r.content for r in recorder.of(ToolResult)] == ["Payments are off."]


# -- waiting: dispose, time limits, threads ------------------------------------------------------


async def test_dispose_while_waiting_cancels_and_withdraws_the_call(agent_for: Any) -> None:
    cancelled = asyncio.Event()
    started = asyncio.Event()

    @tool(name="lookup")
    async def slow(name: str) -> str:
        """Look up, slowly."""
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return name

    script = Turn(calls=[PAY_ADA, Call("lookup", {"name": "Ada"})])
    agent, server = await agent_for(script, PAID, tools=[pay, slow])
    control = Approvals()
    recorder = Recorder()
    subscription = recorder.subscribe_to(agent.stream_prompt("Pay", approvals=control))
    (request,) = await recorder.wait_for(ToolApprovalRequest)
    await asyncio.wait_for(started.wait(), 5)
    subscription.dispose()
    assert control.pending == (), "the control holds no waiter for a disposed run"
    await asyncio.wait_for(cancelled.wait(), 5)  # the running tool was cancelled
    with pytest.raises(ApprovalError) as raised:
        control.approve(request.internal_call_id)
    assert str(raised.value) == (
        f"approval of call {request.internal_call_id!r}: its run was disposed before it was answered"
    )
    assert len(server.requests) == 1, "no further request"
    assert recorder.terminals == []


async def test_no_time_limit_counts_while_a_call_waits(agent_for: Any) -> None:
    @tool(name="pay", needs_approval=True, timeout=0.2)
    async def quick(to: str, amount: int) -> str:
        """Pay quickly."""
        return "paid"

    limits = Timeouts(first_event=0.2, idle=0.2, total=0.3)
    agent, server = await agent_for(Turn(calls=[PAY_ADA]), PAID, tools=[quick], provider={"timeouts": limits})
    control = Approvals()
    recorder = Recorder()
    recorder.subscribe_to(agent.stream_prompt("Pay", approvals=control))
    (request,) = await recorder.wait_for(ToolApprovalRequest)
    await asyncio.sleep(0.8)  # a person takes their time: longer than every limit above
    assert recorder.terminals == []
    control.approve(request.internal_call_id)
    assert await recorder.ended() == "completed"
    assert [r.content for r in recorder.of(ToolResult)] == ["paid"]


async def test_an_answer_from_another_thread_is_delivered_on_the_loop(agent_for: Any) -> None:
    loop = asyncio.get_running_loop()
    where: list[tuple[bool, int]] = []

    @tool(name="pay", needs_approval=True)
    async def located(to: str, amount: int) -> str:
        """Pay, noting where it runs."""
        where.append((asyncio.get_running_loop() is loop, threading.get_ident()))
        return "paid"

    agent, server = await agent_for(Turn(calls=[PAY_ADA]), PAID, tools=[located])
    control = Approvals()
    recorder = Recorder()
    recorder.subscribe_to(agent.stream_prompt("Pay", approvals=control))
    (request,) = await recorder.wait_for(ToolApprovalRequest)
    failures: list[Exception] = []

    def answer() -> None:
        try:
            control.approve(request.internal_call_id)
        except Exception as exc:  # noqa: BLE001 - checked below
            failures.append(exc)

    # Debug mode makes the loop refuse calls from other threads that are not thread-safe; and the
    # loop sits idle in its selector while the answer comes, so only a real wake-up resumes it.
    loop.set_debug(True)
    try:
        answered = threading.Thread(target=answer)
        answered.start()
        assert await recorder.ended(timeout=5) == "completed"
        answered.join()
    finally:
        loop.set_debug(False)
    assert failures == []
    assert where == [(True, threading.get_ident())], "the tool ran on the loop, not the answering thread"
    assert set(recorder.threads) == {threading.get_ident()}, "every event on the loop's thread"


async def test_an_answer_from_inside_on_next_is_delivered_later_on_the_loop(agent_for: Any) -> None:
    control = Approvals()
    agent, server = await agent_for(Turn(calls=[PAY_ADA]), PAID)
    returned: list[int] = []

    def answer(event: Any) -> None:
        if isinstance(event, ToolApprovalRequest):
            control.approve(event.internal_call_id)
            returned.append(len(recorder.events))

    recorder = Recorder(answer)
    recorder.subscribe_to(agent.stream_prompt("Pay", approvals=control))
    assert await recorder.ended() == "completed"
    (at,) = returned
    assert recorder.kinds()[at - 1 :] == [
        "ToolApprovalRequest",
        "ToolResult",
        "TextDelta",
        "Final",
        "FinalResponse",
    ]


# -- wrong answers ---------------------------------------------------------------------------------


async def test_an_unknown_or_twice_answered_call_is_a_typed_error_and_the_run_goes_on(agent_for: Any) -> None:
    agent, server = await agent_for(Turn(calls=[PAY_ADA]), PAID)
    control = Approvals()
    recorder = Recorder()
    recorder.subscribe_to(agent.stream_prompt("Pay", approvals=control))
    (request,) = await recorder.wait_for(ToolApprovalRequest)
    with pytest.raises(ApprovalError) as unknown:
        control.deny("rx_nobody", "no")
    assert str(unknown.value) == "approval of call 'rx_nobody': no call with this id waits for approval"
    assert control.pending == (request,)
    control.approve(request.internal_call_id)
    with pytest.raises(ApprovalError) as twice:
        control.deny(request.internal_call_id, "changed my mind")
    assert str(twice.value) == f"approval of call {request.internal_call_id!r}: it was already approved"
    assert await recorder.ended() == "completed"
    assert [r.content for r in recorder.of(ToolResult)] == ["paid 120 EUR to Ada"]
    with pytest.raises(ApprovalError, match="it was already approved"):
        control.approve(request.internal_call_id)


async def test_an_answer_after_the_run_failed_is_a_typed_error(agent_for: Any) -> None:
    class Stop(Hook):
        async def on_tool_call(
            self, name: str, call_id: str, internal_call_id: str, arguments: Any
        ) -> Terminate | None:
            return Terminate("lookups are forbidden") if name == "lookup" else None

    agent, server = await agent_for(Turn(calls=[PAY_ADA, Call("lookup", {"name": "Ada"})]), PAID)
    control = Approvals()
    recorder = Recorder()
    recorder.subscribe_to(agent.stream_prompt("Pay", approvals=control, hook=Stop()))
    error = await recorder.ended()
    assert isinstance(error, PromptCancelledError) and error.reason == "lookups are forbidden"
    (request,) = recorder.of(ToolApprovalRequest)
    assert control.pending == ()
    with pytest.raises(ApprovalError) as late:
        control.approve(request.internal_call_id)
    assert str(late.value) == (
        f"approval of call {request.internal_call_id!r}: its run ended with an error before it was answered"
    )
    assert len(server.requests) == 1


# -- the operator form -------------------------------------------------------------------------------


async def test_the_operator_form_waits_for_answers_on_each_prompts_run(serve: Any) -> None:
    server = await serve(Turn(calls=[PAY_ADA]), PAID, Turn(text=["Hello again."]))
    async with server.provider() as model:
        control = Approvals()
        recorder = Recorder()
        prompts = reactivex.from_iterable(["Pay Ada", "Hello"])
        recorder.subscribe_to(prompts.pipe(agent_operator(model, tools=[pay], approvals=control)))
        (request,) = await recorder.wait_for(ToolApprovalRequest)
        control.approve(request.internal_call_id)
        assert await recorder.ended() == "completed"
    answers = recorder.of(FinalResponse)
    assert [a.text for a in answers] == ["Paid.", "Hello again."]
    assert len(server.requests) == 3
    assert server.requests[2].json["messages"][-1] == {"role": "user", "content": "Hello"}
    assert [m["role"] for m in server.requests[2].json["messages"]] == [
        "user", "assistant", "tool", "assistant", "user",
    ]  # fmt: skip
