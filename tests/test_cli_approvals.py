"""The terminal's approvals: ``TerminalApprovals`` asks y / n / e about calls that need approval."""

from __future__ import annotations

import io
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from approval_kit import pay

from rxllm.agent import Agent
from rxllm.cli import _show_run
from rxllm.testing import Call, ScriptedServer, Turn

TESTS = Path(__file__).parent
QUESTION = '[approve?] pay {"to": "Ada", "amount": 120}: run it? [y]es / [n]o / [e]dit: '
TAIL = "Done.\n\n[usage] 2 turns · input 20 · output 10 · total 30 tokens (reasoning 0, cached 0)\n"


def script() -> list[Turn]:
    return [Turn(calls=[Call("pay", {"to": "Ada", "amount": 120}, id="call_1")]), Turn(text=["Done."])]


async def show(answers: str, *, json: bool = False) -> tuple[str, str, ScriptedServer]:
    async with ScriptedServer(script()) as server:
        async with server.provider() as model:
            out, err = io.StringIO(), io.StringIO()
            await _show_run(
                Agent(model, tools=[pay]),
                "Pay Ada",
                out=out,
                err=err,
                json=json,
                color=False,
                answers=io.StringIO(answers),
            )
    return out.getvalue(), err.getvalue(), server


def sent(server: ScriptedServer) -> tuple[str, str]:
    assistant, result = server.requests[1].json["messages"][1:]
    return assistant["tool_calls"][0]["function"]["arguments"], result["content"]


async def test_y_runs_the_call() -> None:
    out, _, server = await show("y\n")
    assert out == (
        '[tool call] pay {"to": "Ada", "amount": 120}\n'
        f"{QUESTION}y\n"
        "[result] pay: paid 120 EUR to Ada\n" + TAIL
    )
    assert sent(server) == ('{"to":"Ada","amount":120}', "paid 120 EUR to Ada")


async def test_n_denies_it_with_the_reason_typed() -> None:
    out, _, server = await show("n\nToo much.\n")
    assert out == (
        '[tool call] pay {"to": "Ada", "amount": 120}\n'
        f"{QUESTION}n\nreason (Enter for none): Too much.\n"
        "[tool error] pay: Too much.\n" + TAIL
    )
    assert sent(server) == ('{"to":"Ada","amount":120}', "Too much.")


async def test_n_without_a_reason_says_the_user_denied_it() -> None:
    _, _, server = await show("no\n\n")
    assert sent(server)[1] == "The user denied this call."


async def test_e_edits_the_arguments_asking_again_until_they_fit() -> None:
    answers = 'maybe\ne\n{bad\ne\n[1]\ne\n{"to": "Ada", "amount": "many"}\ne\n{"to": "Ada", "amount": 90}\n'
    out, _, server = await show(answers)
    keeps = 'arguments as JSON (Enter keeps {"to":"Ada","amount":120}): '
    assert out == (
        '[tool call] pay {"to": "Ada", "amount": 120}\n'
        f"{QUESTION}maybe\n[answer y, n or e]\n"
        f"{QUESTION}e\n{keeps}{{bad\n[not JSON: JSON is malformed: object keys must be strings (byte 1)]\n"
        f"{QUESTION}e\n{keeps}[1]\n[the arguments are a JSON object: {{...}}]\n"
        f'{QUESTION}e\n{keeps}{{"to": "Ada", "amount": "many"}}\n'
        "[the edited arguments do not fit: invalid arguments for tool 'pay': Expected `int`, got `str` - at "
        "`$.amount`; the call still waits for an answer]\n"
        f'{QUESTION}e\n{keeps}{{"to": "Ada", "amount": 90}}\n'
        "[result] pay: paid 90 EUR to Ada\n" + TAIL
    )
    assert sent(server) == ('{"to":"Ada","amount":90}', "paid 90 EUR to Ada")


async def test_enter_keeps_the_arguments_as_they_are() -> None:
    _, _, server = await show("e\n\n")
    assert sent(server) == ('{"to":"Ada","amount":120}', "paid 120 EUR to Ada")


async def test_the_end_of_the_input_denies_the_call() -> None:
    out, _, server = await show("")
    assert f"{QUESTION}\n[tool error] pay: The user gave no answer (the terminal's input ended).\n" in out
    assert sent(server)[1] == "The user gave no answer (the terminal's input ended)."


async def test_with_json_the_question_goes_to_stderr_and_stdout_stays_json_lines() -> None:
    out, err, server = await show("y\n", json=True)
    assert err == f"{QUESTION}y\n"
    kinds = [line.split('"type":"')[1].split('"')[0] for line in out.splitlines()]
    assert kinds == [
        "tool_call_delta", "tool_call_delta", "tool_call", "final", "tool_approval_request",
        "tool_result", "text_delta", "final", "final_response",
    ]  # fmt: skip
    assert sent(server)[1] == "paid 120 EUR to Ada"


PTY_SCRIPT = """
import asyncio, sys
from approval_kit import pay
from rxllm.agent import Agent
from rxllm.cli import _show_run
from rxllm.providers.openai import OpenAIChat

async def main() -> None:
    async with OpenAIChat("scripted-model", base_url=sys.argv[1], api_key="") as model:
        agent = Agent(model, tools=[pay])
        await _show_run(agent, "Pay Ada", out=sys.stdout, err=sys.stderr, json=False, color=False)

asyncio.run(main())
"""


def read_until(fd: int, wanted: bytes, seen: bytearray, deadline: float) -> None:
    while wanted not in seen:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        assert ready, f"no {wanted!r} in {bytes(seen)!r}"
        chunk = os.read(fd, 4096)
        assert chunk, f"the process ended before {wanted!r}: {bytes(seen)!r}"
        seen += chunk


def test_a_real_terminal_answers_from_its_keyboard() -> None:
    """Stdin a pseudo-terminal: the question waits for a typed ``y``; the loop is never blocked."""
    with ScriptedServer(script()) as server:
        controller, terminal = pty.openpty()
        env: dict[str, Any] = {"PYTHONPATH": str(TESTS), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        process = subprocess.Popen(
            [sys.executable, "-c", PTY_SCRIPT, server.base_url],
            stdin=terminal,
            stdout=terminal,
            stderr=subprocess.PIPE,
            env=env,
        )
        os.close(terminal)
        seen = bytearray()
        try:
            read_until(controller, b"[e]dit: ", seen, time.monotonic() + 30)
            assert len(server.requests) == 1, "the run waits for the answer"
            os.write(controller, b"y\n")
            read_until(controller, b"[usage]", seen, time.monotonic() + 30)
            assert process.wait(30) == 0, process.stderr.read() if process.stderr else ""
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            os.close(controller)
            if process.stderr is not None:
                process.stderr.close()
    shown = seen.decode().replace("\r\n", "\n")
    assert f"{QUESTION}y\n[result] pay: paid 120 EUR to Ada\n" in shown, shown
    assert sent(server) == ('{"to":"Ada","amount":120}', "paid 120 EUR to Ada")
