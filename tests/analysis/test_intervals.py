"""The bias-corrected and accelerated interval, and the jackknife totals it reads."""

from __future__ import annotations

import numpy as np
import pytest

from harness.analysis.intervals import bca_ci, percentile_ci, proportion, wilson
from harness.analysis.stats import (
    jackknife_totals,
)


def test_bca_is_the_percentile_interval_where_the_bootstrap_shows_no_bias_or_skew() -> None:
    draws = np.linspace(-1, 1, 2001)
    assert bca_ci(draws, 0.0, np.array([0.1, -0.1, 0.2, -0.2])) == pytest.approx(percentile_ci(draws))


def test_bca_moves_towards_the_estimate_when_the_bootstrap_sits_below_it() -> None:
    draws = np.linspace(-1, 1, 2001)
    plain, moved = percentile_ci(draws), bca_ci(draws, 0.2, np.zeros(5) + np.arange(5) * 0.01)
    low, high = moved
    assert low is not None and high is not None and plain[0] is not None and plain[1] is not None
    assert low > plain[0] and high > plain[1]


def test_bca_gives_no_interval_where_nothing_moves() -> None:
    assert bca_ci(np.zeros(100), 0.0, np.zeros(5)) == [None, None]
    assert bca_ci(np.array([np.nan, np.nan]), 0.5, np.zeros(3)) == [None, None]


def test_jackknife_totals_leave_each_cluster_out() -> None:
    values = np.array([[1.0, 0.0], [2.0, 1.0], [4.0, 1.0], [8.0, 0.0]])
    left = jackknife_totals(values, clusters=np.array([5, 5, 2, 9]))
    assert left.tolist() == [[11.0, 1.0], [12.0, 1.0], [7.0, 2.0]]  # clusters 2, 5, 9 left out in turn
    assert jackknife_totals(values).shape == (4, 2)


def test_wilson_hand_values() -> None:
    # p = 0.5, n = 10: centre 0.5, half-width z*sqrt(0.025 + z^2/400) / (1 + z^2/10)
    low, high = wilson(5, 10)
    assert (low, high) == pytest.approx((0.236593, 0.763407), abs=1e-6)
    assert wilson(0, 0) == (None, None)
    assert wilson(0, 5)[0] == 0.0
    assert proportion(0, 0) == {"k": 0, "n": 0, "rate": None, "ci": [None, None]}
