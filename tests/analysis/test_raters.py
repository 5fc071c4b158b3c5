"""Several human raters: α through the CLI, alignment by hand, the alternative annotator test and what it cannot
test."""

from __future__ import annotations

import json
from pathlib import Path

import krippendorff
import numpy as np
import pandas as pd
import pytest
from scipy.stats import ttest_1samp
from typer.testing import CliRunner

from harness.analysis.raters import alignment, alt_test
from harness.analysis.stats import benjamini_yekutieli
from harness.cli.app import app
from tests.helpers import SHARED, exit_and_output, rater_study


def test_agreement_on_one_cluster_gives_no_zero_width_interval(cli: CliRunner, tmp_path: Path) -> None:
    table = tmp_path / "r.jsonl"
    table.write_text("".join(json.dumps({"id": f"i{k}", "prompt_id": "p0", "a1": k % 3, "a2": (k + k // 4) % 3}) + "\n"
                             for k in range(12)), encoding="utf-8")
    result = cli.invoke(app, ["agreement", str(table), "--raters", "a1,a2", "--n-boot", "200", "--json", "-o",
                                 str(tmp_path / "a.json")])
    assert result.exit_code == 0, result.output
    alpha = json.loads(result.stdout)["scopes"]["label"]
    lo, hi = alpha["alpha_ci"]
    assert lo is None and hi is None


@pytest.mark.shared_data(SHARED / "xstest")
def test_xstest_annotators_nominal_alpha_through_the_cli(tmp_path: Path) -> None:
    """The held-back model (GPT-4's completions): α of the two annotators as the reference package has it."""
    csv = SHARED / "xstest/evaluation/automated_evaluation_labels/xstest_v2_completions_gpt4_gpteval.csv"
    out = tmp_path / "agreement.json"
    code, output = exit_and_output(
        "agreement",
        str(csv),
        "--raters",
        "annotation_1,annotation_2",
        "--final",
        "final_label",
        "--grader",
        "gpt4_label",
        "--n-boot",
        "200",
        "-o",
        str(out),
        "--json",
    )
    assert code == 0, output
    data = json.loads(out.read_text())
    frame = pd.read_csv(csv)
    codes = {label: i for i, label in enumerate(sorted(set(frame["annotation_1"]) | set(frame["annotation_2"])))}
    table = np.array(
        [[codes[a] for a in frame["annotation_1"]], [codes[b] for b in frame["annotation_2"]]], dtype=float
    )
    reference = krippendorff.alpha(reliability_data=table, level_of_measurement="nominal")
    scope = data["scopes"]["label"]
    assert abs(scope["alpha"] - reference) < 0.005
    assert scope["alpha_ci"][0] < scope["alpha"] < scope["alpha_ci"][1]
    grader = scope["graders"]["gpt4_label"]
    assert grader["kappa_final"] < grader["human_ceiling"]  # the grader below the annotators (0.87 against 0.97)
    assert grader["alt_test"]["passed"] is None and "2 annotators" in grader["alt_test"]["note"]
    assert data["passed"] == {"gpt4_label": None}
    assert any("at least 3" in w for w in data["warnings"])




@pytest.mark.parametrize("seed", [101, 202, 303])
def test_alt_test_passes_a_good_grader_and_fails_a_poor_one(tmp_path: Path, seed: int) -> None:
    table = tmp_path / "study.csv"
    rater_study(seed).to_csv(table, index=False)
    verdicts = {}
    for grader in ("good", "poor"):
        code, output = exit_and_output(
            "agreement",
            str(table),
            "--raters",
            "a1,a2,a3",
            "--grader",
            grader,
            "--epsilon",
            "0.1",
            "--json",
            "--n-boot",
            "0",
            "-o",
            str(tmp_path / f"{grader}.json"),
        )
        assert code == 0, output
        data = json.loads((tmp_path / f"{grader}.json").read_text())
        test = data["scopes"]["label"]["graders"][grader]["alt_test"]
        assert len(test["annotators"]) == 3 and all(a["n_clusters"] == 150 for a in test["annotators"])
        verdicts[grader] = data["passed"][grader]
    assert verdicts == {"good": True, "poor": False}


def test_alt_test_p_value_is_the_one_sided_t_test_with_margin() -> None:
    """With every item its own cluster, the cluster-robust test is the one-sample t test of d against −ε."""
    frame = rater_study(5, n=120, graders={"g": 0.8})
    codes = {f"c{v}": v for v in range(3)}
    humans = np.column_stack([frame[f"a{j}"].map(codes) for j in (1, 2, 3)]).astype(float)
    grader = frame["g"].map(codes).to_numpy(dtype=float)
    result = alt_test(grader, humans, np.arange(120), ["a1", "a2", "a3"], level="nominal", values=None, epsilon=0.1)
    for j, annotator in enumerate(result.annotators):
        others = np.delete(humans, j, axis=1)
        human_score = alignment(humans[:, j], others, level="nominal", values=None)
        grader_score = alignment(grader, others, level="nominal", values=None)
        d = (grader_score >= human_score).astype(float) - (human_score >= grader_score).astype(float)
        assert annotator.rho_grader == pytest.approx((grader_score >= human_score).mean())
        assert annotator.p_value == pytest.approx(ttest_1samp(d, -0.1, alternative="greater").pvalue, rel=1e-9)
    adjusted = benjamini_yekutieli({a.rater: a.p_value for a in result.annotators})
    assert [a.p_by for a in result.annotators] == [adjusted[a.rater] for a in result.annotators]
    assert result.winning_rate == pytest.approx(np.mean([a.rejected for a in result.annotators]))


def test_alignment_by_hand() -> None:
    others = np.array([[1.0, 1.0], [0.0, 2.0], [np.nan, 3.0], [np.nan, np.nan]])
    labels = np.array([1.0, 2.0, 1.0, 0.0])
    nominal = alignment(labels, others, level="nominal", values=None)
    assert nominal[:3].tolist() == [1.0, 0.5, 0.0] and np.isnan(nominal[3])
    ordinal = alignment(labels, others, level="ordinal", values=np.array([0.0, 1.0, 2.0, 3.0]))
    assert ordinal[:3].tolist() == pytest.approx([0.0, -np.sqrt(2.0), -2.0])  # minus the root mean squared distance


def test_too_few_items_or_annotators_are_said_not_tested(tmp_path: Path) -> None:
    table = tmp_path / "small.csv"
    rater_study(9, n=20).to_csv(table, index=False)
    code, output = exit_and_output("agreement", str(table), "--raters", "a1,a2,a3", "--grader", "good", "--n-boot", "0",
                        "-o", str(tmp_path / "a.json"))
    assert code == 0, output
    data = json.loads((tmp_path / "a.json").read_text())
    test = data["scopes"]["label"]["graders"]["good"]["alt_test"]
    assert test["passed"] is None and "a1 (20 items)" in test["note"] and data["passed"]["good"] is None
    assert "not run" in output


def test_a_sparse_annotator_is_left_out_of_the_alt_test_and_named(tmp_path: Path) -> None:
    frame = rater_study(12, n=120)
    frame["a4"] = frame["a1"].where(frame.index < 20)  # rated 20 items only
    frame.to_csv(tmp_path / "t.csv", index=False)
    code, output = exit_and_output(
        "agreement",
        str(tmp_path / "t.csv"),
        "--raters",
        "a1,a2,a3,a4",
        "--grader",
        "good",
        "--n-boot",
        "0",
        "-o",
        str(tmp_path / "a.json"),
    )
    assert code == 0, output
    test = json.loads((tmp_path / "a.json").read_text())["scopes"]["label"]["graders"]["good"]["alt_test"]
    assert [a["rater"] for a in test["annotators"]] == ["a1", "a2", "a3"] and "left out a4" in test["note"]
    assert test["passed"] is True
