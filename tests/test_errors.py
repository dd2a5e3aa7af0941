"""The error classes: SDK-named ProviderError subclasses, the request an error names, usage on errors."""

from __future__ import annotations

import pytest

from rxllm.errors import (
    AuthenticationError,
    BadRequestError,
    ChunkDecodeError,
    ConflictError,
    InternalServerError,
    MaxTurnsError,
    NotEventStreamError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    PromptCancelledError,
    ProviderError,
    RateLimitError,
    RxLLMError,
    StreamTimeoutError,
    StreamTruncatedError,
    UnprocessableEntityError,
)
from rxllm.events import Usage
from rxllm.messages import Message
from rxllm.transport._http import name_request

URL = "https://api.anthropic.com/v1/v1/messages"


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, ConflictError),
        (422, UnprocessableEntityError),
        (429, RateLimitError),
        (500, InternalServerError),
        (502, InternalServerError),
        (503, InternalServerError),
        (504, InternalServerError),
        (529, OverloadedError),
        (408, ProviderError),
        (413, ProviderError),
    ],
)
def test_an_http_error_is_classed_by_its_status(status: int, kind: type[ProviderError]) -> None:
    # The status decides, whatever the body's type says (as the official SDKs do).
    error = ProviderError.create("no", status=status, type="overloaded_error")
    assert type(error) is kind
    assert (error.status, error.type, error.message) == (status, "overloaded_error", "no")


def test_every_subclass_keeps_what_provider_error_has() -> None:
    usage = Usage(input_tokens=3)
    error = ProviderError.create(
        "slow down",
        status=429,
        type="rate_limit_error",
        code="rate",
        request_id="req_1",
        body=None,
        retry_after=2.5,
        usage=usage,
        method="POST",
        url=URL,
    )
    assert (
        isinstance(error, RateLimitError)
        and isinstance(error, ProviderError)
        and isinstance(error, RxLLMError)
    )
    assert (error.status, error.type, error.code, error.request_id, error.retry_after, error.usage) == (
        429,
        "rate_limit_error",
        "rate",
        "req_1",
        2.5,
        usage,
    )
    assert (
        str(error)
        == f"HTTP 429: slow down (type=rate_limit_error, code=rate) [request id req_1] [POST {URL}]"
    )


def test_the_message_format_without_a_request_is_as_it_was() -> None:
    assert (
        str(ProviderError("Overloaded", type="overloaded_error"))
        == "error in stream: Overloaded (type=overloaded_error)"
    )
    assert str(ProviderError("no", status=401, request_id="r")) == "HTTP 401: no [request id r]"


def test_name_request_names_any_rxllm_error_once() -> None:
    timeout = StreamTimeoutError("idle", 30)
    name_request(timeout, "POST", URL)
    name_request(timeout, "POST", "https://elsewhere/")
    assert (timeout.method, timeout.url) == ("POST", URL)
    assert str(timeout) == f"idle timeout: no progress within 30 s [POST {URL}]"
    provider = ProviderError("Not Found", status=404, type="not_found_error")
    name_request(provider, "POST", URL)
    assert str(provider) == f"HTTP 404: Not Found (type=not_found_error) [POST {URL}]"
    plain = ValueError("not ours")
    name_request(plain, "POST", URL)
    assert str(plain) == "not ours"


def test_a_long_body_that_is_no_event_stream_is_shown_cut_short() -> None:
    body = b"<html>" + b"x" * 300
    error = NotEventStreamError("text/html", body, method="POST", url=URL)
    assert error.first_bytes == body[:200]
    assert (
        str(error)
        == f"expected an event stream (text/event-stream), got text/html: {body[:200]!r}... [POST {URL}]"
    )
    empty = NotEventStreamError("", b"")
    assert (
        str(empty) == "expected an event stream (text/event-stream), got no content type with an empty body"
    )


def test_errors_carry_usage() -> None:
    usage = Usage(input_tokens=5, output_tokens=1, total_tokens=6)
    history = [Message.user("hi")]
    assert MaxTurnsError(2, history, usage=usage).usage == usage
    assert PromptCancelledError("stop", history, usage=usage).usage == usage
    assert StreamTruncatedError("cut", usage=usage).usage == usage
    assert StreamTimeoutError("total", 5, usage=usage).usage == usage
    # Unknown by default, on every rxllm error.
    assert MaxTurnsError(2, history).usage is None
    assert ChunkDecodeError("bad", "{").usage is None
    assert (ChunkDecodeError("bad", "{").method, ChunkDecodeError("bad", "{").url) == (None, None)
    assert StreamTruncatedError("cut").partial is None
