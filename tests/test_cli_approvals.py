"""The terminal's approvals: ``TerminalApprovals`` asks y / n / e about calls that need approval."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from approval_kit import pay
from test_cli import Terminal

from rxllm.agent import Agent
from rxllm.cli import _show_run
from rxllm.testing import Call, ReceivedRequest, ScriptedServer, Turn

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


MONEY_TOOLS = '''
from rxllm import tool


@tool(needs_approval=lambda arguments: arguments["amount"] > 100)
def pay(to: str, amount: int) -> str:
    """Pay someone.

    Args:
        to: Who gets the money.
        amount: How much, in whole euros.
    """
    return f"paid {amount} EUR to {to}"
'''


@pytest.fixture
def money_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """``./money_tools_<n>.py`` in the current directory, as a user's ``--tool money:pay`` would find it."""
    name = f"money_tools_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(MONEY_TOOLS)
    monkeypatch.chdir(tmp_path)
    return name


def pays(*calls: tuple[str, int]) -> list[Turn]:
    """A run per call: the model asks to pay, then says "Done."."""
    script: list[Turn] = []
    for number, (to, amount) in enumerate(calls, 1):
        script += [
            Turn(calls=[Call("pay", {"to": to, "amount": amount}, id=f"call_{number}")]),
            Turn(text=["Done."]),
        ]
    return script


def tool_exchange(request: ReceivedRequest) -> list[tuple[str, Any]]:
    """The request's last two messages: the assistant's call (its arguments as sent) and the tool's result."""
    assistant, result = request.json["messages"][-2:]
    return [
        (assistant["role"], assistant["tool_calls"][0]["function"]["arguments"]),
        (result["role"], result["content"]),
    ]


def test_the_interactive_chat_asks_in_the_terminal_and_sends_what_was_answered(money_tools: str) -> None:
    """y, e (edited arguments) and n (a reason) typed in a pseudo-terminal; Ctrl-C at a question cancels."""
    cancelled_call = Turn(calls=[Call("pay", {"to": "Cy", "amount": 300}, id="call_cy")])
    script = [*pays(("Ada", 120), ("Bob", 500)), cancelled_call, *pays(("Dee", 200))]
    with ScriptedServer(script) as server:
        chat = [sys.executable, "-m", "rxllm", "chat", "--model", "m1", "--base-url", server.base_url]
        with Terminal([*chat, "--tool", f"{money_tools}:pay", "--color", "never"]) as terminal:
            terminal.wait_for("you: ")
            terminal.type("Pay Ada.\r")
            terminal.wait_for('[approve?] pay {"to": "Ada", "amount": 120}: run it? [y]es / [n]o / [e]dit: ')
            assert len(server.requests) == 1, "the run waits for the answer, requesting nothing"
            terminal.type("y\r")
            assert "[result] pay: paid 120 EUR to Ada\r\nDone." in terminal.wait_for("you: ")

            terminal.type("Pay Bob.\r")
            terminal.wait_for('[approve?] pay {"to": "Bob", "amount": 500}: run it? [y]es / [n]o / [e]dit: ')
            terminal.type("e\r")
            terminal.wait_for('arguments as JSON (Enter keeps {"to":"Bob","amount":500}): ')
            terminal.type('{"to": "Bob", "amount": 50}\r')
            assert "[result] pay: paid 50 EUR to Bob\r\nDone." in terminal.wait_for("you: ")

            terminal.type("Pay Cy.\r")
            terminal.wait_for("[e]dit: ")
            terminal.type("\x03")  # Ctrl-C at the question: the answer is cancelled, the chat goes on
            terminal.wait_for("[cancelled]")
            terminal.wait_for("you: ")
            terminal.type("Pay Dee.\r")  # read by the prompt: the cancelled question left no reader behind
            terminal.wait_for("[e]dit: ")
            terminal.type("n\r")
            terminal.wait_for("reason (Enter for none): ")
            terminal.type("Not today.\r")
            assert "[tool error] pay: Not today.\r\nDone." in terminal.wait_for("you: ")
            terminal.type("\x04")
            assert terminal.close() == 0
    first, approved, edit, edited, cancelled, deny, denied = server.requests
    assert tool_exchange(approved) == [
        ("assistant", '{"to":"Ada","amount":120}'),
        ("tool", "paid 120 EUR to Ada"),
    ]
    assert tool_exchange(edited) == [
        ("assistant", '{"to":"Bob","amount":50}'),
        ("tool", "paid 50 EUR to Bob"),
    ]
    # The cancelled exchange is left out of the history; the next prompt is the one typed after it.
    assert deny.json["messages"][-1] == {"role": "user", "content": "Pay Dee."}
    assert [m["content"] for m in deny.json["messages"] if m["role"] == "user"] == [
        "Pay Ada.",
        "Pay Bob.",
        "Pay Dee.",
    ]
    assert tool_exchange(denied) == [("assistant", '{"to":"Dee","amount":200}'), ("tool", "Not today.")]


def test_a_one_shot_chat_reads_the_answers_from_a_pipe(money_tools: str) -> None:
    with ScriptedServer(pays(("Ada", 120))) as server:
        done = subprocess.run(
            [sys.executable, "-m", "rxllm", "chat", "Pay Ada.", "--model", "m1",
             "--base-url", server.base_url, "--tool", f"{money_tools}:pay"],
            input="n\nToo much.\n",
            capture_output=True,
            text=True,
            timeout=60,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        '[tool call] pay {"to": "Ada", "amount": 120}\n'
        f"{QUESTION}n\nreason (Enter for none): Too much.\n"
        "[tool error] pay: Too much.\n" + TAIL
    )
    assert tool_exchange(server.requests[1]) == [
        ("assistant", '{"to":"Ada","amount":120}'),
        ("tool", "Too much."),
    ]
