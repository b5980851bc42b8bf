"""Headless Chromium for the browser tests: found on the machine (Debian's
``chromium``), and driven over the DevTools protocol on a pipe."""

from __future__ import annotations

import base64
import fcntl
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["DevTools", "find_chromium"]


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        if found := shutil.which(name):
            return found
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


class DevTools:
    """Headless Chromium driven over the DevTools protocol on a pipe (fds 3 and 4 of the
    browser, NUL-separated JSON messages), so no websocket client is needed."""

    FLAGS = (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-default-apps",
        "--disable-domain-reliability",
        "--disable-client-side-phishing-detection",
        "--disable-sync",
        "--disable-extensions",
        "--no-pings",
        "--hide-scrollbars",
        "--mute-audio",
        # Nothing but loopback resolves: the browser can reach no other host.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--window-size=1280,800",
        "--remote-debugging-pipe",
    )

    def __init__(
        self, executable: str, profile: Path, log: Path, *, reply_timeout: float = 15
    ) -> None:
        self.reply_timeout = reply_timeout
        to_browser, self._out = os.pipe()
        self._in, from_browser = os.pipe()
        # Move the child's ends above 10, then a tiny Python trampoline puts them on the
        # browser's fds 3 and 4 (dash cannot redirect fds above 9).
        child_in = fcntl.fcntl(to_browser, fcntl.F_DUPFD_CLOEXEC, 10)
        child_out = fcntl.fcntl(from_browser, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(to_browser)
        os.close(from_browser)
        trampoline = (
            "import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); "
            "os.closerange(5, 1 << 16); os.execv(sys.argv[3], sys.argv[3:])"
        )
        argv = [executable, *self.FLAGS, f"--user-data-dir={profile}", "about:blank"]
        self._log = log.open("wb")
        self.log_path = log
        self.proc = subprocess.Popen(
            [sys.executable, "-c", trampoline, str(child_in), str(child_out), *argv],
            pass_fds=(child_in, child_out),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        os.close(child_in)
        os.close(child_out)
        self._ids = iter(range(1, 1_000_000))
        self._replies: queue.Queue[dict[str, Any]] = queue.Queue()
        self.events: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        buffer = b""
        while chunk := os.read(self._in, 1 << 16):
            buffer += chunk
            *messages, buffer = buffer.split(b"\0")
            for raw in messages:
                message = json.loads(raw)
                if "id" in message:
                    self._replies.put(message)
                else:
                    self.events.append(message)

    def call(
        self, method: str, params: dict[str, Any] | None = None, session: str | None = None
    ) -> dict[str, Any]:
        ident = next(self._ids)
        message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        while True:
            try:
                reply = self._replies.get(timeout=self.reply_timeout)
            except queue.Empty:
                raise AssertionError(f"no reply to {method}; browser log:\n{self.log()}") from None
            if reply["id"] == ident:
                break
        if "error" in reply:
            raise AssertionError(f"{method}: {reply['error']}")
        return dict(reply.get("result", {}))

    def evaluate(self, session: str, expression: str) -> Any:
        result = self.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            session,
        )
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, session: str, expression: str, timeout: float = 15) -> Any:
        deadline = time.monotonic() + timeout
        while not (value := self.evaluate(session, expression)):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {expression}; log:\n{self.log()}")
            time.sleep(0.1)
        return value

    def open_page(self) -> str:
        """A new page target, attached in flat mode: its session id."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        params = {"targetId": target, "flatten": True}
        return str(self.call("Target.attachToTarget", params)["sessionId"])

    def open_window(self, url: str, width: int, height: int) -> str:
        """A page of ``width`` x ``height`` CSS pixels with the Page, Runtime, Network
        and Log events recorded (``events``), navigated to ``url``: its session id."""
        session = self.open_page()
        for domain in ("Page", "Runtime", "Network", "Log"):
            self.call(f"{domain}.enable", session=session)
        metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
        self.call("Emulation.setDeviceMetricsOverride", metrics, session)
        self.call("Page.navigate", {"url": url}, session)
        return session

    def click(self, session: str, selector: str) -> None:
        """Click the first element matching the CSS ``selector`` (which must exist)."""
        found = self.evaluate(
            session,
            f"(() => {{ const e = document.querySelector({json.dumps(selector)}); "
            "if (!e) return false; e.click(); return true; })()",
        )
        assert found, f"nothing matches {selector!r} to click"

    def type_text(self, session: str, selector: str, text: str) -> None:
        """Focus the element matching ``selector`` and type ``text`` into it as
        keyboard input (``Input.insertText``: the page sees real input events)."""
        self.evaluate(session, f"document.querySelector({json.dumps(selector)}).focus()")
        self.call("Input.insertText", {"text": text}, session)

    def paste(self, session: str, selector: str, text: str) -> None:
        """Paste ``text`` into the element matching ``selector`` as a person pasting
        from the clipboard does: a ``paste`` event carrying it as ``text/plain``, so an
        editor inserts it verbatim (no auto-closed brackets, no auto-indent)."""
        self.evaluate(
            session,
            "(() => { const target = document.querySelector("
            f"{json.dumps(selector)}); target.focus(); "
            "const data = new DataTransfer(); "
            f"data.setData('text/plain', {json.dumps(text)}); "
            "target.dispatchEvent(new ClipboardEvent('paste', "
            "{clipboardData: data, bubbles: true, cancelable: true})); })()",
        )

    def screenshot(self, session: str) -> bytes:
        """A PNG of the page's viewport."""
        data = self.call("Page.captureScreenshot", {"format": "png"}, session)["data"]
        return base64.b64decode(data)

    def requested_urls(self) -> list[str]:
        """Every URL the browser's pages asked for so far (Network events)."""
        return [
            e["params"]["request"]["url"]
            for e in self.events
            if e["method"] == "Network.requestWillBeSent"
        ]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def close(self) -> None:
        try:
            os.write(self._out, json.dumps({"id": 0, "method": "Browser.close"}).encode() + b"\0")
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait(timeout=10)
        finally:
            os.close(self._out)
            self._reader.join(timeout=5)
            os.close(self._in)
            self._log.close()
