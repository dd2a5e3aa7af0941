"""What ``rxllm.enable_tracing()`` records, after the OpenTelemetry GenAI semantic conventions v1.41.0.

Imported only by ``enable_tracing``: everything OpenTelemetry lives here.

Spans (status ERROR and ``error.type`` on failure, per "Recording errors")::

    invoke_agent [{gen_ai.agent.name}]   INTERNAL   one agent run (``rxllm.operators.agent``)
    ├── chat {gen_ai.request.model}      CLIENT     one completion turn, all its attempts
    ├── execute_tool {gen_ai.tool.name}  INTERNAL   one tool run (parallel tools: sibling spans)
    └── chat {gen_ai.request.model}      CLIENT     the next turn

A ``chat`` span made outside an agent is a child of whatever span is current
where the stream is subscribed. While a ``chat`` span's request runs, the span
is current in the tasks that send it (an HTTP client instrumentation nests its
per-attempt spans under it); while a tool runs, its ``execute_tool`` span is
current in the tool's task and in the worker thread of a sync tool.

A ``chat`` span covers the turn as the caller sees it: retries before the
first event and mid-stream resends are inside it. Retried failures are not the
operation's error (they are handled), so each is a span event, not an error:
``rxllm.retry`` (``rxllm.attempt``, ``rxllm.delay``, ``rxllm.reason``,
``http.response.status_code`` when there was one) for each ``Retrying`` event,
``rxllm.stream_reset`` (``rxllm.attempt``, ``rxllm.reason``) for each
``StreamReset``. Per-attempt HTTP spans are an HTTP client instrumentation's to
make (the conventions' ``http.request.resend_count``).

``error.type`` is the exception's class name (``RateLimitError``,
``StreamTruncatedError``, ``StreamTimeoutError``, ``ToolArgumentsError``,
``TimeoutError``...), and ``CancelledError`` for a stream disposed (or a tool
cancelled) before it ended; the span's status description is the error's
message.

Metrics, all histograms with the conventions' explicit bucket boundaries:
``gen_ai.client.operation.duration`` (s, per turn, with ``error.type`` on
failure), ``gen_ai.client.token.usage`` (``{token}``, ``gen_ai.token.type``
``input`` / ``output``, only when the turn reported usage),
``gen_ai.client.operation.time_to_first_chunk`` (s) and
``gen_ai.client.operation.time_per_output_chunk`` (s, each chunk after the
first). A chunk is a ``TextDelta``, ``ReasoningDelta`` or ``ToolCallDelta``;
the first chunk of a resent attempt after a ``StreamReset`` starts the gaps
anew. Content (``gen_ai.system_instructions``, ``gen_ai.input.messages``,
``gen_ai.output.messages``, ``gen_ai.tool.definitions``,
``gen_ai.tool.call.arguments`` and ``gen_ai.tool.call.result``) is recorded
only with ``capture_content``, as JSON strings in the conventions' schemas.
"""

from __future__ import annotations

import threading
import time
from array import array
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

import msgspec
from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from reactivex import Observable, abc

