"""The rxllm command: the offline demo, chat against loopback servers, JSON lines, Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import io
import os
import pty
import re
import select
import signal
import subprocess
import sys
import termios
import time
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

import rxllm
from rxllm.cli import Console, calculator_tool, clock_tool, demo, main
from rxllm.cli import _parser as cli_parser
from rxllm.events import (
    AnyEvent,
    ErrorInfo,
    Final,
    FinalResponse,
    ReasoningDelta,
    Retrying,
    StreamReset,
    TextDelta,
    ToolCall,
    ToolResult,
    Usage,
)
from rxllm.providers.scripted import (
    Call,
    DialectName,
    ReceivedRequest,
    Reply,
    ScriptedServer,
    Turn,
    sse_bytes,
)

NOW = datetime(2026, 1, 5, 3, 4, tzinfo=UTC)

DEMO_OUTPUT = """\
offline demo: a scripted OpenAI-compatible server on 127.0.0.1, no API key
you: What is 15% of 240, and what time is it in Tokyo?
[reasoning] Two questions: a percentage and the time in Tokyo. Neither depends on the other, \
so I can call both tools at once.
Let me work that out.
[tool call] calculator {"expression": "240 * 15 / 100"}
[tool call] clock {"timezone": "Asia/Tokyo"}
[result] calculator: 36
[result] clock: 12:04 on Monday (JST)
[reasoning] Both results are in; a short answer will do.
15% of 240 is 36. In Tokyo it is 12:04 on Monday (JST).

