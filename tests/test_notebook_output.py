"""rxllm.notebook: a structured answer shows as a form that fills in as ``PartialOutput`` events arrive."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
import reactivex
from IPython.core.displaypub import CapturingDisplayPublisher
from IPython.core.interactiveshell import InteractiveShell

from rxllm import Agent, Final, Output, PartialOutput, StreamReset, TextDelta
from rxllm.notebook import display_stream
from rxllm.testing import ScriptedModel, Turn


class Person(msgspec.Struct):
    name: str
    fields: list[str]


@pytest.fixture
def published() -> Iterator[list[dict[str, Any]]]:
    shell = InteractiveShell.instance()
    before = shell.display_pub
    capture = CapturingDisplayPublisher()  # type: ignore[no-untyped-call]
    shell.display_pub = capture
    yield capture.outputs
    shell.display_pub = before


ANSWER = ['{"name": "Ada <L>', '", "fields": ["math', '", "engines"]}']


async def test_the_form_fills_in_then_is_marked_valid(published: list[dict[str, Any]]) -> None:
    model = ScriptedModel([Turn(text=ANSWER)])
    view = display_stream(Agent(model, output=Person).stream_prompt("Who?"), min_interval=0)
    await view
    texts = [update["data"]["text/plain"] for update in published[1:]]
    forms = [line for text in texts for line in text.splitlines() if line.startswith("[output")]
    assert list(dict.fromkeys(forms)) == [
        '[output so far] {"name":"Ada <L>"}',
        '[output so far] {"name":"Ada <L>","fields":["math"]}',
        '[output so far] {"name":"Ada <L>","fields":["math","engines"]}',
        '[output: valid Person] {"name":"Ada <L>","fields":["math","engines"]}',
    ]
    assert texts[-1] == (
        '[output: valid Person] {"name":"Ada <L>","fields":["math","engines"]}\n'
        "[1 turn · input 10 · output 5 · total 15 tokens]"
    )
    assert published[-1]["data"]["text/html"] == (
        '<div class="rxllm-stream" style="font-family: var(--jp-content-font-family, sans-serif)">'
        '<details><summary style="opacity: 0.6">JSON</summary>'
        '<pre style="white-space: pre-wrap; opacity: 0.6">'
        "{&quot;name&quot;: &quot;Ada &lt;L&gt;&quot;, "
        "&quot;fields&quot;: [&quot;math&quot;, &quot;engines&quot;]}"
        "</pre></details>"
        '<div class="rxllm-output"><div style="opacity: 0.6">output: ✓ a valid Person</div><table>'
        '<tr><th style="text-align: left; vertical-align: top">name</th>'
        '<td style="text-align: left"><span style="white-space: pre-wrap">Ada &lt;L&gt;</span></td></tr>'
        '<tr><th style="text-align: left; vertical-align: top">fields</th><td style="text-align: left"><ol>'
        '<li><span style="white-space: pre-wrap">math</span></li>'
        '<li><span style="white-space: pre-wrap">engines</span></li></ol></td></tr>'
        "</table></div>"
        '<div style="opacity: 0.6; color: inherit">1 turn · input 10 · output 5 · total 15 tokens</div></div>'
    )


async def test_while_streaming_the_form_says_it_is_filling_in(published: list[dict[str, Any]]) -> None:
    events = [TextDelta(text='{"name": "A'), PartialOutput(value={"name": "A", "fields": []})]
    await display_stream(reactivex.from_iterable(events), min_interval=0)
    first_form = next(u["data"]["text/html"] for u in published if "rxllm-output" in u["data"]["text/html"])
    assert '<div style="opacity: 0.6">output: filling in…</div>' in first_form
    assert "<i>(none)</i>" in first_form


async def test_a_stream_reset_removes_the_discarded_form(published: list[dict[str, Any]]) -> None:
    events = [
        TextDelta(text='{"name": "Bo'),
        PartialOutput(value={"name": "Bo"}),
        StreamReset(attempt=1, reason="connection reset"),
        TextDelta(text='{"name": "Ada", "fields": []}'),
        PartialOutput(value={"name": "Ada", "fields": []}),
        Final(),
        Output(value=Person(name="Ada", fields=[])),
    ]
    view = display_stream(reactivex.from_iterable(events), min_interval=0)
    await view
    assert repr(view) == (
        "[retrying: connection reset]\n"
        '[output: valid Person] {"name":"Ada","fields":[]}\n'
        "[1 turn · usage not reported]"  # its Final reported none
    )
    assert published[-1]["data"]["text/html"].count("rxllm-output") == 1


async def test_a_retried_answer_moves_the_form_under_the_new_json(published: list[dict[str, Any]]) -> None:
    model = ScriptedModel([Turn(text=['{"name": 1}']), Turn(text=['{"name": "Ada", ', '"fields": []}'])])
    view = display_stream(Agent(model, output=Person).stream_prompt("Who?"), min_interval=0)
    await view
    page = published[-1]["data"]["text/html"]
    first, second, form = (
        page.index("{&quot;name&quot;: 1}"),
        page.index("Ada&quot;"),
        page.index("rxllm-output"),
    )
    assert first < second < form and page.count("rxllm-output") == 1 and page.count(">JSON<") == 2
    assert repr(view).splitlines()[0] == '[output: valid Person] {"name":"Ada","fields":[]}'
