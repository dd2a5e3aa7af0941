"""``Approvals``: a person's yes or no to tool calls, given to an agent run from any thread.

A tool made with ``@tool(needs_approval=True)`` (or a function of the arguments)
does not run until someone answers. The run emits a ``ToolApprovalRequest``
for each such call and waits; the answer comes through the ``Approvals``
control given to the run::

    approvals = Approvals()
    agent.stream_prompt("Pay Ada 120 EUR", approvals=approvals).subscribe(show)
    # later, from a dialog's button (any thread):
    approvals.approve(request.internal_call_id)                       # run it as the model asked
    approvals.approve(request.internal_call_id, {"to": "Ada", "amount": 100})   # run it with these
    approvals.deny(request.internal_call_id, "The user declined: too much.")   # the model sees this

``approve`` and ``deny`` never deliver on the caller's thread: the answer is
handed to the run's own event loop (``call_soon_threadsafe``), where the tool
runs. An answer that cannot be taken raises ``ApprovalError`` to the caller and
changes nothing: an unknown call, one already answered, one whose run ended
(disposed, or failed) before the answer, or edited arguments that do not fit
the tool's schema (the call then still waits, so the dialog can ask again).
An answer whose run's event loop has closed under it (the run went with its
loop, and no one disposed it) is dropped without raising, as ``PauseControl``
drops a wake-up for a closed loop.

``Approve`` and ``Deny`` are the same answers as data, for ``agent.resume(state,
decisions)``; both are tagged msgspec Structs, so stored decisions round-trip
through JSON as ``dict[str, Approve | Deny]``.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from rxllm._log import log
from rxllm.errors import ApprovalError
from rxllm.events import ToolApprovalRequest
from rxllm.tools import Tool, ToolArgumentsError

__all__ = ["Approvals", "Approve", "Decision", "Deny"]


class Approve(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="approve"):
    """Run the call; with ``arguments``, with these instead of the model's (validated against the tool)."""

    arguments: dict[str, Any] | None = None


class Deny(msgspec.Struct, frozen=True, tag_field="type", tag="deny"):
    """Do not run the call; ``reason`` becomes its error result, which the model sees as it is."""

    reason: str


Decision = Approve | Deny
"""An answer to one ``ToolApprovalRequest``."""

_REMEMBERED = 4096
"""Calls whose answer is over that a control remembers, to say why a late answer cannot be taken."""


class _Ticket:
    """One call waiting on a control: the run's loop, the future it awaits, the request and its tool."""

    __slots__ = ("future", "loop", "request", "tool")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        future: asyncio.Future[Decision],
        request: ToolApprovalRequest,
        tool: Tool[..., Any],
    ) -> None:
        self.loop = loop
        self.future = future
        self.request = request
        self.tool = tool


