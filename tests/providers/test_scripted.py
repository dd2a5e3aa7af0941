"""The offline model: SSE writers for the three dialects, ScriptedModel, ScriptedServer."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from conftest import collect_events, rxllm_tasks_finish
from reactivex.testing.marbles import marbles_testing

from rxllm import (
    Agent,
    CompletionRequest,
    Final,
    FinalResponse,
    Message,
    PauseControl,
    ProviderError,
    Reasoning,
    ReasoningDelta,
    StreamTruncatedError,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolResult,
    Usage,
    run,
    tool,
)
from rxllm.providers.anthropic import AnthropicMessages
from rxllm.providers.openai import OpenAIChat, OpenAIResponses
from rxllm.providers.scripted import (
    Call,
    DialectName,
    ReceivedRequest,
    Reply,
    ScriptedModel,
    ScriptedServer,
    ScriptExhaustedError,
    Turn,
    dialect_of,
    openai_chat_sse,
    replay_sse,
    sse_bytes,
)

USAGE = Usage(input_tokens=10, output_tokens=5, total_tokens=15, cached_input_tokens=2, reasoning_tokens=3)
TURN = Turn(reasoning=["a", "b"], text=["Hi ", "there"], calls=[Call("add", {"a": 1})], usage=USAGE)
REQUEST = CompletionRequest([Message.user("Hi")])


@tool
def add(a: int, b: int = 0) -> int:
    """Add two numbers."""
    return a + b


def expected_events(dialect: DialectName, internal: str) -> list[Any]:
    """What each provider's pipe makes of TURN: the same content in each dialect's own words."""
    call_id = {"openai": "call_0", "responses": "call_0", "anthropic": "toolu_0"}[dialect]
    item_id = {"openai": "call_0", "responses": "fc_0", "anthropic": "toolu_0"}[dialect]
    reasoning_id = "rs_0" if dialect == "responses" else None
    events: list[Any] = [
        ReasoningDelta(text="a", id=reasoning_id),
        ReasoningDelta(text="b", id=reasoning_id),
    ]
    if dialect == "responses":
        events.append(Reasoning(text="ab", id="rs_0"))
    if dialect == "anthropic":
        events.append(Reasoning(text="ab", signature="scripted-sig"))
    events += [TextDelta(text="Hi "), TextDelta(text="there")]
    if dialect == "openai":
        events.append(ToolCallDelta(id=item_id, internal_call_id=internal, name="add", arguments_delta='{"a'))
    else:
        events += [
            ToolCallDelta(id=item_id, internal_call_id=internal, name="add"),
            ToolCallDelta(id=item_id, internal_call_id=internal, arguments_delta='{"a'),
        ]
    events += [
        ToolCallDelta(id=item_id, internal_call_id=internal, arguments_delta='":1}'),
        ToolCall(id=item_id, call_id=call_id, internal_call_id=internal, name="add", arguments={"a": 1}),
    ]
    final = {
        "openai": Final(usage=USAGE, finish_reason="tool_calls", response_id="chatcmpl-scripted"),
        "responses": Final(usage=USAGE, finish_reason="completed", response_id="resp_scripted"),
        # Anthropic reports no reasoning-token count.
        "anthropic": Final(
            usage=Usage(input_tokens=10, output_tokens=5, total_tokens=15, cached_input_tokens=2),
            finish_reason="tool_use",
            response_id="msg_scripted",
        ),
    }[dialect]
    events.append(Final(usage=final.usage, finish_reason=final.finish_reason, response_id=final.response_id,
                        model="scripted-model"))  # fmt: skip
    return events


def internal_id(events: list[Any]) -> str:
    return next(event.internal_call_id for event in events if isinstance(event, ToolCallDelta))


@pytest.mark.parametrize("dialect", ["openai", "responses", "anthropic"])
def test_a_turn_written_in_each_dialect_decodes_to_the_same_content(dialect: DialectName) -> None:
    events = run(replay_sse(sse_bytes(TURN, dialect), dialect_of(dialect)))
    assert events == expected_events(dialect, internal_id(events))


def test_chat_completions_bytes_are_exactly_the_documented_chunks() -> None:
    head = b'data: {"id":"chatcmpl-scripted","object":"chat.completion.chunk","created":1760000000,'
    head += b'"model":"scripted-model","choices":'
    assert openai_chat_sse(Turn(text=["Hi"])) == [
        head
        + b'[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}],"usage":null}\n\n',
        head + b'[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}],"usage":null}\n\n',
        head + b'[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}\n\n',
        head + b'[],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15,'
        b'"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}\n\n',
        b"data: [DONE]\n\n",
    ]


def test_an_unknown_dialect_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown dialect 'gemini': use one of openai, responses, anthropic"):
        sse_bytes(TURN, "gemini")  # type: ignore[arg-type]


@pytest.mark.parametrize("dialect", ["openai", "responses", "anthropic"])
async def test_a_transcript_cut_before_its_end_marker_is_a_truncation(dialect: DialectName) -> None:
    # Chat Completions: a finish reason is a whole turn even without [DONE], so cut before it.
    end = {"openai": 2, "responses": -1, "anthropic": -1}[dialect]
    model = ScriptedModel([sse_bytes(Turn(text=["Hi"]), dialect)[:end]], dialect=dialect)
    result = await collect_events(model.stream(REQUEST))
    assert result.events == [TextDelta(text="Hi")]
    assert isinstance(result.error, StreamTruncatedError)


def test_event_turns_are_emitted_as_given_with_a_final_added() -> None:
    call = ToolCall(id="c1", call_id="c1", internal_call_id="i1", name="add", arguments={"a": 1})
    model = ScriptedModel(
        [[TextDelta(text="Hi")], [call], [TextDelta(text="x"), Final(finish_reason="length")]]
    )
    assert run(model.stream(REQUEST)) == [TextDelta(text="Hi"), Final(finish_reason="stop")]
    assert run(model.stream(REQUEST)) == [call, Final(finish_reason="tool_calls")]
    assert run(model.stream(REQUEST)) == [TextDelta(text="x"), Final(finish_reason="length")]


def test_each_subscription_takes_the_next_turn_and_records_its_request() -> None:
    model = ScriptedModel([Turn(text=["one"]), Turn(text=["two"])])
    first = CompletionRequest([Message.user("1")])
    second = CompletionRequest([Message.user("2")])
    assert run(model.stream(first))[0] == TextDelta(text="one")
    assert run(model.stream(second))[0] == TextDelta(text="two")
    assert model.requests == [first, second]
    with pytest.raises(ScriptExhaustedError, match=r"the script has no turn for request 3 \(it has 2\)"):
        run(model.stream(first))


def test_a_turn_may_be_written_from_the_request() -> None:
    model = ScriptedModel([lambda request: Turn(text=[f"You said {request.messages[-1].text}."])])
    assert run(model.stream(CompletionRequest([Message.user("hello")])))[0] == TextDelta(
        text="You said hello."
    )


def test_event_turns_follow_the_subscription_scheduler_in_marble_tests() -> None:
    hi, end = TextDelta(text="Hi"), Final(finish_reason="stop")
    values: dict[str | float, object] = {"a": hi, "f": end}
    model = ScriptedModel([[hi, end]])
    with marbles_testing() as (start, _cold, _hot, exp):
        assert start(model.stream(REQUEST)) == exp("(a,f,|)", values, None)


async def test_pause_holds_a_scripted_turn() -> None:
    control = PauseControl(paused=True)
    model = ScriptedModel([Turn(text=["Hi"])])
    events: list[Any] = []
    model.stream(REQUEST, pause=control).subscribe(events.append)
    assert events == []
    control.resume()
    assert events[0] == TextDelta(text="Hi") and isinstance(events[-1], Final)


@pytest.mark.parametrize("dialect", ["openai", "responses", "anthropic"])
async def test_an_agent_runs_two_parallel_tools_on_the_scripted_model(dialect: DialectName) -> None:
    calls = [Call("add", {"a": 1, "b": 2}, id="c_1"), Call("add", {"a": 3}, id="c_2")]
    model = ScriptedModel([Turn(calls=calls), Turn(text=["3 and 3."])], dialect=dialect)
    result = await collect_events(Agent(model, tools=[add], tool_concurrency=2).stream_prompt("Add."))
    assert result.completed
    results = [(e.call_id, e.content) for e in result.events if isinstance(e, ToolResult)]
    assert results == [("c_1", "3"), ("c_2", "3")]
    final = result.events[-1]
    assert isinstance(final, FinalResponse) and (final.text, final.turns) == ("3 and 3.", 2)
    assert [m.role for m in model.requests[1].messages] == ["user", "assistant", "tool"]


PROVIDER_OF = {"openai": OpenAIChat, "responses": OpenAIResponses, "anthropic": AnthropicMessages}


@pytest.mark.parametrize("dialect", ["openai", "responses", "anthropic"])
async def test_the_server_streams_each_dialect_to_its_real_provider(dialect: DialectName) -> None:
    async with ScriptedServer([TURN], dialect=dialect) as server:
        provider = server.provider()
        assert type(provider) is PROVIDER_OF[dialect]
        async with provider:
            result = await collect_events(provider.stream(REQUEST))
    assert result.events == expected_events(dialect, internal_id(result.events))
    (received,) = server.requests
    path = {"openai": "/v1/chat/completions", "responses": "/v1/responses", "anthropic": "/v1/messages"}
    assert received.path == path[dialect]
    assert "authorization" not in {name.lower() for name in received.headers}
    assert received.json["stream"] is True


async def test_server_replies_may_be_written_from_the_request_and_run_out_loudly() -> None:
    def echo(request: ReceivedRequest) -> Turn:
        return Turn(text=[request.json["messages"][-1]["content"]])

    async with ScriptedServer([echo]) as server, server.provider() as provider:
        first = await collect_events(provider.stream(CompletionRequest([Message.user("ping")])))
        second = await collect_events(provider.stream(REQUEST))
    assert first.events[0] == TextDelta(text="ping")
    error = second.error
    assert isinstance(error, ProviderError)
    assert (error.status, error.message, error.type) == (
        501,
        "the script has no turn for request 2 (it has 1)",
        "scripted_server",
    )


async def test_a_reply_with_an_error_status_is_a_provider_error() -> None:
    body = b'{"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}'
    async with ScriptedServer([Reply(status=401, body=body)]) as server, server.provider(max_retries=0) as p:
        result = await collect_events(p.stream(REQUEST))
    assert isinstance(result.error, ProviderError)
    assert (result.error.status, result.error.message) == (401, "Incorrect API key provided")


async def test_disposing_closes_the_connection_and_the_server_notices() -> None:
    slow = Reply(Turn(text=["tick "] * 200), delay=0.02)
    async with ScriptedServer([slow]) as server, server.provider() as provider:
        events: list[Any] = []
        two = asyncio.Event()

        def on_next(event: Any) -> None:
            events.append(event)
            if len(events) == 2:
                two.set()

        subscription = provider.stream(REQUEST).subscribe(on_next)
        await asyncio.wait_for(two.wait(), 5)
        subscription.dispose()
        assert await asyncio.to_thread(server.disconnected.wait, 2)
        seen = len(events)
        await rxllm_tasks_finish()  # the stream's task has ended: nothing is left that could deliver
        assert len(events) == seen


def test_the_server_on_its_own_thread_serves_a_plain_script() -> None:
    async def ask(server: ScriptedServer) -> list[Any]:
        async with server.provider() as provider:
            result = await collect_events(provider.stream(REQUEST))
            return result.events

    with ScriptedServer([Turn(text=["Hello ", "there."])], dialect="anthropic") as server:
        events = asyncio.run(ask(server))
    assert [event for event in events if isinstance(event, TextDelta)] == [
        TextDelta(text="Hello "),
        TextDelta(text="there."),
    ]
    assert len(server.requests) == 1


@pytest.mark.parametrize("dialect", ["openai", "responses", "anthropic"])
def test_a_turn_without_usage_is_a_server_that_reports_none(dialect: DialectName) -> None:
    events = run(replay_sse(sse_bytes(Turn(text=["Hi"], usage=None), dialect), dialect_of(dialect)))
    final = events[-1]
    assert isinstance(final, Final)
    assert (final.usage, final.usage_complete) == (None, False)
    assert events[:-1] == [TextDelta(text="Hi")]


def test_replayed_bytes_cut_short_give_the_error_its_partial_and_usage() -> None:
    pieces = sse_bytes(Turn(text=["Hi ", "there"], usage=USAGE), "anthropic")
    with pytest.raises(StreamTruncatedError) as caught:
        run(replay_sse(pieces[:-1], dialect_of("anthropic")))
    error = caught.value
    assert error.partial is not None and error.partial.text == "Hi there"
    assert error.usage == Usage(input_tokens=10, output_tokens=5, total_tokens=15, cached_input_tokens=2)
    assert error.url is None, "no request was made"
