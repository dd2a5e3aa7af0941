"""``rxllm.sse``: the public name of ``rxllm.transport.sse``, where it lives since layout v2.

The objects are the same; this module names them so that imports written for it
keep working.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rxllm.transport.sse import (
    DEFAULT_MAX_EVENT_SIZE,
    DEFAULT_MAX_RESPONSE_SIZE,
    LineSplitter,
    SseDecoder,
    SseEvent,
)

if TYPE_CHECKING:
    from rxllm.transport._source import sse_source as sse_source

__all__ = [
    "DEFAULT_MAX_EVENT_SIZE",
    "DEFAULT_MAX_RESPONSE_SIZE",
    "LineSplitter",
    "SseDecoder",
    "SseEvent",
    "sse_source",
]


def __getattr__(name: str) -> Any:
    # The HTTP source, loaded on first use (as rxllm.transport.sse does).
    if name == "sse_source":
        from rxllm.transport._source import sse_source

        return sse_source
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
