"""The ``rxllm`` command: ``rxllm demo`` (offline) and ``rxllm chat`` (a real server).

::

    rxllm demo                                    # no network, no key: a scripted server on 127.0.0.1
    rxllm chat "Why is the sky blue?" --provider openai --model gpt-4o-mini
    rxllm chat --model gpt-4o-mini --system "Be brief." --tool mytools:add     # an interactive chat
    rxllm chat "Hi" --provider openai --model llama3.2 --base-url http://localhost:11434/v1
    rxllm chat "Hi" --provider anthropic --model claude-sonnet-4-5 --json | jq .type

Both show an agent run as it streams: text as it arrives, reasoning dimmed,
each tool call with its arguments and its result, a line for each retry, and the
usage summed over the turns at the end. ``--json`` prints every event as one
JSON line instead, and on failure an ``ErrorInfo`` as the last line (the exit
status is 1 either way). The key
comes from the provider's usual environment variable (``OPENAI_API_KEY``,
``ANTHROPIC_API_KEY``). Ctrl-C cancels: the connection is closed and the command
exits with status 130. Without a prompt, ``rxllm chat`` is an interactive chat
that keeps the history between turns (Ctrl-C cancels the answer and returns to
the prompt, Ctrl-D leaves); ``--tool module:function`` gives the agent ``@tool``
functions, ``--system`` a system prompt. A call of a tool that needs approval
(``@tool(needs_approval=...)``) is asked about on the terminal first: ``y``
runs it, ``n`` denies it (the reason typed is what the model reads), ``e``
edits its arguments (see ``TerminalApprovals``).
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import contextlib
import importlib
import itertools
import math
import operator
import os
import re
import shutil
import sys
import threading
import unicodedata
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from rxllm._version import __version__
from rxllm.agent import Agent
from rxllm.approvals import Approvals
from rxllm.bridges import aiter
from rxllm.errors import ApprovalError, RxLLMError
from rxllm.events import (
    AgentEvent,
    ErrorInfo,
    Final,
    FinalResponse,
    Reasoning,
    ReasoningDelta,
    Retrying,
    StreamReset,
    TextDelta,
    ToolApprovalRequest,
    ToolCall,
    ToolResult,
    Usage,
)
from rxllm.messages import Message
from rxllm.operators import DEFAULT_MAX_TURNS
from rxllm.prices import Cost, known_cost
from rxllm.providers._base import Provider
from rxllm.providers.anthropic import AnthropicMessages
from rxllm.providers.openai import OpenAIChat, OpenAIResponses
from rxllm.testing._server import ReceivedRequest, ScriptedServer
from rxllm.testing._writers import Call, Turn
from rxllm.tools import Tool, tool
from rxllm.transport._http import is_loopback_url

__all__ = ["Console", "TerminalApprovals", "calculator_tool", "clock_tool", "demo", "demo_script", "main"]

INTERRUPTED = 130
"""The exit status after Ctrl-C, as shells report a SIGINT."""

PROVIDERS: dict[str, type[Provider]] = {
    "openai": OpenAIChat,
    "responses": OpenAIResponses,
    "anthropic": AnthropicMessages,
}


# -- the view -------------------------------------------------------------------------------


class Console:
    """Writes agent events to a terminal as they arrive.

    Text is written as it streams; reasoning is labelled (and dimmed with
    ``color``); a tool call is shown with its arguments when it is complete, and
    its result when the tool returns; a retry before a turn's first event is a
    ``[retrying in 0.5 s: HTTP 503]`` line; the summed usage closes the run (saying
    so when a request reported none). Without ``color`` the output is the same
    text without escape sequences.

    A ``StreamReset`` (the provider resent a broken turn) discards what the turn
    showed so far. With ``live`` (``out`` is a terminal) the turn's output is
    erased — the cursor goes back to where the turn began and the screen is
    cleared below it — and a ``[retrying: reason]`` line stands in its place
    until the new attempt's output follows it. Without ``live`` nothing can be
    erased: that line says that what follows replaces what is above.
    ``columns`` is the terminal's width (asked of the terminal when ``None``).
    ``cost_of`` gives the cost of the run's usage where it is known (see
    ``rxllm.price``); the usage line then ends with it.
    """

    def __init__(
        self,
        out: TextIO,
        *,
        color: bool = False,
        live: bool = False,
        columns: int | None = None,
        cost_of: Callable[[Usage], Cost | None] | None = None,
    ) -> None:
        self.out = out
        self.cost_of = cost_of
        self.color = color
        self.live = live
        self.columns = columns
        self._section: str | None = None  # "text" or "reasoning" while one streams
        self._at_line_start = True
        self._turn: list[str] = []  # with ``live``: what the current turn wrote, to erase on a reset

    def _style(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.color and text else text

    def _write(self, text: str) -> None:
        if text:
            self.out.write(text)
            self._at_line_start = text.endswith("\n")
            if self.live:
                self._turn.append(text)

    def _line(self, text: str) -> None:
        """A whole line of its own, after ending whatever streamed before it."""
        self._end_section()
        self._write(text + "\n")

    def _end_section(self) -> None:
        if not self._at_line_start:
            self._write("\n")
        self._section = None

    def prompt(self, text: str) -> None:
        self._line(f"{self._style('you:', '1')} {text}")
        self._turn.clear()
        self.out.flush()

    def show(self, event: AgentEvent) -> None:
        if isinstance(event, TextDelta):
            if self._section != "text":
                self._end_section()
                self._section = "text"
            self._write(event.text)
        elif isinstance(event, ReasoningDelta):
            if self._section != "reasoning":
                self._end_section()
                self._section = "reasoning"
                self._write(self._style("[reasoning]", "2;1") + " ")
            self._write(self._style(event.text, "2"))
        elif isinstance(event, Reasoning):
            pass  # the whole block repeats the deltas already shown
        elif isinstance(event, ToolCall):
            self._line(f"{self._style('[tool call]', '36;1')} {event.name} {_arguments(event.arguments)}")
        elif isinstance(event, ToolResult):
            label = self._style("[tool error]", "31;1") if event.is_error else self._style("[result]", "32;1")
            self._line(f"{label} {event.name}: {event.content}")
            self._turn.clear()  # the next turn starts below the results
        elif isinstance(event, Final):
            self._turn.clear()  # this turn's output stays: a later reset belongs to a later turn
        elif isinstance(event, StreamReset):
            self._reset(event)
        elif isinstance(event, Retrying):
            self._line(self._style(f"[retrying in {_seconds(event.delay)} s: {event.reason}]", "33"))
        elif isinstance(event, FinalResponse):
            usage = event.usage
            turns = f"{event.turns} turn" + ("" if event.turns == 1 else "s")
            line = (
                f"[usage] {turns} · input {usage.input_tokens} · output {usage.output_tokens} · "
                f"total {usage.total_tokens} tokens (reasoning {usage.reasoning_tokens}, "
                f"cached {usage.cached_input_tokens})"
            )
            if not event.usage_complete:
                line += " · incomplete: a request reported no usage"
            else:
                # A cost only for usage known whole: a request that reported none would make it a guess.
                cost = self.cost_of(usage) if self.cost_of is not None else None
                if cost is not None:
                    line += f" · cost {cost}"
            self._line("")
            self._line(self._style(line, "2"))
        self.out.flush()

    def _reset(self, event: StreamReset) -> None:
        if self.live:
            up = _rows("".join(self._turn), self.columns or shutil.get_terminal_size().columns)
            # Back to the first column of the turn's first row, then clear to the end of the screen.
            self.out.write("\r" + (f"\x1b[{up}A" if up else "") + "\x1b[J")
            self._turn.clear()
            self._section = None
            self._at_line_start = True
            self._write(self._style(f"[retrying: {event.reason}]", "33") + "\n")
        else:
            self._line(self._style(f"[retrying: {event.reason}; what follows replaces the above]", "33"))

    def close(self) -> None:
        """End a line left open (the run stopped mid-text)."""
        self._end_section()
        self.out.flush()


_ESCAPES = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _rows(text: str, columns: int) -> int:
    """How many rows above the cursor ``text`` took on a terminal ``columns`` wide, written from column 0."""
    columns = max(columns, 1)
    *whole, last = _ESCAPES.sub("", text).split("\n")
    rows = sum(max(1, -(-_width(line) // columns)) for line in whole)
    # A full last row leaves the cursor on it (the wrap is pending), so count the rows it filled, less one.
    return rows + max(0, -(-_width(last) // columns) - 1)


def _width(line: str) -> int:
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in line)


def _seconds(delay: float) -> str:
    return f"{delay:.2f}".rstrip("0").rstrip(".")


def _arguments(arguments: Any) -> str:
    if isinstance(arguments, str):
        return arguments
    return msgspec.json.encode(arguments).decode().replace('":', '": ').replace(',"', ', "')


class _Waiting:
    """A spinner on stderr until the first event; only on a terminal."""

    FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"

    def __init__(self, err: TextIO) -> None:
        self.err = err
        self.task: asyncio.Task[None] | None = None
        if err.isatty():
            self.task = asyncio.get_running_loop().create_task(self._spin())

    async def _spin(self) -> None:
        for frame in itertools.cycle(self.FRAMES):
            self.err.write(f"\r{frame} waiting for the model…")
            self.err.flush()
            await asyncio.sleep(0.1)

    def stop(self) -> None:
        task, self.task = self.task, None
        if task is not None:
            task.cancel()
            self.err.write("\r\x1b[K")
            self.err.flush()


class TerminalApprovals:
    """Answers a run's ``ToolApprovalRequest`` events from a terminal, through its ``control``.

    For each request it asks on ``out``: ``y`` runs the call, ``n`` denies it
    (asking for a reason, which the model reads), ``e`` edits its arguments
    (a JSON object; Enter keeps them): edited arguments that are not JSON, or do
    not fit the tool, are said so and asked again. When ``answers`` ends (EOF)
    the call is denied. The loop goes on while the person thinks (the turn's
    other calls run; see ``_read_line``). When
    ``answers`` is not a terminal, the answer is written after the question, so
    the transcript shows it.
    """

    NO_ANSWER = "The user gave no answer (the terminal's input ended)."
    DENIED = "The user denied this call."

    def __init__(self, answers: TextIO, out: TextIO) -> None:
        self.answers = answers
        self.out = out
        self.control = Approvals()

    async def ask(self, event: AgentEvent) -> None:
        """When ``event`` is a ``ToolApprovalRequest``, ask until there is an answer, and give it."""
        if not isinstance(event, ToolApprovalRequest):
            return
        call = event.internal_call_id
        while True:
            choice = await self._question(
                f"[approve?] {event.name} {_arguments(event.arguments)}: run it? [y]es / [n]o / [e]dit: "
            )
            if choice is None:
                self.control.deny(call, self.NO_ANSWER)
                return
            choice = choice.strip().lower()
            if choice in ("y", "yes"):
                self.control.approve(call)
                return
            if choice in ("n", "no"):
                reason = await self._question("reason (Enter for none): ")
                self.control.deny(call, (reason or "").strip() or self.DENIED)
                return
            if choice in ("e", "edit"):
                if await self._edit(event):
                    return
                continue
            self.out.write("[answer y, n or e]\n")

    async def _edit(self, event: ToolApprovalRequest) -> bool:
        shown = msgspec.json.encode(event.arguments).decode()
        text = await self._question(f"arguments as JSON (Enter keeps {shown}): ")
        if text is None:
            self.control.deny(event.internal_call_id, self.NO_ANSWER)
            return True
        try:
            arguments = msgspec.json.decode(text.strip() or shown)
        except msgspec.DecodeError as exc:
            self.out.write(f"[not JSON: {exc}]\n")
            return False
        if not isinstance(arguments, dict):
            self.out.write("[the arguments are a JSON object: {...}]\n")
            return False
        try:
            self.control.approve(event.internal_call_id, arguments)
        except ApprovalError as exc:
            self.out.write(f"[{exc.reason}]\n")
            return False
        return True

    async def _question(self, text: str) -> str | None:
        """Ask ``text``; the line typed (without its end), ``None`` at the end of the input."""
        self.out.write(text)
        self.out.flush()
        typed = await _read_line(self.answers)
        if not _isatty(self.answers):
            self.out.write(typed if typed.endswith("\n") else typed + "\n")
        self.out.flush()
        return typed.rstrip("\r\n") if typed else None


async def _read_line(stream: TextIO) -> str:
    """One line of ``stream`` (``""`` at its end) without blocking the event loop.

    A terminal is watched by the loop (``add_reader``): a terminal gives a read
    one line at most, and a cancelled question (Ctrl-C) leaves nothing reading
    it, so the chat's next prompt gets the next line. Other input (a pipe, a
    file) is read on a thread of its own, through the stream's buffer, which
    the chat's prompt reads too.
    """
    loop = asyncio.get_running_loop()
    line: asyncio.Future[str] = loop.create_future()
    if _isatty(stream):
        fd = stream.fileno()
        encoding = getattr(stream, "encoding", None) or "utf-8"

        def readable() -> None:
            try:
                typed = os.read(fd, 65536).decode(encoding, errors="replace")
            except OSError:
                typed = ""  # the terminal went away: as at the end of input
            _answered(line, typed)

        try:
            loop.add_reader(fd, readable)
        except NotImplementedError:
            pass  # a loop without readers (Windows' proactor): a thread reads, as below
        else:
            try:
                return await line
            finally:
                loop.remove_reader(fd)

    def read() -> None:
        try:
            typed = stream.readline()
        except (OSError, ValueError):
            typed = ""  # the input is closed: as at its end
        with contextlib.suppress(RuntimeError):  # the loop closed (Ctrl-C) while this waited
            loop.call_soon_threadsafe(_answered, line, typed)

    # A daemon thread: a person who never answers keeps no process alive after Ctrl-C.
    threading.Thread(target=read, name="rxllm-approval-input", daemon=True).start()
    return await line


def _answered(line: asyncio.Future[str], typed: str) -> None:
    if not line.done():
        line.set_result(typed)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (OSError, ValueError):
        return False


async def _show_run(
    agent: Agent,
    prompt: str,
    *,
    out: TextIO,
    err: TextIO,
    json: bool,
    color: bool,
    history: Sequence[Message] = (),
    answers: TextIO | None = None,
) -> FinalResponse | None:
    """Stream one agent run to ``out``; raise its error (with ``json``, after an ``ErrorInfo`` line).

    The run continues ``history``; its ``FinalResponse`` is returned. A known
    cost (``rxllm[prices]``) ends the usage line. Calls of tools that need
    approval are asked about on the terminal (``TerminalApprovals``: the
    answers are read from ``answers``, stdin by default; the questions go to
    ``out``, or to ``err`` with ``json``).
    """
    final: FinalResponse | None = None
    model = agent.model
    cost_of: Callable[[Usage], Cost | None] | None = None
    if isinstance(model, Provider):
        provider = model

        def cost_of(usage: Usage) -> Cost | None:
            return known_cost(usage, model=provider.model, provider=provider)

    console = Console(out, color=color, live=not json and out.isatty(), cost_of=cost_of)
    waiting = _Waiting(err)
    approvals = TerminalApprovals(sys.stdin if answers is None else answers, err if json else out)
    try:
        async for event in aiter(agent.stream_chat(prompt, history, approvals=approvals.control)):
            waiting.stop()
            if isinstance(event, FinalResponse):
                final = event
            if json:
                out.write(msgspec.json.encode(event).decode() + "\n")
                out.flush()
            else:
                console.show(event)
            await approvals.ask(event)
    except Exception as exc:
        if json:
            out.write(msgspec.json.encode(ErrorInfo.from_exception(exc)).decode() + "\n")
            out.flush()
        raise
    finally:
        waiting.stop()
        if not json:
            console.close()
    return final


# -- the demo -------------------------------------------------------------------------------

DEMO_PROMPT = "What is 15% of 240, and what time is it in Tokyo?"
DEMO_MODEL = "rxllm-demo"

_OPERATORS: dict[type, Callable[..., Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}


def _evaluate(node: ast.AST) -> float:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if (
        isinstance(node, ast.Constant)
        and isinstance(node.value, int | float)
        and not isinstance(node.value, bool)
    ):
        return float(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > 1000:
            raise ValueError("exponent too large")
        return float(_OPERATORS[type(node.op)](left, right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _OPERATORS:
        return float(_OPERATORS[type(node.op)](_evaluate(node.operand)))
    raise ValueError(f"not arithmetic: {ast.unparse(node)}")


def calculator_tool() -> Tool[..., str]:
    """The demo's calculator: arithmetic on numbers, nothing else is evaluated."""

    @tool(name="calculator")
    def calculate(expression: str) -> str:
        """Evaluate an arithmetic expression (+ - * / // % ** and parentheses).

        Args:
            expression: The expression, e.g. "240 * 15 / 100".
        """
        value = _evaluate(ast.parse(expression, mode="eval"))
        if not math.isfinite(value):
            raise ValueError("the result is not a finite number")
        return str(int(value)) if value.is_integer() else f"{value:.10g}"

    return calculate


