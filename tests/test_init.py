import importlib
import subprocess
import sys

import rxllm


def test_all_is_sorted_and_every_name_resolves_to_its_module() -> None:
    assert rxllm.__all__ == sorted(rxllm.__all__)
    where = rxllm._WHERE
    assert set(where) == set(rxllm.__all__)
    for name in rxllm.__all__:
        assert getattr(rxllm, name) is vars(importlib.import_module(where[name]))[name], name
    assert "Agent" in dir(rxllm)


def test_an_unknown_name_is_an_attribute_error() -> None:
    try:
        rxllm.NoSuchThing  # noqa: B018
    except AttributeError as error:
        assert str(error) == "module 'rxllm' has no attribute 'NoSuchThing'"
    else:
        raise AssertionError("no AttributeError")


def test_import_rxllm_loads_nothing_else_and_logging_stays_off() -> None:
    code = (
        "import sys, rxllm\n"
        "heavy = ('rxllm', 'aiohttp', 'reactivex', 'loguru')\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(heavy))\n"
        "print(loaded)\n"
        "from loguru import logger\n"
        "seen = []\n"
        "logger.add(seen.append, level='TRACE')\n"
        "from rxllm.providers._openai_responses import OpenAIResponsesDialect\n"
        "OpenAIResponsesDialect().parser().feed('x', '{\"type\": \"no.such.event\"}')\n"
        "print(len(seen))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    loaded, records = done.stdout.splitlines()
    assert loaded == "['rxllm', 'rxllm._lazy', 'rxllm._version']"
    assert records == "0", "rxllm logs nothing until enable_logging()"


def test_the_http_client_is_loaded_by_a_provider_only() -> None:
    # The agent, the operators, the bridges and the SSE decoder need no HTTP client: aiohttp (a third of a
    # second to import) is loaded when a provider is, and rxllm.sse.sse_source still names the source.
    code = (
        "import sys, rxllm\n"
        "import rxllm.operators, rxllm.sse, rxllm.bridges\n"
        "rxllm.Agent, rxllm.iterate, rxllm.run, rxllm.tool, rxllm.enable_tracing\n"
        "print('aiohttp' in sys.modules)\n"
        "from rxllm.sse import sse_source\n"
        "print(sse_source.__module__, 'aiohttp' in sys.modules)\n"
        "from rxllm.providers.openai import OpenAIChat\n"
        "print('aiohttp' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["False", "rxllm.transport._source True", "True"]
