"""``harness demo``: the main job end to end on the embedded endpoint and the bundled sample.

Starts ``harness serve`` as a background process on a free loopback port, grades the sample's
prompts, responses and relevance into ``runs/demo``, analyses the grader's transitions by
model, and stops the server.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .client import EndpointConfig
from .errors import GraderError
from .grading import GradeResult, GradeSpec, grade
from .sample import sample_path


@dataclass
class DemoResult:
    grade: GradeResult
    analysis: dict[str, Any]
    calibration: dict[str, Any]
    outputs: dict[str, Path]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_serve_process(port: int, *extra: str) -> subprocess.Popen[bytes]:
    """Run ``harness serve`` in a child process and wait until it answers."""
    process = subprocess.Popen(
        [sys.executable, "-m", "harness", "serve", "--port", str(port), *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            error = process.stderr.read().decode(errors="replace") if process.stderr else ""
            raise GraderError(f"harness serve exited early: {error.strip()[-500:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=1):
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise GraderError("harness serve did not answer within 60 s")


DEMO_MARKER = ".harness-demo"


def _fresh_demo_folder(folder: Path) -> None:
    """A demo starts from scratch, but deletes only a folder an earlier demo made (it holds
    the marker file); any other non-empty folder is left alone and refused."""
    import shutil

    from .atomic import ensure_folder
    from .errors import RunError

    if folder.exists():
        if not folder.is_dir():
            raise RunError(f"--run-dir {folder}: expected a folder, but it is a file")
        if any(folder.iterdir()) and not (folder / DEMO_MARKER).exists():
            raise RunError(f"--run-dir {folder}: the folder holds files the demo did not make; pick an empty or new folder")
        shutil.rmtree(folder)
    ensure_folder(folder, flag="--run-dir")
    (folder / DEMO_MARKER).write_text("made by harness demo; harness demo may delete this folder\n", encoding="utf-8")


def run_demo(run_dir: str | Path = "runs/demo", *, on_progress: Any = None) -> DemoResult:
    """Grade and analyse the bundled sample against a freshly started local endpoint."""

    from .calibration import calibrate_run, save_calibration
    from .pairs import load_pairs
    from .report import render_report
    from .runs import load_run, run_pairs
    from .transitions import analyze, save_analysis

    _fresh_demo_folder(Path(run_dir))
    port = free_port()
    process = start_serve_process(port)
    try:
        endpoint = EndpointConfig(base_url=f"http://127.0.0.1:{port}/v1", concurrency=32)
        spec = GradeSpec(targets=("prompt", "response", "relevance"))
        result = grade(sample_path(), spec, endpoint, run_dir=run_dir, cache_dir=Path(run_dir) / ".cache",
                       on_progress=on_progress)
    finally:
        process.terminate()
        process.wait(10)
    analysis = analyze(run_pairs(load_run(run_dir)), by="model", n_boot=1000)
    written = save_analysis(analysis, run_dir)
    calibration = calibrate_run(load_run(run_dir), load_pairs(sample_path()), n_boot=1000)
    calibration_files = save_calibration(calibration, run_dir)
    report = render_report(run_dir, out_dir=run_dir)
    return DemoResult(result, analysis, calibration, {"analysis": written[0], "calibration": calibration_files[0], **report})