from rxllm._version import __version__
from rxllm.events import (
    AgentEvent,
    AssistantEvent,
    Final,
    FinalResponse,
    ReasoningDelta,
    Retrying,
    StreamReset,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from rxllm.messages import Message, ReasoningPart, TextPart, ToolCallPart, ToolResultPart
from rxllm.request import CompletionRequest
from rxllm.response import ResponseBuilder
from rxllm.tools import Tool
from rxllm.transport._fusion import Fused, Link
from rxllm.typing import EventOperator, StreamModel, ToolSpec

__all__ = ["CONVENTIONS_VERSION", "RunTrace", "Tracing"]

CONVENTIONS_VERSION = "1.41.0"
SCHEMA_URL = f"https://opentelemetry.io/schemas/{CONVENTIONS_VERSION}"

DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
"""The conventions' boundaries for duration, time to first chunk and time per output chunk (seconds)."""
TOKEN_BUCKETS = (
    1,
    4,
    16,
    64,
    256,
    1024,
    4096,
    16384,
    65536,
    262144,
    1048576,
    4194304,
    16777216,
    67108864,
)
"""The conventions' boundaries for ``gen_ai.client.token.usage``."""

_CHUNKS: frozenset[type] = frozenset({TextDelta, ReasoningDelta, ToolCallDelta})

# rxllm's model classes: (gen_ai.provider.name, openai.api.type).
_MODEL_CLASSES: dict[str, tuple[str, str | None]] = {
    "OpenAIChat": ("openai", "chat_completions"),
    "OpenAIResponses": ("openai", "responses"),
    "AnthropicMessages": ("anthropic", None),
    "ScriptedModel": ("rxllm.scripted", None),
}
# Servers that speak OpenAI's API and have a well-known provider name of their own (it MUST be used).
_OPENAI_COMPATIBLE_HOSTS = {
    "api.deepseek.com": "deepseek",
    "api.groq.com": "groq",
    "api.mistral.ai": "mistral_ai",
    "api.x.ai": "x_ai",
    "api.perplexity.ai": "perplexity",
    "generativelanguage.googleapis.com": "gcp.gemini",
}
_DEFAULT_PORTS = {"https": 443, "http": 80}

_encoder = msgspec.json.Encoder()

_E = TypeVar("_E")


class Tracing:
    """The tracer, the instruments and the content switch that ``enable_tracing`` set up."""

    def __init__(self, tracer_provider: Any, meter_provider: Any, *, capture_content: bool) -> None:
        tracers = tracer_provider if tracer_provider is not None else trace.get_tracer_provider()
        meters = meter_provider if meter_provider is not None else metrics.get_meter_provider()
        self.tracer: trace.Tracer = tracers.get_tracer("rxllm", __version__, schema_url=SCHEMA_URL)
        meter: metrics.Meter = meters.get_meter("rxllm", __version__, schema_url=SCHEMA_URL)
        self.capture_content = capture_content
        self.duration = meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.token_usage = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=TOKEN_BUCKETS,
        )
        self.time_to_first_chunk = meter.create_histogram(
            "gen_ai.client.operation.time_to_first_chunk",
            unit="s",
            description=(
                "Time to receive the first chunk, measured from when the client issues the generation "
                "request to when the first chunk is received in the response stream."
            ),
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.time_per_output_chunk = meter.create_histogram(
            "gen_ai.client.operation.time_per_output_chunk",
            unit="s",
            description=(
                "Time per output chunk, recorded for each chunk received after the first one, measured "
                "as the time elapsed from the end of the previous chunk to the end of the current chunk."
            ),
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )

    # -- a completion turn -------------------------------------------------------------

    def chat(self, provider: Any, request: CompletionRequest) -> EventOperator:
        """The side observer that makes one ``chat`` span (and its metrics) per subscription."""
        model: str = provider.model
        name = f"chat {model}"
        common = _common_attributes("chat", provider)
        attributes = {
            **common,
            **_request_attributes(
                request.temperature, request.max_tokens, request.params, getattr(request, "output", None)
            ),
            "gen_ai.request.stream": True,
        }
        api_type = _identity(provider)[1]
        if api_type is not None and attributes["gen_ai.provider.name"] == "openai":
            attributes["openai.api.type"] = api_type
        content: dict[str, str] | None = None
        if self.capture_content:
            content = _content_attributes(request.preamble, request.tools, request.messages)

        def _chat(source: Observable[AssistantEvent]) -> Observable[AssistantEvent]:
            def start(observer: abc.ObserverBase[AssistantEvent], parent: Context) -> tuple[_Turn, Span]:
                span = self.tracer.start_span(
                    name, context=parent, kind=SpanKind.CLIENT, attributes=attributes
                )
                if content is not None:
                    span.set_attributes(content)
                return _Turn(self, span, observer, common), span

            return _Traced(source, start)

        return _chat

    # -- an agent run ------------------------------------------------------------------

    def agent_run(
        self,
        model: StreamModel,
        *,
        name: str | None,
        preamble: str | None,
        tools: Sequence[ToolSpec],
        request_options: Mapping[str, Any],
        messages: Sequence[Message],
    ) -> RunTrace:
        return RunTrace(self, model, name, preamble, tools, request_options, tuple(messages))


class _Traced(Fused[Any]):
    """``source`` observed by a link that holds a span: made at subscription, current while subscribing."""

    def __init__(
        self,
        source: Observable[Any],
        start: Callable[[abc.ObserverBase[Any], Context], tuple[Link[Any, Any], Span]],
    ) -> None:
        self._source = source
        self._start = start

    def _subscribe_core(
        self, observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        parent = otel_context.get_current()
        link, span = self._start(observer, parent)
        # Current while the source is subscribed: the tasks it starts (the request's) carry the span.
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        try:
            link.subscribe_to(self._source, scheduler)
        finally:
            otel_context.detach(token)
        return link


class _SpanLink(Link[_E, _E]):
    """A link holding a span that ends exactly once, at the terminal or when disposed (``close`` says how)."""

    __slots__ = ("ended", "lock", "span", "tracing")

    def __init__(self, tracing: Tracing, span: Span, observer: abc.ObserverBase[_E]) -> None:
        super().__init__(observer)
        self.tracing = tracing
        self.span = span
        self.lock = threading.Lock()
        self.ended = False

    def on_error(self, error: Exception) -> None:
        if self.stop():
            self.end(error=error)
            self.observer.on_error(error)

    def on_completed(self) -> None:
        if self.stop():
            self.end()
            self.observer.on_completed()

    def end(self, *, error: Exception | None = None, cancelled: bool = False) -> None:
        with self.lock:  # a dispose from another thread may race the terminal
            if self.ended:
                return
            self.ended = True
        self.close(error, cancelled)

    def close(self, error: Exception | None, cancelled: bool) -> None:
        raise NotImplementedError


class _Turn(_SpanLink[AssistantEvent]):
    """One subscription of a traced turn: the span, the chunk clock, and the end (exactly once)."""

    __slots__ = (
        "builder",
        "common",
        "final",
        "first",
        "gaps",
        "last",
        "started",
    )

    def __init__(
        self,
        tracing: Tracing,
        span: Span,
        observer: abc.ObserverBase[AssistantEvent],
        common: dict[str, Any],
    ) -> None:
        super().__init__(tracing, span, observer)
        self.common = common
        self.started = time.perf_counter()
        self.first: float | None = None
        self.last: float | None = None
        self.gaps = array("d")
        self.final: Final | None = None
        self.builder = ResponseBuilder() if tracing.capture_content else None

    def on_next(self, event: AssistantEvent) -> None:
        if self.stopped:
            return
        kind = type(event)
        if kind in _CHUNKS:
            now = time.perf_counter()
            if self.first is None:
                self.first = now
            elif self.last is not None:
                self.gaps.append(now - self.last)
            self.last = now
        elif kind is Final:
            self.final = event  # type: ignore[assignment]  # ``kind is Final`` says so
        elif kind is Retrying or kind is StreamReset:
            self.attempted(event)
        if self.builder is not None:
            self.builder.feed(event)
        self.observer.on_next(event)

    def attempted(self, event: AssistantEvent) -> None:
        if isinstance(event, Retrying):
            fields: dict[str, Any] = {
                "rxllm.attempt": event.attempt,
                "rxllm.delay": event.delay,
                "rxllm.reason": event.reason,
            }
            if event.status is not None:
                fields["http.response.status_code"] = event.status
            self.span.add_event("rxllm.retry", fields)
        elif isinstance(event, StreamReset):
            self.last = None  # the resent attempt's first chunk is no gap after the discarded one
            fields = {"rxllm.attempt": event.attempt, "rxllm.reason": event.reason}
            self.span.add_event("rxllm.stream_reset", fields)

    def dispose(self) -> None:
        # At once: the span does not wait for the connection to close. After the ``Final`` (the
        # turn's last event) a dispose ends a whole turn, not a cancelled one.
        self.end(cancelled=self.final is None)
        super().dispose()

    def close(self, error: Exception | None, cancelled: bool) -> None:
        ended = time.perf_counter()
        span = self.span
        tracing = self.tracing
        final = self.final
        attributes = dict(self.common)
        usage: Usage | None = None
        if final is not None and error is None and not cancelled:
            usage = final.usage
            response: dict[str, Any] = {}
            if final.response_id is not None:
                response["gen_ai.response.id"] = final.response_id
            if final.model is not None:
                response["gen_ai.response.model"] = final.model
                attributes["gen_ai.response.model"] = final.model
            if final.finish_reason is not None:
                response["gen_ai.response.finish_reasons"] = (final.finish_reason,)
            span.set_attributes(response)
        elif error is not None:
            usage = getattr(error, "usage", None)  # what a failed request reported is billed too
        if usage is not None:
            span.set_attributes(_usage_attributes(usage))
        if self.first is not None:
            span.set_attribute("gen_ai.response.time_to_first_chunk", self.first - self.started)
        if self.builder is not None and final is not None and error is None and not cancelled:
            span.set_attribute("gen_ai.output.messages", _output_messages(self.builder, final.finish_reason))
        failure = _failed(span, error, cancelled)
        span.end()
        # Metrics: the duration always, the others when there is something to record.
        tracing.duration.record(
            ended - self.started,
            attributes if failure is None else {**attributes, "error.type": failure},
        )
        if usage is not None:
            tracing.token_usage.record(usage.input_tokens, {**attributes, "gen_ai.token.type": "input"})
            tracing.token_usage.record(usage.output_tokens, {**attributes, "gen_ai.token.type": "output"})
        if self.first is not None:
            tracing.time_to_first_chunk.record(self.first - self.started, attributes)
            record = tracing.time_per_output_chunk.record
            for gap in self.gaps:
                record(gap, attributes)


class _AgentRun(_SpanLink[AgentEvent]):
    """One subscription of a traced agent run: the last turn's finish reason, the answer, the end."""

    __slots__ = ("answer", "finish")

    def __init__(self, tracing: Tracing, span: Span, observer: abc.ObserverBase[AgentEvent]) -> None:
        super().__init__(tracing, span, observer)
        self.finish: str | None = None
        self.answer: FinalResponse | None = None

    def on_next(self, event: AgentEvent) -> None:
        if self.stopped:
            return
        if isinstance(event, Final):
            self.finish = event.finish_reason
        elif isinstance(event, FinalResponse):
            self.answer = event
        self.observer.on_next(event)

    def dispose(self) -> None:
        self.end(cancelled=self.answer is None)  # after the FinalResponse, a whole run
        super().dispose()

    def close(self, error: Exception | None, cancelled: bool) -> None:
        span = self.span
        answer = self.answer if error is None and not cancelled else None
        if self.finish is not None:
            span.set_attribute("gen_ai.response.finish_reasons", (self.finish,))
        usage: Usage | None
        if answer is not None:
            # A run some of whose requests reported no usage has no whole count to give.
            usage = answer.usage if getattr(answer, "usage_complete", True) else None
        else:
            usage = getattr(error, "usage", None)
        if usage is not None:
            span.set_attributes(_usage_attributes(usage))
        if answer is not None and self.tracing.capture_content:
            message = {
                "role": "assistant",
                "parts": [{"type": "text", "content": answer.text}],
                "finish_reason": _finish_reason(self.finish),
            }
            span.set_attribute("gen_ai.output.messages", _json([message]))
        _failed(span, error, cancelled)
        span.end()


class RunTrace:
    """One agent run's trace: its ``invoke_agent`` span, the parent of its turns' and tools' spans."""

    def __init__(
        self,
        tracing: Tracing,
        model: StreamModel,
        name: str | None,
        preamble: str | None,
        tools: Sequence[ToolSpec],
        request_options: Mapping[str, Any],
        messages: tuple[Message, ...],
    ) -> None:
        self.tracing = tracing
        self.span_name = f"invoke_agent {name}" if name else "invoke_agent"
        attributes = _common_attributes("invoke_agent", model, with_server=False)
        if name:
            attributes["gen_ai.agent.name"] = name
        attributes.update(
            _request_attributes(
                request_options.get("temperature"),
                request_options.get("max_tokens"),
                request_options.get("params"),
                request_options.get("output"),
            )
        )
        self.attributes = attributes
        self.content = _content_attributes(preamble, tools, messages) if tracing.capture_content else None
        self.context: Context | None = None

    def run(self, source: Observable[AgentEvent]) -> Observable[AgentEvent]:
        """The run's events, its span open from subscription to the terminal (or the dispose)."""

        def start(observer: abc.ObserverBase[AgentEvent], parent: Context) -> tuple[_AgentRun, Span]:
            span = self.tracing.tracer.start_span(
                self.span_name, context=parent, kind=SpanKind.INTERNAL, attributes=self.attributes
            )
            if self.content is not None:
                span.set_attributes(self.content)
            self.context = trace.set_span_in_context(span, parent)
            return _AgentRun(self.tracing, span, observer), span

        return _Traced(source, start)

    def within(self, source: Observable[AssistantEvent]) -> Observable[AssistantEvent]:
        """``source`` subscribed with the run's span current: a turn's ``chat`` span becomes its child."""

        def subscribe(
            observer: abc.ObserverBase[AssistantEvent],
            scheduler: abc.SchedulerBase | None = None,
        ) -> abc.DisposableBase:
            if self.context is None:
                return source.subscribe(observer, scheduler=scheduler)
            token = otel_context.attach(self.context)
            try:
                return source.subscribe(observer, scheduler=scheduler)
            finally:
                otel_context.detach(token)

        return Observable(subscribe)

    async def tool(self, tool: Tool[..., Any], call: ToolCall) -> str:
        """``tool.invoke(call.arguments)`` in an ``execute_tool`` span, current in its task and thread."""
        tracing = self.tracing
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": call.name,
            "gen_ai.tool.call.id": call.call_id,
            "gen_ai.tool.type": "function",
        }
        if tool.description:
            attributes["gen_ai.tool.description"] = tool.description
        if tracing.capture_content:
            attributes["gen_ai.tool.call.arguments"] = _json(call.arguments)
        span = tracing.tracer.start_span(
            f"execute_tool {call.name}", context=self.context, kind=SpanKind.INTERNAL, attributes=attributes
        )
        token = otel_context.attach(trace.set_span_in_context(span, self.context))
        try:
            result = await tool.invoke(call.arguments)
        except Exception as exc:
            _failed(span, exc, cancelled=False)
            span.end()
            raise
        except BaseException:  # CancelledError: the run was disposed while the tool ran
            _failed(span, None, cancelled=True)
            span.end()
            raise
        finally:
            otel_context.detach(token)
        if tracing.capture_content:
            span.set_attribute("gen_ai.tool.call.result", result)
        span.end()
        return result


# -- attributes --------------------------------------------------------------------------------


def _identity(model: Any) -> tuple[str, str | None]:
    """``(gen_ai.provider.name, openai.api.type)`` of a model, after its class and its server."""
    known: tuple[str, str | None] | None = None
    for klass in type(model).__mro__:
        if klass.__module__.startswith("rxllm.") and klass.__name__ in _MODEL_CLASSES:
            known = _MODEL_CLASSES[klass.__name__]
            break
    if known is None:
        return type(model).__name__, None
    if known[0] == "openai":
        host = urlsplit(getattr(model, "base_url", "")).hostname or ""
        if host in _OPENAI_COMPATIBLE_HOSTS:
            return _OPENAI_COMPATIBLE_HOSTS[host], None
        if host.endswith(".openai.azure.com"):
            return "azure.ai.openai", None
    return known


def _common_attributes(operation: str, model: Any, *, with_server: bool = True) -> dict[str, Any]:
    """What every span and metric of an operation on ``model`` carries, set at span creation."""
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": operation,
        "gen_ai.provider.name": _identity(model)[0],
    }
    requested = getattr(model, "model", None)
    if isinstance(requested, str) and requested:
        attributes["gen_ai.request.model"] = requested
    base_url = getattr(model, "base_url", None)
    if with_server and isinstance(base_url, str):
        parts = urlsplit(base_url)
        if parts.hostname:
            attributes["server.address"] = parts.hostname
            port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
            if port is not None:
                attributes["server.port"] = port
    return attributes


