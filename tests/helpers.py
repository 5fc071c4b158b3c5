"""What several test files share that is not a fixture: paths, the one CLI runner, an endpoint config for a test
server, its counts."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import strategies as st
from typer.testing import CliRunner

from harness.analysis.krippendorff import alpha_from_coincidences, coincidences
from harness.cli.app import app
from harness.core.constants import CATEGORIES
from harness.grading.endpoint import EndpointConfig, RetryPolicy
from harness.io.pairs import load_pairs, write_pairs
from harness.io.runs import read_labels
from harness.serve.runner import ServerHandle
from validation.studies import Setting, draw

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
    return json.dumps(
        {
            "id": "x",
            "object": "chat.completion",
            "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 5},
        }
    ).encode()


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

        frame = pd.concat(
            [
                frame.assign(
                    id=frame["id"] + f"-{k}", prompt=frame["prompt"] + f" ({k})", response=frame["response"] + f" ({k})"
                )
                for k in range(copies)
            ],
            ignore_index=True,
        )
    return write_pairs(frame, tmp_path / "data.jsonl")


def completion_endpoint(message_400: str | None = None) -> tuple[str, object]:
    """A real HTTP endpoint that grades everything Safe for any model, naming that model; or answers 400 with a
    message."""
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


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def exit_and_output(*args: str) -> tuple[int, str]:
    result = RUNNER.invoke(app, list(args))
    return result.exit_code, result.output


def rater_study(
    seed: int, n: int = 300, k: int = 3, human: float = 0.8, graders: dict[str, float] | None = None
) -> pd.DataFrame:
    """Three annotators about 80 % right on a k-class label, and graders of given accuracy."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n)

    def rater(accuracy: float) -> np.ndarray:
        wrong = (truth + rng.integers(1, k, n)) % k
        return np.where(rng.random(n) < accuracy, truth, wrong)

    frame = pd.DataFrame({"id": [f"i{i}" for i in range(n)], "prompt_id": [f"p{i // 2}" for i in range(n)]})
    for j in (1, 2, 3):
        frame[f"a{j}"] = [f"c{v}" for v in rater(human)]
    for name, accuracy in (graders or {"good": 0.93, "poor": 0.55}).items():
        frame[name] = [f"c{v}" for v in rater(accuracy)]
    return frame


def alpha_of(table: np.ndarray, level: str, k: int, values: np.ndarray | None = None) -> float:
    return float(alpha_from_coincidences(coincidences(table, k).sum(axis=0), k, level, values))


def endpoint_at(*urls: str) -> EndpointConfig:
    return EndpointConfig(base_url=urls[0], replicas=tuple(urls[1:]), concurrency=8, timeout_s=5.0,
                          retry=RetryPolicy(max_attempts=8, initial_s=0.0, max_s=0.05, retry_after_cap_s=0.0))


SOAK = os.environ.get("HARNESS_SOAK") == "1"


record_strategy = st.dictionaries(
    st.sampled_from(["id", "prompt", "response", "prompt_hate", "response_sexual", "model", "x"]),
    st.one_of(st.none(), st.integers(-2, 9), st.text(max_size=6), st.floats(allow_nan=True), st.booleans()),
)


content_strategy = st.one_of(
    st.binary(max_size=400),
    st.lists(record_strategy, max_size=5).map(lambda rows: "".join(json.dumps(r) + "\n" for r in rows).encode()),
    st.lists(st.lists(st.text(max_size=8), min_size=1, max_size=4), max_size=5).map(
        lambda rows: "\n".join(",".join(cells) for cells in rows).encode()
    ),
)


def assert_refused_cleanly(result, path: Path, out: Path) -> None:  # type: ignore[no-untyped-def]
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)  # our error, not a traceback
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and path.name in errors[0], result.output
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".") or ".tmp" in p.name]  # no temp left


def small_pairs(tmp_path: Path, n: int = 20) -> Path:
    frame = load_pairs(SAMPLE).head(n)
    return write_pairs(frame, tmp_path / "small.jsonl")


def labels_by_key(run: Path) -> dict[tuple[str, str], dict[str, object]]:
    return {(r["id"], r["target"]): r for r in read_labels(run)}


SAFE_VERDICT = {"H": {"raw_0_7": 0, "severity_0_3": 0}, "S": {"raw_0_7": 0, "severity_0_3": 0},
           "V": {"raw_0_7": 0, "severity_0_3": 0}, "SH": {"raw_0_7": 0, "severity_0_3": 0}}


def distinct_pairs(n: int) -> pd.DataFrame:
    """``n`` distinct pairs made from the bundled sample (each text made unique by a suffix)."""
    base = load_pairs(SAMPLE)
    rows = []
    for i in range(n):
        row = base.iloc[i % len(base)]
        rows.append({"id": f"p{i:05d}", "prompt": f"{row['prompt']} (case {i})",
                     "response": f"{row['response']} (case {i})", "model": row["model"]})
    return pd.DataFrame(rows)


