"""``Agent(model, output=T)``: a structured final answer, validation retries, tools first, over loopback."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from conftest import Closing, collect_events
from reactivex import from_iterable

from rxllm import (
    Agent,
    Final,
    FinalResponse,
    Message,
    Output,
    OutputValidationError,
    PartialOutput,
    ToolCall,
    ToolCallDelta,
    ToolResult,
    tool,
)
from rxllm.messages import TextPart
from rxllm.operators import agent as agent_operator
from rxllm.output import output_spec
from rxllm.providers.anthropic import OUTPUT_TOOL
from rxllm.testing import Call, ScriptedModel, ScriptedServer, Turn


class Person(msgspec.Struct):
    """Someone the user asked about."""

    name: str
    born: int
    fields: list[str]


ADA = Person(name="Ada Lovelace", born=1815, fields=["mathematics", "computing"])
ANSWER = ['{"name": "Ada Love', 'lace", "born": 18', '15, "fields": ["mathe', 'matics", "computing"]}']
BAD = ['{"name": "Ada Lovelace", ', '"born": "1815", "fields": []}']  # born as a string
PROMPT = "Who wrote the first program?"
RETRY = (
    "Your answer is not a valid Person: Expected `int`, got `str` - at `$.born`. "
    "Answer again with the whole corrected Person, exactly as its JSON schema says."
)
RESPONSE_FORMAT = {
    "type": "json_schema",
    "json_schema": {"name": "Person", "schema": output_spec(Person).strict_schema, "strict": True},
}


@tool
def lookup(name: str) -> str:
    """Look a person up in the encyclopedia.

    Args:
        name: Who.
    """
    return f"{name}: born 1815, mathematician"


async def test_the_final_answer_streams_as_partial_outputs_then_output_and_final_response(
    closing: Closing,
) -> None:
    async with ScriptedServer([Turn(text=ANSWER)]) as server:
        agent = Agent(closing(server.provider()), output=Person)
        result = await collect_events(agent.stream_prompt(PROMPT))
    assert result.completed
    events = result.events
    assert [e.value for e in events if isinstance(e, PartialOutput)] == [
        {"name": "Ada Love"},
        {"name": "Ada Lovelace"},
        {"name": "Ada Lovelace", "born": 1815, "fields": ["mathe"]},
        {"name": "Ada Lovelace", "born": 1815, "fields": ["mathematics", "computing"]},
    ]
    assert [type(e) for e in events[-3:]] == [Final, Output, FinalResponse]
    assert events[-2] == Output(value=ADA)
    final = events[-1]
    assert isinstance(final, FinalResponse)
    assert (final.output, final.text, final.turns) == (ADA, "".join(ANSWER), 1)
    assert final.history[-1] == Message.assistant("".join(ANSWER))
    (request,) = server.requests
    assert request.json["response_format"] == RESPONSE_FORMAT
    assert msgspec.json.decode(msgspec.json.encode(final))["output"] == msgspec.to_builtins(ADA)


async def test_an_invalid_answer_is_sent_back_with_the_error_and_the_model_asked_again(
    closing: Closing,
) -> None:
    async with ScriptedServer([Turn(text=BAD), Turn(text=ANSWER)]) as server:
        agent = Agent(closing(server.provider()), output=Person, preamble="Be exact.")
        result = await collect_events(agent.stream_prompt(PROMPT))
    assert result.completed
    assert len(server.requests) == 2
    assert server.requests[1].json == {
        "model": "scripted-model",
        "messages": [
            {"role": "system", "content": "Be exact."},
            {"role": "user", "content": PROMPT},
            {"role": "assistant", "content": "".join(BAD)},
            {"role": "user", "content": RETRY},
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
        "response_format": RESPONSE_FORMAT,
    }
    outputs = [e for e in result.events if isinstance(e, Output)]
    assert outputs == [Output(value=ADA)]  # the invalid answer gives none
    final = result.events[-1]
    assert isinstance(final, FinalResponse)
    assert (final.output, final.turns) == (ADA, 2)
    assert [m.role for m in final.history] == ["user", "assistant", "user", "assistant"]


async def test_when_the_retries_run_out_the_validation_error_ends_the_run(closing: Closing) -> None:
    async with ScriptedServer([Turn(text=BAD), Turn(text=BAD), Turn(text=ANSWER)]) as server:
        agent = Agent(closing(server.provider()), output=Person, output_retries=1)
        result = await collect_events(agent.stream_prompt(PROMPT))
    assert len(server.requests) == 2
    error = result.error
    assert isinstance(error, OutputValidationError)
    assert str(error) == "the answer is not a valid Person: Expected `int`, got `str` - at `$.born`"
    assert error.raw == "".join(BAD)
    assert [m.role for m in error.history] == ["user", "assistant", "user", "assistant"]
    assert error.history[-1] == Message.assistant("".join(BAD))
    assert error.usage is not None and error.usage.total_tokens == 30  # two turns of 15
    assert not any(isinstance(e, Output | FinalResponse) for e in result.events)


@pytest.mark.parametrize(("max_turns", "output_retries", "requests"), [(5, 0, 1), (1, 3, 1), (2, 3, 2)])
async def test_each_retry_is_a_turn_that_max_turns_counts(
    closing: Closing, max_turns: int, output_retries: int, requests: int
) -> None:
    async with ScriptedServer([Turn(text=BAD)] * 4) as server:
        agent = Agent(
            closing(server.provider()), output=Person, max_turns=max_turns, output_retries=output_retries
        )
        result = await collect_events(agent.stream_prompt(PROMPT))
    assert isinstance(result.error, OutputValidationError)
    assert len(server.requests) == requests


async def test_tools_first_then_the_structured_answer(closing: Closing) -> None:
    script = [
        Turn(text=["Let me look that up."], calls=[Call("lookup", {"name": "Ada Lovelace"}, id="call_1")]),
        Turn(text=ANSWER),
    ]
    async with ScriptedServer(script) as server:
        agent = Agent(closing(server.provider()), tools=[lookup], output=Person)
        result = await collect_events(agent.stream_prompt(PROMPT))
    assert result.completed
    events = result.events
    # The tool turn's prose is no JSON: it only stops that turn's partial values.
    first_final = next(i for i, e in enumerate(events) if isinstance(e, Final))
    assert not any(isinstance(e, PartialOutput) for e in events[:first_final])
    results = [e for e in events if isinstance(e, ToolResult)]
    assert [r.content for r in results] == ["Ada Lovelace: born 1815, mathematician"]
    assert events[-1] == FinalResponse(
        text="".join(ANSWER),
        usage=events[-1].usage,
        history=events[-1].history,
        turns=2,
        output=ADA,
    )
    assert [r.json["response_format"] for r in server.requests] == [RESPONSE_FORMAT] * 2
    assert server.requests[1].json["messages"][1:] == [
        {
            "role": "assistant",
            "content": "Let me look that up.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "lookup", "arguments": '{"name":"Ada Lovelace"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "Ada Lovelace: born 1815, mathematician"},
    ]


async def test_anthropic_tools_and_the_output_tool_then_a_retry(closing: Closing) -> None:
    script = [
        Turn(calls=[Call("lookup", {"name": "Ada Lovelace"}, id="toolu_1")]),
        Turn(calls=[Call(OUTPUT_TOOL, fragments=BAD, id="toolu_2")]),
        Turn(calls=[Call(OUTPUT_TOOL, fragments=ANSWER, id="toolu_3")]),
    ]
    async with ScriptedServer(script, dialect="anthropic") as server:
        agent = Agent(closing(server.provider()), tools=[lookup], output=Person)
        result = await collect_events(agent.stream_prompt(PROMPT))
    assert result.completed
    final = result.events[-1]
    assert isinstance(final, FinalResponse) and (final.output, final.turns) == (ADA, 3)
    calls = [e for e in result.events if isinstance(e, ToolCall | ToolCallDelta)]
    assert {e.name for e in calls if isinstance(e, ToolCall)} == {"lookup"}  # the answers are text
    bodies = [r.json for r in server.requests]
    assert [[t["name"] for t in b["tools"]] for b in bodies] == [["lookup", OUTPUT_TOOL]] * 3
    assert [b["tool_choice"] for b in bodies] == [{"type": "any"}] * 3
    assert bodies[2]["messages"] == [
        {
            "role": "user",
            "content": PROMPT,
        },
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"name": "Ada Lovelace"}}
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_1",
                    "content": "Ada Lovelace: born 1815, mathematician",
                }
            ],
        },
        {"role": "assistant", "content": "".join(BAD)},
        {"role": "user", "content": RETRY},
    ]
    assert final.history[-1] == Message.assistant("".join(ANSWER))


def test_no_output_type_no_output() -> None:
    model = ScriptedModel([Turn(text=['{"name": "Ada"}'])])
    events: list[Any] = []
    Agent(model).stream_prompt(PROMPT).subscribe(events.append)
    assert not any(isinstance(e, PartialOutput | Output) for e in events)
    final = events[-1]
    assert isinstance(final, FinalResponse) and final.output is None
    assert model.requests[0].output is None


def test_the_operator_answers_each_prompt_with_its_output() -> None:
    model = ScriptedModel(
        [Turn(text=ANSWER), Turn(text=['{"name": "Grace Hopper", "born": 1906, "fields": []}'])]
    )
    events: list[Any] = []
    from_iterable(["Ada?", "Grace?"]).pipe(agent_operator(model, output=Person)).subscribe(events.append)
    finals = [e for e in events if isinstance(e, FinalResponse)]
    assert [f.output for f in finals] == [ADA, Person(name="Grace Hopper", born=1906, fields=[])]
    assert [r.output for r in model.requests] == [Person, Person]
    assert model.requests[1].messages[:2] == (
        Message.user("Ada?"),
        Message(role="assistant", content=(TextPart(text="".join(ANSWER)),)),
    )


def test_settings_are_checked_when_the_agent_is_made() -> None:
    with pytest.raises(ValueError, match="output_retries must be 0 or more"):
        agent_operator(ScriptedModel([]), output=Person, output_retries=-1)
    with pytest.raises(TypeError, match="is not a type msgspec can validate"):
        agent_operator(ScriptedModel([]), output=object)
