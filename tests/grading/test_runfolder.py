"""A run folder during a session: resume after kill -9, torn lines repaired, one session per folder, identity kept."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli.app import app
from harness.core.errors import RunError
from harness.grading.grade import GradeSpec, grade
from harness.io.pairs import load_pairs, write_pairs
from harness.io.runs import read_labels
from tests.helpers import (
    SAMPLE,
    SOAK,
    assert_no_traceback,
    assert_run_is_whole,
    distinct_pairs,
    endpoint_for,
    labels_by_key,
    one_pair,
    pairs_file,
    small_pairs,
    stats,
)


def test_same_run_dir_resumes_without_new_requests(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    handle = make_server()
    data = small_pairs(tmp_path, 10)
    grade(data, GradeSpec(targets=("prompt",)), endpoint_for(handle), run_dir=tmp_path / "run")
    before = stats(handle)["requests"]
    result = grade(data, GradeSpec(targets=("prompt",)), endpoint_for(handle), run_dir=tmp_path / "run")
    assert stats(handle)["requests"] == before and result.graded_now == 0
    with pytest.raises(RunError, match="holds a different run"):
        grade(data, GradeSpec(targets=("prompt",), model="other"), endpoint_for(handle), run_dir=tmp_path / "run")


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


def test_a_run_that_fails_is_not_left_running(cli: CliRunner, scripted, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from aiohttp import web

    server = scripted(lambda body: web.json_response({"error": {"message": "no such model"}}, status=404))
    result = cli.invoke(
        app, ["grade", str(one_pair(tmp_path)), "--base-url", server.base_url, "--out", str(tmp_path / "run")]
    )
    assert result.exit_code == 1
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["status"] == "failed"


def test_resuming_at_another_endpoint_is_refused_unless_same_grader(
    cli: CliRunner, server, make_server, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    other = make_server(gullible=True)  # another grader: it obeys instructions in the texts it grades
    data = write_pairs(load_pairs(SAMPLE).head(3), tmp_path / "d.jsonl")
    run = str(tmp_path / "run")
    assert (
        cli.invoke(
            app, ["grade", str(data), "--target", "prompt", "--base-url", server.base_url, "--out", run]
        ).exit_code
        == 0
    )
    result = cli.invoke(app, ["grade", str(data), "--base-url", other.base_url, "--out", run])
    assert_no_traceback(result)
    assert result.exit_code == 2 and f"was graded at {server.endpoint.identity}" in result.output
    assert f"now at {other.endpoint.identity}" in result.output and "--same-grader" in result.output
    result = cli.invoke(app, ["grade", str(data), "--base-url", other.base_url, "--out", run, "--same-grader"])
    assert result.exit_code == 0, result.output
    endpoints = json.loads((tmp_path / "run" / "manifest.json").read_text())["endpoints"]
    assert endpoints == [server.endpoint.identity, other.endpoint.identity]


@pytest.mark.slow
def test_two_grades_of_one_default_folder_never_destroy_it(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Two identical `harness grade` commands without -o started together: the default folder survives whole (the one
    refused leaves it alone; before, it removed the folder the other was grading)."""
    handle = make_server(latency_ms=1500)
    data = pairs_file(tmp_path, 2)
    command = [sys.executable, "-m", "harness", "grade", str(data), "--base-url", handle.base_url, "--target", "prompt",
               "--concurrency", "1", "--no-cache", "-q"]
    processes = [
        subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for _ in range(2)
    ]
    done = [(p.wait(120), p.stderr.read().decode() if p.stderr else "") for p in processes]
    assert sorted(code for code, _ in done) in ([0, 0], [0, 2]), done
    assert all("being graded by another process" in err for code, err in done if code == 2)
    folders = list((tmp_path / "runs").iterdir())
    assert len(folders) == 1 and len(read_labels(folders[0])) == 2, done
    assert json.loads((folders[0] / "manifest.json").read_text())["status"] == "complete"


def _grade_process(data: Path, run: Path, url: str, cache: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "HARNESS_BACKOFF_INITIAL_S": "0"}
    return subprocess.Popen([sys.executable, "-m", "harness", "grade", str(data), "--base-url", url, "--out",
                             str(run), "--cache-dir", str(cache), "--concurrency", "6", "--target", "both", "-q"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3] + ([4, 5, 6, 7, 8] if SOAK else []))
