"""Several items per request: fewer tokens, the same labels as one by one."""

from __future__ import annotations

from pathlib import Path

from harness.grading.grade import GradeSpec, grade
from tests.helpers import endpoint_for, labels_by_key, small_pairs


def test_batched_grading_saves_tokens_and_matches_single(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    handle = make_server()
    data = small_pairs(tmp_path, 30)
    single = grade(data, GradeSpec(targets=("response",)), endpoint_for(handle), run_dir=tmp_path / "one")
    batched = grade(
        data, GradeSpec(targets=("response",), items_per_request=10), endpoint_for(handle), run_dir=tmp_path / "ten"
    )
    assert batched.manifest["counts"]["ok"] == 30
    sev = lambda run: {k: r["severity"] for k, r in labels_by_key(run).items()}
    assert sev(tmp_path / "one") == sev(tmp_path / "ten")
    assert batched.manifest["prompt_tokens_per_billed_item"] < single.manifest["prompt_tokens_per_billed_item"] / 3
