"""rxllm: LLM provider streams as ReactiveX Observables.

The public names; providers live in ``rxllm.providers.openai``, operators in
``rxllm.operators``.
"""

from loguru import logger

from rxllm._log import disable_logging, enable_logging
from rxllm._version import __version__ as __version__
from rxllm.agent import Agent
from rxllm.bridges import aiter, iterate, run
from rxllm.control import PauseControl
from rxllm.errors import (
    AuthenticationError,
    BadRequestError,
    CallbackError,
    ChunkDecodeError,
    ConflictError,
    EventLoopError,
    EventTooLargeError,
    InsecureTransportError,
    InternalServerError,
    MaxTurnsError,
    NotEventStreamError,
    NotFoundError,
    OutputValidationError,
    OverloadedError,
    PermissionDeniedError,
    PromptCancelledError,
    ProviderError,
    RateLimitError,
    ResponseTooLargeError,
    RxLLMError,
    SseError,
    StreamTimeoutError,
    StreamTruncatedError,
    TransportError,
    UnprocessableEntityError,
)
from rxllm.events import (
    AgentEvent,
    AssistantEvent,
    ErrorInfo,
    Final,
    FinalResponse,
    Output,
    PartialOutput,
    Reasoning,
    ReasoningDelta,
    Retrying,
    StreamReset,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolResult,
    Usage,
)
from rxllm.hooks import Hook, Skip, Terminate
from rxllm.messages import Message, ReasoningPart, TextPart, ToolCallPart, ToolResultPart
from rxllm.prices import Cost, price
from rxllm.request import CompletionRequest
from rxllm.response import CompletionResponse
from rxllm.retry import Backoff
from rxllm.timeouts import Timeouts
from rxllm.tools import Tool, ToolArgumentsError, tool
from rxllm.tracing import disable_tracing, enable_tracing

__all__ = [
    "Agent",
    "AgentEvent",
    "AssistantEvent",
    "AuthenticationError",
    "Backoff",
    "BadRequestError",
    "CallbackError",
    "ChunkDecodeError",
    "CompletionRequest",
    "CompletionResponse",
    "ConflictError",
    "Cost",
    "ErrorInfo",
    "EventLoopError",
    "EventTooLargeError",
    "Final",
    "FinalResponse",
    "Hook",
    "InsecureTransportError",
    "InternalServerError",
    "MaxTurnsError",
    "Message",
    "NotEventStreamError",
    "NotFoundError",
    "Output",
    "OutputValidationError",
    "OverloadedError",
    "PartialOutput",
    "PauseControl",
    "PermissionDeniedError",
    "PromptCancelledError",
    "ProviderError",
    "RateLimitError",
    "Reasoning",
    "ReasoningDelta",
    "ReasoningPart",
    "ResponseTooLargeError",
    "Retrying",
    "RxLLMError",
    "Skip",
    "SseError",
    "StreamReset",
    "StreamTimeoutError",
    "StreamTruncatedError",
    "Terminate",
    "TextDelta",
    "TextPart",
    "Timeouts",
    "Tool",
    "ToolArgumentsError",
    "ToolCall",
    "ToolCallDelta",
    "ToolCallPart",
    "ToolResult",
    "ToolResultPart",
    "TransportError",
    "UnprocessableEntityError",
    "Usage",
    "aiter",
    "disable_logging",
    "disable_tracing",
    "enable_logging",
    "enable_tracing",
    "iterate",
    "price",
    "run",
    "tool",
]

logger.disable("rxllm")
