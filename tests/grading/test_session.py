"""One grading session: workers stop on a stop, Ctrl-C ends a grade with 130, the models that answered are recorded."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.grading.session import run_jobs
from harness.io.runs import read_labels
from tests.helpers import pairs_file


def test_workers_take_no_job_once_the_run_is_stopping() -> None:
    """A worker whose cancellation is lost (its request finished as it arrived) stops at its next job."""
    taken: list[int] = []

    class Swallower:
        async def job(self, job: list[int]) -> None:
            taken.append(job[0])
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                pass  # what a lost cancellation looks like from outside

    async def main() -> None:
        task = asyncio.create_task(run_jobs(Swallower(), iter([[i] for i in range(10_000)]), 4))  # type: ignore[arg-type]
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    before = len(taken)
    assert before < 200  # the 4 workers stopped after their current job, not after 10,000


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(3))
def test_ctrl_c_stops_a_fast_grade_with_exit_130(make_server, tmp_path: Path, trial: int) -> None:  # type: ignore[no-untyped-def]
    handle = make_server()
    data = pairs_file(tmp_path, 101, copies=40)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "harness",
            "grade",
            str(data),
            "--base-url",
            handle.base_url,
            "--out",
            str(tmp_path / "run"),
            "--no-cache",
            "-q",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    labels = tmp_path / "run" / "labels.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (labels.exists() and labels.stat().st_size > 20_000 * (trial + 1)):
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    code = process.wait(60)  # bounded by the wait, not asserted in seconds: a loaded machine is slower
    assert code == 130
    assert len(read_labels(tmp_path / "run")) < 2 * 101 * 40
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["status"] == "interrupted"


LOADING = """
import sys, time
from harness.grading.endpoint import EndpointConfig
from harness.grading.grade import GradeSpec, grade

def loading() -> None:  # an embedded server that takes its time to load a model
    sys.stderr.write("loading\\n"); sys.stderr.flush(); time.sleep(600)

try:
    endpoint = EndpointConfig(base_url=sys.argv[2], ready=loading)
    grade(sys.argv[1], GradeSpec(targets=("prompt",)), endpoint, run_dir=sys.argv[3])
except KeyboardInterrupt:
    sys.exit(130)
"""


@pytest.mark.slow
def test_ctrl_c_while_the_endpoint_loads_stops_the_grade(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The wait for an embedded server's model (EndpointConfig.ready) is no reason to ignore Ctrl-C."""
    process = subprocess.Popen(
        [sys.executable, "-c", LOADING, str(pairs_file(tmp_path, 2)), server.base_url, str(tmp_path / "run")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert process.stderr is not None and process.stderr.readline() == b"loading\n"
    process.send_signal(signal.SIGINT)
    assert process.wait(60) == 130  # bounded by the wait; the hook would hold it 600 s


def test_one_endpoint_answering_as_another_model_is_reported(cli: CliRunner, make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]

    from harness.cli.app import app

    liar = make_server(answer_as="harness-small")
    result = cli.invoke(
        app, ["grade", str(pairs_file(tmp_path)), "--base-url", liar.base_url, "--out", str(tmp_path / "run")]
    )
    assert result.exit_code == 0, result.output
    assert "answered as harness-small, not harness-baseline" in " ".join(result.output.split())
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["last_session"]["answered_models"] == {liar.base_url: ["harness-small"]}
