"""``CompletionRequest(output=T)`` per provider: the exact request body a loopback server gets; the events."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from conftest import Closing, collect_events

from rxllm.events import Final, Output, PartialOutput, TextDelta, ToolCall, ToolCallDelta
from rxllm.messages import Message
from rxllm.operators import parse_output
from rxllm.providers.anthropic import OUTPUT_TOOL, AnthropicMessages
from rxllm.providers.openai import OpenAIChat, OpenAIResponses
from rxllm.request import CompletionRequest
from rxllm.testing import Call, ScriptedServer, Turn
from rxllm.tools import tool


class Address(msgspec.Struct):
    """A postal address."""

    street: str
    city: str


class Contact(msgspec.Struct):
    """A person to reach."""

    name: str
    emails: list[str]
    address: Address | None = None
    vip: bool = False


ADDRESS_STRICT = {
    "title": "Address",
    "description": "A postal address.",
    "type": "object",
    "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
    "required": ["street", "city"],
    "additionalProperties": False,
}
CONTACT_STRICT = {
    "title": "Contact",
    "description": "A person to reach.",
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "emails": {"type": "array", "items": {"type": "string"}},
        "address": {"anyOf": [{"$ref": "#/$defs/Address"}, {"type": "null"}]},
        "vip": {"type": "boolean"},
    },
    "required": ["name", "emails", "address", "vip"],
    "additionalProperties": False,
    "$defs": {"Address": ADDRESS_STRICT},
}
CONTACT_SCHEMA = {  # msgspec's own, the root inlined: what Anthropic's tool takes
    "title": "Contact",
    "description": "A person to reach.",
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "emails": {"type": "array", "items": {"type": "string"}},
        "address": {"anyOf": [{"$ref": "#/$defs/Address"}, {"type": "null"}], "default": None},
        "vip": {"type": "boolean", "default": False},
    },
    "required": ["name", "emails"],
    "$defs": {
        "Address": {
            "title": "Address",
            "description": "A postal address.",
            "type": "object",
            "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
            "required": ["street", "city"],
        }
    },
}
ANSWER = ['{"name": "Ada', '", "emails": ["ada@', 'example.org"], "address": null, "vip": true}']
ADA = Contact(name="Ada", emails=["ada@example.org"], vip=True)
ASK = CompletionRequest([Message.user("Who wrote the first program?")], output=Contact)


async def test_openai_chat_asks_with_a_strict_json_schema(closing: Closing) -> None:
    async with ScriptedServer([Turn(text=ANSWER)]) as server:
        provider = closing(OpenAIChat("gpt-4o-mini", base_url=server.base_url, api_key=""))
        result = await collect_events(provider.stream(ASK).pipe(parse_output(Contact)))
    assert server.requests[0].json == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Who wrote the first program?"}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "Contact", "schema": CONTACT_STRICT, "strict": True},
        },
    }
    assert [e for e in result.events if isinstance(e, TextDelta)] == [TextDelta(text=t) for t in ANSWER]
    assert result.events[-1] == Output(value=ADA)
    assert result.completed


class Tally(msgspec.Struct):
    """Counts by name: free keys, which strict mode cannot name."""

    counts: dict[str, int]


async def test_openai_chat_a_schema_strict_mode_cannot_express_is_sent_as_it_is_not_strict(
    closing: Closing,
) -> None:
    async with ScriptedServer([Turn(text=['{"counts": {"a": 1}}'])]) as server:
        provider = closing(OpenAIChat("llama3.2", base_url=server.base_url, api_key=""))
        request = CompletionRequest([Message.user("Count")], output=Tally, params={"seed": 7})
        result = await collect_events(provider.stream(request).pipe(parse_output(Tally)))
    assert server.requests[0].json["response_format"] == {
        "type": "json_schema",
        "json_schema": {
            "name": "Tally",
            "schema": {
                "title": "Tally",
                "description": "Counts by name: free keys, which strict mode cannot name.",
                "type": "object",
                "properties": {"counts": {"type": "object", "additionalProperties": {"type": "integer"}}},
                "required": ["counts"],
            },
            "strict": False,
        },
    }
    assert server.requests[0].json["seed"] == 7
    assert result.events[-1] == Output(value=Tally(counts={"a": 1}))


async def test_openai_responses_asks_with_text_format_json_schema(closing: Closing) -> None:
    async with ScriptedServer([Turn(text=ANSWER)], dialect="responses") as server:
        provider = closing(OpenAIResponses("gpt-5-mini", base_url=server.base_url, api_key=""))
        result = await collect_events(provider.stream(ASK).pipe(parse_output(Contact)))
    assert server.requests[0].json == {
        "model": "gpt-5-mini",
        "input": [{"type": "message", "role": "user", "content": "Who wrote the first program?"}],
        "stream": True,
        "text": {
            "format": {"type": "json_schema", "name": "Contact", "schema": CONTACT_STRICT, "strict": True}
        },
    }
    assert [e for e in result.events if isinstance(e, TextDelta)] == [TextDelta(text=t) for t in ANSWER]
    assert result.events[-1] == Output(value=ADA)


def answer_call(fragments: list[str] = ANSWER) -> Call:
    return Call(OUTPUT_TOOL, fragments=fragments, id="toolu_answer")


async def test_anthropic_asks_through_a_forced_output_tool(closing: Closing) -> None:
    async with ScriptedServer([Turn(calls=[answer_call()])], dialect="anthropic") as server:
        provider = closing(AnthropicMessages("claude-sonnet-4-5", base_url=server.origin, api_key=""))
        result = await collect_events(provider.stream(ASK).pipe(parse_output(Contact)))
    assert server.requests[0].json == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": "Who wrote the first program?"}],
        "stream": True,
        "tools": [
            {
                "name": "final_answer",
                "description": "Give the final answer as a Contact. Call this once, with the whole answer, "
                "when it is ready.",
                "input_schema": CONTACT_SCHEMA,
            }
        ],
        "tool_choice": {"type": "tool", "name": "final_answer"},
    }
    # Downstream the answer is text, as from the OpenAI providers: no call events, and end_turn.
    events = result.events
    assert not any(isinstance(e, ToolCallDelta | ToolCall) for e in events)
    assert [e for e in events if isinstance(e, TextDelta)] == [TextDelta(text=t) for t in ANSWER]
    (final,) = [e for e in events if isinstance(e, Final)]
    assert final.finish_reason == "end_turn"
    assert [type(e) for e in events] == [
        TextDelta, PartialOutput, TextDelta, PartialOutput, TextDelta, PartialOutput, Final, Output
    ]  # fmt: skip
    assert events[-1] == Output(value=ADA)


@tool
def lookup(name: str) -> str:
    """Look a person up.

    Args:
        name: Who.
    """
    return f"{name}: mathematician"


async def test_anthropic_offers_the_output_tool_beside_the_request_tools_and_asks_for_any(
    closing: Closing,
) -> None:
    async with ScriptedServer([Turn(calls=[answer_call()])], dialect="anthropic") as server:
        provider = closing(AnthropicMessages("claude-sonnet-4-5", base_url=server.origin, api_key=""))
        request = CompletionRequest([Message.user("Who?")], tools=[lookup], output=Contact)
        await collect_events(provider.stream(request))
    body = server.requests[0].json
    assert [t["name"] for t in body["tools"]] == ["lookup", "final_answer"]
    assert body["tools"][1]["description"] == (
        "Give the final answer as a Contact. Call this once, with the whole answer, when it is ready; "
        "call the other tools first when you need them."
    )
    assert body["tool_choice"] == {"type": "any"}


async def test_anthropic_keeps_a_tool_choice_the_request_gives(closing: Closing) -> None:
    async with ScriptedServer([Turn(calls=[answer_call()])], dialect="anthropic") as server:
        provider = closing(AnthropicMessages("claude-sonnet-4-5", base_url=server.origin, api_key=""))
        request = CompletionRequest([Message.user("Who?")], tool_choice="auto", output=Contact)
        await collect_events(provider.stream(request))
    assert server.requests[0].json["tool_choice"] == {"type": "auto"}


async def test_anthropic_a_call_of_another_tool_beside_the_answer_stays_a_call(closing: Closing) -> None:
    script = [Turn(calls=[Call("lookup", {"name": "Ada"}, id="toolu_1"), answer_call()])]
    async with ScriptedServer(script, dialect="anthropic") as server:
        provider = closing(AnthropicMessages("claude-sonnet-4-5", base_url=server.origin, api_key=""))
        request = CompletionRequest([Message.user("Who?")], tools=[lookup], output=Contact)
        result = await collect_events(provider.stream(request))
    calls = [e for e in result.events if isinstance(e, ToolCall)]
    assert [(c.name, c.arguments) for c in calls] == [("lookup", {"name": "Ada"})]
    assert "".join(e.text for e in result.events if isinstance(e, TextDelta)) == "".join(ANSWER)
    assert result.events[-1].finish_reason == "tool_use"  # a tool still has to run


def test_anthropic_refuses_an_output_type_that_is_not_an_object() -> None:
    provider = AnthropicMessages("claude-sonnet-4-5", api_key="")
    with pytest.raises(ValueError, match="output=list is not one: use a Struct, a dataclass or a TypedDict"):
        provider.stream(CompletionRequest([Message.user("Hi")], output=list[int]))


async def test_the_schema_is_made_once_per_type_not_per_request(
    closing: Closing, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[Any] = []
    schema = msgspec.json.schema

    def counted(kind: Any) -> Any:
        made.append(kind)
        return schema(kind)

    monkeypatch.setattr(msgspec.json, "schema", counted)

    class Fresh(msgspec.Struct):  # a type no other test asked for
        ok: bool

    request = CompletionRequest([Message.user("Ok?")], output=Fresh)
    async with ScriptedServer([Turn(text=['{"ok": true}'])] * 3) as server:
        provider = closing(OpenAIChat("gpt-4o-mini", base_url=server.base_url, api_key=""))
        for _ in range(3):
            await collect_events(provider.stream(request))
    assert made == [Fresh]
    formats = [r.json["response_format"] for r in server.requests]
    assert formats == [formats[0]] * 3
