"""Server-sent events: a bounded byte splitter, the event decoder, and ``sse_source``."""

from __future__ import annotations

import msgspec

__all__ = ["DEFAULT_MAX_EVENT_SIZE", "SseEvent"]

DEFAULT_MAX_EVENT_SIZE = 16 * 1024 * 1024


class SseEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One dispatched server-sent event: ``data`` lines joined with LF."""

    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None
