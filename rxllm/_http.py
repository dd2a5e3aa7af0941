"""The one module that touches aiohttp: sessions, the streaming POST, error bodies.

``HttpClient.open_stream()`` POSTs a request and yields the response body as
``bytes`` pieces as they arrive. A non-2xx reply becomes a ``ProviderError``
built from the provider's own JSON error body (read here, bounded, never with
``raise_for_status()``, which drops the body). Leaving the ``async with`` early,
by cancellation or an exception, closes the connection.

Failures are typed here: an unreachable server is a ``TransportError``, a
connect timeout a ``StreamTimeoutError("connect")``, a connection that breaks
while the body streams a ``StreamTruncatedError`` with ``connection_lost``, a
2xx reply that is not ``text/event-stream`` a ``NotEventStreamError`` (or the
``ProviderError`` its JSON error object describes). A ``ProviderError`` is of
the subclass its status names (``ProviderError.create``). Messages name the
request (``POST`` and the URL without its query or user info, see
``name_request``), never a header.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import msgspec

from rxllm.errors import (
    NotEventStreamError,
    ProviderError,
    RxLLMError,
    StreamTimeoutError,
    StreamTruncatedError,
    TransportError,
)

__all__ = ["DEFAULT_READ_BUFSIZE", "EVENT_STREAM", "HttpClient", "name_request", "safe_url"]

EVENT_STREAM = "text/event-stream"
"""The content type of a streamed reply; any other 2xx reply is a ``NotEventStreamError``."""

METHOD = "POST"
"""The method of every request rxllm sends."""

DEFAULT_READ_BUFSIZE = 64 * 1024
"""aiohttp's read buffer per response: how much a paused stream may hold before TCP pushes back."""

MAX_ERROR_BODY = 64 * 1024
"""An error body is read up to this many bytes; providers' error bodies are far smaller."""


class _ErrorObject(msgspec.Struct):
    message: str | None = None
    type: str | None = None
    code: str | int | None = None


class _ErrorBody(msgspec.Struct):
    # OpenAI and compatible servers: {"error": {"message", "type", "code"}}; Anthropic:
    # {"type": "error", "error": {"type", "message"}}; gateways: {"error": "text"} or
    # {"message": "..."} or FastAPI's {"detail": "..."}.
    error: _ErrorObject | str | None = None
    message: str | None = None
    detail: str | None = None


_error_decoder = msgspec.json.Decoder(_ErrorBody)


class HttpClient:
    """Owns (or borrows) an ``aiohttp.ClientSession`` and opens streaming requests with it.

    A borrowed session (``session=...``) is never closed here. An owned one is
    made on first use inside the running loop and closed by ``aclose()``.
    """

    def __init__(
        self,
        *,
        session: aiohttp.ClientSession | None = None,
        connect_timeout: float | None = 30.0,
        read_bufsize: int = DEFAULT_READ_BUFSIZE,
    ) -> None:
        self._borrowed = session
        self._owned: aiohttp.ClientSession | None = None
        self._owned_loop: asyncio.AbstractEventLoop | None = None
        self._guard: AsyncGenerator[None, None] | None = None
        self._connect_timeout = connect_timeout
        self._read_bufsize = read_bufsize

    async def _session(self) -> aiohttp.ClientSession:
        if self._borrowed is not None:
            return self._borrowed
        loop = asyncio.get_running_loop()
        owned = self._owned
        if owned is None or owned.closed or self._owned_loop is not loop:
            # A session belongs to the loop it was made in; a script that runs
            # several loops one after another (``asyncio.run`` twice) gets a new one.
            owned = self._owned = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self._connect_timeout),
                read_bufsize=self._read_bufsize,
            )
            self._owned_loop = loop
            # Closed with its loop when nobody calls ``aclose()``: a plain script's
            # ``rxllm.run(...)`` or ``asyncio.run(...)`` ends without "Unclosed client session".
            self._guard = _closed_with_loop(owned)
            await self._guard.__anext__()
        return owned

    async def aclose(self) -> None:
        owned, self._owned, self._owned_loop = self._owned, None, None
        guard, self._guard = self._guard, None
        if guard is not None:
            await guard.aclose()
        if owned is not None and not owned.closed:
            await owned.close()

    @asynccontextmanager
    async def open_stream(
        self, url: str, *, body: bytes, headers: Mapping[str, str]
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        """POST ``body`` to ``url``; yield an iterator over the response body's pieces."""
        session = await self._session()
        # Per request, so a borrowed session gets the same limits. No ``total`` (it would
        # end long or paused streams) and no ``sock_read`` (the idle limit is rxllm's own,
        # counted in events and stopped while paused).
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self._connect_timeout)
        try:
            response = await session.post(
                url, data=body, headers=dict(headers), read_bufsize=self._read_bufsize, timeout=timeout
            )
        except aiohttp.ConnectionTimeoutError as exc:
            limit = self._connect_timeout if self._connect_timeout is not None else 0.0
            raise StreamTimeoutError("connect", limit) from exc
        except (aiohttp.ClientError, OSError) as exc:
            unreachable = TransportError(f"could not reach the server: {_describe(exc)}")
            name_request(unreachable, METHOD, safe_url(url))
            raise unreachable from exc
        except ValueError as exc:
            # aiohttp refuses the request itself (user info in the URL beside an Authorization
            # header, a bad header value): a mistake in the settings, so never retried.
            raise RxLLMError(f"could not send a request to {safe_url(url)}: {_describe(exc)}") from exc
        try:
            if not 200 <= response.status < 300:
                raise await _provider_error(response, url)
            if response.content_type != EVENT_STREAM:
                raise await _not_event_stream(response, url)
            yield _Body(response, url)
        finally:
            # Closing (not releasing) drops the connection at once, so a server
            # streaming into a disposed subscription sees it go away.
            response.close()