[usage] 2 turns · input 473 · output 102 · total 575 tokens (reasoning 32, cached 128)
"""

PYTHON = sys.executable
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def run_demo(**options: object) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    asyncio.run(demo(out, err, delay=0, now=lambda: NOW, **options))  # type: ignore[arg-type]
    return out.getvalue(), err.getvalue()


def test_demo_prints_the_streamed_run_exactly() -> None:
    assert run_demo() == (DEMO_OUTPUT, "")


def test_demo_dims_reasoning_and_colours_labels_on_a_terminal() -> None:
    out, _ = run_demo(color=True)
    assert "\x1b[2;1m[reasoning]\x1b[0m \x1b[2mTwo questions: \x1b[0m\x1b[2ma percentage" in out
    assert '\x1b[36;1m[tool call]\x1b[0m calculator {"expression": "240 * 15 / 100"}\n' in out
    assert "\x1b[32;1m[result]\x1b[0m clock: 12:04 on Monday (JST)\n" in out
    assert re.sub(r"\x1b\[[0-9;]*m", "", out) == DEMO_OUTPUT


def test_demo_json_lines_are_the_events() -> None:
    out, _ = run_demo(json=True)
    events = [msgspec.json.decode(line, type=AnyEvent) for line in out.splitlines()]
    calls = [event for event in events if isinstance(event, ToolCall)]
    assert [(call.name, call.arguments) for call in calls] == [
        ("calculator", {"expression": "240 * 15 / 100"}),
        ("clock", {"timezone": "Asia/Tokyo"}),
    ]
    assert [(r.name, r.content) for r in events if isinstance(r, ToolResult)] == [
        ("calculator", "36"),
        ("clock", "12:04 on Monday (JST)"),
    ]
    assert sum(isinstance(event, ReasoningDelta) for event in events) == 6
    final = events[-1]
    assert isinstance(final, FinalResponse)
    assert (final.text, final.turns) == ("15% of 240 is 36. In Tokyo it is 12:04 on Monday (JST).", 2)


def test_python_dash_m_and_the_console_script_run_the_demo() -> None:
    script = Path(PYTHON).with_name("rxllm")
    for command in ([PYTHON, "-m", "rxllm", "demo", "--delay", "0"], [str(script), "demo", "--delay", "0"]):
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, env=ENV)
        assert (done.returncode, done.stderr) == (0, "")
        # Everything but the real clock's reading is fixed.
        clock = re.search(r"clock: (\d\d:\d\d on \w+ \(JST\))\n", done.stdout)
        assert clock is not None
        assert done.stdout.replace(clock[1], "12:04 on Monday (JST)") == DEMO_OUTPUT


def test_the_demo_tools_are_real() -> None:
    calculate, clock = calculator_tool(), clock_tool(lambda: NOW)
    assert asyncio.run(calculate.invoke({"expression": "(2 + 3) * 4 ** 2 / 8 - -1"})) == "11"
    assert asyncio.run(calculate.invoke({"expression": "1 / 3"})) == "0.3333333333"
    with pytest.raises(ValueError, match="not arithmetic: __import__\\('os'\\)"):
        asyncio.run(calculate.invoke({"expression": "__import__('os')"}))
    assert asyncio.run(clock.invoke({"timezone": "Europe/Paris"})) == "04:04 on Monday (CET)"
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        asyncio.run(clock.invoke({"timezone": "Mars/Olympus"}))


CHAT_TURNS = [
    Turn(reasoning=["Greet back."], text=["Hello", ", Ada."]),
]


@pytest.mark.parametrize("dialect", ["openai", "responses", "anthropic"])
def test_chat_streams_from_each_provider(dialect: DialectName) -> None:
    with ScriptedServer(CHAT_TURNS, dialect=dialect) as server:
        base_url = server.origin if dialect == "anthropic" else server.base_url
        out, err = io.StringIO(), io.StringIO()
        argv = ["chat", "I am Ada.", "--provider", dialect, "--model", "m1", "--base-url", base_url]
        assert main(argv, out=out, err=err) == 0
    assert out.getvalue() == (
        "[reasoning] Greet back.\nHello, Ada.\n\n"
        "[usage] 1 turn · input 10 · output 5 · total 15 tokens (reasoning 0, cached 0)\n"
    )
    assert err.getvalue() == ""
    (request,) = server.requests
    assert request.json["model"] == "m1"


def test_chat_json_prints_one_event_a_line() -> None:
    with ScriptedServer([Turn(text=["Hi"])]) as server:
        out = io.StringIO()
        argv = ["chat", "Hi", "--model", "m1", "--base-url", server.base_url, "--json"]
        assert main(argv, out=out, err=io.StringIO()) == 0
    lines = out.getvalue().splitlines()
    assert [msgspec.json.decode(line)["type"] for line in lines] == ["text_delta", "final", "final_response"]
    assert lines[0] == '{"type":"text_delta","text":"Hi"}'


def test_chat_max_turns_ends_with_the_error_and_status_1() -> None:
    with ScriptedServer([Turn(calls=[Call("clock", {})])]) as server:
        out, err = io.StringIO(), io.StringIO()
        argv = ["chat", "Loop.", "--model", "m1", "--base-url", server.base_url, "--max-turns", "1"]
        assert main(argv, out=out, err=err) == 1
    assert out.getvalue() == "[tool call] clock {}\n"
    assert err.getvalue() == "rxllm: MaxTurnsError: the agent reached max_turns=1 without a final answer\n"


def test_chat_reports_the_providers_own_error() -> None:
    body = b'{"error": {"message": "The model `m9` does not exist", "type": "invalid_request_error"}}'
    with ScriptedServer([Reply(status=404, body=body)]) as server:
        err = io.StringIO()
        argv = ["chat", "Hi", "--model", "m9", "--base-url", server.base_url]
        assert main(argv, out=io.StringIO(), err=err) == 1
    assert err.getvalue() == (
        "rxllm: NotFoundError: HTTP 404: The model `m9` does not exist (type=invalid_request_error)"
        f" [POST {server.base_url}/chat/completions]\n"
    )


def test_chat_without_a_key_for_a_remote_server_says_which_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    err = io.StringIO()
    assert main(["chat", "Hi", "--provider", "anthropic", "--model", "m"], out=io.StringIO(), err=err) == 2
    assert err.getvalue() == (
        "rxllm: set ANTHROPIC_API_KEY for --provider anthropic "
        "(or pass --base-url for a local server that needs no key)\n"
    )


def test_no_command_prints_help_and_status_2() -> None:
    err = io.StringIO()
    assert main([], out=io.StringIO(), err=err) == 2
    assert err.getvalue().startswith("usage: rxllm [-h] [--version] COMMAND ...")


def _default_sigint() -> None:
    # A suite run as a background job inherits SIGINT ignored, and so would the child: Python then
    # installs no KeyboardInterrupt handler. The child gets the default, as a terminal gives it.
    signal.signal(signal.SIGINT, signal.default_int_handler)


def chat_process(base_url: str, **options: object) -> subprocess.Popen[str]:
    command = [PYTHON, "-m", "rxllm", "chat", "Count.", "--model", "m1", "--base-url", base_url]
    return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
        command, stdout=subprocess.PIPE, text=True, env=ENV, preexec_fn=_default_sigint, **options
    )


def test_ctrl_c_closes_the_connection_and_exits_130_without_a_traceback() -> None:
    slow = Reply(Turn(text=["tick "] * 500), delay=0.02)
    with ScriptedServer([slow]) as server:
        process = chat_process(server.base_url, stderr=subprocess.PIPE)
        assert process.stdout is not None and process.stderr is not None
        assert process.stdout.read(10) == "tick tick "
        process.send_signal(signal.SIGINT)
        status = process.wait(20)
        assert server.disconnected.wait(5)
        stderr = process.stderr.read()
        process.stdout.close()
        process.stderr.close()
    assert status == 130
    assert stderr == "\nrxllm: cancelled\n"


def test_the_waiting_indicator_shows_on_a_terminal_until_the_first_event() -> None:
    late = Reply(Turn(text=["Hi"]), delay=0.4)
    with ScriptedServer([late]) as server:
        leader, follower = pty.openpty()
        process = chat_process(server.base_url, stderr=follower)
        os.close(follower)
        assert process.stdout is not None
        out = process.stdout.read()
        process.stdout.close()
        assert process.wait(20) == 0
        shown = b""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                piece = os.read(leader, 4096)
            except OSError:  # the terminal closed: everything was read
                break
            if not piece:
                break
            shown += piece
        os.close(leader)
    text = shown.decode()
    assert text.startswith("\r⠋ waiting for the model…\r⠙ waiting for the model…")
    assert text.endswith("\r\x1b[K")
    assert out.startswith("Hi\n")


def test_no_waiting_indicator_when_stderr_is_not_a_terminal() -> None:
    with ScriptedServer([Reply(Turn(text=["Hi"]), delay=0.3)]) as server:
        process = chat_process(server.base_url, stderr=subprocess.PIPE)
        stdout, stderr = process.communicate(timeout=20)
    assert (process.returncode, stderr) == (0, "")
    assert stdout.startswith("Hi\n")


def test_console_shows_tool_errors_and_keeps_text_on_its_own_lines() -> None:
    out = io.StringIO()
    console = Console(out)
    console.show(TextDelta(text="Checking"))
    console.show(
        ToolResult(id="c", call_id="c", internal_call_id="i", name="clock", content="boom", is_error=True)
    )
    console.show(TextDelta(text="Sorry."))
    console.close()
    assert out.getvalue() == "Checking\n[tool error] clock: boom\nSorry.\n"


RESET = StreamReset(attempt=2, reason="connection lost mid-stream")


def test_console_on_a_terminal_erases_the_discarded_turn_and_redraws() -> None:
    out = io.StringIO()
    console = Console(out, live=True, columns=10)
    console.prompt("Hi")  # the prompt stays: it is not part of the turn
    console.show(TextDelta(text="Hello, this is "))  # 15 columns: two rows on a 10-column terminal
    console.show(TextDelta(text="a partial\nanswer"))
    console.show(RESET)
    console.show(TextDelta(text="Hello!"))
    console.close()
    # Up 3 rows (two wrapped, one after the line break) to the turn's start, clear below, redraw.
    assert out.getvalue() == (
        "you: Hi\nHello, this is a partial\nanswer"
        "\r\x1b[3A\x1b[J[retrying: connection lost mid-stream]\nHello!\n"
    )


def test_console_on_a_terminal_erases_only_the_current_turn() -> None:
    out = io.StringIO()
    console = Console(out, live=True, columns=80)
    call = ToolCall(id="c", call_id="c", internal_call_id="i", name="clock", arguments={})
    console.show(TextDelta(text="Let me look."))
    console.show(call)
    console.show(Final(finish_reason="tool_calls"))
    console.show(ToolResult(id="c", call_id="c", internal_call_id="i", name="clock", content="noon"))
    console.show(TextDelta(text="It is"))
    console.show(RESET)  # erases "It is" and nothing above it
    console.show(RESET)  # a second reset erases the first one's line
    console.show(TextDelta(text="It is noon."))
    console.close()
    assert out.getvalue() == (
        "Let me look.\n[tool call] clock {}\n[result] clock: noon\nIt is"
        "\r\x1b[J[retrying: connection lost mid-stream]\n"
        "\r\x1b[1A\x1b[J[retrying: connection lost mid-stream]\nIt is noon.\n"
    )


def test_console_counts_wide_characters_and_ignores_escapes() -> None:
    out = io.StringIO()
    console = Console(out, color=True, live=True, columns=4)
    console.show(ReasoningDelta(text="你好你好"))  # "[reasoning] " + 8 columns: 20 columns, five rows
    console.show(RESET)
    assert out.getvalue().endswith("\r\x1b[4A\x1b[J\x1b[33m[retrying: connection lost mid-stream]\x1b[0m\n")


def test_console_off_a_terminal_says_what_follows_replaces_the_above() -> None:
    out = io.StringIO()
    console = Console(out)
    console.show(TextDelta(text="Hel"))
    console.show(RESET)
    console.show(TextDelta(text="Hello."))
    console.close()
    assert out.getvalue() == (
        "Hel\n[retrying: connection lost mid-stream; what follows replaces the above]\nHello.\n"
    )


def test_chat_midstream_retries_resends_a_broken_turn() -> None:
    pieces = sse_bytes(Turn(text=["Hello", ", Ada."]), "openai")
    with ScriptedServer([Reply(pieces=pieces[:2]), Turn(text=["Hello", ", Ada."])]) as server:
        out, err = io.StringIO(), io.StringIO()
        argv = ["chat", "Hi", "--model", "m1", "--base-url", server.base_url, "--midstream-retries", "1"]
        assert main(argv, out=out, err=err) == 0
    assert out.getvalue() == (
        "Hello\n[retrying: stream ended without its end marker; what follows replaces the above]\n"
        "Hello, Ada.\n\n[usage] 1 turn · input 10 · output 5 · total 15 tokens (reasoning 0, cached 0)"
        " · incomplete: a request reported no usage\n"  # the cut attempt never sent its usage chunk
    )
    assert len(server.requests) == 2


def test_chat_without_midstream_retries_reports_the_truncation() -> None:
    pieces = sse_bytes(Turn(text=["Hello", ", Ada."]), "openai")
    with ScriptedServer([Reply(pieces=pieces[:2])]) as server:
        out, err = io.StringIO(), io.StringIO()
        assert main(["chat", "Hi", "--model", "m1", "--base-url", server.base_url], out=out, err=err) == 1
    assert out.getvalue() == "Hello\n"
    assert err.getvalue().startswith("rxllm: StreamTruncatedError: ")
    assert len(server.requests) == 1


def test_chat_json_ends_a_failed_run_with_its_error_info() -> None:
    body = b'{"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}'
    with ScriptedServer([Reply(status=429, body=body)] * 3) as server:
        out, err = io.StringIO(), io.StringIO()
        argv = ["chat", "Hi", "--model", "m1", "--base-url", server.base_url, "--json"]
        assert main(argv, out=out, err=err) == 1
    lines = out.getvalue().splitlines()
    # Two retries announced, then the error as the last line; stderr says it in words as before.
    assert [msgspec.json.decode(line)["type"] for line in lines] == ["retrying", "retrying", "error"]
    info = msgspec.json.decode(lines[-1], type=AnyEvent)
    url = f"{server.base_url}/chat/completions"
    message = f"HTTP 429: Rate limit reached (type=requests, code=rate_limit_exceeded) [POST {url}]"
    assert info == ErrorInfo(
        error_type="RateLimitError",
        message=message,
        status=429,
        provider_type="requests",
        code="rate_limit_exceeded",
    )
    assert err.getvalue() == f"rxllm: RateLimitError: {message}\n"
    assert len(server.requests) == 3


def test_console_shows_a_retry_before_the_first_event_as_a_line() -> None:
    out = io.StringIO()
    console = Console(out)
    console.show(Retrying(attempt=2, delay=0.4375, reason="HTTP 503", status=503))
    console.show(Retrying(attempt=3, delay=2.0, reason="HTTP 429, Retry-After 2 s", status=429))
    console.show(TextDelta(text="Hi"))
    console.close()
    assert (
        out.getvalue() == "[retrying in 0.44 s: HTTP 503]\n[retrying in 2 s: HTTP 429, Retry-After 2 s]\nHi\n"
    )


def test_console_says_when_the_usage_is_incomplete() -> None:
    out = io.StringIO()
    Console(out).show(FinalResponse(text="", turns=1, usage_complete=False))
    assert out.getvalue() == (
        "\n[usage] 1 turn · input 0 · output 0 · total 0 tokens (reasoning 0, cached 0)"
        " · incomplete: a request reported no usage\n"
    )


def test_console_ends_the_usage_line_with_the_runs_cost_where_it_is_known() -> None:
    usage = Usage(input_tokens=1000, output_tokens=500, total_tokens=1500, cached_input_tokens=200)
    at = datetime(2026, 11, 1, tzinfo=UTC)
    out = io.StringIO()
    console = Console(out, cost_of=lambda used: rxllm.price(used, model="gpt-4o", provider="openai", at=at))
    console.show(FinalResponse(text="", usage=usage, turns=2))
    assert out.getvalue() == (
        "\n[usage] 2 turns · input 1000 · output 500 · total 1500 tokens (reasoning 0, cached 200)"
        " · cost 0.00725 USD (prices of 2026-11-01)\n"
    )
    unknown = io.StringIO()
    Console(unknown, cost_of=lambda used: None).show(FinalResponse(text="", usage=usage, turns=2))
    assert "cost" not in unknown.getvalue()


def test_chat_with_a_local_server_named_like_a_priced_model_shows_no_cost() -> None:
    with ScriptedServer([Turn(text=["Hi"])], model="gpt-4o") as server:
        out, err = io.StringIO(), io.StringIO()
        argv = ["chat", "Hello", "--model", "gpt-4o", "--base-url", server.base_url]
        assert main(argv, out=out, err=err) == 0
    assert (
        out.getvalue()
        == "Hi\n\n[usage] 1 turn · input 10 · output 5 · total 15 tokens (reasoning 0, cached 0)\n"
    )


# -- chat: tools, a system prompt, the help ---------------------------------------------------------------

TOOLS_MODULE = '''
from rxllm import tool


@tool
def add(a: float, b: float) -> float:
    """Add two numbers."""
    return a + b


def shout(text: str) -> str:
    """Upper-case the text."""
    return text.upper()


NOT_A_FUNCTION = 3
'''


@pytest.fixture
def tools_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A module of tools in the current directory, under a name of its own for this test."""
    name = f"cli_tools_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(TOOLS_MODULE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".")])
    return name