def clock_tool(now: Callable[[], datetime] | None = None) -> Tool[..., str]:
    """The demo's clock: the current time in a time zone (``now`` gives the instant, for tests)."""

    def current() -> datetime:
        return now() if now is not None else datetime.now(UTC)

    @tool(name="clock")
    def clock(timezone: str) -> str:
        """The current local time in a time zone.

        Args:
            timezone: An IANA time zone name, e.g. "Asia/Tokyo".
        """
        try:
            zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {timezone!r}") from None
        return current().astimezone(zone).strftime("%H:%M on %A (%Z)")

    return clock


def demo_script() -> list[Turn | Callable[[ReceivedRequest], Turn]]:
    """The demo's turns: reasoning and two parallel tool calls; then an answer made of their results."""
    first = Turn(
        reasoning=[
            "Two questions: ",
            "a percentage and the time in Tokyo. ",
            "Neither depends on the other, ",
            "so I can call both tools at once.",
        ],
        text=["Let me work that out."],
        calls=[
            Call("calculator", {"expression": "240 * 15 / 100"}, id="call_calc"),
            Call("clock", {"timezone": "Asia/Tokyo"}, id="call_clock"),
        ],
        usage=_usage(182, 64, reasoning=24),
    )

    def answer(request: ReceivedRequest) -> Turn:
        # The final answer is written from the tool results the client sent back.
        results = {
            message["tool_call_id"]: message["content"]
            for message in request.json["messages"]
            if message["role"] == "tool"
        }
        words = f"15% of 240 is {results['call_calc']}. In Tokyo it is {results['call_clock']}.".split(" ")
        return Turn(
            reasoning=["Both results are in; ", "a short answer will do."],
            text=[word + " " for word in words[:-1]] + [words[-1]],
            usage=_usage(291, 38, reasoning=8, cached=128),
        )

    return [first, answer]


