"""The event vocabulary: what an rxllm Observable emits.

Every event is a frozen, keyword-only msgspec Struct tagged by a ``type`` field, so
``msgspec.json.encode(event)`` gives JSON a web client can read and
``msgspec.json.decode(data, type=AnyEvent)`` gives the event back. Events work
with ``match``::

    match event:
        case TextDelta(text=text):
            print(text, end="")
        case ToolCall(name=name, arguments=args):
            ...
        case Final(usage=usage) if usage is not None:
            print(usage.total_tokens)

Two groups:

* **Assistant events** (``AssistantEvent``), what ``Provider.stream()`` delivers
  for one completion turn: ``TextDelta``, ``ReasoningDelta``, ``Reasoning``,
  ``ToolCallDelta``, ``ToolCall``, ``StreamReset`` and exactly one ``Final``, last.
* **Agent events**, added by the agent around the turns: ``ToolResult`` after each
  tool call and one ``FinalResponse`` at the end of a run.
* **Approvals** (tools made with ``@tool(needs_approval=...)``): ``ToolApprovalRequest``
  when a call waits for a person's answer, and ``RunSuspended`` (with a ``RunState``)
  when a run stops to be resumed later instead of waiting; see ``rxllm.approvals``.
* **Structured output** (``CompletionRequest(output=T)``, ``Agent(output=T)``):
  ``PartialOutput`` as the answer's JSON grows and one ``Output`` at the end of the
  answering turn, from ``rxllm.operators.parse_output`` or the agent.

``ErrorInfo`` is no stream event: it is an error as data (``ErrorInfo.from_exception``),
tagged like the events so a relay can send it as the last line of a stream.

``ToolCallFragment`` is a *raw chunk event*: ``parse_chunk`` emits it and
``accumulate_tool_calls`` turns it into ``ToolCallDelta`` and ``ToolCall``. Users
of ``Provider.stream()`` never see it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

import msgspec

from rxllm.messages import Message

__all__ = [
    "AgentEvent",
    "AnyEvent",
    "AssistantEvent",
    "CallState",
    "ChunkEvent",
    "ErrorInfo",
    "Event",
    "Final",
    "FinalResponse",
    "Output",
    "PartialOutput",
    "Reasoning",
    "ReasoningDelta",
    "Retrying",
    "RunState",
    "RunSuspended",
    "StreamReset",
    "TextDelta",
    "ToolApprovalRequest",
    "ToolCall",
    "ToolCallDelta",
    "ToolCallFragment",
    "ToolResult",
    "Usage",
]


class Usage(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Token counts of one request, or summed over several with ``+``.

    ``cached_input_tokens`` and ``reasoning_tokens`` are parts of
    ``input_tokens`` and ``output_tokens`` respectively, as the providers count them.
    A ``Usage`` is always what a provider reported, never an estimate: where it
    reported none, rxllm says ``None`` (``Final.usage``), not zeros.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cached_input_tokens: int = 0
    reasoning_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        if not isinstance(other, Usage):
            return NotImplemented
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            total_tokens=self.total_tokens + other.total_tokens,
            cached_input_tokens=self.cached_input_tokens + other.cached_input_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
        )

    @staticmethod
    def summed(reports: Iterable[Usage | None]) -> Usage | None:
        """The sum of the usage reports given, ``None`` ones left out; ``None`` when every one is.

        >>> Usage.summed([Usage(input_tokens=3), None, Usage(input_tokens=4)])
        Usage(input_tokens=7, output_tokens=0, total_tokens=0, cached_input_tokens=0, reasoning_tokens=0)
        >>> Usage.summed([None, None]) is None
        True
        """
        total: Usage | None = None
        for report in reports:
            if report is not None:
                total = report if total is None else total + report
        return total

    @staticmethod
    def merged(earlier: Usage | None, later: Usage | None) -> Usage | None:
        """Two reports of the same request: ``earlier.updated(later)``, or whichever one there is."""
        if later is None:
            return earlier
        if earlier is None:
            return later
        return earlier.updated(later)

    def updated(self, later: Usage) -> Usage:
        """Field by field, the later report where it says something (non-zero), else this one.

        Providers repeat usage (the same numbers twice) or split it over events
        (Anthropic: input on ``message_start``, output on ``message_delta``); both
        merge to the whole picture this way, without double counting.
        """
        return Usage(
            input_tokens=later.input_tokens or self.input_tokens,
            output_tokens=later.output_tokens or self.output_tokens,
            total_tokens=later.total_tokens or self.total_tokens,
            cached_input_tokens=later.cached_input_tokens or self.cached_input_tokens,
            reasoning_tokens=later.reasoning_tokens or self.reasoning_tokens,
        )


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """Base of every event; the ``type`` tag is the snake_case class name."""


class TextDelta(Event, frozen=True, kw_only=True, gc=False, tag="text_delta"):
    """A piece of assistant text."""

    text: str


class ReasoningDelta(Event, frozen=True, kw_only=True, gc=False, tag="reasoning_delta"):
    """A piece of reasoning ("thinking"); ``id`` names its block where the provider has one."""

    text: str
    id: str | None = None


class Reasoning(Event, frozen=True, kw_only=True, tag="reasoning"):
    """A whole reasoning block; it replaces the ``ReasoningDelta`` pieces with the same ``id``.

    ``signature`` (Anthropic) or ``encrypted_content`` (OpenAI Responses) must be
    sent back with the history, so they are kept verbatim.
    """

    text: str
    id: str | None = None
    signature: str | None = None
    encrypted_content: str | None = None


class ToolCallFragment(Event, frozen=True, kw_only=True, gc=False, tag="tool_call_fragment"):
    """Raw chunk event: one provider fragment of a tool call, as sent.

    ``index`` is the provider's slot (OpenAI ``tool_calls[].index``), ``id`` and
    ``name`` are present on some fragments only, ``arguments`` is a piece of the
    JSON argument text. ``call_id`` is the id that pairs the call with its result
    where the provider gives one apart from ``id`` (the Responses API). ``end``
    says the provider marked the call complete here (Responses
    ``output_item.done``, Anthropic ``content_block_stop``); without it a call
    completes at the turn's finish reason. ``accumulate_tool_calls`` joins
    fragments into calls, and is the one place tool arguments are parsed.
    """

    index: int | None = None
    id: str | None = None
    name: str | None = None
    arguments: str = ""
    call_id: str | None = None
    end: bool = False


class ToolCallDelta(Event, frozen=True, kw_only=True, gc=False, tag="tool_call_delta"):
    """Progress of a tool call for UIs: ``name`` on the first delta, then argument pieces.

    ``internal_call_id`` is rxllm's own id, the same from the first delta to the
    ``ToolCall`` and its ``ToolResult``.
    """

    id: str
    internal_call_id: str
    name: str | None = None
    arguments_delta: str = ""


class ToolCall(Event, frozen=True, kw_only=True, tag="tool_call"):
    """A complete tool call.

    ``arguments`` is the parsed JSON (``{}`` when the model sent none), or the raw
    string when it does not parse. ``id`` is the provider's id for the call and
    ``call_id`` the id that pairs it with its result (they differ only on the
    OpenAI Responses API); where a server sends no id, rxllm mints one.
    """

    id: str
    call_id: str
    internal_call_id: str
    name: str
    arguments: Any = msgspec.field(default_factory=dict)


class Final(Event, frozen=True, kw_only=True, gc=False, tag="final"):
    """End of one completion turn: exactly one per turn, always the last event.

    Providers send the pieces of it spread over a stream (finish reason on one
    chunk, usage on another, sometimes twice); ``dedupe_final`` merges them with
    ``updated`` into the one ``Final`` observers see. ``finish_reason`` is the
    provider's own word, kept verbatim (``"stop"``, ``"tool_calls"``, ``"length"``...).

    ``usage`` is what the server reported for the turn, ``None`` when it reported
    none (a server that ignores ``stream_options.include_usage``): unknown, which
    is not zero. With mid-stream resends it sums every attempt's report.
    ``usage_complete`` is false when some request of the turn reported no usage
    (``usage`` is then ``None``, or counts only the attempts that reported one);
    ``dedupe_final`` sets it, so on a provider's ``Final`` it is exact.
    """

    usage: Usage | None = None
    finish_reason: str | None = None
    response_id: str | None = None
    model: str | None = None
    usage_complete: bool = True

    def updated(self, later: Final) -> Final:
        """This final with what a later piece of the same turn says."""
        return Final(
            usage=Usage.merged(self.usage, later.usage),
            finish_reason=later.finish_reason if later.finish_reason is not None else self.finish_reason,
            response_id=later.response_id if later.response_id is not None else self.response_id,
            model=later.model if later.model is not None else self.model,
            usage_complete=self.usage_complete and later.usage_complete,
        )


class StreamReset(Event, frozen=True, kw_only=True, tag="stream_reset"):
    """Only with mid-stream retries: discard everything this turn delivered so far."""

    attempt: int
    reason: str


class Retrying(Event, frozen=True, kw_only=True, tag="retrying"):
    """A retry before the turn's first event is about to wait ``delay`` seconds.

    ``attempt`` is the number the next request will have (the turn's first
    request is 1); ``reason`` says why in words (``"HTTP 503"``, ``"connection
    failed"``); ``status`` is the HTTP status that failed, ``None`` for a
    transport failure or an error inside the stream. Nothing was delivered
    before it, so nothing needs discarding (compare ``StreamReset``).
    """

    attempt: int
    delay: float
    reason: str
    status: int | None = None


class ToolResult(Event, frozen=True, kw_only=True, tag="tool_result"):
    """A tool's result, fed back to the model; ``is_error`` when the tool failed."""

    id: str
    call_id: str
    internal_call_id: str
    name: str
    content: str
    is_error: bool = False


class FinalResponse(Event, frozen=True, kw_only=True, tag="final_response"):
    """End of an agent run: the last turn's text, usage summed over all turns.

    ``usage`` sums what the run's requests reported (zeros when none did);
    ``usage_complete`` is false when any of them, a discarded attempt included,
    reported none: then ``usage`` is a lower bound, not the bill.
    ``output`` is the validated structured answer (a value of the agent's
    ``output`` type), ``None`` when the agent was asked for no output type.
    """

    text: str
    usage: Usage = Usage()
    history: tuple[Message, ...] = ()
    turns: int = 0
    usage_complete: bool = True
    output: Any = None


class ErrorInfo(Event, frozen=True, kw_only=True, tag="error"):
    """An error as data, for relays and logs: ``msgspec.json.encode(ErrorInfo.from_exception(e))``.

    ``error_type`` is the exception's class name (``"RateLimitError"``);
    ``message`` its text (``str(error)``); ``status``, ``provider_type``,
    ``code``, ``request_id`` and ``retry_after`` are a ``ProviderError``'s
    (``provider_type`` is its ``type``, renamed because ``type`` is the tag of
    every event); ``usage`` is the usage the error carries (reported before it;
    ``None`` when unknown).
    """

    error_type: str
    message: str
    status: int | None = None
    provider_type: str | None = None
    code: str | None = None
    request_id: str | None = None
    retry_after: float | None = None
    usage: Usage | None = None

    @classmethod
    def from_exception(cls, error: BaseException) -> ErrorInfo:
        """What ``error`` says, as fields; any exception works, a ``ProviderError`` fills them all."""
        usage = getattr(error, "usage", None)
        if not isinstance(usage, Usage):
            usage = None
        from rxllm.errors import ProviderError  # errors is the floor above events: loaded by then

        if isinstance(error, ProviderError):
            return cls(
                error_type=type(error).__name__,
                message=str(error),
                status=error.status,
                provider_type=error.type,
                code=error.code,
                request_id=error.request_id,
                retry_after=error.retry_after,
                usage=usage,
            )
        return cls(error_type=type(error).__name__, message=str(error), usage=usage)


class PartialOutput(Event, frozen=True, kw_only=True, tag="partial_output"):
    """Structured output so far: the JSON answer parsed as far as it arrived, emitted when it changed.

    ``value`` is plain JSON data (dicts, lists, strings, numbers): open strings
    with their text so far, open objects and arrays with what they hold so far;
    a number shows once it is complete. It is not validated yet; ``Output``
    brings the validated value.
    """

    value: Any


class Output(Event, frozen=True, kw_only=True, tag="output"):
    """Structured output, whole: the answer validated and converted to the output type.

    ``value`` is a value of the requested type (a Struct, a dataclass, a
    TypedDict...); ``msgspec.json.encode`` encodes it with the event.
    """

    value: Any


class ToolApprovalRequest(Event, frozen=True, kw_only=True, tag="tool_approval_request"):
    """The agent waits for a person's answer before it runs this call (``@tool(needs_approval=...)``).

    Answer with ``Approvals.approve(internal_call_id, arguments=None)`` or
    ``Approvals.deny(internal_call_id, reason)``. ``arguments`` are the model's,
    as in the ``ToolCall`` with the same ``internal_call_id``.
    """

    internal_call_id: str
    call_id: str
    name: str
    arguments: Any = msgspec.field(default_factory=dict)


class CallState(msgspec.Struct, frozen=True, kw_only=True):
    """One tool call of a suspended turn, in a ``RunState``.

    ``status`` is ``"pending"`` for a call that waits for a decision (it needs
    approval), ``"not_needed"`` for a call that needed none and ran before the
    run suspended, ``"skipped"`` for a call that needed approval but a hook's
    ``on_tool_call`` skipped. ``result`` is the ``ToolResult`` the run already
    emitted for it (``None`` while pending).
    """

    call: ToolCall
    status: Literal["pending", "not_needed", "skipped"]
    result: ToolResult | None = None


class RunState(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a suspended agent run needs to continue: ``agent.resume(state, decisions)``.

    JSON round-trips: ``msgspec.json.encode(state)`` and
    ``msgspec.json.decode(data, type=RunState)``. ``history`` is the run's
    conversation before the suspended turn's answer, ``assistant`` that answer
    as the model sent it (its text, reasoning and tool calls), ``calls`` every
    call of that turn in call order with its status, ``turns`` the number of
    model requests the run made, ``usage`` / ``usage_reported`` /
    ``usage_complete`` the run's usage so far (as ``FinalResponse`` would say
    it). ``preamble``, ``max_turns``, ``temperature``, ``max_tokens``,
    ``tool_choice`` and ``params`` are the run's settings, which the resumed
    run keeps; ``prompt`` is the prompt that started it (hooks hear it).
    ``tool_set`` fingerprints the tools' names, descriptions and schemas (and
    the output type's schema), named in ``tool_names``: an agent with other
    tools cannot resume it.
    """

    version: int = 1
    prompt: str
    history: tuple[Message, ...]
    assistant: Message
    calls: tuple[CallState, ...]
    turns: int
    usage: Usage = Usage()
    usage_reported: bool = False
    usage_complete: bool = True
    output_retries_left: int = 0
    preamble: str | None = None
    max_turns: int
    temperature: int | float | None = None
    max_tokens: int | None = None
    tool_choice: str | dict[str, Any] | None = None
    params: dict[str, Any] | None = None
    tool_set: str
    tool_names: tuple[str, ...] = ()

    @property
    def pending(self) -> tuple[ToolCall, ...]:
        """The calls that wait for a decision, in call order."""
        return tuple(state.call for state in self.calls if state.status == "pending")


class RunSuspended(Event, frozen=True, kw_only=True, tag="run_suspended"):
    """An agent run (``suspend=True``) stopped to wait for approvals: the last event of the run.

    Store ``state`` (``msgspec.json.encode``) and continue later, in this
    process or another, with ``agent.resume(state, decisions)``.
    """

    state: RunState


ChunkEvent = TextDelta | ReasoningDelta | Reasoning | ToolCallFragment | ToolCall | Final | StreamReset
"""What ``parse_chunk`` emits: assistant content as the provider sent it."""

AssistantEvent = (
    TextDelta | ReasoningDelta | Reasoning | ToolCallDelta | ToolCall | Final | StreamReset | Retrying
)
"""What ``Provider.stream()`` emits for one completion turn."""

AgentEvent = (
    AssistantEvent | ToolResult | FinalResponse | PartialOutput | Output | ToolApprovalRequest | RunSuspended
)
"""What an agent run emits (``PartialOutput`` and ``Output`` only with an output type; ``ToolApprovalRequest``
and ``RunSuspended`` only with tools that need approval)."""

AnyEvent = (
    TextDelta
    | ReasoningDelta
    | Reasoning
    | ToolCallFragment
    | ToolCallDelta
    | ToolCall
    | Final
    | StreamReset
    | Retrying
    | ToolResult
    | FinalResponse
    | ErrorInfo
    | PartialOutput
    | Output
    | ToolApprovalRequest
    | RunSuspended
)
"""Every event type (and ``ErrorInfo``); ``msgspec.json.decode(data, type=AnyEvent)`` decodes any of them."""
