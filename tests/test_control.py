import asyncio
import threading

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
    await asyncio.sleep(0.05)
    assert not waiter.done()
    threading.Thread(target=control.resume).start()
    await asyncio.wait_for(waiter, 1.0)


async def test_a_resume_racing_a_pause_is_never_lost() -> None:
    # Many threads flip the switch; the last word wins for both the flag and waiters.
    control = PauseControl()
    threads = [threading.Thread(target=control.pause if i % 2 else control.resume) for i in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    control.resume()
    await asyncio.wait_for(control.wait_resumed(), 0.1)
    assert not control.is_paused


async def test_cancelled_waiter_is_forgotten() -> None:
    control = PauseControl(paused=True)
    waiter = asyncio.ensure_future(control.wait_resumed())
    await asyncio.sleep(0)
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    assert control._waiters == []