def _usage(input_tokens: int, output_tokens: int, *, reasoning: int = 0, cached: int = 0) -> Usage:
    return Usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=input_tokens + output_tokens,
        reasoning_tokens=reasoning,
        cached_input_tokens=cached,
    )


async def demo(
    out: TextIO,
    err: TextIO,
    *,
    delay: float = 0.03,
    color: bool = False,
    json: bool = False,
    now: Callable[[], datetime] | None = None,
) -> None:
    """The offline demo: a scripted OpenAI-compatible server on 127.0.0.1 and a two-tool agent.

    The server streams Chat Completions bytes (``delay`` seconds before each
    piece); ``OpenAIChat`` reads them over the loopback, the whole real path.
    """
    async with ScriptedServer(demo_script(), delay=delay, model=DEMO_MODEL) as server:
        model = server.provider()
        async with model:
            agent = Agent(
                model,
                preamble="You are a concise assistant with a calculator and a clock.",
                tools=[calculator_tool(), clock_tool(now)],
                tool_concurrency=2,
            )
            if not json:
                note = "offline demo: a scripted OpenAI-compatible server on 127.0.0.1, no API key"
                out.write(f"\x1b[2m{note}\x1b[0m\n" if color else f"{note}\n")
                Console(out, color=color).prompt(DEMO_PROMPT)
            await _show_run(agent, DEMO_PROMPT, out=out, err=err, json=json, color=color)


