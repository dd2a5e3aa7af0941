"""rxllm.testing: marble helpers, the scripted_server fixture, and the README's "Testing your pipelines"."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from reactivex import Observable
from reactivex import operators as ops

import rxllm
from rxllm import Agent, Final, FinalResponse, TextDelta, ToolResult, tool
from rxllm.testing import (
    Call,
    ScriptedModel,
    ScriptedServer,
    Turn,
    assert_marbles,
    event_values,
)

# -- a user's own operator, tested with marbles (as in the README) --------------------------


def shout() -> Callable[[Observable[Any]], Observable[Any]]:
    """Upper-case text deltas; everything else passes through."""
    return ops.map(lambda e: TextDelta(text=e.text.upper()) if isinstance(e, TextDelta) else e)


values = event_values(a=TextDelta(text="hi"), A=TextDelta(text="HI"), f=Final(finish_reason="stop"))


def test_my_operator_upper_cases_text() -> None:
    assert_marbles(shout(), "-a--f-|", "-A--f-|", values)


def test_my_operator_passes_errors_through() -> None:
    assert_marbles(shout(), "-a-#", "-A-#", values, ValueError("boom"))


def test_a_marble_mismatch_shows_both_timelines() -> None:
    with pytest.raises(AssertionError) as failure:
        assert_marbles(shout(), "-a--f-|", "-a--f-|", values)
    assert str(failure.value) == (
        "marbles differ for source '-a--f-|'\nexpected:\n  1: a\n  4: f\n  6: |\ngot:\n  1: A\n  4: f\n  6: |"
    )


def test_errors_must_also_be_of_the_expected_type() -> None:
    with pytest.raises(AssertionError, match="  3: # KeyError: 'boom'"):
        assert_marbles(shout(), "-a-#", "-A-#", values, KeyError("boom"), expected_error=ValueError("'boom'"))


def test_unknown_values_show_by_their_repr() -> None:
    with pytest.raises(AssertionError, match=r"  1: TextDelta\(text='HO'\)"):
        assert_marbles(ops.map(lambda _: TextDelta(text="HO")), "-a-|", "-A-|", values)


# -- an agent test with the scripted model (as in the README) --------------------------------


@tool
def clock(tz: str) -> str:
    """The time in a time zone."""
    return f"12:00 in {tz}"


def test_the_agent_answers_with_the_clock() -> None:
    model = ScriptedModel([Turn(calls=[Call("clock", {"tz": "UTC"})]), Turn(text=["It is noon."])])
    events = rxllm.run(Agent(model, tools=[clock]).stream_prompt("What time is it?"))
    assert [e.content for e in events if isinstance(e, ToolResult)] == ["12:00 in UTC"]
    final = events[-1]
    assert isinstance(final, FinalResponse) and final.text == "It is noon."
    assert model.requests[1].messages[-1].role == "tool"


# -- the fixture, from the pytest plugin --------------------------------------------------------


def test_the_fixture_serves_a_sync_test(scripted_server: Callable[..., ScriptedServer]) -> None:
    server = scripted_server([Turn(text=["Hi"])], dialect="responses")
    assert server.base_url.startswith("http://127.0.0.1:")

    async def ask() -> list[Any]:
        async with server.provider() as provider:
            return [
                e
                async for e in rxllm.aiter(
                    provider.stream(rxllm.CompletionRequest([rxllm.Message.user("x")]))
                )
            ]

    events = asyncio.run(ask())
    assert events[0] == TextDelta(text="Hi")
    assert server.requests[0].path == "/v1/responses"


async def test_the_fixture_serves_an_async_test(scripted_server: Callable[..., ScriptedServer]) -> None:
    server = scripted_server([Turn(text=["Hi"])], dialect="anthropic", delay=0.01)
    async with server.provider() as provider:
        events = [e async for e in rxllm.aiter(Agent(provider).stream_prompt("x"))]
    assert isinstance(events[-1], FinalResponse) and events[-1].text == "Hi"


def test_the_pytest_plugin_loads_nothing_of_rxllm_until_a_test_uses_its_fixture(tmp_path: Path) -> None:
    (tmp_path / "test_other.py").write_text(
        "import sys\n\n"
        "def test_nothing_of_rxllm_is_loaded():\n"
        "    loaded = sorted(m for m in sys.modules if m.startswith(('rxllm', 'reactivex', 'msgspec')))\n"
        "    plugin = ['rxllm', 'rxllm._lazy', 'rxllm._version', 'rxllm.testing']\n"
        "    plugin.append('rxllm.testing._pytest_plugin')\n"
        "    assert loaded == plugin, loaded\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    assert "1 passed" in done.stdout


# -- a failing user test shows the user's lines, not the helpers' ----------------------------------

FAILING_USER_TESTS = """
import pytest
import reactivex
from reactivex import operators as ops

import rxllm
from rxllm import CompletionRequest, Message, TextDelta
from rxllm.testing import Reply, assert_marbles, event_values

values = event_values(a=TextDelta(text="hi"), A=TextDelta(text="HI"))


def test_marbles():
    assert_marbles(ops.map(lambda e: e), "-a-|", "-A-|", values)


def test_run():
    rxllm.run(reactivex.throw(ValueError("boom in run")))


def test_run_against_a_server(scripted_server):
    server = scripted_server([Reply(status=400, body=b'{"error": {"message": "bad thing"}}')])
    rxllm.run(server.provider().stream(CompletionRequest([Message.user("Hi")])))


def test_iterate():
    for _ in rxllm.iterate(reactivex.throw(ValueError("boom in iterate"))):
        pass


@pytest.mark.anyio
async def test_aiter():
    async for _ in rxllm.aiter(reactivex.throw(ValueError("boom in aiter"))):
        pass


@pytest.mark.anyio
async def test_run_inside_a_loop():
    rxllm.run(reactivex.throw(ValueError("boom in a loop")))
"""


def test_a_failing_user_test_shows_none_of_the_helpers_frames(tmp_path: Path) -> None:
    (tmp_path / "test_user.py").write_text(FAILING_USER_TESTS)
    (tmp_path / "pytest.ini").write_text("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--tb=long", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = done.stdout
    assert "6 failed" in report, report[-3000:]
    # Each error shows right under the user's own line (the test's frame is the last one shown) ...
    for where in ("run", "iterate", "aiter", "a loop"):
        assert f"\nE       ValueError: boom in {where}\n" in report
    assert '\n>       assert_marbles(ops.map(lambda e: e), "-a-|", "-A-|", values)\n' in report
    assert "\nE       AssertionError: marbles differ for source '-a-|'\n" in report
    # ... or, raised by the provider, under the line that raised it.
    assert "rxllm.errors.BadRequestError: HTTP 400: bad thing" in report
    # Neither the helpers' source nor asyncio's runner between the user's line and the error's origin.
    for shown in ("rxllm/testing.py", "rxllm/bridges.py", "asyncio/runners.py", "asyncio/base_events.py"):
        assert shown not in report, report


def test_the_kit_by_its_first_address_is_the_same_kit() -> None:
    # rxllm.providers.scripted named the scripted model and server before rxllm.testing became a package.
    import rxllm.providers.scripted as first
    import rxllm.testing as kit

    for name in ["Call", "Turn", "ScriptedModel", "ScriptedServer", "Reply", "ReceivedRequest", "sse_bytes"]:
        assert getattr(first, name) is getattr(kit, name), name
    assert set(kit.__all__) <= set(first.__all__) | {"assert_marbles", "event_values", "timeline"}
