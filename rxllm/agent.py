"""``Agent``: a model, a preamble and tools, ready to answer prompts as Observables.

::

    agent = Agent(model, preamble="Be brief.", tools=[get_weather, clock])
    agent.stream_prompt("Weather in Paris?").subscribe(print)     # one run
    prompts.pipe(agent.operator()).subscribe(view.show)            # a chat: one run per prompt
    agent.stream_prompt("Pay Ada", approvals=approvals)            # tools that need approval wait
    agent.stream_prompt("Pay Ada", suspend=True)                   # ... or the run stops: RunSuspended
    agent.resume(state, {call_id: Approve()})                      # and continues later, anywhere

``Agent`` holds settings only; each ``stream_prompt`` is a cold Observable, so
subscribing twice runs twice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from reactivex import Observable

from rxllm.approvals import Approvals, Decision
from rxllm.control import PauseControl
from rxllm.events import AgentEvent, RunState
from rxllm.hooks import Hook
from rxllm.messages import Message
from rxllm.operators import DEFAULT_MAX_TURNS, agent
from rxllm.operators._agent import Runs, resume_run
from rxllm.tools import Tool
from rxllm.typing import StreamModel

__all__ = ["Agent"]


class Agent:
    """Multi-turn, tool-using streaming over one model.

    ``model`` is a provider (``OpenAIChat``, ...) or anything with
    ``stream(request, *, pause=None)``. ``max_turns`` is the number of model
    requests one run may make; ``tool_concurrency`` how many of a turn's tool
    calls run at once. ``temperature``, ``max_tokens``, ``tool_choice`` and
    ``params`` go into every request. ``name`` names the agent in traces
    (``invoke_agent {name}``, see ``rxllm.enable_tracing``).
    ``params`` go into every request. ``output=T`` asks for a structured answer
    (``PartialOutput`` while it streams, ``Output`` and ``FinalResponse.output``
    at the end), an invalid one sent back to the model up to ``output_retries``
    times (see ``rxllm.operators.agent``).
    """

    def __init__(
        self,
        model: StreamModel,
        *,
        preamble: str | None = None,
        tools: Sequence[Tool[..., Any]] = (),
        max_turns: int = DEFAULT_MAX_TURNS,
        tool_concurrency: int = 1,
        temperature: float | None = None,
        max_tokens: int | None = None,
        tool_choice: str | Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        name: str | None = None,
        output: Any = None,
        output_retries: int = 1,
    ) -> None:
        self.model = model
        self.preamble = preamble
        self.tools = tuple(tools)
        self.max_turns = max_turns
        self.tool_concurrency = tool_concurrency
        self.name = name
        self._request_options: dict[str, Any] = {
            "temperature": temperature,
            "max_tokens": max_tokens,
            "tool_choice": tool_choice,
            "params": params,
        }
        # Structured output (see rxllm.operators.agent): the final answer validated as `output`.
        self.output = output
        self.output_retries = output_retries

    def __repr__(self) -> str:
        names = [tool.name for tool in self.tools]
        return f"Agent(model={self.model!r}, tools={names!r}, max_turns={self.max_turns})"

    def operator(
        self,
        *,
        history: Sequence[Message] = (),
        hook: Hook | None = None,
        max_turns: int | None = None,
        pause: PauseControl | None = None,
        approvals: Approvals | None = None,
        suspend: bool = False,
    ) -> Callable[[Observable[str]], Observable[AgentEvent]]:
        """``rxllm.operators.agent`` with this agent's settings: prompts in, every run's events out."""
        return self._runs(
            history=history, hook=hook, max_turns=max_turns, pause=pause, approvals=approvals, suspend=suspend
        )

    def _runs(
        self,
        *,
        history: Sequence[Message],
        hook: Hook | None,
        max_turns: int | None,
        pause: PauseControl | None,
        approvals: Approvals | None,
        suspend: bool,
    ) -> Runs:
        return agent(
            self.model,
            tools=self.tools,
            preamble=self.preamble,
            history=history,
            hook=hook,
            max_turns=self.max_turns if max_turns is None else max_turns,
            tool_concurrency=self.tool_concurrency,
            pause=pause,
            output=self.output,
            output_retries=self.output_retries,
            **self._request_options,
            name=self.name,
            approvals=approvals,
            suspend=suspend,
        )

    def stream_prompt(
        self,
        prompt: str,
        *,
        history: Sequence[Message] | None = None,
        hook: Hook | None = None,
        max_turns: int | None = None,
        pause: PauseControl | None = None,
        approvals: Approvals | None = None,
        suspend: bool = False,
    ) -> Observable[AgentEvent]:
        """One run: every assistant event of every turn, a ``ToolResult`` per call, ``FinalResponse`` last.

        A call of a tool that needs approval waits for an answer through
        ``approvals`` (a ``ToolApprovalRequest`` says so); with ``suspend=True``
        the run completes with ``RunSuspended(state)`` instead (see ``resume``).
        """
        return self._runs(
            history=history or (),
            hook=hook,
            max_turns=max_turns,
            pause=pause,
            approvals=approvals,
            suspend=suspend,
        ).one(prompt)

    def stream_chat(
        self,
        prompt: str,
        history: Sequence[Message],
        *,
        hook: Hook | None = None,
        max_turns: int | None = None,
        pause: PauseControl | None = None,
        approvals: Approvals | None = None,
        suspend: bool = False,
    ) -> Observable[AgentEvent]:
        """``stream_prompt`` continuing ``history`` (for example a previous ``FinalResponse.history``).

        It takes the same options as ``stream_prompt``.
        """
        return self.stream_prompt(
            prompt,
            history=history,
            hook=hook,
            max_turns=max_turns,
            pause=pause,
            approvals=approvals,
            suspend=suspend,
        )

    def resume(
        self,
        state: RunState,
        decisions: Mapping[str, Decision],
        *,
        hook: Hook | None = None,
        pause: PauseControl | None = None,
        approvals: Approvals | None = None,
        suspend: bool = False,
    ) -> Observable[AgentEvent]:
        """Continue a suspended run; ``decisions`` maps each pending call's ``internal_call_id`` to an answer.

        A decision is ``Approve(arguments=None)`` or ``Deny(reason)``.

        This agent's model, tools (which must be the run's: ``RunStateError``
        otherwise), hook and output type; the state's preamble, request
        options, ``max_turns``, turns and usage. A decision for a call the state
        does not hold pending, or a pending call without one, raises
        ``ApprovalError`` here, before any request. The Observable emits the
        answered calls' ``ToolResult`` events in call order, then the run goes
        on as any run, to its ``FinalResponse`` (or another ``RunSuspended``).
        """
        return resume_run(
            self.model,
            state,
            decisions,
            tools=self.tools,
            hook=hook,
            tool_concurrency=self.tool_concurrency,
            pause=pause,
            name=self.name,
            output=self.output,
            approvals=approvals,
            suspend=suspend,
        )
