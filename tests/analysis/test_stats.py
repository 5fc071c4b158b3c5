"""The statistics core by hand and against scikit-learn: sign-flip and McNemar tests by cluster, Holm,
Benjamini–Yekutieli, κ and F1, bootstraps that move clusters together."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score as sk_kappa
from sklearn.metrics import f1_score

from harness.analysis.stats import (
    benjamini_yekutieli,
    bootstrap_ci,
    bootstrap_totals,
    cohen_kappa_score,
    confusion_matrix,
    detection_from_confusion,
    holm,
    kappa_from_confusion,
    macro_f1_from_confusion,
    mcnemar_test,
    ratio_bootstrap_ci,
    sign_flip_test,
)


def test_benjamini_yekutieli_by_hand() -> None:
    # m = 3, c(m) = 1 + 1/2 + 1/3 = 11/6; p_(i) * m * c(m) / i, then the running minimum from the top.
    adjusted = benjamini_yekutieli({"a": 0.01, "b": 0.02, "c": 0.03})
    assert adjusted == pytest.approx({"a": 0.055, "b": 0.055, "c": 0.055})
    assert benjamini_yekutieli({"a": 0.001, "b": 0.5})["a"] == pytest.approx(0.001 * 2 * 1.5)


def test_sign_flip_with_singletons_is_the_exact_mcnemar() -> None:
    # b=10, c=2: 2 * P(X <= 2 | n=12, 1/2) = 2 * (1 + 12 + 66) / 4096
    p, method = sign_flip_test([1] * 10 + [-1] * 2)
    assert p == pytest.approx(2 * 79 / 4096) and "McNemar" in method
    assert sign_flip_test([1, 1, 1, -1, -1, -1])[0] == 1.0
    assert sign_flip_test([0, 0, 0])[0] == 1.0


def test_sign_flip_exact_convolution_by_hand() -> None:
    # differences 2, 1, 1: the 8 sign patterns give sums 4, 2, 2, 0, 0, -2, -2, -4.
    # observed |sum| = 4: P(|S| >= 4) = 2/8.
    p, method = sign_flip_test([2, 1, 1])
    assert p == pytest.approx(2 / 8) and method == "exact sign-flip over clusters"
    # observed 2 - 1 - 1 = 0: p = 1
    assert sign_flip_test([2, -1, -1])[0] == 1.0
    # observed 2 + 1 - 1 = 2: P(|S| >= 2) = 6/8
    assert sign_flip_test([2, 1, -1])[0] == pytest.approx(6 / 8)


def test_mcnemar_by_cluster_ignores_duplication() -> None:
    rng = np.random.default_rng(3)
    a = rng.random(60) < 0.7
    b = rng.random(60) < 0.5
    single = mcnemar_test(a, b)
    repeated = mcnemar_test(np.repeat(a, 6), np.repeat(b, 6), clusters=np.repeat(np.arange(60), 6))
    naive = mcnemar_test(np.repeat(a, 6), np.repeat(b, 6))
    assert single["p_value"] == pytest.approx(repeated["p_value"])
    assert repeated["n_items"] == 360 and repeated["n_clusters"] == 60
    assert naive["p_value"] < single["p_value"] / 10  # rows-as-independent overstates the evidence


def test_holm_hand_values() -> None:
    adjusted = holm({"x": 0.01, "y": 0.04, "z": 0.03, "w": 0.5})
    assert adjusted == pytest.approx({"x": 0.04, "z": 0.09, "y": 0.09, "w": 0.5})


def test_kappa_and_f1_equal_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        g = rng.integers(0, 4, 50)
        p = np.clip(g + rng.integers(-1, 2, 50), 0, 3)
        for weights in (None, "linear", "quadratic"):
            assert cohen_kappa_score(g, p, weights=weights) == pytest.approx(sk_kappa(g, p, weights=weights))
        present = sorted(set(g) | set(p))
        macro = float(macro_f1_from_confusion(confusion_matrix(g, p, k=4)))
        assert macro == pytest.approx(f1_score(g, p, average="macro", labels=present))
    assert cohen_kappa_score([1, 1], [1, 1]) is None  # sklearn: NaN


def test_detection_from_confusion_by_hand() -> None:
    m = confusion_matrix([0, 0, 1, 2, 3], [0, 1, 1, 3, 3], k=4)
    det = detection_from_confusion(m, threshold_index=1)
    assert (det["tp"], det["fp"], det["fn"], det["tn"]) == (3, 1, 0, 1)
    assert det["recall"] == 1.0 and det["precision"] == 0.75 and det["false_positive_rate"] == 0.5
    stacked = kappa_from_confusion(np.stack([m, m]), weights="quadratic")
    assert stacked.shape == (2,) and stacked[0] == pytest.approx(
        sk_kappa([0, 0, 1, 2, 3], [0, 1, 1, 3, 3], weights="quadratic")
    )


def test_bootstrap_moves_clusters_together() -> None:
    # two clusters: one all-escalating (3 rows), one never; a resample is 0, 0.5 or 1 of clusters
    clusters = np.array([0, 0, 0, 1, 1, 1])
    esc = np.array([1.0, 1, 1, 0, 0, 0])
    ci = ratio_bootstrap_ci({"escalation": esc}, np.ones(6), clusters=clusters, n_boot=400, seed=1)
    assert ci["escalation"] == [0.0, 1.0]
    again = ratio_bootstrap_ci({"escalation": esc}, np.ones(6), clusters=clusters, n_boot=400, seed=1)
    assert again == ci


def test_general_and_totals_bootstrap_draw_the_same_resamples() -> None:
    rng = np.random.default_rng(5)
    values = rng.random(40)
    clusters = rng.integers(0, 12, 40)
    totals = bootstrap_totals(np.column_stack([values, np.ones(40)]), clusters=clusters, n_boot=300, seed=9)
    from harness.analysis.intervals import percentile_ci

    via_totals = percentile_ci(totals[:, 0] / totals[:, 1])
    general = bootstrap_ci(lambda v: v.mean(), values, clusters=clusters, n_boot=300, seed=9)
    assert general == pytest.approx(via_totals)


def test_duplicating_rows_under_one_cluster_leaves_the_ci_unchanged() -> None:
    rng = np.random.default_rng(1)
    hits = (rng.random(80) < 0.3).astype(float)
    base = ratio_bootstrap_ci({"r": hits}, np.ones(80), n_boot=500, seed=2)["r"]
    dup = ratio_bootstrap_ci(
        {"r": np.repeat(hits, 6)}, np.ones(480), clusters=np.repeat(np.arange(80), 6), n_boot=500, seed=2
    )["r"]
    rows = ratio_bootstrap_ci({"r": np.repeat(hits, 6)}, np.ones(480), n_boot=500, seed=2)["r"]
    assert dup == pytest.approx(base)
    width = lambda ci: ci[1] - ci[0]
    assert width(rows) < 0.6 * width(base)  # resampling rows would claim ~sqrt(6) more precision


def test_mcnemar_takes_prompt_ids_as_clusters() -> None:
    from harness.analysis.stats import mcnemar_test

    by_name = mcnemar_test([1, 1, 0, 1], [0, 0, 0, 1], clusters=["a", "a", "b", "c"])
    by_code = mcnemar_test([1, 1, 0, 1], [0, 0, 0, 1], clusters=[0, 0, 1, 2])
    assert by_name == by_code and by_name.n_clusters == 3 and by_name.discordant_clusters == 1
    with pytest.raises(ValueError, match="clusters has 2 entries for 4 items"):
        mcnemar_test([1, 1, 0, 1], [0, 0, 0, 1], clusters=["a", "b"])
