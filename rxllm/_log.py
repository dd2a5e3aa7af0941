"""rxllm's logging: loguru, off by default, records tagged after the OpenTelemetry GenAI conventions.

As loguru advises for libraries, this module disables the ``rxllm`` logger
when it is imported (every rxllm record goes through ``log`` here);
``rxllm.enable_logging()`` turns it on (and ``disable_logging()`` off again).
While it is off, nothing in rxllm calls loguru at all: every call site goes
through ``log()``, which returns at its first line, so a stream pays one
flag test per log site and nothing per event.

Records carry their structured fields in ``record["extra"]``, under the names
of the OpenTelemetry semantic conventions for generative AI::

    gen_ai.operation.name        "chat" for a completion turn, "execute_tool" for a tool call
    gen_ai.request.model         the model asked for
    gen_ai.response.model        the model that answered (as the provider reports it)
    gen_ai.response.id           the provider's response id
    gen_ai.response.finish_reasons
    gen_ai.usage.input_tokens    on the record that ends a turn
    gen_ai.usage.output_tokens
    gen_ai.tool.name             on tool-call records
    gen_ai.tool.call.id
    error.type                   the exception class on failure records

Other rxllm fields are prefixed ``rxllm.`` (``rxllm.attempt``, ``rxllm.delay``...).
Show them with a format such as ``"{message} {extra}"``::

    import sys
    from loguru import logger
    import rxllm

    rxllm.enable_logging()
    logger.add(sys.stderr, level="DEBUG", format="{level} {name} {message} {extra}")

Nothing logged ever holds an API key or a request header: records are built
from the URL without its query or user info, status codes, rxllm's own words
and the provider's error text.

The agent logs tool calls with ``log_tool_call``; other call sites use ``log``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from loguru import logger

__all__ = ["disable_logging", "enable_logging", "is_enabled", "log", "log_tool_call"]

logger.disable("rxllm")

_enabled = False

Level = Literal["TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL"]


def enable_logging() -> None:
    """Let rxllm's records through to loguru's sinks (they are dropped by default)."""
    global _enabled
    _enabled = True
    logger.enable("rxllm")


def disable_logging() -> None:
    """Drop rxllm's records again: the default, as for every library that logs with loguru."""
    global _enabled
    _enabled = False
    logger.disable("rxllm")


def is_enabled() -> bool:
    """Whether ``enable_logging()`` is in effect; call sites may test it before building costly fields."""
    return _enabled


def log(
    level: Level,
    message: str,
    /,
    *,
    operation: str | None = None,
    model: str | None = None,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    tool_name: str | None = None,
    fields: Mapping[str, object] | None = None,
    exception: BaseException | None = None,
    depth: int = 0,
) -> None:
    """Log ``message`` with the GenAI fields given (``None`` ones are left out) and ``fields`` as is.

    ``exception`` attaches its traceback to the record (for failures worth one,
    such as a tool that raised).

    ``fields`` holds further structured fields under their dotted names
    (``{"gen_ai.response.id": ..., "rxllm.attempt": 2}``).

    The record is attributed to the caller's module (``depth`` more frames up for
    helpers that log on someone's behalf), so ``logger.disable("rxllm.sse")`` and
    filters on ``record["name"]`` work as usual. ``message`` is never formatted
    with ``str.format``: braces in a provider's error text are kept as sent.
    """
    if not _enabled:
        return
    extra: dict[str, object] = {}
    if operation is not None:
        extra["gen_ai.operation.name"] = operation
    if model is not None:
        extra["gen_ai.request.model"] = model
    if input_tokens is not None:
        extra["gen_ai.usage.input_tokens"] = input_tokens
    if output_tokens is not None:
        extra["gen_ai.usage.output_tokens"] = output_tokens
    if tool_name is not None:
        extra["gen_ai.tool.name"] = tool_name
    if fields:
        extra.update(fields)
    logger.bind(**extra).opt(depth=depth + 1, exception=exception).log(level, message)


def log_tool_call(
    tool_name: str,
    *,
    call_id: str,
    phase: Literal["call", "result"],
    model: str | None = None,
    is_error: bool = False,
    level: Level = "DEBUG",
) -> None:
    """Log a tool call (``phase="call"``, before running it) or its result (``phase="result"``).

    For the agent: ``operation`` is ``execute_tool``; the record carries
    ``gen_ai.tool.name``, ``gen_ai.tool.call.id``, ``rxllm.phase`` and, on a
    result, ``rxllm.is_error`` (and ``error.type`` = ``"tool_error"`` when it
    failed). Arguments and results are not logged: they may hold user data.
    """
    if not _enabled:
        return
    extra: dict[str, object] = {"gen_ai.tool.call.id": call_id, "rxllm.phase": phase}
    if phase == "result":
        extra["rxllm.is_error"] = is_error
        if is_error:
            extra["error.type"] = "tool_error"
    what = "calling tool" if phase == "call" else ("tool failed" if is_error else "tool returned")
    log(
        level,
        f"{what} {tool_name} ({call_id})",
        operation="execute_tool",
        model=model,
        tool_name=tool_name,
        fields=extra,
        depth=1,
    )
