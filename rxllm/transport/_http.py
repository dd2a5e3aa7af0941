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
import ipaddress
import threading
import time
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import msgspec

from rxllm.errors import (
    CallbackError,
    EventLoopError,
    InsecureTransportError,
    NotEventStreamError,
    ProviderError,
    RxLLMError,
    StreamTimeoutError,
    StreamTruncatedError,
    TransportError,
)

__all__ = [
    "DEFAULT_READ_BUFSIZE",
    "EVENT_STREAM",
    "HttpClient",
    "is_loopback_url",
    "name_request",
    "refuse_plain_http",
    "safe_url",
]

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
    """Owns (or borrows) ``aiohttp.ClientSession`` objects and opens streaming requests with them.

    A borrowed session (``session=...``) is never closed here. Owned sessions
    are made on first use, **one per event loop** (a session belongs to the loop
    it was made in): a provider used from several loops at once, one per thread,
    gives each loop its own. An owned session closes when its loop shuts down
    its async generators (``asyncio.run`` does), or with ``aclose()`` awaited on
    its loop; it is never closed from under streams of another loop.
    """

    def __init__(
        self,
        *,
        session: aiohttp.ClientSession | None = None,
        connect_timeout: float | None = 30.0,
        read_bufsize: int = DEFAULT_READ_BUFSIZE,
    ) -> None:
        self._borrowed = session
        # Per loop: its session and the guard that closes it when the loop shuts down. Keyed
        # weakly, so a loop that is gone takes its entry with it.
        self._owned: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Owned] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()
        self._connect_timeout = connect_timeout
        self._read_bufsize = read_bufsize
        # ``connect`` bounds the whole connect phase: the wait for a pooled connection, DNS,
        # TCP and TLS; ``sock_connect`` each address tried. No ``total`` (it would end long or
        # paused streams) and no ``sock_read`` (the idle limit is rxllm's own, counted in
        # events and stopped while paused). Made once: an attrs class, costly to make per request.
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=connect_timeout, sock_connect=connect_timeout
        )

    async def _session(self) -> aiohttp.ClientSession:
        if self._borrowed is not None:
            return self._borrowed
        loop = asyncio.get_running_loop()
        with self._lock:
            owned = self._owned.get(loop)
        if owned is not None and not owned.session.closed:
            return owned.session
        session = aiohttp.ClientSession(timeout=self._timeout, read_bufsize=self._read_bufsize)
        owned = _Owned(session, self, loop)
        with self._lock:
            self._owned[loop] = owned
        await owned.guard.__anext__()
        return session

    def owned_session(self, loop: asyncio.AbstractEventLoop | None = None) -> aiohttp.ClientSession | None:
        """The session owned for ``loop`` (the running one by default), if one was made and is open."""
        loop = loop if loop is not None else asyncio.get_running_loop()
        with self._lock:
            owned = self._owned.get(loop)
        return owned.session if owned is not None and not owned.session.closed else None

    def _forget(self, loop: asyncio.AbstractEventLoop, owned: _Owned) -> None:
        with self._lock:
            if self._owned.get(loop) is owned:
                del self._owned[loop]

    async def aclose(self) -> None:
        """Close the owned session of the running loop (those of other loops close with their loops)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            owned = self._owned.pop(loop, None)
        if owned is not None:
            await owned.guard.aclose()

    @asynccontextmanager
    async def open_stream(
        self, url: str, *, body: bytes, headers: Mapping[str, str]
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        """POST ``body`` to ``url``; yield an iterator over the response body's pieces."""
        session = await self._session()
        try:
            # The timeout per request, so a borrowed session gets the same limits.
            response = await session.post(
                url,
                data=body,
                headers=dict(headers),
                read_bufsize=self._read_bufsize,
                timeout=self._timeout,
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


class _Owned:
    """One loop's owned session, and the started async generator that closes it with the loop."""

    __slots__ = ("guard", "session")

    def __init__(
        self, session: aiohttp.ClientSession, client: HttpClient, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.session = session
        # The guard holds the client weakly: a provider nobody references can be collected.
        self.guard = _closed_with_loop(session, weakref.ref(client), loop, self)


async def _closed_with_loop(
    session: aiohttp.ClientSession,
    client: weakref.ref[HttpClient],
    loop: asyncio.AbstractEventLoop,
    owned: _Owned,
) -> AsyncGenerator[None, None]:
    """Waits, started, until its loop shuts down its async generators (``asyncio.run`` does), then closes."""
    try:
        yield
    finally:
        held = client()
        if held is not None:
            held._forget(loop, owned)
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
    if isinstance(error, CallbackError | EventLoopError):
        return  # it did not come from the request: a user's callback raised, or the loop went away
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


def refuse_plain_http(base_url: str) -> None:
    """Raise ``InsecureTransportError`` for an API key bound for plain HTTP off this machine."""
    parts = urlsplit(base_url)
    if parts.scheme != "http" or _is_loopback(parts.hostname or ""):
        return
    raise InsecureTransportError(
        f"refusing to send an API key over plain HTTP to {parts.hostname}: use https, "
        "or pass allow_insecure_http=True if this network is trusted"
    )


def is_loopback_url(url: str) -> bool:
    """``url`` names this machine (localhost, a loopback address)."""
    return _is_loopback(urlsplit(url).hostname or "")


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
