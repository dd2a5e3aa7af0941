"""A turn's accounts: usage charged to its Final and to its error, partial responses, requests named.

Marble tests of ``TurnDecoder`` (the turn's decoding, ``dedupe_final`` included, keeping a record) and
``accounted`` around the real ``retry_turn``, then the same end to end against a fault server. The marble
attempts are SSE bytes of a test dialect whose each event is one of the values below, by name.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import reactivex
from conftest import collect_events
from fault_server import StartFaultServer, Step, fault_server
from reactivex import Observable
from reactivex.notification import OnError
from reactivex.testing.marbles import marbles_testing
from reactivex.testing.recorded import Recorded

from rxllm.errors import ProviderError, StreamTimeoutError, StreamTruncatedError
from rxllm.events import (
    AssistantEvent,
    ChunkEvent,
    Final,
    Reasoning,
    ReasoningDelta,
    Retrying,
    StreamReset,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from rxllm.messages import Message
from rxllm.providers._turn import TEXT_CHUNK, Accounts, TurnDecoder, accounted
from rxllm.providers.anthropic import AnthropicMessages
from rxllm.request import CompletionRequest
from rxllm.response import CompletionResponse, ResponseBuilder
from rxllm.retry import Backoff, RetryPolicy, retry_turn
from rxllm.sse import DEFAULT_MAX_EVENT_SIZE
from rxllm.testing import Turn, sse_bytes
from rxllm.timeouts import Timeouts, total_timeout
from rxllm.transport._source import decoded

__all__ = ["fault_server"]

U1 = Usage(input_tokens=10, output_tokens=1, total_tokens=11)
U2 = Usage(input_tokens=10, output_tokens=5, total_tokens=15)
a = TextDelta(text="Hel")
u = Final(
    usage=U1, response_id="r1", model="m"
)  # an attempt's early usage report (Anthropic's message_start)
g = Final(usage=U2, finish_reason="stop", response_id="r2", model="m")

# Fresh errors in every test: the accounts write their usage onto the error that passes.


def lost() -> StreamTruncatedError:
    return StreamTruncatedError("connection dropped mid-stream", connection_lost=True)


def busy() -> ProviderError:
    return ProviderError("busy", status=503)


CALL = ToolCall(id="c1", call_id="c1", internal_call_id="rx_1", name="clock", arguments={})
EVENTS: dict[str, ChunkEvent] = {
    "a": a,
    "u": u,
    "g": g,
    "c": CALL,
    "s": Final(finish_reason="tool_calls"),
    "f": Final(finish_reason="stop", response_id="r1"),
}


class NamedEvents:
    """A test dialect: each SSE event's data names its one event in ``EVENTS``; any end is whole."""

    name = "test"
    end_of_turn = "its end"

    def parser(self) -> NamedParser:
        return NamedParser()


class NamedParser:
    done = False
    finished = True

    def feed(self, event: str, data: str) -> Sequence[ChunkEvent]:
        return [EVENTS[data]]


DIALECT = NamedEvents()
values: dict[str | float, object] = {name: f"data: {name}\n\n".encode() for name in EVENTS}
"""The marble attempts' values: SSE bytes of one event each."""
RESENDING = RetryPolicy(midstream_retries=1, backoff=Backoff(initial=2, jitter=0))


def accounted_turn(
    build: Any, *, url: str | None = None, resends: bool = False
) -> Observable[AssistantEvent]:
    return accounted(build, DIALECT, DEFAULT_MAX_EVENT_SIZE, url=url, resends=resends)


def turn(
    *attempts: Observable[bytes], policy: RetryPolicy = RESENDING, total: float | None = None
) -> Observable[AssistantEvent]:
    """A provider's turn over scripted attempts: decoded, deduplicated, retried, time-limited, accounted."""

    def build(accounts: Accounts) -> Observable[AssistantEvent]:
        made: Iterator[Observable[bytes]] = iter(attempts)
        source: Observable[bytes] = reactivex.defer(lambda _: next(made))
        return source.pipe(decoded(accounts.decoder), retry_turn(policy), total_timeout(total))

    return accounted_turn(build, url="https://api.example/v1/messages", resends=policy.midstream_retries > 0)


def error_of(records: list[Recorded[Any]]) -> Exception:
    notification = records[-1].value
    assert isinstance(notification, OnError)
    return notification.exception


def test_a_discarded_attempts_usage_is_charged_to_the_final() -> None:
    charged = Final(usage=U1 + U2, finish_reason="stop", response_id="r2", model="m", usage_complete=True)
    local: dict[str | float, object] = {
        "a": a,
        "R": StreamReset(attempt=2, reason="connection lost mid-stream"),
        "h": charged,
    }
    with marbles_testing() as (start, cold, _hot, exp):
        result = start(turn(cold("-u-a-#", values, lost()), cold("-a-g-|", values, None)))
        # The reset at 5; the resend after 2, at 7.
        assert result == exp("---a-R--a---(h,|)", local, None)


