"""``accumulate_tool_calls()``: join raw tool-call fragments into ``ToolCallDelta`` and ``ToolCall``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import uuid4

import msgspec
from reactivex import Observable, abc

from rxllm.events import (
    AssistantEvent,
    ChunkEvent,
    Final,
    ReasoningDelta,
    StreamReset,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolCallFragment,
)
from rxllm.transport._fusion import Link, Stage

__all__ = ["accumulate_tool_calls", "parse_arguments"]


class _OpenCall:
    """One tool call being assembled: argument pieces are kept in a list and joined once."""

    __slots__ = (
        "call_id",
        "fallback_id",
        "id",
        "internal_call_id",
        "name",
        "name_announced",
        "parts",
    )

    def __init__(self, id: str | None, name: str | None) -> None:
        minted = uuid4().hex
        self.id = id
        self.call_id: str | None = None  # where the provider gives one apart from ``id``
        self.name = name
        self.parts: list[str] = []
        self.internal_call_id = "rx_" + minted
        self.fallback_id = "call_" + minted
        self.name_announced = False

    @property
    def provider_id(self) -> str:
        return self.id if self.id is not None else self.fallback_id

    def complete(self) -> ToolCall:
        id = self.provider_id
        return ToolCall(
            id=id,
            call_id=self.call_id or id,
            internal_call_id=self.internal_call_id,
            name=self.name or "",
            arguments=parse_arguments("".join(self.parts)),
        )


def parse_arguments(text: str) -> Any:
    """Tool arguments as parsed JSON: ``{}`` for none (``""`` or blanks), the raw text when it does not parse.

    The one place rxllm parses a tool call's arguments; the dialects only pass
    the fragments on.
    """
    if not text.strip():
        return {}  # zero-argument tools send "" or no arguments at all
    try:
        return msgspec.json.decode(text)
    except msgspec.DecodeError:
        return text


class _ToolCalls:
    """The accumulation step for one subscription: ``feed`` an event, get the events to emit."""

    __slots__ = ("by_id", "by_index", "open")

    def __init__(self) -> None:
        self.open: list[_OpenCall] = []
        self.by_id: dict[str, _OpenCall] = {}
        self.by_index: dict[int, _OpenCall] = {}

    def feed(self, event: ChunkEvent) -> list[AssistantEvent]:
        if isinstance(event, ToolCallFragment):
            delta = self._fragment(event)
            out: list[AssistantEvent] = [] if delta is None else [delta]
            if event.end:
                done = self._ended(event)
                if done is not None:
                    out.append(done)
            return out
        if isinstance(event, Final) and event.finish_reason is not None:
            closing: list[AssistantEvent] = list(self.close())
            closing.append(event)
            return closing
        if isinstance(event, ToolCall):
            return [self._completed(event)]
        if type(event) is StreamReset:
            self.drop()
        return [event]

    def close(self) -> list[ToolCall]:
        """Complete every open call, in order of first appearance."""
        calls = [call.complete() for call in self.open]
        self.drop()
        return calls

    def drop(self) -> None:
        self.open.clear()
        self.by_id.clear()
        self.by_index.clear()

    def _forget(self, call: _OpenCall) -> None:
        self.open.remove(call)
        for key in [key for key, value in self.by_id.items() if value is call]:
            del self.by_id[key]
        for index in [index for index, value in self.by_index.items() if value is call]:
            del self.by_index[index]

    def _ended(self, fragment: ToolCallFragment) -> ToolCall | None:
        """The call this fragment ends, complete (``None`` when no open call matches it)."""
        id = fragment.id or None
        call = self.by_id.get(id) if id is not None else None
        if call is None and fragment.index is not None:
            call = self.by_index.get(fragment.index)
        if call is None:
            return None
        self._forget(call)
        return call.complete()

    def _completed(self, event: ToolCall) -> ToolCall:
        """A whole call from the dialect: it completes the open call with its id, in place of accumulation.

        Dialects whose servers mark the end of each call (Responses ``output_item.done``,
        Anthropic ``content_block_stop``) stream its fragments for progress and then send
        the call itself, with the provider's ids and arguments: it takes the
        ``internal_call_id`` of the call its fragments opened, and that call is closed so
        it is not completed a second time. An empty ``internal_call_id`` is minted.
        """
        call = self.by_id.get(event.id)
        if call is None:
            call = self.by_id.get(event.call_id)
        if call is not None:
            self._forget(call)
            return msgspec.structs.replace(event, internal_call_id=call.internal_call_id)
        if not event.internal_call_id:
            return msgspec.structs.replace(event, internal_call_id="rx_" + uuid4().hex)
        return event

    def _fragment(self, fragment: ToolCallFragment) -> ToolCallDelta | None:
        # DeepSeek and Qwen send "" as id and name on continuation chunks: that means absent.
        id = fragment.id or None
        name = fragment.name or None
        if id is None and name is None and not fragment.arguments:
            return None
        call = self._call_for(fragment.index, id, name)
        if call is None:
            call = _OpenCall(id, name)
            self.open.append(call)
            if fragment.index is not None:
                self.by_index[fragment.index] = call
        else:
            if call.id is None and id is not None:
                call.id = id
            if name is not None:
                # vLLM repeats the same id and name on every chunk: replace, never concatenate.
                call.name = name
        if fragment.call_id:
            call.call_id = fragment.call_id
        if id is not None:
            self.by_id.setdefault(id, call)
        if fragment.arguments:
            call.parts.append(fragment.arguments)
        announce = call.name is not None and not call.name_announced
        if not fragment.arguments and not announce:
            return None
        call.name_announced = call.name_announced or announce
        return ToolCallDelta(
            id=call.provider_id,
            internal_call_id=call.internal_call_id,
            name=call.name if announce else None,
            arguments_delta=fragment.arguments,
        )

    def _call_for(self, index: int | None, id: str | None, name: str | None) -> _OpenCall | None:
        """The open call a fragment continues, or ``None`` when it starts a new one."""
        if id is not None and id in self.by_id:
            return self.by_id[id]
        if index is not None:
            call = self.by_index.get(index)
            if call is None:
                return None
            # LiteLLM and OneAPI send parallel calls all on index 0: a new id with a name is a new call.
            # GLM-4 sends a new id on every chunk of one call: a new id alone is not (the first id stays).
            if id is not None and name is not None and call.id is not None and call.id != id:
                return None
            return call
        # Google's OpenAI-compatible endpoint sends no index: a name starts a call, anything else
        # continues the latest one.
        if name is not None or not self.open:
            return None
        return self.open[-1]


def accumulate_tool_calls() -> Callable[[Observable[ChunkEvent]], Observable[AssistantEvent]]:
    """Join ``ToolCallFragment`` pieces into ``ToolCallDelta`` progress and complete ``ToolCall`` events.

    Other events pass through unchanged and in order. Open calls complete, in
    order of first appearance, just before a ``Final`` with a finish reason, or at
    the end of the stream; never because their arguments already parse as JSON.
    An error or a ``StreamReset`` drops the open calls: a partial call is never
    dispatched.

    A ``ToolCall`` arriving from upstream completes the open call with the same
    id (or ``call_id``) instead: it is emitted with that call's
    ``internal_call_id`` and the call is closed, so it is never completed twice.
    This is how the Responses and Anthropic dialects, whose servers mark the end of
    each call, report it whole while their fragments still give ``ToolCallDelta``
    progress. A ``ToolCall`` matching no open call passes through; if its
    ``internal_call_id`` is empty, one is minted.

    .. marble::
        :alt: accumulate_tool_calls

        -a-p-q-f-----|      p, q: the fragments of one call
        [ accumulate_tool_calls() ]
        -a-d-e-(c,f)-|      d, e: their deltas; c: the whole call, just before the Final

        -p-q-w-f-|          w: the whole call, as the Responses and Anthropic dialects send it at its end
        [ accumulate_tool_calls() ]
        -d-e-c-f-|          c: w with the deltas' internal_call_id

        :values: a = TextDelta(text="Let me look.")
                 p = ToolCallFragment(index=0, id="call_7", name="clock", arguments='{"tz": ')
                 q = ToolCallFragment(index=0, arguments='"UTC"}')
                 d = ToolCallDelta(id="call_7", internal_call_id="rx_1", name="clock",
                                   arguments_delta='{"tz": ')
                 e = ToolCallDelta(id="call_7", internal_call_id="rx_1", arguments_delta='"UTC"}')
                 w = ToolCall(id="call_7", call_id="call_7", internal_call_id="", name="clock",
                              arguments={"tz": "UTC"})
                 c = msgspec.structs.replace(w, internal_call_id="rx_1")
                 f = Final(finish_reason="tool_calls")

    A fragment joins, in this order of preference: the open call with the same
    provider id; the open call with the same index (unless it brings a new id and
    a name while that call has another id: then it is a new call); without an
    index, the latest open call (unless it brings a name: a new call). The
    ``ToolCallDelta`` for a call carries ``name`` once, on its first delta after
    the name is known. Where a server sends no id, one is minted (``call_…``)
    and used by both the deltas and the ``ToolCall``; ``internal_call_id``
    (``rx_…``) is minted for every call.
    """

    def _accumulate_tool_calls(source: Observable[ChunkEvent]) -> Observable[AssistantEvent]:
        return Stage(source, _AccumulateToolCalls)

    return _accumulate_tool_calls


class _AccumulateToolCalls(Link[ChunkEvent, AssistantEvent]):
    """One subscription: the open calls, made at the first event that is not plain text."""

    __slots__ = ("calls",)

    def __init__(
        self, observer: abc.ObserverBase[AssistantEvent], _scheduler: abc.SchedulerBase | None
    ) -> None:
        super().__init__(observer)
        self.calls: _ToolCalls | None = None

    def on_next(self, event: ChunkEvent) -> None:
        if self.stopped:
            return
        if type(event) is TextDelta or type(event) is ReasoningDelta:
            self.observer.on_next(event)  # the common case, straight through
            return
        calls = self.calls
        if calls is None:
            calls = self.calls = _ToolCalls()
        for out in calls.feed(event):
            self.observer.on_next(out)

    def on_error(self, error: Exception) -> None:
        if self.calls is not None:
            self.calls.drop()
        super().on_error(error)

    def on_completed(self) -> None:
        if self.stopped:
            return
        if self.calls is not None:
            for call in self.calls.close():
                self.observer.on_next(call)
        super().on_completed()
