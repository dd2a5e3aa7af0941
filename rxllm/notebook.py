"""Live display of rxllm streams in Jupyter (IPython display updates).

::

    from rxllm.notebook import display_stream

    view = display_stream(agent.stream_prompt("What time is it in Tokyo?"))
    events = await view            # optional: wait for the end (the view updates either way)

The view shows the text as it streams, reasoning folded under a ``<details>``
summary, each tool call with its arguments and, once it returns, its result,
and the usage at the end (or the error). A ``Retrying`` (a retry before the
turn's first event) shows as a note saying why and how long it waits. A
``StreamReset`` (the provider resent a broken turn) removes what the turn showed
so far and puts a "retrying" note in its place; the new attempt's output follows
it. Usage a server did not report is shown as such, never as zeros. A structured
answer (``Agent(model, output=T)``, ``parse_output(T)``) shows as a form that
fills in as ``PartialOutput`` events arrive: the value so far as a table of
fields (nested objects as nested tables, lists as numbered lists), marked valid
when ``Output`` brings the validated value; the JSON text it came from is folded
under it. Values that are not rxllm events (an Observable of your own, after a
``map`` or a ``scan``) show as their ``repr``, one a line, in order. It subscribes on the notebook's
running asyncio loop, so the cell returns at once and the output keeps
updating; ``view.dispose()`` cancels the stream. ``events_table(events)``
shows a list of events as a table. Given the ``provider`` the run streams
from, and with the ``prices`` extra, the status line ends with what the run
cost where that is known (``rxllm.price``).

Requires IPython (``pip install 'rxllm[notebooks]'``).
"""

from __future__ import annotations

import asyncio
import html
import time
from collections.abc import Generator, Sequence
from typing import Any

import msgspec
from IPython.display import HTML, DisplayHandle, display
from reactivex import Observable, abc

from rxllm.events import (
    Event,
    Final,
    FinalResponse,
    Output,
    PartialOutput,
    ReasoningDelta,
    Retrying,
    StreamReset,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolResult,
    Usage,
)
from rxllm.prices import Cost, known_cost

__all__ = ["StreamView", "display_stream", "events_table"]


class _ToolBlock:
    __slots__ = ("arguments", "is_error", "name", "result")

    def __init__(self, name: str) -> None:
        self.name = name
        self.arguments = ""
        self.result: str | None = None
        self.is_error = False


class _OutputBlock:
    """The structured answer so far: plain JSON data, and the type's name once it is valid."""

    __slots__ = ("valid", "value")

    def __init__(self) -> None:
        self.value: Any = None
        self.valid: str | None = None  # the output type's name, once Output arrived


