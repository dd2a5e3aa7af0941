"""What every provider shares: the HTTP client, headers, and ``stream()`` assembling the pipe.

::

    stream(request) = sse_source(POST body) ─► parse_chunk(dialect) ─► accumulate_tool_calls()
                        ─► dedupe_final() ─► pause_gate(control)      (the gate only with pause=...)

A provider subclass says where to POST, which headers carry the key, how a
``CompletionRequest`` becomes the body, and which dialect reads the reply.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import msgspec
from reactivex import Observable

from rxllm._http import HttpClient
from rxllm._version import __version__
from rxllm.control import PauseControl
from rxllm.errors import InsecureTransportError
from rxllm.events import AssistantEvent
from rxllm.operators import accumulate_tool_calls, dedupe_final, parse_chunk, pause_gate
from rxllm.request import CompletionRequest
from rxllm.sse import DEFAULT_MAX_EVENT_SIZE, sse_source
from rxllm.typing import Dialect

__all__ = ["Provider"]

_encoder = msgspec.json.Encoder()


class Provider:
    """Base of the providers: one model on one server, streamed as Observables.

    ``api_key`` and ``base_url`` default to the environment variables a subclass
    names. The key lives in request headers only: never in ``repr()``, logs or
    error messages.
    """

    api_key_env: str = ""
    base_url_env: str = ""
    default_base_url: str = ""
    dialect: Dialect

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        session: aiohttp.ClientSession | None = None,
        allow_insecure_http: bool = False,
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
    ) -> None:
        self.model = model
        self._api_key = api_key if api_key is not None else os.environ.get(self.api_key_env) or None
        self.base_url = (base_url or os.environ.get(self.base_url_env) or self.default_base_url).rstrip("/")
        self.max_event_size = max_event_size
        if self._api_key and not allow_insecure_http:
            _refuse_plain_http(self.base_url)
        self._http = HttpClient(session=session)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r}, base_url={self.base_url!r})"

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
            headers.update(self.auth_headers(self._api_key))
        return headers

    def stream(
        self, request: CompletionRequest, *, pause: PauseControl | None = None
    ) -> Observable[AssistantEvent]:
        """One completion turn as a cold Observable of assistant events, ``Final`` last.

        Each subscription sends the request once. Disposing closes the
        connection; ``pause`` holds delivery and stops reading the socket.
        """
        body = _encoder.encode(self.request_body(request))
        events: Observable[AssistantEvent] = sse_source(
            self._http,
            self.url,
            body=body,
            headers=self.headers(),
            pause=pause,
            max_event_size=self.max_event_size,
        ).pipe(parse_chunk(self.dialect), accumulate_tool_calls(), dedupe_final())
        return events if pause is None else events.pipe(pause_gate(pause))

    async def aclose(self) -> None:
        """Close the session this provider made (a session passed in stays open)."""
        await self._http.aclose()

    async def __aenter__(self) -> Provider:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


def _refuse_plain_http(base_url: str) -> None:
    parts = urlsplit(base_url)
    if parts.scheme != "http" or _is_loopback(parts.hostname or ""):
        return
    raise InsecureTransportError(
        f"refusing to send an API key over plain HTTP to {parts.hostname}: use https, "
        "or pass allow_insecure_http=True if this network is trusted"
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
