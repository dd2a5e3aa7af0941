"""``agent(model, ...)``: user prompts in, every event of every turn out, tools run between turns.

One run answers one prompt::

    run(prompt)  = turn(1)
    turn(n)      = hook.on_completion_call ⧺ model.stream(request(history))   (hooks see each event)
                   ⧺ defer(after_turn(n))
    after_turn   = FinalResponse                                   when the turn made no tool call
                 | Output ⧺ FinalResponse                          with an output type and a valid answer
                 | defer(turn(n + 1))                              with an invalid one (output_retries)
                 | MaxTurnsError                                   when it did and n == max_turns
                 | tool results (ToolResult events, in call order) ⧺ defer(turn(n + 1))

Tool execution and the next turn are concatenated and deferred: no loop blocks,
no thread is held per run, and disposing the subscription at any point closes
the HTTP response or cancels the running tool tasks.

A ``StreamReset`` inside a turn (a provider with ``midstream_retries`` resent
it) passes on to observers, reaches ``hook.on_stream_reset``, and restarts the
turn's bookkeeping: the response that decides the next step, and so the tools
that run and the history, holds only the last attempt; ``on_text_delta``'s
``aggregated`` starts again from the new attempt's text. Tools run only after
a turn's stream completed, so a call streamed by a discarded attempt never runs.
A ``Retrying`` (a retry before a turn's first event) passes on to observers and
changes nothing else.

Usage: ``FinalResponse.usage`` sums what the turns' ``Final`` events reported
(each counting its discarded attempts); ``FinalResponse.usage_complete`` is
false when a turn reported none or left an attempt out. An error that ends a
run carries ``usage``: the run's completed turns' usage plus what the failing
turn reported before the error (``provider.stream()`` puts that on the error),
``None`` when nothing was reported. A hook's ``Terminate`` or ``max_turns``
stops a run between or outside streams: ``PromptCancelledError`` and
``MaxTurnsError`` carry the completed turns' usage (a turn terminated from
``on_text_delta`` is disposed, and what it reported is not known).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Generator, Mapping, Sequence
from functools import partial
from typing import Any, TypeVar, cast

import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops

from rxllm import tracing
from rxllm._agent_settings import Settings as _Settings
from rxllm._log import log, log_tool_call
from rxllm.approvals import Approvals, Decision
from rxllm.control import Backlog, PauseControl, throttled
from rxllm.errors import CallbackError, MaxTurnsError, OutputValidationError, PromptCancelledError, RxLLMError
from rxllm.events import (
    AgentEvent,
    AssistantEvent,
    Final,
    FinalResponse,
    Output,
    RunState,
    StreamReset,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolResult,
    Usage,
)
from rxllm.hooks import Hook, Skip, Terminate
from rxllm.messages import Message, ToolResultPart
from rxllm.operators import _approval_step as approval_step
from rxllm.operators._in_order import in_order
from rxllm.operators._parse_output import partial_outputs
from rxllm.output import OutputSpec, output_spec
from rxllm.request import CompletionRequest
from rxllm.response import CompletionResponse, ResponseBuilder
from rxllm.tools import Tool, ToolArgumentsError
from rxllm.transport._aio import from_coroutine
from rxllm.transport._chain import chain, watch
from rxllm.transport._fusion import Fused, subscribe_fused
from rxllm.typing import StreamModel

__all__ = ["DEFAULT_MAX_TURNS", "agent", "resume_run"]

DEFAULT_MAX_TURNS = 10
"""Model requests allowed per run when none is given."""

HOOK_BACKLOG = 256
"""Events that may wait for a slow hook method before the turn's source is throttled."""

_T = TypeVar("_T")


