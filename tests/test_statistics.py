"""Interval and test functions against values computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from harness.statistics import cluster_bootstrap, exact_mcnemar, holm, proportion, wilson


def test_wilson_hand_values() -> None:
    # p = 0.5, n = 10: centre 0.5, half-width z*sqrt(0.025 + z^2/400) / (1 + z^2/10)
    low, high = wilson(5, 10)
    assert (low, high) == pytest.approx((0.236593, 0.763407), abs=1e-6)
    assert wilson(0, 0) == (None, None)
    assert wilson(0, 5)[0] == 0.0
    assert proportion(0, 0) == {"k": 0, "n": 0, "rate": None, "ci": [None, None]}


def test_exact_mcnemar_hand_values() -> None:
    # b=10, c=2: 2 * P(X <= 2 | n=12, 1/2) = 2 * (1 + 12 + 66) / 4096
    assert exact_mcnemar(10, 2) == pytest.approx(2 * 79 / 4096)
    assert exact_mcnemar(3, 3) == 1.0 and exact_mcnemar(0, 0) == 1.0


def test_holm_hand_values() -> None:
    adjusted = holm({"x": 0.01, "y": 0.04, "z": 0.03, "w": 0.5})
    assert adjusted == pytest.approx({"x": 0.04, "z": 0.09, "y": 0.09, "w": 0.5})


def test_cluster_bootstrap_moves_clusters_together() -> None:
    # two clusters: one all-escalating (3 rows), one never; a resample is 0, 0.5 or 1 of clusters
    clusters = np.array([0, 0, 0, 1, 1, 1])
    esc = np.array([1.0, 1, 1, 0, 0, 0])
    ci = cluster_bootstrap(clusters, {"escalation": esc}, np.ones(6), n_boot=400, seed=1)
    assert ci["escalation"] == [0.0, 1.0]
    again = cluster_bootstrap(clusters, {"escalation": esc}, np.ones(6), n_boot=400, seed=1)
    assert again == ci