def test_kill_9_at_random_points_then_resume(make_server, tmp_path: Path, seed: int) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(seed)
    pairs = 150
    data = write_pairs(distinct_pairs(pairs), tmp_path / "pairs.jsonl")
    total = 2 * pairs
    server = make_server(latency_ms=8)
    grade(data, GradeSpec(), endpoint_for(server), run_dir=tmp_path / "reference")
    reference = {k: r["severity"] for k, r in labels_by_key(tmp_path / "reference").items()}
    run, cache = tmp_path / "run", tmp_path / "cache"
    server.endpoint.stats.requests = 0
    kills = 0
    for round_ in range(4):
        before_lines, before_requests = _lines(run / "labels.jsonl"), stats(server)["requests"]
        if before_lines >= total:
            break
        process = _grade_process(data, run, server.base_url, cache)
        if round_ == 0:  # anywhere from start-up through validation and the input write to the first labels
            time.sleep(rng.uniform(0.05, 1.2))
        else:
            stop_at = rng.randint(before_lines + 1, before_lines + (total - before_lines) // 2)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and process.poll() is None and _lines(run / "labels.jsonl") < stop_at:
                time.sleep(rng.uniform(0.0, 0.01))
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        kills += 1
        done = len(read_labels(run)) if (run / "labels.jsonl").exists() else 0
        # items answered before this session were never asked for again
        sent = stats(server)["requests"] - before_requests
        assert sent <= total - before_lines, (seed, sent)
        assert done >= before_lines
    final = _grade_process(data, run, server.base_url, cache)
    _, err = final.communicate(timeout=120)
    assert final.returncode == 0, err.decode()
    records = assert_run_is_whole(run, total)
    assert {(r["id"], r["target"]): r["severity"] for r in records} == reference
    # Work is never paid twice beyond what was in flight at each kill (6 workers).
    assert stats(server)["requests"] <= total + 6 * kills
    assert json.loads((run / "manifest.json").read_text())["status"] == "complete"
    assert sorted(p.name for p in run.iterdir()) == [
        ".harness-owned.json",
        "input.jsonl",
        "labels.jsonl",
        "manifest.json",
    ]


def test_resume_repairs_a_line_torn_by_a_kill(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = write_pairs(distinct_pairs(40), tmp_path / "pairs.jsonl")
    server = make_server()
    grade(data, GradeSpec(targets=("prompt",)), endpoint_for(server), run_dir=tmp_path / "run")
    labels = tmp_path / "run" / "labels.jsonl"
    lines = labels.read_bytes().splitlines(keepends=True)
    labels.write_bytes(b"".join(lines[:25]) + lines[25][: len(lines[25]) // 2])  # a kill mid-write
    before = stats(server)["requests"]
    grade(data, GradeSpec(targets=("prompt",)), endpoint_for(server), run_dir=tmp_path / "run", cache_dir=None)
    assert_run_is_whole(tmp_path / "run", 40)
    assert stats(server)["requests"] - before == 15


@pytest.mark.slow
def test_a_second_session_on_a_busy_run_folder_is_refused_until_the_first_dies(
    cli: CliRunner, make_server, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    from harness.core.errors import RunError

    data = write_pairs(distinct_pairs(150), tmp_path / "pairs.jsonl")
    server = make_server(latency_ms=40)  # the first session needs ~2 s, ample time to be refused twice
    run = tmp_path / "run"
    process = _grade_process(data, run, server.base_url, tmp_path / "cache")
    deadline = time.monotonic() + 60
    while _lines(run / "labels.jsonl") < 10 and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(RunError, match=rf"being graded by another process \(pid {process.pid}\)"):
        grade(data, GradeSpec(), endpoint_for(server), run_dir=run)
    refused = cli.invoke(app, ["grade", str(data), "--base-url", server.base_url, "--out", str(run)])
    assert refused.exit_code == 2 and "another process" in refused.output
    os.kill(process.pid, signal.SIGKILL)  # the OS frees the lock with the process
    process.wait()
    (run / ".labels.jsonl.stale1").write_text("left by a killed rewrite")
    (run / ".manifest.json.stale2").write_text("{")
    result = grade(data, GradeSpec(), endpoint_for(server), run_dir=run)
    assert result.manifest["status"] == "complete"
    assert_run_is_whole(run, 300)
    assert not list(run.glob(".*.stale*"))  # temporaries of the killed session cleared


def test_a_second_call_on_a_folder_in_this_process_is_named_as_such(tmp_path: Path) -> None:
    from harness.core.errors import RunError
    from harness.grading.runfolder import run_lock

    with run_lock(tmp_path), pytest.raises(RunError, match="another call in this process"):
        with run_lock(tmp_path):
            pass