def agent(
    model: StreamModel,
    *,
    tools: Sequence[Tool[..., Any]] = (),
    preamble: str | None = None,
    history: Sequence[Message] = (),
    hook: Hook | None = None,
    max_turns: int = DEFAULT_MAX_TURNS,
    tool_concurrency: int = 1,
    pause: PauseControl | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    tool_choice: str | Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    name: str | None = None,
    output: Any = None,
    output_retries: int = 1,
    approvals: Approvals | None = None,
    suspend: bool = False,
) -> Runs:
    """Answer each prompt in turn with a multi-turn tool-using run, carrying the history along.

    ``model`` is anything with ``stream(request, *, pause=None)``: a provider,
    or a scripted model in tests. Every run emits the assistant events of each
    turn, a ``ToolResult`` after each tool call, and one ``FinalResponse`` last;
    the next prompt's run starts from that ``FinalResponse.history``. An error
    (``MaxTurnsError``, ``PromptCancelledError``, a provider error) ends the
    whole Observable, as in Rx; later prompts are not answered.

    .. marble::
        :alt: agent

        -p-------q-------|      prompts (a chat box's Subject)
        [ agent(model) ]
        -(t,f,F)-(u,f,G)-|      each run: its turns' events, then one FinalResponse (q's carries p's history)

        :values: model = ScriptedModel([Turn(text=["Hi."]), Turn(text=["Bye."])])
                 p, q, t, u = "Hello", "Bye", TextDelta(text="Hi."), TextDelta(text="Bye.")
                 used = Usage(input_tokens=10, output_tokens=5, total_tokens=15)
                 f = Final(usage=used, finish_reason="stop", response_id="chatcmpl-scripted",
                           model="scripted-model")
                 F = FinalResponse(text="Hi.", usage=f.usage, turns=1,
                                   history=(Message.user(p), Message.assistant(t.text)))
                 G = FinalResponse(text="Bye.", usage=f.usage, turns=1,
                                   history=(*F.history, Message.user(q), Message.assistant(u.text)))

    (A scripted model answers a whole turn at one tick.) A turn that calls tools
    is followed by a ``ToolResult`` per call and the next turn, all in the same
    run; tools run as asyncio tasks, so virtual time cannot show them.

    ``max_turns`` is the number of model requests one run may make (``0``
    allows none). A run whose last allowed turn still calls tools ends with
    ``MaxTurnsError``; those tools are not run, and the error's history answers
    each of their calls with an error result saying so, so it is valid to send
    again. A turn cut short at its output limit (``length``, ``max_tokens``,
    ``incomplete:...``) never runs its tools: its calls may be incomplete.

    ``tool_concurrency`` tools of one turn run at once (sync tools in worker
    threads, async tools as tasks); results are emitted and recorded in call
    order either way.

    ``name`` names the agent in traces (``invoke_agent {name}``; see ``rxllm.enable_tracing``).
    ``output=T`` (a type msgspec validates) makes every request ask for
    structured output (``CompletionRequest(output=T)``), and the turn that
    answers without calling a tool the structured answer: ``PartialOutput``
    events while its JSON streams, ``Output`` with the validated ``T`` after its
    ``Final``, and ``FinalResponse.output`` the same value. Turns that call tools
    run them as without it (their text, if any, is not validated). An answer
    that does not validate is sent back as a user message saying what is wrong
    (msgspec's message, with the path) and the model asked again, up to
    ``output_retries`` times a run; each retry is a turn and counts against
    ``max_turns``. When the retries or the turns run out, ``OutputValidationError``
    (the raw answer, msgspec's message, the history) ends the run.

    Tools made with ``@tool(needs_approval=...)`` wait for a person: with
    ``approvals=Approvals()`` the run emits a ``ToolApprovalRequest`` for each
    call that needs approval and waits for its answer; with ``suspend=True`` it
    completes with ``RunSuspended(state)`` instead, to be continued by
    ``Agent.resume``. A later prompt's run starts from the history of the last
    run that finished (a suspended run's exchange is in its state). See
    ``rxllm.operators._approval_step`` for the order of events.
    """
    if max_turns < 0:
        raise ValueError("max_turns must be 0 or more")
    if output_retries < 0:
        raise ValueError("output_retries must be 0 or more")
    _check_run_options(tool_concurrency, approvals, suspend)
    settings = _Settings(
        model=model,
        tools={tool.name: tool for tool in tools},
        preamble=preamble,
        hook=hook,
        max_turns=max_turns,
        tool_concurrency=tool_concurrency,
        pause=pause,
        request_options={
            "temperature": temperature,
            "max_tokens": max_tokens,
            "tool_choice": tool_choice,
            "params": params,
            "output": output,
        },
        name=name,
        output=output_spec(output) if output is not None else None,
        output_retries=output_retries,
        approvals=approvals,
        suspend=suspend,
    )

    return Runs(settings, tuple(history))


