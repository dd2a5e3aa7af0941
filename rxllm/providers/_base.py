"""What every provider shares: the HTTP client, headers, and ``stream()`` assembling the pipe.

::

    attempt = http_events(POST body, decoder=TurnDecoder(dialect))    (first_event and idle kept per piece)
    stream(request) = accounted(attempt ─► retry_turn(policy) ─► total_timeout(total))
                ─► pause_gate(control)                                (the gate only with pause=...)

``TurnDecoder`` (``rxllm.providers._turn``) is the turn's decoding in one step:
what ``sse_source``, ``parse_chunk``, ``accumulate_tool_calls`` and
``dedupe_final`` do, called in one loop per piece read by the task that reads
the socket, so a turn's events reach the retries with no operator between.

A retry re-subscribes ``attempt``, which sends the request anew with fresh
parser and accumulator state. With ``midstream_retries=0`` (the default) it
happens only while ``attempt`` has emitted nothing, so no event is ever
delivered twice, and each is announced by a ``Retrying`` event. With
``midstream_retries=n`` a turn whose stream broke is also sent again, up to
``n`` times, after a ``StreamReset`` that tells observers to discard what it
delivered.

``accounted`` and each attempt's decoder keep the turn's accounts: the usage
each discarded attempt reported is added to the turn's ``Final``, and the error
that ends a turn carries the usage reported so far, the request's method and
URL and, when the stream was cut, the partial response.

The retries depend only on the provider's settings: made once per provider,
not per turn; subscribed, the stages fuse (``rxllm.transport._fusion``).

A provider subclass says where to POST, which headers carry the key, how a
``CompletionRequest`` becomes the body, and which dialect reads the reply.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import aiohttp
import msgspec
from reactivex import Observable

from rxllm import _log, tracing
from rxllm._version import __version__
from rxllm.control import PauseControl
from rxllm.events import AssistantEvent
from rxllm.operators import pause_gate
from rxllm.providers._logged import logged
from rxllm.providers._turn import Accounts, accounted
from rxllm.request import CompletionRequest
from rxllm.transport._http import HttpClient, refuse_plain_http, safe_url
from rxllm.transport._source import http_events
from rxllm.transport.retry import (
    RETRY_ERROR_TYPES,
    RETRY_STATUSES,
    Backoff,
    Retry,
    RetryPolicy,
    retry_turn,
)
from rxllm.transport.sse import DEFAULT_MAX_EVENT_SIZE, DEFAULT_MAX_RESPONSE_SIZE
from rxllm.transport.timeouts import Timeouts, total_timeout
from rxllm.typing import Dialect

__all__ = ["Provider"]

_encoder = msgspec.json.Encoder()


class Provider:
    """Base of the providers: one model on one server, streamed as Observables.

    ``api_key`` and ``base_url`` default to the environment variables a subclass
    names. The key lives in request headers only: never in ``repr()``, logs or
    error messages.

    ``max_retries`` (2) bounds the retries before a turn's first event;
    ``midstream_retries`` (0: off) the resends of a turn whose stream broke
    after the server accepted it (see ``stream`` and ``rxllm.retry``).
    """

    api_key_env: str = ""
    base_url_env: str = ""
    default_base_url: str = ""
    dialect: Dialect
    retry_statuses: frozenset[int] = RETRY_STATUSES
    """HTTP statuses retried before the first event; a subclass may add its own (Anthropic: 529)."""
    retry_error_types: frozenset[str] = RETRY_ERROR_TYPES
    """``ProviderError.type`` values that, inside a 200 stream before the first event, are retried."""

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        session: aiohttp.ClientSession | None = None,
        allow_insecure_http: bool = False,
        max_retries: int = 2,
        midstream_retries: int = 0,
        backoff: Backoff | None = None,
        timeouts: Timeouts | None = None,
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
        max_response_size: int | None = DEFAULT_MAX_RESPONSE_SIZE,
    ) -> None:
        self.model = model
        key = api_key if api_key is not None else os.environ.get(self.api_key_env) or None
        self._api_key = _Secret(key) if key else None
        self.base_url = (base_url or os.environ.get(self.base_url_env) or self.default_base_url).rstrip("/")
        self.max_event_size = max_event_size
        self.max_response_size = max_response_size
        self.timeouts = timeouts if timeouts is not None else Timeouts()
        self.retry_policy = RetryPolicy(
            max_retries=max_retries,
            backoff=backoff if backoff is not None else Backoff(),
            statuses=self.retry_statuses,
            error_types=self.retry_error_types,
            midstream_retries=midstream_retries,
        )
        if self._api_key and not allow_insecure_http:
            refuse_plain_http(self.base_url)
        self._http = HttpClient(session=session, connect_timeout=self.timeouts.connect)
        self._made_operators: _TurnOperators | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r}, base_url={safe_url(self.base_url)!r})"

    # -- what a subclass provides -------------------------------------------------

    @property
    def url(self) -> str:
        """Where completions are POSTed."""
        raise NotImplementedError

    def auth_headers(self, api_key: str) -> dict[str, str]:
        """The headers that carry the key."""
        raise NotImplementedError

    def request_body(self, request: CompletionRequest) -> dict[str, Any]:
        """The JSON body for ``request``, exactly as the provider documents it."""
        raise NotImplementedError

    # -- shared -------------------------------------------------------------------

    def headers(self) -> Mapping[str, str]:
        headers = {
            "content-type": "application/json",
            "accept": "text/event-stream",
            "user-agent": f"rxllm/{__version__}",
        }
        if self._api_key:
            # The values that carry the key show as a placeholder in any repr (tracebacks with
            # variables, debuggers); on the wire they are the key.
            headers.update({name: _Secret(value) for name, value in self.auth_headers(self._api_key).items()})
        return headers

    def stream(
        self, request: CompletionRequest, *, pause: PauseControl | None = None
    ) -> Observable[AssistantEvent]:
        """One completion turn as a cold Observable of assistant events, ``Final`` last.

        Each subscription sends the request once, and again (up to
        ``max_retries`` times) only after a retryable failure before the first
        event (see ``rxllm.retry``), each retry announced by a ``Retrying(attempt,
        delay, reason, status)`` before its wait. ``timeouts`` bound it (see
        ``rxllm.Timeouts``). Disposing closes the connection; ``pause`` holds
        delivery and stops reading the socket, and stops the timeout clocks.

        With ``midstream_retries=n``, a stream that breaks after the server
        accepted the request (connection lost, no end marker, a malformed
        chunk, an idle timeout, a transient error event) is sent again, up to
        ``n`` times, each resend announced by a ``StreamReset(attempt,
        reason)``: discard what the turn delivered so far. A ``Final`` comes
        only from the attempt that completes, its usage the sum of what every
        discarded attempt reported and its own (``usage_complete`` false when
        one reported none). When the resends are spent, the last attempt's
        error is delivered.

        The error that ends a turn carries ``usage`` (what the turn reported so
        far), names the request (``method``, ``url``) and, for a
        ``StreamTruncatedError``, the ``partial`` response that arrived.
        """
        turn = _Turn(self, _encoder.encode(self.request_body(request)), pause)
        resends = self.retry_policy.midstream_retries > 0
        events = accounted(
            turn.build, self.dialect, self.max_event_size, url=safe_url(self.url), resends=resends
        )
        if _log.is_enabled():
            # Decided when the turn is built: with logging off, no layer at all.
            events = events.pipe(logged(self.model, safe_url(self.url)))
        traced = tracing.chat_layer(self, request)
        if traced is not None:
            # Decided when the turn is built too: with tracing off, no layer at all.
            events = events.pipe(traced)
        return events if pause is None else events.pipe(pause_gate(pause))

    def _turn_operators(self) -> _TurnOperators:
        """The operators every turn applies, made once per provider (and again if its settings change)."""
        made = self._made_operators
        if made is None or not made.made_for(self):
            made = self._made_operators = _TurnOperators(self)
        return made

    def _log_retry(self, retry: Retry) -> None:
        if retry.midstream:
            message = (
                f"resending {self.model} in {retry.delay:.2f} s (resend {retry.attempt} of "
                f"{retry.max_retries}), observers discard what the turn delivered: {retry.reason}"
            )
        else:
            message = (
                f"retrying {self.model} in {retry.delay:.2f} s (retry {retry.attempt} of "
                f"{retry.max_retries}): {retry.reason}"
            )
        _log.log(
            "WARNING",
            message,
            operation="chat",
            model=self.model,
            fields={
                "rxllm.attempt": retry.attempt,
                "rxllm.delay": retry.delay,
                "rxllm.reason": retry.reason,
                "rxllm.midstream": retry.midstream,
                "error.type": type(retry.error).__name__,
            },
        )

    async def aclose(self) -> None:
        """Close the session this provider made (a session passed in stays open)."""
        await self._http.aclose()

    async def __aenter__(self) -> Provider:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


class _Turn:
    """What one ``stream(request)`` sends; ``build`` makes a subscription's pipe around its accounts."""

    __slots__ = ("body", "headers", "operators", "pause", "provider")

    def __init__(self, provider: Provider, body: bytes, pause: PauseControl | None) -> None:
        self.provider = provider
        self.body = body
        self.headers = provider.headers()
        self.operators = provider._turn_operators()
        self.pause = pause

    def build(self, accounts: Accounts) -> Observable[AssistantEvent]:
        provider = self.provider
        timeouts = provider.timeouts
        attempt: Observable[AssistantEvent] = http_events(
            provider._http,
            provider.url,
            body=self.body,
            headers=self.headers,
            decoder=accounts.decoder,
            pause=self.pause,
            max_response_size=provider.max_response_size,
            first_event=timeouts.first_event,
            idle=timeouts.idle,
        )
        turn = attempt.pipe(self.operators.retry)
        return turn if timeouts.total is None else turn.pipe(total_timeout(timeouts.total, pause=self.pause))


class _TurnOperators:
    """The operators of a provider's turns that depend only on its settings, made once, not per turn."""

    __slots__ = ("retry", "retry_policy")

    def __init__(self, provider: Provider) -> None:
        self.retry_policy = provider.retry_policy
        self.retry = retry_turn(self.retry_policy, on_retry=provider._log_retry)

    def made_for(self, provider: Provider) -> bool:
        return provider.retry_policy is self.retry_policy


class _Secret(str):
    """A string that holds a secret: the same text everywhere, except in ``repr()``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'<secret>'"


def add_common_options(
    body: dict[str, Any], request: CompletionRequest, *, max_tokens_key: str
) -> dict[str, Any]:
    """Add the settings both OpenAI APIs spell alike, then ``params`` last (so they win); return ``body``."""
    if request.tool_choice is not None:
        body["tool_choice"] = request.tool_choice
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.max_tokens is not None:
        body[max_tokens_key] = request.max_tokens
    if request.params:
        body.update(request.params)
    return body
