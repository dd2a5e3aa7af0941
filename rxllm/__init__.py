"""rxllm: LLM provider streams as ReactiveX Observables.

The public names; providers live in ``rxllm.providers.openai``, operators in
``rxllm.operators``.

Importing ``rxllm`` loads nothing else: each name is imported from its module
the first time it is used (``rxllm.Agent`` loads the agent and what it needs),
so ``import rxllm`` is quick and a tool that only needs one part (the pytest
plugin, the CLI's ``--help``) pays for that part alone.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from rxllm._version import __version__ as __version__

if TYPE_CHECKING:
    from rxllm._log import disable_logging, enable_logging
    from rxllm.agent import Agent
    from rxllm.approvals import Approvals, Approve, Deny
    from rxllm.bridges import aiter, iterate, run
    from rxllm.control import PauseControl
    from rxllm.errors import (
        ApprovalError,
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
        RunStateError,
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
        CallState,
        ErrorInfo,
        Final,
        FinalResponse,
        Output,
        PartialOutput,
        Reasoning,
        ReasoningDelta,
        Retrying,
        RunState,
        RunSuspended,
        StreamReset,
        TextDelta,
        ToolApprovalRequest,
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
    from rxllm.tools import Tool, ToolArgumentsError, tool
    from rxllm.tracing import disable_tracing, enable_tracing
    from rxllm.transport.retry import Backoff
    from rxllm.transport.timeouts import Timeouts

_WHERE: dict[str, str] = {
    "disable_logging": "rxllm._log",
    "enable_logging": "rxllm._log",
    "Agent": "rxllm.agent",
    "Approvals": "rxllm.approvals",
    "Approve": "rxllm.approvals",
    "Deny": "rxllm.approvals",
    "aiter": "rxllm.bridges",
    "iterate": "rxllm.bridges",
    "run": "rxllm.bridges",
    "PauseControl": "rxllm.control",
    "ApprovalError": "rxllm.errors",
    "AuthenticationError": "rxllm.errors",
    "BadRequestError": "rxllm.errors",
    "CallbackError": "rxllm.errors",
    "ChunkDecodeError": "rxllm.errors",
    "ConflictError": "rxllm.errors",
    "EventLoopError": "rxllm.errors",
    "EventTooLargeError": "rxllm.errors",
    "InsecureTransportError": "rxllm.errors",
    "InternalServerError": "rxllm.errors",
    "MaxTurnsError": "rxllm.errors",
    "NotEventStreamError": "rxllm.errors",
    "NotFoundError": "rxllm.errors",
    "OutputValidationError": "rxllm.errors",
    "OverloadedError": "rxllm.errors",
    "PermissionDeniedError": "rxllm.errors",
    "PromptCancelledError": "rxllm.errors",
    "ProviderError": "rxllm.errors",
    "RateLimitError": "rxllm.errors",
    "ResponseTooLargeError": "rxllm.errors",
    "RunStateError": "rxllm.errors",
    "RxLLMError": "rxllm.errors",
    "SseError": "rxllm.errors",
    "StreamTimeoutError": "rxllm.errors",
    "StreamTruncatedError": "rxllm.errors",
    "TransportError": "rxllm.errors",
    "UnprocessableEntityError": "rxllm.errors",
    "AgentEvent": "rxllm.events",
    "AssistantEvent": "rxllm.events",
    "CallState": "rxllm.events",
    "ErrorInfo": "rxllm.events",
    "Final": "rxllm.events",
    "FinalResponse": "rxllm.events",
    "Output": "rxllm.events",
    "PartialOutput": "rxllm.events",
    "Reasoning": "rxllm.events",
    "ReasoningDelta": "rxllm.events",
    "Retrying": "rxllm.events",
    "RunState": "rxllm.events",
    "RunSuspended": "rxllm.events",
    "StreamReset": "rxllm.events",
    "TextDelta": "rxllm.events",
    "ToolApprovalRequest": "rxllm.events",
    "ToolCall": "rxllm.events",
    "ToolCallDelta": "rxllm.events",
    "ToolResult": "rxllm.events",
    "Usage": "rxllm.events",
    "Hook": "rxllm.hooks",
    "Skip": "rxllm.hooks",
    "Terminate": "rxllm.hooks",
    "Message": "rxllm.messages",
    "ReasoningPart": "rxllm.messages",
    "TextPart": "rxllm.messages",
    "ToolCallPart": "rxllm.messages",
    "ToolResultPart": "rxllm.messages",
    "Cost": "rxllm.prices",
    "price": "rxllm.prices",
    "CompletionRequest": "rxllm.request",
    "CompletionResponse": "rxllm.response",
    "Backoff": "rxllm.transport.retry",
    "Timeouts": "rxllm.transport.timeouts",
    "Tool": "rxllm.tools",
    "ToolArgumentsError": "rxllm.tools",
    "tool": "rxllm.tools",
    "disable_tracing": "rxllm.tracing",
    "enable_tracing": "rxllm.tracing",
}
"""Where each public name is defined."""

__all__ = [
    "Agent",
    "AgentEvent",
    "ApprovalError",
    "Approvals",
    "Approve",
    "AssistantEvent",
    "AuthenticationError",
    "Backoff",
    "BadRequestError",
    "CallState",
    "CallbackError",
    "ChunkDecodeError",
    "CompletionRequest",
    "CompletionResponse",
    "ConflictError",
    "Cost",
    "Deny",
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
    "RunState",
    "RunStateError",
    "RunSuspended",
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
    "ToolApprovalRequest",
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


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'rxllm' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
