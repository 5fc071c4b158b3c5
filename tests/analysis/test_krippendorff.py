"""Krippendorff's α from coincidence matrices, equal to the reference package with missing ratings."""

from __future__ import annotations

import krippendorff
import numpy as np
import pytest

from harness.analysis.krippendorff import alpha_from_coincidences, coincidences


def alpha_of(table: np.ndarray, level: str, k: int, values: np.ndarray | None = None) -> float:
    return float(alpha_from_coincidences(coincidences(table, k).sum(axis=0), k, level, values))


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval"])
def test_alpha_matches_the_krippendorff_package_with_missing_ratings(level: str) -> None:
    rng = np.random.default_rng(7)
    for trial in range(20):
        items, raters, k = int(rng.integers(5, 60)), int(rng.integers(2, 6)), int(rng.integers(2, 6))
        table = rng.integers(0, k, size=(items, raters)).astype(float)
        table[rng.random(table.shape) < 0.3] = np.nan
        if (np.sum(~np.isnan(table), axis=1) >= 2).sum() < 2 or np.unique(table[~np.isnan(table)]).size < 2:
            continue
        ours = alpha_of(table, level, k, np.arange(k, dtype=float) if level == "interval" else None)
        reference = krippendorff.alpha(
            reliability_data=table.T, level_of_measurement=level, value_domain=list(range(k))
        )
        assert ours == pytest.approx(reference, abs=1e-9), (trial, level)
