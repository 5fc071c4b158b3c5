"""Is a grader's confidence worth anything? Its reliability diagram, calibration error and a test of calibration.

With ``grade --logprobs`` every label carries ``P(severity)`` per category. For each side, every
(pair, category) the human labelled is a forecast ``P(severity ≥ threshold)`` and an outcome
(the human's label at or above the threshold). Forecasts fall in ten equal-width bins; per bin
the mean forecast against the observed rate is the reliability diagram. On the prompt side a prompt
answered by several models is one forecast per category: each pair repeats its prompt's forecast and
label, and counting the copies as independent items made the test reject a calibrated grader three
times in four (``make validate``), so a copy counts once (``copies_merged``).

* **ECE** (plug-in): the bins' mean absolute gap weighted by their counts. It is biased upward:
  a perfectly calibrated grader on a few hundred items shows an ECE of several points from noise
  alone, so its interval does not cover the truth (``make validate`` measures it).
* **Debiased calibration error** (Kumar, Liang & Ma 2019): per bin the squared gap minus its
  sampling variance, ``(f̄ − ō)² − ō(1 − ō)/(n − 1)``, averaged over bins by their counts; the root
  of that (0 when negative) is an RMS calibration error whose expectation is right for a
  calibrated grader. Its interval resamples prompt clusters.
* **Test of calibration** (consistency resampling, Bröcker & Smith 2007): the null is "calibrated";
  outcomes are drawn from the grader's own forecasts and the debiased statistic recomputed; the
  p-value is the share of draws at least as large as the observed one. It assumes outcomes are
  independent given the forecasts (items of one prompt are not otherwise tied): stated in the result.
* **Brier score**: the mean squared error of the forecast.

With inclusion weights (a pick of ``harness select``), every bin sum and the Brier score weigh an
item by 1/π, estimating the population the labelled items were drawn from.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core.constants import CATEGORIES, DEFAULT_N_BOOT, DEFAULT_SEED, SIDES
from ..results.calibration import ReliabilityBin, SideReliability
from .intervals import percentile_ci
from .stats import bootstrap_totals

BINS = 10
#: Draws of the consistency test (outcomes drawn from the forecasts).
TEST_DRAWS = 2000
TEST = ("consistency resampling (outcomes drawn from the grader's forecasts; null: calibrated) of the debiased "
        "calibration error; assumes outcomes independent given the forecasts (a prompt's copies in several pairs count "
        "once)")


def _ece(totals: np.ndarray) -> np.ndarray:
    """Plug-in ECE from per-bin (count, forecast sum, outcome sum) totals: ``(..., 3*BINS)``."""
    counts, forecast, outcome = totals[..., :BINS], totals[..., BINS:2 * BINS], totals[..., 2 * BINS:]
    n = counts.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, np.abs(forecast - outcome).sum(axis=-1) / n, np.nan)


def _debiased_squared(totals: np.ndarray, sizes: np.ndarray | None = None) -> np.ndarray:
    """Debiased squared calibration error from per-bin totals (vectorised over leading dimensions).

    ``sizes`` are the bins' item counts for the variance term (the weighted counts' own, unweighted ``n`` when
    the totals are weighted); by default the totals' counts.
    """
    counts, forecast, outcome = totals[..., :BINS], totals[..., BINS:2 * BINS], totals[..., 2 * BINS:]
    n_items = counts if sizes is None else sizes
    n = counts.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_f, mean_o = forecast / counts, outcome / counts
        variance = np.where(n_items > 1, mean_o * (1 - mean_o) / (n_items - 1), 0.0)
        per_bin = np.where(counts > 0, (mean_f - mean_o) ** 2 - variance, 0.0)
        return np.where(n > 0, (counts * per_bin).sum(axis=-1) / n, np.nan)


def _root(value: np.ndarray) -> np.ndarray:
    return np.sqrt(np.clip(value, 0.0, None))


def _centred_interval(draws: np.ndarray, estimate: float) -> list[float | None]:
    """The percentile interval of the squared error's resamples, moved so their mean is the estimate (a resample adds
    its own noise to every bin's gap), then on the root scale; its low end is 0 when the squared error may be 0."""
    finite = draws[np.isfinite(draws)]
    if finite.size < 2 or not np.isfinite(estimate):
        return [None, None]
    low, high = percentile_ci(finite - (finite.mean() - estimate))
    if low is None or high is None:
        return [None, None]
    return [float(_root(np.array(low))), float(_root(np.array(high)))]


def _cells(forecast: np.ndarray, outcome: np.ndarray, weights: np.ndarray) -> np.ndarray:
    which = np.minimum((forecast * BINS).astype(int), BINS - 1)
    cells = np.zeros((forecast.size, 3 * BINS))
    rows = np.arange(forecast.size)
    cells[rows, which] = weights
    cells[rows, BINS + which] = weights * forecast
    cells[rows, 2 * BINS + which] = weights * outcome
    return cells


def calibration_test(forecast: np.ndarray, weights: np.ndarray, observed: float, *, draws: int = TEST_DRAWS,
                     seed: int = DEFAULT_SEED) -> float:
    """P-value of "calibrated": the share of outcome sets drawn from the forecasts whose debiased statistic is at least
    the observed one (with the +1 correction, so it is never 0)."""
    rng = np.random.default_rng(seed)
    which = np.minimum((forecast * BINS).astype(int), BINS - 1)
    sizes = np.bincount(which, minlength=BINS).astype(float)
    exceed = 0
    for start in range(0, draws, 200):  # in blocks: draws x items never sits in memory at once
        block = min(200, draws - start)
        outcomes = (rng.random((block, forecast.size)) < forecast).astype(float)
        totals = np.zeros((block, 3 * BINS))
        for b in range(BINS):
            member = which == b
            if member.any():
                w = weights[member]
                totals[:, b] = w.sum()
                totals[:, BINS + b] = (w * forecast[member]).sum()
                totals[:, 2 * BINS + b] = outcomes[:, member] @ w
        exceed += int((_debiased_squared(totals, sizes) >= observed - 1e-12).sum())
    return (exceed + 1) / (draws + 1)


