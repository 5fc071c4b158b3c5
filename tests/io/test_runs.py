"""The run-folder file format: a malformed or duplicated label line is a located error."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli.app import app
from harness.grading.grade import GradeSpec, grade
from harness.io.pairs import load_pairs, write_pairs
from harness.io.runs import read_labels
from tests.helpers import SAMPLE, assert_no_traceback, endpoint_at, endpoint_for, pairs_file


def test_malformed_label_record_is_located(cli: CliRunner, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = write_pairs(load_pairs(SAMPLE).head(3), tmp_path / "d.jsonl")
    run = tmp_path / "run"
    grade(data, GradeSpec(), endpoint_for(server), run_dir=run)
    with (run / "labels.jsonl").open("a") as out:
        out.write('{"id": "x", "target": "prompt", "status": "ok"}\n')
    for command in (
        ["analyze", str(run), "--n-boot", "0"],
        ["calibrate", str(run), "--human", str(data), "--n-boot", "0"],
        ["grade", str(data), "--base-url", server.base_url, "--out", str(run)],
    ):
        result = cli.invoke(app, command)
        assert_no_traceback(result)
        assert result.exit_code == 2 and "labels.jsonl, line 7: an ok record needs 'severity'" in result.output, (
            result.output
        )


def test_a_duplicated_label_line_is_a_located_error(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from harness.core.errors import RunError

    grade(pairs_file(tmp_path, 3), GradeSpec(), endpoint_at(server.base_url), run_dir=tmp_path / "run")
    labels = tmp_path / "run" / "labels.jsonl"
    first = labels.read_text().splitlines()[0]
    labels.write_text(labels.read_text() + first + "\n")
    with pytest.raises(RunError, match="a second label for"):
        read_labels(tmp_path / "run")
