"""What several test files share that is not a fixture: paths, the one CLI runner, an endpoint config for a test
server, its counts."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from typer.testing import CliRunner

from harness.cli.app import app
from harness.grading.endpoint import EndpointConfig, RetryPolicy
from harness.io.pairs import load_pairs, write_pairs
from harness.serve.runner import ServerHandle

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"
SAMPLE = REPO / "harness" / "data" / "sample_pairs.jsonl"
#: The one runner of the command line: tests take it as the ``cli`` fixture; plain helper functions and
#: hypothesis tests, which cannot take a fixture, use it by this name.
RUNNER = CliRunner()


def endpoint_for(handle: ServerHandle, **overrides: object) -> EndpointConfig:
    """An endpoint config for a test server: zero backoff, short timeout."""
    retry = RetryPolicy(max_attempts=int(overrides.pop("max_attempts", 6)), initial_s=0.0, retry_after_cap_s=0.0)  # type: ignore[call-overload]
    params: dict[str, object] = {"base_url": handle.base_url, "timeout_s": 5.0, "concurrency": 8, "retry": retry}
    params.update(overrides)
    return EndpointConfig(**params)  # type: ignore[arg-type]


def stats(handle: ServerHandle) -> dict[str, object]:
    """What the test server counted (requests, completions, faults …)."""
    return handle.endpoint.stats.as_json()


SECRET_KEY = "sk-test-HARDENING-0123456789"


def assert_no_traceback(result: Any) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output


def completion_body(content: str) -> bytes:
    return json.dumps({"id": "x", "object": "chat.completion", "model": "m",
                       "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
                       "usage": {"prompt_tokens": 5, "completion_tokens": 5}}).encode()


class Scripted:
    """A real HTTP server on 127.0.0.1 whose /v1/chat/completions runs ``handler(request_json)``."""

    def __init__(self, handler: Callable[[dict[str, Any]], Any]) -> None:
        self.handler = handler
        self.requests = 0
        self.port = 0
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._run, daemon=True).start()
        self._ready.wait(10)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _run(self) -> None:
        from aiohttp import web

        async def chat(request: web.Request) -> web.StreamResponse:
            self.requests += 1
            body = await request.json()
            result = self.handler(body)
            if asyncio.iscoroutine(result):
                result = await result
            if callable(result):
                return await result(request)
            return result

        async def start() -> None:
            app_ = web.Application()
            app_.router.add_post("/v1/chat/completions", chat)
            self._runner = web.AppRunner(app_, access_log=None, handle_signals=False)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(start())
        self._ready.set()
        self._loop.run_forever()

    def stop(self) -> None:
        async def cleanup() -> None:
            await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)


def one_pair(tmp_path: Path) -> Path:
    return write_pairs(pd.DataFrame([{"id": "a", "prompt": "How do I bake bread?"}]), tmp_path / "one.jsonl")


def sample_analysis(tmp_path: Path) -> Path:
    folder = tmp_path / "analysis"
    done = RUNNER.invoke(app, ["analyze", str(SAMPLE), "--n-boot", "50", "-o", str(folder)])
    assert done.exit_code == 0, done.output
    return folder / "analysis.json"


def pairs_file(tmp_path: Path, n: int = 12, copies: int = 1) -> Path:
    frame = load_pairs(SAMPLE).head(n)
    if copies > 1:
        import pandas as pd

        frame = pd.concat([frame.assign(id=frame["id"] + f"-{k}", prompt=frame["prompt"] + f" ({k})",
                                        response=frame["response"] + f" ({k})") for k in range(copies)], ignore_index=True)
    return write_pairs(frame, tmp_path / "data.jsonl")


def completion_endpoint(message_400: str | None = None) -> tuple[str, object]:
    """A real HTTP endpoint that grades everything Safe for any model, naming that model; or answers 400 with a message."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    answer = json.dumps({c: {"raw_0_7": 0, "severity_0_3": 0} for c in ("H", "S", "V", "SH")})

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            if message_400 is not None:
                status, payload = 400, {"error": {"message": message_400, "type": "invalid_request_error"}}
            else:
                status, payload = 200, {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                                        "choices": [{"index": 0, "finish_reason": "stop",
                                                     "message": {"role": "assistant", "content": answer}}],
                                        "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}}
            text = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{httpd.server_address[1]}/v1", httpd