class StreamView:
    """What ``display_stream`` shows, kept up to date as events arrive; await it for the events.

    ``events`` holds every event so far; ``done`` tells whether the stream
    ended; ``error`` holds its error, if any. Awaiting the view waits for the end
    and returns ``events``, or raises the stream's error.
    """

    def __init__(
        self, observable: Observable[Any], *, min_interval: float = 0.05, provider: Any = None
    ) -> None:
        self.events: list[Any] = []
        self.provider = provider
        self._cost: Cost | None = None
        self.done = False
        self.error: Exception | None = None
        self._cancelled = False
        self.min_interval = min_interval
        # ("text" | "json" | "reasoning", [pieces]), ("tool", _ToolBlock), ("output", _OutputBlock),
        # ("note", text) or ("values", [reprs]); "json" is text that turned out to be a structured answer
        self._output: _OutputBlock | None = None
        self._blocks: list[tuple[str, Any]] = []
        self._turn_start = 0  # where the current turn's blocks begin: a StreamReset removes them
        self._tools: dict[str, _ToolBlock] = {}
        self._usage: Usage | None = None
        self._complete = True  # every request reported its usage
        self._turns = 0
        self._handle: DisplayHandle | None = None
        self._last_update = 0.0
        self._flush_pending: asyncio.TimerHandle | None = None
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        self._finished: asyncio.Future[list[Any]] | None = (
            self._loop.create_future() if self._loop is not None else None
        )
        self._observable = observable
        self._subscription: abc.DisposableBase | None = None

    def start(self) -> StreamView:
        """Show the view and subscribe (``display_stream`` does both)."""
        shown = display(self, display_id=True)
        self._handle = shown if isinstance(shown, DisplayHandle) else None
        self._last_update = time.monotonic()
        self._subscription = self._observable.subscribe(self._on_next, self._on_error, self._on_completed)
        return self

    def dispose(self) -> None:
        """Cancel the stream (closes the connection, cancels running tools)."""
        if self._subscription is not None:
            self._subscription.dispose()
        if not self.done:
            self._end(None, cancelled=True)

    def __await__(self) -> Generator[Any, None, list[Any]]:
        if self._finished is None:
            raise RuntimeError("await a StreamView inside the loop it was made in")
        return self._finished.__await__()

    # -- events ----------------------------------------------------------------------------

    def _on_next(self, event: Any) -> None:
        self.events.append(event)
        self._fold(event)
        self._refresh()

    def _on_error(self, error: Exception) -> None:
        self._end(error)

    def _on_completed(self) -> None:
        self._end(None)

    def _end(self, error: Exception | None, *, cancelled: bool = False) -> None:
        if self.done:
            return
        self.done = True
        self.error = error
        self._cancelled = cancelled
        if error is None and not cancelled and self.provider is not None:
            self._cost = known_cost(self._usage, model=self.provider.model, provider=self.provider)
        if self._flush_pending is not None:
            self._flush_pending.cancel()
            self._flush_pending = None
        self._update()
        finished = self._finished
        if finished is not None and not finished.done():
            if error is not None:
                finished.set_exception(error)
                # A view nobody awaits must not log "exception was never retrieved".
                finished.exception()
            else:
                finished.set_result(self.events)

    def _fold(self, event: Any) -> None:
        if isinstance(event, TextDelta | ReasoningDelta):
            kind = "text" if isinstance(event, TextDelta) else "reasoning"
            blocks = self._blocks
            last = blocks[-1][0] if blocks else None
            if kind == "text" and last == "output" and len(blocks) - 2 >= self._turn_start:
                if blocks[-2][0] == "json":  # more of the answer's JSON, under its form
                    blocks[-2][1].append(event.text)
                    return
            if last != kind and not (kind == "text" and last == "json"):
                blocks.append((kind, []))
            blocks[-1][1].append(event.text)
        elif isinstance(event, PartialOutput | Output):
            self._output_event(event)
        elif isinstance(event, ToolCallDelta):
            block = self._tool(event.internal_call_id, event.name or "")
            if event.name:
                block.name = event.name
            block.arguments += event.arguments_delta
        elif isinstance(event, ToolCall):
            block = self._tool(event.internal_call_id, event.name)
            block.name = event.name
            block.arguments = _json(event.arguments)
        elif isinstance(event, ToolResult):
            block = self._tool(event.internal_call_id, event.name)
            block.result = event.content
            block.is_error = event.is_error
            self._turn_start = len(self._blocks)
        elif isinstance(event, StreamReset):
            discarded = self._blocks[self._turn_start :]
            del self._blocks[self._turn_start :]
            gone = {id(block) for kind, block in discarded if kind == "tool"}
            self._tools = {key: block for key, block in self._tools.items() if id(block) not in gone}
            if any(block is self._output for _, block in discarded):
                self._output = None
            self._blocks.append(("note", f"retrying: {event.reason}"))
        elif isinstance(event, Retrying):
            self._blocks.append(("note", f"retrying in {event.delay:.1f} s: {event.reason}"))
        elif isinstance(event, Final):
            self._turns += 1
            self._usage = Usage.summed((self._usage, event.usage))
            self._complete = self._complete and event.usage is not None and event.usage_complete
            self._turn_start = len(self._blocks)
        elif isinstance(event, FinalResponse):
            self._usage, self._turns = event.usage, event.turns
            self._complete = event.usage_complete
        elif not isinstance(event, Event):
            # Not an rxllm event (an Observable the user mapped or scanned): each value's repr, in order.
            blocks = self._blocks
            if not blocks or blocks[-1][0] != "values":
                blocks.append(("values", []))
            blocks[-1][1].append(repr(event))

    def _output_event(self, event: PartialOutput | Output) -> None:
        # The text this turn streamed was the answer's JSON: fold it under the form.
        blocks = self._blocks
        json_at = None
        for at in range(len(blocks) - 1, self._turn_start - 1, -1):
            if blocks[at][0] in ("text", "json"):
                blocks[at] = ("json", blocks[at][1])
                json_at = at
                break
        block = self._output
        if block is None:
            block = self._output = _OutputBlock()
        # The form stands right after the JSON it shows (a retried answer's form moves down to it).
        form_at = next((at for at, (_, held) in enumerate(blocks) if held is block), None)
        if form_at is None or (json_at is not None and form_at < json_at):
            if form_at is not None:
                del blocks[form_at]
                if form_at < self._turn_start:
                    self._turn_start -= 1
            blocks.append(("output", block))
        if isinstance(event, Output):
            block.value = msgspec.to_builtins(event.value)
            block.valid = type(event.value).__name__
        else:
            block.value, block.valid = event.value, None

    def _tool(self, internal_call_id: str, name: str) -> _ToolBlock:
        block = self._tools.get(internal_call_id)
        if block is None:
            block = self._tools[internal_call_id] = _ToolBlock(name)
            self._blocks.append(("tool", block))
        return block

    # -- display updates ---------------------------------------------------------------------

    def _refresh(self) -> None:
        """Update now, or once ``min_interval`` has passed since the last update (never more often)."""
        wait = self._last_update + self.min_interval - time.monotonic()
        if wait <= 0 or self._loop is None:
            self._update()
        elif self._flush_pending is None:
            self._flush_pending = self._loop.call_later(wait, self._flush)

    def _flush(self) -> None:
        self._flush_pending = None
        if not self.done:
            self._update()

    def _update(self) -> None:
        self._last_update = time.monotonic()
        if self._handle is not None:
            self._handle.update(self)

    # -- rendering ---------------------------------------------------------------------------

    def _status(self) -> str | None:
        if self.error is not None:
            return f"error: {type(self.error).__name__}: {self.error}"
        if self._cancelled:
            return "cancelled"
        if self.done and self._turns:
            turns = f"{self._turns} turn" + ("" if self._turns == 1 else "s")
            usage = self._usage
            if usage is None:
                return f"{turns} · usage not reported"
            shown = (
                f"{turns} · input {usage.input_tokens} · output {usage.output_tokens} · "
                f"total {usage.total_tokens} tokens" + ("" if self._cost is None else f" · cost {self._cost}")
            )
            return shown if self._complete else shown + " (incomplete: a request reported no usage)"
        return None if self.done else "streaming…"

    def __repr__(self) -> str:
        lines: list[str] = []
        for kind, block in self._blocks:
            if kind == "text":
                lines.append("".join(block))
            elif kind == "json":
                continue  # shown as the form
            elif kind == "output":
                head = f"[output: valid {block.valid}]" if block.valid else "[output so far]"
                lines.append(f"{head} {_json(block.value)}")
            elif kind == "note":
                lines.append(f"[{block}]")
            elif kind == "values":
                lines.extend(block)
            elif kind == "reasoning":
                lines.append(f"[reasoning, {len(''.join(block))} characters]")
            else:
                lines.append(_tool_line(block))
        status = self._status()
        if status is not None:
            lines.append(f"[{status}]")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        parts = ['<div class="rxllm-stream" style="font-family: var(--jp-content-font-family, sans-serif)">']
        for kind, block in self._blocks:
            if kind == "text":
                parts.append(f'<div style="white-space: pre-wrap">{html.escape("".join(block))}</div>')
            elif kind == "json":
                text = html.escape("".join(block))
                parts.append(
                    '<details><summary style="opacity: 0.6">JSON</summary>'
                    f'<pre style="white-space: pre-wrap; opacity: 0.6">{text}</pre></details>'
                )
            elif kind == "output":
                parts.append(_output_html(block))
            elif kind == "note":
                parts.append(f'<div style="opacity: 0.6; color: #a60">↻ {html.escape(block)}</div>')
            elif kind == "values":
                shown = html.escape("\n".join(block))
                parts.append(f'<pre class="rxllm-values" style="white-space: pre-wrap">{shown}</pre>')
            elif kind == "reasoning":
                text = html.escape("".join(block))
                parts.append(
                    '<details><summary style="opacity: 0.6">reasoning</summary>'
                    f'<div style="white-space: pre-wrap; opacity: 0.6">{text}</div></details>'
                )
            else:
                parts.append(_tool_html(block))
        status = self._status()
        if status is not None:
            colour = "#b00" if self.error is not None else "inherit"
            parts.append(f'<div style="opacity: 0.6; color: {colour}">{html.escape(status)}</div>')
        parts.append("</div>")
        return "".join(parts)


