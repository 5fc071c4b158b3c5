"""Results name their inputs (with hashes), and the report says what it is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli.app import app
from tests.helpers import SAMPLE


@pytest.mark.slow
def test_results_name_their_inputs_and_the_report_says_what_it_is(cli: CliRunner, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import hashlib

    run = tmp_path / "run"
    graded = cli.invoke(app, ["grade", str(SAMPLE), "--base-url", server.base_url, "--out", str(run), "--limit", "30"])
    assert graded.exit_code == 0, graded.output
    calibrated = cli.invoke(app, ["calibrate", str(run), "--human", str(SAMPLE), "--n-boot", "200"])
    assert calibrated.exit_code == 0, calibrated.output
    provenance = json.loads((run / "calibration.json").read_text())["provenance"]
    assert provenance["label_source"] == "grader vs human" and provenance["step"] == "calibrate"
    human = next(i for i in provenance["inputs"] if i["role"] == "human")
    assert human["sha256"] == hashlib.sha256(SAMPLE.read_bytes()).hexdigest()
    labels = next(i for i in provenance["inputs"] if i["role"] == "run")
    assert labels["sha256"] == hashlib.sha256((run / "labels.jsonl").read_bytes()).hexdigest()
    assert provenance["graders"][0]["model"] == "harness-baseline" and "api_key" not in json.dumps(provenance)
    import harness
    from harness.results.calibration import Calibration

    shown = harness.show(Calibration.from_json(json.loads((run / "calibration.json").read_text())))._repr_html_()
    assert shown.count("data:image/png;base64,") == 2 and "Labels: grader vs human" in shown  # figures and provenance
    reported = cli.invoke(app, ["report", str(run), "--latex"])
    assert reported.exit_code == 0, reported.output
    markdown = (run / "report.md").read_text()
    assert markdown.startswith("# harness grading and calibration report: harness-baseline on sample_pairs.jsonl")
    assert "Labels: grader vs human" in markdown
    tex = (run / "report.tex").read_text()
    assert "\\begin{document}" in tex and tex.count("\\begin{table}") == markdown.count("\n**") and "\\_" in tex
    # confusion grid, κ bars
    assert (
        sorted(p.suffix for p in (run / "figures").iterdir() if not p.name.startswith("."))
        == [".pdf"] * 2 + [".svg"] * 2
    )