def _request_attributes(
    temperature: Any, max_tokens: Any, params: Mapping[str, Any] | None, output: Any
) -> dict[str, Any]:
    """``gen_ai.request.*`` from the request's settings; ``params`` win, as they do on the wire."""
    params = params or {}

    def given(*keys: str, default: Any = None) -> Any:
        for key in keys:
            if key in params:
                return params[key]
        return default

    attributes: dict[str, Any] = {}
    for attribute, value in (
        ("gen_ai.request.temperature", given("temperature", default=temperature)),
        ("gen_ai.request.top_p", given("top_p")),
        ("gen_ai.request.frequency_penalty", given("frequency_penalty")),
        ("gen_ai.request.presence_penalty", given("presence_penalty")),
    ):
        if _is_number(value):
            attributes[attribute] = float(value)
    for attribute, value in (
        (
            "gen_ai.request.max_tokens",
            given("max_tokens", "max_completion_tokens", "max_output_tokens", default=max_tokens),
        ),
        ("gen_ai.request.top_k", given("top_k")),
        ("gen_ai.request.seed", given("seed")),
    ):
        if isinstance(value, int) and not isinstance(value, bool):
            attributes[attribute] = value
    choices = given("n")
    if isinstance(choices, int) and not isinstance(choices, bool) and choices != 1:
        attributes["gen_ai.request.choice.count"] = choices
    stop = given("stop", "stop_sequences")
    if isinstance(stop, str):
        attributes["gen_ai.request.stop_sequences"] = (stop,)
    elif isinstance(stop, list | tuple) and all(isinstance(item, str) for item in stop):
        attributes["gen_ai.request.stop_sequences"] = tuple(stop)
    if output is not None:
        attributes["gen_ai.output.type"] = "json"
    return attributes


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _usage_attributes(usage: Usage) -> dict[str, int]:
    attributes = {
        "gen_ai.usage.input_tokens": usage.input_tokens,
        "gen_ai.usage.output_tokens": usage.output_tokens,
    }
    # rxllm's parts of the counts are 0 where the provider gave none: only a count is recorded.
    if usage.cached_input_tokens:
        attributes["gen_ai.usage.cache_read.input_tokens"] = usage.cached_input_tokens
    if usage.reasoning_tokens:
        attributes["gen_ai.usage.reasoning.output_tokens"] = usage.reasoning_tokens
    return attributes