class Runs:
    """The agent operator: prompts in, each prompt's run after the one before it, every run's events out.

    Each run continues the history the run before it ended with. ``one(prompt)``
    is ``reactivex.just(prompt).pipe(runs)`` without the prompts' sequencing:
    one run, its events straight from the run to the subscriber (what
    ``Agent.stream_prompt`` gives).
    """

    __slots__ = ("history", "settings")

    def __init__(self, settings: _Settings, history: Sequence[Message]) -> None:
        self.settings = settings
        self.history = history

    def __call__(self, prompts: Observable[str]) -> Observable[AgentEvent]:
        settings, history = self.settings, self.history

        def subscribe(
            observer: abc.ObserverBase[AgentEvent],
            scheduler: abc.SchedulerBase | None = None,
        ) -> abc.DisposableBase:
            carried: list[Sequence[Message]] = [history]

            def remember(event: AgentEvent) -> None:
                if isinstance(event, FinalResponse):
                    carried[0] = event.history

            def answer(prompt: str) -> Observable[AgentEvent]:
                return _OneRun(settings, prompt, lambda: carried[0], remember)

            return prompts.pipe(ops.concat_map(answer)).subscribe(observer, scheduler=scheduler)

        return Observable(subscribe)

    def one(self, prompt: str) -> Observable[AgentEvent]:
        history = self.history
        return _OneRun(self.settings, prompt, lambda: history, None)


