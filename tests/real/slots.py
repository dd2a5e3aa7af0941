"""What llama-server says about its one slot (``GET /slots``): the server side of a stream.

``is_processing`` is true while the slot works on a request; ``next_token[0].n_decoded``
counts the tokens it generated for it. A disposed stream is proved closed by the slot
going idle before it had generated what it was asked for; a paused one by the slot
generating on while the client reads nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp

from real.servers import RunningServer

__all__ = ["decoded", "slot", "wait_for_slot", "wait_until_idle"]

POLL = 0.02
"""Seconds between two polls of ``/slots``."""


async def slot(server: RunningServer) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, session.get(f"{server.origin}/slots") as reply:
        assert reply.status == 200, await reply.text()
        slots: list[dict[str, Any]] = await reply.json()
    (only,) = slots
    return only


def decoded(state: dict[str, Any]) -> int:
    """Tokens the slot generated for its current (or last) request."""
    return int(state["next_token"][0]["n_decoded"])


async def wait_for_slot(
    server: RunningServer,
    condition: Callable[[dict[str, Any]], bool],
    *,
    timeout: float = 60.0,
    what: str = "the condition",
) -> dict[str, Any]:
    """Poll ``/slots`` until ``condition(state)`` holds; the state that met it."""
    async with asyncio.timeout(timeout):
        while True:
            state = await slot(server)
            if condition(state):
                return state
            await asyncio.sleep(POLL)
    raise AssertionError(f"the slot never met {what}")  # unreachable: the timeout raises


async def wait_until_idle(server: RunningServer, *, timeout: float = 60.0) -> dict[str, Any]:
    return await wait_for_slot(
        server, lambda state: not state["is_processing"], timeout=timeout, what="is_processing false"
    )