def test_chat_tool_loads_tool_functions_the_agent_calls(tools_module: str) -> None:
    script = [
        Turn(calls=[Call("add", {"a": 2, "b": 3}, id="c1"), Call("shout", {"text": "hi"}, id="c2")]),
        Turn(text=["5 and HI."]),
    ]
    with ScriptedServer(script) as server:
        out, err = io.StringIO(), io.StringIO()
        argv = ["chat", "Go.", "--model", "m1", "--base-url", server.base_url]
        argv += ["--tool", f"{tools_module}:add", "--tool", f"{tools_module}:shout"]
        assert main(argv, out=out, err=err) == 0, err.getvalue()
    assert out.getvalue().startswith(
        '[tool call] add {"a": 2, "b": 3}\n[tool call] shout {"text": "hi"}\n'
        "[result] add: 5.0\n[result] shout: HI\n5 and HI.\n"
    )
    first, second = server.requests
    assert [t["function"]["name"] for t in first.json["tools"]] == ["add", "shout"]
    assert [(m["role"], m["content"]) for m in second.json["messages"][-2:]] == [
        ("tool", "5.0"),
        ("tool", "HI"),
    ]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("{module}", "--tool {module}: name a function as module:function, e.g. mytools:add"),
        (
            "no_such_module_here:add",
            "--tool no_such_module_here:add: cannot import no_such_module_here: "
            "No module named 'no_such_module_here'",
        ),
        ("{module}:subtract", "--tool {module}:subtract: {module} has no function subtract"),
        (
            "{module}:NOT_A_FUNCTION",
            "--tool {module}:NOT_A_FUNCTION: {module} has no function NOT_A_FUNCTION",
        ),
    ],
)
def test_chat_tool_that_cannot_load_says_why_and_exits_2(tools_module: str, spec: str, message: str) -> None:
    err = io.StringIO()
    argv = [
        "chat",
        "Hi",
        "--model",
        "m1",
        "--base-url",
        "http://127.0.0.1:9/v1",
        "--tool",
        spec.format(module=tools_module),
    ]
    assert main(argv, out=io.StringIO(), err=err) == 2
    assert err.getvalue() == f"rxllm: {message.format(module=tools_module)}\n"