# -- chat against a real server -------------------------------------------------------------


class _SetupError(Exception):
    """The chat cannot start: the message says why (exit status 2)."""


def _chat_agent(args: argparse.Namespace) -> Agent:
    """The agent ``rxllm chat`` runs, from the command line; ``_SetupError`` says what is wrong."""
    tools = [_load_tool(spec) for spec in args.tool]
    kind = PROVIDERS[args.provider]
    try:
        model = kind(args.model, base_url=args.base_url, midstream_retries=args.midstream_retries)
    except RxLLMError as exc:
        raise _SetupError(str(exc)) from None
    if not os.environ.get(kind.api_key_env) and not is_loopback_url(model.base_url):
        raise _SetupError(
            f"set {kind.api_key_env} for --provider {args.provider} "
            "(or pass --base-url for a local server that needs no key)"
        )
    return Agent(model, preamble=args.system, tools=tools, max_turns=args.max_turns)


def _load_tool(spec: str) -> Tool[..., Any]:
    """``--tool module:function``: the ``@tool`` (or a plain function, made one) named by ``spec``.

    The module is imported as Python would, the current directory first (as
    ``python -m`` does), so ``--tool mytools:add`` finds ``./mytools.py``.
    """
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise _SetupError(f"--tool {spec}: name a function as module:function, e.g. mytools:add")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise _SetupError(f"--tool {spec}: cannot import {module_name}: {exc}") from None
    found = getattr(module, attribute, None)
    if isinstance(found, Tool):
        return found
    if callable(found):
        try:
            return tool(found)
        except (TypeError, ValueError) as exc:
            raise _SetupError(f"--tool {spec}: not usable as a tool: {exc}") from None
    raise _SetupError(f"--tool {spec}: {module_name} has no function {attribute}")


