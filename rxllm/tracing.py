"""OpenTelemetry GenAI spans and metrics for rxllm: off by default, on with ``enable_tracing()``.

::

    from opentelemetry.sdk.trace import TracerProvider
    import rxllm

    rxllm.enable_tracing(tracer_provider=TracerProvider())   # or the global providers when None
    ...
    rxllm.disable_tracing()

With tracing on, each completion turn is a ``chat {model}`` CLIENT span, each
agent run an ``invoke_agent`` INTERNAL span (``invoke_agent {name}`` for a
named agent) and each tool run an ``execute_tool {name}`` INTERNAL span, with
the attributes and metrics of the OpenTelemetry GenAI semantic conventions
(v1.41.0, unchanged in v1.41.1; see ``rxllm._tracing`` for what is recorded and
how). Prompts, completions, tool arguments and results are recorded only with
``capture_content=True``; API keys never are.

Tracing is a side observer decided when a turn or run is built: while it is
off, ``Provider.stream`` and the agent add no layer at all (one test of a
module global per turn, none per event), and nothing imports OpenTelemetry:
only ``enable_tracing`` does (``pip install 'rxllm[otel]'``). Turns and runs
built while tracing was on keep their spans after ``disable_tracing()``;
those built after it have none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rxllm.messages import Message
from rxllm.request import CompletionRequest
from rxllm.typing import EventOperator, StreamModel, ToolSpec

if TYPE_CHECKING:
    from rxllm._tracing import RunTrace, Tracing

__all__ = ["agent_run", "chat_layer", "disable_tracing", "enable_tracing", "is_enabled"]

_active: Tracing | None = None


def enable_tracing(
    tracer_provider: Any = None, meter_provider: Any = None, capture_content: bool = False
) -> None:
    """Record OpenTelemetry GenAI spans and metrics for the turns and agent runs built from now on.

    ``tracer_provider`` and ``meter_provider`` are OpenTelemetry SDK providers
    (the global ones, ``opentelemetry.trace.get_tracer_provider()`` and
    ``opentelemetry.metrics.get_meter_provider()``, when ``None``).
    ``capture_content=True`` adds the opt-in content attributes: system
    instructions, input and output messages, tool definitions, tool call
    arguments and results (they may hold personal data). Calling it again
    replaces the settings. Needs the ``otel`` extra (``opentelemetry-api``).
    """
    global _active
    try:
        from rxllm import _tracing
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            "rxllm.enable_tracing needs OpenTelemetry: pip install 'rxllm[otel]'", name=exc.name
        ) from exc
    _active = _tracing.Tracing(tracer_provider, meter_provider, capture_content=capture_content)


def disable_tracing() -> None:
    """Stop recording: turns and runs built from now on have no spans and no metrics (the default)."""
    global _active
    _active = None


def is_enabled() -> bool:
    """Whether ``enable_tracing()`` is in effect."""
    return _active is not None


def chat_layer(provider: Any, request: CompletionRequest) -> EventOperator | None:
    """For ``Provider.stream``: the operator that traces one turn, or ``None`` while tracing is off."""
    if _active is None:
        return None
    return _active.chat(provider, request)


def agent_run(
    model: StreamModel,
    *,
    name: str | None,
    preamble: str | None,
    tools: Sequence[ToolSpec],
    request_options: Mapping[str, Any],
    messages: Sequence[Message],
) -> RunTrace | None:
    """For the agent: the trace of one run (its span, its turns' parent, its tools' spans), or ``None``."""
    if _active is None:
        return None
    return _active.agent_run(
        model,
        name=name,
        preamble=preamble,
        tools=tools,
        request_options=request_options,
        messages=messages,
    )