def test_chat_system_is_the_system_prompt_of_every_request() -> None:
    with ScriptedServer([Turn(text=["Ahoy."])]) as server:
        argv = [
            "chat",
            "Hi",
            "--model",
            "m1",
            "--base-url",
            server.base_url,
            "--system",
            "Talk like a pirate.",
        ]
        assert main(argv, out=io.StringIO(), err=io.StringIO()) == 0
    assert server.requests[0].json["messages"] == [
        {"role": "system", "content": "Talk like a pirate."},
        {"role": "user", "content": "Hi"},
    ]


@pytest.mark.parametrize("command", [[], ["chat"], ["demo"]])
def test_help_describes_every_option_with_its_default_and_the_environment(command: list[str]) -> None:
    done = subprocess.run(
        [PYTHON, "-m", "rxllm", *command, "--help"], capture_output=True, text=True, env=ENV
    )
    assert done.returncode == 0
    shown = " ".join(done.stdout.split())  # argparse wraps the help to the terminal's width
    parser = cli_parser()
    subcommands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    chosen = parser if not command else subcommands.choices[command[0]]
    for action in chosen._actions:
        if isinstance(action, argparse._HelpAction | argparse._VersionAction | argparse._SubParsersAction):
            continue
        assert action.help and ("(default: " in action.help or "(required)" in action.help), action.dest
        assert " ".join(action.help.split()) in shown, action.dest
    if command != ["demo"]:
        for variable in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"):
            assert variable in done.stdout


