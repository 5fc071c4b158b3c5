"""The red team's scenarios (issue 22), each at its mechanism and through the real HTTP path:
Ctrl-C at any endpoint speed, replicas that are dead, fail or lie."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.grading.endpoint import EndpointConfig, RetryPolicy
from harness.grading.grade import GradeSpec, grade
from harness.io.pairs import load_pairs, write_pairs
from tests.helpers import SAMPLE


def _data(tmp_path: Path, n: int = 12, copies: int = 1) -> Path:
    frame = load_pairs(SAMPLE).head(n)
    if copies > 1:
        import pandas as pd

        frame = pd.concat([frame.assign(id=frame["id"] + f"-{k}", prompt=frame["prompt"] + f" ({k})",
                                        response=frame["response"] + f" ({k})") for k in range(copies)], ignore_index=True)
    return write_pairs(frame, tmp_path / "data.jsonl")


def _endpoint(*urls: str) -> EndpointConfig:
    return EndpointConfig(base_url=urls[0], replicas=tuple(urls[1:]), concurrency=8, timeout_s=5.0,
                          retry=RetryPolicy(max_attempts=8, initial_s=0.0, max_s=0.05, retry_after_cap_s=0.0))


def _completion_endpoint(message_400: str | None = None) -> tuple[str, object]:
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


@pytest.mark.slow
def test_a_model_named_like_markup_or_mathtext_runs_to_the_report(tmp_path: Path) -> None:
    url, httpd = _completion_endpoint()
    data = _data(tmp_path, 6)
    try:
        for model in ("[/x]", "$x^{2$"):
            run = tmp_path / f"run{len(model)}"
            graded = subprocess.run([sys.executable, "-m", "harness", "grade", str(data), "--base-url", url, "--model", model,
                                     "--out", str(run)], capture_output=True, text=True, timeout=60)
            assert graded.returncode == 0 and f"grading with model {model} " in graded.stderr, graded.stderr
            calibrated = subprocess.run([sys.executable, "-m", "harness", "calibrate", str(run), "--human", str(data), "--n-boot", "50"],
                                        capture_output=True, text=True, timeout=120)
            assert calibrated.returncode == 0, calibrated.stderr
            reported = subprocess.run([sys.executable, "-m", "harness", "report", str(run)], capture_output=True, text=True, timeout=120)
            assert reported.returncode == 0 and "Traceback" not in reported.stderr, reported.stderr
    finally:
        httpd.shutdown()  # type: ignore[attr-defined]


def test_a_script_in_a_model_name_stays_text_in_the_markdown_report(tmp_path: Path) -> None:
    from harness.report.document import render_report

    url, httpd = _completion_endpoint()
    try:
        grade(_data(tmp_path, 3), GradeSpec(model="<script>alert(1)</script>"), _endpoint(url), run_dir=tmp_path / "run")
    finally:
        httpd.shutdown()  # type: ignore[attr-defined]
    markdown = render_report(tmp_path / "run", out_dir=tmp_path / "run")["markdown"].read_text()
    assert "<script>" not in markdown and "&lt;script&gt;" in markdown
