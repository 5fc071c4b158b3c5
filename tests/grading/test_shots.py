"""Few-shot exemplar files: they render and change the hash, and grading an exemplar is flagged where scores are
read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli.app import app
from harness.core.errors import TemplateError
from harness.grading.grade import grade
from harness.grading.jobs import GradeSpec
from harness.grading.shots import load_shots, shots_hash
from harness.grading.templates import load_template_set
from harness.io.pairs import load_pairs, write_pairs
from tests.helpers import SAMPLE, endpoint_for


def test_grading_items_that_are_exemplars_is_flagged_where_scores_are_read(
    cli: CliRunner, server, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    from harness.grading.shots import Shot, write_shots

    frame = load_pairs(SAMPLE).head(30)
    data = write_pairs(frame, tmp_path / "d.jsonl")
    leaked = [
        Shot(row.prompt, "prompt", (("hate", 0), ("sexual", 0), ("violence", 0), ("self_harm", 0)), source_id=row.id)
        for row in frame.head(6).itertuples()
    ]
    shots = write_shots(leaked, tmp_path / "leaked.jsonl")
    run = grade(data, GradeSpec(shots_path=str(shots)), endpoint_for(server), run_dir=tmp_path / "leaked")
    assert run.manifest.shots_overlap is not None and run.manifest.shots_overlap >= 6
    grade(data, GradeSpec(), endpoint_for(server), run_dir=tmp_path / "clean")
    assert grade(data, GradeSpec(), endpoint_for(server), run_dir=tmp_path / "clean").manifest.shots_overlap is None
    cal = cli.invoke(
        app, ["calibrate", str(tmp_path / "leaked"), "--human", str(data), "--n-boot", "0"], env={"COLUMNS": "200"}
    )
    assert "exemplars of its shot set" in cal.output
    cmp = cli.invoke(
        app,
        [
            "compare",
            str(tmp_path / "leaked"),
            str(tmp_path / "clean"),
            "--human",
            str(data),
            "--n-boot",
            "0",
            "-o",
            str(tmp_path / "cmp.json"),
        ],
        env={"COLUMNS": "200"},
    )
    assert cmp.exit_code == 0 and "harness-baseline (leaked): " in cmp.output and "their own answer shown" in cmp.output
    assert json.loads((tmp_path / "cmp.json").read_text())["runs"]["harness-baseline (leaked)"]["warnings"]


def test_shots_render_and_change_the_hash(tmp_path: Path) -> None:
    shots_file = tmp_path / "shots.jsonl"
    shots_file.write_text(
        '{"text": "A shot about knives", "target": "prompt", "labels": {"H": 0, "S": 0, "V": 2, "SH": 0}}\n'
    )
    shots = load_shots(shots_file)
    system = load_template_set().system("prompt", shots)
    assert "A shot about knives" in system and '"V": {"raw_0_7": 4, "severity_0_3": 2}' in system
    assert "A shot about knives" not in load_template_set().system("response", shots)  # prompt shots only
    assert shots_hash(shots) != shots_hash([])
    shots_file.write_text('{"text": "x", "labels": {"H": 5}}\n')
    with pytest.raises(TemplateError, match="line 1.*H=5"):
        load_shots(shots_file)
