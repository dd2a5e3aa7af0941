"""A prompt longer than the context, against each real server: a typed error, never a quiet end.

llama-server refuses it before streaming (HTTP 400, ``exceed_context_size_error``, on all
three of its APIs). llama-cpp-python's server has already sent 200 and the event-stream
headers when it finds out, and ends the body empty: the error is only in its log.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import Closing, collect_events

from real.endpoints import ENDPOINTS, Endpoint
from real.proxy import RecordingProxy
from real.servers import RunningServer
from rxllm import errors
from rxllm.errors import ProviderError, StreamTruncatedError

TIMEOUT = 60.0
TOO_LONG = "hello " * 5000
"""About 5000 tokens, for a 4096-token context."""
OVERFLOW_LOGGED = "\nValueError: Requested tokens ("
"""How llama-cpp-python's log ends the traceback of an overflow (the reply says nothing)."""
LLAMA_SERVER = [e for e in ENDPOINTS if e.server == "llama_server"]


def overflow_message(tokens: int) -> str:
    return f"request ({tokens} tokens) exceeds the available context size (4096 tokens), try increasing it"


@pytest.mark.parametrize("endpoint", LLAMA_SERVER, ids=lambda e: e.id)
async def test_llama_server_refuses_a_prompt_over_the_context_with_http_400(
    endpoint: Endpoint, llama_server: RunningServer, proxy: Any, closing: Closing
) -> None:
    recording: RecordingProxy = await proxy(llama_server)
    provider = closing(endpoint.provider(recording.origin))
    result = await collect_events(provider.stream(endpoint.request(TOO_LONG, max_tokens=8)), timeout=TIMEOUT)
    assert result.events == []
    error = result.error
    assert isinstance(error, ProviderError)
    (exchange,) = recording.exchanges  # a 400 is not retried
    reported = json.loads(exchange.response_body)["error"]
    assert (error.status, error.message, error.type, error.code) == (
        400,
        overflow_message(reported["n_prompt_tokens"]),
        "exceed_context_size_error",
        "400",
    )
    assert reported["n_ctx"] == 4096


async def test_llama_servers_context_overflow_is_a_bad_request_error(
    llama_server: RunningServer, closing: Closing
) -> None:
    endpoint = LLAMA_SERVER[0]
    provider = closing(endpoint.provider(llama_server.origin))
    result = await collect_events(provider.stream(endpoint.request(TOO_LONG, max_tokens=8)), timeout=TIMEOUT)
    assert type(result.error) is errors.BadRequestError


async def test_llama_cpp_pythons_empty_overflow_body_is_a_truncated_stream(
    llama_cpp_python: RunningServer, proxy: Any, closing: Closing
) -> None:
    (endpoint,) = [e for e in ENDPOINTS if e.server == "llama_cpp_python"]
    recording: RecordingProxy = await proxy(llama_cpp_python)
    provider = closing(endpoint.provider(recording.origin))
    logged = llama_cpp_python.log_text().count(OVERFLOW_LOGGED)
    result = await collect_events(provider.stream(endpoint.request(TOO_LONG, max_tokens=8)), timeout=TIMEOUT)
    exchange = recording.exchanges[0]
    assert (exchange.status, exchange.response_headers["content-type"], exchange.response_body) == (
        200,
        "text/event-stream; charset=utf-8",
        b"",
    )
    assert len(recording.exchanges) == 1
    assert await llama_cpp_python.logged(OVERFLOW_LOGGED, times=logged + 1) == logged + 1
    assert (
        llama_cpp_python.log_text()
        .split(OVERFLOW_LOGGED)[-1]
        .split("\n")[0]
        .endswith(") exceed context window of 4096")
    )
    assert result.events == []
    assert isinstance(result.error, StreamTruncatedError)
    url = f"{recording.origin}/v1/chat/completions"
    assert str(result.error) == (
        f"the openai-chat stream ended before [DONE] (or a finish reason and its usage) [POST {url}]"
    )
