"""rxllm.notebook: live IPython display updates of a stream, and the events table."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, cast

import pytest
import reactivex
from IPython.core.displaypub import CapturingDisplayPublisher
from IPython.core.interactiveshell import InteractiveShell

from rxllm import (
    Agent,
    CompletionRequest,
    Message,
    ProviderError,
    Retrying,
    StreamReset,
    TextDelta,
    ToolCallDelta,
    Usage,
    price,
    tool,
)
from rxllm.notebook import display_stream, events_table
from rxllm.providers.openai import OpenAIChat
from rxllm.testing import Call, ScriptedModel, Turn


@tool
def clock(tz: str) -> str:
    """The time in a time zone."""
    return f"12:00 in {tz}"


@pytest.fixture
def published() -> Iterator[list[dict[str, Any]]]:
    """What IPython's display machinery publishes, captured as a kernel would send it."""
    shell = InteractiveShell.instance()
    before = shell.display_pub
    capture = CapturingDisplayPublisher()  # type: ignore[no-untyped-call]
    shell.display_pub = capture
    yield capture.outputs
    shell.display_pub = before


def agent_run() -> Any:
    model = ScriptedModel(
        [
            Turn(reasoning=["Think <b>."], calls=[Call("clock", {"tz": "UTC"})]),
            Turn(text=["It is ", "noon."]),
        ]
    )
    return Agent(model, tools=[clock]).stream_prompt("Time?")


HTML_END = (
    '<div class="rxllm-stream" style="font-family: var(--jp-content-font-family, sans-serif)">'
    '<details><summary style="opacity: 0.6">reasoning</summary>'
    '<div style="white-space: pre-wrap; opacity: 0.6">Think &lt;b&gt;.</div></details>'
    "<details><summary>🔧 <code>clock({&quot;tz&quot;:&quot;UTC&quot;})</code> → <span>12:00 in UTC</span>"
    '</summary><pre style="white-space: pre-wrap">12:00 in UTC</pre></details>'
    '<div style="white-space: pre-wrap">It is noon.</div>'
    '<div style="opacity: 0.6; color: inherit">2 turns · input 20 · output 10 · total 30 tokens</div></div>'
)


async def test_the_view_updates_one_display_live_and_ends_with_the_whole_run(
    published: list[dict[str, Any]],
) -> None:
    view = display_stream(agent_run(), min_interval=0)
    events = await view
    assert events == view.events and view.done and view.error is None
    first, *updates = published
    display_id = first["transient"]["display_id"]
    assert first["update"] is False
    assert first["data"]["text/plain"] == "[streaming…]"
    assert all(update["update"] and update["transient"] == {"display_id": display_id} for update in updates)
    assert len(updates) == len(events) + 1  # one per event, one at the end
    texts = [update["data"]["text/plain"] for update in updates]
    assert texts[0] == "[reasoning, 10 characters]\n[streaming…]"
    assert '[tool call] clock {"tz":"UTC"}\n[streaming…]' in "\n".join(texts)
    assert texts[-1] == (
        "[reasoning, 10 characters]\n"
        '[tool call] clock {"tz":"UTC"} → 12:00 in UTC\n'
        "It is noon.\n"
        "[2 turns · input 20 · output 10 · total 30 tokens]"
    )
    assert updates[-1]["data"]["text/html"] == HTML_END


async def test_updates_are_throttled_to_min_interval(published: list[dict[str, Any]]) -> None:
    events = await display_stream(agent_run(), min_interval=60)
    assert len(events) > 5
    assert [output["update"] for output in published] == [False, True]  # shown, then the end


async def test_an_error_shows_in_the_view_and_is_raised_by_await(published: list[dict[str, Any]]) -> None:
    error = ProviderError("Overloaded", status=529)
    view = display_stream(reactivex.concat(reactivex.of(TextDelta(text="Hi")), reactivex.throw(error)))
    with pytest.raises(ProviderError):
        await view
    assert view.error is error
    assert published[-1]["data"]["text/plain"] == "Hi\n[error: ProviderError: HTTP 529: Overloaded]"
    assert (
        '<div style="opacity: 0.6; color: #b00">error: ProviderError: HTTP 529: Overloaded</div>'
        in (published[-1]["data"]["text/html"])
    )


async def test_dispose_cancels_the_stream(published: list[dict[str, Any]]) -> None:
    disposed = asyncio.Event()
    source = reactivex.concat(reactivex.of(TextDelta(text="Hi")), reactivex.never()).pipe(
        reactivex.operators.finally_action(disposed.set)
    )
    view = display_stream(source, min_interval=0)
    view.dispose()
    assert disposed.is_set() and view.done
    assert await view == [TextDelta(text="Hi")]
    assert published[-1]["data"]["text/plain"] == "Hi\n[cancelled]"


def test_events_table_lists_each_event_with_its_fields() -> None:
    table = events_table([TextDelta(text="a<b")])
    assert table.data == (
        '<table><tr><th>#</th><th>type</th><th style="text-align: left">fields</th></tr>'
        '<tr><td>0</td><td><code>text_delta</code></td><td style="text-align: left"><code>text=a&lt;b</code>'
        "</td></tr></table>"
    )