def _failed(span: Span, error: Exception | None, cancelled: bool) -> str | None:
    """Mark ``span`` failed (status ERROR, ``error.type``); the ``error.type`` given, or ``None``."""
    if error is not None:
        failure = type(error).__qualname__
        span.set_attribute("error.type", failure)
        span.set_status(Status(StatusCode.ERROR, str(error)))
        return failure
    if cancelled:
        span.set_attribute("error.type", "CancelledError")
        span.set_status(Status(StatusCode.ERROR, "cancelled before it ended (the subscription was disposed)"))
        return "CancelledError"
    return None


# -- content (only with capture_content) -------------------------------------------------------


def _json(value: Any) -> str:
    return _encoder.encode(value).decode()


def _content_attributes(
    preamble: str | None, tools: Sequence[ToolSpec], messages: Sequence[Message]
) -> dict[str, str]:
    attributes = {"gen_ai.input.messages": _json([_message(message) for message in messages])}
    if preamble is not None:
        attributes["gen_ai.system_instructions"] = _json([{"type": "text", "content": preamble}])
    if tools:
        attributes["gen_ai.tool.definitions"] = _json(
            [{"type": "function", "name": tool.name, "description": tool.description} for tool in tools]
        )
    return attributes


def _message(message: Message) -> dict[str, Any]:
    return {"role": message.role, "parts": [_part(part) for part in message.content]}


def _part(part: Any) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"type": "text", "content": part.text}
    if isinstance(part, ReasoningPart):
        return {"type": "reasoning", "content": part.text}
    if isinstance(part, ToolCallPart):
        return {"type": "tool_call", "id": part.call_id, "name": part.name, "arguments": part.arguments}
    if isinstance(part, ToolResultPart):
        return {"type": "tool_call_response", "id": part.call_id, "response": part.content}
    return {"type": type(part).__name__}


def _output_messages(builder: ResponseBuilder, finish_reason: str | None) -> str:
    message = _message(builder.build().assistant_message())
    message["finish_reason"] = _finish_reason(finish_reason)
    return _json([message])


def _finish_reason(reason: str | None) -> str:
    """A provider's finish reason in the output-message schema's words (others kept as sent)."""
    if reason is None:
        return "unknown"
    if reason in ("stop", "end_turn", "stop_sequence", "completed"):
        return "stop"
    if reason in ("length", "max_tokens") or reason.startswith("incomplete:"):
        return "length"
    if reason in ("tool_calls", "tool_use", "function_call"):
        return "tool_call"
    if reason in ("content_filter", "refusal"):
        return "content_filter"
    return reason