async def _closed_with_loop(session: aiohttp.ClientSession) -> AsyncGenerator[None, None]:
    """Waits, started, until its loop shuts down its async generators (``asyncio.run`` does), then closes."""
    try:
        yield
    finally:
        await session.close()


class _Body:
    """The response body's pieces as they arrive; a dropped connection is a truncation."""

    __slots__ = ("_content", "_url")

    def __init__(self, response: aiohttp.ClientResponse, url: str) -> None:
        self._content = response.content
        self._url = url

    def __aiter__(self) -> _Body:
        return self

    async def __anext__(self) -> bytes:
        try:
            piece = await self._content.readany()
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, ConnectionError) as exc:
            # aiohttp's own words for a cut chunked body hold an internal "400" that reads like an
            # HTTP status; rxllm says what happened, and aiohttp's error stays as the cause.
            dropped = StreamTruncatedError(
                f"connection dropped mid-stream ({type(exc).__name__})", connection_lost=True
            )
            name_request(dropped, METHOD, safe_url(self._url))
            raise dropped from exc
        if not piece:
            raise StopAsyncIteration
        return piece


async def _provider_error(response: aiohttp.ClientResponse, url: str) -> ProviderError:
    raw = await _bounded_body(response)
    text = raw.decode("utf-8", errors="replace")
    message, type_, code = _parse_error_body(raw)
    return ProviderError.create(
        message or text.strip() or (response.reason or "no error message"),
        status=response.status,
        type=type_,
        code=code,
        request_id=_request_id(response.headers),
        body=text if message is None else None,
        retry_after=_retry_after(response.headers),
        method=METHOD,
        url=safe_url(url),
    )


async def _not_event_stream(response: aiohttp.ClientResponse, url: str) -> RxLLMError:
    """A 2xx reply that is no event stream: the ``ProviderError`` of its JSON error object, else that."""
    raw = await _bounded_body(response)
    message, type_, code = _parse_error_body(raw, error_key_only=True)
    if message is not None or type_ is not None or code is not None:
        # A server that ignored `stream: true` answers an error as a JSON object, with 200.
        return ProviderError.create(
            message or "the server sent an error without a message",
            type=type_,
            code=code,
            request_id=_request_id(response.headers),
            retry_after=_retry_after(response.headers),
            method=METHOD,
            url=safe_url(url),
        )
    return NotEventStreamError(
        response.headers.get("content-type", ""), raw, method=METHOD, url=safe_url(url)
    )


async def _bounded_body(response: aiohttp.ClientResponse) -> bytes:
    """The body, up to ``MAX_ERROR_BODY`` bytes; what arrived when the connection breaks."""
    pieces: list[bytes] = []
    size = 0
    try:
        while size < MAX_ERROR_BODY:
            piece = await response.content.read(MAX_ERROR_BODY - size)
            if not piece:
                break
            pieces.append(piece)
            size += len(piece)
    except (aiohttp.ClientError, ConnectionError):
        pass  # keep what arrived: a cut error body still says more than none
    return b"".join(pieces)


def _request_id(headers: Mapping[str, str]) -> str | None:
    return headers.get("x-request-id") or headers.get("request-id")


def _parse_error_body(
    raw: bytes, *, error_key_only: bool = False
) -> tuple[str | None, str | None, str | None]:
    """``(message, type, code)`` of a JSON error body; ``error_key_only`` reads only an ``error`` member."""
    try:
        parsed = _error_decoder.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None, None, None
    error = parsed.error
    if isinstance(error, _ErrorObject):
        code = None if error.code is None else str(error.code)
        return error.message, error.type, code
    if isinstance(error, str):
        return error, None, None
    if error_key_only:
        return None, None, None
    return parsed.message or parsed.detail, None, None


def name_request(error: BaseException, method: str, url: str) -> None:
    """Record on ``error`` the request it came from, and end its message with ``[method url]``.

    ``url`` must already be safe to show (``safe_url``). An error that names a
    request already, and an exception that is not rxllm's, are left as they are.
    """
    if not isinstance(error, RxLLMError) or error.url is not None:
        return
    error.method = method
    error.url = url
    if isinstance(error, ProviderError):
        error.args = (error._describe(),)
    elif len(error.args) == 1 and isinstance(error.args[0], str):
        error.args = (f"{error.args[0]} [{method} {url}]",)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait, from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(float(millis) / 1000.0, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def safe_url(url: str) -> str:
    """``url`` for messages and logs: without user info, query or fragment, where secrets may ride."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = f"{host}:{parts.port}" if parts.port is not None else host
    except ValueError:
        return "<an invalid URL>"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