def _json(value: Any) -> str:
    return value if isinstance(value, str) else msgspec.json.encode(value).decode()


def _tool_line(block: _ToolBlock) -> str:
    line = f"[tool call] {block.name} {block.arguments}"
    if block.result is not None:
        line += f" → {'error: ' if block.is_error else ''}{block.result}"
    return line


def _tool_html(block: _ToolBlock) -> str:
    call = f"<code>{html.escape(block.name)}({html.escape(block.arguments)})</code>"
    if block.result is None:
        return f"<div>🔧 {call} …</div>"
    style = ' style="color: #b00"' if block.is_error else ""
    return (
        f"<details><summary>🔧 {call} → <span{style}>{html.escape(_short(block.result))}</span></summary>"
        f'<pre style="white-space: pre-wrap">{html.escape(block.result)}</pre></details>'
    )


def _output_html(block: _OutputBlock) -> str:
    state = f"✓ a valid {html.escape(block.valid)}" if block.valid else "filling in…"
    return (
        f'<div class="rxllm-output"><div style="opacity: 0.6">output: {state}</div>'
        f"{_value_html(block.value)}</div>"
    )


def _value_html(value: Any) -> str:
    """JSON data as a form: an object as a table of fields, a list as a numbered list."""
    if isinstance(value, dict):
        if not value:
            return "<i>(empty)</i>"
        rows = "".join(
            f'<tr><th style="text-align: left; vertical-align: top">{html.escape(str(key))}</th>'
            f'<td style="text-align: left">{_value_html(item)}</td></tr>'
            for key, item in value.items()
        )
        return f"<table>{rows}</table>"
    if isinstance(value, list):
        if not value:
            return "<i>(none)</i>"
        return "<ol>" + "".join(f"<li>{_value_html(item)}</li>" for item in value) + "</ol>"
    if isinstance(value, str):
        return f'<span style="white-space: pre-wrap">{html.escape(value)}</span>'
    return f"<code>{html.escape(_json(value))}</code>"


