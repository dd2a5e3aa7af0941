"""The agent's approval step: between a turn's end and its tools, the calls that wait for a person.

It runs only for a turn one of whose calls needs approval (``@tool(needs_approval=...)``
says so for the call's arguments); every other turn runs its tools as before.

Which calls ask: a call of a known tool whose arguments validate and whose tool
says it needs approval. A call that cannot run (an unknown tool, arguments
that do not fit) is never put to a person: it gets its error result as always.

The order of one such turn, live (``approvals=Approvals()``)::

    turn ──► on_tool_call(asking calls, in call order)   a Skip answers the call: no request for it
         ──► ToolApprovalRequest per asking call, in call order      the calls wait on the control
         ──► ToolResult per call, in call order                      then the next turn

* A call that needs no approval starts at once, while the others wait (its
  ``on_tool_call`` runs just before it, as always); its result is emitted in
  call order, so it may be held until the calls before it are answered and done.
* An approved call runs when its answer arrives (with the edited arguments, if
  any); ``tool_concurrency`` bounds the tools running at once, and a call that
  waits for an answer holds no slot. ``on_tool_call`` is not asked again.
* A denied call does not run: the reason is its error result (``is_error``).
* ``on_tool_result`` hears every call: an approved one with the arguments it
  ran with and its result, a denied one with the denial's reason.
* The history records the arguments a call ran with: an edited call's
  assistant message holds the edited arguments, so the model sees what ran.

Suspended (``suspend=True``): the same up to the requests; then the calls that
need no approval (and the skipped ones) run, their results are emitted in call
order, and the run completes with ``RunSuspended(state)``. ``resume`` answers the
pending calls with the decisions given, emits their results in call order, and
sends the next turn: the request the suspended run would have sent.

While calls wait, the turn's stream has ended: none of its time limits counts,
no request is open or sent, and a tool's ``timeout`` counts from when it runs.
Disposing the run withdraws its calls from the control (a late answer is an
``ApprovalError``); so does an error that ends the run.

The event order, as the README draws it (shapes, parsed by the marble tests):

.. marble::
    :alt: approval step

    -a-l-t|                     the turn: a (pay) needs approval, l (lookup) does not; t: its Final
    -a-l-t(r)------x-y-c-f-F|   live: r, a's request, as the turn ends; approve(r.internal_call_id) before x

    -a-b-t|                     the turn: a and b both need approval
    -a-b-t(r,s,S,|)             suspend=True: their requests in call order, then S: RunSuspended(state)
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import Any, Protocol

import msgspec
import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import Disposable

from rxllm._agent_settings import Settings
from rxllm.approvals import Approve, Decision, Deny, check_edit
from rxllm.errors import ApprovalError, CallbackError, RunStateError
from rxllm.events import (
    AgentEvent,
    CallState,
    RunState,
    RunSuspended,
    ToolApprovalRequest,
    ToolCall,
    ToolResult,
    Usage,
)
from rxllm.hooks import Skip, Terminate
from rxllm.messages import Message, ToolCallPart
from rxllm.operators._in_order import in_order
from rxllm.output import OutputSpec
from rxllm.response import CompletionResponse
from rxllm.tools import Tool, ToolArgumentsError
from rxllm.transport._aio import event_loop, from_coroutine


class _Run(Protocol):
    """What the step needs of the agent's run (``rxllm.operators._agent._Run``, which calls the step)."""

    settings: Settings
    prompt: str
    messages: list[Message]
    usage: Usage
    reported: bool
    usage_complete: bool
    output_retries_left: int

    async def call_hook(self, method: str, *args: Any) -> Any: ...

    def stop_if(self, decision: Terminate | Skip | None) -> None: ...

    def continue_with(
        self, number: int, answer: Message, results: Sequence[ToolResult]
    ) -> Observable[AgentEvent]: ...

    async def execute(self, index: int, call: ToolCall) -> tuple[int, ToolResult]: ...

    async def finish(
        self, index: int, call: ToolCall, content: str, is_error: bool
    ) -> tuple[int, ToolResult]: ...

    async def invoke(self, call: ToolCall) -> tuple[str, bool]: ...


__all__ = ["approval_step", "asks", "check_resume", "fingerprint", "restore", "resumed"]

STATE_VERSION = 1
"""The ``RunState`` format this module writes and reads."""


def asks(run: _Run, calls: Sequence[ToolCall]) -> list[bool]:
    """For each call, whether it waits for a person's answer."""
    tools = run.settings.tools
    wanted: list[bool] = []
    for call in calls:
        tool = tools.get(call.name)
        wanted.append(tool is not None and _asks(tool, call.arguments))
    return wanted