# -- the interactive chat, in a terminal ------------------------------------------------------------------


class Terminal:
    """A pseudo-terminal the chat runs in as its controlling terminal: keys typed, the screen read."""

    def __init__(self, command: list[str]) -> None:
        self.leader, follower = pty.openpty()

        def in_the_terminal() -> None:
            os.setsid()  # a session of its own, whose controlling terminal is the pty: Ctrl-C is SIGINT
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
            signal.signal(signal.SIGINT, signal.default_int_handler)

        self.process = subprocess.Popen(
            command, stdin=follower, stdout=follower, stderr=follower, env=ENV, preexec_fn=in_the_terminal
        )
        os.close(follower)
        self.screen = ""

    def type(self, keys: str) -> None:
        os.write(self.leader, keys.encode())

    def wait_for(self, text: str, timeout: float = 20) -> str:
        """Read until ``text`` shows after what was read before; return what came up to it."""
        deadline = time.monotonic() + timeout
        while text not in self.screen:
            left = deadline - time.monotonic()
            assert left > 0, f"{text!r} never showed; the screen so far:\n{self.screen}"
            ready, _, _ = select.select([self.leader], [], [], left)
            if ready:
                try:
                    piece = os.read(self.leader, 4096)
                except OSError:  # the terminal closed
                    piece = b""
                assert piece, f"the chat ended before {text!r} showed; the screen:\n{self.screen}"
                self.screen += piece.decode(errors="replace")
        before, _, self.screen = self.screen.partition(text)
        return before

    def close(self) -> int:
        status = self.process.wait(20)
        os.close(self.leader)
        return status

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *_: object) -> None:
        if self.process.poll() is None:  # a failed test: end the chat, tidily
            self.process.kill()
            self.process.wait()
            os.close(self.leader)


