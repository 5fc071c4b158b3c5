"""Grading through the Batch API of harness serve: same labels, no resubmission after kill -9, faults become failed
items, status and cancel."""

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
from tests.helpers import SAMPLE, endpoint_at, endpoint_for, pairs_file

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
    batched = grade(
        data, GradeSpec(), endpoint_for(server), run_dir=tmp_path / "batch", cache_dir=tmp_path / "cache", batch=FAST
    )
    assert _severities(tmp_path / "batch") == _severities(tmp_path / "sync")
    assert batched.manifest["status"] == "complete" and batched.manifest["counts"]["ok"] == 80
    after = _stats(server.base_url)
    # one file, one batch (80 requests, a few identical)
    assert after["batches_created"] - before["batches_created"] == 1
    state = json.loads((tmp_path / "batch" / "batches.json").read_text())
    assert state["batches"][0]["recorded"] is True
    again = grade(
        data, GradeSpec(), endpoint_for(server), run_dir=tmp_path / "batch2", cache_dir=tmp_path / "cache", batch=FAST
    )
    assert again.manifest["cache_hits"] == 80 and _stats(server.base_url)["batches_created"] == after["batches_created"]


def _uploaded_copy(url: str, file_id: str) -> str:
    """Upload the content of ``file_id`` again, as a process killed after uploading and before creating would leave
    it."""
    import urllib.request
    import uuid

    content = urllib.request.urlopen(f"{url}/files/{file_id}/content", timeout=10).read()
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"b.jsonl\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + content + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(
        f"{url}/files", data=body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
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
        while time.monotonic() < deadline and not (
            state_path.exists() and json.loads(state_path.read_text())["batches"][0]["id"]
        ):
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
            shown = cli.invoke(
                app, ["batch", "status", str(tmp_path / "run"), "--base-url", url], env={"COLUMNS": "120"}
            )
            assert f"({entry['input_file_id']})" in shown.output and "batch not yet confirmed" in shown.output, (
                shown.output
            )
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


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("fail_validation", "failed without answering it: injected: the batch failed validation"),
        ("expire", "expired without answering it"),
        ("error_lines", "line failed (500): injected: the line failed"),
    ],
)
def test_batch_faults_end_failed_with_reasons_and_retry_regrades_them(
    make_server, tmp_path: Path, fault: str, reason: str
) -> None:  # type: ignore[no-untyped-def]
    faulty = make_server(batch_fault=fault)
    data = write_pairs(load_pairs(SAMPLE).head(10), tmp_path / "d.jsonl")
    result = grade(data, GradeSpec(targets=("prompt",)), endpoint_for(faulty), run_dir=tmp_path / "run", batch=FAST)
    failed = [r for r in read_labels(tmp_path / "run") if r["status"] == "failed"]
    assert failed and all(reason in r["error"] for r in failed), failed[:1]
    assert result.manifest["counts"]["failed"] == len(failed)
    healthy = make_server()
    retried = grade(
        data,
        GradeSpec(targets=("prompt",)),
        EndpointConfig(base_url=healthy.base_url),
        run_dir=tmp_path / "run",
        retry_statuses=("failed",),
        same_grader=True,
    )
    assert retried.manifest["counts"] == {"ok": 10, "unparsed": 0, "refused": 0, "failed": 0}


def test_batch_status_and_cancel(cli: CliRunner, make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    slow = make_server(batch_fault="slow")
    data = write_pairs(load_pairs(SAMPLE).head(3), tmp_path / "d.jsonl")
    grade(data, GradeSpec(targets=("prompt",)), endpoint_for(slow), run_dir=tmp_path / "run", batch=FAST)
    status = cli.invoke(
        app, ["batch", "status", str(tmp_path / "run"), "--base-url", slow.base_url], env={"COLUMNS": "120"}
    )
    assert status.exit_code == 0 and "completed" in status.output and "yes" in status.output
    cancel = cli.invoke(app, ["batch", "cancel", str(tmp_path / "run"), "--base-url", slow.base_url])
    assert cancel.exit_code == 0 and "none open" in cancel.output
    missing = cli.invoke(app, ["batch", "status", str(tmp_path)])
    assert missing.exit_code == 2 and "not graded with --batch" in missing.output


def _batch_command(data: Path, url: str, run: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "harness",
        "grade",
        str(data),
        "--base-url",
        url,
        "--out",
        str(run),
        "--batch",
        "-q",
        *extra,
    ]


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "HARNESS_BATCH_POLL_S": "0.05"}