async def test_a_stream_reset_replaces_the_turns_output_with_a_note(published: list[dict[str, Any]]) -> None:
    reset = StreamReset(attempt=2, reason="connection lost mid-stream")
    model = ScriptedModel(
        [
            Turn(calls=[Call("clock", {"tz": "UTC"})]),
            [
                TextDelta(text="It is mid"),
                ToolCallDelta(id="c9", internal_call_id="rx_9", name="clock", arguments_delta='{"tz": "Pa'),
                reset,
                TextDelta(text="It is noon."),
            ],
        ]
    )
    view = display_stream(Agent(model, tools=[clock]).stream_prompt("Time?"), min_interval=0)
    events = await view
    assert reset in events
    texts = [output["data"]["text/plain"] for output in published]
    shown = '[tool call] clock {"tz":"UTC"} → 12:00 in UTC\nIt is mid\n[tool call] clock {"tz": "Pa\n'
    assert texts[texts.index(shown + "[streaming…]") + 1] == (
        '[tool call] clock {"tz":"UTC"} → 12:00 in UTC\n[retrying: connection lost mid-stream]\n[streaming…]'
    ), "the discarded attempt is shown until the reset, which removes it"
    assert texts[-1] == (
        '[tool call] clock {"tz":"UTC"} → 12:00 in UTC\n'
        "[retrying: connection lost mid-stream]\n"
        "It is noon.\n"
        # The scripted second turn is events with no usage: unknown, and the status says so.
        "[2 turns · input 10 · output 5 · total 15 tokens (incomplete: a request reported no usage)]"
    )
    assert (
        '<div style="opacity: 0.6; color: #a60">↻ retrying: connection lost mid-stream</div>'
        '<div style="white-space: pre-wrap">It is noon.</div>'
    ) in published[-1]["data"]["text/html"]


async def test_a_retry_before_the_first_event_shows_as_a_note(published: list[dict[str, Any]]) -> None:
    retrying = Retrying(attempt=2, delay=0.5, reason="HTTP 503", status=503)
    model = ScriptedModel([[retrying, TextDelta(text="Hi.")]])
    view = display_stream(Agent(model).stream_prompt("Hello"), min_interval=0)
    events = await view
    assert events[0] == retrying
    texts = [output["data"]["text/plain"] for output in published]
    assert texts[1] == "[retrying in 0.5 s: HTTP 503]\n[streaming…]", "shown as soon as it arrives"
    assert texts[-1] == (
        "[retrying in 0.5 s: HTTP 503]\nHi.\n[1 turn · input 0 · output 0 · total 0 tokens"
        " (incomplete: a request reported no usage)]"
    )
    assert (
        '<div style="opacity: 0.6; color: #a60">↻ retrying in 0.5 s: HTTP 503</div>'
        in (published[-1]["data"]["text/html"])
    )


async def test_a_stream_whose_usage_was_not_reported_says_so(published: list[dict[str, Any]]) -> None:
    model = ScriptedModel([Turn(text=["Hi."], usage=None)])
    view = display_stream(model.stream(CompletionRequest([Message.user("Hello")])), min_interval=0)
    await view
    assert published[-1]["data"]["text/plain"] == "Hi.\n[1 turn · usage not reported]"


async def test_given_the_provider_the_status_line_ends_with_the_runs_cost(
    published: list[dict[str, Any]],
) -> None:
    provider = OpenAIChat("gpt-4o", api_key="sk-test")  # priced as OpenAI's; the run itself is scripted
    view = display_stream(agent_run(), min_interval=0, provider=provider)
    await view
    cost = price(Usage(input_tokens=20, output_tokens=10, total_tokens=30), model="gpt-4o", provider="openai")
    assert cost is not None and cost.amount == Decimal("0.00015")
    assert published[-1]["data"]["text/plain"].endswith(
        f"[2 turns · input 20 · output 10 · total 30 tokens · cost {cost}]"
    )
    local = OpenAIChat("gpt-4o", base_url="http://127.0.0.1:11434/v1")
    unpriced = display_stream(agent_run(), min_interval=0, provider=local)
    await unpriced
    assert published[-1]["data"]["text/plain"].endswith("[2 turns · input 20 · output 10 · total 30 tokens]")


async def test_values_that_are_not_events_show_by_their_repr(published: list[dict[str, Any]]) -> None:
    # A user's own Observable after a scan: the characters streamed so far, then a tuple.
    counts = agent_run().pipe(
        reactivex.operators.filter(lambda event: isinstance(event, TextDelta)),
        reactivex.operators.scan(lambda total, event: total + len(cast(TextDelta, event).text), 0),
    )
    view = display_stream(reactivex.concat(counts, reactivex.of(("done", "<ok>"))), min_interval=0)
    assert await view == [6, 11, ("done", "<ok>")]
    texts = [output["data"]["text/plain"] for output in published]
    assert texts == [
        "[streaming…]",
        "6\n[streaming…]",
        "6\n11\n[streaming…]",
        "6\n11\n('done', '<ok>')\n[streaming…]",
        "6\n11\n('done', '<ok>')",
    ]
    assert published[-1]["data"]["text/html"] == (
        '<div class="rxllm-stream" style="font-family: var(--jp-content-font-family, sans-serif)">'
        '<pre class="rxllm-values" style="white-space: pre-wrap">'
        "6\n11\n(&#x27;done&#x27;, &#x27;&lt;ok&gt;&#x27;)</pre>"
        "</div>"
    )
