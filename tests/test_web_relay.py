"""examples/web_relay.py: an agent's events as server-sent events, in a headless Chromium and on the wire.

The relay runs on the test's loop against a scripted upstream model server on
127.0.0.1; the browser is Debian's Chromium (``.ci/run`` installs it where
missing), driven over the DevTools protocol (tests/cdp.py).
"""

from __future__ import annotations

import asyncio
import importlib.util
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp import web
from cdp import Browser, chromium

from rxllm import Agent
from rxllm.cli import clock_tool
from rxllm.events import AnyEvent, ErrorInfo, Final, FinalResponse, TextDelta, ToolCall, ToolResult, Usage
from rxllm.providers.openai import OpenAIChat
from rxllm.sse import SseDecoder
from rxllm.testing import Call, Reply, ScriptedServer, Turn, sse_bytes

EXAMPLE = Path(__file__).parent.parent / "examples" / "web_relay.py"
NOW = datetime(2026, 1, 5, 3, 4, tzinfo=UTC)

spec = importlib.util.spec_from_file_location("web_relay", EXAMPLE)
assert spec is not None and spec.loader is not None
relay: Any = importlib.util.module_from_spec(spec)
spec.loader.exec_module(relay)

TOKYO = [
    Turn(reasoning=["The clock ", "knows."], calls=[Call("clock", {"timezone": "Asia/Tokyo"}, id="call_1")]),
    Turn(text=["In Tokyo ", "it is ", "12:04 on Monday."]),
]
SLOW = Reply(Turn(text=["tick "] * 3000), delay=0.01)


async def started(agent: Agent, prompt: str = "") -> tuple[Any, str]:
    runner = await relay.serve(relay.relay_app(agent, prompt=prompt), "127.0.0.1", 0)
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"


async def messages(response: aiohttp.ClientResponse) -> list[tuple[str | None, Any]]:
    """The SSE messages of a reply: (id, decoded event), read with rxllm's own decoder."""
    decoder = SseDecoder()
    events = []
    async for piece in response.content.iter_any():
        events += decoder.feed(piece)
    events += decoder.finish()
    return [(event.id, msgspec.json.decode(event.data, type=AnyEvent)) for event in events]


# -- on the wire ----------------------------------------------------------------------------------------


async def test_each_event_is_one_json_message_and_the_final_response_comes_without_history() -> None:
    async with ScriptedServer(TOKYO) as upstream, upstream.provider() as model:
        runner, url = await started(Agent(model, tools=[clock_tool(lambda: NOW)]))
        async with aiohttp.ClientSession() as client, client.get(f"{url}/chat?prompt=Tokyo%3F") as response:
            assert response.headers["Content-Type"] == "text/event-stream"
            got = await messages(response)
        await runner.cleanup()
    assert [number for number, _ in got] == [str(n) for n in range(1, len(got) + 1)]
    events = [event for _, event in got]
    call = next(event for event in events if isinstance(event, ToolCall))
    assert (call.name, call.arguments) == ("clock", {"timezone": "Asia/Tokyo"})
    result = next(event for event in events if isinstance(event, ToolResult))
    assert (result.name, result.content, result.internal_call_id) == (
        "clock",
        "12:04 on Monday (JST)",
        call.internal_call_id,
    )
    assert (
        "".join(event.text for event in events if isinstance(event, TextDelta))
        == "In Tokyo it is 12:04 on Monday."
    )
    assert sum(isinstance(event, Final) for event in events) == 2
    final = events[-1]
    usage = Usage(input_tokens=20, output_tokens=10, total_tokens=30)
    assert final == FinalResponse(text="In Tokyo it is 12:04 on Monday.", usage=usage, history=(), turns=2)
    assert upstream.requests[0].json["messages"] == [{"role": "user", "content": "Tokyo?"}]


