"""Hooks written as a user writes them: plain ``def`` or ``async def``, and hooks that fail."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import Closing, Reply, collect_events
from openai_sse import MODEL, text_turn, tool_turn

from rxllm import Agent, Final, Hook, Skip, Terminate, ToolResult, tool
from rxllm.errors import CallbackError, PromptCancelledError
from rxllm.providers.openai import OpenAIChat

TURNS = [
    Reply(tool_turn(("call_w1", "get_weather", '{"city": "Paris"}'), text="Let me look.")),
    Reply(text_turn("Sun", "ny.")),
]


@tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    return f"Sunny in {city}"


class PlainHook(Hook):
    """Every method a plain ``def``, as a user who forgot ``async`` writes it."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def on_completion_call(self, prompt: str, history: Any) -> None:  # type: ignore[override]
        self.calls.append(("on_completion_call", prompt))

    def on_text_delta(self, delta: str, aggregated: str) -> None:  # type: ignore[override]
        self.calls.append(("on_text_delta", delta, aggregated))

    def on_tool_call(self, name: str, call_id: str, internal_call_id: str, arguments: Any) -> Skip:  # type: ignore[override]
        self.calls.append(("on_tool_call", name))
        return Skip("not today")

    def on_tool_result(  # type: ignore[override]
        self, name: str, call_id: str, internal_call_id: str, arguments: Any, result: str
    ) -> None:
        self.calls.append(("on_tool_result", name, result))

    def on_turn_finish(self, prompt: str, final: Final) -> None:  # type: ignore[override]
        self.calls.append(("on_turn_finish", final.finish_reason))


async def test_plain_def_hooks_are_called_and_their_answers_kept(sse_server: Any, closing: Closing) -> None:
    server = await sse_server(TURNS)
    hook = PlainHook()
    model = closing(OpenAIChat(MODEL, base_url=server.base_url))
    result = await collect_events(Agent(model, tools=[get_weather]).stream_prompt("Weather?", hook=hook))
    assert result.error is None
    assert hook.calls == [
        ("on_completion_call", "Weather?"),
        ("on_text_delta", "Let me look.", "Let me look."),
        ("on_turn_finish", "tool_calls"),
        ("on_tool_call", "get_weather"),
        ("on_tool_result", "get_weather", "not today"),
        ("on_completion_call", "Weather?"),
        ("on_text_delta", "Sun", "Sun"),
        ("on_text_delta", "ny.", "Sunny."),
        ("on_turn_finish", "stop"),
    ]
    (skipped,) = [event for event in result.events if isinstance(event, ToolResult)]
    assert skipped.content == "not today"


METHODS = ["on_completion_call", "on_text_delta", "on_tool_call", "on_tool_result", "on_turn_finish"]


def raising(method: str, *, sync: bool) -> Hook:
    boom = LookupError(f"broken {method}")

    def fail(self: Hook, *args: Any) -> None:
        raise boom

    async def afail(self: Hook, *args: Any) -> None:
        raise boom

    broken: Hook = type("Broken", (Hook,), {method: fail if sync else afail})()
    return broken


@pytest.mark.parametrize("sync", [False, True], ids=["async", "sync"])
@pytest.mark.parametrize("method", METHODS)
async def test_a_hook_that_raises_ends_the_run_with_callback_error(
    sse_server: Any, closing: Closing, method: str, sync: bool
) -> None:
    server = await sse_server(TURNS)
    model = closing(OpenAIChat(MODEL, base_url=server.base_url))
    hook = raising(method, sync=sync)
    result = await collect_events(Agent(model, tools=[get_weather]).stream_prompt("Weather?", hook=hook))
    error = result.error
    assert type(error) is CallbackError
    assert error.callback == f"Broken.{method}"
    assert str(error) == f"Broken.{method} raised LookupError: broken {method}"
    assert type(error.__cause__) is LookupError
    assert len(server.requests) == (0 if method == "on_completion_call" else 1)


class Wrong(Hook):
    async def on_text_delta(self, delta: str, aggregated: str) -> Any:
        return "continue"


async def test_a_hook_that_returns_something_else_ends_the_run_saying_what_it_returned(
    sse_server: Any, closing: Closing
) -> None:
    server = await sse_server(TURNS)
    model = closing(OpenAIChat(MODEL, base_url=server.base_url))
    result = await collect_events(Agent(model).stream_prompt("Weather?", hook=Wrong()))
    error = result.error
    assert type(error) is CallbackError
    assert str(error) == (
        "Wrong.on_text_delta raised TypeError: returned 'continue'; a hook returns None or Terminate(reason)"
    )


class StopAtSecondDelta(Hook):
    def on_text_delta(self, delta: str, aggregated: str) -> Terminate | None:  # type: ignore[override]
        return Terminate("enough") if aggregated == "Sunny." else None


async def test_terminate_from_a_plain_def_hook_still_terminates(sse_server: Any, closing: Closing) -> None:
    server = await sse_server(TURNS)
    model = closing(OpenAIChat(MODEL, base_url=server.base_url))
    result = await collect_events(
        Agent(model, tools=[get_weather]).stream_prompt("Weather?", hook=StopAtSecondDelta())
    )
    assert type(result.error) is PromptCancelledError
    assert result.error.reason == "enough"


class Aggregating(Hook):
    def __init__(self) -> None:
        self.last = ""
        self.count = 0

    async def on_text_delta(self, delta: str, aggregated: str) -> None:
        assert aggregated.endswith(delta)
        self.count += 1
        self.last = aggregated


async def test_aggregated_is_the_whole_text_so_far_over_many_deltas(
    sse_server: Any, closing: Closing
) -> None:
    pieces = [f"{n}," for n in range(3000)]
    server = await sse_server([Reply(text_turn(*pieces))])
    model = closing(OpenAIChat(MODEL, base_url=server.base_url))
    hook = Aggregating()
    result = await collect_events(Agent(model).stream_prompt("Count", hook=hook))
    assert result.error is None
    assert (hook.count, hook.last) == (3000, "".join(pieces))
