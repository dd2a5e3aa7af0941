"""What these real engines send that a documented API would not, each pinned by a test of its name.

Each test shows the quirk in the server's own bytes (recorded by the proxy, or its log)
and what rxllm makes of it. If an engine release changes the behaviour, the test named
for it fails and says which line of QUIRKS.md to revisit.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import aiohttp
from conftest import Closing, collect_events

from real.endpoints import ENDPOINTS, Endpoint, get_weather
from real.proxy import RecordingProxy
from real.servers import RunningServer
from real.turns import TIMEOUT, final_of, one_turn
from rxllm.errors import ProviderError
from rxllm.events import ToolCall
from rxllm.messages import Message, ToolCallPart, ToolResultPart


def endpoint_named(id: str) -> Endpoint:
    (found,) = [endpoint for endpoint in ENDPOINTS if endpoint.id == id]
    return found


CHAT, RESPONSES, MESSAGES, LLAMA_CPP_PYTHON = (
    endpoint_named(id)
    for id in (
        "llama-server/chat",
        "llama-server/responses",
        "llama-server/messages",
        "llama-cpp-python/chat",
    )
)


async def test_llama_cpp_python_sends_no_usage_in_streams(
    llama_cpp_python: RunningServer, proxy: Any, closing: Closing
) -> None:
    result, sent, exchange = await one_turn(
        LLAMA_CPP_PYTHON, llama_cpp_python, proxy, closing, LLAMA_CPP_PYTHON.request("Hello", max_tokens=8)
    )
    final_of(result)
    assert exchange.request_json["stream_options"] == {"include_usage": True}
    assert sent.usage is None
    assert all("usage" not in data for _, data in exchange.events() if data != "[DONE]")


async def test_llama_cpp_python_repeats_id_type_and_name_beside_a_legacy_function_call(
    llama_cpp_python: RunningServer, proxy: Any, closing: Closing
) -> None:
    request = LLAMA_CPP_PYTHON.request("Weather in Zürich?", max_tokens=64, tools=True)
    result, sent, exchange = await one_turn(LLAMA_CPP_PYTHON, llama_cpp_python, proxy, closing, request)
    final_of(result)
    chunks = [data for _, data in exchange.events() if data != "[DONE]"]
    # Explicit nulls in the first delta; then every fragment names its call again, twice.
    assert chunks[0]["choices"][0]["delta"] == {
        "role": "assistant",
        "content": None,
        "function_call": None,
        "tool_calls": None,
    }
    fragments = [
        chunk["choices"][0]["delta"] for chunk in chunks if chunk["choices"][0]["delta"].get("tool_calls")
    ]
    assert len(fragments) > 1
    (sent_call,) = sent.calls
    for delta in fragments:
        (fragment,) = delta["tool_calls"]
        assert (fragment["id"], fragment["type"], fragment["function"]["name"]) == (
            sent_call.id,
            "function",
            "get_weather",
        )
        assert delta["function_call"] == {
            "name": "get_weather",
            "arguments": fragment["function"]["arguments"],
        }
    # Python's json.dumps: ASCII only, ", " and ": " separators.
    assert exchange.response_body.isascii() and b'"id": "chatcmpl-' in exchange.response_body
    (call,) = [event for event in result.events if isinstance(event, ToolCall)]
    assert (call.id, call.name, call.arguments) == (sent_call.id, "get_weather", sent_call.arguments)


async def test_llama_cpp_python_refuses_a_tool_call_message_with_null_content(
    llama_cpp_python: RunningServer, proxy: Any, closing: Closing
) -> None:
    history = [
        Message.user("Weather in Zürich?"),
        Message(
            role="assistant",
            content=(
                ToolCallPart(
                    id="call_1",
                    call_id="call_1",
                    name="get_weather",
                    arguments={"city": "Paris", "unit": "C"},
                ),
            ),
        ),
        Message(
            role="tool", content=(ToolResultPart(call_id="call_1", name="get_weather", content="Sunny"),)
        ),
    ]
    request = replace(
        LLAMA_CPP_PYTHON.request("", max_tokens=8, tools=True), messages=history, tool_choice="none"
    )
    result, _, exchange = await one_turn(
        LLAMA_CPP_PYTHON, llama_cpp_python, proxy, closing, request, max_retries=0
    )
    # rxllm sends "" beside tool_calls (OpenAI takes "" or null), and the server takes it.
    sent = exchange.request_json
    assert sent["messages"][2]["content"] == ""
    assert result.error is None
    # The same history with "content": null, as OpenAI documents it, is an HTTP 500.
    sent["messages"][2]["content"] = None
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{llama_cpp_python.v1}/chat/completions", json=sent) as reply:
            assert reply.status == 500
            body = await reply.text()
    assert "7 validation errors:" in body
    assert "Input should be a valid string" in body


async def test_llama_server_reads_a_tool_choice_object_as_auto(
    llama_server: RunningServer, proxy: Any, closing: Closing
) -> None:
    warning = "Wrong type supplied for parameter 'tool_choice', using default value"
    before = llama_server.log_text().count(warning)
    named = {"type": "function", "function": {"name": "get_weather"}}
    request = replace(CHAT.request("Weather in Zürich?", max_tokens=64, tools=True), tool_choice=named)
    result, _, exchange = await one_turn(CHAT, llama_server, proxy, closing, request)
    final_of(result)
    assert exchange.request_json["tool_choice"] == named
    assert await llama_server.logged(warning, times=before + 1) == before + 1


async def test_llama_server_responses_reports_completed_at_the_output_limit(
    llama_server: RunningServer, proxy: Any, closing: Closing
) -> None:
    result, sent, exchange = await one_turn(
        RESPONSES, llama_server, proxy, closing, RESPONSES.request("Hello", max_tokens=8)
    )
    final = final_of(result)
    (completed,) = [data for name, data in exchange.events() if name == "response.completed"]
    assert completed["response"]["status"] == "completed"
    assert "incomplete_details" not in completed["response"]
    assert sent.usage is not None and sent.usage.output_tokens == 8  # it stopped at the limit
    assert final.finish_reason == "completed"


async def test_llama_server_responses_events_have_no_sequence_numbers(
    llama_server: RunningServer, proxy: Any, closing: Closing
) -> None:
    request = RESPONSES.request("Weather in Zürich?", max_tokens=64, tools=True)
    result, sent, exchange = await one_turn(RESPONSES, llama_server, proxy, closing, request)
    final_of(result)
    events = exchange.events()
    assert all("sequence_number" not in data and "output_index" not in data for _, data in events)
    names = [name for name, _ in events]
    # Arguments end with output_item.done: no response.function_call_arguments.done.
    assert "response.function_call_arguments.done" not in names
    assert "response.output_item.done" in names
    (call,) = [event for event in result.events if isinstance(event, ToolCall)]
    assert call.arguments == sent.calls[0].arguments


async def test_llama_server_messages_ignores_tool_choice_none(
    llama_server: RunningServer, proxy: Any, closing: Closing
) -> None:
    request = replace(MESSAGES.request("Weather in Zürich?", max_tokens=64, tools=True), tool_choice="none")
    result, sent, exchange = await one_turn(MESSAGES, llama_server, proxy, closing, request)
    final = final_of(result)
    assert exchange.request_json["tool_choice"] == {"type": "none"}
    # This model calls a tool whenever it may: "none" was read as "auto".
    assert (final.finish_reason, len(sent.calls)) == ("tool_use", 1)


async def test_llama_server_messages_tool_use_starts_without_input(
    llama_server: RunningServer, proxy: Any, closing: Closing
) -> None:
    request = MESSAGES.request("Weather in Zürich?", max_tokens=64, tools=True)
    result, sent, exchange = await one_turn(MESSAGES, llama_server, proxy, closing, request)
    final_of(result)
    (start,) = [data for name, data in exchange.events() if name == "content_block_start"]
    assert start["content_block"] == {"type": "tool_use", "id": sent.calls[0].id, "name": "get_weather"}
    (call,) = [event for event in result.events if isinstance(event, ToolCall)]
    assert call.arguments == sent.calls[0].arguments
    assert await get_weather.invoke(call.arguments)


async def test_llama_server_messages_puts_prompt_cache_hits_beside_a_small_input_tokens(
    llama_server: RunningServer, proxy: Any, closing: Closing
) -> None:
    request = MESSAGES.request("Hello there, again", max_tokens=8)
    await one_turn(MESSAGES, llama_server, proxy, closing, request)  # fills the prompt cache
    result, sent, exchange = await one_turn(MESSAGES, llama_server, proxy, closing, request)
    final = final_of(result)
    ((_, start),) = [event for event in exchange.events() if event[0] == "message_start"]
    reported = start["message"]["usage"]
    assert reported["cache_read_input_tokens"] > reported["input_tokens"] >= 1
    assert final.usage == sent.usage and final.usage is not None
    assert (final.usage.input_tokens, final.usage.cached_input_tokens) == (
        reported["input_tokens"] + reported["cache_read_input_tokens"],
        reported["cache_read_input_tokens"],
    )


async def test_llama_server_chat_usage_chunk_carries_timings(
    llama_server: RunningServer, proxy: Any, closing: Closing
) -> None:
    result, sent, exchange = await one_turn(
        CHAT, llama_server, proxy, closing, CHAT.request("Hello", max_tokens=8)
    )
    final = final_of(result)
    chunks = [data for _, data in exchange.events() if data != "[DONE]"]
    last = chunks[-1]
    assert last["choices"] == [] and set(last) >= {"usage", "timings"}
    assert last["timings"]["predicted_n"] == last["usage"]["completion_tokens"] == 8
    assert last["system_fingerprint"].startswith("b") and "-" in last["system_fingerprint"]
    assert final.usage == sent.usage


async def test_llama_server_overflow_error_on_messages_is_openai_shaped(
    llama_server: RunningServer, proxy: Any, closing: Closing
) -> None:
    recording: RecordingProxy = await proxy(llama_server)
    provider = closing(MESSAGES.provider(recording.origin))
    result = await collect_events(
        provider.stream(MESSAGES.request("hello " * 5000, max_tokens=8)), timeout=TIMEOUT
    )
    (exchange,) = recording.exchanges
    body = json.loads(exchange.response_body)
    # Not Anthropic's {"type": "error", "error": {"type", "message"}}.
    assert set(body) == {"error"} and body["error"]["type"] == "exceed_context_size_error"
    assert isinstance(result.error, ProviderError) and result.error.message == body["error"]["message"]