async def chat(
    args: argparse.Namespace, out: TextIO, err: TextIO, *, color: bool, stdin: TextIO | None = None
) -> int:
    """``rxllm chat PROMPT``: one agent run, streamed; approvals are asked on ``stdin`` (sys.stdin)."""
    try:
        agent = _chat_agent(args)
    except _SetupError as exc:
        err.write(f"rxllm: {exc}\n")
        return 2
    assert isinstance(agent.model, Provider)
    async with agent.model:
        await _show_run(agent, args.prompt, out=out, err=err, json=args.json, color=color, answers=stdin)
    return 0


def interactive_chat(
    args: argparse.Namespace, out: TextIO, err: TextIO, stdin: TextIO, *, color: bool
) -> int:
    """``rxllm chat`` without a prompt: read a prompt, stream the answer, and again, keeping the history.

    Ctrl-C while an answer streams cancels it (the connection closes; the
    exchange is left out of the history) and returns to the prompt; at the
    prompt it clears the line. Ctrl-D (end of input) leaves, with status 0. A
    failed answer is reported and the chat goes on. Each answer runs on an
    event loop of its own (``asyncio.run``), so Ctrl-C reaches it as Python's
    own ``KeyboardInterrupt`` handling gives it.
    """
    try:
        agent = _chat_agent(args)
    except _SetupError as exc:
        err.write(f"rxllm: {exc}\n")
        return 2
    model = agent.model
    assert isinstance(model, Provider)
    asking = err if args.json else out  # with --json, stdout is the events alone
    if stdin.isatty():
        err.write(
            f"rxllm chat with {args.model} at {model.base_url}: Ctrl-C cancels an answer, Ctrl-D leaves\n"
        )
    history: Sequence[Message] = ()
    while True:
        try:
            prompt = _read_prompt(asking, stdin, color=color)
        except EOFError:
            asking.write("\n")
            asking.flush()
            return 0
        except KeyboardInterrupt:
            asking.write("\n")
            continue
        if not prompt.strip():
            continue
        try:
            final = asyncio.run(
                _chat_turn(
                    agent, prompt, history, out=out, err=err, json=args.json, color=color, answers=stdin
                )
            )
        except KeyboardInterrupt:
            err.write("\n[cancelled]\n" if not args.json else "[cancelled]\n")
            err.flush()
            continue
        except RxLLMError as exc:
            err.write(f"rxllm: {type(exc).__name__}: {exc}\n")
            err.flush()
            continue
        if final is not None:
            history = final.history