def test_a_discarded_attempt_without_usage_leaves_the_final_incomplete() -> None:
    short = Final(usage=U2, finish_reason="stop", response_id="r2", model="m", usage_complete=False)
    local: dict[str | float, object] = {
        "a": a,
        "R": StreamReset(attempt=2, reason="connection lost mid-stream"),
        "k": short,
    }
    with marbles_testing() as (start, cold, _hot, exp):
        result = start(turn(cold("-a-#", values, lost()), cold("-a-g-|", values, None)))
        assert result == exp("-a-R--a---(k,|)", local, None)


def test_an_attempt_retried_before_its_first_event_is_not_counted() -> None:
    # The server refused it (503 after a usage report, before any content): not billed, as without resends.
    local: dict[str | float, object] = {
        "a": a,
        "g": g,
        "w": Retrying(attempt=2, delay=2.0, reason="HTTP 503", status=503),
    }
    with marbles_testing() as (start, cold, _hot, exp):
        result = start(turn(cold("-u-#", values, busy()), cold("-a-g-|", values, None)))
        assert result == exp("---w--a---(g,|)", local, None)


def test_a_time_limit_during_a_retrys_wait_counts_nothing_of_the_retried_attempt() -> None:
    # 503 after a usage report at 3, the retry waits 2; the total limit of 4 ends the turn during the wait.
    local: dict[str | float, object] = {"w": Retrying(attempt=2, delay=2.0, reason="HTTP 503", status=503)}
    with marbles_testing() as (start, cold, _hot, exp):
        result = start(turn(cold("-u-#", values, busy()), cold("-a-g-|", values, None), total=4))
        assert result[:1] == exp("---w", local, None)
    error = error_of(result)
    assert isinstance(error, StreamTimeoutError) and error.which == "total"
    assert (result[-1].time, error.usage) == (204, None)


def test_a_time_limit_mid_attempt_counts_what_the_attempt_reported() -> None:
    with marbles_testing() as (start, cold, _hot, _exp):
        result = start(turn(cold("-u-a------g-|", values, None), total=4))
    error = error_of(result)
    assert isinstance(error, StreamTimeoutError) and error.which == "total"
    assert error.usage == U1


def test_the_error_that_ends_a_turn_carries_every_attempts_usage_and_names_the_request() -> None:
    last = busy()
    with marbles_testing() as (start, cold, _hot, _exp):
        result = start(turn(cold("-u-a-#", values, lost()), cold("-u-a-#", values, last)))
    assert error_of(result) is last
    assert last.usage == U1 + U1  # the discarded attempt's and the failing one's
    assert (last.method, last.url) == ("POST", "https://api.example/v1/messages")
    assert str(last) == "HTTP 503: busy [POST https://api.example/v1/messages]"


def test_a_cut_attempts_error_holds_the_partial_response() -> None:
    cut = StreamTruncatedError("the stream ended before its end marker")
    local: dict[str | float, object] = {"a": a, "c": CALL}
    with marbles_testing() as (start, cold, _hot, exp):
        result = start(turn(cold("-a-c-s-u-#", values, cut), policy=RetryPolicy()))
        assert result[:2] == exp("-a-c", local, None)
    assert error_of(result) is cut
    assert cut.partial == CompletionResponse(
        text="Hel",
        tool_calls=(CALL,),
        usage=U1,
        finish_reason="tool_calls",
        response_id="r1",
        model="m",
        usage_complete=True,
    )
    assert cut.usage == U1


def test_a_turn_with_nothing_reported_gives_its_error_no_usage() -> None:
    cut = StreamTruncatedError("the stream ended before its end marker")
    with marbles_testing() as (start, cold, _hot, _exp):
        result = start(turn(cold("-a-#", values, cut), policy=RetryPolicy()))
    assert error_of(result) is cut
    assert (cut.usage, cut.partial) == (None, CompletionResponse(text="Hel"))


# -- end to end ------------------------------------------------------------------------------------

HELLO = CompletionRequest([Message.user("Hello")])
TURN = Turn(text=["The answer ", "is 42."], usage=Usage(input_tokens=20, output_tokens=6, total_tokens=26))
STARTED = Usage(input_tokens=20, output_tokens=1, total_tokens=21)  # message_start's report