def _killed_while_polling(tmp_path: Path, url: str) -> tuple[Path, Path]:
    """A --batch run killed (-9) once its batch is submitted, its batch still running."""
    import os

    data = pairs_file(tmp_path)
    run = tmp_path / "run"
    first = subprocess.Popen(_batch_command(data, url, run, "--no-cache"), env=_env(), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    state = run / "batches.json"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (state.exists() and json.loads(state.read_text())["batches"][0]["id"]):
        time.sleep(0.02)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    return data, run


@pytest.mark.slow
def test_a_batch_the_restarted_server_forgot_is_resubmitted_once(tmp_path: Path) -> None:
    from harness.workflows.embedded import start_serve_process

    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    serve = start_serve_process(port, "--batch-fault", "slow")
    try:
        data, run = _killed_while_polling(tmp_path, url)
        lost_id = json.loads((run / "batches.json").read_text())["batches"][0]["id"]
        serve.kill()
        serve.wait(10)
        serve = start_serve_process(port)  # a new server: it knows no batch
        second = subprocess.run(_batch_command(data, url, run), env=_env(), capture_output=True, text=True, timeout=120)
        assert second.returncode == 0, second.stderr
        assert "Traceback" not in second.stderr
        records = read_labels(run)
        assert len(records) == 24 and {r["status"] for r in records} == {"ok"}
        batches = json.loads((run / "batches.json").read_text())["batches"]
        assert batches[0]["status"] == "lost" and batches[1]["replaces"] == [lost_id] and batches[1]["recorded"]
    finally:
        serve.kill()
        serve.wait(10)


@pytest.mark.slow
def test_a_killed_batch_run_is_not_regraded_synchronously(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    slow = make_server(batch_fault="slow")
    data, run = _killed_while_polling(tmp_path, slow.base_url)
    before = slow.endpoint.stats.as_json()["requests"]
    again = subprocess.run(
        [sys.executable, "-m", "harness", "grade", str(data), "--base-url", slow.base_url, "--out", str(run)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode == 2
    assert "batches not yet collected" in " ".join(again.stderr.split()) and "Rerun with --batch" in " ".join(
        again.stderr.split()
    )
    assert slow.endpoint.stats.as_json()["requests"] == before  # nothing sent twice


def test_identical_requests_in_a_batch_bill_once(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from harness.grading.batch_api import BatchOptions

    data = pairs_file(tmp_path, 12)  # 4 prompts answered by 3 models: the prompt requests repeat
    synchronous = grade(
        data, GradeSpec(), endpoint_at(server.base_url), run_dir=tmp_path / "sync", cache_dir=tmp_path / "cache"
    )
    batched = grade(
        data,
        GradeSpec(),
        endpoint_at(server.base_url),
        run_dir=tmp_path / "batch",
        batch=BatchOptions(poll_initial_s=0.05),
    )
    assert batched.manifest["tokens"]["billed_prompt_tokens"] == synchronous.manifest["tokens"]["billed_prompt_tokens"]
    assert (
        batched.manifest["tokens"]["billed_completion_tokens"]
        == synchronous.manifest["tokens"]["billed_completion_tokens"]
    )
    assert (
        batched.manifest["last_session"]["requests_sent"] == synchronous.manifest["last_session"]["requests_sent"] > 0
    )


def _fake_endpoint(routes: dict[str, tuple[int, str]]) -> tuple[str, object]:
    """A real HTTP server on 127.0.0.1 answering each path with a fixed status and body (the rest 404)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            status, body = routes.get(self.path.split("?")[0], (404, '{"error": {"message": "Not found"}}'))
            body = body.replace("{auth}", self.headers.get("Authorization", ""))
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body.encode())))
            self.end_headers()
            self.wfile.write(body.encode())

        do_GET = do_POST = _answer

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{httpd.server_address[1]}/v1", httpd


def test_an_endpoint_without_a_batch_api_is_named_in_one_line(cli: CliRunner, tmp_path: Path) -> None:

    from harness.cli.app import app

    url, httpd = _fake_endpoint({})
    try:
        result = cli.invoke(
            app, ["grade", str(pairs_file(tmp_path)), "--base-url", url, "--out", str(tmp_path / "run"), "--batch"]
        )
    finally:
        httpd.shutdown()  # type: ignore[attr-defined]
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "may have no Batch API" in " ".join(result.output.split())


@pytest.mark.slow
def test_no_key_from_a_batch_error_reaches_any_output(tmp_path: Path) -> None:
    key = "sk-redteam-0123456789abcdef0123"
    url, httpd = _fake_endpoint({"/v1/files": (500, '{"error": {"message": "upstream said: {auth}"}}')})
    try:
        process = subprocess.run(
            [
                sys.executable,
                "-m",
                "harness",
                "grade",
                str(pairs_file(tmp_path)),
                "--base-url",
                url,
                "--out",
                str(tmp_path / "run"),
                "--batch",
                "--api-key",
                key,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env={**_env(), "HARNESS_MAX_ATTEMPTS": "1"},
        )
    finally:
        httpd.shutdown()  # type: ignore[attr-defined]
    assert process.returncode != 0 and "Traceback" not in process.stderr
    outputs = (
        process.stdout + process.stderr + "".join(p.read_text() for p in (tmp_path / "run").rglob("*") if p.is_file())
    )
    assert key not in outputs and "500" in process.stderr
