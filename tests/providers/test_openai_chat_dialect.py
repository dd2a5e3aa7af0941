"""The OpenAI Chat Completions dialect, fed chunks shaped as the servers send them.

Every fixture carries the fields the real server sends (``object``, ``created``,
``system_fingerprint``, ``service_tier``, ``logprobs``...), though the parser reads
few of them: an unread field must not break decoding.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec
import pytest

from rxllm.errors import (
    AuthenticationError,
    BadRequestError,
    ChunkDecodeError,
    InternalServerError,
    NotFoundError,
    OverloadedError,
    ProviderError,
    RateLimitError,
)
from rxllm.events import ChunkEvent, Final, ReasoningDelta, TextDelta, ToolCallFragment, Usage
from rxllm.providers._openai_chat import OpenAIChatDialect, OpenAIChatParser

ID = "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG"
MODEL = "gpt-4o-mini-2024-07-18"
HEAD = (
    f'"id":"{ID}","object":"chat.completion.chunk","created":1741570283,"model":"{MODEL}",'
    '"service_tier":"default","system_fingerprint":"fp_06737a9306"'
)
FIRST = (
    "{" + HEAD + ',"choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},'
    '"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"q3Zd"}'
)
STOP = (
    "{" + HEAD + ',"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],'
    '"usage":null,"obfuscation":"x1"}'
)
USAGE = (
    "{" + HEAD + ',"choices":[],"usage":{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29,'
    '"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},'
    '"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,'
    '"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"obfuscation":"bq"}'
)
USAGE_EVENT = Final(
    usage=Usage(input_tokens=19, output_tokens=10, total_tokens=29), response_id=ID, model=MODEL
)
STOP_EVENT = Final(finish_reason="stop", response_id=ID, model=MODEL)


def content(text: str, *, finish_reason: str = "null") -> str:
    """An OpenAI chunk with one piece of text (``text`` is JSON-safe)."""
    return (
        "{" + HEAD + f',"choices":[{{"index":0,"delta":{{"content":"{text}"}},"logprobs":null,'
        f'"finish_reason":{finish_reason}}}],"usage":null,"obfuscation":"Zk"}}'
    )


def feed_all(lines: Iterable[str], parser: OpenAIChatParser | None = None) -> list[ChunkEvent]:
    parser = parser if parser is not None else OpenAIChatDialect().parser()
    events: list[ChunkEvent] = []
    for line in lines:
        events.extend(parser.feed("message", line))
    return events


def test_dialect_name_and_a_fresh_parser_each_time() -> None:
    dialect = OpenAIChatDialect()
    first, second = dialect.parser(), dialect.parser()
    first.feed("message", "[DONE]")
    assert dialect.name == "openai-chat"
    assert dialect.end_of_turn == "[DONE] (or a finish reason and its usage)"
    assert OpenAIChatDialect(require_end_marker=False).end_of_turn == "[DONE] or a finish reason"
    assert (first.done, first.finished) == (True, True)
    assert (second.done, second.finished) == (False, False)


def test_a_finish_reason_ends_the_turn_only_with_its_usage() -> None:
    parser = OpenAIChatDialect().parser()
    assert feed_all([content("Hi"), STOP], parser) == [TextDelta(text="Hi"), STOP_EVENT]
    assert (parser.done, parser.finished) == (False, False)  # a cut here would lose the usage
    assert feed_all([USAGE], parser) == [USAGE_EVENT]
    assert (parser.done, parser.finished) == (False, True)


def test_usage_on_the_chunk_with_the_finish_reason_ends_the_turn() -> None:
    parser = OpenAIChatDialect().parser()
    line = (
        "{" + HEAD + ',"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],'
        '"usage":{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29}}'
    )
    assert feed_all([line], parser) == [STOP_EVENT, USAGE_EVENT]
    assert parser.finished


def test_without_the_end_marker_requirement_a_finish_reason_alone_ends_the_turn() -> None:
    parser = OpenAIChatDialect(require_end_marker=False).parser()
    assert feed_all([content("Hi")], parser) == [TextDelta(text="Hi")]
    assert parser.finished is False
    assert feed_all([STOP], parser) == [STOP_EVENT]
    assert (parser.done, parser.finished) == (False, True)


def test_text_only() -> None:
    parser = OpenAIChatDialect().parser()
    events = feed_all([FIRST, content("Hello"), content(" there!"), STOP, USAGE], parser)
    assert events == [TextDelta(text="Hello"), TextDelta(text=" there!"), STOP_EVENT, USAGE_EVENT]
    assert (parser.done, parser.finished) == (False, True)


def test_done_sets_done() -> None:
    parser = OpenAIChatDialect().parser()
    assert parser.feed("message", content("Hi")) == [TextDelta(text="Hi")]
    assert (parser.done, parser.finished) == (False, False)
    assert list(parser.feed("message", "[DONE]")) == []
    assert (parser.done, parser.finished) == (True, True)


def test_empty_content_on_the_role_chunk_gives_nothing() -> None:
    parser = OpenAIChatDialect().parser()
    assert parser.feed("message", FIRST) == []
    assert (parser.done, parser.finished) == (False, False)


def test_reasoning_content_deepseek() -> None:
    head = (
        '"id":"8f3c9a52-6b1e-4d0a-9c3e-5d2b1f7e4a10","object":"chat.completion.chunk","created":1741570283,'
        '"model":"deepseek-reasoner","system_fingerprint":"fp_5417b77867_prod0425fp8"'
    )
    lines = [
        "{" + head + ',"choices":[{"index":0,"delta":{"role":"assistant","content":null,'
        '"reasoning_content":""},"logprobs":null,"finish_reason":null}]}',
        "{" + head + ',"choices":[{"index":0,"delta":{"content":null,"reasoning_content":"Okay, 2+2"},'
        '"logprobs":null,"finish_reason":null}]}',
        "{" + head + ',"choices":[{"index":0,"delta":{"content":"4","reasoning_content":null},'
        '"logprobs":null,"finish_reason":null}]}',
        # DeepSeek sends the usage on the chunk with the finish reason.
        "{" + head + ',"choices":[{"index":0,"delta":{"content":"","reasoning_content":null},'
        '"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":13,"completion_tokens":40,'
        '"total_tokens":53,"prompt_tokens_details":{"cached_tokens":8},'
        '"completion_tokens_details":{"reasoning_tokens":38},'
        '"prompt_cache_hit_tokens":8,"prompt_cache_miss_tokens":5}}',
    ]
    rid, model = "8f3c9a52-6b1e-4d0a-9c3e-5d2b1f7e4a10", "deepseek-reasoner"
    assert feed_all(lines) == [
        ReasoningDelta(text="Okay, 2+2"),
        TextDelta(text="4"),
        Final(finish_reason="stop", response_id=rid, model=model),
        Final(
            usage=Usage(
                input_tokens=13, output_tokens=40, total_tokens=53, cached_input_tokens=8, reasoning_tokens=38
            ),
            response_id=rid,
            model=model,
        ),
    ]


def test_reasoning_groq() -> None:
    head = (
        '"id":"chatcmpl-7e1b2c3d","object":"chat.completion.chunk","created":1754400000,'
        '"model":"openai/gpt-oss-20b","system_fingerprint":"fp_fd2a7a8e3c"'
    )
    lines = [
        "{" + head + ',"choices":[{"index":0,"delta":{"role":"assistant","content":""},'
        '"logprobs":null,"finish_reason":null}],"x_groq":{"id":"req_01k1"}}',
        "{" + head + ',"choices":[{"index":0,"delta":{"reasoning":"The user asks"},'
        '"logprobs":null,"finish_reason":null}]}',
        "{" + head + ',"choices":[{"index":0,"delta":{"content":"Hi"},"logprobs":null,'
        '"finish_reason":null}]}',
    ]
    assert feed_all(lines) == [ReasoningDelta(text="The user asks"), TextDelta(text="Hi")]


def tool_chunk(tool_calls: str, *, finish_reason: str = "null") -> str:
    return (
        "{" + HEAD + f',"choices":[{{"index":0,"delta":{{"tool_calls":[{tool_calls}]}},"logprobs":null,'
        f'"finish_reason":{finish_reason}}}],"usage":null}}'
    )


def test_tool_call_fragments_with_index() -> None:
    first = (
        "{" + HEAD + ',"choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":['
        '{"index":0,"id":"call_DdmO9pD3xa9XTPNJ32zg2hcA","type":"function",'
        '"function":{"name":"get_weather","arguments":""}}],"refusal":null},"logprobs":null,'
        '"finish_reason":null}],"usage":null}'
    )
    lines = [
        first,
        tool_chunk('{"index":0,"function":{"arguments":"{\\"loc"}}'),
        tool_chunk('{"index":0,"function":{"arguments":"ation\\":\\"Paris\\"}"}}'),
        "{" + HEAD + ',"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"tool_calls"}],'
        '"usage":null}',
    ]
    assert feed_all(lines) == [
        ToolCallFragment(index=0, id="call_DdmO9pD3xa9XTPNJ32zg2hcA", name="get_weather", arguments=""),
        ToolCallFragment(index=0, arguments='{"loc'),
        ToolCallFragment(index=0, arguments='ation":"Paris"}'),
        Final(finish_reason="tool_calls", response_id=ID, model=MODEL),
    ]


def test_two_parallel_calls_interleaved() -> None:
    lines = [
        tool_chunk('{"index":0,"id":"call_a","type":"function","function":{"name":"add","arguments":""}}'),
        tool_chunk('{"index":1,"id":"call_b","type":"function","function":{"name":"mul","arguments":""}}'),
        tool_chunk('{"index":0,"function":{"arguments":"{\\"x\\":1}"}}'),
        tool_chunk('{"index":1,"function":{"arguments":"{\\"y\\":"}}'),
        # Several calls in one delta.
        tool_chunk('{"index":1,"function":{"arguments":"2}"}},{"index":0,"function":{"arguments":""}}'),
    ]
    assert feed_all(lines) == [
        ToolCallFragment(index=0, id="call_a", name="add"),
        ToolCallFragment(index=1, id="call_b", name="mul"),
        ToolCallFragment(index=0, arguments='{"x":1}'),
        ToolCallFragment(index=1, arguments='{"y":'),
        ToolCallFragment(index=1, arguments="2}"),
        ToolCallFragment(index=0),
    ]


def test_empty_id_and_name_on_continuation_fragments_deepseek_qwen() -> None:
    lines = [
        tool_chunk('{"index":0,"id":"call_0_9b","type":"function","function":{"name":"add","arguments":""}}'),
        tool_chunk('{"index":0,"id":"","type":"function","function":{"name":"","arguments":"{}"}}'),
        tool_chunk('{"index":0,"id":null,"type":null,"function":{"name":null,"arguments":null}}'),
        tool_chunk('{"index":0,"function":null}'),
    ]
    assert feed_all(lines) == [
        ToolCallFragment(index=0, id="call_0_9b", name="add"),
        ToolCallFragment(index=0, arguments="{}"),
        ToolCallFragment(index=0),
        ToolCallFragment(index=0),
    ]


def test_tool_call_without_index_google() -> None:
    line = tool_chunk('{"id":"function-call-1","type":"function","function":{"name":"add","arguments":"{}"}}')
    assert feed_all([line]) == [
        ToolCallFragment(index=None, id="function-call-1", name="add", arguments="{}")
    ]


def test_stop_with_tool_calls() -> None:
    lines = [
        tool_chunk('{"index":0,"id":"call_a","type":"function","function":{"name":"add","arguments":"{}"}}'),
        STOP,
    ]
    parser = OpenAIChatDialect(require_end_marker=False).parser()
    assert feed_all(lines, parser) == [
        ToolCallFragment(index=0, id="call_a", name="add", arguments="{}"),
        STOP_EVENT,
    ]
    assert parser.finished


def test_usage_only_last_chunk_with_empty_choices() -> None:
    parser = OpenAIChatDialect().parser()
    assert parser.feed("message", USAGE) == [USAGE_EVENT]
    # Usage alone does not end the turn: only a finish reason or [DONE] does.
    assert (parser.done, parser.finished) == (False, False)


def test_usage_sent_twice() -> None:
    assert feed_all([content("Hi"), STOP, USAGE, USAGE]) == [
        TextDelta(text="Hi"),
        STOP_EVENT,
        USAGE_EVENT,
        USAGE_EVENT,
    ]


def test_no_usage() -> None:
    parser = OpenAIChatDialect().parser()
    assert feed_all([FIRST, content("Hi"), STOP, "[DONE]"], parser) == [TextDelta(text="Hi"), STOP_EVENT]
    assert (parser.done, parser.finished) == (True, True)


def test_usage_with_nulls_and_no_total() -> None:
    line = (
        "{" + HEAD + ',"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":null,'
        '"prompt_tokens_details":null,"completion_tokens_details":{"reasoning_tokens":null}}}'
    )
    assert feed_all([line]) == [
        Final(usage=Usage(input_tokens=7, output_tokens=3, total_tokens=10), response_id=ID, model=MODEL)
    ]


def test_an_empty_usage_object_reports_nothing() -> None:
    # `"usage": {}` or all nulls: no numbers, so no usage; zeros would read as a free request.
    parser = OpenAIChatDialect().parser()
    nulls = '"usage":{"prompt_tokens":null,"completion_tokens":null,"total_tokens":null}'
    assert (
        feed_all(["{" + HEAD + ',"choices":[],"usage":{}}', "{" + HEAD + ',"choices":[],' + nulls + "}"])
        == []
    )
    assert feed_all([STOP], parser) == [STOP_EVENT]
    assert feed_all(["{" + HEAD + ',"choices":[],"usage":{}}'], parser) == []
    assert parser.finished is False


def test_finish_reason_missing() -> None:
    lines = [
        "{" + HEAD + ',"choices":[{"index":0,"delta":{"content":"Hi"}}]}',
        "{" + HEAD + ',"choices":[{"index":0,"delta":{}}]}',
        USAGE,
    ]
    parser = OpenAIChatDialect().parser()
    assert feed_all(lines, parser) == [TextDelta(text="Hi"), USAGE_EVENT]
    assert (parser.done, parser.finished) == (False, False)


def test_finish_reason_empty_string() -> None:
    parser = OpenAIChatDialect().parser()
    assert feed_all([content("Hi", finish_reason='""')], parser) == [TextDelta(text="Hi")]
    assert parser.finished is False


def test_finish_reason_unknown_kept_verbatim() -> None:
    parser = OpenAIChatDialect(require_end_marker=False).parser()
    assert feed_all([content("Hi", finish_reason='"eos_token"')], parser) == [
        TextDelta(text="Hi"),
        Final(finish_reason="eos_token", response_id=ID, model=MODEL),
    ]
    assert parser.finished is True


def test_finish_reason_on_a_chunk_after_the_content() -> None:
    parser = OpenAIChatDialect(require_end_marker=False).parser()
    assert feed_all([content("Hi")], parser) == [TextDelta(text="Hi")]
    assert parser.finished is False
    assert feed_all([content(" all", finish_reason='"length"')], parser) == [
        TextDelta(text=" all"),
        Final(finish_reason="length", response_id=ID, model=MODEL),
    ]
    assert parser.finished is True


def test_in_band_error_object_on_200() -> None:
    line = (
        '{"error":{"message":"The server had an error processing your request.",'
        '"type":"server_error","param":null,"code":null}}'
    )
    with pytest.raises(ProviderError) as caught:
        OpenAIChatDialect().parser().feed("message", line)
    error = caught.value
    assert type(error) is InternalServerError
    assert (error.message, error.type, error.code, error.status) == (
        "The server had an error processing your request.",
        "server_error",
        None,
        None,
    )
    assert str(error) == (
        "error in stream: The server had an error processing your request. (type=server_error)"
    )


def test_in_band_error_object_with_int_code_openrouter() -> None:
    line = (
        '{"id":"gen-1741570283-abc","object":"chat.completion.chunk","created":1741570283,'
        '"model":"anthropic/claude-sonnet-4","provider":"Anthropic",'
        '"error":{"code":502,"message":"Provider returned error","metadata":{"provider_name":"Anthropic"}},'
        '"choices":[{"index":0,"delta":{"content":""},"finish_reason":"error","native_finish_reason":"error"}]}'
    )
    with pytest.raises(ProviderError) as caught:
        OpenAIChatDialect().parser().feed("message", line)
    error = caught.value
    assert type(error) is InternalServerError  # code 502: a status number, classed as one
    assert (error.message, error.type, error.code, error.status) == (
        "Provider returned error",
        None,
        "502",
        None,
    )


@pytest.mark.parametrize(
    ("type_", "code", "kind"),
    [
        ("invalid_request_error", "context_length_exceeded", BadRequestError),
        ("invalid_request_error", "invalid_api_key", AuthenticationError),
        ("invalid_request_error", "model_not_found", NotFoundError),
        ("requests", "rate_limit_exceeded", RateLimitError),
        ("insufficient_quota", None, RateLimitError),
        ("server_error", None, InternalServerError),
        ("overloaded_error", None, OverloadedError),
        (None, "429", RateLimitError),
        (None, "503", InternalServerError),
        ("upstream_error", "oops", ProviderError),
    ],
)
def test_in_band_error_objects_are_classed_by_code_then_type(
    type_: str | None, code: str | None, kind: type[ProviderError]
) -> None:
    body = msgspec.json.encode({"error": {"message": "no", "type": type_, "code": code}}).decode()
    with pytest.raises(ProviderError) as caught:
        OpenAIChatDialect().parser().feed("message", body)
    assert type(caught.value) is kind
    assert (caught.value.type, caught.value.code, caught.value.status) == (type_, code, None)


def test_in_band_error_string_on_200() -> None:
    with pytest.raises(ProviderError) as caught:
        OpenAIChatDialect().parser().feed("message", '{"error":"upstream connect error or disconnect"}')
    error = caught.value
    assert type(error) is ProviderError
    assert (error.message, error.type, error.code, error.status) == (
        "upstream connect error or disconnect",
        None,
        None,
        None,
    )


def test_error_null_beside_usage() -> None:
    line = (
        "{" + HEAD + ',"choices":[],"usage":{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29},'
        '"error":null}'
    )
    assert feed_all([line]) == [USAGE_EVENT]


def test_azure_content_filter_prelude() -> None:
    filters = (
        '"content_filter_results":{"hate":{"filtered":false,"severity":"safe"},'
        '"self_harm":{"filtered":false,"severity":"safe"},"sexual":{"filtered":false,"severity":"safe"},'
        '"violence":{"filtered":false,"severity":"safe"}}'
    )
    prelude = (
        '{"choices":[{"finish_reason":null,"index":0,"logprobs":null,' + filters + "}],"
        '"created":0,"id":"","model":"","object":"",'
        '"prompt_filter_results":[{"prompt_index":0,' + filters + "}]}"
    )
    empty_prelude = '{"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[]}'
    parser = OpenAIChatDialect().parser()
    assert feed_all([prelude, empty_prelude], parser) == []
    assert (parser.done, parser.finished) == (False, False)


def test_empty_id_and_model_are_absent() -> None:
    line = '{"id":"","object":"","model":"","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}'
    assert feed_all([line]) == [Final(finish_reason="stop", response_id=None, model=None)]


def test_n_greater_than_1_only_index_0() -> None:
    def choice(index: int, text: str, finish_reason: str = "null") -> str:
        return (
            f'{{"index":{index},"delta":{{"content":"{text}"}},"logprobs":null,'
            f'"finish_reason":{finish_reason}}}'
        )

    lines = [
        "{" + HEAD + ',"choices":[' + choice(1, "Bonjour") + "]}",
        "{" + HEAD + ',"choices":[' + choice(0, "Hello") + "]}",
        "{" + HEAD + ',"choices":[' + choice(1, "!", '"stop"') + "," + choice(0, " you") + "]}",
    ]
    parser = OpenAIChatDialect().parser()
    assert feed_all(lines, parser) == [TextDelta(text="Hello"), TextDelta(text=" you")]
    # Candidate 1 finishing does not finish the turn.
    assert parser.finished is False
    assert feed_all(["{" + HEAD + ',"choices":[' + choice(0, "", '"stop"') + "]}"], parser) == [STOP_EVENT]


def test_mistral_content_array() -> None:
    head = (
        '"id":"cmpl-e5cc70bb28c444948073e77776eb30ef","object":"chat.completion.chunk",'
        '"created":1741570283,"model":"magistral-medium-2506"'
    )
    lines = [
        "{" + head + ',"choices":[{"index":0,"delta":{"role":"assistant","content":""},'
        '"finish_reason":null}]}',
        "{" + head + ',"choices":[{"index":0,"delta":{"content":[{"type":"text","text":"Hello"},'
        '{"type":"text","text":" world"}]},"finish_reason":null}]}',
        "{" + head + ',"choices":[{"index":0,"delta":{"content":[{"type":"text","text":""}]},'
        '"finish_reason":null}]}',
        "{" + head + ',"choices":[{"index":0,"delta":{"content":[]},"finish_reason":null}]}',
    ]
    assert feed_all(lines) == [TextDelta(text="Hello world")]


def test_refusal() -> None:
    line = (
        "{" + HEAD + ',"choices":[{"index":0,"delta":{"content":null,'
        '"refusal":"I\'m sorry, I can\'t help with that."},"logprobs":null,"finish_reason":null}],'
        '"usage":null}'
    )
    assert feed_all([line]) == [TextDelta(text="I'm sorry, I can't help with that.")]


def test_content_refusal_reasoning_tools_and_final_come_in_that_order() -> None:
    line = (
        '{"id":"x","model":"m","choices":[{"index":0,"delta":{"content":"a","refusal":"b",'
        '"reasoning_content":"c","reasoning":"d","tool_calls":[{"index":0,"id":"e","function":'
        '{"name":"f","arguments":"{}"}}]},"finish_reason":"stop"}],'
        '"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}'
    )
    assert feed_all([line]) == [
        TextDelta(text="a"),
        TextDelta(text="b"),
        ReasoningDelta(text="c"),
        ReasoningDelta(text="d"),
        ToolCallFragment(index=0, id="e", name="f", arguments="{}"),
        Final(finish_reason="stop", response_id="x", model="m"),
        Final(usage=Usage(input_tokens=1, output_tokens=2, total_tokens=3), response_id="x", model="m"),
    ]


def test_nulls_everywhere() -> None:
    lines = [
        '{"id":null,"model":null,"choices":null,"usage":null,"error":null}',
        '{"choices":[{"index":0,"delta":null,"finish_reason":null}]}',
        '{"choices":[{"index":0,"delta":{"content":null,"refusal":null,"reasoning_content":null,'
        '"reasoning":null,"tool_calls":null},"finish_reason":null}]}',
        "{}",
    ]
    assert feed_all(lines) == []


def test_malformed_json_chunk_decode_error_data_cut_short() -> None:
    data = "{" + HEAD + ',"choices":[{"index":0,"delta":{"content":"' + "x" * 300
    with pytest.raises(ChunkDecodeError) as caught:
        OpenAIChatDialect().parser().feed("message", data)
    error = caught.value
    assert type(error) is ChunkDecodeError
    assert error.reason == "Input data was truncated"
    assert error.data == data[:200] + "…"
    assert len(error.data) == 201


def test_not_json_at_all() -> None:
    with pytest.raises(ChunkDecodeError) as caught:
        OpenAIChatDialect().parser().feed("message", "data: {}")
    assert type(caught.value) is ChunkDecodeError
    assert (caught.value.reason, caught.value.data) == (
        "JSON is malformed: invalid character (byte 0)",
        "data: {}",
    )


def test_wrong_shape_json() -> None:
    data = '{"id":"x","choices":"none"}'
    with pytest.raises(ChunkDecodeError) as caught:
        OpenAIChatDialect().parser().feed("message", data)
    assert (caught.value.reason, caught.value.data) == (
        "Expected `array | null`, got `str` - at `$.choices`",
        data,
    )


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ("[1]", "Expected `object`, got `array`"),
        ('"text"', "Expected `object`, got `str`"),
        (
            '{"choices":[{"index":0,"delta":{"tool_calls":[{"index":"0"}]}}]}',
            "Expected `int | null`, got `str` - at `$.choices[0].delta.tool_calls[0].index`",
        ),
        ('{"error":42}', "Expected `str | object | null`, got `int` - at `$.error`"),
    ],
)
def test_other_wrong_shapes(data: str, reason: str) -> None:
    with pytest.raises(ChunkDecodeError) as caught:
        OpenAIChatDialect().parser().feed("message", data)
    assert (caught.value.reason, caught.value.data) == (reason, data)