async def test_a_failure_is_the_last_message_as_error_info() -> None:
    body = b'{"error": {"message": "The model `m9` does not exist", "type": "invalid_request_error"}}'
    async with ScriptedServer([Reply(status=404, body=body)]) as upstream, upstream.provider() as model:
        runner, url = await started(Agent(model))
        async with aiohttp.ClientSession() as client, client.get(f"{url}/chat?prompt=Hi") as response:
            got = await messages(response)
        await runner.cleanup()
    endpoint = f"{upstream.base_url}/chat/completions"
    assert got == [
        (
            "1",
            ErrorInfo(
                error_type="NotFoundError",
                message="HTTP 404: The model `m9` does not exist (type=invalid_request_error)"
                f" [POST {endpoint}]",
                status=404,
                provider_type="invalid_request_error",
            ),
        )
    ]


async def test_a_reconnecting_event_source_gets_204_and_the_prompt_is_not_sent_again() -> None:
    async with ScriptedServer(TOKYO) as upstream, upstream.provider() as model:
        runner, url = await started(Agent(model))
        async with aiohttp.ClientSession() as client:
            headers = {"Last-Event-ID": "7"}
            async with client.get(f"{url}/chat?prompt=Hi", headers=headers) as response:
                assert response.status == 204
        await runner.cleanup()
    assert upstream.requests == []


async def test_a_client_that_goes_away_closes_the_connection_to_the_model() -> None:
    async with ScriptedServer([SLOW]) as upstream, upstream.provider() as model:
        runner, url = await started(Agent(model))
        async with aiohttp.ClientSession() as client, client.get(f"{url}/chat?prompt=Count") as response:
            first = await response.content.readuntil(b"\n\n")
            assert b'"type":"text_delta"' in first
        # The client closed its connection: the relay's handler is cancelled, the stream disposed.
        assert await asyncio.to_thread(upstream.disconnected.wait, 10)
        await runner.cleanup()


async def test_a_client_that_goes_away_while_the_model_is_silent_still_closes_its_connection() -> None:
    # The model sent a piece and thinks on: no write to the client fails, so only the relay's handler
    # being cancelled (handler_cancellation=True) can notice the client left.
    gone = asyncio.Event()

    async def thinking(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        for piece in sse_bytes(Turn(text=["Hm", "..."]))[:2]:  # the role chunk, "Hm"
            await response.write(piece)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            gone.set()  # the relay closed the connection
            raise
        return response

    upstream = web.Application()
    upstream.router.add_post("/{tail:.*}", thinking)
    model_runner = web.AppRunner(upstream, handler_cancellation=True)
    await model_runner.setup()
    await web.TCPSite(model_runner, "127.0.0.1", 0).start()
    host, port = model_runner.addresses[0][:2]
    async with OpenAIChat("m", base_url=f"http://{host}:{port}/v1", api_key="") as model:
        runner, url = await started(Agent(model))
        async with aiohttp.ClientSession() as client, client.get(f"{url}/chat?prompt=Think") as response:
            first = await response.content.readuntil(b"\n\n")
            assert first == b'id: 1\ndata: {"type":"text_delta","text":"Hm"}\n\n'
        await asyncio.wait_for(gone.wait(), 10)
        await runner.cleanup()
    await model_runner.cleanup()


# -- in a browser ---------------------------------------------------------------------------------------


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Browser]:
    executable = chromium()
    if executable is None:
        pytest.skip("no Chromium: apt-get install chromium (.ci/run installs it)")
    started_browser = await Browser.start(executable, tmp_path / "profile")
    yield started_browser
    await started_browser.close()


SHOWN = """({
    state: document.body.dataset.state,
    you: [...document.querySelectorAll('.you')].map(e => e.textContent),
    reasoning: [...document.querySelectorAll('.run')].at(-1).querySelector('.reasoning')?.textContent,
    tools: [...[...document.querySelectorAll('.run')].at(-1).querySelectorAll('.tool')].map(
        e => [e.querySelector('.name').textContent, e.querySelector('.arguments').textContent,
              e.querySelector('.result')?.textContent]),
    text: [...[...document.querySelectorAll('.run')].at(-1).querySelectorAll('.text')].map(
        e => e.textContent),
    status: document.getElementById('status').textContent,
})"""