class Approvals:
    """The answers to the tool approvals of the runs it is given to (``approvals=`` of a run).

    ``approve(internal_call_id, arguments=None)`` and ``deny(internal_call_id,
    reason)`` may be called from any thread; ``pending`` lists the requests
    that wait now, in the order they were made. One control may serve many runs
    at once (a chat's every prompt): calls are told apart by
    ``internal_call_id``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[str, _Ticket] = {}
        self._over: OrderedDict[str, str] = OrderedDict()  # internal_call_id -> why it cannot be answered
        self._given: OrderedDict[str, Decision] = OrderedDict()  # internal_call_id -> the answer taken

    def __repr__(self) -> str:
        return f"Approvals(waiting={len(self._waiting)})"

    @property
    def pending(self) -> tuple[ToolApprovalRequest, ...]:
        """The requests waiting for an answer now."""
        with self._lock:
            return tuple(ticket.request for ticket in self._waiting.values())

    def decision(self, internal_call_id: str) -> Decision | None:
        """The answer this control took for the call (``Approve`` or ``Deny``); ``None`` before one.

        For a view that shows what was decided (the notebook's); the last
        answers are remembered, not every answer ever given.
        """
        with self._lock:
            return self._given.get(internal_call_id)

    def approve(self, internal_call_id: str, arguments: Mapping[str, Any] | None = None) -> None:
        """Run the call; with ``arguments``, with these instead of the model's.

        Edited arguments are validated against the tool's schema here, on the
        caller's thread, as the model's are: when they do not fit, this raises
        ``ApprovalError`` (saying what is wrong, the ``ToolArgumentsError`` as
        its ``__cause__``) and the call still waits.
        """
        self.answer(internal_call_id, Approve(arguments=None if arguments is None else dict(arguments)))

    def deny(self, internal_call_id: str, reason: str) -> None:
        """Do not run the call; ``reason`` is its error result, sent to the model as it is."""
        self.answer(internal_call_id, Deny(reason))

    def answer(self, internal_call_id: str, decision: Decision) -> None:
        """``approve`` or ``deny`` with the answer as data (``Approve(...)`` or ``Deny(...)``)."""
        if not isinstance(decision, Approve | Deny):
            raise TypeError(f"an answer is Approve(...) or Deny(reason), not {decision!r}")
        with self._lock:
            ticket = self._waiting.get(internal_call_id)
            if ticket is None:
                why = self._over.get(internal_call_id, "no call with this id waits for approval")
                raise ApprovalError(internal_call_id, why)
            if isinstance(decision, Approve) and decision.arguments is not None:
                check_edit(ticket.tool, internal_call_id, decision.arguments, waits=True)
            del self._waiting[internal_call_id]
            self._given[internal_call_id] = decision
            if len(self._given) > _REMEMBERED:
                self._given.popitem(last=False)
            self._remember(
                internal_call_id,
                "it was already approved" if isinstance(decision, Approve) else "it was already denied",
            )
        try:
            ticket.loop.call_soon_threadsafe(_deliver, ticket.future, decision)
        except RuntimeError:
            if not ticket.loop.is_closed():
                raise
            # The run's loop closed under it (and took the run along): nothing is left to wake.
            log(
                "DEBUG",
                "approval answer dropped: the run's event loop is closed",
                tool_name=ticket.request.name,
            )

    # -- for the agent ---------------------------------------------------------------------

    def _wait(
        self, loop: asyncio.AbstractEventLoop, requests: Sequence[tuple[ToolApprovalRequest, Tool[..., Any]]]
    ) -> dict[str, asyncio.Future[Decision]]:
        """Register calls before their requests are emitted; each answer resolves its future on ``loop``."""
        futures: dict[str, asyncio.Future[Decision]] = {}
        with self._lock:
            for request, _ in requests:
                if request.internal_call_id in self._waiting:
                    raise ApprovalError(
                        request.internal_call_id, "a call with this id already waits on this control"
                    )
            for request, tool in requests:
                future: asyncio.Future[Decision] = loop.create_future()
                self._waiting[request.internal_call_id] = _Ticket(loop, future, request, tool)
                self._over.pop(request.internal_call_id, None)
                futures[request.internal_call_id] = future
        return futures

    def _withdraw(self, internal_call_ids: Sequence[str], why: str) -> None:
        """The run of these calls ended: answers to those still waiting raise ``ApprovalError(why)``."""
        with self._lock:
            for internal_call_id in internal_call_ids:
                if self._waiting.pop(internal_call_id, None) is not None:
                    self._remember(internal_call_id, why)

    def _remember(self, internal_call_id: str, why: str) -> None:
        self._over[internal_call_id] = why
        self._over.move_to_end(internal_call_id)
        while len(self._over) > _REMEMBERED:
            self._over.popitem(last=False)


def check_edit(
    tool: Tool[..., Any], internal_call_id: str, arguments: Mapping[str, Any], *, waits: bool = False
) -> None:
    """``ApprovalError`` when edited arguments do not fit ``tool`` (its ``ToolArgumentsError`` the cause)."""
    try:
        tool.validate(dict(arguments))
    except ToolArgumentsError as error:
        still = "; the call still waits for an answer" if waits else ""
        raise ApprovalError(internal_call_id, f"the edited arguments do not fit: {error}{still}") from error


def _deliver(future: asyncio.Future[Decision], decision: Decision) -> None:
    if not future.done():
        future.set_result(decision)
