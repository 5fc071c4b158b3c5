"""One job's render → send → judge → record: non-verdicts recorded never counted, items missing from an answer graded
again singly."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.grading.grade import GradeSpec, grade
from harness.io.pairs import write_pairs
from harness.io.runs import read_labels
from harness.serve.config import FAULT_MODES
from tests.helpers import (
    assert_run_is_whole,
    distinct_pairs,
    endpoint_for,
    labels_by_key,
    small_pairs,
    stats,
)


@pytest.mark.parametrize(
    ("mode", "status", "kept"),
    [
        ("refusal", "refused", True),
        ("garbage", "unparsed", True),
        ("truncated", "unparsed", True),
        ("content_filter", "refused", False),
        ("500", "failed", False),
    ],
)
def test_non_verdicts_are_recorded_never_counted(
    make_server, tmp_path: Path, mode: str, status: str, kept: bool
) -> None:  # type: ignore[no-untyped-def]
    """A non-verdict is recorded as such, never a severity; the model's own answers (refusal, garbage, a truncation)
    are cached as the raw answers they are and read back with the same status; failures and content-filter stops
    are never cached; --retry forgets the cached answers and asks again."""
    from harness.grading.cache import CompletionCache

    handle = make_server(fail_rate=1.0, fail_modes=(mode,))
    data = small_pairs(tmp_path, 3)
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
    # kept, or shared by identical requests in flight
    shared = sum(r["cached"] and r["status"] != "failed" for r in second)
    assert again.manifest.cached_non_verdicts == shared and (shared == 3 or not kept)
    if kept:
        grade(data, GradeSpec(targets=("prompt",)), endpoint_for(handle, max_attempts=2), run_dir=tmp_path / "run2",
              cache_dir=tmp_path / "cache", retry_statuses=(status,))
        assert stats(handle)["requests"] == sent + distinct  # the retry forgot the cached answers and asked
        assert sum(not r["cached"] for r in read_labels(tmp_path / "run2")) == distinct


def test_batch_items_missing_from_answer_are_regraded_singly(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    handle = make_server(fail_rate=0.4, fail_modes=("truncated",), seed=4)
    data = small_pairs(tmp_path, 20)
    result = grade(
        data, GradeSpec(targets=("prompt",), items_per_request=5), endpoint_for(handle), run_dir=tmp_path / "run"
    )
    records = read_labels(tmp_path / "run")
    assert len(records) == 20 and len({r["id"] for r in records}) == 20
    assert stats(handle)["faults"].get("truncated", 0) >= 1  # the seed does inject faults into these bodies
    assert any(r["batch_size"] == 1 for r in records)  # some rows came back through single grading
    assert result.manifest["counts"]["ok"] + result.manifest["counts"]["unparsed"] == 20


@pytest.mark.slow
def test_faults_under_batching_regrade_singly_and_keep_labels(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = write_pairs(distinct_pairs(200), tmp_path / "pairs.jsonl")
    spec = GradeSpec(targets=("response",), items_per_request=8)
    clean = make_server()
    grade(data, spec, endpoint_for(clean), run_dir=tmp_path / "clean")
    faulty = make_server(fail_rate=0.3, fail_modes=FAULT_MODES, seed=5, hang_s=1.0, retry_after_s=0)
    grade(data, spec, endpoint_for(faulty, concurrency=16, timeout_s=0.4, max_attempts=4),
          run_dir=tmp_path / "faulty", cache_dir=None)
    records = assert_run_is_whole(tmp_path / "faulty", 200)
    reference = labels_by_key(tmp_path / "clean")
    ok = [r for r in records if r["status"] == "ok"]
    assert len(ok) >= 150
    assert all(r["severity"] == reference[(r["id"], r["target"])]["severity"] for r in ok)
    # a batch request and then single requests for what it lost: (batches + items) x attempts
    assert stats(faulty)["requests"] <= (25 + 200) * 4