def _short(text: str, limit: int = 80) -> str:
    line = text.splitlines()[0] if text else ""
    return line if len(line) <= limit and line == text else line[: limit - 1] + "…"


def display_stream(
    observable: Observable[Any], *, min_interval: float = 0.05, provider: Any = None
) -> StreamView:
    """Show ``observable``'s events in a live-updating output, subscribing on the running loop.

    The output is updated at most every ``min_interval`` seconds while events
    arrive, and once more at the end. ``provider`` (the rxllm provider the run
    streams from) lets the status line show the run's cost where it is known.
    Returns the ``StreamView``; ``await`` it to wait for the end and get the events.
    """
    return StreamView(observable, min_interval=min_interval, provider=provider).start()


def events_table(events: Sequence[Event]) -> HTML:
    """Events as an HTML table: one row each, its type and its fields (JSON)."""
    rows = []
    for number, event in enumerate(events):
        fields = msgspec.to_builtins(event)
        kind = fields.pop("type", type(event).__name__)
        if isinstance(event, FinalResponse):
            fields["history"] = f"{len(event.history)} messages"
        shown = ", ".join(f"{name}={_json(value)}" for name, value in fields.items())
        rows.append(
            f"<tr><td>{number}</td><td><code>{html.escape(kind)}</code></td>"
            f'<td style="text-align: left"><code>{html.escape(shown)}</code></td></tr>'
        )
    head = '<tr><th>#</th><th>type</th><th style="text-align: left">fields</th></tr>'
    return HTML(f"<table>{head}{''.join(rows)}</table>")
