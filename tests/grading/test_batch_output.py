"""A batch's output lines read one by one: a bad line fails only its items."""

from __future__ import annotations

from pathlib import Path

from harness.grading.grade import GradeSpec, grade
from harness.io.runs import read_labels
from tests.helpers import endpoint_at, pairs_file


def test_bad_output_lines_fail_only_their_items(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from harness.grading.batch_api import BatchOptions

    garbling = make_server(batch_fault="bad_lines")
    result = grade(pairs_file(tmp_path), GradeSpec(), endpoint_at(garbling.base_url), run_dir=tmp_path / "run",
                   batch=BatchOptions(poll_initial_s=0.05))
    records = read_labels(tmp_path / "run")
    failed = [r for r in records if r["status"] == "failed"]
    assert len(records) == 24 and len({r["request_hash"] for r in failed}) == 1  # the garbled first line's request only
    assert len(failed) == 3  # its prompt, answered by three models: one request
    assert (
        "3 unreadable output lines skipped" in failed[0]["error"]
        and "1 lines for requests not of this batch" in failed[0]["error"]
    )
    assert result.manifest["counts"]["ok"] == 21
