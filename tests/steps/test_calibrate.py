"""``calibrate``: a run against human labels, two columns of a table, by a column, and its flags refused by name."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from harness.cli.app import app
from harness.grading.grade import GradeSpec, grade
from harness.io.pairs import load_pairs, write_pairs
from tests.helpers import SAMPLE, SHARED, endpoint_for, xstest_like


def test_calibrate_run_against_human_labels(cli: CliRunner, make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    handle = make_server()
    data = write_pairs(load_pairs(SAMPLE).head(30), tmp_path / "d.jsonl")
    grade(data, GradeSpec(), endpoint_for(handle), run_dir=tmp_path / "run")
    result = cli.invoke(app, ["calibrate", str(tmp_path / "run"), "--human", str(data), "--n-boot", "50"])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "run" / "calibration.json").read_text())
    assert report["n_joined"] == 30 and set(report["targets"]) == {"prompt", "response"}
    assert report["targets"]["prompt"]["pooled"]["n"] == 120
    assert "overall" in report["asymmetry"]
    assert (tmp_path / "run" / "confusion_response_violence.csv").read_text().startswith(",grader_0,grader_1")


def test_calibrate_flags_exit_2(cli: CliRunner, tmp_path: Path) -> None:
    data = write_pairs(pd.DataFrame({"id": ["a"], "prompt": ["x"], "g": ["1"]}), tmp_path / "t.csv")
    result = cli.invoke(app, ["calibrate", str(data), "--gold", "g"])
    assert result.exit_code == 2 and "--gold and --pred go together" in result.output
    result = cli.invoke(app, ["calibrate", str(data), "--gold", "g", "--pred", "nope"])
    assert result.exit_code == 2 and "--pred 'nope'" in result.output


@pytest.mark.shared_data(SHARED / "xstest")
def test_xstest_agreement_figures(cli: CliRunner, tmp_path: Path) -> None:
    csv = SHARED / "xstest/evaluation/automated_evaluation_labels/xstest_v2_completions_gpt4_gpteval.csv"
    out = tmp_path / "x.jsonl"
    assert cli.invoke(app, ["data", "import", "xstest", str(csv), "-o", str(out)]).exit_code == 0
    result = cli.invoke(
        app, ["calibrate", str(out), "--gold", "annotation_1", "--pred", "annotation_2", "--json", "--n-boot", "0"]
    )
    r = json.loads(result.output)
    assert (
        r["n"] == 450
        and r["accuracy"] == pytest.approx(0.984, abs=1e-3)
        and r["kappa"] == pytest.approx(0.970, abs=1e-3)
    )
    assert r["ordinal"] is False


@pytest.fixture
def run_and_calibration(cli: CliRunner, server, tmp_path: Path) -> tuple[Path, Path]:  # type: ignore[no-untyped-def]
    data = write_pairs(load_pairs(SAMPLE), tmp_path / "d.jsonl")
    grade(data, GradeSpec(), endpoint_for(server), run_dir=tmp_path / "run")
    assert cli.invoke(app, ["calibrate", str(tmp_path / "run"), "--human", str(data), "--n-boot", "0"]).exit_code == 0
    return tmp_path / "run", tmp_path / "run" / "calibration.json"


def test_calibrate_by_a_column_calibrates_each_group(
    cli: CliRunner, run_and_calibration: tuple[Path, Path], tmp_path: Path
) -> None:
    run, _ = run_and_calibration
    result = cli.invoke(
        app,
        [
            "calibrate",
            str(run),
            "--human",
            str(tmp_path / "d.jsonl"),
            "--by",
            "model",
            "--n-boot",
            "50",
            "-o",
            str(tmp_path / "by"),
        ],
        env={"COLUMNS": "120"},
    )
    assert result.exit_code == 0, result.output
    stored = json.loads((tmp_path / "by" / "calibration.json").read_text())
    assert stored["by"] == "model" and set(stored["groups"]) == {"aurora-mini", "basalt-7b", "cirrus-xl"}
    assert sum(g["n_joined"] for g in stored["groups"].values()) == stored["n_joined"]
    assert "By model" in result.output
    wrong = cli.invoke(app, ["calibrate", str(run), "--human", str(tmp_path / "d.jsonl"), "--by", "family"])
    assert wrong.exit_code == 2 and "--by 'family': no such column" in wrong.output


def test_calibrate_labels_leaves_outside_labels_out_and_says_the_other_reading(cli: CliRunner, tmp_path: Path) -> None:
    table = xstest_like(tmp_path)
    rows = [json.loads(line) for line in table.read_text().splitlines()]
    parsed = [r for r in rows if r["gpt4"] in ("safe", "unsafe")]
    right = sum(r["gpt4"] == r["final"] for r in parsed)
    base = [
        "calibrate",
        str(table),
        "--gold",
        "final",
        "--pred",
        "gpt4",
        "--labels",
        "safe,unsafe",
        "--n-boot",
        "0",
        "--json",
    ]
    excluded = json.loads(cli.invoke(app, base).stdout)
    assert excluded["n_items"] == len(parsed) == 36
    assert excluded["left_out"]["grader_outside_labels"] == 4
    assert excluded["accuracy"] == pytest.approx(right / len(parsed))
    assert excluded["labels"] == ["safe", "unsafe"]  # no extra class for "it depends"
    assert any(f"{right / len(rows):.4f} counting them as disagreements" in note for note in excluded["notes"])
    kept = json.loads(cli.invoke(app, [*base, "--unparsed", "disagree"]).stdout)
    assert kept["n_items"] == 40 and kept["accuracy"] == pytest.approx(right / len(rows))
