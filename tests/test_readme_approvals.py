"""The README's approvals section: its marbles parse and say what a run does; its examples run as written."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from reactivex.notification import OnCompleted, OnNext
from reactivex.testing.marbles import marbles_testing

from rxllm.testing import Call, ScriptedServer, Turn

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
SECTION = README[
    README.index("## Asking a person first: tool approvals") : README.index("## Structured output")
]
EXAMPLES = re.findall(r"```python\n(.*?)```", SECTION, re.S)


def readme_marbles(mode: str) -> tuple[str, str]:
    """The ``turn`` and ``run`` marbles of the README diagram headed ``approvals=...`` or ``suspend=True``."""
    head = {"live": "approvals=Approvals()", "suspended": "suspend=True"}[mode]
    (block,) = [b for b in re.findall(r"```text\n(.*?)```", SECTION, re.S) if b.startswith(head + "\n")]
    lines = dict(
        line.split(None, 2)[:2] for line in block.splitlines()[1:] if line.startswith(("turn", "run"))
    )
    return lines["turn"], lines["run"]


def timeline(marbles: str) -> list[tuple[float, str]]:
    with marbles_testing() as (_start, _cold, _hot, exp):
        records = exp(marbles, None, None)
    return [
        (r.time - 200, r.value.value if isinstance(r.value, OnNext) else "|")
        for r in records
        if isinstance(r.value, OnNext | OnCompleted)
    ]


def test_the_live_marbles_put_the_request_as_the_turn_ends_and_results_in_call_order() -> None:
    turn, run = readme_marbles("live")
    turn_events, run_events = timeline(turn), timeline(run)
    assert [name for _, name in turn_events] == ["a", "l", "t", "|"]
    assert [name for _, name in run_events] == ["a", "l", "t", "r", "x", "y", "c", "f", "F", "|"]
    ends = dict((name, at) for at, name in turn_events)["|"]
    at = dict((name, time) for time, name in run_events)
    assert at["r"] == ends, "the request comes as the turn's stream completes"
    assert at["r"] < at["x"] < at["y"] < at["c"]


def test_the_suspended_marbles_parse_as_the_marble_test_runs_them() -> None:
    turn, run = readme_marbles("suspended")
    assert [name for _, name in timeline(run)] == ["a", "b", "t", "r", "s", "S", "|"]
    assert timeline(run)[-1][0] == timeline(turn)[-1][0], (
        "requests, suspension and completion as the turn ends"
    )


def test_the_live_example_asks_and_answers(capsys: pytest.CaptureFixture[str]) -> None:
    (example, _) = EXAMPLES
    remote = 'OpenAIChat("gpt-4o-mini")'
    assert remote in example
    asked: list[str] = []

    def answer_with(reply: str) -> Any:
        def fake_input(prompt: str) -> str:
            asked.append(prompt)
            return reply

        return fake_input

    for reply, shown, sent in [
        ("100", "pay: sent 100 EUR to Ada\nSent.\n", '{"to":"Ada","amount":100}'),
        ("n", "pay: The user said no. (error)\nSent.\n", '{"to":"Ada","amount":120}'),
    ]:
        script = [Turn(calls=[Call("pay", {"to": "Ada", "amount": 120}, id="call_1")]), Turn(text=["Sent."])]
        with ScriptedServer(script) as server:
            code = example.replace(remote, f'OpenAIChat("gpt-4o-mini", base_url={server.base_url!r})')
            exec(
                compile(code, "README approvals example", "exec"),
                {"__name__": "readme", "input": answer_with(reply)},
            )
        assert capsys.readouterr().out == shown
        assert server.requests[1].json["messages"][1]["tool_calls"][0]["function"]["arguments"] == sent
    assert asked == ["Run pay({'to': 'Ada', 'amount': 120})? [y/N/100] "] * 2


def test_the_suspended_example_stores_the_state_and_answers_later() -> None:
    import asyncio

    from rxllm import Agent, tool

    (_, example) = EXAMPLES
    namespace: dict[str, Any] = {"__name__": "readme"}
    exec(compile(example, "README suspended example", "exec"), namespace)

    @tool(needs_approval=True)
    def pay(to: str, amount: int) -> str:
        """Send money."""
        return f"sent {amount} EUR to {to}"

    script = [Turn(calls=[Call("pay", {"to": "Ada", "amount": 120}, id="call_1")]), Turn(text=["Sent."])]
    with ScriptedServer(script) as server:

        async def both() -> tuple[bytes, str]:
            async with server.provider() as model:
                saved = await namespace["ask"](Agent(model, tools=[pay]), "Send Ada 120 euros.")
            async with server.provider() as model:  # a new agent, as after a restart
                return saved, await namespace["answer"](Agent(model, tools=[pay]), saved, True)

        saved, text = asyncio.run(both())
    assert saved.startswith(b'{"version":1,"prompt":"Send Ada 120 euros."')
    assert text == "Sent."
    assert server.requests[1].json["messages"][-1] == {
        "role": "tool",
        "tool_call_id": "call_1",
        "content": "sent 120 EUR to Ada",
    }
