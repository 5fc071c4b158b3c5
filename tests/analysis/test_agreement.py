"""One confusion matrix and what it says: κ, F1 and detection by hand and equal to scikit-learn (weighted too), defined
at empty and one-class input, exact bounds at 0/k."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score, f1_score

from harness.analysis.agreement import agreement


def test_hand_computed_ordinal_metrics() -> None:
    gold = [0, 0, 1, 2, 3, None, 1]
    pred = [0, 1, 1, 3, 3, 2, None]  # last: an unparsed grade; sixth: unknown gold
    r = agreement(gold, pred, n_boot=0)
    assert r["n"] == 5 and r["left_out"]["grader_missing"] == 1 and r["left_out"]["reference_missing"] == 1
    assert r["confusion"] == [[1, 1, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 0, 1]]
    assert r["accuracy"] == pytest.approx(3 / 5)
    # plain kappa by hand: po = 0.6; row sums 2,1,1,1; column sums 1,2,0,2 -> pe = (2+2+0+2)/25 = 0.24
    assert r["kappa"] == pytest.approx((0.6 - 0.24) / (1 - 0.24))
    g, p = [0, 0, 1, 2, 3], [0, 1, 1, 3, 3]
    assert r["kappa_quadratic"] == pytest.approx(cohen_kappa_score(g, p, weights="quadratic"))
    assert r["kappa_linear"] == pytest.approx(cohen_kappa_score(g, p, weights="linear"))
    # class 2 present in gold, F1 0
    assert r["macro_f1"] == pytest.approx(f1_score(g, p, average="macro", labels=[0, 1, 2, 3]))
    det = r["detection"]  # harmful when >= 1: gold pos = 3, pred pos = 4, tp = 3
    assert (det["tp"], det["fp"], det["fn"], det["tn"]) == (3, 1, 0, 1)
    assert det["recall"] == 1.0 and det["precision"] == 0.75 and det["false_positive_rate"] == 0.5
    assert det["prevalence_gold"] == 0.6 and det["prevalence_pred"] == 0.8


def test_no_positives_and_single_class_are_defined() -> None:
    r = agreement([0, 0, 0], [0, 0, 0], n_boot=50)
    assert r["kappa"] is None and r["detection"]["recall"] is None and r["detection"]["false_positive_rate"] == 0.0
    assert any("kappa undefined" in n for n in r["notes"]) and any("recall undefined" in n for n in r["notes"])
    assert r["ci"]["recall"] == [None, None]
    empty = agreement([None], [1], n_boot=10)
    assert empty["n"] == 0 and empty["accuracy"] is None and empty["confusion"] == [[0] * 4] * 4


def test_nominal_labels_and_outside_values() -> None:
    from sklearn.metrics import cohen_kappa_score as sk_kappa

    gold, pred = ["a", "b", "b", "c"], ["a", "b", "x", "c"]
    r = agreement(gold, pred, labels=["a", "b", "c"], ordinal=False, n_boot=0)
    # a label outside the reference's set is a disagreement, not a row left out (it was: accuracy 1.0 on 3 rows)
    assert r["n"] == 4 and r["left_out"]["grader_outside_labels"] == 1 and r["accuracy"] == 0.75
    assert r["kappa"] == pytest.approx(sk_kappa(gold, pred)) and "counted as disagreements" in " ".join(r["notes"])
    assert "kappa_quadratic" not in r


def test_calibrate_weights_by_inclusion_probability_as_scikit_learn(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    n = 120
    human = rng.integers(0, 3, n)
    grader = np.where(rng.random(n) < 0.7, human, rng.integers(0, 3, n))
    pi = rng.choice([0.2, 0.5, 1.0], n)
    table = pd.DataFrame(
        {"id": [f"i{i}" for i in range(n)], "prompt": [f"p{i}" for i in range(n)], "human": human, "grader": grader}
    )
    from harness.analysis.agreement import agreement

    found = agreement(human, grader, labels=[0, 1, 2], threshold=1, weights=1 / pi, n_boot=200)
    assert found.kappa == pytest.approx(cohen_kappa_score(human, grader, sample_weight=1 / pi))
    assert found.kappa_quadratic == pytest.approx(
        cohen_kappa_score(human, grader, weights="quadratic", sample_weight=1 / pi)
    )
    # counts stay the labelled ones
    assert found.confusion == pd.crosstab(table["human"], table["grader"]).to_numpy().tolist()
    unweighted = agreement(human, grader, labels=[0, 1, 2], threshold=1, n_boot=0)
    assert unweighted.kappa != found.kappa


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
    # ~37 % of resamples draw no positive
    assert result.undefined_resamples is not None and result.undefined_resamples["recall"] > 300
    assert any("undefined in" in n for n in result.notes)
