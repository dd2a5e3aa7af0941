"""Fault injection end to end: each fault, its documented outcome, the requests the server saw.

Every test checks the exact events delivered, so nothing is lost or duplicated
across retries, and the exact number of requests.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from conftest import Closing, Collected, collect_events
from fault_server import (
    DONE,
    MODEL,
    ROLE,
    FaultServer,
    StartFaultServer,
    Step,
    chat_chunk,
    fault_server,
    in_stream_error,
    text_stream,
)
from reactivex.abc import DisposableBase

from rxllm.errors import (
    AuthenticationError,
    BadRequestError,
    ChunkDecodeError,
    EventTooLargeError,
    InternalServerError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    ProviderError,
    ResponseTooLargeError,
    StreamTimeoutError,
    StreamTruncatedError,
    TransportError,
    UnprocessableEntityError,
)
from rxllm.events import Final, Retrying, TextDelta
from rxllm.messages import Message
from rxllm.providers.openai import OpenAIChat
from rxllm.request import CompletionRequest
from rxllm.response import CompletionResponse
from rxllm.retry import Backoff
from rxllm.timeouts import Timeouts

__all__ = ["fault_server"]

HELLO = CompletionRequest([Message.user("Hello")])
FAST = Backoff(initial=0.01, maximum=0.02, jitter=0)  # waits 0.01 s, then 0.02 s: exact Retrying events
WHOLE = text_stream("Hel", "lo")  # [DONE] and no usage chunk: usage unknown, never zeros
FINAL = Final(finish_reason="stop", response_id="chatcmpl-1", model=MODEL, usage_complete=False)
EVENTS = [TextDelta(text="Hel"), TextDelta(text="lo"), FINAL]
LOST = "connection failed"


def retrying(attempt: int, reason: str, status: int | None = None, *, delay: float | None = None) -> Retrying:
    """The ``Retrying`` before request ``attempt``, waiting as ``FAST`` does (or ``delay``)."""
    wait = delay if delay is not None else min(0.01 * 2 ** (attempt - 2), 0.02)
    return Retrying(attempt=attempt, delay=wait, reason=reason, status=status)


@pytest.fixture
def chat(closing: Closing) -> Callable[..., OpenAIChat]:
    def make(server: FaultServer, **options: Any) -> OpenAIChat:
        options.setdefault("backoff", FAST)
        return closing(OpenAIChat(MODEL, api_key="sk-test", base_url=server.base_url, **options))

    return make


Chat = Callable[..., OpenAIChat]


async def test_drop_before_the_first_byte_then_success(fault_server: StartFaultServer, chat: Chat) -> None:
    server = await fault_server(Step(drop_at_once=True), Step(pieces=WHOLE))
    result = await collect_events(chat(server).stream(HELLO))
    assert (result.events, result.completed) == ([retrying(2, LOST), *EVENTS], True)
    assert server.request_count == 2


async def test_drop_before_the_first_byte_every_time(fault_server: StartFaultServer, chat: Chat) -> None:
    server = await fault_server(Step(drop_at_once=True))
    result = await collect_events(chat(server).stream(HELLO))
    assert result.events == [retrying(2, LOST), retrying(3, LOST)]
    assert isinstance(result.error, TransportError)
    assert str(result.error).startswith("could not reach the server: ")
    assert str(result.error).endswith(f" [POST {server.base_url}/chat/completions]")
    assert server.request_count == 3


async def test_drop_mid_stream_after_content_is_not_retried(
    fault_server: StartFaultServer, chat: Chat
) -> None:
    server = await fault_server(Step(pieces=WHOLE[:2], ending="drop"), Step(pieces=WHOLE))
    result = await collect_events(chat(server).stream(HELLO))
    assert result.events == [TextDelta(text="Hel")]
    assert isinstance(result.error, StreamTruncatedError)
    assert result.error.connection_lost
    url = f"{server.base_url}/chat/completions"
    assert str(result.error) == f"connection dropped mid-stream (ClientPayloadError) [POST {url}]"
    assert result.error.partial == CompletionResponse(text="Hel")
    assert server.request_count == 1


async def test_drop_mid_stream_before_any_event_is_retried(
    fault_server: StartFaultServer, chat: Chat
) -> None:
    # The role chunk gives no user-visible event: nothing was delivered, so a retry duplicates nothing.
    server = await fault_server(Step(pieces=[ROLE, WHOLE[1][:20]], ending="drop"), Step(pieces=WHOLE))
    result = await collect_events(chat(server).stream(HELLO))
    lost = retrying(2, "connection lost before the first event")
    assert (result.events, result.completed) == ([lost, *EVENTS], True)
    assert server.request_count == 2


async def test_429_with_retry_after_then_success(fault_server: StartFaultServer, chat: Chat) -> None:
    limited = Step(
        status=429,
        headers={"content-type": "application/json", "retry-after": "0.3"},
        body=b'{"error": {"message": "Rate limit reached", "type": "requests", '
        b'"code": "rate_limit_exceeded"}}',
    )
    server = await fault_server(limited, Step(pieces=WHOLE))
    started = time.monotonic()
    result = await collect_events(chat(server).stream(HELLO))
    wait = retrying(2, "HTTP 429 (requests), Retry-After 0.3 s", 429, delay=0.3)
    assert (result.events, result.completed) == ([wait, *EVENTS], True)
    assert server.request_count == 2
    assert time.monotonic() - started >= 0.3, "Retry-After is honoured, not the (shorter) backoff"


async def test_429_with_retry_after_ms(fault_server: StartFaultServer, chat: Chat) -> None:
    limited = Step(status=429, headers={"retry-after-ms": "250", "retry-after": "30"}, body=b"slow down")
    server = await fault_server(limited, Step(pieces=WHOLE))
    started = time.monotonic()
    result = await collect_events(chat(server).stream(HELLO))
    wait = retrying(2, "HTTP 429, Retry-After 0.25 s", 429, delay=0.25)
    assert (result.events, result.completed) == ([wait, *EVENTS], True)
    assert server.request_count == 2
    assert time.monotonic() - started >= 0.25


async def test_retry_after_longer_than_the_cap_is_not_retried(
    fault_server: StartFaultServer, chat: Chat
) -> None:
    limited = Step(status=429, headers={"retry-after": "3600"}, body=b"come back tomorrow")
    server = await fault_server(limited, Step(pieces=WHOLE))
    result = await collect_events(chat(server).stream(HELLO))
    assert isinstance(result.error, ProviderError)
    assert (result.error.status, result.error.retry_after, result.error.message) == (
        429,
        3600.0,
        "come back tomorrow",
    )
    assert server.request_count == 1


async def test_503_twice_then_success(fault_server: StartFaultServer, chat: Chat) -> None:
    unavailable = Step(
        status=503, body=b'{"error": {"message": "Service Unavailable", "type": "server_error"}}'
    )
    server = await fault_server(unavailable, unavailable, Step(pieces=WHOLE))
    result = await collect_events(chat(server).stream(HELLO))
    busy = "HTTP 503 (server_error)"
    assert (result.events, result.completed) == (
        [retrying(2, busy, 503), retrying(3, busy, 503), *EVENTS],
        True,
    )
    assert server.request_count == 3


async def test_503_forever(fault_server: StartFaultServer, chat: Chat) -> None:
    server = await fault_server(Step(status=503, body=b'{"error": {"message": "Service Unavailable"}}'))
    result = await collect_events(chat(server).stream(HELLO))
    assert result.events == [retrying(2, "HTTP 503", 503), retrying(3, "HTTP 503", 503)]
    assert type(result.error) is InternalServerError
    assert (result.error.status, result.error.message) == (503, "Service Unavailable")
    assert str(result.error) == f"HTTP 503: Service Unavailable [POST {server.base_url}/chat/completions]"
    assert server.request_count == 3


async def test_max_retries_zero_sends_once(fault_server: StartFaultServer, chat: Chat) -> None:
    server = await fault_server(Step(status=503, body=b"busy"))
    result = await collect_events(chat(server, max_retries=0).stream(HELLO))
    assert isinstance(result.error, ProviderError) and result.error.status == 503
    assert server.request_count == 1


@pytest.mark.parametrize(
    ("status", "body", "message", "type_", "code", "kind"),
    [
        (
            401,
            b'{"error": {"message": "Incorrect API key provided: sk-te**st.", '
            b'"type": "invalid_request_error", "param": null, "code": "invalid_api_key"}}',
            "Incorrect API key provided: sk-te**st.",
            "invalid_request_error",
            "invalid_api_key",
            AuthenticationError,
        ),
        (
            400,
            b'{"error": {"message": "Invalid value for \'temperature\'", '
            b'"type": "invalid_request_error", "param": "temperature", "code": "invalid_value"}}',
            "Invalid value for 'temperature'",
            "invalid_request_error",
            "invalid_value",
            BadRequestError,
        ),
        (
            403,
            b'{"error": {"message": "forbidden", "type": "permission_error"}}',
            "forbidden",
            "permission_error",
            None,
            PermissionDeniedError,
        ),
        (
            404,
            b'{"error": {"message": "no such model", "type": "not_found_error"}}',
            "no such model",
            "not_found_error",
            None,
            NotFoundError,
        ),
        (422, b'{"detail": "unprocessable"}', "unprocessable", None, None, UnprocessableEntityError),
    ],
)
async def test_client_errors_are_never_retried(
    fault_server: StartFaultServer,
    chat: Chat,
    status: int,
    body: bytes,
    message: str,
    type_: str | None,
    code: str | None,
    kind: type[ProviderError],
) -> None:
    server = await fault_server(
        Step(status=status, headers={"content-type": "application/json", "x-request-id": "req_9"}, body=body),
        Step(pieces=WHOLE),
    )
    result = await collect_events(chat(server).stream(HELLO))
    assert result.events == []
    error = result.error
    assert type(error) is kind
    assert isinstance(error, ProviderError)
    assert (error.method, error.url) == ("POST", f"{server.base_url}/chat/completions")
    assert (error.status, error.message, error.type, error.code, error.request_id) == (
        status,
        message,
        type_,
        code,
        "req_9",
    )
    assert server.request_count == 1


async def test_malformed_chunk(fault_server: StartFaultServer, chat: Chat) -> None:
    server = await fault_server(
        Step(pieces=[ROLE, WHOLE[1], b'data: {"choices": [{"delta": \n\n', *WHOLE[2:]])
    )
    result = await collect_events(chat(server).stream(HELLO))
    assert result.events == [TextDelta(text="Hel")]
    assert isinstance(result.error, ChunkDecodeError)
    assert result.error.data == '{"choices": [{"delta": '
    assert server.request_count == 1


async def test_malformed_first_chunk_is_not_retried(fault_server: StartFaultServer, chat: Chat) -> None:
    # Bytes the provider does not document will not improve on a second request.
    server = await fault_server(Step(pieces=[b"data: {oops\n\n", *WHOLE]))
    result = await collect_events(chat(server).stream(HELLO))
    assert result.events == []
    assert isinstance(result.error, ChunkDecodeError)
    assert server.request_count == 1


async def test_stall_longer_than_the_idle_timeout(fault_server: StartFaultServer, chat: Chat) -> None:
    server = await fault_server(Step(pieces=WHOLE[:2], ending="stall", stall=30))
    started = time.monotonic()
    result = await collect_events(chat(server, timeouts=Timeouts(idle=0.3)).stream(HELLO))
    assert result.events == [TextDelta(text="Hel")]
    assert isinstance(result.error, StreamTimeoutError)
    assert (result.error.which, result.error.seconds) == ("idle", 0.3)
    url = f"{server.base_url}/chat/completions"
    assert str(result.error) == f"idle timeout: no progress within 0.3 s [POST {url}]"
    assert result.error.usage is None  # Chat reports usage at the end: nothing was reported yet
    assert time.monotonic() - started >= 0.3
    await asyncio.wait_for(server.all_closed.wait(), 2)  # the timeout closed the connection
    assert server.request_count == 1


async def test_stall_before_any_event_is_a_first_event_timeout(
    fault_server: StartFaultServer, chat: Chat
) -> None:
    server = await fault_server(Step(pieces=[ROLE], ending="stall", stall=30))
    result = await collect_events(chat(server, timeouts=Timeouts(first_event=5, idle=0.2)).stream(HELLO))
    # The role chunk is a server-sent event: the first one arrived, so the idle limit applies.
    assert isinstance(result.error, StreamTimeoutError) and result.error.which == "idle"
    assert result.events == []
    assert server.request_count == 1, "timeouts after the request reached the server are not retried"


async def test_comment_keep_alives_do_not_reset_the_idle_timeout(
    fault_server: StartFaultServer, chat: Chat
) -> None:
    server = await fault_server(Step(pieces=WHOLE[:2], ending="ping", delay=0.02))
    result = await collect_events(chat(server, timeouts=Timeouts(idle=0.3)).stream(HELLO))
    assert result.events == [TextDelta(text="Hel")]
    assert isinstance(result.error, StreamTimeoutError) and result.error.which == "idle"
    await asyncio.wait_for(server.all_closed.wait(), 2)
    assert server.request_count == 1


async def test_one_byte_at_a_time(fault_server: StartFaultServer, chat: Chat) -> None:
    pieces = text_stream("Grüße, ", "你好 🌍", "!")
    server = await fault_server(Step(pieces=pieces, bytewise=True))
    result = await collect_events(chat(server).stream(HELLO))
    assert result.events == [
        TextDelta(text="Grüße, "),
        TextDelta(text="你好 🌍"),
        TextDelta(text="!"),
        FINAL,
    ]
    assert result.completed
    assert server.request_count == 1


async def test_oversized_event(fault_server: StartFaultServer, chat: Chat) -> None:
    big = chat_chunk({"content": "x" * 5000})
    server = await fault_server(Step(pieces=[ROLE, WHOLE[1], big, *WHOLE[2:]]))
    result = await collect_events(chat(server, max_event_size=4096).stream(HELLO))
    assert result.events == [TextDelta(text="Hel")]
    assert isinstance(result.error, EventTooLargeError)
    assert result.error.limit == 4096
    assert server.request_count == 1


async def test_response_over_the_total_size_bound(fault_server: StartFaultServer, chat: Chat) -> None:
    pieces = [ROLE, *(chat_chunk({"content": f"{i:04}"}) for i in range(100)), chat_chunk({}, "stop"), DONE]
    server = await fault_server(Step(pieces=pieces))
    result = await collect_events(chat(server, max_response_size=2000).stream(HELLO))
    assert isinstance(result.error, ResponseTooLargeError)
    assert result.error.limit == 2000
    url = f"{server.base_url}/chat/completions"
    assert str(result.error) == (
        f"the response exceeded 2000 bytes (raise max_response_size to allow it) [POST {url}]"
    )
    texts = [event.text for event in result.events]
    assert texts == [f"{i:04}" for i in range(len(texts))], "what arrived before the bound is kept, in order"
    assert sum(len(piece) for piece in pieces[: len(texts) + 1]) <= 2000
    await asyncio.wait_for(server.all_closed.wait(), 2)
    assert server.request_count == 1


async def test_error_event_mid_stream_is_not_retried(fault_server: StartFaultServer, chat: Chat) -> None:
    error = in_stream_error("Upstream overloaded", "overloaded_error", "529")
    server = await fault_server(Step(pieces=[ROLE, WHOLE[1], error]), Step(pieces=WHOLE))
    result = await collect_events(chat(server).stream(HELLO))
    assert result.events == [TextDelta(text="Hel")]
    assert isinstance(result.error, ProviderError)
    assert (result.error.status, result.error.type, result.error.code, result.error.message) == (
        None,
        "overloaded_error",
        "529",
        "Upstream overloaded",
    )
    assert server.request_count == 1


@pytest.mark.parametrize("type_", ["overloaded_error", "server_error", "api_error"])
async def test_error_event_before_any_event_is_retried(
    fault_server: StartFaultServer, chat: Chat, type_: str
) -> None:
    server = await fault_server(Step(pieces=[ROLE, in_stream_error("try again", type_)]), Step(pieces=WHOLE))
    result = await collect_events(chat(server).stream(HELLO))
    wait = retrying(2, f"{type_} in the stream")
    assert (result.events, result.completed) == ([wait, *EVENTS], True)
    assert server.request_count == 2


async def test_error_event_before_any_event_every_time_keeps_its_type(
    fault_server: StartFaultServer, chat: Chat
) -> None:
    server = await fault_server(Step(pieces=[ROLE, in_stream_error("Overloaded", "overloaded_error")]))
    result = await collect_events(chat(server).stream(HELLO))
    reason = "overloaded_error in the stream"
    assert result.events == [retrying(2, reason), retrying(3, reason)]
    assert type(result.error) is OverloadedError
    assert (result.error.type, result.error.message) == ("overloaded_error", "Overloaded")
    assert server.request_count == 3


async def test_non_transient_error_event_is_not_retried(fault_server: StartFaultServer, chat: Chat) -> None:
    server = await fault_server(Step(pieces=[ROLE, in_stream_error("bad schema", "invalid_request_error")]))
    result = await collect_events(chat(server).stream(HELLO))
    assert isinstance(result.error, ProviderError) and result.error.type == "invalid_request_error"
    assert server.request_count == 1


async def test_slow_first_event_within_the_limit(fault_server: StartFaultServer, chat: Chat) -> None:
    server = await fault_server(Step(pieces=WHOLE, first_delay=0.3))
    result = await collect_events(chat(server, timeouts=Timeouts(first_event=3, idle=0.1)).stream(HELLO))
    assert (result.events, result.completed) == (EVENTS, True)
    assert server.request_count == 1


async def test_slow_first_event_beyond_the_limit(fault_server: StartFaultServer, chat: Chat) -> None:
    server = await fault_server(Step(pieces=WHOLE, first_delay=5))
    result = await collect_events(chat(server, timeouts=Timeouts(first_event=0.3)).stream(HELLO))
    assert result.events == []
    assert isinstance(result.error, StreamTimeoutError)
    assert (result.error.which, result.error.seconds) == ("first_event", 0.3)
    await asyncio.wait_for(server.all_closed.wait(), 2)
    assert server.request_count == 1


async def test_a_clean_end_without_the_end_marker_is_not_retried(
    fault_server: StartFaultServer, chat: Chat
) -> None:
    server = await fault_server(Step(pieces=[ROLE]), Step(pieces=WHOLE))
    result = await collect_events(chat(server).stream(HELLO))
    assert isinstance(result.error, StreamTruncatedError) and not result.error.connection_lost
    assert server.request_count == 1


async def test_disposing_during_the_backoff_sends_nothing_more(
    fault_server: StartFaultServer, chat: Chat
) -> None:
    # The first stream is disposed during its wait; a twin subscribed right then fails the same way and
    # waits as long, so its retry reaching the server (its completion) says the first one's wait has
    # elapsed too: had that one not been cancelled, its retry would have been request 3, before the twin's.
    busy = Step(status=503, body=b"busy")
    server = await fault_server(busy, busy, Step(pieces=WHOLE))
    provider = chat(server, backoff=Backoff(initial=0.05, maximum=0.05, jitter=0))
    loop = asyncio.get_running_loop()
    events: list[Any] = []
    twin: asyncio.Future[asyncio.Task[Collected]] = loop.create_future()
    subscription: list[DisposableBase] = []

    def dispose_and_start_the_twin() -> None:
        subscription[0].dispose()
        twin.set_result(asyncio.ensure_future(collect_events(provider.stream(HELLO))))

    def on_next(event: Any) -> None:
        events.append(event)
        # The Retrying comes before the wait's timer is set; this runs after it is set and, being ready
        # already, before the timer's callback however late the loop gets to it.
        loop.call_soon(dispose_and_start_the_twin)

    subscription.append(
        provider.stream(HELLO).subscribe(on_next, events.append, lambda: events.append("done"))
    )
    result = await (await asyncio.wait_for(twin, 5))
    assert (result.events, result.completed) == ([retrying(2, "HTTP 503", 503, delay=0.05), *EVENTS], True)
    assert events == [retrying(2, "HTTP 503", 503, delay=0.05)]
    assert server.request_count == 3


async def test_529_is_retried_where_the_provider_says_so(fault_server: StartFaultServer) -> None:
    class Overloadable(OpenAIChat):
        retry_statuses = OpenAIChat.retry_statuses | {529}

    overloaded = Step(
        status=529, body=b'{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}'
    )
    server = await fault_server(overloaded, Step(pieces=WHOLE))
    async with Overloadable(MODEL, base_url=server.base_url, backoff=FAST) as provider:
        result = await collect_events(provider.stream(HELLO))
    wait = retrying(2, "HTTP 529 (overloaded_error)", 529)
    assert (result.events, result.completed) == ([wait, *EVENTS], True)
    assert server.request_count == 2

    plain = await fault_server(overloaded, Step(pieces=WHOLE))
    async with OpenAIChat(MODEL, base_url=plain.base_url, backoff=FAST) as provider:
        result = await collect_events(provider.stream(HELLO))
    assert type(result.error) is OverloadedError
    assert (result.error.status, result.error.type, result.error.message) == (
        529,
        "overloaded_error",
        "Overloaded",
    )
    assert plain.request_count == 1
