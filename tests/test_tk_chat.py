"""examples/tk_chat.py in a real Tk window under Xvfb, against the scripted server: Send, Pause, Cancel."""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rxllm.providers.scripted import Call, Reply, ScriptedServer, Turn

EXAMPLE = Path(__file__).parent.parent / "examples" / "tk_chat.py"


@pytest.fixture(scope="module")
def display() -> Iterator[str]:
    """An Xvfb display of our own; else the session's display; else the test is skipped, saying why."""
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        if os.environ.get("DISPLAY"):
            yield os.environ["DISPLAY"]
            return
        pytest.skip("no display server: Xvfb is not installed (apt-get install xvfb) and DISPLAY is unset")
    read_end, write_end = os.pipe()
    server = subprocess.Popen(
        [xvfb, "-displayfd", str(write_end), "-screen", "0", "800x600x24", "-nolisten", "tcp"],
        pass_fds=(write_end,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_end)
    with os.fdopen(read_end) as announced:
        number = announced.readline().strip()
    try:
        if not number:
            pytest.skip("Xvfb could not start a display")
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(10)


@pytest.fixture(autouse=True)
def collect_tk_garbage() -> Iterator[None]:
    """Free each test's Tk objects on the main thread.

    A Tk variable freed by the cycle collector on another thread (the asyncio
    loop's, in a later test) raises "main thread is not in main loop" there.
    """
    yield
    gc.collect()


@pytest.fixture
def tk_chat(display: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("DISPLAY", display)
    spec = importlib.util.spec_from_file_location("tk_chat", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def drive(app: Any, steps: list[Callable[[], bool]], *, timeout: float = 20.0) -> list[str]:
    """Run Tk's main loop; each step is polled every 10 ms until it returns True, then the next one.

    Returns every distinct content the text widget showed, in order.
    """
    shown: list[str] = []
    pending = list(steps)
    failure: list[str] = []

    def poll() -> None:
        content = app.text.get("1.0", "end-1c")
        if not shown or shown[-1] != content:
            shown.append(content)
        while pending and pending[0]():
            pending.pop(0)
        if pending:
            app.root.after(10, poll)
        else:
            app.root.quit()

    def give_up() -> None:
        failure.append(f"timed out with {len(pending)} steps left; text: {app.text.get('1.0', 'end-1c')!r}")
        app.root.quit()

    app.root.after(10, poll)
    app.root.after(int(timeout * 1000), give_up)
    app.root.mainloop()
    assert not failure, failure[0]
    return shown


def make_app(tk_chat: Any, server: ScriptedServer) -> Any:
    import tkinter

    root = tkinter.Tk()
    return tk_chat.ChatApp(root, server.provider(), tk_chat.start_loop())


def close_app(app: Any) -> None:
    """Destroy the window, close the provider on its loop, stop the loop."""
    app.root.destroy()
    asyncio.run_coroutine_threadsafe(app.agent.model.aclose(), app.loop).result(5)
    app.loop.call_soon_threadsafe(app.loop.stop)


def press_send(app: Any, prompt: str) -> Callable[[], bool]:
    def step() -> bool:
        app.entry.insert(0, prompt)
        app.send_button.invoke()
        return True

    return step


def test_send_streams_tokens_into_the_text_widget(tk_chat: Any) -> None:
    words = ["Hello ", "from ", "the ", "scripted ", "server."]
    with ScriptedServer([Turn(text=words)], delay=0.05) as server:
        app = make_app(tk_chat, server)
        try:
            shown = drive(
                app,
                [press_send(app, "Hi"), lambda: not app.streaming and app.status.get().startswith("done")],
            )
            status = app.status.get()
        finally:
            close_app(app)
    final = "you: Hi\nassistant: Hello from the scripted server.\n"
    assert shown[-1] == final
    streamed = [text for text in shown if text.startswith("you: Hi\nassistant: ")]
    assert "you: Hi\nassistant: Hello from " in streamed, "tokens appear one by one as they stream"
    assert status == "done: 1 turn(s), 15 tokens"
    assert server.requests[0].json["messages"] == [{"role": "user", "content": "Hi"}]


def test_cancel_stops_the_stream_and_closes_the_connection(tk_chat: Any) -> None:
    slow = Reply(Turn(text=["tick "] * 400), delay=0.02)
    with ScriptedServer([slow]) as server:
        app = make_app(tk_chat, server)
        seen: dict[str, Any] = {}

        def cancel_after_two_ticks() -> bool:
            if "tick tick " not in app.text.get("1.0", "end-1c"):
                return False
            app.cancel_button.invoke()
            seen["at_cancel"] = app.text.get("1.0", "end-1c")
            seen["deadline"] = 30
            return True

        def quiet_for_300_ms() -> bool:
            seen["deadline"] -= 1
            return bool(seen["deadline"] <= 0)

        try:
            drive(app, [press_send(app, "Count."), cancel_after_two_ticks, quiet_for_300_ms])
            after = app.text.get("1.0", "end-1c")
            status = app.status.get()
        finally:
            close_app(app)
        assert server.disconnected.wait(5)
    assert seen["at_cancel"].endswith("\n[cancelled]\n")
    assert after == seen["at_cancel"], "nothing arrives after Cancel"
    assert status == "cancelled"


def test_pause_holds_tokens_until_resume(tk_chat: Any) -> None:
    words = [f"w{n} " for n in range(20)]
    with ScriptedServer([Turn(text=words)], delay=0.02) as server:
        app = make_app(tk_chat, server)
        seen: dict[str, Any] = {}

        def pause_after_first_word() -> bool:
            if "w0 " not in app.text.get("1.0", "end-1c"):
                return False
            app.pause_button.invoke()
            seen["paused"] = app.text.get("1.0", "end-1c")
            seen["ticks"] = 30
            return True

        def resume_after_300_ms() -> bool:
            seen["ticks"] -= 1
            if seen["ticks"] > 0:
                return False
            seen["while_paused"] = app.text.get("1.0", "end-1c")
            seen["button"] = app.pause_button.cget("text")
            app.pause_button.invoke()
            return True

        try:
            shown = drive(
                app,
                [press_send(app, "Go."), pause_after_first_word, resume_after_300_ms,
                 lambda: not app.streaming and app.status.get().startswith("done")],
            )  # fmt: skip
        finally:
            close_app(app)
    assert seen["while_paused"] == seen["paused"], "nothing is shown while paused"
    assert seen["button"] == "Resume"
    assert shown[-1] == "you: Go.\nassistant: " + "".join(words) + "\n"


def test_a_stream_reset_replaces_the_partial_answer(tk_chat: Any) -> None:
    import tkinter

    from rxllm.providers.scripted import sse_bytes

    words = ["Half ", "an ", "answer ", "then ", "a ", "drop."]
    partial = sse_bytes(Turn(text=words), "openai")[:4]  # the role chunk and three words, no end
    with ScriptedServer(
        [Reply(partial, delay=0.05), Turn(text=["A ", "whole ", "answer."])], delay=0.05
    ) as server:
        root = tkinter.Tk()
        app = tk_chat.ChatApp(root, server.provider(midstream_retries=1), tk_chat.start_loop())
        try:
            shown = drive(
                app,
                [press_send(app, "Hi"), lambda: not app.streaming and app.status.get().startswith("done")],
            )
        finally:
            close_app(app)
    assert "you: Hi\nassistant: Half an " in shown, "the partial answer was shown"
    assert shown[-1] == (
        "you: Hi\nassistant: \n[retrying: stream ended without its end marker]\nA whole answer.\n"
    )
    assert len(server.requests) == 2


def test_a_retry_before_the_first_event_shows_a_note_then_the_answer(tk_chat: Any) -> None:
    import tkinter

    from rxllm.retry import Backoff

    busy = Reply(status=503, body=b'{"error": {"message": "busy"}}')
    with ScriptedServer([busy, Turn(text=["Hello."])], delay=0.02) as server:
        root = tkinter.Tk()
        model = server.provider(backoff=Backoff(initial=0.2, jitter=0))
        app = tk_chat.ChatApp(root, model, tk_chat.start_loop())
        statuses: list[str] = []

        def note_status() -> bool:
            statuses.append(app.status.get())
            return not app.streaming and app.status.get().startswith("done")

        try:
            shown = drive(app, [press_send(app, "Hi"), note_status])
        finally:
            close_app(app)
    assert "you: Hi\nassistant: [retrying in 0.2 s: HTTP 503]\n" in shown, "shown while it waits"
    assert "retrying (attempt 2)…" in statuses
    assert shown[-1] == "you: Hi\nassistant: [retrying in 0.2 s: HTTP 503]\nHello.\n"
    assert len(server.requests) == 2


def test_an_error_is_shown_from_its_error_info(tk_chat: Any) -> None:
    denied = Reply(status=401, body=b'{"error": {"message": "bad key", "type": "invalid_request_error"}}')
    with ScriptedServer([denied]) as server:
        app = make_app(tk_chat, server)
        try:
            shown = drive(app, [press_send(app, "Hi"), lambda: not app.streaming])
            status = app.status.get()
        finally:
            close_app(app)
    url = f"{server.base_url}/chat/completions"
    assert shown[-1] == (
        "you: Hi\nassistant: \n[error] AuthenticationError: HTTP 401: bad key (type=invalid_request_error)"
        f" [POST {url}]\n"
    )
    assert status == "error: HTTP 401"


def test_form_mode_fills_the_contact_card_in_as_the_json_streams(tk_chat: Any) -> None:
    import tkinter

    with ScriptedServer(tk_chat.form_script()[:1], delay=0.02) as server:
        root = tkinter.Tk()
        app = tk_chat.ChatApp(root, server.provider(), tk_chat.start_loop(), output=tk_chat.Contact)
        forms: list[tuple[str, str]] = []

        def watch_the_form() -> bool:
            seen = (app.form_state.get(), app.form.get("1.0", "end-1c"))
            if not forms or forms[-1] != seen:
                forms.append(seen)
            return not app.streaming and app.status.get().startswith("done")

        try:
            shown = drive(app, [press_send(app, "Who wrote?"), watch_the_form])
        finally:
            close_app(app)
    card = (
        "name: Ada Lovelace\nemail: ada@example.org\ncompany: Analytical Engine Company\n"
        "phone: +44 20 7946 0000\ntopics:\n  - engines\n  - poetry\n  - notes on the engine"
    )
    assert forms[-1] == ("Contact: valid", card)
    filling = [form for state, form in forms if state == "Contact: filling in…"]
    assert len(filling) >= 5, "the card fills in as the JSON streams"
    assert any(
        form.startswith("name: Ada") and "\n" not in form and form != "name: Ada Lovelace" for form in filling
    )
    assert any(
        form.startswith("name: Ada Lovelace\nemail: ada@") and "company" not in form for form in filling
    )
    assert shown[-1] == f"you: Who wrote?\nassistant: {tk_chat.FORM_ANSWER}\n"  # the raw JSON, too
    assert server.requests[0].json["response_format"]["json_schema"]["name"] == "Contact"


# -- the approval dialog ------------------------------------------------------------------------------------


def approval_app(tk_chat: Any, server: ScriptedServer) -> Any:
    import tkinter

    from approval_kit import lookup, pay

    return tk_chat.ChatApp(tkinter.Tk(), server.provider(), tk_chat.start_loop(), tools=[pay, lookup])


def pay_then_done(**arguments: Any) -> list[Turn]:
    """The model asks to pay (over 100: it needs approval) and to look Ada up (it does not); then "Done."."""
    calls = [Call("pay", arguments, id="call_pay"), Call("lookup", {"name": "Ada"}, id="call_lookup")]
    return [Turn(calls=calls), Turn(text=["Done."])]


def results_sent(request: Any) -> list[tuple[str, str]]:
    """The second request's tool calls (their arguments as sent) and the tool results, in call order."""
    assistant = next(m for m in request.json["messages"] if m.get("tool_calls"))
    calls = [(c["function"]["name"], c["function"]["arguments"]) for c in assistant["tool_calls"]]
    results = [(m["tool_call_id"], m["content"]) for m in request.json["messages"] if m["role"] == "tool"]
    return calls + results


def dialog_open(app: Any, seen: dict[str, Any]) -> Callable[[], bool]:
    """Waits for the one dialog; notes what the window showed while it was open."""

    def step() -> bool:
        if not app.dialogs:
            return False
        (seen["dialog"],) = app.dialogs.values()
        seen["text"] = app.text.get("1.0", "end-1c")
        seen["status"] = app.status.get()
        return True

    return step


def test_the_dialog_approves_a_call_and_the_model_gets_its_result(tk_chat: Any) -> None:
    with ScriptedServer(pay_then_done(to="Ada", amount=120)) as server:
        app = approval_app(tk_chat, server)
        seen: dict[str, Any] = {}

        def approve() -> bool:
            dialog = seen["dialog"]
            seen["title"] = dialog.title()
            seen["arguments"] = dialog.arguments.get("1.0", "end-1c")
            seen["requests"] = len(server.requests)
            dialog.approve_button.invoke()
            return True

        try:
            shown = drive(
                app,
                [press_send(app, "Pay Ada."), dialog_open(app, seen), approve,
                 lambda: not app.streaming and app.status.get().startswith("done")],
            )  # fmt: skip
        finally:
            close_app(app)
    assert seen["title"] == "Run pay?"
    assert seen["arguments"] == '{\n  "to": "Ada",\n  "amount": 120\n}'
    assert seen["requests"] == 1, "nothing is requested while the dialog waits"
    assert seen["status"] == "waiting for approval…"
    assert seen["text"].endswith("[approval needed] pay\n"), "results keep call order: the lookup's waits"
    assert shown[-1] == (
        "you: Pay Ada.\nassistant: \n[tool call] pay {'to': 'Ada', 'amount': 120}\n\n"
        "[tool call] lookup {'name': 'Ada'}\n[approval needed] pay\n[approved] pay\n"
        "[result] paid 120 EUR to Ada\n[result] Ada is a mathematician\nDone.\n"
    )
    assert results_sent(server.requests[1]) == [
        ("pay", '{"to":"Ada","amount":120}'),
        ("lookup", '{"name":"Ada"}'),
        ("call_pay", "paid 120 EUR to Ada"),
        ("call_lookup", "Ada is a mathematician"),
    ]
    assert app.dialogs == {}


def test_the_dialog_edits_the_arguments_saying_what_does_not_fit(tk_chat: Any) -> None:
    with ScriptedServer(pay_then_done(to="Ada", amount=120)) as server:
        app = approval_app(tk_chat, server)
        seen: dict[str, Any] = {"problems": []}

        def edit(text: str) -> Callable[[], bool]:
            def step() -> bool:
                dialog = seen["dialog"]
                dialog.arguments.delete("1.0", "end")
                dialog.arguments.insert("1.0", text)
                dialog.approve_button.invoke()
                if app.dialogs:
                    seen["problems"].append(dialog.problem.get())
                return True

            return step

        try:
            shown = drive(
                app,
                [press_send(app, "Pay Ada."), dialog_open(app, seen), edit("{bad"), edit("[1]"),
                 edit('{"to": "Ada", "amount": "many"}'), edit('{"to": "Ada", "amount": 90}'),
                 lambda: not app.streaming and app.status.get().startswith("done")],
            )  # fmt: skip
        finally:
            close_app(app)
    assert seen["problems"] == [
        "not JSON: JSON is malformed: object keys must be strings (byte 1)",
        "the arguments are a JSON object: {...}",
        "the edited arguments do not fit: invalid arguments for tool 'pay': Expected `int`, got `str` - at "
        "`$.amount`; the call still waits for an answer",
    ]
    assert '[approved with {"to": "Ada", "amount": 90}] pay\n[result] paid 90 EUR to Ada\n' in shown[-1]
    assert results_sent(server.requests[1]) == [
        ("pay", '{"to":"Ada","amount":90}'),
        ("lookup", '{"name":"Ada"}'),
        ("call_pay", "paid 90 EUR to Ada"),
        ("call_lookup", "Ada is a mathematician"),
    ]


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("with a reason", "Not this month."),
        ("without one", "The user denied this call."),
        ("by closing the dialog", "The user closed the approval dialog without running the call."),
    ],
)
def test_the_dialog_denies_a_call_and_the_model_reads_the_reason(tk_chat: Any, how: str, reason: str) -> None:
    with ScriptedServer(pay_then_done(to="Ada", amount=120)) as server:
        app = approval_app(tk_chat, server)
        seen: dict[str, Any] = {}

        def deny() -> bool:
            dialog = seen["dialog"]
            if how == "by closing the dialog":
                # What the window manager's close button runs.
                dialog.tk.call(dialog.protocol("WM_DELETE_WINDOW"))
                return True
            if how == "with a reason":
                dialog.reason.insert(0, reason)
            dialog.deny_button.invoke()
            return True

        try:
            shown = drive(
                app,
                [press_send(app, "Pay Ada."), dialog_open(app, seen), deny,
                 lambda: not app.streaming and app.status.get().startswith("done")],
            )  # fmt: skip
        finally:
            close_app(app)
    assert f"[denied: {reason}] pay\n[result] {reason}\n[result] Ada is a mathematician\nDone.\n" in shown[-1]
    assert results_sent(server.requests[1])[2:] == [
        ("call_pay", reason),
        ("call_lookup", "Ada is a mathematician"),
    ]


def test_cancel_closes_the_dialog_and_withdraws_the_call(tk_chat: Any) -> None:
    with ScriptedServer(pay_then_done(to="Ada", amount=120)) as server:
        app = approval_app(tk_chat, server)
        seen: dict[str, Any] = {}

        def cancel() -> bool:
            seen["pending"] = [r.internal_call_id for r in app.approvals.pending]
            app.cancel_button.invoke()
            return True

        try:
            drive(app, [press_send(app, "Pay Ada."), dialog_open(app, seen), cancel])
            dialog = seen["dialog"]
            exists = bool(dialog.winfo_exists())
            status = app.status.get()
        finally:
            close_app(app)
    assert seen["pending"] == [dialog.request.internal_call_id]
    assert not exists and app.dialogs == {}
    assert status == "cancelled"
    assert app.approvals.pending == (), "the disposed run withdrew its call"
    assert len(server.requests) == 1


def test_approve_tools_makes_the_offline_demos_tools_ask(tk_chat: Any) -> None:
    from rxllm.cli import calculator_tool

    calculator = calculator_tool()
    asking = tk_chat.needing_approval(calculator)
    assert (asking.name, asking.description, asking.parameters) == (
        calculator.name,
        calculator.description,
        calculator.parameters,
    )
    assert asking.needs_approval({"expression": "1 + 1"}) and not calculator.needs_approval(
        {"expression": "1"}
    )
