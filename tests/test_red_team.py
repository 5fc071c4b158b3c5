"""The red team's scenarios (issue 22), each at its mechanism and through the real HTTP path:
Ctrl-C at any endpoint speed, replicas that are dead, fail or lie."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.grading.endpoint import EndpointConfig, RetryPolicy
from harness.grading.grade import GradeSpec, grade
from harness.grading.session import run_jobs
from harness.io.pairs import load_pairs, write_pairs
from harness.io.runs import read_labels
from harness.workflows.demo import free_port
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
    data = _data(tmp_path, 101, copies=40)
    process = subprocess.Popen([sys.executable, "-m", "harness", "grade", str(data), "--base-url", handle.base_url, "--run-dir",
                                str(tmp_path / "run"), "--no-cache", "-q"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    labels = tmp_path / "run" / "labels.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (labels.exists() and labels.stat().st_size > 20_000 * (trial + 1)):
        time.sleep(0.05)
    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    code = process.wait(30)
    assert code == 130 and time.monotonic() - started < 10
    assert len(read_labels(tmp_path / "run")) < 2 * 101 * 40
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["status"] == "interrupted"


def test_a_dead_replica_at_start_does_not_stop_the_run(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    dead = f"http://127.0.0.1:{free_port()}/v1"
    for urls in ((server.base_url, dead), (dead, server.base_url)):
        run = tmp_path / f"run{len(list(tmp_path.iterdir()))}"
        result = grade(_data(tmp_path), GradeSpec(), _endpoint(*urls), run_dir=run)
        assert result.manifest["counts"] == {"ok": 24, "unparsed": 0, "refused": 0, "failed": 0}


def test_every_replica_dead_names_them(tmp_path: Path) -> None:
    from harness.core.errors import GraderError

    dead = [f"http://127.0.0.1:{free_port()}/v1" for _ in range(2)]
    with pytest.raises(GraderError, match="cannot reach") as caught:
        grade(_data(tmp_path), GradeSpec(), _endpoint(*dead), run_dir=tmp_path / "run")
    assert all(url in str(caught.value) for url in dead)


def test_a_replica_answering_as_another_model_is_set_aside_and_named(server, make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    liar = make_server(answer_as="harness-small")
    data = _data(tmp_path)
    clean = grade(data, GradeSpec(), _endpoint(server.base_url), run_dir=tmp_path / "clean")
    mixed = grade(data, GradeSpec(), _endpoint(liar.base_url, server.base_url), run_dir=tmp_path / "mixed")
    assert mixed.manifest["counts"]["ok"] == 24
    session = mixed.manifest["last_session"]
    assert list(session["replicas_set_aside"]) == [liar.base_url]
    assert "answered as model 'harness-small', not 'harness-baseline'" in session["replicas_set_aside"][liar.base_url]
    same = {(r["id"], r["target"]): r["severity"] for r in read_labels(tmp_path / "clean")}
    assert {(r["id"], r["target"]): r["severity"] for r in read_labels(tmp_path / "mixed")} == same
    assert clean.manifest["last_session"].get("answered_models") is None


def test_one_endpoint_answering_as_another_model_is_reported(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from harness.cli.app import app

    liar = make_server(answer_as="harness-small")
    result = CliRunner().invoke(app, ["grade", str(_data(tmp_path)), "--base-url", liar.base_url, "--run-dir", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert "answered as harness-small, not harness-baseline" in " ".join(result.output.split())
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["last_session"]["answered_models"] == {liar.base_url: ["harness-small"]}


@pytest.mark.parametrize("mode", ["500", "html"])
def test_a_failing_replica_is_set_aside_and_the_healthy_one_serves(server, make_server, tmp_path: Path, mode: str) -> None:  # type: ignore[no-untyped-def]
    broken = make_server(fail_rate=1.0, fail_modes=(mode,))
    result = grade(_data(tmp_path), GradeSpec(), _endpoint(broken.base_url, server.base_url), run_dir=tmp_path / "run")
    assert result.manifest["counts"]["ok"] == 24
    by_replica = result.manifest["last_session"]["requests_by_replica"]
    assert by_replica[broken.base_url] < by_replica[server.base_url]  # cooled down, not favoured for failing fast