# Every EventSource the page makes, kept for the test to look at.
KEEP_EVENT_SOURCES = """(() => {
    const Made = window.EventSource;
    window.eventSources = [];
    window.EventSource = function (url) { const made = new Made(url); eventSources.push(made); return made; };
    Object.assign(window.EventSource, {CONNECTING: 0, OPEN: 1, CLOSED: 2});
})()"""


async def test_the_page_streams_the_run_and_stop_or_leaving_closes_the_model_connection(
    browser: Browser, tmp_path: Path
) -> None:
    async with ScriptedServer([*TOKYO, SLOW, SLOW], delay=0.02) as upstream, upstream.provider() as model:
        runner, url = await started(
            Agent(model, tools=[clock_tool(lambda: NOW)]), prompt="What time is it in Tokyo?"
        )
        page = await browser.new_page()
        await page.goto(f"{url}/")
        await page.evaluate(KEEP_EVENT_SOURCES)
        await page.evaluate("document.getElementById('send').click()")
        # Live: the reasoning shows before the run is over.
        await page.wait_for("document.querySelector('.reasoning')?.textContent === 'The clock knows.'")
        assert await page.evaluate("document.body.dataset.state") == "streaming"
        await page.wait_for("document.body.dataset.state === 'done'")
        assert await page.evaluate(SHOWN) == {
            "state": "done",
            "you": ["What time is it in Tokyo?"],
            "reasoning": "The clock knows.",
            "tools": [["clock", ' {"timezone":"Asia/Tokyo"}', "→ 12:04 on Monday (JST)"]],
            "text": ["In Tokyo it is 12:04 on Monday."],
            "status": "2 turns · input 20 · output 10 · total 30 tokens",
        }
        # The page closed its EventSource after the final event: it will not reconnect and ask again.
        assert await page.evaluate("eventSources.map(s => s.readyState)") == [2]  # EventSource.CLOSED
        await page.screenshot(tmp_path / "relay.png")
        assert (tmp_path / "relay.png").read_bytes().startswith(b"\x89PNG")

        # Stop mid-answer closes the connection to the model.
        await page.evaluate("document.getElementById('prompt').value = 'Count.'")
        await page.evaluate("document.getElementById('send').click()")
        await page.wait_for(
            "[...document.querySelectorAll('.run')].at(-1).textContent.startsWith('tick tick')"
        )
        await page.evaluate("document.getElementById('stop').click()")
        assert await asyncio.to_thread(upstream.disconnected.wait, 10), (
            "Stop left the model's connection open"
        )
        assert await page.evaluate("document.body.dataset.state") == "stopped"
        await page.screenshot(tmp_path / "stopped.png")

        # Leaving the page mid-answer does the same.
        upstream.disconnected.clear()
        await page.evaluate("document.getElementById('prompt').value = 'Count again.'")
        await page.evaluate("document.getElementById('send').click()")
        await page.wait_for(
            "[...document.querySelectorAll('.run')].at(-1).textContent.startsWith('tick tick')"
        )
        await page.goto("about:blank")
        assert await asyncio.to_thread(upstream.disconnected.wait, 10), (
            "leaving left the model's connection open"
        )
        await runner.cleanup()
    assert len(upstream.requests) == 4  # two turns, then one request for each later prompt: none sent twice


def test_the_readmes_relay_handler_is_the_examples() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### Relaying events to a browser") :]
    (shown,) = [code for code in re.findall(r"```python\n(.*?)```", section[: section.index("\n## ")], re.S)]
    assert shown in EXAMPLE.read_text(encoding="utf-8")
