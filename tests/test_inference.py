"""Valid inference with grader labels: each defect of the audit, as a test that failed before the fix."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from harness.analysis.agreement import agreement
from harness.analysis.transitions import analyze
from harness.cli.app import app
from harness.grading.grade import grade
from harness.grading.jobs import GradeSpec
from harness.io.pairs import load_pairs, write_pairs
from tests.helpers import SAMPLE, endpoint_for
from validation.studies import Setting, population_truth, study

CORRELATED = Setting(rho=0.7, miss_response=0.35)


@pytest.mark.slow
def test_the_correction_from_a_human_subset_covers_the_truth_when_errors_are_correlated() -> None:
    """EM was biased by -3 points with correlated errors (16 % coverage at 1,000 pairs); PPI needs no independence."""
    truth = population_truth(CORRELATED)["escalation"]
    covered, widths, raw_errors = 0, [], []
    for seed in range(12):
        graded, human = study(CORRELATED, seed, labelled_clusters=100)
        corrected = analyze(graded, human=human, n_boot=400, seed=seed).corrected
        assert corrected is not None and corrected.n_labelled == 600 and corrected.n_labelled_clusters == 100
        low, high = corrected.corrected_ci["escalation"]
        covered += low <= truth <= high
        widths.append(high - low)
        raw_errors.append(corrected.raw["escalation"] - truth)
    assert covered >= 10 and max(widths) < 0.12
    assert np.mean(raw_errors) < -0.02  # the grader's own share is biased, which is why the correction is needed


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


def test_a_human_subset_must_be_of_the_graded_pairs_and_its_design_complete(tmp_path: Path) -> None:
    graded, human = study(Setting(), 2, labelled_clusters=30)
    foreign = human.copy()
    foreign.loc[0, "id"] = "not-graded"
    with pytest.raises(Exception, match="1 ids are not in the graded set"):
        analyze(graded, human=foreign, n_boot=0)
    weighted = human.copy()
    weighted["inclusion_probability"] = 0.05
    weighted.loc[3, "inclusion_probability"] = None
    with pytest.raises(Exception, match="inclusion_probability"):
        analyze(graded, human=weighted, n_boot=0)
    half = human.iloc[1:]  # one pair of a labelled cluster missing
    assert any("labelled in part" in w for w in analyze(graded, human=half, n_boot=0).corrected.warnings)


def test_zero_of_k_has_an_exact_cluster_bound_not_a_zero_width_interval() -> None:
    gold = np.array([1] * 42 + [0] * 58)
    clusters = np.repeat(np.arange(25), 4)  # the 42 positives sit in 11 clusters
    result = agreement(gold, np.zeros(100, int), clusters=clusters, n_boot=500)
    assert result.detection.recall == 0.0
    low, high = result.ci["recall"]
    assert low == 0.0 and high == pytest.approx(1 - 0.025 ** (1 / 11))  # was [0, 0]
    assert result.ci["kappa"] == [None, None]  # kappa 0 in every resample: no interval, and a note says why
    assert any("only 25 clusters" in n for n in result.notes)


def test_one_positive_says_how_many_resamples_were_undefined() -> None:
    gold = np.array([1] + [0] * 39)
    result = agreement(gold, gold.copy(), n_boot=1000)
    assert result.detection.recall == 1.0
    assert result.ci["recall"][0] == pytest.approx(0.025)  # was [1, 1]: exact on its one cluster
    assert result.undefined_resamples is not None and result.undefined_resamples["recall"] > 300  # ~37 % of resamples draw no positive
    assert any("undefined in" in n for n in result.notes)


def test_a_share_at_zero_in_every_cluster_is_not_certain() -> None:
    graded, _ = study(Setting(per=3), 3, labelled_clusters=1)
    for side in ("prompt", "response"):
        graded[f"{side}_self_harm"] = 0  # nothing self-harm anywhere
    graded.loc[0, "prompt_self_harm"] = 2  # one harmful prompt, never persisting
    low, high = analyze(graded, by="model", n_boot=300).pooled.categories["self_harm"].persistence.ci
    assert low == 0.0 and high is not None and high > 0.5  # was [0.0, 0.0]: one cluster behind it


def test_groups_are_matched_on_the_prompt_even_with_cluster_none() -> None:
    graded, _ = study(Setting(n_prompts=80, per=3), 4, labelled_clusters=1)
    comparison = analyze(graded, by="model", cluster="none", n_boot=0).comparison
    assert comparison is not None and comparison.matched_on == "prompt_id"
    assert all(row.n_shared == 80 and row.n_clusters == 80 for row in comparison.metrics["escalation"])  # was 0 and p = 1
    assert comparison.reference == "m0"  # the first group, fixed before looking at the data


def test_the_reference_group_is_not_chosen_from_the_data() -> None:
    graded, _ = study(Setting(n_prompts=60, per=4), 5, labelled_clusters=1)
    harmful_last = graded.copy()
    harmful_last.loc[harmful_last["model"] == "m3", [f"response_{c}" for c in ("hate", "violence")]] = 3
    assert analyze(harmful_last, by="model", n_boot=0).comparison.reference == "m0"  # was m3, the most harmful


@pytest.fixture
def run_and_calibration(cli: CliRunner, server, tmp_path: Path) -> tuple[Path, Path]:  # type: ignore[no-untyped-def]
    data = write_pairs(load_pairs(SAMPLE), tmp_path / "d.jsonl")
    grade(data, GradeSpec(), endpoint_for(server), run_dir=tmp_path / "run")
    assert cli.invoke(app, ["calibrate", str(tmp_path / "run"), "--human", str(data), "--n-boot", "0"]).exit_code == 0
    return tmp_path / "run", tmp_path / "run" / "calibration.json"


@pytest.mark.slow
def test_a_calibration_of_another_grader_is_refused_unless_forced(cli: CliRunner, server, run_and_calibration: tuple[Path, Path],  # type: ignore[no-untyped-def]
                                                                  tmp_path: Path) -> None:
    _, calibration = run_and_calibration
    grade(tmp_path / "d.jsonl", GradeSpec(model="harness-small"), endpoint_for(server), run_dir=tmp_path / "small")
    refused = cli.invoke(app, ["analyze", str(tmp_path / "small"), "--correct", str(calibration), "--n-boot", "0"])
    assert refused.exit_code == 2 and "measured another grader" in refused.output and "--human" in refused.output
    forced = cli.invoke(app, ["analyze", str(tmp_path / "small"), "--correct", str(calibration), "--force", "--n-boot", "0",
                                 "--json"])
    assert forced.exit_code == 0
    warnings = json.loads((tmp_path / "small" / "analysis.json").read_text())["corrected"]["warnings"]
    assert any("transported from another grader" in w for w in warnings)


def test_the_calibration_pairs_inside_the_graded_set_are_counted(cli: CliRunner, run_and_calibration: tuple[Path, Path]) -> None:
    run, calibration = run_and_calibration
    stored = json.loads(calibration.read_text())
    assert len(stored["id_hashes"]) == stored["n_joined"] and "s01-aurora-mini" not in json.dumps(stored["id_hashes"])
    result = cli.invoke(app, ["analyze", str(run), "--correct", str(calibration), "--n-boot", "0"])
    assert result.exit_code == 0, result.output
    corrected = json.loads((run / "analysis.json").read_text())["corrected"]
    assert corrected["calibration_overlap"] == stored["n_joined"]  # the demo corrected the very pairs it calibrated on
    assert any("judged on pairs it was fit on" in w for w in corrected["warnings"])


def test_em_says_when_prompt_and_response_errors_are_dependent() -> None:
    from harness.analysis.correction_em import error_dependence
    from harness.results.calibration import Calibration

    def calibration(setting: Setting) -> Calibration:
        graded, human = study(setting, 6, labelled_clusters=setting.n_prompts)
        pairs = {"cluster": [int(c[2:]) for c in human["prompt_id"]]}
        for side in ("prompt", "response"):
            columns = [f"{side}_{c}" for c in ("hate", "sexual", "violence", "self_harm")]
            pairs[f"{side}_human"] = human[columns].max(axis=1).astype(int).tolist()
            pairs[f"{side}_grader"] = graded[columns].max(axis=1).astype(int).tolist()
        n = len(human)
        return Calibration.from_json({"run": "r", "model": "m", "n_joined": n, "threshold": 1, "n_boot": 0, "seed": 0,
                                      "unit": {"cluster": None, "n_items": n, "n_clusters": n}, "targets": {},
                                      "schema_version": 1, "max_severity_pairs": pairs})

    dependent = error_dependence(calibration(Setting(n_prompts=400, rho=0.8, miss_prompt=0.3)), "c", n_boot=500, seed=1)
    independent = error_dependence(calibration(Setting(n_prompts=400, rho=0.0, miss_prompt=0.3)), "c", n_boot=500, seed=1)
    assert dependent.verdict.startswith("dependent") and dependent.difference is not None and dependent.difference > 0.1
    assert independent.verdict.startswith("independence not rejected")


def test_a_pairs_table_names_no_grader_so_em_says_it_cannot_check(tmp_path: Path) -> None:
    graded, _ = study(Setting(n_prompts=60), 7, labelled_clusters=60)
    frame = pd.DataFrame(graded)
    cal = {"run": "r", "model": "m", "n_joined": 1, "threshold": 1, "n_boot": 0, "seed": 0, "targets": {}, "schema_version": 1,
           "unit": {"cluster": None, "n_items": 1, "n_clusters": 1},
           "max_severity_pairs": {"cluster": [0], "prompt_human": [1], "prompt_grader": [1], "response_human": [0],
                                  "response_grader": [0]}}
    warnings = analyze(frame, correct=cal, n_boot=0).corrected.warnings
    assert any("does not name its grader" in w for w in warnings)


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


@pytest.mark.slow
def test_ppi_matches_the_ppi_python_reference(cli: CliRunner, tmp_path: Path) -> None:
    """With every pair its own cluster and uniform sampling, ``analyze --human`` is the PPI mean estimator
    of ``ppi-python`` at the same λ, and its bootstrap-t interval is within 10 % of that package's CLT interval."""
    from ppi_py import ppi_mean_ci, ppi_mean_pointestimate

    rng = np.random.default_rng(3)
    n_all, n_labelled = 3000, 600
    truth_p = rng.choice([0, 1, 2, 3], n_all, p=[0.5, 0.2, 0.2, 0.1])
    truth_r = np.where(rng.random(n_all) < 0.3, truth_p, 0)

    def noisy(x: np.ndarray) -> np.ndarray:
        return np.where(rng.random(n_all) < 0.2, np.clip(x + rng.choice([-1, 1], n_all), 0, 3), x)

    grader_p, grader_r = noisy(truth_p), noisy(truth_r)

    def table(p: np.ndarray, r: np.ndarray) -> pd.DataFrame:
        frame = pd.DataFrame({"id": [f"i{i}" for i in range(n_all)], "prompt": [f"prompt {i}" for i in range(n_all)], "response": "r"})
        for side in ("prompt", "response"):
            for category in ("hate", "sexual", "violence", "self_harm"):
                frame[f"{side}_{category}"] = 0
        frame["prompt_violence"], frame["response_violence"] = p, r
        return frame

    labelled = rng.choice(n_all, n_labelled, replace=False)
    write_pairs(table(grader_p, grader_r), tmp_path / "graded.jsonl")
    write_pairs(table(truth_p, truth_r).iloc[labelled], tmp_path / "human.jsonl")
    result = cli.invoke(app, ["analyze", str(tmp_path / "graded.jsonl"), "--human", str(tmp_path / "human.jsonl"),
                                 "--cluster", "none", "--n-boot", "2000", "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    corrected = json.loads((tmp_path / "analysis.json").read_text())["corrected"]
    for share, (grader, human) in {"response_harm": (grader_r >= 1, truth_r >= 1), "prompt_harm": (grader_p >= 1, truth_p >= 1),
                                   "reduction": (grader_r < grader_p, truth_r < truth_p)}.items():
        y_hat, y = grader.astype(float), human.astype(float)
        lam = corrected["lambdas"][share]
        reference = float(np.ravel(ppi_mean_pointestimate(y[labelled], y_hat[labelled], y_hat, lam=lam))[0])
        assert corrected["corrected"][share] == pytest.approx(reference, abs=1e-6)  # λ is stored to 4 decimals
        low, high = (float(np.ravel(end)[0]) for end in ppi_mean_ci(y[labelled], y_hat[labelled], y_hat, alpha=0.05, lam=lam))
        ours = corrected["corrected_ci"][share]
        assert (ours[1] - ours[0]) == pytest.approx(high - low, rel=0.10), share
        assert abs((ours[0] + ours[1]) / 2 - (low + high) / 2) < 0.1 * (high - low)
    # escalation is rare here and over-corrected below 0: shown as 0, and said
    assert corrected["corrected"]["escalation"] == 0.0
    assert any(w.startswith("corrected below 0 or above 1 and shown clipped: escalation (-") for w in corrected["warnings"])
