"""A Tk chat window over an rxllm agent: tokens appear as they stream; Send, Pause/Resume, Cancel.

The asyncio loop (HTTP, tools) runs on a background thread; the window observes
the agent's events on reactivex's ``TkinterScheduler``, so every widget update
happens on Tk's own thread::

    python examples/tk_chat.py                                   # offline: a scripted server on 127.0.0.1
    python examples/tk_chat.py --provider openai --model gpt-4o-mini
    python examples/tk_chat.py --provider openai --model llama3.2 --base-url http://localhost:11434/v1
    python examples/tk_chat.py --form                            # a contact card filling in as JSON streams

Pause holds delivery and stops reading the socket; Cancel disposes the
subscription, which closes the connection. The conversation's history is
carried from one answer to the next. With ``--midstream-retries N`` a turn whose
stream broke is sent again: the ``StreamReset`` before the new attempt deletes
what the turn had shown (from a text mark set where the turn began) and a
"retrying" note takes its place. A retry before a turn's first event (HTTP 429,
503, a refused connection) shows as a ``Retrying`` note with its wait, so the
window never sits silent; an error is shown from its ``ErrorInfo`` (class,
message, status, ``Retry-After``), as a relay would send it.

With ``--form`` the agent asks for a structured answer (``Agent(model,
output=Contact)``): a panel beside the transcript shows the contact card as its
fields fill in, from each ``PartialOutput``, and says "valid" when ``Output``
brings the checked value (offline, a scripted server streams the card's JSON a
few characters at a time).

A tool made with ``@tool(needs_approval=...)`` does not run until the person
answers: each ``ToolApprovalRequest`` opens a "Run this tool?" dialog
(``ApprovalDialog``) showing the call's arguments as JSON, which can be edited.
Approve runs the call (with the edited arguments, if they were changed: they are
checked against the tool, and the dialog says what does not fit), Deny sends
the reason typed (or "The user denied this call.") to the model as the call's
result; closing the dialog denies it too. Cancel closes the open dialogs with
the run. ``--approve-tools`` makes the offline demo's calculator and clock ask.
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import tkinter as tk
from collections.abc import Sequence
from typing import Any

import msgspec
from reactivex import operators as ops
from reactivex.disposable import SerialDisposable
from reactivex.scheduler.mainloop import TkinterScheduler

from rxllm import (
    Agent,
    ApprovalError,
    Approvals,
    Final,
    FinalResponse,
    Message,
    Output,
    PartialOutput,
    PauseControl,
    ReasoningDelta,
    Retrying,
    StreamReset,
    TextDelta,
    Tool,
    ToolApprovalRequest,
    ToolCall,
    ToolResult,
)
from rxllm.events import ErrorInfo
from rxllm.typing import StreamModel


class Contact(msgspec.Struct):
    """A contact card: who wrote, how to reach them, what they want to talk about."""

    name: str
    email: str
    company: str | None
    phone: str | None
    topics: list[str]


FORM_PROMPT = (
    "Extract the contact: 'Hi, I am Ada Lovelace of the Analytical Engine Company (ada@example.org, "
    "+44 20 7946 0000). I would like to talk about engines, poetry and notes on the engine.'"
)
FORM_ANSWER = (
    '{"name": "Ada Lovelace", "email": "ada@example.org", "company": "Analytical Engine Company", '
    '"phone": "+44 20 7946 0000", "topics": ["engines", "poetry", "notes on the engine"]}'
)


def form_lines(value: Any, indent: str = "") -> list[str]:
    """JSON data as the lines of a form: ``field: value``, nested fields indented, list items dashed."""
    lines: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                lines.append(f"{indent}{key}:")
                lines.extend(form_lines(item, indent + "  "))
            else:
                lines.append(f"{indent}{key}: {_scalar(item)}")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict | list) and item:
                lines.append(f"{indent}-")
                lines.extend(form_lines(item, indent + "  "))
            else:
                lines.append(f"{indent}- {_scalar(item)}")
    else:
        lines.append(f"{indent}{_scalar(value)}")
    return lines


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value == [] or value == {}:
        return "(none)"
    return msgspec.json.encode(value).decode()


class ChatApp:
    """The window: a transcript, a prompt entry, and the Send, Pause/Resume and Cancel buttons.

    With ``output`` (a type msgspec validates) the answer is structured, and a
    form panel shows it as it fills in.
    """

    def __init__(
        self,
        root: tk.Tk,
        model: StreamModel,
        loop: asyncio.AbstractEventLoop,
        *,
        tools: Sequence[Any] = (),
        output: Any = None,
    ) -> None:
        self.root = root
        self.loop = loop
        self.agent = Agent(model, tools=tools, output=output)
        self.scheduler = TkinterScheduler(root)
        self.history: tuple[Message, ...] = ()
        self.control: PauseControl | None = None
        self.subscription = SerialDisposable()
        self.streaming = False
        self.approvals = Approvals()  # one control serves every answer's calls
        self.dialogs: dict[str, ApprovalDialog] = {}  # internal_call_id -> its open dialog

        root.title("rxllm chat")
        self.text = tk.Text(root, wrap="word", height=20, width=72)
        self.text.tag_configure("you", font=("TkDefaultFont", 10, "bold"))
        self.text.tag_configure("reasoning", foreground="grey50")
        self.text.tag_configure("tool", foreground="steel blue")
        self.text.tag_configure("note", foreground="dark orange")
        self.text.pack(fill="both", expand=True)
        self.form: tk.Text | None = None
        self.form_state = tk.StringVar(root, "")
        if output is not None:
            panel = tk.Frame(root)
            panel.pack(fill="x")
            tk.Label(panel, textvariable=self.form_state, anchor="w").pack(fill="x")
            self.form = tk.Text(panel, wrap="word", height=8, width=72, background="#f4f7fb")
            self.form.pack(fill="x")
        # Where the current turn's output begins; left gravity keeps it before what is inserted there.
        self.text.mark_set("turn", "end-1c")
        self.text.mark_gravity("turn", "left")
        bar = tk.Frame(root)
        bar.pack(fill="x")
        self.entry = tk.Entry(bar)
        self.entry.pack(side="left", fill="x", expand=True)
        self.entry.bind("<Return>", lambda _: self.send())
        self.send_button = tk.Button(bar, text="Send", command=self.send)
        self.send_button.pack(side="left")
        self.pause_button = tk.Button(bar, text="Pause", command=self.toggle_pause, state="disabled")
        self.pause_button.pack(side="left")
        self.cancel_button = tk.Button(bar, text="Cancel", command=self.cancel, state="disabled")
        self.cancel_button.pack(side="left")
        self.status = tk.StringVar(root, "ready")
        tk.Label(root, textvariable=self.status, anchor="w").pack(fill="x")

    # -- buttons --------------------------------------------------------------------------

    def send(self) -> None:
        prompt = self.entry.get().strip()
        if not prompt or self.streaming:
            return
        self.entry.delete(0, "end")
        self._append("you: ", "you")
        self._append(prompt + "\n")
        self._append("assistant: ", "you")
        self._turn_starts()
        self.control = PauseControl()
        events = self.agent.stream_prompt(
            prompt, history=self.history, pause=self.control, approvals=self.approvals
        ).pipe(ops.observe_on(self.scheduler))
        self._streaming(True)
        self.status.set("streaming…")

        def subscribe() -> None:
            # Subscribed on the loop's thread, so the HTTP request and tools run on that loop.
            self.subscription.disposable = events.subscribe(self._on_event, self._on_error, self._on_done)

        self.loop.call_soon_threadsafe(subscribe)

    def toggle_pause(self) -> None:
        control = self.control
        if control is None:
            return
        if control.is_paused:
            control.resume()
            self.pause_button.configure(text="Pause")
            self.status.set("streaming…")
        else:
            control.pause()
            self.pause_button.configure(text="Resume")
            self.status.set("paused")

    def cancel(self) -> None:
        if not self.streaming:
            return
        self.subscription.dispose()
        self.subscription = SerialDisposable()
        self._close_dialogs()
        self._append("\n[cancelled]\n", "tool")
        self._streaming(False)
        self.status.set("cancelled")

    # -- events, on Tk's thread -------------------------------------------------------------

    def _on_event(self, event: Any) -> None:
        if not self.streaming:
            return  # cancelled: anything still queued for Tk is dropped
        if isinstance(event, TextDelta):
            self._append(event.text)
        elif isinstance(event, ReasoningDelta):
            self._append(event.text, "reasoning")
        elif isinstance(event, ToolCall):
            self._append(f"\n[tool call] {event.name} {event.arguments}\n", "tool")
        elif isinstance(event, ToolApprovalRequest):
            self._append(f"[approval needed] {event.name}\n", "note")
            self.dialogs[event.internal_call_id] = ApprovalDialog(self, event)
            self.status.set("waiting for approval…")
        elif isinstance(event, ToolResult):
            self._append(f"[result] {event.content}\n", "tool")
            self._turn_starts()
        elif isinstance(event, Final):
            self._turn_starts()
        elif isinstance(event, StreamReset):
            # The provider resends a broken turn: what it showed so far is discarded.
            self.text.delete("turn", "end-1c")
            self._append(f"\n[retrying: {event.reason}]\n", "note")
        elif isinstance(event, Retrying):
            # A retry before the turn's first event: nothing to discard, only a wait to show.
            self._append(f"[retrying in {event.delay:.1f} s: {event.reason}]\n", "note")
            self.status.set(f"retrying (attempt {event.attempt})…")
        elif isinstance(event, PartialOutput):
            self._show_form(event.value, f"{self._output_name()}: filling in…")
        elif isinstance(event, Output):
            self._show_form(msgspec.to_builtins(event.value), f"{type(event.value).__name__}: valid")
        elif isinstance(event, FinalResponse):
            self.history = event.history
            usage = event.usage
            tokens = f"{usage.total_tokens} tokens" + ("" if event.usage_complete else " (incomplete)")
            self.status.set(f"done: {event.turns} turn(s), {tokens}")

    def _on_error(self, error: Exception) -> None:
        if not self.streaming:
            return
        info = ErrorInfo.from_exception(error)
        self._close_dialogs()
        self._append(f"\n[error] {info.error_type}: {info.message}\n", "tool")
        self._streaming(False)
        status = f"error: HTTP {info.status}" if info.status is not None else "error"
        if info.retry_after is not None:
            status += f", retry after {info.retry_after:g} s"
        self.status.set(status)

    def _on_done(self) -> None:
        if not self.streaming:
            return
        self._close_dialogs()
        self._append("\n")
        self._streaming(False)

    def _streaming(self, on: bool) -> None:
        self.streaming = on
        self.send_button.configure(state="disabled" if on else "normal")
        self.pause_button.configure(state="normal" if on else "disabled", text="Pause")
        self.cancel_button.configure(state="normal" if on else "disabled")

    def answered(self, request: ToolApprovalRequest, note: str) -> None:
        """A dialog took its answer: note it in the transcript; the dialog has closed."""
        self.dialogs.pop(request.internal_call_id, None)
        self._append(f"[{note}] {request.name}\n", "note")
        if not self.dialogs and self.streaming:
            self.status.set("streaming…")

    def _close_dialogs(self) -> None:
        """The run ended (or was cancelled): its questions are over."""
        for dialog in list(self.dialogs.values()):
            dialog.destroy()
        self.dialogs.clear()

    def _show_form(self, value: Any, state: str) -> None:
        if self.form is None:
            return
        self.form.delete("1.0", "end")
        self.form.insert("1.0", "\n".join(form_lines(value)))
        self.form_state.set(state)

    def _output_name(self) -> str:
        return getattr(self.agent.output, "__name__", "output")

    def _turn_starts(self) -> None:
        self.text.mark_set("turn", "end-1c")

    def _append(self, text: str, tag: str | None = None) -> None:
        self.text.insert("end", text, () if tag is None else (tag,))
        self.text.see("end")


class ApprovalDialog(tk.Toplevel):
    """ "Run this tool?": a call's arguments as editable JSON, a reason to deny with, Approve and Deny.

    The answer goes through the app's ``Approvals`` (any thread may answer; this
    is Tk's). Edited arguments that are not a JSON object, or do not fit the
    tool (``ApprovalError``), are shown in the dialog, which stays open.
    """

    DENIED = "The user denied this call."
    CLOSED = "The user closed the approval dialog without running the call."

    def __init__(self, app: ChatApp, request: ToolApprovalRequest) -> None:
        super().__init__(app.root)
        self.app = app
        self.request = request
        self.title(f"Run {request.name}?")
        tk.Label(self, text=f"The assistant wants to run {request.name} with:", anchor="w").pack(fill="x")
        self.arguments = tk.Text(self, height=6, width=60)
        self.arguments.insert("1.0", _pretty(request.arguments))
        self.arguments.pack(fill="both", expand=True)
        tk.Label(self, text="Reason, if you deny it:", anchor="w").pack(fill="x")
        self.reason = tk.Entry(self)
        self.reason.pack(fill="x")
        self.problem = tk.StringVar(self, "")
        tk.Label(self, textvariable=self.problem, foreground="firebrick", anchor="w").pack(fill="x")
        buttons = tk.Frame(self)
        buttons.pack(fill="x")
        self.approve_button = tk.Button(buttons, text="Approve", command=self.approve)
        self.approve_button.pack(side="left")
        self.deny_button = tk.Button(buttons, text="Deny", command=self.deny)
        self.deny_button.pack(side="left")
        self.protocol("WM_DELETE_WINDOW", lambda: self.deny(self.CLOSED))

    def approve(self) -> None:
        text = self.arguments.get("1.0", "end-1c")
        try:
            arguments = msgspec.json.decode(text)
        except msgspec.DecodeError as exc:
            self.problem.set(f"not JSON: {exc}")
            return
        if not isinstance(arguments, dict):
            self.problem.set("the arguments are a JSON object: {...}")
            return
        edited = arguments != self.request.arguments
        try:
            self.app.approvals.approve(self.request.internal_call_id, arguments if edited else None)
        except ApprovalError as exc:
            self.problem.set(exc.reason)
            return
        self._answered(f"approved with {_pretty(arguments, indent=0)}" if edited else "approved")

    def deny(self, reason: str | None = None) -> None:
        reason = reason or self.reason.get().strip() or self.DENIED
        try:
            self.app.approvals.deny(self.request.internal_call_id, reason)
        except ApprovalError as exc:
            self.problem.set(exc.reason)
            return
        self._answered(f"denied: {reason}")

    def _answered(self, note: str) -> None:
        self.destroy()
        self.app.answered(self.request, note)


def _pretty(arguments: Any, *, indent: int = 2) -> str:
    return msgspec.json.format(msgspec.json.encode(arguments), indent=indent).decode()


def needing_approval(tool: Tool[..., Any]) -> Tool[..., Any]:
    """The same tool, asking before every call (for ``--approve-tools``)."""
    return Tool(tool.func, name=tool.name, description=tool.description, needs_approval=True)


def form_script() -> list[Any]:
    """The offline ``--form`` answer: the contact card's JSON, streamed four characters at a time."""
    from rxllm.providers.scripted import Turn

    pieces = [FORM_ANSWER[i : i + 4] for i in range(0, len(FORM_ANSWER), 4)]
    return [Turn(text=pieces)] * 20  # one answer per prompt sent