def _asks(tool: Tool[..., Any], arguments: object) -> bool:
    try:
        if not tool.needs_approval(arguments):
            return False
        tool.validate(arguments)  # a call that cannot run is not put to a person
    except ToolArgumentsError:
        return False
    except Exception as exc:  # noqa: BLE001 - the user's predicate failed: the run ends loud
        raise CallbackError(f"{tool.name}.needs_approval", exc) from exc
    return True


def approval_step(
    run: _Run, number: int, response: CompletionResponse, wanted: Sequence[bool]
) -> Observable[AgentEvent]:
    """The turn's tools when some of its calls need approval, then the next turn (or ``RunSuspended``)."""
    calls = response.tool_calls
    asking = [index for index, wants in enumerate(wanted) if wants]
    hook = run.settings.hook
    if hook is None or not hook.overrides("on_tool_call"):
        return _after_hooks(run, number, response, asking, {})

    async def ask_hooks() -> dict[int, Skip]:
        skips: dict[int, Skip] = {}
        for index in asking:
            call = calls[index]
            decision = await run.call_hook(
                "on_tool_call", call.name, call.call_id, call.internal_call_id, call.arguments
            )
            run.stop_if(decision)
            if isinstance(decision, Skip):
                skips[index] = decision
        return skips

    def after(skips: dict[int, Skip]) -> Observable[AgentEvent]:
        return _after_hooks(run, number, response, asking, skips)

    return from_coroutine(ask_hooks).pipe(ops.concat_map(after))


