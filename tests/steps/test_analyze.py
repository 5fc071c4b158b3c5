"""``analyze`` through the CLI: corrected shares with their method, units and warnings, raw beside corrected."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli.app import app
from harness.grading.grade import GradeSpec, grade
from harness.io.pairs import load_pairs, write_pairs
from tests.helpers import SAMPLE, endpoint_for
from validation.studies import Setting, study

CORRELATED = Setting(rho=0.7, miss_response=0.35)


@pytest.mark.slow
def test_analyze_human_through_the_cli_names_method_units_and_warnings(cli: CliRunner, tmp_path: Path) -> None:
    graded, human = study(CORRELATED, 1, labelled_clusters=20)
    write_pairs(graded, tmp_path / "graded.jsonl")
    write_pairs(human, tmp_path / "subset.jsonl")
    result = cli.invoke(app, ["analyze", str(tmp_path / "graded.jsonl"), "--human", str(tmp_path / "subset.jsonl"),
                                 "--by", "model", "--n-boot", "300", "--json", "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    corrected = json.loads((tmp_path / "out" / "analysis.json").read_text())["corrected"]
    assert corrected["method"].startswith("prediction-powered inference (PPI++)")
    low, high = corrected["corrected_ci"]["escalation"]
    assert 0 <= low < corrected["corrected"]["escalation"] < high <= 1
    assert set(corrected["groups"]) == {f"m{i}" for i in range(6)} and len(corrected["differences"]) == 5 * 3
    assert any("fewer than 30" in w for w in corrected["warnings"])  # 20 labelled clusters
    printed = cli.invoke(app, ["analyze", str(tmp_path / "graded.jsonl"), "--human", str(tmp_path / "subset.jsonl"),
                                  "--n-boot", "100", "-o", str(tmp_path / "out2")], env={"COLUMNS": "120"})
    assert "Corrected shares (n=120 human-labelled pairs in 20 clusters" in printed.output


@pytest.mark.slow
def test_analyze_correct_prints_raw_and_corrected(cli: CliRunner, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = write_pairs(load_pairs(SAMPLE), tmp_path / "d.jsonl")
    grade(data, GradeSpec(), endpoint_for(server), run_dir=tmp_path / "run")
    assert cli.invoke(app, ["calibrate", str(tmp_path / "run"), "--human", str(data), "--n-boot", "0"]).exit_code == 0
    result = cli.invoke(app, ["analyze", str(tmp_path / "run"), "--correct", str(tmp_path / "run" / "calibration.json"),
                                 "--n-boot", "200"], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    assert "Bias-corrected shares" in result.output and "calibration pairs" in result.output
    corrected = json.loads((tmp_path / "run" / "analysis.json").read_text())["corrected"]
    assert (
        corrected["n_calibration"] == len(load_pairs(SAMPLE)) and corrected["corrected_ci"]["escalation"][0] is not None
    )
    missing = cli.invoke(app, ["analyze", str(tmp_path / "run"), "--correct", str(tmp_path / "nope.json")])
    assert missing.exit_code == 2 and "--correct" in missing.output and "no such file" in missing.output
    (tmp_path / "bad.json").write_text('{"model": "x"}')
    bad = cli.invoke(app, ["analyze", str(tmp_path / "run"), "--correct", str(tmp_path / "bad.json")])
    assert bad.exit_code == 2 and "bad.json.run: missing" in bad.output  # read strictly, located