def start_loop() -> asyncio.AbstractEventLoop:
    """An asyncio loop running on a daemon thread; ``loop.stop()`` (thread-safe) ends and closes it."""
    loop = asyncio.new_event_loop()

    def run() -> None:
        loop.run_forever()  # until loop.stop()
        loop.close()

    threading.Thread(target=run, name="rxllm-loop", daemon=True).start()
    return loop


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--provider", choices=("openai", "responses", "anthropic"))
    parser.add_argument("--model")
    parser.add_argument("--base-url")
    parser.add_argument("--midstream-retries", type=int, default=0, metavar="N")
    parser.add_argument("--form", action="store_true", help="a structured answer, shown as a form")
    parser.add_argument(
        "--approve-tools", action="store_true", help="offline: the calculator and clock ask before each call"
    )
    args = parser.parse_args(argv)
    loop = start_loop()
    tools: list[Any] = []
    if args.provider is None:
        from rxllm.cli import calculator_tool, clock_tool, demo_script
        from rxllm.providers.scripted import ScriptedServer

        script: Any = form_script() if args.form else demo_script()
        server = ScriptedServer(script, delay=0.05, model="rxllm-demo")
        asyncio.run_coroutine_threadsafe(server.start(), loop).result()
        model: StreamModel = server.provider()
        tools = [] if args.form else [calculator_tool(), clock_tool()]
        if args.approve_tools:
            tools = [needing_approval(tool) for tool in tools]
    else:
        from rxllm.cli import PROVIDERS

        model = PROVIDERS[args.provider](
            args.model, base_url=args.base_url, midstream_retries=args.midstream_retries
        )
    root = tk.Tk()
    app = ChatApp(root, model, loop, tools=tools, output=Contact if args.form else None)
    if args.form:
        app.entry.insert(0, FORM_PROMPT)
    elif args.provider is None:
        app.entry.insert(0, "What is 15% of 240, and what time is it in Tokyo?")
    root.mainloop()


if __name__ == "__main__":
    main()
