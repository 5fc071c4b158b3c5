"""Grading end to end over real HTTP against harness serve."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli.app import app
from harness.core.errors import GraderError, RunError
from harness.grading.grade import GradeSpec, grade
from harness.io.pairs import load_pairs, write_pairs
from harness.io.runs import read_labels
from tests.helpers import SAMPLE, endpoint_for, stats


def _small(tmp_path: Path, n: int = 20) -> Path:
    frame = load_pairs(SAMPLE).head(n)
    return write_pairs(frame, tmp_path / "small.jsonl")


def _labels(run: Path) -> dict[tuple[str, str], dict[str, object]]:
    return {(r["id"], r["target"]): r for r in read_labels(run)}


def test_grade_writes_run_and_rerun_is_all_cache_hits(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    handle = make_server()
    data = _small(tmp_path)
    spec = GradeSpec(targets=("prompt", "response", "relevance"))
    result = grade(data, spec, endpoint_for(handle), run_dir=tmp_path / "run", cache_dir=tmp_path / "cache")
    assert result.manifest["counts"] == {"ok": 60, "unparsed": 0, "refused": 0, "failed": 0}
    assert result.manifest["status"] == "complete"
    assert set(result.labels.columns) >= {"grader_prompt_hate", "grader_response_self_harm", "grader_relevance", "prompt_status"}
    first_requests = stats(handle)["requests"]
    assert 0 < first_requests <= 60
    again = grade(data, spec, endpoint_for(handle), run_dir=tmp_path / "run2", cache_dir=tmp_path / "cache")
    assert stats(handle)["requests"] == first_requests  # zero new requests
    assert again.manifest["cache_hits"] == 60
    strip = lambda rows: {k: {f: v for f, v in r.items() if f not in ("cached", "latency_ms", "attempts")} for k, r in rows.items()}
    assert strip(_labels(tmp_path / "run")) == strip(_labels(tmp_path / "run2"))


def test_the_endpoint_ready_hook_runs_once_and_only_when_something_is_sent(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """An embedded server loads while the grade starts; the grade waits for it (the hook) once, before its first
    request, never for a run answered from the cache; a hook that cannot make the endpoint ready stops the job with
    its own message, never a verdict or a failed label."""
    import dataclasses

    handle = make_server()
    data = _small(tmp_path, 8)
    calls: list[int] = []
    endpoint = dataclasses.replace(endpoint_for(handle, concurrency=8), ready=lambda: calls.append(1))
    grade(data, GradeSpec(targets=("prompt", "response")), endpoint, run_dir=tmp_path / "run", cache_dir=tmp_path / "cache")
    assert calls == [1] and stats(handle)["requests"] > 1  # once, shared by every request in flight
    grade(data, GradeSpec(targets=("prompt", "response")), endpoint, run_dir=tmp_path / "run2", cache_dir=tmp_path / "cache")
    assert calls == [1]  # all from the cache: never waited

    def broken() -> None:
        raise GraderError("harness serve stopped before it was ready (test)")

    with pytest.raises(GraderError, match="stopped before it was ready"):
        grade(data, GradeSpec(targets=("prompt",)), dataclasses.replace(endpoint, ready=broken), run_dir=tmp_path / "run3")
    assert not [r for r in read_labels(tmp_path / "run3") if r["status"] != "ok"]


def test_same_run_dir_resumes_without_new_requests(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    handle = make_server()
    data = _small(tmp_path, 10)
    grade(data, GradeSpec(targets=("prompt",)), endpoint_for(handle), run_dir=tmp_path / "run")
    before = stats(handle)["requests"]
    result = grade(data, GradeSpec(targets=("prompt",)), endpoint_for(handle), run_dir=tmp_path / "run")
    assert stats(handle)["requests"] == before and result.graded_now == 0
    with pytest.raises(RunError, match="holds a different run"):
        grade(data, GradeSpec(targets=("prompt",), model="other"), endpoint_for(handle), run_dir=tmp_path / "run")


@pytest.mark.parametrize("mode", ["429", "500", "503", "drop", "timeout", "malformed"])
@pytest.mark.slow
def test_retries_through_each_fault(make_server, tmp_path: Path, mode: str) -> None:  # type: ignore[no-untyped-def]
    handle = make_server(fail_rate=0.5, fail_modes=(mode,), seed=3, hang_s=2.0, retry_after_s=0)
    data = _small(tmp_path, 12)
    result = grade(data, GradeSpec(targets=("prompt",)), endpoint_for(handle, timeout_s=0.5, max_attempts=10),
                   run_dir=tmp_path / "run", cache_dir=None)
    assert result.manifest["counts"]["ok"] == 12
    assert stats(handle)["faults"].get(mode, 0) >= 1  # type: ignore[attr-defined]
    assert max(r["attempts"] for r in read_labels(tmp_path / "run")) >= 2


@pytest.mark.parametrize(("mode", "status", "kept"), [("refusal", "refused", True), ("garbage", "unparsed", True),
                                                      ("truncated", "unparsed", True), ("content_filter", "refused", False),
                                                      ("500", "failed", False)])
def test_non_verdicts_are_recorded_never_counted(make_server, tmp_path: Path, mode: str, status: str, kept: bool) -> None:  # type: ignore[no-untyped-def]
    """A non-verdict is recorded as such, never a severity; the model's own answers (refusal, garbage, a truncation)
    are cached as the raw answers they are and read back with the same status; failures and content-filter stops
    are never cached; --retry forgets the cached answers and asks again."""
    from harness.grading.cache import CompletionCache

    handle = make_server(fail_rate=1.0, fail_modes=(mode,))
    data = _small(tmp_path, 3)
    result = grade(data, GradeSpec(targets=("prompt",)), endpoint_for(handle, max_attempts=2),
                   run_dir=tmp_path / "run", cache_dir=tmp_path / "cache")
    records = read_labels(tmp_path / "run")
    assert [r["status"] for r in records] == [status] * 3
    assert all(r["severity"] is None for r in records)
    assert not [c for c in result.labels.columns if c.startswith("grader_")]  # no grader label at all
    if status != "failed" and mode != "content_filter":
        assert all(r["completion"] for r in records)  # raw completion kept
    distinct = len({r["request_hash"] for r in records})
    cache = CompletionCache(tmp_path / "cache")
    assert len(cache) == (distinct if kept else 0)
    cache.close()
    sent = stats(handle)["requests"]
    again = grade(data, GradeSpec(targets=("prompt",)), endpoint_for(handle, max_attempts=2),
                  run_dir=tmp_path / "run2", cache_dir=tmp_path / "cache")
    second = read_labels(tmp_path / "run2")
    assert [r["status"] for r in second] == [status] * 3  # read back as what it was, never a verdict
    assert all(r["cached"] for r in second) is kept
    assert (stats(handle)["requests"] == sent) is kept  # a cached answer is not asked again
    shared = sum(r["cached"] and r["status"] != "failed" for r in second)  # kept, or shared by identical requests in flight
    assert again.manifest.cached_non_verdicts == shared and (shared == 3 or not kept)
    if kept:
        grade(data, GradeSpec(targets=("prompt",)), endpoint_for(handle, max_attempts=2), run_dir=tmp_path / "run2",
              cache_dir=tmp_path / "cache", retry_statuses=(status,))
        assert stats(handle)["requests"] == sent + distinct  # the retry forgot the cached answers and asked
        assert sum(not r["cached"] for r in read_labels(tmp_path / "run2")) == distinct


def test_unauthorised_fails_fast(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    handle = make_server(api_key="sk-right")
    with pytest.raises(GraderError, match="401"):
        grade(_small(tmp_path, 5), GradeSpec(targets=("prompt",)), endpoint_for(handle, api_key="sk-wrong"),
              run_dir=tmp_path / "run")
    assert stats(handle)["requests"] <= 8  # one per worker at most, no retries


def test_batched_grading_saves_tokens_and_matches_single(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    handle = make_server()
    data = _small(tmp_path, 30)
    single = grade(data, GradeSpec(targets=("response",)), endpoint_for(handle), run_dir=tmp_path / "one")
    batched = grade(data, GradeSpec(targets=("response",), items_per_request=10), endpoint_for(handle), run_dir=tmp_path / "ten")
    assert batched.manifest["counts"]["ok"] == 30
    sev = lambda run: {k: r["severity"] for k, r in _labels(run).items()}
    assert sev(tmp_path / "one") == sev(tmp_path / "ten")
    assert batched.manifest["prompt_tokens_per_billed_item"] < single.manifest["prompt_tokens_per_billed_item"] / 3


def test_batch_items_missing_from_answer_are_regraded_singly(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    handle = make_server(fail_rate=0.4, fail_modes=("truncated",), seed=4)
    data = _small(tmp_path, 20)
    result = grade(data, GradeSpec(targets=("prompt",), items_per_request=5), endpoint_for(handle), run_dir=tmp_path / "run")
    records = read_labels(tmp_path / "run")
    assert len(records) == 20 and len({r["id"] for r in records}) == 20
    assert stats(handle)["faults"].get("truncated", 0) >= 1  # the seed does inject faults into these bodies
    assert any(r["batch_size"] == 1 for r in records)  # some rows came back through single grading
    assert result.manifest["counts"]["ok"] + result.manifest["counts"]["unparsed"] == 20


def test_cli_grade_and_secret_never_written(cli: CliRunner, make_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    secret = "sk-test-SECRET-0123456789"
    handle = make_server(api_key=secret)
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    data = _small(tmp_path, 8)
    result = cli.invoke(app, ["grade", str(data), "--base-url", handle.base_url, "--out", str(tmp_path / "run"),
                                 "--cache-dir", str(tmp_path / "cache"), "-q"])
    assert result.exit_code == 0, result.output
    assert "graded now 16 items" in result.output.replace("\n", " ")
    for path in [*tmp_path.rglob("*")]:
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    assert secret not in result.output


def test_cli_says_when_non_verdicts_came_from_the_cache_and_how_to_ask_again(cli: CliRunner, make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    handle = make_server(fail_rate=1.0, fail_modes=("garbage",))
    data = write_pairs(load_pairs(SAMPLE).drop_duplicates("prompt").head(3), tmp_path / "d.jsonl")
    args = ["grade", str(data), "--base-url", handle.base_url, "--target", "prompt", "--cache-dir", str(tmp_path / "cache"), "-q"]
    first = cli.invoke(app, [*args, "--out", str(tmp_path / "run")], env={"COLUMNS": "200"})
    assert first.exit_code == 0, first.output
    assert "not asked afresh" not in first.output and "tokens sent to a local endpoint" in first.output
    second = cli.invoke(app, [*args, "--out", str(tmp_path / "run2")], env={"COLUMNS": "200"})
    assert second.exit_code == 0, second.output
    assert "0 requests, 3 cache hits" in second.output
    assert ("3 unparsed or refused answers were not asked afresh (read from the cache, or shared with an identical "
            "request of this run); --retry unparsed,refused forgets them and asks again") in second.output
    sent = stats(handle)["requests"]
    again = cli.invoke(app, [*args, "--out", str(tmp_path / "run2"), "--retry", "unparsed"], env={"COLUMNS": "200"})
    assert again.exit_code == 0, again.output
    assert stats(handle)["requests"] == sent + 3 and "not asked afresh" not in again.output
    assert not (tmp_path / "run2" / ".lock").exists()  # a finished folder keeps no lock file


def test_cli_bad_flags_exit_2(cli: CliRunner, tmp_path: Path) -> None:
    data = _small(tmp_path, 2)
    for args, message in ((["--concurrency", "0"], "--concurrency 0"), (["--target", "title"], "--target"),
                          (["--base-url", "ftp://x"], "--base-url"), (["--shots", "nope.jsonl"], "shot file not found")):
        result = cli.invoke(app, ["grade", str(data), "--out", str(tmp_path / "r"), *args])
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output


def _grade_subprocess(data: Path, run: Path, url: str, cache: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "HARNESS_BACKOFF_INITIAL_S": "0"}
    return subprocess.Popen([sys.executable, "-m", "harness", "grade", str(data), "--base-url", url, "--out", str(run),
                             "--cache-dir", str(cache), "--concurrency", "4", "-q"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.mark.slow
def test_kill_9_then_resume_equals_uninterrupted(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    frame = load_pairs(SAMPLE)
    items = 2 * len(frame)
    data = write_pairs(frame, tmp_path / "all.jsonl")
    slow = make_server(latency_ms=15)
    reference = grade(data, GradeSpec(), endpoint_for(slow), run_dir=tmp_path / "ref")
    slow.endpoint.stats.requests = 0
    run = tmp_path / "killed"
    process = _grade_subprocess(data, run, slow.base_url, tmp_path / "cache")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if (run / "labels.jsonl").exists() and len((run / "labels.jsonl").read_bytes().splitlines()) >= 40:
            break
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    written = len(read_labels(run))
    assert 40 <= written < items
    sent_before = stats(slow)["requests"]
    resumed = _grade_subprocess(data, run, slow.base_url, tmp_path / "cache")
    assert resumed.wait(120) == 0
    records = read_labels(run)
    assert len(records) == items and len({(r["id"], r["target"]) for r in records}) == items
    assert (run / "labels.jsonl").read_bytes().endswith(b"\n")
    sev = lambda rows: {(r["id"], r["target"]): r["severity"] for r in rows}
    assert sev(records) == sev(read_labels(tmp_path / "ref"))
    assert stats(slow)["requests"] - sent_before <= items - written  # answered items not requested again
    assert json.loads((run / "manifest.json").read_text())["status"] == "complete"
    assert reference.manifest["counts"]["ok"] == items


def test_azure_openai_routing_and_key_header(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    secret = "azure-test-SECRET-55aa"
    handle = make_server(api_key=secret)
    azure_root = handle.base_url.removesuffix("/v1")  # Azure takes the resource URL, not .../v1
    endpoint = endpoint_for(handle, base_url=azure_root, azure_api_version="2024-10-21", api_key=secret)
    result = grade(_small(tmp_path, 6), GradeSpec(), endpoint, run_dir=tmp_path / "run")
    assert result.manifest["counts"]["ok"] == 12
    assert stats(handle)["azure_requests"] == stats(handle)["requests"] > 0  # every call took the deployment route
    assert secret.encode() not in b"".join(p.read_bytes() for p in (tmp_path / "run").iterdir())
    wrong = endpoint_for(handle, base_url=azure_root, azure_api_version="2024-10-21", api_key="nope")
    with pytest.raises(GraderError, match="401"):
        grade(_small(tmp_path, 2), GradeSpec(), wrong, run_dir=tmp_path / "run2")


def test_fully_cached_rerun_never_loads_the_sdk(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    handle = make_server()
    data = _small(tmp_path, 10)
    grade(data, GradeSpec(), endpoint_for(handle), run_dir=tmp_path / "warm", cache_dir=tmp_path / "cache")
    before = stats(handle)["requests"]
    script = (
        "import sys\nfrom harness.cli.app import main\n"
        f"sys.argv = ['harness', 'grade', {str(data)!r}, '--base-url', {handle.base_url!r}, '--out', "
        f"{str(tmp_path / 'again')!r}, '--cache-dir', {str(tmp_path / 'cache')!r}, '-q']\n"
        "try:\n    main()\nfinally:\n    print('SDK-LOADED' if 'openai' in sys.modules else 'SDK-NOT-LOADED')\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert "SDK-NOT-LOADED" in out.stdout, out.stdout + out.stderr
    assert stats(handle)["requests"] == before
    assert json.loads((tmp_path / "again" / "manifest.json").read_text())["cache_hits"] == 20