async def _chat_turn(
    agent: Agent,
    prompt: str,
    history: Sequence[Message],
    *,
    out: TextIO,
    err: TextIO,
    json: bool,
    color: bool,
    answers: TextIO,
) -> FinalResponse | None:
    model = agent.model
    assert isinstance(model, Provider)
    async with model:  # this loop's session closes with the turn
        return await _show_run(
            agent, prompt, history=history, out=out, err=err, json=json, color=color, answers=answers
        )


def _read_prompt(out: TextIO, stdin: TextIO, *, color: bool) -> str:
    """One line typed at the ``you:`` prompt; ``EOFError`` at the end of input (Ctrl-D)."""
    if stdin is sys.stdin and out is sys.stdout and stdin.isatty():
        with contextlib.suppress(ImportError):
            import readline  # noqa: F401 - line editing and history at the prompt

        # \001 and \002 tell readline the escapes take no columns.
        return input("\001\x1b[1m\002you:\001\x1b[0m\002 " if color else "you: ")
    out.write("\x1b[1myou:\x1b[0m " if color else "you: ")
    out.flush()
    line = stdin.readline()
    if not line:
        raise EOFError
    return line.rstrip("\n")


# -- the command ----------------------------------------------------------------------------


ENVIRONMENT = """\
environment variables (rxllm chat):
  OPENAI_API_KEY      the API key for --provider openai and responses
  OPENAI_BASE_URL     their server when --base-url is not given (else https://api.openai.com/v1)
  ANTHROPIC_API_KEY   the API key for --provider anthropic
  ANTHROPIC_BASE_URL  its server when --base-url is not given (else https://api.anthropic.com)
  A server on 127.0.0.1 or localhost needs no key."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rxllm",
        description="LLM provider streams as ReactiveX Observables: an offline demo, a chat with a model.",
        epilog=ENVIRONMENT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"rxllm {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def common(command: argparse.ArgumentParser) -> None:
        command.add_argument(
            "--json",
            action="store_true",
            help="print every event as one JSON line; a failure ends with an ErrorInfo line (default: off)",
        )
        command.add_argument(
            "--color",
            choices=("auto", "always", "never"),
            default="auto",
            help="colour and dim the output; auto: when writing to a terminal (default: auto)",
        )

    demo_command = commands.add_parser(
        "demo",
        help="offline demo: a scripted server on 127.0.0.1, an agent with a calculator and a clock",
        description="An agent with a calculator and a clock, streamed from a scripted OpenAI-compatible "
        "server on 127.0.0.1: no network, no API key.",
    )
    common(demo_command)
    demo_command.add_argument(
        "--delay",
        type=float,
        default=0.03,
        metavar="SECONDS",
        help="the scripted server's pause before each streamed piece (default: 0.03)",
    )

    chat_command = commands.add_parser(
        "chat",
        help="chat with a model: one prompt, or an interactive chat without one",
        description=(
            "Stream an agent run from a real server: text as it arrives, reasoning dimmed,\n"
            "each tool call and its result, the usage at the end.\n\n"
            "Without a prompt, an interactive chat that keeps the history between turns:\n"
            "Ctrl-C cancels the answer (the connection closes) and returns to the prompt,\n"
            "Ctrl-D leaves. With a prompt, Ctrl-C cancels and exits with status 130."
        ),
        epilog=ENVIRONMENT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    chat_command.add_argument(
        "prompt", nargs="?", help="what to ask; without it, an interactive chat (default: interactive)"
    )
    chat_command.add_argument(
        "--provider",
        choices=sorted(PROVIDERS),
        default="openai",
        help="the API the server speaks: openai (Chat Completions, and compatible servers such as Ollama, "
        "vLLM, llama.cpp), responses (OpenAI Responses), anthropic (Messages) (default: openai)",
    )
    chat_command.add_argument("--model", required=True, help="the model's name on the server (required)")
    chat_command.add_argument(
        "--base-url",
        default=None,
        help="the server: OpenAI's ends in /v1, Anthropic's is the origin "
        "(default: $OPENAI_BASE_URL or $ANTHROPIC_BASE_URL, else the provider's own)",
    )
    chat_command.add_argument(
        "--system",
        "--preamble",
        dest="system",
        default=None,
        metavar="TEXT",
        help="a system prompt for every turn (default: none)",
    )
    chat_command.add_argument(
        "--tool",
        action="append",
        default=[],
        metavar="MODULE:FUNCTION",
        help="a function decorated with @rxllm.tool for the agent to call, imported from MODULE (the "
        "current directory first); repeat for more tools. A call of a tool made with "
        "@tool(needs_approval=...) is asked about first: y runs it, n denies it (with a reason), "
        "e edits its arguments (default: none)",
    )
    chat_command.add_argument(
        "--max-turns",
        type=_count,
        default=DEFAULT_MAX_TURNS,
        metavar="N",
        help=f"the most model requests one answer may make (default: {DEFAULT_MAX_TURNS})",
    )
    chat_command.add_argument(
        "--midstream-retries",
        type=_count,
        default=0,
        metavar="N",
        help="send a turn whose stream broke again, up to N times; the partial answer is redrawn "
        "(default: 0)",
    )
    common(chat_command)
    return parser


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is not 0 or more")
    return value


def main(
    argv: Sequence[str] | None = None,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    stdin: TextIO | None = None,
) -> int:
    """Run the command; returns the exit status (130 after Ctrl-C)."""
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(err)
        return 2
    color = args.color == "always" or (args.color == "auto" and out.isatty() and not args.json)
    if args.command == "chat" and args.prompt is None:
        return interactive_chat(args, out, err, stdin if stdin is not None else sys.stdin, color=color)

    async def command() -> int:
        if args.command == "demo":
            await demo(out, err, delay=args.delay, color=color, json=args.json)
            return 0
        return await chat(args, out, err, color=color, stdin=stdin)

    try:
        return asyncio.run(command())
    except KeyboardInterrupt:
        with contextlib.suppress(Exception):
            out.flush()
        err.write("\nrxllm: cancelled\n")
        err.flush()
        return INTERRUPTED
    except RxLLMError as exc:
        err.write(f"rxllm: {type(exc).__name__}: {exc}\n")
        return 1