def test_the_interactive_chat_keeps_the_history_cancels_on_ctrl_c_and_leaves_on_ctrl_d() -> None:
    def third(request: ReceivedRequest) -> Turn:
        # The cancelled exchange is not in the history; the first one is.
        assert [(m["role"], m["content"]) for m in request.json["messages"]] == [
            ("user", "I am Ada."),
            ("assistant", "Hello, Ada."),
            ("user", "Still there?"),
        ]
        return Turn(text=["Yes, Ada."])

    slow = Reply(Turn(text=["tick "] * 500), delay=0.02)
    with ScriptedServer([Turn(text=["Hello", ", Ada."]), slow, third]) as server:
        chat = [PYTHON, "-m", "rxllm", "chat", "--model", "m1", "--base-url", server.base_url]
        with Terminal(chat) as terminal:
            you = "\x1b[1myou:\x1b[0m "  # bold on a terminal
            assert "Ctrl-C cancels an answer, Ctrl-D leaves" in terminal.wait_for(you)
            terminal.type("I am Ada.\r")
            answer = terminal.wait_for(you)
            assert "Hello, Ada.\r\n" in answer and "[usage] 1 turn · input 10 · output 5" in answer
            terminal.type("Count.\r")
            terminal.wait_for("tick tick ")
            terminal.type("\x03")  # Ctrl-C, as the terminal sends it: SIGINT to the chat
            assert server.disconnected.wait(10), "the cancelled answer's connection stayed open"
            terminal.wait_for("[cancelled]")
            terminal.wait_for(you)
            terminal.type("Still there?\r")
            assert "Yes, Ada." in terminal.wait_for(you)
            terminal.type("\x04")  # Ctrl-D at the prompt: the end of input
            status = terminal.close()
    assert status == 0
    assert len(server.requests) == 3
    assert [(m["role"], m["content"]) for m in server.requests[1].json["messages"]] == [
        ("user", "I am Ada."),
        ("assistant", "Hello, Ada."),
        ("user", "Count."),
    ]


def test_the_interactive_chat_reads_prompts_from_a_pipe_until_its_end() -> None:
    with ScriptedServer([Turn(text=["One."]), Turn(text=["Two."])]) as server:
        done = subprocess.run(
            [PYTHON, "-m", "rxllm", "chat", "--model", "m1", "--base-url", server.base_url, "--json"],
            input="first\n\nsecond\n",
            capture_output=True,
            text=True,
            env=ENV,
            timeout=60,
        )
    assert done.returncode == 0, done.stderr
    kinds = [msgspec.json.decode(line)["type"] for line in done.stdout.splitlines()]
    assert kinds == ["text_delta", "final", "final_response"] * 2  # stdout holds the events alone
    assert (
        done.stderr == "you: you: you: you: \n"
    )  # the prompt, on stderr with --json; an empty line asks again
    assert [m["content"] for m in server.requests[1].json["messages"]] == ["first", "One.", "second"]
