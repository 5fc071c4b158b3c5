"""Grading through the Batch API of harness serve: same labels, no resubmission after kill -9, faults become failed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli.app import app
from harness.grading.batch_api import BatchOptions
from harness.grading.endpoint import EndpointConfig
from harness.grading.grade import GradeSpec, grade
from harness.io.pairs import load_pairs, write_pairs
from harness.io.runs import read_labels
from harness.workflows.embedded import free_port, start_serve_process
from tests.helpers import SAMPLE, endpoint_for

FAST = BatchOptions(poll_initial_s=0.05, poll_max_s=0.2)


def _stats(base_url: str) -> dict[str, int]:
    with urllib.request.urlopen(base_url.removesuffix("/v1") + "/stats") as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def _severities(run: Path) -> dict[tuple[str, str], object]:
    return {(r["id"], r["target"]): (r["status"], r["severity"]) for r in read_labels(run)}


def test_batch_labels_equal_the_synchronous_run(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = write_pairs(load_pairs(SAMPLE).head(40), tmp_path / "d.jsonl")
    before = _stats(server.base_url)
    grade(data, GradeSpec(), endpoint_for(server), run_dir=tmp_path / "sync")
    batched = grade(data, GradeSpec(), endpoint_for(server), run_dir=tmp_path / "batch", cache_dir=tmp_path / "cache", batch=FAST)
    assert _severities(tmp_path / "batch") == _severities(tmp_path / "sync")
    assert batched.manifest["status"] == "complete" and batched.manifest["counts"]["ok"] == 80
    after = _stats(server.base_url)
    assert after["batches_created"] - before["batches_created"] == 1  # one file, one batch (80 requests, a few identical)
    state = json.loads((tmp_path / "batch" / "batches.json").read_text())
    assert state["batches"][0]["recorded"] is True
    again = grade(data, GradeSpec(), endpoint_for(server), run_dir=tmp_path / "batch2", cache_dir=tmp_path / "cache", batch=FAST)
    assert again.manifest["cache_hits"] == 80 and _stats(server.base_url)["batches_created"] == after["batches_created"]


def _uploaded_copy(url: str, file_id: str) -> str:
    """Upload the content of ``file_id`` again, as a process killed after uploading and before creating would leave it."""
    import urllib.request
    import uuid

    content = urllib.request.urlopen(f"{url}/files/{file_id}/content", timeout=10).read()
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"b.jsonl\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + content + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(f"{url}/files", data=body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    return str(json.loads(urllib.request.urlopen(request, timeout=10).read())["id"])


@pytest.mark.slow
@pytest.mark.parametrize("killed", ["polling", "after_create", "before_create"])
def test_kill_9_while_polling_then_rerun_never_resubmits(cli: CliRunner, tmp_path: Path, killed: str) -> None:
    port = free_port()
    serve = start_serve_process(port, "--batch-fault", "slow")
    url = f"http://127.0.0.1:{port}/v1"
    data = write_pairs(load_pairs(SAMPLE).head(12), tmp_path / "d.jsonl")
    command = [sys.executable, "-m", "harness", "grade", str(data), "--base-url", url, "--out", str(tmp_path / "run"),
               "--batch", "-q", "--no-cache"]
    env = {**os.environ, "HARNESS_BATCH_POLL_S": "0.05"}
    try:
        first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        state_path = tmp_path / "run" / "batches.json"
        while time.monotonic() < deadline and not (state_path.exists() and json.loads(state_path.read_text())["batches"][0]["id"]):
            time.sleep(0.02)
        os.kill(first.pid, signal.SIGKILL)  # killed while it polls (the slow batch takes about 5 s)
        first.wait()
        created = _stats(url)["batches_created"]
        assert created == 1 and len(read_labels(tmp_path / "run")) == 0
        state = json.loads(state_path.read_text())
        entry = state["batches"][0]
        if killed != "polling":  # what a kill between upload and the batch id being written leaves on disk
            if killed == "before_create":
                entry["input_file_id"] = _uploaded_copy(url, entry["input_file_id"])
            entry["id"], entry["status"] = None, "submitting"
            state_path.write_text(json.dumps(state))
            shown = cli.invoke(app, ["batch", "status", str(tmp_path / "run"), "--base-url", url], env={"COLUMNS": "120"})
            assert f"({entry['input_file_id']})" in shown.output and "batch not yet confirmed" in shown.output, shown.output
        second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert second.returncode == 0, second.stderr
        # polling and after_create: the batch already there is used; before_create: made once from the uploaded file
        assert _stats(url)["batches_created"] == created + (killed == "before_create")
        batches = json.loads(state_path.read_text())["batches"]
        assert len(batches) == 1 and batches[0]["id"] and batches[0]["recorded"]
        assert batches[0]["input_file_id"] == entry["input_file_id"]  # the uploaded file was used, not uploaded again
        records = read_labels(tmp_path / "run")
        assert len(records) == 24 and {r["status"] for r in records} == {"ok"}
    finally:
        serve.kill()
        serve.wait(10)


@pytest.mark.parametrize(("fault", "reason"), [
    ("fail_validation", "failed without answering it: injected: the batch failed validation"),
    ("expire", "expired without answering it"),
    ("error_lines", "line failed (500): injected: the line failed"),
])
def test_batch_faults_end_failed_with_reasons_and_retry_regrades_them(make_server, tmp_path: Path, fault: str, reason: str) -> None:  # type: ignore[no-untyped-def]
    faulty = make_server(batch_fault=fault)
    data = write_pairs(load_pairs(SAMPLE).head(10), tmp_path / "d.jsonl")
    result = grade(data, GradeSpec(targets=("prompt",)), endpoint_for(faulty), run_dir=tmp_path / "run", batch=FAST)
    failed = [r for r in read_labels(tmp_path / "run") if r["status"] == "failed"]
    assert failed and all(reason in r["error"] for r in failed), failed[:1]
    assert result.manifest["counts"]["failed"] == len(failed)
    healthy = make_server()
    retried = grade(data, GradeSpec(targets=("prompt",)), EndpointConfig(base_url=healthy.base_url), run_dir=tmp_path / "run",
                    retry_statuses=("failed",), same_grader=True)
    assert retried.manifest["counts"] == {"ok": 10, "unparsed": 0, "refused": 0, "failed": 0}


def test_batch_status_and_cancel(cli: CliRunner, make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    slow = make_server(batch_fault="slow")
    data = write_pairs(load_pairs(SAMPLE).head(3), tmp_path / "d.jsonl")
    grade(data, GradeSpec(targets=("prompt",)), endpoint_for(slow), run_dir=tmp_path / "run", batch=FAST)
    status = cli.invoke(app, ["batch", "status", str(tmp_path / "run"), "--base-url", slow.base_url], env={"COLUMNS": "120"})
    assert status.exit_code == 0 and "completed" in status.output and "yes" in status.output
    cancel = cli.invoke(app, ["batch", "cancel", str(tmp_path / "run"), "--base-url", slow.base_url])
    assert cancel.exit_code == 0 and "none open" in cancel.output
    missing = cli.invoke(app, ["batch", "status", str(tmp_path)])
    assert missing.exit_code == 2 and "not graded with --batch" in missing.output