class _OneRun(Fused[AgentEvent]):
    """One prompt's run, made at each subscription (from the history of the moment), the error charged."""

    def __init__(
        self,
        settings: _Settings,
        prompt: str,
        history: Callable[[], Sequence[Message]],
        remember: Callable[[AgentEvent], None] | None,
    ) -> None:
        self._settings = settings
        self._prompt = prompt
        self._history = history
        self._remember = remember

    def _subscribe_core(
        self, observer: abc.ObserverBase[AgentEvent], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        current = _Run(self._settings, self._prompt, self._history())
        return subscribe_fused(watch(current.start(), self._remember, current.charge), observer, scheduler)


def resume_run(
    model: StreamModel,
    state: RunState,
    decisions: Mapping[str, Decision],
    *,
    tools: Sequence[Tool[..., Any]] = (),
    hook: Hook | None = None,
    tool_concurrency: int = 1,
    pause: PauseControl | None = None,
    name: str | None = None,
    output: Any = None,
    approvals: Approvals | None = None,
    suspend: bool = False,
) -> Observable[AgentEvent]:
    """Continue a suspended run (``RunSuspended.state``) with a decision for each of its pending calls.

    The model, tools, hook and output type are the caller's (the tools, and the
    output type, must be those the run was suspended with: ``RunStateError``
    otherwise); the preamble, the request options, ``max_turns``, the turn count
    and the usage are the state's, so the next request is the one the run would
    have sent. A decision for a call the state does not hold pending, or a
    pending call without one, is ``ApprovalError``; all of these are raised
    here, before anything is subscribed or sent. The Observable emits the
    answered calls' ``ToolResult`` events in call order, then the run goes on
    as any run: more turns, more approvals (``approvals`` / ``suspend``), and
    one ``FinalResponse`` (its ``turns`` and ``usage`` count the whole run).
    """
    _check_run_options(tool_concurrency, approvals, suspend)
    settings = _Settings(
        model=model,
        tools={tool.name: tool for tool in tools},
        preamble=state.preamble,
        hook=hook,
        max_turns=state.max_turns,
        tool_concurrency=tool_concurrency,
        pause=pause,
        request_options={
            "temperature": state.temperature,
            "max_tokens": state.max_tokens,
            "tool_choice": state.tool_choice,
            "params": state.params,
            "output": output,
        },
        name=name,
        output=output_spec(output) if output is not None else None,
        approvals=approvals,
        suspend=suspend,
    )
    approval_step.check_resume(settings, state, decisions)
    chosen = dict(decisions)

    def run(_: abc.SchedulerBase) -> Observable[AgentEvent]:
        current = _Run(settings, state.prompt, state.history, prompted=False)
        approval_step.restore(current, state)
        events = approval_step.resumed(current, state, chosen)
        if current.trace is not None:
            events = current.trace.run(events)
        return events.pipe(ops.do_action(on_error=current.charge))

    return reactivex.defer(run)


def _check_run_options(tool_concurrency: int, approvals: Approvals | None, suspend: bool) -> None:
    """``ValueError`` for options a run, new or resumed, cannot have."""
    if tool_concurrency < 1:
        raise ValueError("tool_concurrency must be 1 or more")
    if approvals is not None and suspend:
        raise ValueError(
            "give a run approvals= to wait for answers, or suspend=True to stop for them: not both"
        )


class _Run:
    """The state of one run: the history so far and the usage summed over its turns.

    ``messages`` only ever grows by whole steps (the user prompt; a final
    assistant message; an assistant tool-call message together with its tool
    results), so it is valid wire history whenever an error snapshots it.
    ``usage`` sums the completed turns' reports, ``reported`` says whether any
    reported one, ``usage_complete`` whether every request did.
    """

    def __init__(
        self, settings: _Settings, prompt: str, history: Sequence[Message], *, prompted: bool = True
    ) -> None:
        self.settings = settings
        self.prompt = prompt
        # A resumed run (``prompted=False``) continues a history that holds its prompt already.
        self.messages: list[Message] = [*history, Message.user(prompt)] if prompted else list(history)
        self.usage = Usage()
        self.reported = False
        self.usage_complete = True
        self.output_retries_left = settings.output_retries
        hook = settings.hook
        self.watch_text = hook is not None and hook.overrides("on_text_delta")
        self.watch_tool_deltas = hook is not None and hook.overrides("on_tool_call_delta")
        self.watch_resets = hook is not None and hook.overrides("on_stream_reset")
        # None while tracing is off: then the run, its turns and its tools get no tracing layer.
        self.trace = tracing.agent_run(
            settings.model,
            name=settings.name,
            preamble=settings.preamble,
            tools=tuple(settings.tools.values()),
            request_options=settings.request_options,
            messages=self.messages,
        )

    def start(self) -> Observable[AgentEvent]:
        run: Observable[AgentEvent]
        if self.settings.max_turns == 0:
            run = reactivex.throw(MaxTurnsError(0, self.messages))
        else:
            run = self.turn(1)
        return run if self.trace is None else self.trace.run(run)

    # -- one turn -----------------------------------------------------------------

    def turn(self, number: int) -> Observable[AgentEvent]:
        settings = self.settings
        request = CompletionRequest(
            tuple(self.messages),
            preamble=settings.preamble,
            tools=tuple(settings.tools.values()),
            **settings.request_options,
        )
        builder = ResponseBuilder()
        finals: list[Final] = []

        feed = builder.feed

        def record(event: AgentEvent) -> None:
            # A StreamReset clears the builder too: only the last attempt's calls can run.
            feed(event)
            kind = type(event)  # ``type() is``: cheaper than isinstance, per event
            if kind is Final:
                finals.append(event)  # type: ignore[arg-type]  # kind is Final
            elif kind is StreamReset:
                finals.clear()

        before: Observable[AgentEvent] = self.ask("on_completion_call", self.prompt, request.messages)

        def streamed() -> Observable[AgentEvent]:
            events: Observable[AssistantEvent]
            if self.trace is None:
                events = settings.model.stream(request, pause=settings.pause)
            else:
                # Made and subscribed with the run's span current: the turn's span is its child.
                events = self.trace.within(
                    reactivex.defer(lambda _: settings.model.stream(request, pause=settings.pause))
                )
            watched = watch(self.watched(events), record)
            return watched if settings.output is None else watched.pipe(partial_outputs())

        return chain(before, streamed, lambda: self.after_turn(number, builder.build(), finals))

    def watched(self, events: Observable[AssistantEvent]) -> Observable[AgentEvent]:
        """The turn's events, each waiting for the hook methods that watch it.

        Events wait in order while a hook method runs. Above ``HOOK_BACKLOG``
        waiting events the turn's source is throttled (``rxllm.control``), so a
        slow hook stops the socket being read instead of filling memory.
        """
        if not (self.watch_text or self.watch_tool_deltas or self.watch_resets):
            return events
        # The turn's text so far, for ``aggregated``. Hooks run in the events' order, and each
        # piece is added when its hook runs, so the text grows in place (a local of a generator
        # nothing else holds): linear in the text's length, not quadratic.
        text = [_started(_text_so_far())]

        def restart() -> Observable[AgentEvent]:
            text[0] = _started(_text_so_far())  # ``aggregated`` restarts with the new attempt's text
            return reactivex.empty()

        def check(event: AssistantEvent) -> Observable[AgentEvent]:
            if type(event) is StreamReset:
                reset = event
                after = (
                    self.decided("on_stream_reset", lambda: (reset.attempt, reset.reason), reset)
                    if self.watch_resets
                    else reactivex.just(reset)
                )
                return reactivex.concat(reactivex.defer(lambda _: restart()), after)
            if self.watch_text and isinstance(event, TextDelta):
                delta = event.text
                return self.decided("on_text_delta", lambda: (delta, text[0].send(delta)), event)
            if self.watch_tool_deltas and isinstance(event, ToolCallDelta):
                call = event
                return self.decided(
                    "on_tool_call_delta",
                    lambda: (call.id, call.internal_call_id, call.name, call.arguments_delta),
                    call,
                )
            return reactivex.just(event)

        def subscribe(
            observer: abc.ObserverBase[AgentEvent], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            backlog = Backlog(HOOK_BACKLOG)
            with throttled(backlog.control):
                return events.pipe(
                    ops.do_action(on_next=lambda _: backlog.added()),
                    ops.concat_map(check),
                    ops.do_action(on_next=lambda _: backlog.removed()),
                ).subscribe(observer, scheduler=scheduler)

        return Observable(subscribe)

    def after_turn(
        self, number: int, response: CompletionResponse, finals: list[Final]
    ) -> Observable[AgentEvent]:
        if response.usage is not None:
            self.usage = self.usage + response.usage
            self.reported = True
        self.usage_complete = self.usage_complete and response.usage_complete
        final = finals[-1] if finals else Final()
        finished: Observable[AgentEvent] = self.ask("on_turn_finish", self.prompt, final)
        return chain(finished, lambda: self.next_step(number, response))

    def next_step(self, number: int, response: CompletionResponse) -> Observable[AgentEvent]:
        calls = response.tool_calls
        if not calls or _cut_short(response.finish_reason):
            # A turn cut by its length limit may hold half-sent calls: never run them.
            answer = CompletionResponse(text=response.text, reasoning_blocks=response.reasoning_blocks)
            self.messages.append(answer.assistant_message())
            if self.settings.output is not None:
                return self.structured_answer(self.settings.output, number, response.text)
            return reactivex.just(
                FinalResponse(
                    text=response.text,
                    usage=self.usage,
                    history=tuple(self.messages),
                    turns=number,
                    usage_complete=self.usage_complete,
                )
            )
        if number >= self.settings.max_turns:
            self.messages.append(response.assistant_message())
            note = f"not run: the agent reached max_turns={self.settings.max_turns}"
            self.messages.append(
                Message(
                    role="tool",
                    content=tuple(
                        ToolResultPart(call_id=call.call_id, name=call.name, content=note, is_error=True)
                        for call in calls
                    ),
                )
            )
            return reactivex.throw(MaxTurnsError(self.settings.max_turns, self.messages))
        asks = approval_step.asks(self, calls)
        if any(asks):
            # Some call waits for a person: the approval step runs the tools, then the next turn.
            return approval_step.approval_step(self, number, response, asks)
        results: list[ToolResult] = []

        def keep(event: AgentEvent) -> None:
            if isinstance(event, ToolResult):
                results.append(event)

        tool_results = watch(self.run_tools(calls), keep)
        return chain(tool_results, lambda: self.continue_with(number, response.assistant_message(), results))

    def continue_with(
        self, number: int, answer: Message, results: Sequence[ToolResult]
    ) -> Observable[AgentEvent]:
        """The next turn, after the turn's answer and its tool results (in call order) joined the history."""
        self.messages.append(answer)
        self.messages.append(
            Message(
                role="tool",
                content=tuple(
                    ToolResultPart(call_id=r.call_id, name=r.name, content=r.content, is_error=r.is_error)
                    for r in results
                ),
            )
        )
        return self.turn(number + 1)

    def charge(self, error: Exception) -> None:
        """Give the error that ends the run the completed turns' usage, added to the failing turn's."""
        if isinstance(error, RxLLMError):
            completed = self.usage if self.reported else None
            error.usage = Usage.summed((completed, error.usage))

    # -- structured output --------------------------------------------------------------

    def structured_answer(self, spec: OutputSpec, number: int, text: str) -> Observable[AgentEvent]:
        """``Output`` and ``FinalResponse`` for a valid answer; else the model asked again, or the error."""
        try:
            value = spec.validate(text)
        except OutputValidationError as error:
            if self.output_retries_left > 0 and number < self.settings.max_turns:
                self.output_retries_left -= 1
                self.messages.append(Message.user(retry_prompt(spec, error)))
                return self.turn(number + 1)
            return reactivex.throw(
                OutputValidationError(
                    error.message,
                    error.raw,
                    output_name=error.output_name,
                    history=self.messages,
                )  # its usage: the run's, added by ``charge`` as for every error that ends a run
            )
        final = FinalResponse(
            text=text,
            usage=self.usage,
            history=tuple(self.messages),
            turns=number,
            usage_complete=self.usage_complete,
            output=value,
        )
        return reactivex.from_iterable([Output(value=value), final])

    # -- tools ----------------------------------------------------------------------

    def run_tools(self, calls: Sequence[ToolCall]) -> Observable[AgentEvent]:
        """Each call's ``ToolResult``, in call order, at most ``tool_concurrency`` running at once."""
        runs = [from_coroutine(partial(self.execute, index, call)) for index, call in enumerate(calls)]
        merged: Observable[tuple[int, ToolResult]] = reactivex.from_iterable(runs).pipe(
            ops.merge(max_concurrent=self.settings.tool_concurrency)
        )
        return merged.pipe(in_order())

    async def execute(self, index: int, call: ToolCall) -> tuple[int, ToolResult]:
        hook = self.settings.hook
        decision: Terminate | Skip | None = None
        if hook is not None and hook.overrides("on_tool_call"):
            decision = await self.call_hook(
                "on_tool_call", call.name, call.call_id, call.internal_call_id, call.arguments
            )
            self.stop_if(decision)
        if isinstance(decision, Skip):
            content, is_error = decision.reason, False
        else:
            content, is_error = await self.invoke(call)
        return await self.finish(index, call, content, is_error)

    async def finish(
        self, index: int, call: ToolCall, content: str, is_error: bool
    ) -> tuple[int, ToolResult]:
        """The call's ``ToolResult``, once ``on_tool_result`` has heard it."""
        hook = self.settings.hook
        if hook is not None and hook.overrides("on_tool_result"):
            self.stop_if(
                await self.call_hook(
                    "on_tool_result", call.name, call.call_id, call.internal_call_id, call.arguments, content
                )
            )
        return index, ToolResult(
            id=call.id,
            call_id=call.call_id,
            internal_call_id=call.internal_call_id,
            name=call.name,
            content=content,
            is_error=is_error,
        )

    async def invoke(self, call: ToolCall) -> tuple[str, bool]:
        """Run the tool; every failure becomes an error result the model can act on."""
        tool = self.settings.tools.get(call.name)
        if tool is None:
            known = ", ".join(sorted(self.settings.tools)) or "none"
            return f"unknown tool {call.name!r}; the tools are: {known}", True
        log_tool_call(call.name, call_id=call.call_id, phase="call")
        content, is_error = await self._invoke(tool, call)
        log_tool_call(call.name, call_id=call.call_id, phase="result", is_error=is_error)
        return content, is_error

    async def _invoke(self, tool: Tool[..., Any], call: ToolCall) -> tuple[str, bool]:
        def failed(message: str, exc: BaseException | None = None) -> tuple[str, bool]:
            fields = {
                "gen_ai.tool.call.id": call.call_id,
                "error.type": type(exc).__name__ if exc else "tool_error",
            }
            log(
                "WARNING",
                message,
                operation="execute_tool",
                tool_name=call.name,
                fields=fields,
                exception=exc,
            )
            return message, True

        try:
            if self.trace is not None:
                return await self.trace.tool(tool, call), False  # an execute_tool span around the call
            return await tool.invoke(call.arguments), False
        except asyncio.CancelledError:
            raise
        except ToolArgumentsError as exc:
            return failed(str(exc))
        except TimeoutError:
            return failed(f"tool {call.name!r} timed out after {tool.timeout:g} s")
        except Exception as exc:  # noqa: BLE001 - a broken tool is reported to the model, not raised
            return failed(f"tool {call.name!r} raised {type(exc).__name__}: {exc}", exc)

    # -- hooks ----------------------------------------------------------------------

    def ask(self, method: str, *args: Any) -> Observable[AgentEvent]:
        """Call a hook method that emits nothing: empty when it continues, an error when it terminates."""
        hook = self.settings.hook
        if hook is None or not hook.overrides(method):
            return reactivex.empty()

        async def call() -> None:
            self.stop_if(await self.call_hook(method, *args))

        # The coroutine's ``None`` is dropped: the Observable only completes or errors.
        return cast(Observable[AgentEvent], from_coroutine(call).pipe(ops.ignore_elements()))

    def decided(self, method: str, args: Callable[[], tuple[Any, ...]], event: _T) -> Observable[_T]:
        """``event``, once the hook method has heard it (its arguments made when it runs)."""

        async def call() -> _T:
            self.stop_if(await self.call_hook(method, *args()))
            return event

        return from_coroutine(call)

    async def call_hook(self, method: str, *args: Any) -> Any:
        """Call a hook method, ``async def`` or plain ``def``; what it raises or wrongly returns is loud.

        A hook that raises ends the run with ``CallbackError`` (the original as
        ``__cause__``); one that returns anything but ``None``, ``Terminate``
        (or, from ``on_tool_call``, ``Skip``) too, naming what it returned.
        """
        hook = self.settings.hook
        name = f"{type(hook).__name__}.{method}"
        try:
            result = getattr(hook, method)(*args)
            if inspect.isawaitable(result):
                result = await result
        except Exception as exc:  # noqa: BLE001 - a user's hook failed: the run ends loud
            raise CallbackError(name, exc) from exc
        allowed: tuple[type, ...] = (Terminate, Skip) if method == "on_tool_call" else (Terminate,)
        if result is not None and not isinstance(result, allowed):
            wanted = "None or Terminate(reason)" + (" or Skip(reason)" if method == "on_tool_call" else "")
            raise CallbackError(name, TypeError(f"returned {result!r}; a hook returns {wanted}"))
        return result

    def stop_if(self, decision: Terminate | Skip | None) -> None:
        if isinstance(decision, Terminate):
            raise PromptCancelledError(decision.reason, self.messages)


def _text_so_far() -> Generator[str, str, None]:
    """Send a piece, get the text so far. ``text += piece`` on a local grows the string in place."""
    text = ""
    piece = yield text
    while True:
        text += piece
        piece = yield text


def _started(generator: Generator[str, str, None]) -> Generator[str, str, None]:
    next(generator)
    return generator


def retry_prompt(spec: OutputSpec, error: OutputValidationError) -> str:
    """The user message that sends an invalid structured answer back to the model."""
    return (
        f"Your answer is not a valid {spec.name}: {error.message}. "
        f"Answer again with the whole corrected {spec.name}, exactly as its JSON schema says."
    )


def _cut_short(finish_reason: str | None) -> bool:
    """Whether a turn ended at its output limit, in each provider's words.

    Chat Completions says ``length``, Anthropic ``max_tokens``, and the
    Responses dialect ``incomplete:<reason>``.
    """
    if finish_reason is None:
        return False
    return finish_reason in ("length", "max_tokens") or finish_reason.startswith("incomplete:")
