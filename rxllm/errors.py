"""The exception hierarchy. Errors reach observers through ``on_error``.

::

    RxLLMError
    ├── ProviderError            the provider said no: HTTP status or an in-band error object
    ├── StreamTruncatedError     the stream ended before the provider's end marker
    ├── StreamTimeoutError       a time limit ran out (connect, first_event, idle, total)
    ├── ResponseTooLargeError    the whole response grew past the configured bound
    ├── ChunkDecodeError         a chunk that is not the JSON the provider documents
    ├── SseError                 the bytes are not a valid event stream
    │   └── EventTooLargeError   one event is larger than the configured bound
    ├── EventLoopError           subscribed where no asyncio loop runs, or the loop closed under a stream
    ├── CallbackError            a callback of the user's raised (a hook, on_retry, an observer's on_next)
    ├── InsecureTransportError   an API key would travel over plain HTTP
    ├── TransportError           the server could not be reached
    ├── ToolArgumentsError       a model's tool arguments do not fit the tool (defined in rxllm.tools)
    ├── MaxTurnsError            the agent ran out of turns
    ├── OutputValidationError    a structured answer is not a valid value of the output type
    └── PromptCancelledError     a hook terminated the agent run

``str(error)`` never holds an API key: messages are built from the provider's
reply and rxllm's own words, never from request headers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rxllm.events import Usage
    from rxllm.messages import Message

__all__ = [
    "CallbackError",
    "ChunkDecodeError",
    "EventLoopError",
    "EventTooLargeError",
    "InsecureTransportError",
    "MaxTurnsError",
    "OutputValidationError",
    "PromptCancelledError",
    "ProviderError",
    "ResponseTooLargeError",
    "RxLLMError",
    "SseError",
    "StreamTimeoutError",
    "StreamTruncatedError",
    "TransportError",
]


class RxLLMError(Exception):
    """Base of every error rxllm raises or delivers."""


class ProviderError(RxLLMError):
    """The provider refused or failed the request.

    ``status`` is the HTTP status (``None`` for an error object inside a 200
    stream); ``message``, ``type`` and ``code`` are the provider's own, from its
    JSON error body; ``body`` is the raw body (bounded) when it was not JSON.
    ``usage`` is what the provider reported the failed response used (the
    Responses API's ``response.failed`` carries it), which it may bill; ``None``
    when it reported none.
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
    ) -> None:
        self.message = message
        self.usage = usage
        self.status = status
        self.type = type
        self.code = code
        self.request_id = request_id
        self.body = body
        self.retry_after = retry_after
        super().__init__(self._describe())

    def _describe(self) -> str:
        head = f"HTTP {self.status}" if self.status is not None else "error in stream"
        tags = ", ".join(f"{k}={v}" for k, v in (("type", self.type), ("code", self.code)) if v)
        text = f"{head}: {self.message}"
        if tags:
            text += f" ({tags})"
        if self.request_id:
            text += f" [request id {self.request_id}]"
        return text


class StreamTruncatedError(RxLLMError):
    """The connection ended before the provider's end marker; the events that arrived stay delivered.

    ``connection_lost`` is true when the connection broke (reset, closed mid-chunk)
    rather than the body ending cleanly without the end marker; only a lost
    connection is retried, and only before the first event.
    """

    def __init__(self, message: str, *, connection_lost: bool = False) -> None:
        self.connection_lost = connection_lost
        super().__init__(message)


class StreamTimeoutError(RxLLMError):
    """A time limit ran out; ``which`` names it (``connect``, ``first_event``, ``idle``, ``total``)."""

    def __init__(self, which: str, seconds: float) -> None:
        self.which = which
        self.seconds = seconds
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
    """The agent used all its turns; ``history`` holds the conversation so far."""

    def __init__(self, max_turns: int, history: Sequence[Message]) -> None:
        self.max_turns = max_turns
        self.history = tuple(history)
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
    """A hook terminated the run; ``reason`` is the hook's, ``history`` the conversation so far."""

    def __init__(self, reason: str, history: Sequence[Message]) -> None:
        self.reason = reason
        self.history = tuple(history)
        super().__init__(f"prompt cancelled: {reason}")
