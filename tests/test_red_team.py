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
from typer.testing import CliRunner

from harness.grading.endpoint import EndpointConfig, RetryPolicy
from harness.grading.grade import GradeSpec, grade
from harness.grading.session import run_jobs
from harness.io.pairs import load_pairs, write_pairs
from harness.io.runs import read_labels
from harness.workflows.embedded import free_port
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
    process = subprocess.Popen([sys.executable, "-m", "harness", "grade", str(data), "--base-url", handle.base_url, "--out",
                                str(tmp_path / "run"), "--no-cache", "-q"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
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
    grade(sys.argv[1], GradeSpec(targets=("prompt",)), EndpointConfig(base_url=sys.argv[2], ready=loading), run_dir=sys.argv[3])
except KeyboardInterrupt:
    sys.exit(130)
"""


@pytest.mark.slow
def test_ctrl_c_while_the_endpoint_loads_stops_the_grade(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The wait for an embedded server's model (EndpointConfig.ready) is no reason to ignore Ctrl-C."""
    process = subprocess.Popen([sys.executable, "-c", LOADING, str(_data(tmp_path, 2)), server.base_url, str(tmp_path / "run")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert process.stderr is not None and process.stderr.readline() == b"loading\n"
    process.send_signal(signal.SIGINT)
    assert process.wait(60) == 130  # bounded by the wait; the hook would hold it 600 s


@pytest.mark.slow
def test_two_grades_of_one_default_folder_never_destroy_it(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Two identical `harness grade` commands without -o started together: the default folder survives whole (the one
    refused leaves it alone; before, it removed the folder the other was grading)."""
    handle = make_server(latency_ms=1500)
    data = _data(tmp_path, 2)
    command = [sys.executable, "-m", "harness", "grade", str(data), "--base-url", handle.base_url, "--target", "prompt",
               "--concurrency", "1", "--no-cache", "-q"]
    processes = [subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for _ in range(2)]
    done = [(p.wait(120), p.stderr.read().decode() if p.stderr else "") for p in processes]
    assert sorted(code for code, _ in done) in ([0, 0], [0, 2]), done
    assert all("being graded by another process" in err for code, err in done if code == 2)
    folders = list((tmp_path / "runs").iterdir())
    assert len(folders) == 1 and len(read_labels(folders[0])) == 2, done
    assert json.loads((folders[0] / "manifest.json").read_text())["status"] == "complete"


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


def test_one_endpoint_answering_as_another_model_is_reported(cli: CliRunner, make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]

    from harness.cli.app import app

    liar = make_server(answer_as="harness-small")
    result = cli.invoke(app, ["grade", str(_data(tmp_path)), "--base-url", liar.base_url, "--out", str(tmp_path / "run")])
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


def _batch_command(data: Path, url: str, run: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "harness", "grade", str(data), "--base-url", url, "--out", str(run), "--batch", "-q", *extra]


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "HARNESS_BATCH_POLL_S": "0.05"}


def _killed_while_polling(tmp_path: Path, url: str) -> tuple[Path, Path]:
    """A --batch run killed (-9) once its batch is submitted, its batch still running."""
    import os

    data = _data(tmp_path)
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
    again = subprocess.run([sys.executable, "-m", "harness", "grade", str(data), "--base-url", slow.base_url, "--out", str(run)],
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 2
    assert "batches not yet collected" in " ".join(again.stderr.split()) and "Rerun with --batch" in " ".join(again.stderr.split())
    assert slow.endpoint.stats.as_json()["requests"] == before  # nothing sent twice


def test_bad_output_lines_fail_only_their_items(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from harness.grading.batch_api import BatchOptions

    garbling = make_server(batch_fault="bad_lines")
    result = grade(_data(tmp_path), GradeSpec(), _endpoint(garbling.base_url), run_dir=tmp_path / "run",
                   batch=BatchOptions(poll_initial_s=0.05))
    records = read_labels(tmp_path / "run")
    failed = [r for r in records if r["status"] == "failed"]
    assert len(records) == 24 and len({r["request_hash"] for r in failed}) == 1  # the garbled first line's request only
    assert len(failed) == 3  # its prompt, answered by three models: one request
    assert "3 unreadable output lines skipped" in failed[0]["error"] and "1 lines for requests not of this batch" in failed[0]["error"]
    assert result.manifest["counts"]["ok"] == 21


def test_identical_requests_in_a_batch_bill_once(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from harness.grading.batch_api import BatchOptions

    data = _data(tmp_path, 12)  # 4 prompts answered by 3 models: the prompt requests repeat
    synchronous = grade(data, GradeSpec(), _endpoint(server.base_url), run_dir=tmp_path / "sync", cache_dir=tmp_path / "cache")
    batched = grade(data, GradeSpec(), _endpoint(server.base_url), run_dir=tmp_path / "batch", batch=BatchOptions(poll_initial_s=0.05))
    assert batched.manifest["tokens"]["billed_prompt_tokens"] == synchronous.manifest["tokens"]["billed_prompt_tokens"]
    assert batched.manifest["tokens"]["billed_completion_tokens"] == synchronous.manifest["tokens"]["billed_completion_tokens"]
    assert batched.manifest["last_session"]["requests_sent"] == synchronous.manifest["last_session"]["requests_sent"] > 0


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
        result = cli.invoke(app, ["grade", str(_data(tmp_path)), "--base-url", url, "--out", str(tmp_path / "run"), "--batch"])
    finally:
        httpd.shutdown()  # type: ignore[attr-defined]
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "may have no Batch API" in " ".join(result.output.split())


@pytest.mark.slow
def test_no_key_from_a_batch_error_reaches_any_output(tmp_path: Path) -> None:
    key = "sk-redteam-0123456789abcdef0123"
    url, httpd = _fake_endpoint({"/v1/files": (500, '{"error": {"message": "upstream said: {auth}"}}')})
    try:
        process = subprocess.run([sys.executable, "-m", "harness", "grade", str(_data(tmp_path)), "--base-url", url, "--out",
                                  str(tmp_path / "run"), "--batch", "--api-key", key], capture_output=True, text=True, timeout=60,
                                 env={**_env(), "HARNESS_MAX_ATTEMPTS": "1"})
    finally:
        httpd.shutdown()  # type: ignore[attr-defined]
    assert process.returncode != 0 and "Traceback" not in process.stderr
    outputs = process.stdout + process.stderr + "".join(p.read_text() for p in (tmp_path / "run").rglob("*") if p.is_file())
    assert key not in outputs and "500" in process.stderr


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


@pytest.mark.parametrize(("source", "message"), [
    ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "ran past 5 s"),
    ("{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}", "passed 2,000,000 characters"),
    ("{{ 'x' * 100000000 * 50 }}", "a repetition of 100,000,000 items"),
    ("{{ lipsum(n=100000) }}", "'lipsum' is undefined"),
])
@pytest.mark.slow
def test_a_template_bomb_ends_cleanly(tmp_path: Path, source: str, message: str) -> None:
    import shutil

    from harness.grading.templates import prompts_root

    folder = tmp_path / "bomb"
    shutil.copytree(prompts_root() / "default", folder)
    (folder / "prompt.j2").write_text(source)
    process = subprocess.run([sys.executable, "-m", "harness", "grade", str(_data(tmp_path, 3)), "--template", str(folder),
                              "--out", str(tmp_path / "run")], capture_output=True, text=True, timeout=120)
    assert process.returncode == 2
    assert message in process.stderr and "Traceback" not in process.stderr and not (tmp_path / "run").exists()


def test_inject_refuses_to_overwrite_its_input(cli: CliRunner, tmp_path: Path) -> None:

    from harness.cli.app import app

    data = _data(tmp_path)
    before = data.read_bytes()
    result = cli.invoke(app, ["data", "inject", str(data), "-o", str(data)])
    assert result.exit_code == 2 and "is the clean table, an input of this command" in result.output and data.read_bytes() == before


def test_retried_records_keep_their_billed_tokens(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    faulty = make_server(fail_rate=0.4, fail_modes=("garbage",), seed=3)
    data = _data(tmp_path)
    first = grade(data, GradeSpec(), _endpoint(faulty.base_url), run_dir=tmp_path / "run")
    assert first.manifest["counts"]["unparsed"] > 0
    billed = first.manifest["tokens"]["billed_prompt_tokens"]
    again = grade(data, GradeSpec(), _endpoint(faulty.base_url), run_dir=tmp_path / "run", retry_statuses=("unparsed",))
    assert again.manifest["superseded"] == first.manifest["counts"]["unparsed"]
    assert again.manifest["tokens"]["billed_prompt_tokens"] > billed  # the first attempts were billed too
