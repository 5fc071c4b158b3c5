"""Valid inference with grader labels: each defect of the audit, as a test that failed before the fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli.app import app
from harness.grading.grade import grade
from harness.grading.jobs import GradeSpec
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


@pytest.fixture
def run_and_calibration(cli: CliRunner, server, tmp_path: Path) -> tuple[Path, Path]:  # type: ignore[no-untyped-def]
    data = write_pairs(load_pairs(SAMPLE), tmp_path / "d.jsonl")
    grade(data, GradeSpec(), endpoint_for(server), run_dir=tmp_path / "run")
    assert cli.invoke(app, ["calibrate", str(tmp_path / "run"), "--human", str(data), "--n-boot", "0"]).exit_code == 0
    return tmp_path / "run", tmp_path / "run" / "calibration.json"


def test_the_shot_search_splits_by_prompt_even_without_prompt_id() -> None:
    from harness.workflows.shot_search import exemplar_candidates, pool_texts, split_pool

    frame = load_pairs(SAMPLE).drop(columns=["prompt_id"])  # clusters fall back to the prompt text, not the id
    splits = split_pool(frame, dev_frac=0.3, test_frac=0.3, seed=20260709)
    prompts = {name: set(part["prompt"]) for name, part in splits.items()}
    assert not prompts["pool"] & prompts["test"] and not prompts["dev"] & prompts["test"]  # were 48 and 37 shared texts
    held_out = pool_texts(splits["dev"]) | pool_texts(splits["test"])
    assert not {s.text for shots in exemplar_candidates(splits["pool"], held_out).values() for s in shots} & held_out


def test_the_selection_is_recommended_only_when_held_out_test_says_better() -> None:
    from harness.results.common import Difference
    from harness.results.shots import TestSet
    from harness.workflows.shot_search import recommend

    def row(name: str, low: float, high: float) -> TestSet:
        return TestSet(set=name, shots=0, score=0.4, chosen_minus_this=Difference(diff=(low + high) / 2, ci=[low, high],
                                                                                 n_items=90, n_clusters=30))

    better = [row("zero_shot", 0.01, 0.1), row("default", 0.02, 0.2), TestSet(set="chosen", shots=6, score=0.5)]
    assert recommend("random1", better)[0] == "chosen"
    worse = [row("zero_shot", -0.04, 0.002), row("default", -0.1, -0.01), TestSet(set="chosen", shots=6, score=0.3)]
    recommended, sentence = recommend("random1", worse)
    assert recommended == "default" and "worse than default" in sentence
    even = [row("zero_shot", -0.02, 0.05), row("default", -0.03, 0.04), TestSet(set="chosen", shots=6, score=0.3)]
    assert recommend("random1", even)[1].startswith("not recommended")


def test_calibrate_by_a_column_calibrates_each_group(cli: CliRunner, run_and_calibration: tuple[Path, Path], tmp_path: Path) -> None:
    run, _ = run_and_calibration
    result = cli.invoke(app, ["calibrate", str(run), "--human", str(tmp_path / "d.jsonl"), "--by", "model", "--n-boot", "50",
                                 "-o", str(tmp_path / "by")], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    stored = json.loads((tmp_path / "by" / "calibration.json").read_text())
    assert stored["by"] == "model" and set(stored["groups"]) == {"aurora-mini", "basalt-7b", "cirrus-xl"}
    assert sum(g["n_joined"] for g in stored["groups"].values()) == stored["n_joined"]
    assert "By model" in result.output
    wrong = cli.invoke(app, ["calibrate", str(run), "--human", str(tmp_path / "d.jsonl"), "--by", "family"])
    assert wrong.exit_code == 2 and "--by 'family': no such column" in wrong.output
