"""Is a grader's confidence worth anything? Its reliability diagram and expected calibration error.

With ``grade --logprobs`` every label carries ``P(severity)`` per category. For each side, every
(pair, category) the human labelled is a forecast ``P(severity ≥ threshold)`` and an outcome
(the human's label at or above the threshold). Forecasts fall in ten equal-width bins; per bin
the mean forecast against the observed rate is the reliability diagram, and the **expected
calibration error** is the bins' mean absolute gap weighted by their counts (0: a forecast of
30 % comes true 30 % of the time). The **Brier score** is the mean squared error of the forecast.
The interval of the ECE resamples prompt clusters (bin sums per cluster, so one bootstrap pass).
ECE is biased upward on few items (an empty-looking gap in a bin of 3): read it beside ``n``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core.constants import CATEGORIES, DEFAULT_N_BOOT, DEFAULT_SEED, SIDES
from ..results.calibration import ReliabilityBin, SideReliability
from .intervals import percentile_ci
from .stats import bootstrap_totals

BINS = 10


def _ece(totals: np.ndarray) -> np.ndarray:
    """ECE from per-bin (count, forecast sum, outcome sum) totals: ``(..., 3*BINS)``."""
    counts, forecast, outcome = totals[..., :BINS], totals[..., BINS:2 * BINS], totals[..., 2 * BINS:]
    n = counts.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, np.abs(forecast - outcome).sum(axis=-1) / n, np.nan)


def side_reliability(forecast: np.ndarray, outcome: np.ndarray, clusters: np.ndarray, *, n_boot: int = DEFAULT_N_BOOT,
                     seed: int = DEFAULT_SEED) -> SideReliability:
    """Reliability of forecasts (probabilities) against 0/1 outcomes, resampling ``clusters``.

    >>> r = side_reliability(np.array([0.1, 0.1, 0.9, 0.9]), np.array([0, 0, 1, 0]), np.arange(4), n_boot=0)
    >>> round(r.ece, 3), round(r.brier, 3)
    (0.25, 0.21)
    """
    which = np.minimum((forecast * BINS).astype(int), BINS - 1)
    cells = np.zeros((forecast.size, 3 * BINS))
    rows = np.arange(forecast.size)
    cells[rows, which] = 1.0
    cells[rows, BINS + which] = forecast
    cells[rows, 2 * BINS + which] = outcome
    totals = cells.sum(axis=0)
    boot = bootstrap_totals(cells, clusters=clusters, n_boot=n_boot, seed=seed)
    bins = [ReliabilityBin(low=b / BINS, high=(b + 1) / BINS, n=int(totals[b]),
                           mean_forecast=float(totals[BINS + b] / totals[b]) if totals[b] else None,
                           observed=float(totals[2 * BINS + b] / totals[b]) if totals[b] else None) for b in range(BINS)]
    return SideReliability(
        n=int(forecast.size), n_clusters=int(np.unique(clusters).size), ece=float(_ece(totals)),
        ece_ci=percentile_ci(_ece(boot)) if boot.shape[0] else [None, None],
        brier=float(np.mean((forecast - outcome) ** 2)), bins=bins,
    )


def reliability(joined: Any, probabilities: dict[tuple[str, str], dict[str, list[float]]], clusters: np.ndarray, *,
                threshold: int, n_boot: int, seed: int) -> dict[str, SideReliability]:
    """Per side, the reliability of ``P(severity ≥ threshold)`` against the human labels of ``joined``."""
    out: dict[str, SideReliability] = {}
    ids = joined["id"].astype(str).tolist()
    for side in SIDES:
        forecast, outcome, codes = [], [], []
        for row, ident in enumerate(ids):
            found = probabilities.get((ident, side))
            if not found:
                continue
            for category in CATEGORIES:
                column = f"{side}_{category}"
                human = joined[column].iloc[row] if column in joined.columns else None
                if category not in found or human is None or human != human:
                    continue
                forecast.append(float(sum(found[category][threshold:])))
                outcome.append(float(int(human) >= threshold))
                codes.append(clusters[row])
        if forecast:
            out[side] = side_reliability(np.clip(np.array(forecast), 0.0, 1.0), np.array(outcome), np.array(codes),
                                         n_boot=n_boot, seed=seed)
    return out
