"""``grade`` end to end over real HTTP against harness serve: runs, cache hits, the ready hook, fault soaks, the API's
defaults."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.core.errors import GraderError
from harness.grading.grade import GradeSpec, grade
from harness.io.pairs import load_pairs, write_pairs
from harness.io.runs import read_labels
from harness.serve.config import FAULT_MODES
from tests.helpers import (
    SAMPLE,
    SOAK,
    assert_run_is_whole,
    distinct_pairs,
    endpoint_for,
    labels_by_key,
    small_pairs,
    stats,
)


def test_grade_writes_run_and_rerun_is_all_cache_hits(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    handle = make_server()
    data = small_pairs(tmp_path)
    spec = GradeSpec(targets=("prompt", "response", "relevance"))
    result = grade(data, spec, endpoint_for(handle), run_dir=tmp_path / "run", cache_dir=tmp_path / "cache")
    assert result.manifest["counts"] == {"ok": 60, "unparsed": 0, "refused": 0, "failed": 0}
    assert result.manifest["status"] == "complete"
    assert set(result.labels.columns) >= {
        "grader_prompt_hate",
        "grader_response_self_harm",
        "grader_relevance",
        "prompt_status",
    }
    first_requests = stats(handle)["requests"]
    assert 0 < first_requests <= 60
    again = grade(data, spec, endpoint_for(handle), run_dir=tmp_path / "run2", cache_dir=tmp_path / "cache")
    assert stats(handle)["requests"] == first_requests  # zero new requests
    assert again.manifest["cache_hits"] == 60
    strip = lambda rows: {
        k: {f: v for f, v in r.items() if f not in ("cached", "latency_ms", "attempts")} for k, r in rows.items()
    }
    assert strip(labels_by_key(tmp_path / "run")) == strip(labels_by_key(tmp_path / "run2"))


def test_the_endpoint_ready_hook_runs_once_and_only_when_something_is_sent(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """An embedded server loads while the grade starts; the grade waits for it (the hook) once, before its first
    request, never for a run answered from the cache; a hook that cannot make the endpoint ready stops the job with
    its own message, never a verdict or a failed label."""
    import dataclasses

    handle = make_server()
    data = small_pairs(tmp_path, 8)
    calls: list[int] = []
    endpoint = dataclasses.replace(endpoint_for(handle, concurrency=8), ready=lambda: calls.append(1))
    grade(
        data,
        GradeSpec(targets=("prompt", "response")),
        endpoint,
        run_dir=tmp_path / "run",
        cache_dir=tmp_path / "cache",
    )
    assert calls == [1] and stats(handle)["requests"] > 1  # once, shared by every request in flight
    grade(
        data,
        GradeSpec(targets=("prompt", "response")),
        endpoint,
        run_dir=tmp_path / "run2",
        cache_dir=tmp_path / "cache",
    )
    assert calls == [1]  # all from the cache: never waited

    def broken() -> None:
        raise GraderError("harness serve stopped before it was ready (test)")

    with pytest.raises(GraderError, match="stopped before it was ready"):
        grade(
            data, GradeSpec(targets=("prompt",)), dataclasses.replace(endpoint, ready=broken), run_dir=tmp_path / "run3"
        )
    assert not [r for r in read_labels(tmp_path / "run3") if r["status"] != "ok"]


def test_fully_cached_rerun_never_loads_the_sdk(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    handle = make_server()
    data = small_pairs(tmp_path, 10)
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


STATUSES = {"ok", "failed", "unparsed", "refused"}


@pytest.mark.slow
def test_every_fault_mode_at_once_keeps_the_invariants(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pairs = 2000 if SOAK else 500  # x2 targets = 1,000 items (4,000 in the soak)
    data = write_pairs(distinct_pairs(pairs), tmp_path / "pairs.jsonl")
    spec = GradeSpec(targets=("prompt", "response"))
    clean = make_server()
    grade(data, spec, endpoint_for(clean, concurrency=32), run_dir=tmp_path / "clean")
    reference = labels_by_key(tmp_path / "clean")
    assert {r["status"] for r in reference.values()} == {"ok"}

    attempts = 5
    faulty = make_server(fail_rate=0.3, fail_modes=FAULT_MODES, seed=11, hang_s=1.0, retry_after_s=0)
    result = grade(data, spec, endpoint_for(faulty, concurrency=32, timeout_s=0.4, max_attempts=attempts),
                   run_dir=tmp_path / "faulty", cache_dir=None)
    records = assert_run_is_whole(tmp_path / "faulty", 2 * pairs)
    counts = result.manifest["counts"]
    assert set(counts) == STATUSES and sum(counts.values()) == 2 * pairs
    assert {r["status"] for r in records} <= STATUSES
    server = stats(faulty)
    assert set(server["faults"]) == set(FAULT_MODES)  # every mode was exercised
    assert server["requests"] <= 2 * pairs * attempts  # items x (1 + allowed retries)
    for record in records:
        key = (record["id"], record["target"])
        if record["status"] == "ok":
            assert record["severity"] == reference[key]["severity"], key  # same label as without faults
        else:
            assert record["severity"] is None and record["error"], key  # recorded, never a verdict
    # Only the content faults (refusal, garbage, truncated, content filter) should survive retries.
    assert counts["ok"] >= 0.7 * 2 * pairs  # about 85 % expected; margin for timeouts on a loaded machine
    assert counts["refused"] > 0 and counts["unparsed"] > 0
    assert result.manifest["status"] == "complete"


def test_grade_works_inside_a_running_event_loop(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import harness
    from tests.helpers import endpoint_for

    data = write_pairs(load_pairs(SAMPLE).head(3), tmp_path / "d.jsonl")

    async def notebook_cell() -> tuple[int, int]:
        first = await harness.agrade(
            data, harness.GradeSpec(targets=("prompt",)), endpoint_for(server), run_dir=tmp_path / "a"
        )
        second = harness.grade(
            data, harness.GradeSpec(targets=("prompt",)), endpoint_for(server), run_dir=tmp_path / "b"
        )
        return first.manifest["counts"]["ok"], second.manifest["counts"]["ok"]

    assert asyncio.run(notebook_cell()) == (3, 3)


def test_api_defaults_match_the_cli(monkeypatch: pytest.MonkeyPatch, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import inspect

    import harness

    for function in (harness.calibrate_run, harness.compare, harness.analyze, harness.flip_rates):
        assert inspect.signature(function).parameters["n_boot"].default == 2000
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    result = harness.grade(write_pairs(load_pairs(SAMPLE).head(2), tmp_path / "d.jsonl"), run_dir=tmp_path / "run")
    assert result.manifest["replicas"] == [server.base_url] and result.manifest["model"] == "harness-baseline"
    assert result.manifest["endpoint"] == server.endpoint.identity  # what it serves, whatever its port