def _after_hooks(
    run: _Run, number: int, response: CompletionResponse, asking: Sequence[int], skips: Mapping[int, Skip]
) -> Observable[AgentEvent]:
    calls = response.tool_calls
    pending = [index for index in asking if index not in skips]
    settings = run.settings
    if pending and settings.suspend:
        return _suspended(run, number, response, asking, skips, pending)
    approvals = settings.approvals
    if pending and approvals is None:
        call = calls[pending[0]]
        return reactivex.throw(
            ApprovalError(
                call.internal_call_id,
                f"tool {call.name!r} needs approval, but the run was given neither "
                "approvals=Approvals() nor suspend=True",
            )
        )
    edits: dict[str, Any] = {}
    results: list[ToolResult] = []

    def subscribe(
        observer: abc.ObserverBase[AgentEvent], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        requests = [_request(calls[index]) for index in pending]
        futures: dict[str, asyncio.Future[Decision]] = {}
        if requests:
            assert approvals is not None
            try:
                loop = event_loop(scheduler)
                # Registered before the requests are emitted: an observer may answer from on_next.
                futures = approvals._wait(
                    loop, [(request, settings.tools[request.name]) for request in requests]
                )
            except Exception as exc:  # noqa: BLE001 - no loop, or a clash: delivered, as Rx does
                observer.on_error(exc)
                return Disposable()
        ids = list(futures)
        slots = asyncio.Semaphore(settings.tool_concurrency)
        runs = [
            from_coroutine(
                partial(
                    _settle,
                    run,
                    index,
                    call,
                    slots,
                    skip=skips.get(index),
                    decision=_awaiting(futures[call.internal_call_id])
                    if call.internal_call_id in futures
                    else None,
                    edits=edits,
                )
            )
            for index, call in enumerate(calls)
        ]
        settled = reactivex.from_iterable(runs).pipe(ops.merge_all(), in_order())
        events = reactivex.concat(reactivex.from_iterable(requests), settled)

        def on_next(event: AgentEvent) -> None:
            if isinstance(event, ToolResult):
                results.append(event)
            observer.on_next(event)

        def on_error(error: Exception) -> None:
            approvals_withdraw(ids, "its run ended with an error before it was answered")
            observer.on_error(error)

        def approvals_withdraw(which: Sequence[str], why: str) -> None:
            if approvals is not None and which:
                approvals._withdraw(which, why)

        subscription = events.subscribe(on_next, on_error, observer.on_completed, scheduler=scheduler)

        def dispose() -> None:
            approvals_withdraw(ids, "its run was disposed before it was answered")
            subscription.dispose()

        return Disposable(dispose)

    def next_turn(_: abc.SchedulerBase) -> Observable[AgentEvent]:
        return run.continue_with(number, _answer(response, edits), results)

    return reactivex.concat(Observable(subscribe), reactivex.defer(next_turn))


def _awaiting(future: asyncio.Future[Decision]) -> Callable[[], Awaitable[Decision]]:
    async def wait() -> Decision:
        return await future

    return wait


def _known(decision: Decision) -> Callable[[], Awaitable[Decision]]:
    async def known() -> Decision:
        return decision

    return known


async def _settle(
    run: _Run,
    index: int,
    call: ToolCall,
    slots: asyncio.Semaphore,
    *,
    skip: Skip | None,
    decision: Callable[[], Awaitable[Decision]] | None,
    edits: dict[str, Any],
) -> tuple[int, ToolResult]:
    """One call of an approval turn: skipped, run at once, or run (or denied) once its answer came."""
    if skip is not None:
        return await run.finish(index, call, skip.reason, False)
    if decision is None:
        async with slots:  # needs no approval: runs as in any turn, on_tool_call included
            return await run.execute(index, call)
    answer = await decision()
    if isinstance(answer, Deny):
        return await run.finish(index, call, answer.reason, True)
    if answer.arguments is not None:
        call = msgspec.structs.replace(call, arguments=answer.arguments)
        edits[call.internal_call_id] = answer.arguments
    async with slots:
        content, is_error = await run.invoke(call)
        return await run.finish(index, call, content, is_error)


def _request(call: ToolCall) -> ToolApprovalRequest:
    return ToolApprovalRequest(
        internal_call_id=call.internal_call_id, call_id=call.call_id, name=call.name, arguments=call.arguments
    )


def _answer(response: CompletionResponse, edits: Mapping[str, Any]) -> Message:
    """The turn's assistant message, its edited calls holding the arguments they ran with."""
    if not edits:
        return response.assistant_message()
    calls = tuple(
        msgspec.structs.replace(call, arguments=edits[call.internal_call_id])
        if call.internal_call_id in edits
        else call
        for call in response.tool_calls
    )
    return msgspec.structs.replace(response, tool_calls=calls).assistant_message()


# -- suspending -------------------------------------------------------------------------------


def _suspended(
    run: _Run,
    number: int,
    response: CompletionResponse,
    asking: Sequence[int],
    skips: Mapping[int, Skip],
    pending: Sequence[int],
) -> Observable[AgentEvent]:
    """The requests, the calls that can run now (results in call order), then ``RunSuspended``."""
    calls = response.tool_calls
    now = [index for index in range(len(calls)) if index not in pending]
    done: dict[str, ToolResult] = {}

    def settle_now(_: abc.SchedulerBase) -> Observable[AgentEvent]:
        slots = asyncio.Semaphore(run.settings.tool_concurrency)
        runs = [
            from_coroutine(
                partial(_settle, run, at, calls[index], slots, skip=skips.get(index), decision=None, edits={})
            )
            for at, index in enumerate(now)
        ]
        return reactivex.from_iterable(runs).pipe(ops.merge_all(), in_order())

    def keep(event: AgentEvent) -> None:
        if isinstance(event, ToolResult):
            done[event.internal_call_id] = event

    def suspend(_: abc.SchedulerBase) -> Observable[AgentEvent]:
        states = tuple(
            CallState(
                call=call,
                status="pending" if index in pending else "skipped" if index in skips else "not_needed",
                result=done.get(call.internal_call_id),
            )
            for index, call in enumerate(calls)
        )
        return reactivex.just(RunSuspended(state=_state(run, number, response, states)))

    requests = reactivex.from_iterable([_request(calls[index]) for index in pending])
    ran = reactivex.defer(settle_now).pipe(ops.do_action(on_next=keep))
    return reactivex.concat(requests, ran, reactivex.defer(suspend))


def _state(run: _Run, number: int, response: CompletionResponse, calls: tuple[CallState, ...]) -> RunState:
    settings = run.settings
    options = settings.request_options
    tool_choice = options.get("tool_choice")
    params = options.get("params")
    return RunState(
        version=STATE_VERSION,
        prompt=run.prompt,
        history=tuple(run.messages),
        assistant=response.assistant_message(),
        calls=calls,
        turns=number,
        usage=run.usage,
        usage_reported=run.reported,
        usage_complete=run.usage_complete,
        output_retries_left=run.output_retries_left,
        preamble=settings.preamble,
        max_turns=settings.max_turns,
        temperature=options.get("temperature"),
        max_tokens=options.get("max_tokens"),
        tool_choice=tool_choice if isinstance(tool_choice, str) or tool_choice is None else dict(tool_choice),
        params=None if params is None else dict(params),
        tool_set=fingerprint(settings.tools.values(), settings.output),
        tool_names=tuple(settings.tools),
    )


def fingerprint(tools: Iterable[Tool[..., Any]], output: OutputSpec | None) -> str:
    """A digest of what the tools (and output type) put into every request: names, descriptions, schemas."""
    described: list[Any] = [
        {"name": tool.name, "description": tool.description, "parameters": tool.parameters} for tool in tools
    ]
    if output is not None:
        described.append({"output": output.name, "schema": output.schema})
    return hashlib.sha256(msgspec.json.encode(described, order="deterministic")).hexdigest()


# -- resuming ---------------------------------------------------------------------------------


def check_resume(settings: Settings, state: RunState, decisions: Mapping[str, Decision]) -> None:
    """``RunStateError`` or ``ApprovalError`` when this agent cannot resume ``state`` with ``decisions``."""
    if state.version != STATE_VERSION:
        raise RunStateError(
            f"the run state has format version {state.version}; this rxllm reads version {STATE_VERSION}"
        )
    if fingerprint(settings.tools.values(), settings.output) != state.tool_set:
        names = tuple(settings.tools)
        if names != state.tool_names:
            raise RunStateError(
                f"the run was suspended with the tools {list(state.tool_names)}, "
                f"this agent has {list(names)}: resume it with an agent that has the same tools"
            )
        raise RunStateError(
            f"the run was suspended with tools of the same names {list(names)} but another description or "
            "schema (or another output type): resume it with an agent that has the same tools"
        )
    pending = {call.internal_call_id: call for call in state.pending}
    for internal_call_id, decision in decisions.items():
        if internal_call_id not in pending:
            waiting = ", ".join(pending) or "none"
            raise ApprovalError(
                internal_call_id, f"the run state holds no pending call with this id (pending: {waiting})"
            )
        if not isinstance(decision, Approve | Deny):
            raise TypeError(f"a decision is Approve(...) or Deny(reason), not {decision!r}")
        if isinstance(decision, Approve) and decision.arguments is not None:
            call = pending[internal_call_id]
            check_edit(settings.tools[call.name], internal_call_id, decision.arguments)
    for internal_call_id, call in pending.items():
        if internal_call_id not in decisions:
            raise ApprovalError(
                internal_call_id, f"no decision was given for this pending call of {call.name!r}"
            )


def restore(run: _Run, state: RunState) -> None:
    """Give a resumed run the suspended run's progress: its usage and the output retries left."""
    run.usage = state.usage
    run.reported = state.usage_reported
    run.usage_complete = state.usage_complete
    run.output_retries_left = state.output_retries_left


def resumed(run: _Run, state: RunState, decisions: Mapping[str, Decision]) -> Observable[AgentEvent]:
    """The pending calls answered (results in call order), then the turn after the suspended one."""
    pending = list(state.pending)
    edits: dict[str, Any] = {}
    fresh: dict[str, ToolResult] = {}

    def settle(_: abc.SchedulerBase) -> Observable[AgentEvent]:
        slots = asyncio.Semaphore(run.settings.tool_concurrency)
        runs = [
            from_coroutine(
                partial(
                    _settle,
                    run,
                    at,
                    call,
                    slots,
                    skip=None,
                    decision=_known(decisions[call.internal_call_id]),
                    edits=edits,
                )
            )
            for at, call in enumerate(pending)
        ]
        return reactivex.from_iterable(runs).pipe(ops.merge_all(), in_order())

    def keep(event: AgentEvent) -> None:
        if isinstance(event, ToolResult):
            fresh[event.internal_call_id] = event

    def next_turn(_: abc.SchedulerBase) -> Observable[AgentEvent]:
        results = [
            call_state.result if call_state.result is not None else fresh[call_state.call.internal_call_id]
            for call_state in state.calls
        ]
        return run.continue_with(state.turns, _edited(state.assistant, state.calls, edits), results)

    return reactivex.concat(
        reactivex.defer(settle).pipe(ops.do_action(on_next=keep)), reactivex.defer(next_turn)
    )


def _edited(answer: Message, calls: Sequence[CallState], edits: Mapping[str, Any]) -> Message:
    """The suspended turn's assistant message, its edited calls holding the arguments they ran with."""
    if not edits:
        return answer
    by_call_id = {
        state.call.call_id: edits[state.call.internal_call_id]
        for state in calls
        if state.call.internal_call_id in edits
    }
    parts = tuple(
        msgspec.structs.replace(part, arguments=by_call_id[part.call_id])
        if isinstance(part, ToolCallPart) and part.call_id in by_call_id
        else part
        for part in answer.content
    )
    return msgspec.structs.replace(answer, content=parts)
