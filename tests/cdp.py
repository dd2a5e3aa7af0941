"""Headless Chromium driven over the Chrome DevTools Protocol: a websocket, spoken with aiohttp.

Just what the browser tests need: open a page, evaluate JavaScript in it (and
wait, on the page's own events, for a condition to hold), take a screenshot.
Why not Selenium: it brings 14 packages (13 MB, trio among them, which would
make anyio's pytest plugin run marked tests on trio too) and a chromedriver
process between the test and the browser; this is one websocket and four
protocol methods, over the aiohttp rxllm already depends on.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import re
import shutil
from pathlib import Path
from typing import Any

import aiohttp

__all__ = ["Browser", "Page", "chromium"]

# What Chromium needs on this machine (and CI's): no sandbox as root, no GPU, and none of the background
# connections a closed network refuses.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=960,720",
    "--remote-debugging-port=0",
]


def chromium() -> str | None:
    """The Chromium executable (Debian's package ``chromium``), or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    """One Chromium process and its DevTools websocket; commands are answered by id, events kept."""

    def __init__(
        self,
        process: asyncio.subprocess.Process,
        socket: aiohttp.ClientWebSocketResponse,
        session: aiohttp.ClientSession,
    ) -> None:
        self.process = process
        self.socket = socket
        self.session = session
        self.numbers = itertools.count(1)
        self.answers: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.listeners: list[tuple[str, str | None, asyncio.Future[dict[str, Any]]]] = []
        self.log: list[str] = []
        self.reader = asyncio.create_task(self._read())
        self.drain: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, executable: str, profile: Path) -> Browser:
        process = await asyncio.create_subprocess_exec(
            executable,
            *FLAGS,
            f"--user-data-dir={profile}",  # a fresh profile
            "about:blank",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        assert process.stderr is not None
        # Chromium says where its DevTools listen on stderr once it is ready for them.
        seen: list[str] = []
        while True:
            line = (await asyncio.wait_for(process.stderr.readline(), 60)).decode(errors="replace")
            if not line:
                raise RuntimeError("Chromium exited before it listened for DevTools:\n" + "".join(seen))
            seen.append(line)
            found = re.search(r"DevTools listening on (ws://\S+)", line)
            if found:
                break
        session = aiohttp.ClientSession()
        socket = await session.ws_connect(found[1], max_msg_size=0)
        browser = cls(process, socket, session)
        browser.log.extend(seen)
        browser.drain = asyncio.create_task(browser._drain_stderr())
        return browser

    async def _drain_stderr(self) -> None:
        assert self.process.stderr is not None
        while line := await self.process.stderr.readline():
            self.log.append(line.decode(errors="replace"))

    async def _read(self) -> None:
        async for message in self.socket:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            data = json.loads(message.data)
            if "id" in data:
                answer = self.answers.pop(data["id"], None)
                if answer is not None and not answer.done():
                    answer.set_result(data)
            else:
                for listener in list(self.listeners):
                    method, session_id, future = listener
                    if data.get("method") == method and data.get("sessionId") == session_id:
                        self.listeners.remove(listener)
                        if not future.done():
                            future.set_result(data.get("params", {}))
        for answer in self.answers.values():
            if not answer.done():
                answer.set_exception(ConnectionError("the DevTools connection closed"))

    async def send(
        self, method: str, params: dict[str, Any] | None = None, session_id: str | None = None
    ) -> Any:
        number = next(self.numbers)
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.answers[number] = answer
        message: dict[str, Any] = {"id": number, "method": method, "params": params or {}}
        if session_id is not None:
            message["sessionId"] = session_id
        await self.socket.send_str(json.dumps(message))
        data = await asyncio.wait_for(answer, 60)
        if "error" in data:
            raise RuntimeError(f"{method}: {data['error']}")
        return data["result"]

    def next_event(self, method: str, session_id: str | None) -> asyncio.Future[dict[str, Any]]:
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.listeners.append((method, session_id, future))
        return future

    async def new_page(self) -> Page:
        target = await self.send("Target.createTarget", {"url": "about:blank"})
        attached = await self.send("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})
        page = Page(self, attached["sessionId"])
        await page.send("Page.enable")
        return page

    async def close(self) -> None:
        try:
            await asyncio.wait_for(self.send("Browser.close"), 10)
        except (RuntimeError, ConnectionError, TimeoutError):
            self.process.kill()
        await self.socket.close()
        await self.session.close()
        await asyncio.wait_for(self.process.wait(), 30)
        self.reader.cancel()
        await asyncio.gather(self.reader, *([self.drain] if self.drain else []), return_exceptions=True)


class Page:
    """One tab, through its flattened DevTools session."""

    def __init__(self, browser: Browser, session_id: str) -> None:
        self.browser = browser
        self.session_id = session_id

    async def send(self, method: str, params: dict[str, Any] | None = None) -> Any:
        return await self.browser.send(method, params, self.session_id)

    async def goto(self, url: str) -> None:
        loaded = self.browser.next_event("Page.loadEventFired", self.session_id)
        await self.send("Page.navigate", {"url": url})
        await asyncio.wait_for(loaded, 30)

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (a promise is awaited); a JavaScript error raises."""
        done = await self.send(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True}
        )
        if "exceptionDetails" in done:
            details = done["exceptionDetails"]
            raise RuntimeError(details.get("exception", {}).get("description") or details.get("text"))
        return done["result"].get("value")

    async def wait_for(self, condition: str, timeout: float = 20) -> None:
        """Until the JavaScript ``condition`` holds: checked on every change of the document, not polled."""
        await self.evaluate(
            f"""new Promise((resolve, reject) => {{
                const holds = () => {{
                    try {{ return Boolean({condition}); }} catch (e) {{ return false; }}
                }};
                if (holds()) return resolve(true);
                const observer = new MutationObserver(() => {{
                    if (holds()) {{ observer.disconnect(); resolve(true); }}
                }});
                const all = {{subtree: true, childList: true, characterData: true, attributes: true}};
                observer.observe(document, all);
                setTimeout(() => {{
                    observer.disconnect();
                    reject(new Error("timed out waiting for: " + {json.dumps(condition)} + "\\n" +
                                     document.body.innerText));
                }}, {int(timeout * 1000)});
            }})"""
        )

    async def screenshot(self, path: Path) -> None:
        shot = await self.send("Page.captureScreenshot", {"format": "png"})
        path.write_bytes(base64.b64decode(shot["data"]))
