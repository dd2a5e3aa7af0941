import asyncio
import threading
from typing import Any

import pytest

from rxllm.control import PauseControl


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
    await asyncio.wait_for(PauseControl().wait_resumed(), 0.1)


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