async def test_a_total_timeout_carries_what_the_turn_reported(fault_server: StartFaultServer) -> None:
    pieces = sse_bytes(TURN, "anthropic", model="m")
    text_at = next(i for i, piece in enumerate(pieces) if b"The answer" in piece)
    server = await fault_server(Step(pieces=pieces[: text_at + 1], ending="stall", stall=30))
    origin = server.base_url.removesuffix("/v1")
    async with AnthropicMessages("m", base_url=origin, timeouts=Timeouts(total=0.4)) as model:
        result = await collect_events(model.stream(HELLO))
    error = result.error
    assert isinstance(error, StreamTimeoutError) and error.which == "total"
    assert error.usage == STARTED
    assert str(error) == f"total timeout: no progress within 0.4 s [POST {origin}/v1/messages]"
    assert server.request_count == 1


async def test_resends_spent_the_error_carries_every_attempts_report(fault_server: StartFaultServer) -> None:
    pieces = sse_bytes(TURN, "anthropic", model="m")
    text_at = next(i for i, piece in enumerate(pieces) if b"The answer" in piece)
    server = await fault_server(Step(pieces=pieces[: text_at + 1], ending="drop"))
    origin = server.base_url.removesuffix("/v1")
    backoff = Backoff(initial=0.01, jitter=0)
    async with AnthropicMessages("m", base_url=origin, midstream_retries=1, backoff=backoff) as model:
        result = await collect_events(model.stream(HELLO))
    error = result.error
    assert isinstance(error, StreamTruncatedError) and error.connection_lost
    assert error.usage == STARTED + STARTED
    assert error.partial == CompletionResponse(
        text="The answer ", usage=STARTED, response_id="msg_scripted", model="m", usage_complete=True
    )
    assert server.request_count == 2


def folded(events: list[AssistantEvent]) -> CompletionResponse:
    builder = ResponseBuilder()
    for event in events:
        builder.feed(event)
    return builder.build()


def test_a_cut_attempts_partial_is_what_its_events_fold_into() -> None:
    call = ToolCall(id="c1", call_id="c1", internal_call_id="rx_1", name="clock", arguments={"tz": "UTC"})
    events: list[Any] = [
        ReasoningDelta(text="Let ", id="rs_1"),
        ReasoningDelta(text="me think.", id="rs_1"),
        ReasoningDelta(text="Other block.", id="rs_2"),
        Reasoning(text="Other block, whole.", id="rs_2"),
        TextDelta(text="It is "),
        TextDelta(text="noon"),
        ToolCallDelta(id="c1", internal_call_id="rx_1", name="clock", arguments_delta='{"tz":'),
        ToolCallDelta(id="c1", internal_call_id="rx_1", arguments_delta=' "UTC"}'),
        TextDelta(text=" in "),
        TextDelta(text="UTC."),
        call,
        Final(usage=U1),
        Final(finish_reason="tool_calls"),
    ]
    EVENTS.update({f"e{n}": event for n, event in enumerate(events)})
    cut = StreamTruncatedError("the stream ended before its end marker")
    decoder = TurnDecoder(DIALECT, DEFAULT_MAX_EVENT_SIZE)
    for n in range(len(events)):
        decoder.feed(f"data: e{n}\n\n".encode())
    decoder.failed(cut)
    merged = Final(usage=U1, finish_reason="tool_calls")
    assert cut.partial == folded([*events[:-2], merged])
    assert cut.partial.text == "It is noon in UTC." and cut.partial.tool_calls == (call,)
    assert cut.usage == U1


def test_a_long_cut_stream_holds_its_text_joined_and_whole() -> None:
    words = [f"w{n} " for n in range(1000)]
    EVENTS.update({f"t{n}": TextDelta(text=word) for n, word in enumerate(words)})
    cut = StreamTruncatedError("the stream ended before its end marker")
    decoder = TurnDecoder(DIALECT, DEFAULT_MAX_EVENT_SIZE)
    held: list[int] = []
    for n in range(len(words)):
        decoder.feed(f"data: t{n}\n\n".encode())
        held.append(len(decoder._text) + len(decoder._chunks))
    decoder.failed(cut)
    assert cut.partial == CompletionResponse(text="".join(words))
    # Pieces are joined TEXT_CHUNK at a time: 1,000 of them are held as 15 strings and a few pieces.
    assert max(held) < TEXT_CHUNK + 1000 // TEXT_CHUNK, "the record holds strings joined, not the events"


def test_the_turn_decoder_is_dedupe_final_keeping_a_record() -> None:
    merged = Final(usage=U2, finish_reason="stop", response_id="r2", model="m")
    local: dict[str | float, object] = {"a": a, "h": merged, "z": Final(usage_complete=False)}

    def attempt(marbles: str) -> Any:
        return lambda accounts: cold(marbles, values, None).pipe(decoded(accounts.decoder))

    with marbles_testing() as (start, cold, _hot, exp):
        result = start(accounted_turn(attempt("-a-f-g-|")))
        assert result == exp("-a-----(h,|)", local, None)
    with marbles_testing() as (start, cold, _hot, exp):
        result = start(accounted_turn(attempt("-a-|")))
        assert result == exp("-a-(z,|)", local, None)
