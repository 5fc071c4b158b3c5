"""A headless Chromium driven over the DevTools protocol through a pipe (no websocket, no extra package).

``with Browser() as b: b.open(url); b.evaluate("document.title"); b.screenshot(path)`` is all the
report and view checks need: load a page from disk, run JavaScript in it (click, type, read the
DOM), and capture what a reader sees. Chromium is started with ``--remote-debugging-pipe`` and
reads commands on fd 3 and answers on fd 4, NUL-separated JSON.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--hide-scrollbars", "--remote-debugging-pipe"]


def chromium() -> str | None:
    """The Chromium on PATH, or None."""
    names = ("chromium", "chromium-browser", "google-chrome")
    return next((found for name in names if (found := shutil.which(name))), None)


class Browser:
    """One headless Chromium with one page."""

    def __init__(self, width: int = 1280, height: int = 900) -> None:
        binary = chromium()
        if binary is None:
            raise RuntimeError("no chromium on PATH: apt-get install chromium (make report-check does it)")
        to_child, self._write = os.pipe()
        self._read, from_child = os.pipe()

        def wire() -> None:  # in the child: the pipe ends become fds 3 and 4
            a, b = os.dup(to_child), os.dup(from_child)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self._profile = tempfile.mkdtemp(prefix="harness-chromium-")
        self._process = subprocess.Popen([binary, *FLAGS, f"--user-data-dir={self._profile}",
                                          f"--window-size={width},{height}", "about:blank"],
                                         preexec_fn=wire, close_fds=False,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_child)
        os.close(from_child)
        self._buffer = b""
        self._next = 0
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self._session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
                  page=True)

    def call(self, method: str, params: dict[str, Any] | None = None, *,
             page: bool = False, timeout_s: float = 60.0) -> Any:
        """Send one command and wait for its answer (events in between are skipped)."""
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params or {}}
        if page:
            message["sessionId"] = self._session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            while b"\0" not in self._buffer:
                chunk = os.read(self._read, 1 << 20)
                if not chunk:
                    raise RuntimeError("chromium closed the pipe")
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\0", 1)
            answer = json.loads(raw)
            if answer.get("id") == self._next:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer.get("result", {})
        raise TimeoutError(method)

    def open(self, path: Path, *, ready: str = "document.readyState === 'complete'", timeout_s: float = 60.0) -> None:
        """Load a file and wait until ``ready`` (a JavaScript expression) is true."""
        self.call("Page.navigate", {"url": path.resolve().as_uri()}, page=True)
        deadline = time.monotonic() + timeout_s
        while not self.evaluate(f"!!({ready})"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{path}: the page was not ready in {timeout_s:g} s")
            time.sleep(0.05)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (a thrown error is raised here)."""
        result = self.call("Runtime.evaluate",
                           {"expression": expression, "returnByValue": True, "awaitPromise": True},
                           page=True)
        if "exceptionDetails" in result:
            description = result["exceptionDetails"].get("exception", {}).get("description")
            raise RuntimeError(f"{expression[:80]}: {description}")
        return result["result"].get("value")

    def screenshot(self, path: Path, *, full_page: bool = False) -> Path:
        """A PNG of the viewport (or the whole page)."""
        params: dict[str, Any] = {"format": "png", "captureBeyondViewport": full_page}
        if full_page:
            size = self.evaluate("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
            params["clip"] = {"x": 0, "y": 0, "width": size[0], "height": min(size[1], 16000), "scale": 1}
        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", params, page=True)["data"]))
        return path

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self._process.kill()
        self._process.wait(10)
        os.close(self._write)
        os.close(self._read)
        shutil.rmtree(self._profile, ignore_errors=True)
