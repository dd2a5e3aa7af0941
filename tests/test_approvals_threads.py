"""``Approvals`` under contention: many threads answer many waiting calls at once, and race a dispose.

Each test runs a real agent run against a loopback server, observed by a raw
``Recorder`` (no auto-detach), while plain threads call ``approve`` and
``deny`` together, released at once by a barrier.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Callable, Iterator

import msgspec
import pytest
from approval_kit import Recorder

from rxllm import Agent, ApprovalError, Approvals, ToolApprovalRequest, ToolResult, tool
from rxllm.testing import Call, ScriptedServer, Turn

CALLS = 24
THREADS = 8


@tool(needs_approval=True)
def echo(n: int) -> str:
    """Say the number.

    Args:
        n: The number.
    """
    return f"ran {n}"


def script() -> list[Turn]:
    calls = [Call("echo", {"n": n}, id=f"call_{n}") for n in range(CALLS)]
    return [Turn(calls=calls), Turn(text=["Done."])]


@pytest.fixture(autouse=True)
def frequent_switches() -> Iterator[None]:
    """Threads switch every microsecond (not every 5 ms), so races inside ``Approvals`` show."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def in_threads(work: Callable[[int], None]) -> list[threading.Thread]:
    """``THREADS`` threads running ``work(number)``, released together; started."""
    barrier = threading.Barrier(THREADS)

    def run(number: int) -> None:
        barrier.wait()
        work(number)

    threads = [threading.Thread(target=run, args=(number,)) for number in range(THREADS)]
    for thread in threads:
        thread.start()
    return threads


def join(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.join()


@pytest.mark.parametrize("round_", range(4))
async def test_many_threads_answer_each_call_once_and_the_run_gets_the_winning_answers(round_: int) -> None:
    async with ScriptedServer(script()) as server, server.provider() as model:
        control = Approvals()
        recorder = Recorder()
        recorder.subscribe_to(
            Agent(model, tools=[echo], tool_concurrency=4).stream_prompt("Go", approvals=control)
        )
        requests: list[ToolApprovalRequest] = await recorder.wait_for(ToolApprovalRequest, CALLS)
        won: dict[str, list[str]] = {request.internal_call_id: [] for request in requests}
        refused: list[tuple[str, str]] = []
        unexpected: list[BaseException] = []
        lock = threading.Lock()

        def answer_everything(number: int) -> None:
            # Every thread in the same order, so that they collide on each call.
            for request in requests:
                key, n = request.internal_call_id, int(request.arguments["n"])
                kind = (number + n) % 3  # deny, approve, or approve with edited arguments
                try:
                    if kind == 0:
                        control.deny(key, f"denied by {number}")
                    elif kind == 1:
                        control.approve(key)
                    else:
                        control.approve(key, {"n": 1000 * (number + 1) + n})
                except ApprovalError as exc:
                    with lock:
                        refused.append((key, exc.reason))
                except BaseException as exc:  # noqa: BLE001 - reported below
                    unexpected.append(exc)
                else:
                    taken = [f"denied by {number}", f"ran {n}", f"ran {1000 * (number + 1) + n}"][kind]
                    with lock:
                        won[key].append(taken)

        threads = in_threads(answer_everything)
        assert await recorder.ended(timeout=20) == "completed"
        await asyncio.to_thread(join, threads)
    assert unexpected == []
    assert all(len(winners) == 1 for winners in won.values()), won  # exactly one answer taken per call
    assert len(refused) == CALLS * (THREADS - 1)
    for key, why in refused:  # a refusal names the answer that won
        denied = won[key][0].startswith("denied")
        assert why == ("it was already denied" if denied else "it was already approved")
    results = recorder.of(ToolResult)
    assert [r.internal_call_id for r in results] == [r.internal_call_id for r in requests], "call order"
    expected = [
        (won[r.internal_call_id][0], won[r.internal_call_id][0].startswith("denied")) for r in requests
    ]
    assert [(r.content, r.is_error) for r in results] == expected
    assert [m["content"] for m in server.requests[1].json["messages"] if m["role"] == "tool"] == [
        content for content, _ in expected
    ]
    # The history holds the arguments each call ran with: the edits that won.
    sent = server.requests[1].json["messages"][1]["tool_calls"]
    assert [f"ran {msgspec.json.decode(c['function']['arguments'])['n']}" for c in sent] == [
        content if not denied else f"ran {r.arguments['n']}"
        for (content, denied), r in zip(expected, requests, strict=True)
    ]
    assert set(recorder.threads) == {threading.get_ident()}, "every event on the loop's thread"
    assert recorder.terminals == ["completed"] and recorder.after_terminal == []
    assert control.pending == ()


async def test_answers_racing_a_dispose_are_taken_or_refused_and_nothing_runs_after_it() -> None:
    # The answers taken before the dispose vary from round to round (0 to all); each round checks its own.
    taken = [await dispose_race() for _ in range(5)]
    assert all(0 <= count <= CALLS for count in taken)


async def dispose_race() -> int:
    """One round: threads approve every call while the loop disposes the run; the answers taken."""
    ran: list[int] = []

    @tool(name="echo", needs_approval=True)
    def noting(n: int) -> str:
        """Say the number, noting it ran."""
        ran.append(n)
        return f"ran {n}"

    async with ScriptedServer(script()) as server, server.provider() as model:
        control = Approvals()
        recorder = Recorder()
        subscription = recorder.subscribe_to(
            Agent(model, tools=[noting]).stream_prompt("Go", approvals=control)
        )
        requests: list[ToolApprovalRequest] = await recorder.wait_for(ToolApprovalRequest, CALLS)
        taken: list[int] = []
        refused: list[str] = []
        unexpected: list[BaseException] = []
        started = threading.Event()

        def answer_some(number: int) -> None:
            started.set()
            for request in requests[number::THREADS]:
                try:
                    control.approve(request.internal_call_id)
                    taken.append(int(request.arguments["n"]))
                except ApprovalError as exc:
                    refused.append(exc.reason)
                except BaseException as exc:  # noqa: BLE001 - reported below
                    unexpected.append(exc)

        threads = in_threads(answer_some)
        await asyncio.to_thread(started.wait)
        subscription.dispose()  # while the threads answer
        await asyncio.to_thread(join, threads)
        for _ in range(20):  # loop iterations: an answer handed over before the dispose lands now
            await asyncio.sleep(0)
        assert len(server.requests) == 1, "no request after the dispose"
    assert unexpected == []
    assert len(taken) + len(refused) == CALLS
    assert set(refused) <= {"its run was disposed before it was answered"}
    assert control.pending == ()
    assert recorder.terminals == [], "a disposed run gets no terminal"
    assert set(ran) <= set(taken), "only calls approved before the dispose may have run"
    return len(taken)
