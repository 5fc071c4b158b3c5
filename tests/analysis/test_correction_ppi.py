"""``analyze --human``: shares corrected by a human-labelled subset cover the truth when errors are correlated, add
up (reduction, preservation and escalation share one λ), warn by name on few clusters, and refuse bad designs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from harness.analysis.ppi import Design, ShareData, cluster_sums, draws, estimate, ratio, tuned_lambdas
from harness.analysis.shares import share_columns
from harness.analysis.transitions import analyze
from harness.cli.app import app
from tests.helpers import CORRELATED, SAMPLE
from validation.studies import Setting, population_truth, study

PARTITION = ("reduction", "preservation", "escalation")


def test_the_three_corrected_shares_add_up_to_one_pooled_and_per_group() -> None:
    graded, human = study(Setting(rho=0.4), 3, labelled_clusters=100)
    corrected = analyze(graded, human=human, by="model", n_boot=200, seed=3).corrected
    assert corrected is not None
    assert sum(corrected.corrected[s] for s in PARTITION) == pytest.approx(1.0, abs=1e-12)
    assert len({corrected.lambdas[s] for s in PARTITION}) == 1
    for group in corrected.groups.values():
        assert sum(group.corrected[s] for s in PARTITION) == pytest.approx(1.0, abs=1e-12)
    assert "one lambda for reduction, preservation and escalation" in corrected.method


def test_the_shared_lambda_is_the_one_that_minimises_the_summed_variance() -> None:
    """By hand: each share tuned alone gives its own λ and the three no longer add up; the shared λ lies between."""
    graded, human = study(Setting(rho=0.4), 5, labelled_clusters=100)
    columns = [f"{side}_{c}" for side in ("prompt", "response") for c in ("hate", "sexual", "violence", "self_harm")]
    labelled = graded["id"].isin(set(human["id"])).to_numpy()
    codes = graded["prompt_id"].astype("category").cat.codes.to_numpy()
    design = Design.of(labelled, codes)
    truth = human.set_index("id").reindex(graded["id"])[columns].fillna(0).to_numpy(dtype=int)
    grader = graded[columns].to_numpy(dtype=int)
    made, real = share_columns(grader[:, :4], grader[:, 4:]), share_columns(truth[:, :4], truth[:, 4:])
    sums = {s: cluster_sums(ShareData(made[s][0], made[s][1], real[s][0], real[s][1]), design) for s in PARTITION}
    ones = np.ones((1, design.n_clusters))
    alone = {s: float(tuned_lambdas(sums[s], ones)[0]) for s in PARTITION}
    assert max(alone.values()) - min(alone.values()) > 0.01  # tuned apart, they would not add up
    assert sum(float(ratio(sums[s].sum(axis=0), alone[s])) for s in PARTITION) != pytest.approx(1.0, abs=1e-4)
    counts = draws(design.n_clusters, n_boot=0, seed=1)
    together = [estimate(sums[s], counts, together=[sums[o] for o in PARTITION if o != s]) for s in PARTITION]
    assert min(alone.values()) <= together[0].lam <= max(alone.values())
    assert sum(e.value or 0.0 for e in together) == pytest.approx(1.0, abs=1e-12)


def test_per_category_corrected_shares_from_few_clusters_warn_by_name(cli: CliRunner, tmp_path: Path) -> None:
    rows = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines()]
    keep = {f"s{k:02d}" for k in range(1, 41)}  # 40 labelled prompt clusters: enough overall, thin per category
    human = tmp_path / "human.jsonl"
    human.write_text("".join(json.dumps(r) + "\n" for r in rows if r["prompt_id"] in keep), encoding="utf-8")
    result = cli.invoke(
        app,
        [
            "analyze",
            str(SAMPLE),
            "--human",
            str(human),
            "--by",
            "model",
            "--n-boot",
            "100",
            "--json",
            "-o",
            str(tmp_path / "a"),
        ],
    )
    assert result.exit_code == 0, result.output
    warnings = json.loads(result.stdout)["corrected"]["warnings"]
    thin = [w for w in warnings if "fewer than 30 labelled clusters in the denominator" in w]
    assert any(w.startswith("all pairs:") and "hate.persistence (" in w for w in thin), warnings
    models = {r["model"] for r in rows}
    assert {w.split(":")[0] for w in thin} >= models  # per group too
    assert any("classic PPI (lambda 1) for" in w and "self_harm." in w for w in warnings)


def _inclusion_table(tmp_path: Path, low: float | str) -> Path:
    rows = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines()]
    for row in rows:
        row["inclusion_probability"] = low if int(str(row["prompt_id"]).lstrip("ps") or 0) % 2 else 1.0
    path = tmp_path / "human.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.mark.parametrize("low", [1e-300, "often", 0.0])
def test_inclusion_probabilities_below_the_floor_or_not_numbers_exit_2(
    cli: CliRunner, tmp_path: Path, low: Any
) -> None:
    human = _inclusion_table(tmp_path, low)
    result = cli.invoke(
        app, ["analyze", str(SAMPLE), "--human", str(human), "--n-boot", "50", "-o", str(tmp_path / "a")]
    )
    assert result.exit_code == 2, result.output
    assert "expected a probability from 0.001 to 1" in result.output


def test_no_printed_corrected_interval_is_inverted(cli: CliRunner, tmp_path: Path) -> None:
    human = _inclusion_table(tmp_path, 0.02)
    rows = [json.loads(line) for line in human.read_text(encoding="utf-8").splitlines()]
    for k, row in enumerate(rows):  # humans who disagree with the table's labels on a third of the responses
        if k % 3 == 0:
            row["response_violence"] = 3 - int(row["response_violence"])
            row["response_hate"] = 0
    human.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    result = cli.invoke(app, ["analyze", str(SAMPLE), "--human", str(human), "--n-boot", "200", "--json",
                                 "-o", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    corrected = json.loads(result.stdout)["corrected"]
    assert corrected["corrected"] != corrected["raw"]
    checked = 0
    for key, value in corrected["corrected"].items():
        lo, hi = corrected["corrected_ci"][key]
        if lo is not None and hi is not None and value is not None:
            assert lo < hi and lo <= value <= hi, (key, value, lo, hi)
            checked += 1
    assert checked >= 5


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
