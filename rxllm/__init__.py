"""rxllm: LLM provider streams as ReactiveX Observables.

The public names; providers live in ``rxllm.providers.openai``, operators in
``rxllm.operators``.
"""

from loguru import logger

from rxllm._log import disable_logging, enable_logging
from rxllm._version import __version__ as __version__
from rxllm.agent import Agent
from rxllm.bridges import aiter, run
from rxllm.control import PauseControl
from rxllm.errors import (
    CallbackError,
    ChunkDecodeError,
    EventLoopError,
    EventTooLargeError,
    InsecureTransportError,
    MaxTurnsError,
    OutputValidationError,
    PromptCancelledError,
    ProviderError,
    ResponseTooLargeError,
    RxLLMError,
    SseError,
    StreamTimeoutError,
    StreamTruncatedError,
    TransportError,
)
from rxllm.events import (
    AgentEvent,
    AssistantEvent,
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
from rxllm.request import CompletionRequest
from rxllm.response import CompletionResponse
from rxllm.retry import Backoff
from rxllm.timeouts import Timeouts
from rxllm.tools import Tool, ToolArgumentsError, tool

__all__ = [
    "Agent",
    "AgentEvent",
    "AssistantEvent",
    "Backoff",
    "CallbackError",
    "ChunkDecodeError",
    "CompletionRequest",
    "CompletionResponse",
    "EventLoopError",
    "EventTooLargeError",
    "Final",
    "FinalResponse",
    "Hook",
    "InsecureTransportError",
    "MaxTurnsError",
    "Message",
    "Output",
    "OutputValidationError",
    "PartialOutput",
    "PauseControl",
    "PromptCancelledError",
    "ProviderError",
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
    "Usage",
    "aiter",
    "disable_logging",
    "enable_logging",
    "run",
    "tool",
]

logger.disable("rxllm")
