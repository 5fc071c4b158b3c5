"""The real local model (SmolLM2-135M, the [local] extra) behind ``harness serve``: with and without prefix reuse.

A few-shot grading job sends the rubric and the exemplars before every item. Each mode grades the same items through
``harness grade`` against its own ``harness serve`` child (one request in flight, no cache): items/s, seconds per 1,000
prompt tokens, the share of prompt tokens reused, and the server's peak memory (VmHWM). Two answer lengths: 8 tokens
(a grader whose verdict is short: the prompt dominates) and 160 (the default template's JSON answer: generation
dominates, so reuse saves less).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from harness.io.sample import sample_path
from harness.serve.local_model import missing_modules
from harness.workflows.embedded import free_port, start_serve_process

REPO = Path(__file__).resolve().parent.parent
MODEL = "smollm2-135m"


def _peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _ready(port: int, timeout_s: float = 600.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
            if json.loads(response.read()).get("ready"):
                return
        time.sleep(0.2)
    raise RuntimeError("the local model did not load")


def _job(port: int, out: Path, limit: int, max_tokens: int) -> dict[str, Any]:
    command = [sys.executable, "-m", "harness", "grade", str(sample_path()), "--base-url", f"http://127.0.0.1:{port}/v1",
               "--model", MODEL, "--target", "prompt", "--limit", str(limit), "--max-tokens", str(max_tokens),
               "--shots", str(REPO / "prompts" / "default_shots.jsonl"), "--no-cache", "--concurrency", "1",
               "--timeout", "600", "--quiet", "--json", "--allow-failed", "-o", str(out)]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    manifest = json.loads(done.stdout)
    rows = [json.loads(line) for line in (out / "labels.jsonl").read_text().splitlines()]
    prompt = sum(r["prompt_tokens"] for r in rows)
    reused = sum(r["cached_prompt_tokens"] for r in rows)
    seconds = sum(r["latency_ms"] for r in rows) / 1000
    return {"items": len(rows), "seconds": round(seconds, 2), "wall_s": round(wall, 1), "items_s": round(len(rows) / seconds, 3),
            "s_per_1k_prompt_tokens": round(seconds / (prompt / 1000), 3), "prompt_tokens_reused": round(reused / prompt, 3),
            "counts": manifest["counts"]}


def local_figures(limit: int = 8) -> dict[str, Any]:
    """Both modes at both answer lengths; ratios reuse/no-reuse measured in this run."""
    if missing_modules(MODEL):
        return {"skipped": "the [local] extra is not installed (make install-local)"}
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for reuse in (True, False):
            port = free_port()
            server = start_serve_process(port, "--model-name", MODEL, *(() if reuse else ("--no-prefix-reuse",)))
            try:
                started = time.perf_counter()
                _ready(port)
                mode = "reuse" if reuse else "no_reuse"
                figures[f"{mode}_load_s"] = round(time.perf_counter() - started, 1)
                for tokens, items in ((8, limit), (160, max(2, limit // 2))):
                    job = _job(port, tmp / f"{mode}-{tokens}", items, tokens)
                    for key in ("items_s", "s_per_1k_prompt_tokens", "prompt_tokens_reused"):
                        figures[f"{mode}_{tokens}tok_{key}"] = job[key]
                figures[f"{mode}_server_peak_mb"] = round(_peak_mb(server.pid), 1)
            finally:
                server.terminate()
                server.wait(10)
    for tokens in (8, 160):
        figures[f"speedup_{tokens}tok"] = round(figures[f"reuse_{tokens}tok_items_s"] / figures[f"no_reuse_{tokens}tok_items_s"], 2)
    return figures


if __name__ == "__main__":
    for key, value in local_figures().items():
        print(f"  {key:36s} {value}")
