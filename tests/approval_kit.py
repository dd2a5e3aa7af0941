"""Shared by the approval tests: a raw recording observer, and tools a fresh process can import too."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from reactivex import Observable, abc

from rxllm import Tool, tool


@tool(needs_approval=lambda arguments: arguments["amount"] > 100)
def pay(to: str, amount: int, currency: str = "EUR") -> str:
    """Pay someone.

    Args:
        to: Who gets the money.
        amount: How much, in whole units.
        currency: The currency's ISO code.
    """
    return f"paid {amount} {currency} to {to}"


@tool
def lookup(name: str) -> str:
    """Look a person up.

    Args:
        name: The person's name.
    """
    return f"{name} is a mathematician"


TOOLS: list[Tool[..., Any]] = [pay, lookup]


class Recorder(abc.ObserverBase[Any]):
    """A raw observer: every notification as it comes, without ``Observable.subscribe``'s auto-detach.

    ``wait_for(kind)`` waits (on the loop, for the event itself, never a sleep)
    until an event of that type has arrived; ``ended`` until the terminal.
    """

    def __init__(self, on_event: Callable[[Any], None] | None = None) -> None:
        self.events: list[Any] = []
        self.terminals: list[Exception | str] = []
        self.after_terminal: list[Any] = []
        self.on_event = on_event
        self._changed = asyncio.Event()
        self.threads: list[int] = []

    def on_next(self, value: Any) -> None:
        import threading

        self.threads.append(threading.get_ident())
        if self.terminals:
            self.after_terminal.append(value)
        self.events.append(value)
        self._changed.set()
        if self.on_event is not None:
            self.on_event(value)

    def on_error(self, error: Exception) -> None:
        self.terminals.append(error)
        self._changed.set()

    def on_completed(self) -> None:
        self.terminals.append("completed")
        self._changed.set()

    def subscribe_to(self, observable: Observable[Any]) -> abc.DisposableBase:
        return observable._subscribe_core(self, None)

    async def wait_for(self, kind: type, count: int = 1, *, timeout: float = 10.0) -> list[Any]:
        async def seen() -> list[Any]:
            while True:
                found = [event for event in self.events if isinstance(event, kind)]
                if len(found) >= count:
                    return found
                if self.terminals:
                    raise AssertionError(f"ended with {self.terminals[0]!r} before {count} {kind.__name__}")
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(seen(), timeout)

    async def ended(self, *, timeout: float = 10.0) -> Exception | str:
        async def done() -> Exception | str:
            while not self.terminals:
                self._changed.clear()
                await self._changed.wait()
            return self.terminals[0]

        return await asyncio.wait_for(done(), timeout)

    def of(self, kind: type) -> list[Any]:
        return [event for event in self.events if isinstance(event, kind)]

    def kinds(self) -> list[str]:
        return [type(event).__name__ for event in self.events]