def side_reliability(forecast: np.ndarray, outcome: np.ndarray, clusters: np.ndarray, *, n_boot: int = DEFAULT_N_BOOT,
                     seed: int = DEFAULT_SEED, weights: np.ndarray | None = None,
                     copies_merged: int | None = None) -> SideReliability:
    """Reliability of forecasts (probabilities) against 0/1 outcomes, resampling ``clusters`` (``copies_merged``: how
    many copies of a forecast were left out before, said in the result).

    >>> r = side_reliability(np.array([0.1, 0.1, 0.9, 0.9]), np.array([0, 0, 1, 0]), np.arange(4), n_boot=0)
    >>> round(r.ece, 3), round(r.brier, 3), round(r.ece_debiased, 3)
    (0.25, 0.21, 0.0)
    """
    w = np.ones(forecast.size) if weights is None else np.asarray(weights, dtype=float)
    cells = _cells(forecast, outcome, w)
    totals = cells.sum(axis=0)
    sizes = _cells(forecast, outcome, np.ones(forecast.size)).sum(axis=0)[:BINS]
    squared = float(_debiased_squared(totals, sizes))
    boot = bootstrap_totals(cells, clusters=clusters, n_boot=n_boot, seed=seed)
    boot_sizes = bootstrap_totals(cells[:, :BINS] > 0, clusters=clusters, n_boot=n_boot, seed=seed)
    bins = [
        ReliabilityBin(
            low=b / BINS,
            high=(b + 1) / BINS,
            n=int(sizes[b]),
            mean_forecast=float(totals[BINS + b] / totals[b]) if totals[b] else None,
            observed=float(totals[2 * BINS + b] / totals[b]) if totals[b] else None,
        )
        for b in range(BINS)
    ]
    p_value = calibration_test(forecast, w, squared, seed=seed) if n_boot > 0 else None
    return SideReliability(
        n=int(forecast.size),
        n_clusters=int(np.unique(clusters).size),
        ece=float(_ece(totals)),
        ece_ci=percentile_ci(_ece(boot)) if boot.shape[0] else [None, None],
        brier=float(np.sum(w * (forecast - outcome) ** 2) / np.sum(w)),
        bins=bins,
        ece_debiased=float(_root(np.array(squared))),
        ece_debiased_ci=_centred_interval(_debiased_squared(boot, boot_sizes), squared)
        if boot.shape[0]
        else [None, None],
        calibration_p=p_value,
        calibration_test=TEST if p_value is not None else None,
        weighted=weights is not None,
        **({"copies_merged": copies_merged} if copies_merged is not None else {}),
    )


def _prompt_keys(joined: Any) -> list[str] | None:
    """What makes two rows the same prompt: its text, else its ``prompt_id`` (None: no column says)."""
    for column in ("prompt", "prompt_id"):
        if column in joined.columns:
            return joined[column].astype(str).tolist()
    return None


def reliability(
    joined: Any,
    probabilities: dict[tuple[str, str], dict[str, list[float]]],
    clusters: np.ndarray,
    *,
    threshold: int,
    n_boot: int,
    seed: int,
    weights: np.ndarray | None = None,
) -> dict[str, SideReliability]:
    """Per side, the reliability of ``P(severity ≥ threshold)`` against the human labels of ``joined`` (``weights``:
    1/π per joined row, when the human labels come from a pick with inclusion probabilities).

    On the prompt side a prompt answered by several models is one forecast per category, however many pairs repeat
    it: a copy (the same prompt, category, forecast, label and weight) counts once (``copies_merged`` says how many
    were), so the test and the debiased error are not fooled into reading copies as independent evidence.
    """
    out: dict[str, SideReliability] = {}
    ids = joined["id"].astype(str).tolist()
    keys = _prompt_keys(joined)
    for side in SIDES:
        forecast, outcome, codes, weight = [], [], [], []
        seen: set[tuple[Any, ...]] = set()
        merged = 0
        for row, ident in enumerate(ids):
            found = probabilities.get((ident, side))
            if not found:
                continue
            for category in CATEGORIES:
                column = f"{side}_{category}"
                human = joined[column].iloc[row] if column in joined.columns else None
                if category not in found or human is None or human != human:
                    continue
                item = (float(np.clip(sum(found[category][threshold:]), 0.0, 1.0)), float(int(human) >= threshold),
                        1.0 if weights is None else float(weights[row]))
                if side == "prompt" and keys is not None:
                    key = (keys[row], category, *item)
                    if key in seen:
                        merged += 1
                        continue
                    seen.add(key)
                forecast.append(item[0])
                outcome.append(item[1])
                weight.append(item[2])
                codes.append(clusters[row])
        if forecast:
            out[side] = side_reliability(
                np.array(forecast),
                np.array(outcome),
                np.array(codes),
                n_boot=n_boot,
                seed=seed,
                weights=None if weights is None else np.array(weight),
                copies_merged=merged if side == "prompt" and keys is not None else None,
            )
    return out
