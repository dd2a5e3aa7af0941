"""The OpenAI Chat Completions stream dialect (``chat.completion.chunk``).

Every ``data:`` line is one chunk object, and ``data: [DONE]`` ends the body::

    data: {"id":"chatcmpl-1","object":"chat.completion.chunk","model":"gpt-4o",
           "choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}
    data: {"id":"chatcmpl-1",...,"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}
    data: {"id":"chatcmpl-1",...,"choices":[],"usage":{"prompt_tokens":9,...}}
    data: [DONE]

One chunk gives, in order: ``TextDelta`` (content, then refusal), ``ReasoningDelta``,
one ``ToolCallFragment`` per ``delta.tool_calls`` entry, a ``Final`` with the finish
reason, a ``Final`` with the usage (only when the chunk reports some: no usage is
``None``, never zeros).

The end of a turn: ``[DONE]``, or a finish reason *and* the usage chunk (which
rxllm asks for with ``stream_options.include_usage``) before the body ends. A body
that ends after the finish reason but before its usage and ``[DONE]`` was cut
(a fault-injecting proxy cuts right there): ``StreamTruncatedError``, although
the answer looks whole. For a server that sends neither usage nor ``[DONE]``,
``OpenAIChatDialect(require_end_marker=False)`` takes the finish reason alone.

The wire Structs below are private and narrow: only the fields rxllm reads, every
one of them allowed to be ``null`` or missing, because OpenAI-compatible servers
(vLLM, Ollama, llama.cpp, LiteLLM, OpenRouter, DeepSeek, Groq, Mistral, Azure)
each leave out or null a different set.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from rxllm.errors import ChunkDecodeError, ProviderError
from rxllm.events import ChunkEvent, Final, ReasoningDelta, TextDelta, ToolCallFragment, Usage

__all__ = ["OpenAIChatDialect", "OpenAIChatParser"]

_END_MARKER = "[DONE]"


class _ContentPart(msgspec.Struct, gc=False):
    text: str | None = None


class _Function(msgspec.Struct, gc=False):
    name: str | None = None
    arguments: str | None = None


class _ToolCall(msgspec.Struct, gc=False):
    index: int | None = None
    id: str | None = None
    function: _Function | None = None


class _Delta(msgspec.Struct, gc=False):
    content: str | list[_ContentPart] | None = None
    refusal: str | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None
    tool_calls: list[_ToolCall] | None = None


class _Choice(msgspec.Struct, gc=False):
    index: int = 0
    delta: _Delta | None = None
    finish_reason: str | None = None


class _PromptDetails(msgspec.Struct, gc=False):
    cached_tokens: int | None = None


class _CompletionDetails(msgspec.Struct, gc=False):
    reasoning_tokens: int | None = None


class _Usage(msgspec.Struct, gc=False):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    prompt_tokens_details: _PromptDetails | None = None
    completion_tokens_details: _CompletionDetails | None = None


class _Error(msgspec.Struct, gc=False):
    message: str | None = None
    type: str | None = None
    code: str | int | None = None


class _Chunk(msgspec.Struct, gc=False):
    id: str | None = None
    model: str | None = None
    choices: list[_Choice] | None = None
    usage: _Usage | None = None
    error: _Error | str | None = None


_decoder = msgspec.json.Decoder(_Chunk)
_NOTHING: tuple[ChunkEvent, ...] = ()


class OpenAIChatParser:
    """Decoding state of one Chat Completions stream (see ``rxllm.typing.ChunkParser``)."""

    __slots__ = ("done", "finished", "_finish_reason_seen", "_require_end_marker", "_usage_seen")

    def __init__(self, *, require_end_marker: bool = True) -> None:
        self.done = False
        self.finished = False
        self._require_end_marker = require_end_marker
        self._finish_reason_seen = False
        self._usage_seen = False

    def feed(self, event: str, data: str) -> Sequence[ChunkEvent]:
        """Decode one ``data:`` payload; the ``event:`` name is not used by this API."""
        if data == _END_MARKER:
            self.done = self.finished = True
            return _NOTHING
        try:
            chunk = _decoder.decode(data)
        except msgspec.DecodeError as error:
            raise ChunkDecodeError(str(error), data) from None
        if chunk.error is not None:
            raise _provider_error(chunk.error)
        choices = chunk.choices
        if choices is not None and len(choices) == 1 and chunk.usage is None:
            # The common chunk: one piece of text and nothing else, read without the general walk.
            choice = choices[0]
            delta = choice.delta
            if choice.index == 0 and not choice.finish_reason and delta is not None:
                content = delta.content
                if (
                    type(content) is str
                    and content
                    and not (delta.refusal or delta.reasoning_content or delta.reasoning or delta.tool_calls)
                ):
                    return [TextDelta(text=content)]

        events: list[ChunkEvent] = []
        response_id = chunk.id or None
        model = chunk.model or None
        if chunk.choices:
            for choice in chunk.choices:
                # n > 1 (any server): choices of several candidates arrive interleaved;
                # only candidate 0 feeds the turn, never a mix of candidates.
                if choice.index != 0:
                    continue
                delta = choice.delta
                # Azure OpenAI: the content-filter prelude is a choice without a delta
                # (and `id: ""`); it carries nothing for the turn.
                if delta is not None:
                    _delta_events(delta, events)
                # Compatible servers send `"finish_reason": ""` on content chunks: that is no reason.
                if choice.finish_reason:
                    self._finish_reason_seen = True
                    self.finished = self._usage_seen or not self._require_end_marker
                    events.append(
                        Final(finish_reason=choice.finish_reason, response_id=response_id, model=model)
                    )
                break
        if chunk.usage is not None:
            usage = _usage(chunk.usage)
            if usage is not None:
                self._usage_seen = True
                self.finished = self.finished or self._finish_reason_seen
                events.append(Final(usage=usage, response_id=response_id, model=model))
        return events


def _delta_events(delta: _Delta, events: list[ChunkEvent]) -> None:
    content = delta.content
    if content:
        if isinstance(content, str):
            events.append(TextDelta(text=content))
        else:
            # Mistral: `delta.content` is an array of parts; the text parts join into one delta.
            text = "".join([part.text for part in content if part.text])
            if text:
                events.append(TextDelta(text=text))
    if delta.refusal:
        events.append(TextDelta(text=delta.refusal))
    # DeepSeek, vLLM, GLM: reasoning arrives as `delta.reasoning_content`.
    if delta.reasoning_content:
        events.append(ReasoningDelta(text=delta.reasoning_content))
    # Groq, hosts of gpt-oss: reasoning arrives as `delta.reasoning`.
    if delta.reasoning:
        events.append(ReasoningDelta(text=delta.reasoning))
    if delta.tool_calls:
        for call in delta.tool_calls:
            function = call.function
            # DeepSeek, Qwen: continuation fragments send `""` as id and name, meaning absent.
            events.append(
                ToolCallFragment(
                    index=call.index,
                    id=call.id or None,
                    name=(function.name or None) if function is not None else None,
                    arguments=(function.arguments or "") if function is not None else "",
                )
            )


def _usage(usage: _Usage) -> Usage | None:
    if usage.prompt_tokens is None and usage.completion_tokens is None and usage.total_tokens is None:
        return None  # `"usage": {}` or all nulls: nothing was reported
    input_tokens = usage.prompt_tokens or 0
    output_tokens = usage.completion_tokens or 0
    prompt_details = usage.prompt_tokens_details
    completion_details = usage.completion_tokens_details
    return Usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=usage.total_tokens or input_tokens + output_tokens,
        cached_input_tokens=(prompt_details.cached_tokens or 0) if prompt_details is not None else 0,
        reasoning_tokens=(completion_details.reasoning_tokens or 0) if completion_details is not None else 0,
    )


def _provider_error(error: _Error | str) -> ProviderError:
    # OpenRouter and API gateways: the in-band error is a bare string, not an object.
    if isinstance(error, str):
        return ProviderError.create(error or "the server sent an empty error")
    code = error.code
    return ProviderError.create(
        error.message or "the server sent an error without a message",
        type=error.type,
        code=str(code) if code is not None else None,
    )


class OpenAIChatDialect:
    """The Chat Completions stream format, of OpenAI and of compatible servers.

    ``require_end_marker=False`` accepts a finish reason alone as the end of a
    turn, for a server that sends neither usage nor ``[DONE]``; by default a
    finish reason counts only with the usage chunk after it.

    >>> parser = OpenAIChatDialect().parser()
    >>> parser.feed("message", '{"choices":[{"index":0,"delta":{"content":"Hi"}}]}')
    [TextDelta(text='Hi')]
    >>> parser.feed("message", "[DONE]"), parser.done
    ((), True)
    """

    __slots__ = ("require_end_marker",)

    name = "openai-chat"

    def __init__(self, *, require_end_marker: bool = True) -> None:
        self.require_end_marker = require_end_marker

    @property
    def end_of_turn(self) -> str:
        if self.require_end_marker:
            return f"{_END_MARKER} (or a finish reason and its usage)"
        return f"{_END_MARKER} or a finish reason"

    def parser(self) -> OpenAIChatParser:
        """Fresh decoding state for one stream."""
        return OpenAIChatParser(require_end_marker=self.require_end_marker)