def assert_run_is_whole(run: Path, expected: int) -> list[dict[str, object]]:
    raw = (run / "labels.jsonl").read_bytes()
    assert raw.endswith(b"\n")
    records = [json.loads(line) for line in raw.splitlines()]  # every line is whole JSON
    keys = [(r["id"], r["target"]) for r in records]
    assert len(keys) == len(set(keys)) == expected  # no id written twice, none missing
    return records


def few_pairs(tmp_path: Path, n: int = 12) -> Path:
    return write_pairs(load_pairs(SAMPLE).head(n), tmp_path / "small.jsonl")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens once the socket is closed


def cli_stdout(*args: str) -> str:
    result = RUNNER.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def kappa_table(seed: int, prompts: int, path: Path, setting: Setting) -> None:
    _, r, _, gr, clusters = draw(setting, np.random.default_rng(seed), n_prompts=prompts)
    table = pd.DataFrame(
        {
            "id": [f"i{i}" for i in range(clusters.size)],
            "prompt_id": [f"q{c}" for c in clusters],
            "prompt": "x",
            "human": r.max(axis=1),
            "grader": gr.max(axis=1),
        }
    )
    write_pairs(table, path)


def rare_positives(folder: Path) -> Path:
    """60 prompt clusters of two items; human positives in 5 clusters only, so recall is undefined in small studies
    (their recall differs, 1/2, 0 or 1, so few simulated studies are degenerate: every resample the same)."""
    rows = []
    for c in range(60):
        for j in range(2):
            gold = 1 if c % 12 == 0 else 0
            pred = 0 if c == 24 else gold if (c + j) % 5 else 1 - gold
            rows.append({"id": f"c{c}-{j}", "prompt_id": f"c{c}", "gold": gold, "pred": pred})
    path = folder / "pilot.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


CORRELATED = Setting(rho=0.7, miss_response=0.35)


def head_pairs(tmp_path: Path, rows: int = 45) -> Path:
    return write_pairs(load_pairs(SAMPLE).head(rows), tmp_path / "pairs.jsonl")


def xstest_like(folder: Path) -> Path:
    """Two annotators, a final label and a grader's verdict (with free text outside the label set) per item."""
    rows = []
    for i in range(40):
        final = "unsafe" if i % 4 == 0 else "safe"
        other = "safe" if final == "unsafe" else "unsafe"
        ann1 = final if i % 7 else other
        ann2 = final if i % 5 else other
        grader = "it depends" if i % 10 == 3 else (final if i % 3 else other)
        rows.append(
            {"id": f"x{i}", "prompt_id": f"p{i // 2}", "ann1": ann1, "ann2": ann2, "final": final, "gpt4": grader}
        )
    path = folder / "xs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def study_file(folder: Path, base_url: str, *, extra: str = "") -> Path:
    """A small study: 30 sample pairs graded by two graders, calibrated, compared, analysed, reported."""
    folder.mkdir(parents=True, exist_ok=True)
    write_pairs(load_pairs(SAMPLE).head(30), folder / "pairs.jsonl")
    write_pairs(load_pairs(SAMPLE).head(30), folder / "human.jsonl")
    study = folder / "study.toml"
    study.write_text(f'''
[study]
out = "{folder / 'out'}"
data = "pairs.jsonl"
human = "human.jsonl"
n_boot = 100

[endpoint]
base_url = "{base_url}"
concurrency = 4

[[grader]]
name = "base"
model = "harness-baseline"

[[grader]]
name = "small"
model = "harness-small"
shots = "none"

[calibrate]
[compare]
[analyze]
by = "model"
[report]
{extra}''', encoding="utf-8")
    return study


def write_run(folder: Path, verdicts: list[int], *, clusters: int, params: dict[str, Any] | None = None,
              cached: int = 0, model: str = "sim") -> Path:
    """A run folder as ``harness grade`` leaves it: one response verdict (hate) per item, items spread over clusters."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = [{"id": f"i{i}", "prompt_id": f"p{i % clusters}", "prompt": f"prompt {i % clusters}",
             "response": f"answer {i}"} for i in range(len(verdicts))]
    (folder / "input.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    labels = [{"id": f"i{i}", "target": "response", "status": "ok", **({"cached": True} if i < cached else {}),
               "severity": {c: (v if c == "hate" else 0) for c in CATEGORIES}} for i, v in enumerate(verdicts)]
    (folder / "labels.jsonl").write_text("".join(json.dumps(r) + "\n" for r in labels), encoding="utf-8")
    manifest = {"model": model, "template_hash": "t", "shots_hash": "none", "status": "complete", "schema_version": 1,
                "input_sha256": "x", "targets": ["response"], "items": len(verdicts), "cache_hits": cached,
                "params": {"temperature": 0.7, "seed": 1, "max_tokens": 400, "json_mode": True, "items_per_request": 1,
                           **(params or {})}}
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return folder
