"""One turn through a recording proxy, and what the tests check of every completed turn."""

from __future__ import annotations

from typing import Any

from conftest import Closing, Collected, collect_events

from real.endpoints import Endpoint, Streamed
from real.proxy import Exchange, RecordingProxy
from real.servers import RunningServer
from rxllm.events import Final
from rxllm.request import CompletionRequest

__all__ = ["TIMEOUT", "final_of", "one_turn"]

TIMEOUT = 60.0


async def one_turn(
    endpoint: Endpoint,
    server: RunningServer,
    proxy: Any,
    closing: Closing,
    request: CompletionRequest,
    **options: Any,
) -> tuple[Collected, Streamed, Exchange]:
    """Stream ``request`` through a recording proxy: what rxllm delivered, and what the server sent."""
    recording: RecordingProxy = await proxy(server)
    provider = closing(endpoint.provider(recording.origin, **options))
    result = await collect_events(provider.stream(request), timeout=TIMEOUT)
    (exchange,) = recording.exchanges
    return result, Streamed.read(endpoint.dialect, exchange), exchange


def final_of(result: Collected) -> Final:
    assert result.completed, result.error
    final = result.events[-1]
    assert isinstance(final, Final)
    assert sum(isinstance(event, Final) for event in result.events) == 1
    return final
