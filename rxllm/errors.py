"""The exception hierarchy. Errors reach observers through ``on_error``.

::

    RxLLMError
    ├── ProviderError            the provider said no: HTTP status or an in-band error object
    │   ├── BadRequestError             400, invalid_request_error
    │   ├── AuthenticationError         401, authentication_error
    │   ├── PermissionDeniedError       403, permission_error
    │   ├── NotFoundError               404, not_found_error
    │   ├── ConflictError               409
    │   ├── UnprocessableEntityError    422
    │   ├── RateLimitError              429, rate_limit_error, rate_limit_exceeded
    │   ├── InternalServerError         5xx, api_error, server_error
    │   └── OverloadedError             529, overloaded_error
    ├── StreamTruncatedError     the stream ended before the provider's end marker
    ├── StreamTimeoutError       a time limit ran out (connect, first_event, idle, total)
    ├── ResponseTooLargeError    the whole response grew past the configured bound
    ├── ChunkDecodeError         a chunk that is not the JSON the provider documents
    ├── SseError                 the bytes are not a valid event stream
    │   ├── EventTooLargeError   one event is larger than the configured bound
    │   └── NotEventStreamError  a 2xx reply that is not text/event-stream (JSON, an HTML page)
    ├── EventLoopError           subscribed where no asyncio loop runs, or the loop closed under a stream
    ├── CallbackError            a callback of the user's raised (a hook, on_retry, an observer's on_next)
    ├── InsecureTransportError   an API key would travel over plain HTTP
    ├── TransportError           the server could not be reached
    ├── ToolArgumentsError       a model's tool arguments do not fit the tool (defined in rxllm.tools)
    ├── MaxTurnsError            the agent ran out of turns
    ├── OutputValidationError    a structured answer is not a valid value of the output type
    ├── PromptCancelledError     a hook terminated the agent run
    ├── ApprovalError            an answer to a tool approval that cannot be taken (rxllm.Approvals, resume)
    └── RunStateError            a suspended run's state that this agent cannot resume

``str(error)`` never holds an API key: messages are built from the provider's
reply and rxllm's own words, never from request headers.

Every error a provider's stream delivers names the request it came from:
``method`` and ``url`` (without query or user info), and its message ends with
``[POST https://host/path]``. Errors delivered after requests were made carry
``usage``: what the requests reported before the error (``None`` when none
reported any); see ``RxLLMError.usage``.

The ``ProviderError`` subclasses are named as in the official ``openai`` and
``anthropic`` SDKs, so ``except RateLimitError`` reads the same. An HTTP error
is classed by its status; an error object inside a stream (or a 200 body) by its
``code`` when that is an HTTP status number, else by its ``code`` or ``type``
(``ProviderError.create``). A status or type that names no class stays a plain
``ProviderError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict, Unpack

from rxllm.events import Usage
from rxllm.messages import Message
from rxllm.response import CompletionResponse

__all__ = [
    "ApprovalError",
    "AuthenticationError",
    "BadRequestError",
    "CallbackError",
    "ChunkDecodeError",
    "ConflictError",
    "EventLoopError",
    "EventTooLargeError",
    "InsecureTransportError",
    "InternalServerError",
    "MaxTurnsError",
    "NotEventStreamError",
    "NotFoundError",
    "OverloadedError",
    "PermissionDeniedError",
    "OutputValidationError",
    "PromptCancelledError",
    "ProviderError",
    "RateLimitError",
    "ResponseTooLargeError",
    "RunStateError",
    "RxLLMError",
    "SseError",
    "StreamTimeoutError",
    "StreamTruncatedError",
    "TransportError",
    "UnprocessableEntityError",
]


class RxLLMError(Exception):
    """Base of every error rxllm raises or delivers.

    ``usage``: the usage the requests reported before this error ended the
    stream, ``None`` when none reported any (or none was made). Delivered by
    ``provider.stream()``, it is the turn's: the failing attempt's reports and
    those of attempts a ``StreamReset`` discarded (retries before the first
    event are not counted, as in ``Final.usage``). Delivered by an agent run, it
    adds the run's earlier turns. A turn stopped from outside its stream (a hook's
    ``Terminate``, the agent's ``max_turns``) counts the turns that completed.

    ``method`` and ``url``: the request the error came from, where it came from
    one (``url`` without query or user info).
    """

    usage: Usage | None = None
    method: str | None = None
    url: str | None = None


class ProviderFields(TypedDict, total=False):
    """The fields of a ``ProviderError`` beside its message, as ``ProviderError.create`` takes them."""

    status: int | None
    type: str | None
    code: str | None
    request_id: str | None
    body: str | None
    retry_after: float | None
    usage: Usage | None
    method: str | None
    url: str | None


class ProviderError(RxLLMError):
    """The provider refused or failed the request.

    ``status`` is the HTTP status (``None`` for an error object inside a 200
    stream); ``message``, ``type`` and ``code`` are the provider's own, from its
    JSON error body; ``body`` is the raw body (bounded) when it was not JSON.
    ``usage`` is what the provider reported the failed response used (the
    Responses API's ``response.failed`` carries it), which it may bill, together
    with what the turn reported before the error; ``None`` when it reported none.
    ``method`` and ``url`` name the request.

    Raised by rxllm, it is an instance of the subclass its status, type or code
    names (``RateLimitError`` for a 429), made with ``ProviderError.create``.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        type: str | None = None,
        code: str | None = None,
        request_id: str | None = None,
        body: str | None = None,
        retry_after: float | None = None,
        usage: Usage | None = None,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        self.message = message
        self.usage = usage
        self.status = status
        self.type = type
        self.code = code
        self.request_id = request_id
        self.body = body
        self.retry_after = retry_after
        self.method = method
        self.url = url
        super().__init__(self._describe())

    @staticmethod
    def create(message: str, **fields: Unpack[ProviderFields]) -> ProviderError:
        """A ``ProviderError`` of the subclass that ``status``, else ``code`` or ``type``, names.

        >>> type(ProviderError.create("slow down", status=429)).__name__
        'RateLimitError'
        >>> type(ProviderError.create("Overloaded", type="overloaded_error")).__name__
        'OverloadedError'
        """
        kind = _error_class(fields.get("status"), fields.get("type"), fields.get("code"))
        return kind(message, **fields)

    def _describe(self) -> str:
        head = f"HTTP {self.status}" if self.status is not None else "error in stream"
        tags = ", ".join(f"{k}={v}" for k, v in (("type", self.type), ("code", self.code)) if v)
        text = f"{head}: {self.message}"
        if tags:
            text += f" ({tags})"
        if self.request_id:
            text += f" [request id {self.request_id}]"
        if self.url:
            text += f" [{self.method or 'POST'} {self.url}]"
        return text


class BadRequestError(ProviderError):
    """HTTP 400, or ``invalid_request_error`` in a stream: the request itself is wrong."""


class AuthenticationError(ProviderError):
    """HTTP 401, or ``authentication_error`` / ``invalid_api_key``: the key is missing or wrong."""


class PermissionDeniedError(ProviderError):
    """HTTP 403, or ``permission_error``: the key may not do this."""


class NotFoundError(ProviderError):
    """HTTP 404, or ``not_found_error`` / ``model_not_found``: no such model or endpoint (check ``url``)."""


class ConflictError(ProviderError):
    """HTTP 409: the request conflicts with the server's state (retried before the first event)."""


class UnprocessableEntityError(ProviderError):
    """HTTP 422: the body is well-formed but the server cannot act on it."""


class RateLimitError(ProviderError):
    """HTTP 429, or ``rate_limit_error`` / ``rate_limit_exceeded`` / ``insufficient_quota`` in a stream."""


class InternalServerError(ProviderError):
    """HTTP 5xx other than 529, or ``api_error`` / ``server_error`` in a stream."""


class OverloadedError(ProviderError):
    """HTTP 529, or ``overloaded_error`` in a stream: the provider is overloaded (Anthropic)."""


_BY_STATUS: dict[int, type[ProviderError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
    529: OverloadedError,
}

_BY_NAME: dict[str, type[ProviderError]] = {
    # Anthropic's error types, each the name of one HTTP status.
    "invalid_request_error": BadRequestError,
    "authentication_error": AuthenticationError,
    "permission_error": PermissionDeniedError,
    "not_found_error": NotFoundError,
    "rate_limit_error": RateLimitError,
    "api_error": InternalServerError,
    "overloaded_error": OverloadedError,
    # OpenAI's (and OpenRouter's) types and codes.
    "invalid_api_key": AuthenticationError,
    "model_not_found": NotFoundError,
    "rate_limit_exceeded": RateLimitError,
    "insufficient_quota": RateLimitError,
    "server_error": InternalServerError,
}


def _error_class(status: int | None, type: str | None, code: str | None) -> type[ProviderError]:
    if status is None and code is not None and code.isdigit():
        status = int(code)  # OpenRouter and gateways put the HTTP status in `code`
    if status is not None:
        known = _BY_STATUS.get(status)
        if known is not None:
            return known
        return InternalServerError if 500 <= status < 600 else ProviderError
    for name in (code, type):
        if name is not None:
            known = _BY_NAME.get(name)
            if known is not None:
                return known
    return ProviderError


class StreamTruncatedError(RxLLMError):
    """The connection ended before the provider's end marker; the events that arrived stay delivered.

    ``connection_lost`` is true when the connection broke (reset, closed mid-chunk)
    rather than the body ending cleanly without the end marker; only a lost
    connection is retried, and only before the first event.

    ``partial`` is what the broken attempt delivered, folded into a
    ``CompletionResponse`` (text, reasoning, complete tool calls, finish reason,
    the usage it reported), so an app may still show it, knowing it is cut:
    a Chat Completions stream cut after its finish reason looks whole. ``None``
    where the error was not delivered by a provider's stream.
    """

    def __init__(
        self,
        message: str,
        *,
        connection_lost: bool = False,
        partial: CompletionResponse | None = None,
        usage: Usage | None = None,
    ) -> None:
        self.connection_lost = connection_lost
        self.partial = partial
        self.usage = usage
        super().__init__(message)


class StreamTimeoutError(RxLLMError):
    """A time limit ran out; ``which`` names it (``connect``, ``first_event``, ``idle``, ``total``)."""

    def __init__(self, which: str, seconds: float, *, usage: Usage | None = None) -> None:
        self.which = which
        self.seconds = seconds
        self.usage = usage
        super().__init__(f"{which} timeout: no progress within {seconds:g} s")


class ResponseTooLargeError(RxLLMError):
    """The response body grew past ``max_response_size`` bytes; the connection is closed."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"the response exceeded {limit} bytes (raise max_response_size to allow it)")


class ChunkDecodeError(RxLLMError):
    """A chunk that is not the JSON the provider documents; ``data`` holds it, cut short."""

    MAX_SHOWN = 200

    def __init__(self, reason: str, data: str) -> None:
        self.reason = reason
        self.data = data if len(data) <= self.MAX_SHOWN else data[: self.MAX_SHOWN] + "…"
        super().__init__(f"undecodable chunk ({reason}): {self.data!r}")


class SseError(RxLLMError):
    """The response body is not a valid event stream (for example, invalid UTF-8)."""


class NotEventStreamError(SseError):
    """A 2xx reply that is not ``text/event-stream`` (JSON for ``stream: true``, a proxy's HTML page).

    ``content_type`` is what the reply said it is (``""`` when it said nothing);
    ``first_bytes`` the start of its body, at most ``MAX_SHOWN`` bytes.

    Not retried, nor resent mid-stream: such a server answers the same way again. A JSON
    error object in such a body is a ``ProviderError`` instead (of its class).
    """

    MAX_SHOWN = 200

    def __init__(
        self, content_type: str, first_bytes: bytes, *, method: str | None = None, url: str | None = None
    ) -> None:
        self.content_type = content_type
        self.first_bytes = first_bytes[: self.MAX_SHOWN]
        self.method = method
        self.url = url
        cut = "..." if len(first_bytes) > self.MAX_SHOWN else ""
        text = f"expected an event stream (text/event-stream), got {content_type or 'no content type'}"
        text += f": {self.first_bytes!r}{cut}" if first_bytes else " with an empty body"
        if url:
            text += f" [{method or 'POST'} {url}]"
        super().__init__(text)


class EventTooLargeError(SseError):
    """One server-sent event grew past the configured bound."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"a server-sent event exceeded {limit} bytes (raise max_event_size to allow it)")


class TransportError(RxLLMError):
    """The server could not be reached, or the connection failed before a response arrived."""


class EventLoopError(RxLLMError):
    """Subscribed where no asyncio event loop runs."""


class CallbackError(RxLLMError):
    """A callback of the user's raised inside a stream; the original exception is ``__cause__``.

    A hook method, an ``on_retry`` callback or an observer's ``on_next`` that
    raises ends the stream with this error rather than killing it silently.
    ``callback`` names what raised (``"Hook.on_tool_call"``, ``"on_next"``).
    """

    def __init__(self, callback: str, error: BaseException) -> None:
        self.callback = callback
        super().__init__(f"{callback} raised {type(error).__name__}: {error}")
        self.__cause__ = error


class InsecureTransportError(RxLLMError):
    """An API key would be sent over plain HTTP to a host that is not loopback."""


class MaxTurnsError(RxLLMError):
    """The agent used all its turns; ``history`` holds the conversation so far, ``usage`` its turns' usage."""

    def __init__(self, max_turns: int, history: Sequence[Message], *, usage: Usage | None = None) -> None:
        self.max_turns = max_turns
        self.history = tuple(history)
        self.usage = usage
        super().__init__(f"the agent reached max_turns={max_turns} without a final answer")


class OutputValidationError(RxLLMError):
    """A structured answer that is not a valid value of the output type (``CompletionRequest(output=T)``).

    ``raw`` is the text the model sent, whole; ``message`` is msgspec's, with the
    path of what failed (``Expected `int`, got `str` - at `$.items[0].quantity```,
    ``JSON is malformed: ...``, ``Input data was truncated``). ``output_name``
    names the type. From an agent run, ``history`` holds the conversation so far
    (the invalid answer last) and ``usage`` what the run's requests reported.
    """

    def __init__(
        self,
        message: str,
        raw: str,
        *,
        output_name: str = "output",
        history: Sequence[Message] = (),
        usage: Usage | None = None,
    ) -> None:
        self.message = message
        self.raw = raw
        self.output_name = output_name
        self.history = tuple(history)
        self.usage = usage
        super().__init__(f"the answer is not a valid {output_name}: {message}")


class PromptCancelledError(RxLLMError):
    """A hook terminated the run; ``reason`` is the hook's, ``history`` the conversation so far.

    ``usage`` sums the usage of the run's turns that completed before it.
    """

    def __init__(self, reason: str, history: Sequence[Message], *, usage: Usage | None = None) -> None:
        self.reason = reason
        self.history = tuple(history)
        self.usage = usage
        super().__init__(f"prompt cancelled: {reason}")


class ApprovalError(RxLLMError):
    """An answer to a tool approval that cannot be taken; nothing in the run changed because of it.

    Raised to the caller of ``Approvals.approve`` / ``Approvals.deny`` (an
    unknown call, one already answered, one whose run ended, edited arguments
    that do not fit the tool: the call still waits then) and of
    ``agent.resume`` (a decision for a call the state does not hold, a pending
    call without a decision). Delivered to a run's observers when a call needs
    approval and the run was given neither ``approvals=`` nor ``suspend=True``.
    ``internal_call_id`` names the call (``None`` when the error is about no
    single call); ``reason`` says what is wrong.
    """

    def __init__(self, internal_call_id: str | None, reason: str, *, usage: Usage | None = None) -> None:
        self.internal_call_id = internal_call_id
        self.reason = reason
        self.usage = usage
        where = f"call {internal_call_id!r}: " if internal_call_id is not None else ""
        super().__init__(f"approval of {where}{reason}" if where else f"approval: {reason}")


class RunStateError(RxLLMError):
    """A ``RunState`` this agent cannot resume: made with other tools or output type, or another version."""
