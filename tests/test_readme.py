"""The README's first two examples run as written, pointed at a scripted server on 127.0.0.1."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import rxllm
from rxllm.testing import Call, ScriptedServer, Turn

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
EXAMPLES = re.findall(r"```python\n(.*?)```", README, re.S)


def test_streaming_from_an_openai_compatible_server(capsys: pytest.CaptureFixture[str]) -> None:
    local = 'OpenAIChat("llama3.2", base_url="http://localhost:11434/v1")'
    assert local in EXAMPLES[0]
    with ScriptedServer([Turn(text=["Rivers ", "run ", "to the sea."])]) as server:
        code = EXAMPLES[0].replace(local, f'OpenAIChat("llama3.2", base_url={server.base_url!r})')
        exec(compile(code, "README example 1", "exec"), {"__name__": "readme"})
    assert capsys.readouterr().out == "Rivers run to the sea."
    assert server.requests[0].json["messages"] == [{"role": "user", "content": "Write a haiku about rivers."}]


def test_an_agent_in_ten_lines(capsys: pytest.CaptureFixture[str]) -> None:
    remote = 'OpenAIChat("gpt-4o-mini")'
    assert remote in EXAMPLES[1]
    script = [Turn(calls=[Call("add", {"a": 2.5, "b": 4})]), Turn(text=["2.5 + 4 = ", "6.5"])]
    with ScriptedServer(script) as server:
        code = EXAMPLES[1].replace(remote, f'OpenAIChat("gpt-4o-mini", base_url={server.base_url!r})')
        exec(compile(code, "README example 2", "exec"), {"__name__": "readme"})
    assert capsys.readouterr().out == "2.5 + 4 = 6.5"
    tool_message = server.requests[1].json["messages"][-1]
    assert (tool_message["role"], tool_message["content"]) == ("tool", "6.5")


def test_the_tracing_example_prints_the_spans_it_shows(capsys: pytest.CaptureFixture[str]) -> None:
    (example,) = [code for code in EXAMPLES if "rxllm.enable_tracing(" in code]
    shown = re.search(r"prints the spans as they end.*?```text\n(.*?)```", README, re.S)
    assert shown is not None
    remote = 'OpenAIChat("gpt-4o-mini")'
    assert remote in example
    script = [Turn(calls=[Call("add", {"a": 2.5, "b": 4})]), Turn(text=["6.5"])]
    try:
        with ScriptedServer(script, model="gpt-4o-mini") as server:
            code = example.replace(remote, f'OpenAIChat("gpt-4o-mini", base_url={server.base_url!r})')
            exec(compile(code, "README tracing example", "exec"), {"__name__": "readme"})
    finally:
        rxllm.disable_tracing()
    assert capsys.readouterr().out == shown.group(1)


def test_structured_output_fills_in_as_the_readme_shows(capsys: pytest.CaptureFixture[str]) -> None:
    (example,) = [code for code in EXAMPLES if "output=Contact" in code]
    section = README[README.index("## Structured output, streamed") :]
    shown = re.search(r"prints\n\n```\n(.*?)```", section, re.S)
    assert shown is not None
    exec(compile(example, "README structured output", "exec"), {"__name__": "readme"})
    assert capsys.readouterr().out == shown.group(1)
