"""The offline model: ``ScriptedModel`` answers each ``stream(request)`` with the next turn of its script.

No network at all. A turn given as a ``Turn`` or as raw SSE bytes goes through
the providers' real decoding (``replay_sse``: the SSE decoder, the dialect, tool
calls, the one ``Final``); a turn given as events is emitted as it is. It is a
``StreamModel``, so ``Agent(ScriptedModel([...]))`` works.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeAlias, cast

import reactivex
from reactivex import Observable, abc

from rxllm.control import PauseControl
from rxllm.events import AssistantEvent, Event, Final, ToolCall
from rxllm.operators import pause_gate
from rxllm.providers._turn import Accounts, accounted
from rxllm.request import CompletionRequest
from rxllm.testing._writers import (
    DEFAULT_MODEL,
    DialectName,
    ScriptExhaustedError,
    Turn,
    dialect_of,
    sse_bytes,
)
from rxllm.transport._source import decoded
from rxllm.transport.sse import DEFAULT_MAX_EVENT_SIZE
from rxllm.typing import Dialect

__all__ = ["ModelScript", "ModelTurn", "ScriptedModel", "replay_sse"]

# -- the model --------------------------------------------------------------------------

ModelTurn: TypeAlias = Turn | Sequence[Event] | Sequence[bytes] | bytes
ModelScript: TypeAlias = ModelTurn | Callable[[CompletionRequest], ModelTurn]


class ScriptedModel:
    """A ``StreamModel`` that answers the n-th subscription with the n-th turn of its script, offline.

    A turn is a ``Turn`` or raw SSE bytes in ``dialect`` (decoded by the real pipe,
    so a malformed or truncated transcript fails as a server's would), a list of
    assistant events (emitted as given, with ``Final()`` added when the list has
    none), or a function of the ``CompletionRequest`` returning one of those.
    ``requests`` records what each subscription asked. Events are emitted on the
    subscription's scheduler, so the model also works inside marble tests.
    """

    def __init__(
        self, turns: Sequence[ModelScript], *, dialect: DialectName = "openai", model: str = DEFAULT_MODEL
    ) -> None:
        self.turns = list(turns)
        self.dialect = dialect_of(dialect)
        self.dialect_name = dialect
        self.model = model
        self.requests: list[CompletionRequest] = []

    def __repr__(self) -> str:
        return f"ScriptedModel({len(self.turns)} turns, dialect={self.dialect_name!r})"

    def stream(
        self, request: CompletionRequest, *, pause: PauseControl | None = None
    ) -> Observable[AssistantEvent]:
        """The next turn as a cold Observable; each subscription takes a turn, as each request would."""

        def subscribe(
            observer: abc.ObserverBase[AssistantEvent], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            self.requests.append(request)
            number = len(self.requests)
            if number > len(self.turns):
                return reactivex.throw(ScriptExhaustedError(number, len(self.turns))).subscribe(
                    observer, scheduler=scheduler
                )
            script = self.turns[number - 1]
            turn = script(request) if callable(script) else script
            return self._events(turn).subscribe(observer, scheduler=scheduler)

        events: Observable[AssistantEvent] = Observable(subscribe)
        return events if pause is None else events.pipe(pause_gate(pause))

    def _events(self, turn: ModelTurn) -> Observable[AssistantEvent]:
        if isinstance(turn, Turn):
            return replay_sse(sse_bytes(turn, self.dialect_name, model=self.model), self.dialect)
        if isinstance(turn, bytes):
            return replay_sse([turn], self.dialect)
        items = list(turn)
        if items and all(isinstance(item, bytes) for item in items):
            return replay_sse([item for item in items if isinstance(item, bytes)], self.dialect)
        # Emitted as given: a test may script any event, even one a provider would not send.
        events = cast(list[AssistantEvent], [item for item in items if not isinstance(item, bytes)])
        if not any(isinstance(event, Final) for event in events):
            reason = "tool_calls" if any(isinstance(event, ToolCall) for event in events) else "stop"
            events.append(Final(finish_reason=reason))
        return reactivex.from_iterable(events)


def replay_sse(pieces: Sequence[bytes], dialect: Dialect) -> Observable[AssistantEvent]:
    """SSE bytes through the decoding pipe a provider uses, without a network: a turn's events.

    As from a provider, an error carries the usage the bytes reported before it,
    and a ``StreamTruncatedError`` the ``partial`` response.
    """

    def turn(accounts: Accounts) -> Observable[AssistantEvent]:
        return reactivex.from_iterable(pieces).pipe(decoded(accounts.decoder))

    return accounted(turn, dialect, DEFAULT_MAX_EVENT_SIZE)
