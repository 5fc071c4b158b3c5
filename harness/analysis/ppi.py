"""Prediction-powered inference: a share of all graded pairs, corrected by a human-labelled subset.

A grader labels every pair; humans label a subset of prompt clusters drawn at random (uniformly,
or with known inclusion probabilities ``π``). For any share ``θ = E[a] / E[b]`` (a plain share has
``b = 1``; a conditional one, e.g. compliance among harmful prompts, counts its condition in
``b``), the estimator (Angelopoulos et al. 2023, *Prediction-powered inference*; power-tuned as
in PPI++, Angelopoulos, Duchi & Zrnic 2023; with inverse-probability weights as in Zrnic &
Candès 2024, *Active statistical inference*) is

    θ̂(λ) = [λ Σ â_i + Σ_labelled (a_i − λ â_i)/π_i] / [λ Σ b̂_i + Σ_labelled (b_i − λ b̂_i)/π_i]

over all graded pairs ``i``, hats marking the grader's labels. It is unbiased for the share of
the population the graded pairs were drawn from whatever the grader's errors (correlated between
prompt and response or not), because the labelled part measures them on a random sample: that
sample being random, or of known probabilities, is its one assumption.

``λ = 0`` is the human labels alone, ``λ = 1`` classic PPI. ``λ`` is tuned to minimise the
variance (PPI++, clipped to [0, 1]) when at least :data:`MIN_EVENT_CLUSTERS` labelled clusters
show the event; with fewer the tuning trusts a variance the sample cannot estimate (a labelled
sample without a single escalation looks perfectly precise), so classic PPI is used and said.

The interval: every sum runs over prompt clusters; the standard error is the spread of the
estimate over a bootstrap that resamples the graded clusters (each with its labels, if any) and
re-tunes ``λ`` in every resample, so it carries the uncertainty of both parts, of the clustering
and of the tuning; the interval is ``θ̂ ± t·SE`` with ``t`` from Student's distribution on the
labelled clusters in the share's denominator minus one (the part with the fewest units), clipped
to [0, 1]. ``make
validate`` shows its coverage, including the regimes where it is not 95 %. Where every resample
gives the same value (nothing in the sample varies), the interval is the cluster-level exact
(Clopper-Pearson) bound on the labelled clusters instead of a zero-width one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .intervals import Interval, t_half_width
from .stats import resample_counts

#: PPI++'s tuning is used only when at least this many labelled clusters show the event.
MIN_EVENT_CLUSTERS = 10
#: Columns of the per-cluster sums.
A_HAT, B_HAT, A_LAB, B_LAB, A_HAT_LAB, B_HAT_LAB = range(6)


@dataclass(frozen=True)
class ShareData:
    """One share's per-pair indicators: the grader's (every pair) and the human ones (any value where unlabelled)."""

    a_hat: np.ndarray
    b_hat: np.ndarray
    a: np.ndarray
    b: np.ndarray


@dataclass(frozen=True)
class Design:
    """Which graded pairs humans labelled, with what probability, in which prompt clusters."""

    labelled: np.ndarray  #: per pair
    weight: np.ndarray  #: per pair: 1/π of its cluster (0 where unlabelled)
    codes: np.ndarray  #: per pair: dense cluster code 0..C-1
    n_clusters: int
    n_labelled_clusters: int

    @classmethod
    def of(cls, labelled: np.ndarray, codes: np.ndarray, inclusion: np.ndarray | None = None) -> Design:
        """The design of a sample of clusters: uniform (π = labelled clusters / clusters) unless ``inclusion`` says."""
        _, dense = np.unique(codes, return_inverse=True)
        n_clusters = int(dense.max()) + 1 if dense.size else 0
        n_labelled = int(np.unique(dense[labelled]).size)
        if inclusion is None:
            pi = np.full(labelled.size, n_labelled / n_clusters if n_clusters else 1.0)
        else:
            pi = np.asarray(inclusion, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            weight = np.where(labelled, 1.0 / pi, 0.0)
        return cls(labelled.astype(bool), weight, dense.astype(np.int64), n_clusters, n_labelled)


@dataclass(frozen=True)
class Estimate:
    """A corrected share with its interval and how it was made."""

    value: float | None
    ci: Interval
    se: float | None
    lam: float
    tuned: bool
    raw: float | None
    human_only: float | None
    exact_fallback: bool
    undefined_resamples: int
    #: Labelled clusters in the share's denominator (the interval's units).
    units: int
    #: The estimate before it was clipped to [0, 1], when it fell outside (None inside).
    unclipped: float | None
    #: The estimate in each bootstrap resample (NaN where undefined), for paired differences.
    boot: np.ndarray


def cluster_sums(data: ShareData, design: Design, mask: np.ndarray | None = None) -> np.ndarray:
    """``(clusters, 6)`` sums of the grader's indicators and of the labelled ones weighted by 1/π
    (``mask`` keeps some pairs only, e.g. one model's)."""
    keep = np.ones(design.labelled.size, bool) if mask is None else mask
    lab = np.where(keep & design.labelled, design.weight, 0.0)
    a = np.where(design.labelled, data.a, 0.0)
    b = np.where(design.labelled, data.b, 0.0)
    columns = np.column_stack(
        [data.a_hat * keep, data.b_hat * keep, lab * a, lab * b, lab * data.a_hat, lab * data.b_hat]
    )
    out = np.zeros((design.n_clusters, 6))
    np.add.at(out, design.codes, columns)
    return out


def ratio(totals: np.ndarray, lam: float | np.ndarray) -> np.ndarray:
    """θ̂(λ) from column totals (.. x 6), NaN where its denominator is not positive."""
    num = lam * totals[..., A_HAT] + totals[..., A_LAB] - lam * totals[..., A_HAT_LAB]
    den = lam * totals[..., B_HAT] + totals[..., B_LAB] - lam * totals[..., B_HAT_LAB]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


def tuned_lambdas(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """PPI++'s λ per resample (rows of ``counts``: how often each cluster is drawn), in [0, 1].

    Minimises the linearised variance of θ̂(λ) over clusters, around the human-only estimate.
    """
    return shared_lambdas([sums], counts)


def shared_lambdas(group: Sequence[np.ndarray], counts: np.ndarray) -> np.ndarray:
    """One λ per resample for several shares at once, in [0, 1]: the one that minimises the sum of their linearised
    variances (PPI++ for a vector estimand, on its trace). Shares that partition the pairs (reduction, preservation,
    escalation) corrected with one λ add up to exactly 1, as their raw and human-only values do.
    """
    cov = var = np.zeros(counts.shape[0])
    for sums in group:
        one_cov, one_var = _moments(sums, counts)
        cov, var = cov + one_cov, var + one_var
    with np.errstate(invalid="ignore", divide="ignore"):
        lam = np.where(var > 1e-12, -cov / var, 0.0)
    return np.clip(np.nan_to_num(lam), 0.0, 1.0)


def _moments(sums: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per resample, the covariance and variance (over clusters) that λ trades off for one share."""
    totals = counts @ sums
    pilot = ratio(totals, 0.0)
    pilot = np.where(np.isfinite(pilot), pilot, ratio(totals, 1.0))
    pilot = np.nan_to_num(pilot)[:, None]
    u = (sums[:, A_HAT] - sums[:, A_HAT_LAB])[None, :] - pilot * (sums[:, B_HAT] - sums[:, B_HAT_LAB])[None, :]
    v = sums[:, A_LAB][None, :] - pilot * sums[:, B_LAB][None, :]
    n = counts.sum(axis=1, keepdims=True)
    mean_u = (counts * u).sum(axis=1, keepdims=True) / n
    mean_v = (counts * v).sum(axis=1, keepdims=True) / n
    return (counts * (u - mean_u) * (v - mean_v)).sum(axis=1), (counts * (u - mean_u) ** 2).sum(axis=1)


def draws(n_clusters: int, *, n_boot: int, seed: int) -> np.ndarray:
    """The bootstrap's cluster counts (n_boot x clusters), shared by every share so differences are paired."""
    parts = list(resample_counts(n_clusters, n_boot=n_boot, seed=seed))
    return np.concatenate(parts) if parts else np.zeros((0, n_clusters))


def inclusion_numbers(values: Any) -> np.ndarray:
    """Inclusion probabilities as floats (NaN where a cell is blank or not a number), to be checked against
    ``MIN_INCLUSION <= π <= 1``."""
    import pandas as pd

    return np.asarray(
        pd.to_numeric(pd.Series(list(values), dtype=object), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    )


def estimate(
    sums: np.ndarray, counts: np.ndarray, *, level: float = 0.95, together: Sequence[np.ndarray] = ()
) -> Estimate:
    """One share's corrected estimate and interval from its cluster sums and the shared resamples.

    ``together``: the cluster sums of the shares tuned with this one (one λ for all, re-tuned in every resample);
    the λ is tuned only where every one of them shows its event in :data:`MIN_EVENT_CLUSTERS` labelled clusters.
    """
    totals = sums.sum(axis=0)
    group = [sums, *together]
    units = int((sums[:, B_LAB] > 0).sum())  # labelled clusters in the share's denominator: its t degrees of freedom
    tuned = all(int((part[:, A_LAB] > 0).sum()) >= MIN_EVENT_CLUSTERS for part in group)
    lam = float(shared_lambdas(group, np.ones((1, sums.shape[0])))[0]) if tuned else 1.0
    value = float(ratio(totals, lam))
    raw = _share(totals[A_HAT], totals[B_HAT])
    human = float(ratio(totals, 0.0))
    if counts.shape[0]:
        lams = shared_lambdas(group, counts) if tuned else 1.0
        boot = ratio(counts @ sums, lams)
    else:
        boot = np.zeros(0)
    undefined = int(np.isnan(boot).sum())
    finite = boot[np.isfinite(boot)]
    ci: Interval = [None, None]
    se: float | None = None
    exact = False
    if np.isfinite(value) and finite.size >= 2:
        se = float(finite.std(ddof=1))
        if se > 0:  # clipped to [0, 1] and always holding the (clipped) estimate: never inverted
            half, shown = t_half_width(se, units, level), min(1.0, max(0.0, value))
            ci = [min(shown, min(1.0, max(0.0, value - half))), max(shown, max(0.0, min(1.0, value + half)))]
            if ci[0] == ci[1]:  # the whole interval lay outside [0, 1]: the exact bound at the edge, never zero width
                ci, exact = _exact(shown, units, level), True
        else:
            ci, exact = _exact(value, units, level), True
    return Estimate(
        value=min(1.0, max(0.0, value)) if np.isfinite(value) else None, ci=ci, se=se, lam=round(lam, 4), tuned=tuned,
        raw=raw, human_only=human if np.isfinite(human) else None, exact_fallback=exact, undefined_resamples=undefined,
        units=units, boot=boot, unclipped=round(value, 6) if np.isfinite(value) and not 0.0 <= value <= 1.0 else None,
    )


def _share(a: float, b: float) -> float | None:
    return float(a / b) if b > 0 else None


def _exact(value: float, clusters: int, level: float) -> Interval:
    """Clopper-Pearson on the labelled clusters, for a share that no resample moves (all 0 or all 1)."""
    n = max(1, clusters)
    tail = (1 - level) / 2
    if value <= 0.0:
        return [0.0, 1.0 - tail ** (1.0 / n)]
    if value >= 1.0:
        return [tail ** (1.0 / n), 1.0]
    return [None, None]  # every resample equal inside (0, 1): no interval to give, never a zero-width one
