"""The agent end to end: OpenAIChat against a loopback server replaying scripted turns."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest
from conftest import Closing, Collected, Reply, collect_events, rxllm_tasks_finish
from openai_sse import MODEL, RESPONSE_ID, text_turn, tool_turn
from reactivex.subject import Subject

from rxllm import (
    Agent,
    CompletionResponse,
    Final,
    FinalResponse,
    Hook,
    MaxTurnsError,
    Message,
    OverloadedError,
    PromptCancelledError,
    Retrying,
    Skip,
    StreamReset,
    StreamTruncatedError,
    Terminate,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolResult,
    Usage,
    tool,
)
from rxllm.control import PauseControl
from rxllm.messages import ReasoningPart, TextPart, ToolCallPart, ToolResultPart
from rxllm.operators import agent as agent_operator
from rxllm.providers.openai import OpenAIChat
from rxllm.retry import Backoff
from rxllm.testing import Call, ScriptedModel, ScriptedServer, Turn, sse_bytes
from rxllm.testing import Reply as ScriptedReply
from rxllm.tools import TOOL_THREADS, tool_executor


@tool
def get_weather(city: str) -> str:
    """Current weather for a city.

    Args:
        city: The city name.
    """
    return f"Sunny, 21 °C in {city}"


@tool
async def clock(tz: str) -> str:
    """Current time in a time zone.

    Args:
        tz: IANA time zone name.
    """
    return f"12:00 in {tz}"


@tool
def broken(x: int) -> str:
    """Always fails."""
    raise ValueError(f"cannot handle {x}")


@pytest.fixture
def openai(closing: Closing) -> Callable[[str], OpenAIChat]:
    def make(base_url: str) -> OpenAIChat:
        return closing(OpenAIChat(MODEL, base_url=base_url))

    return make


def of_type(result: Collected, kind: type) -> list[Any]:
    return [event for event in result.events if isinstance(event, kind)]


WEATHER_TURNS = [
    Reply(tool_turn(("call_w1", "get_weather", '{"city": "Paris"}'), usage=(50, 12))),
    Reply(text_turn("It is sunny ", "in Paris.", usage=(80, 9))),
]


async def test_two_turn_weather_run(sse_server: Any, openai: Callable[[str], OpenAIChat]) -> None:
    server = await sse_server(WEATHER_TURNS)
    agent = Agent(openai(server.base_url), preamble="Be brief.", tools=[get_weather])
    result = await collect_events(agent.stream_prompt("Weather in Paris?"))

    assert result.completed
    internal = of_type(result, ToolCallDelta)[0].internal_call_id
    call = ToolCall(
        id="call_w1",
        call_id="call_w1",
        internal_call_id=internal,
        name="get_weather",
        arguments={"city": "Paris"},
    )
    assert result.events == [
        ToolCallDelta(
            id="call_w1", internal_call_id=internal, name="get_weather", arguments_delta='{"city":'
        ),
        ToolCallDelta(id="call_w1", internal_call_id=internal, arguments_delta=' "Paris"}'),
        call,
        Final(
            usage=Usage(input_tokens=50, output_tokens=12, total_tokens=62),
            finish_reason="tool_calls",
            response_id=RESPONSE_ID,
            model=MODEL,
        ),
        ToolResult(
            id="call_w1",
            call_id="call_w1",
            internal_call_id=internal,
            name="get_weather",
            content="Sunny, 21 °C in Paris",
        ),
        TextDelta(text="It is sunny "),
        TextDelta(text="in Paris."),
        Final(
            usage=Usage(input_tokens=80, output_tokens=9, total_tokens=89),
            finish_reason="stop",
            response_id=RESPONSE_ID,
            model=MODEL,
        ),
        FinalResponse(
            text="It is sunny in Paris.",
            usage=Usage(input_tokens=130, output_tokens=21, total_tokens=151),
            history=(
                Message.user("Weather in Paris?"),
                Message(
                    role="assistant",
                    content=(
                        ToolCallPart(
                            id="call_w1", call_id="call_w1", name="get_weather", arguments={"city": "Paris"}
                        ),
                    ),
                ),
                Message(
                    role="tool",
                    content=(
                        ToolResultPart(
                            call_id="call_w1", name="get_weather", content="Sunny, 21 °C in Paris"
                        ),
                    ),
                ),
                Message.assistant("It is sunny in Paris."),
            ),
            turns=2,
        ),
    ]
    assert len(server.requests) == 2
    first, second = (received.json for received in server.requests)
    assert first["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris?"},
    ]
    assert second == {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "id": "call_w1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_w1", "content": "Sunny, 21 °C in Paris"},
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Current weather for a city.",
                    "parameters": dict(get_weather.parameters),
                },
            }
        ],
    }


async def test_history_is_reusable_for_the_next_chat(
    sse_server: Any, openai: Callable[[str], OpenAIChat]
) -> None:
    server = await sse_server([*WEATHER_TURNS, Reply(text_turn("You're welcome."))])
    agent = Agent(openai(server.base_url), tools=[get_weather])
    first = await collect_events(agent.stream_prompt("Weather in Paris?"))
    history = first.events[-1].history
    second = await collect_events(agent.stream_chat("Thanks!", history))
    final = second.events[-1]
    assert isinstance(final, FinalResponse)
    assert final.history == (*history, Message.user("Thanks!"), Message.assistant("You're welcome."))
    assert final.turns == 1
    assert [m["role"] for m in server.requests[2].json["messages"]] == [
        "user",
        "assistant",
        "tool",
        "assistant",
        "user",
    ]


async def test_operator_answers_each_prompt_in_turn_carrying_history(
    sse_server: Any, openai: Callable[[str], OpenAIChat]
) -> None:
    server = await sse_server([Reply(text_turn("Hi Ada.")), Reply(text_turn("Your name is Ada."))])
    prompts: Subject[str] = Subject()
    events: list[Any] = []
    done = asyncio.Event()
    prompts.pipe(agent_operator(openai(server.base_url))).subscribe(
        events.append, lambda e: done.set(), done.set
    )
    prompts.on_next("I am Ada.")
    prompts.on_next("What is my name?")
    prompts.on_completed()
    await asyncio.wait_for(done.wait(), 5)
    finals = [e for e in events if isinstance(e, FinalResponse)]
    assert [f.text for f in finals] == ["Hi Ada.", "Your name is Ada."]
    assert server.requests[1].json["messages"] == [
        {"role": "user", "content": "I am Ada."},
        {"role": "assistant", "content": "Hi Ada."},
        {"role": "user", "content": "What is my name?"},
    ]


async def test_two_parallel_calls_run_at_once_and_keep_call_order(
    sse_server: Any, openai: Callable[[str], OpenAIChat]
) -> None:
    started: dict[str, asyncio.Event] = {"a": asyncio.Event(), "b": asyncio.Event()}
    finished: dict[str, asyncio.Event] = {"a": asyncio.Event(), "b": asyncio.Event()}
    running = 0
    most = 0

    @tool
    async def job(name: str) -> str:
        """A job that waits until the other one has started."""
        nonlocal running, most
        running += 1
        most = max(most, running)
        started[name].set()
        other = "b" if name == "a" else "a"
        await asyncio.wait_for(started[other].wait(), 2)
        # The first call finishes last, so call order must be restored.
        if name == "a":
            await asyncio.wait_for(finished["b"].wait(), 2)
        running -= 1
        finished[name].set()
        return f"done {name}"

    server = await sse_server(
        [
            Reply(tool_turn(("call_a", "job", '{"name": "a"}'), ("call_b", "job", '{"name": "b"}'))),
            Reply(text_turn("Both done.")),
        ]
    )
    agent = Agent(openai(server.base_url), tools=[job], tool_concurrency=2)
    result = await collect_events(agent.stream_prompt("Run both."))
    assert result.completed
    assert most == 2
    assert [(r.call_id, r.content) for r in of_type(result, ToolResult)] == [
        ("call_a", "done a"),
        ("call_b", "done b"),
    ]
    tool_messages = [m for m in server.requests[1].json["messages"] if m["role"] == "tool"]
    assert tool_messages == [
        {"role": "tool", "tool_call_id": "call_a", "content": "done a"},
        {"role": "tool", "tool_call_id": "call_b", "content": "done b"},
    ]


async def test_tool_concurrency_one_runs_calls_one_after_another(
    sse_server: Any, openai: Callable[[str], OpenAIChat]
) -> None:
    running = 0
    most = 0

    @tool
    async def job(name: str) -> str:
        """A job."""
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.02)
        running -= 1
        return name

    server = await sse_server(
        [
            Reply(tool_turn(("call_a", "job", '{"name": "a"}'), ("call_b", "job", '{"name": "b"}'))),
            Reply(text_turn("ok")),
        ]
    )
    result = await collect_events(Agent(openai(server.base_url), tools=[job]).stream_prompt("go"))
    assert result.completed and most == 1
    assert [r.content for r in of_type(result, ToolResult)] == ["a", "b"]


@pytest.mark.parametrize(
    ("call", "content"),
    [
        (("call_x", "broken", '{"x": 3}'), "tool 'broken' raised ValueError: cannot handle 3"),
        (("call_x", "teleport", "{}"), "unknown tool 'teleport'; the tools are: broken, get_weather"),
        (
            ("call_x", "get_weather", '{"city": 7}'),
            "invalid arguments for tool 'get_weather': Expected `str`, got `int` - at `$.city`",
        ),
        (
            ("call_x", "get_weather", '{"city": "Paris"'),
            "invalid arguments for tool 'get_weather': the arguments are not valid JSON",
        ),
    ],
    ids=["raising-tool", "unknown-tool", "invalid-arguments", "arguments-not-json"],
)
async def test_tool_failures_reach_the_model_and_the_run_goes_on(
    sse_server: Any, openai: Callable[[str], OpenAIChat], call: tuple[str, str, str], content: str
) -> None:
    server = await sse_server([Reply(tool_turn(call)), Reply(text_turn("Sorry."))])
    agent = Agent(openai(server.base_url), tools=[broken, get_weather])
    result = await collect_events(agent.stream_prompt("Try it."))
    assert result.completed
    (tool_result,) = of_type(result, ToolResult)
    assert tool_result.is_error
    assert tool_result.content.startswith(content)
    sent = [m for m in server.requests[1].json["messages"] if m["role"] == "tool"]
    assert sent == [{"role": "tool", "tool_call_id": "call_x", "content": tool_result.content}]
    assert result.events[-1].text == "Sorry."


async def test_a_tool_that_exceeds_its_timeout_is_an_error_result(
    sse_server: Any, openai: Callable[[str], OpenAIChat]
) -> None:
    @tool(timeout=0.05)
    async def slow() -> str:
        """Takes too long."""
        await asyncio.sleep(5)
        return "late"

    server = await sse_server([Reply(tool_turn(("call_s", "slow", ""))), Reply(text_turn("ok"))])
    result = await collect_events(Agent(openai(server.base_url), tools=[slow]).stream_prompt("go"))
    (tool_result,) = of_type(result, ToolResult)
    assert (tool_result.content, tool_result.is_error) == ("tool 'slow' timed out after 0.05 s", True)
    assert result.completed


async def test_skip_does_not_run_the_tool_and_feeds_the_reason_back(
    sse_server: Any, openai: Callable[[str], OpenAIChat]
) -> None:
    ran: list[str] = []

    @tool
    def delete_file(path: str) -> str:
        """Delete a file."""
        ran.append(path)
        return "deleted"

    class Guard(Hook):
        async def on_tool_call(
            self, name: str, call_id: str, internal_call_id: str, arguments: Any
        ) -> Skip | None:
            return Skip("deleting files is not allowed") if name == "delete_file" else None

    server = await sse_server(
        [Reply(tool_turn(("call_d", "delete_file", '{"path": "/etc"}'))), Reply(text_turn("ok"))]
    )
    result = await collect_events(
        Agent(openai(server.base_url), tools=[delete_file]).stream_prompt("rm", hook=Guard())
    )
    assert ran == []
    (tool_result,) = of_type(result, ToolResult)
    assert (tool_result.content, tool_result.is_error) == ("deleting files is not allowed", False)
    assert {
        "role": "tool",
        "tool_call_id": "call_d",
        "content": "deleting files is not allowed",
    } in server.requests[1].json["messages"]


class Recorder(Hook):
    """Records every hook call; terminates at the one named ``stop_at``."""

    def __init__(self, stop_at: str | None = None) -> None:
        self.stop_at = stop_at
        self.calls: list[tuple[Any, ...]] = []

    def _seen(self, *call: Any) -> Terminate | None:
        self.calls.append(call)
        return Terminate(f"stopped at {call[0]}") if call[0] == self.stop_at else None

    async def on_completion_call(self, prompt: str, history: Any) -> Terminate | None:
        return self._seen("on_completion_call", prompt, len(history))

    async def on_text_delta(self, delta: str, aggregated: str) -> Terminate | None:
        return self._seen("on_text_delta", delta, aggregated)

    async def on_tool_call_delta(
        self, id: str, internal_call_id: str, name: str | None, delta: str
    ) -> Terminate | None:
        return self._seen("on_tool_call_delta", id, name, delta)

    async def on_tool_call(
        self, name: str, call_id: str, internal_call_id: str, arguments: Any
    ) -> Terminate | None:
        return self._seen("on_tool_call", name, call_id, arguments)

    async def on_tool_result(
        self, name: str, call_id: str, internal_call_id: str, arguments: Any, result: str
    ) -> Terminate | None:
        return self._seen("on_tool_result", name, call_id, arguments, result)

    async def on_turn_finish(self, prompt: str, final: Final) -> Terminate | None:
        return self._seen("on_turn_finish", prompt, final.finish_reason)


WEATHER_WITH_TEXT = [
    Reply(tool_turn(("call_w1", "get_weather", '{"city": "Paris"}'), text="Let me look.")),
    Reply(text_turn("Sunny.")),
]


async def test_every_hook_is_called_in_order(sse_server: Any, openai: Callable[[str], OpenAIChat]) -> None:
    server = await sse_server(WEATHER_WITH_TEXT)
    hook = Recorder()
    result = await collect_events(
        Agent(openai(server.base_url), tools=[get_weather]).stream_prompt("Weather?", hook=hook)
    )
    assert result.completed
    assert hook.calls == [
        ("on_completion_call", "Weather?", 1),
        ("on_text_delta", "Let me look.", "Let me look."),
        ("on_tool_call_delta", "call_w1", "get_weather", '{"city":'),
        ("on_tool_call_delta", "call_w1", None, ' "Paris"}'),
        ("on_turn_finish", "Weather?", "tool_calls"),
        ("on_tool_call", "get_weather", "call_w1", {"city": "Paris"}),
        ("on_tool_result", "get_weather", "call_w1", {"city": "Paris"}, "Sunny, 21 °C in Paris"),
        ("on_completion_call", "Weather?", 3),
        ("on_text_delta", "Sunny.", "Sunny."),
        ("on_turn_finish", "Weather?", "stop"),
    ]


@pytest.mark.parametrize(
    ("stop_at", "requests", "tool_results"),
    [
        ("on_completion_call", 0, 0),
        ("on_text_delta", 1, 0),
        ("on_tool_call_delta", 1, 0),
        ("on_turn_finish", 1, 0),
        ("on_tool_call", 1, 0),
        ("on_tool_result", 1, 0),
    ],
)
async def test_terminate_from_each_hook_stops_the_run(
    sse_server: Any, openai: Callable[[str], OpenAIChat], stop_at: str, requests: int, tool_results: int
) -> None:
    server = await sse_server(WEATHER_WITH_TEXT)
    hook = Recorder(stop_at)
    result = await collect_events(
        Agent(openai(server.base_url), tools=[get_weather]).stream_prompt("Weather?", hook=hook)
    )
    error = result.error
    assert isinstance(error, PromptCancelledError)
    assert error.reason == f"stopped at {stop_at}"
    assert error.history == (Message.user("Weather?"),)
    assert hook.calls[-1][0] == stop_at
    assert len(server.requests) == requests
    assert len(of_type(result, ToolResult)) == tool_results
    assert of_type(result, FinalResponse) == []
    if stop_at == "on_text_delta":
        assert of_type(result, TextDelta) == [], "the event a hook terminated at is not delivered"


@pytest.mark.parametrize(("max_turns", "requests"), [(0, 0), (1, 1), (2, 2)])
async def test_max_turns_counts_model_requests_exactly(
    sse_server: Any, openai: Callable[[str], OpenAIChat], max_turns: int, requests: int
) -> None:
    server = await sse_server(Reply(tool_turn(("call_w", "get_weather", '{"city": "Rome"}'))))
    agent = Agent(openai(server.base_url), tools=[get_weather], max_turns=max_turns)
    result = await collect_events(agent.stream_prompt("Loop forever."))
    error = result.error
    assert isinstance(error, MaxTurnsError)
    assert error.max_turns == max_turns
    assert len(server.requests) == requests
    assert len(of_type(result, ToolResult)) == max(requests - 1, 0), "the last turn's tools are not run"
    if max_turns == 0:
        assert error.history == (Message.user("Loop forever."),)
    else:
        last_call, last_result = error.history[-2:]
        assert last_call.role == "assistant" and isinstance(last_call.content[0], ToolCallPart)
        assert last_result == Message(
            role="tool",
            content=(
                ToolResultPart(
                    call_id="call_w",
                    name="get_weather",
                    content=f"not run: the agent reached max_turns={max_turns}",
                    is_error=True,
                ),
            ),
        )


async def test_max_turns_per_prompt_overrides_the_agent(
    sse_server: Any, openai: Callable[[str], OpenAIChat]
) -> None:
    server = await sse_server(Reply(tool_turn(("call_w", "get_weather", '{"city": "Rome"}'))))
    agent = Agent(openai(server.base_url), tools=[get_weather], max_turns=5)
    result = await collect_events(agent.stream_prompt("Loop.", max_turns=1))
    assert isinstance(result.error, MaxTurnsError) and len(server.requests) == 1


async def test_a_turn_cut_by_length_never_runs_its_tools(
    sse_server: Any, openai: Callable[[str], OpenAIChat]
) -> None:
    ran: list[str] = []

    @tool
    def record(text: str) -> str:
        """Record."""
        ran.append(text)
        return "ok"

    cut = tool_turn(("call_r", "record", '{"text": "abc"}'))
    cut = [piece.replace(b'"finish_reason":"tool_calls"', b'"finish_reason":"length"') for piece in cut]
    server = await sse_server(Reply(cut))
    result = await collect_events(Agent(openai(server.base_url), tools=[record]).stream_prompt("go"))
    assert ran == []
    assert result.completed
    final = result.events[-1]
    assert isinstance(final, FinalResponse) and final.turns == 1
    assert final.history[-1] == Message(role="assistant", content=())
    assert len(server.requests) == 1


async def test_dispose_during_a_tool_cancels_it_and_sends_nothing_more(
    sse_server: Any, openai: Callable[[str], OpenAIChat]
) -> None:
    entered = asyncio.Event()
    cancelled = asyncio.Event()

    @tool
    async def wait_forever() -> str:
        """Never returns by itself."""
        entered.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    server = await sse_server([Reply(tool_turn(("call_f", "wait_forever", ""))), Reply(text_turn("never"))])
    events: list[Any] = []
    subscription = (
        Agent(openai(server.base_url), tools=[wait_forever]).stream_prompt("wait").subscribe(events.append)
    )
    await asyncio.wait_for(entered.wait(), 5)
    subscription.dispose()
    await asyncio.wait_for(cancelled.wait(), 1)
    # What the cancelled tool would lead to (its result, then the next request) would come from the same
    # step of its task that set ``cancelled``, which has run to its end before this test runs again.
    assert of_type(Collected(events, None, False), ToolResult) == []
    assert len(server.requests) == 1


async def tool_threads_idle() -> None:
    """Return once every thread of the pool sync tools run on has finished the job it was running.

    One job per thread, each waiting for all the others, can only all run once no thread is busy; a thread
    hands a finished job's result to the loop before it takes the next job, so that result, and whatever
    it wakes, is handled on the loop before these jobs' results, and so before this returns.
    """
    barrier = threading.Barrier(TOOL_THREADS)
    loop = asyncio.get_running_loop()
    jobs = [loop.run_in_executor(tool_executor(), barrier.wait, 5) for _ in range(TOOL_THREADS)]
    await asyncio.gather(*jobs)


async def test_dispose_during_a_sync_tool_discards_its_result(
    sse_server: Any, openai: Callable[[str], OpenAIChat]
) -> None:
    entered = threading.Event()
    release = threading.Event()

    @tool
    def blocking() -> str:
        """Blocks its worker thread until released."""
        entered.set()
        release.wait(5)
        return "late"

    server = await sse_server([Reply(tool_turn(("call_b", "blocking", ""))), Reply(text_turn("never"))])
    events: list[Any] = []
    subscription = (
        Agent(openai(server.base_url), tools=[blocking]).stream_prompt("go").subscribe(events.append)
    )
    await asyncio.to_thread(entered.wait, 5)
    subscription.dispose()
    release.set()
    await tool_threads_idle()  # the tool has returned and its result reached the loop
    assert [e for e in events if isinstance(e, ToolResult)] == []
    assert len(server.requests) == 1


async def test_dispose_mid_turn_closes_the_connection(
    sse_server: Any, openai: Callable[[str], OpenAIChat]
) -> None:
    server = await sse_server(Reply(text_turn("a")[:2], endless=text_turn("tick")[1], delay=0.01))
    events: list[Any] = []
    got_three = asyncio.Event()

    def on_next(event: Any) -> None:
        events.append(event)
        if len(events) == 3:
            got_three.set()

    subscription = Agent(openai(server.base_url)).stream_prompt("go").subscribe(on_next)
    await asyncio.wait_for(got_three.wait(), 5)
    subscription.dispose()
    seen = len(events)
    await asyncio.wait_for(server.disconnected.wait(), 1)
    await rxllm_tasks_finish()  # nothing is left running that could deliver an event
    assert len(events) == seen and len(server.requests) == 1


async def test_reasoning_is_kept_in_the_turns_history_message(
    sse_server: Any, openai: Callable[[str], OpenAIChat]
) -> None:
    thinking = text_turn("42")
    from openai_sse import chunk

    thinking.insert(1, chunk({"reasoning_content": "Six times seven."}))
    server = await sse_server(Reply(thinking))
    result = await collect_events(Agent(openai(server.base_url)).stream_prompt("Answer?"))
    final = result.events[-1]
    assert final.history[-1] == Message(
        role="assistant", content=(ReasoningPart(text="Six times seven."), TextPart(text="42"))
    )


async def test_a_raising_tool_logs_its_traceback(
    sse_server: Any, openai: Callable[[str], OpenAIChat]
) -> None:
    from loguru import logger

    import rxllm

    server = await sse_server(
        [Reply(tool_turn(("call_x", "broken", '{"x": 3}'))), Reply(text_turn("Sorry."))]
    )
    records: list[Any] = []
    rxllm.enable_logging()
    sink = logger.add(records.append, level="WARNING", format="{message}\n{exception}")
    try:
        result = await collect_events(Agent(openai(server.base_url), tools=[broken]).stream_prompt("Try it."))
    finally:
        logger.remove(sink)
        rxllm.disable_logging()
    assert result.completed
    (message,) = records
    assert message.record["message"] == "tool 'broken' raised ValueError: cannot handle 3"
    assert message.record["extra"] == {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "broken",
        "gen_ai.tool.call.id": "call_x",
        "error.type": "ValueError",
    }
    assert "Traceback" in str(message) and "ValueError: cannot handle 3" in str(message)


# -- usage, honestly: summed where reported, unknown where not -----------------------------------


def _usage(prompt: int, completion: int) -> Usage:
    return Usage(input_tokens=prompt, output_tokens=completion, total_tokens=prompt + completion)


async def test_a_run_whose_every_turn_reported_usage_is_complete(
    sse_server: Any, openai: Callable[[str], OpenAIChat]
) -> None:
    server = await sse_server(WEATHER_TURNS)
    result = await collect_events(Agent(openai(server.base_url), tools=[get_weather]).stream_prompt("Paris?"))
    final = result.events[-1]
    assert isinstance(final, FinalResponse)
    assert (final.usage, final.usage_complete) == (_usage(130, 21), True)


async def test_a_turn_without_usage_makes_the_run_incomplete_not_cheaper(
    sse_server: Any, openai: Callable[[str], OpenAIChat]
) -> None:
    # The second turn's server sends no usage chunk (but [DONE]): the run's usage is what was reported.
    silent = [piece for piece in text_turn("Sunny.") if b'"usage":{' not in piece]
    server = await sse_server([WEATHER_TURNS[0], Reply(silent)])
    result = await collect_events(Agent(openai(server.base_url), tools=[get_weather]).stream_prompt("Paris?"))
    finals = of_type(result, Final)
    assert [final.usage for final in finals] == [_usage(50, 12), None]
    final = result.events[-1]
    assert isinstance(final, FinalResponse)
    assert (final.text, final.turns, final.usage, final.usage_complete) == (
        "Sunny.",
        2,
        _usage(50, 12),
        False,
    )


async def test_max_turns_error_carries_the_runs_usage(
    sse_server: Any, openai: Callable[[str], OpenAIChat]
) -> None:
    server = await sse_server(Reply(tool_turn(("call_w", "get_weather", '{"city": "Rome"}'), usage=(40, 7))))
    agent = Agent(openai(server.base_url), tools=[get_weather], max_turns=2)
    result = await collect_events(agent.stream_prompt("Loop."))
    assert isinstance(result.error, MaxTurnsError)
    assert result.error.usage == _usage(80, 14)
    assert len(server.requests) == 2


async def test_max_turns_zero_carries_no_usage(sse_server: Any, openai: Callable[[str], OpenAIChat]) -> None:
    server = await sse_server(WEATHER_TURNS)
    result = await collect_events(Agent(openai(server.base_url), max_turns=0).stream_prompt("Hi"))
    assert isinstance(result.error, MaxTurnsError) and result.error.usage is None
    assert server.requests == []


async def test_prompt_cancelled_carries_the_completed_turns_usage(
    sse_server: Any, openai: Callable[[str], OpenAIChat]
) -> None:
    class StopBeforeTheSecondRequest(Hook):
        calls = 0

        async def on_completion_call(self, prompt: str, history: Any) -> Terminate | None:
            self.calls += 1
            return Terminate("enough") if self.calls == 2 else None

    server = await sse_server(WEATHER_TURNS)
    agent = Agent(openai(server.base_url), tools=[get_weather])
    result = await collect_events(agent.stream_prompt("Paris?", hook=StopBeforeTheSecondRequest()))
    assert isinstance(result.error, PromptCancelledError)
    assert result.error.usage == _usage(50, 12)
    assert len(server.requests) == 1


async def test_a_mid_turn_error_carries_the_earlier_turns_and_what_its_turn_reported() -> None:
    # Anthropic reports input tokens on message_start: a turn that then fails has billed them.
    first = Turn(calls=[Call("clock", {"tz": "UTC"}, id="toolu_1")], usage=_usage(30, 6))
    second = sse_bytes(Turn(text=["It is ", "noon."], usage=_usage(44, 3)), "anthropic")
    overloaded = (
        b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
    )
    text_at = next(i for i, piece in enumerate(second) if b"It is " in piece)
    async with ScriptedServer(
        [first, ScriptedReply(pieces=[*second[: text_at + 1], overloaded])], dialect="anthropic"
    ) as server:
        async with server.provider() as model:
            result = await collect_events(Agent(model, tools=[clock]).stream_prompt("Time?"))
    error = result.error
    assert type(error) is OverloadedError
    # Turn 1's usage, plus turn 2's message_start report (input 44, output 1 so far).
    assert error.usage == _usage(30, 6) + _usage(44, 1)
    assert (
        str(error)
        == f"error in stream: Overloaded (type=overloaded_error) [POST {server.origin}/v1/messages]"
    )
    assert len(server.requests) == 2


async def test_a_chat_turn_cut_after_its_finish_reason_never_runs_its_tools(
    sse_server: Any, openai: Callable[[str], OpenAIChat]
) -> None:
    ran: list[str] = []

    @tool
    def record(text: str) -> str:
        """Record."""
        ran.append(text)
        return "ok"

    whole = tool_turn(("call_r", "record", '{"text": "abc"}'))
    cut = whole[:-2]  # the finish reason arrived; the usage chunk and [DONE] did not
    server = await sse_server(Reply(cut))
    result = await collect_events(Agent(openai(server.base_url), tools=[record]).stream_prompt("go"))
    assert ran == []
    assert of_type(result, ToolResult) == []
    error = result.error
    assert isinstance(error, StreamTruncatedError)
    (call,) = of_type(result, ToolCall)  # shown as it arrived; never run
    assert (call.id, call.name, call.arguments) == ("call_r", "record", {"text": "abc"})
    assert error.partial == CompletionResponse(
        tool_calls=(call,), finish_reason="tool_calls", response_id=RESPONSE_ID, model=MODEL
    )
    assert len(server.requests) == 1


async def test_a_chat_turn_cut_after_its_finish_reason_is_resent_and_its_tools_run_once(
    sse_server: Any, closing: Closing
) -> None:
    ran: list[str] = []

    @tool
    def record(text: str) -> str:
        """Record."""
        ran.append(text)
        return "ok"

    whole = tool_turn(("call_r", "record", '{"text": "abc"}'), usage=(20, 4))
    server = await sse_server([Reply(whole[:-2]), Reply(whole), Reply(text_turn("Done.", usage=(30, 2)))])
    model = closing(OpenAIChat(MODEL, base_url=server.base_url, midstream_retries=1))
    result = await collect_events(Agent(model, tools=[record]).stream_prompt("go"))
    assert ran == ["abc"]
    resets = [event for event in result.events if isinstance(event, StreamReset)]
    assert resets == [StreamReset(attempt=2, reason="stream ended without its end marker")]
    final = result.events[-1]
    assert isinstance(final, FinalResponse)
    # The cut attempt reported no usage: the run's usage is a lower bound, and says so.
    assert (final.usage, final.usage_complete) == (_usage(50, 6), False)
    assert len(server.requests) == 3


async def test_retrying_passes_through_the_agent_and_changes_nothing_else(
    sse_server: Any, closing: Closing
) -> None:
    busy = Reply(
        status=503, body=b'{"error": {"message": "busy"}}', headers={"content-type": "application/json"}
    )
    server = await sse_server([busy, *WEATHER_TURNS])
    model = closing(OpenAIChat(MODEL, base_url=server.base_url, backoff=Backoff(initial=0.01, jitter=0)))
    result = await collect_events(Agent(model, tools=[get_weather]).stream_prompt("Paris?"))
    assert result.events[0] == Retrying(attempt=2, delay=0.01, reason="HTTP 503", status=503)
    assert sum(isinstance(event, Retrying) for event in result.events) == 1
    final = result.events[-1]
    assert isinstance(final, FinalResponse)
    assert (final.text, final.turns, final.usage, final.usage_complete) == (
        "It is sunny in Paris.",
        2,
        _usage(130, 21),
        True,
    )
    assert [message.role for message in final.history] == ["user", "assistant", "tool", "assistant"]
    assert len(server.requests) == 3


# -- stream_chat: a conversation goes on, with the options of stream_prompt ------------------------------

EARLIER = (Message.user("I am Ada."), Message.assistant("Hello, Ada."))


def test_stream_chat_takes_every_option_stream_prompt_takes() -> None:
    import inspect

    prompt_options = dict(inspect.signature(Agent.stream_prompt).parameters)
    chat_options = dict(inspect.signature(Agent.stream_chat).parameters)
    prompt_options.pop("history"), chat_options.pop("history")
    assert list(chat_options) == list(prompt_options)
    for name, option in prompt_options.items():
        assert (chat_options[name].kind, chat_options[name].default, chat_options[name].annotation) == (
            option.kind,
            option.default,
            option.annotation,
        ), name


async def test_stream_chat_max_turns_bounds_the_runs_requests() -> None:
    loop = ScriptedReply(Turn(calls=[Call("get_weather", {"city": "Rome"})]))
    async with ScriptedServer([loop, loop, loop]) as server, server.provider() as model:
        agent = Agent(model, tools=[get_weather], max_turns=5)
        result = await collect_events(agent.stream_chat("And in Rome?", EARLIER, max_turns=1))
    assert isinstance(result.error, MaxTurnsError) and result.error.max_turns == 1
    assert len(server.requests) == 1
    sent = [message["content"] for message in server.requests[0].json["messages"]]
    assert sent == ["I am Ada.", "Hello, Ada.", "And in Rome?"]


async def test_stream_chat_pause_holds_the_run_until_resumed() -> None:
    model = ScriptedModel([Turn(text=["Hi again."])])
    control = PauseControl(paused=True)
    events: list[Any] = []
    Agent(model).stream_chat("Still there?", EARLIER, pause=control).subscribe(events.append)
    assert events == [] and len(model.requests) == 1  # the turn was asked for, and is held
    control.resume()
    assert events[0] == TextDelta(text="Hi again.")
    final = events[-1]
    assert isinstance(final, FinalResponse)
    assert final.history == (*EARLIER, Message.user("Still there?"), Message.assistant("Hi again."))


async def test_stream_chat_hook_hears_the_continued_history_and_may_stop_the_run() -> None:
    model = ScriptedModel([Turn(text=["never sent"])])
    hook = Recorder("on_completion_call")
    result = await collect_events(Agent(model).stream_chat("Bye.", EARLIER, hook=hook))
    assert hook.calls == [("on_completion_call", "Bye.", 3)]  # the history it is about to send
    assert isinstance(result.error, PromptCancelledError)
    assert result.error.history == (*EARLIER, Message.user("Bye."))
    assert model.requests == []
