import asyncio
import threading
from typing import Any

import pytest

from rxllm.control import Backlog, PauseControl


def test_listeners_hear_each_change_once_until_disposed() -> None:
    control = PauseControl()
    heard: list[bool] = []
    subscription = control.add_listener(heard.append)
    control.pause()
    control.pause()
    control.resume()
    subscription.dispose()
    control.pause()
    assert heard == [True, False]
    assert control.is_paused


async def test_wait_resumed_returns_at_once_when_running() -> None:
    waiter = asyncio.ensure_future(PauseControl().wait_resumed())
    await asyncio.sleep(0)  # one pass of the loop: a waiter that waited would not be done
    assert waiter.done() and waiter.result() is None


async def test_wait_resumed_wakes_on_resume_from_another_thread() -> None:
    control = PauseControl(paused=True)
    waiter = asyncio.ensure_future(control.wait_resumed())
    # One pass of the loop runs the waiter's task up to its wait (tasks run in the order they were
    # scheduled): had it returned while paused, it would be done now.
    await asyncio.sleep(0)
    assert not waiter.done()
    threading.Thread(target=control.resume).start()
    await asyncio.wait_for(waiter, 1.0)


async def test_cancelled_waiter_is_forgotten() -> None:
    control = PauseControl(paused=True)
    waiter = asyncio.ensure_future(control.wait_resumed())
    await asyncio.sleep(0)
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    assert control._waiters == []


async def test_a_resume_landing_between_the_check_and_the_registration_is_not_lost() -> None:
    # The window the lock closes: wait_resumed saw "paused" and is about to register its waiter when
    # another thread resumes. The loop below resumes from another thread exactly there (in
    # create_future, which wait_resumed calls in between); the waiter must still return.
    control = PauseControl(paused=True)

    class ResumingLoop(asyncio.SelectorEventLoop):
        armed = False

        def create_future(self) -> asyncio.Future[Any]:
            if self.armed:
                self.armed = False
                resumer = threading.Thread(target=control.resume)
                resumer.start()
                resumer.join()
            return super().create_future()

    async def wait() -> None:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, ResumingLoop)
        loop.armed = True
        async with asyncio.timeout(2):  # no future of its own: the first one made is the waiter's
            await control.wait_resumed()

    def run() -> None:
        with asyncio.Runner(loop_factory=ResumingLoop) as runner:
            runner.run(wait())

    await asyncio.to_thread(run)
    assert not control.is_paused


def test_a_listener_that_raises_does_not_keep_the_others_from_hearing() -> None:
    control = PauseControl()
    heard: list[bool] = []

    def broken(_paused: bool) -> None:
        raise LookupError("listener bug")

    control.add_listener(broken)
    control.add_listener(heard.append)
    with pytest.raises(LookupError):
        control.pause()
    assert heard == [True]
    assert control.is_paused


def test_when_several_listeners_raise_the_first_ones_error_is_raised_after_all_heard() -> None:
    control = PauseControl()
    heard: list[bool] = []
    first, second = LookupError("first listener"), KeyError("second listener")

    def raising(error: Exception) -> Any:
        def listener(paused: bool) -> None:
            heard.append(paused)
            raise error

        return listener

    control.add_listener(raising(first))
    control.add_listener(raising(second))
    with pytest.raises(LookupError) as raised:
        control.pause()
    assert raised.value is first
    assert heard == [True, True]


def test_a_backlog_pauses_above_its_limit_once_and_resumes_at_half_once() -> None:
    backlog = Backlog(4)
    heard: list[bool] = []
    backlog.control.add_listener(heard.append)
    for _ in range(4):
        backlog.added()
    assert (backlog.held, heard, backlog.control.is_paused) == (4, [], False)  # at the limit: not yet
    backlog.added()
    assert (backlog.held, heard, backlog.control.is_paused) == (5, [True], True)
    backlog.added()
    assert (backlog.held, heard) == (6, [True])  # already paused: no second pause
    for _ in range(3):
        backlog.removed()
    assert (backlog.held, heard, backlog.control.is_paused) == (3, [True], True)  # above half (2)
    backlog.removed()
    assert (backlog.held, heard, backlog.control.is_paused) == (2, [True, False], False)
    backlog.removed()
    assert (backlog.held, heard) == (1, [True, False])  # running: no second resume


def test_a_backlog_of_one_pauses_at_the_second_event_and_resumes_when_empty() -> None:
    backlog = Backlog(1)
    heard: list[bool] = []
    backlog.control.add_listener(heard.append)
    backlog.added()
    assert heard == []
    backlog.added()
    assert heard == [True]
    backlog.removed()
    assert (backlog.held, heard) == (1, [True])  # 1 // 2 is 0: resumed only when empty
    backlog.removed()
    assert (backlog.held, heard) == (0, [True, False])


@pytest.mark.parametrize("limit", [0, -3])
def test_a_backlog_limit_below_one_is_refused_with_the_limit_in_the_message(limit: int) -> None:
    with pytest.raises(ValueError) as raised:
        Backlog(limit)
    assert str(raised.value) == f"a backlog limit must be 1 or more, not {limit}"
