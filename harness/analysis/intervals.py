"""Intervals: Wilson's for independent units and (on an effective sample size) for clustered ones, percentiles of a
bootstrap, Student's t on a few clusters, and exact bounds where a share sits at 0/k or k/k.

A bootstrap of a share that is 0 (or 1) in every cluster returns the same value in every
resample: a zero-width interval that claims certainty nobody has. :func:`edge_interval` replaces
it by the Clopper-Pearson bound on the *clusters* behind the share (each cluster one unit, the
conservative reading of units that move together): 0 of 42 items in 14 clusters gives [0, 0.23],
not [0, 0].
"""

from __future__ import annotations

import math

import numpy as np

from ..results.common import Proportion

Z95 = 1.959963984540054
Interval = list[float | None]
#: Fewer clusters than this behind an interval and it is flagged: its coverage falls below 95 %.
FEW_CLUSTERS = 30


def _rate(k: int, n: int) -> float | None:
    return k / n if n else None


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float] | tuple[None, None]:
    """Wilson score interval for a binomial proportion; ``(None, None)`` when ``n`` is 0.

    Valid only when the ``n`` trials are independent (one per cluster).

    >>> [round(x, 4) for x in wilson(5, 10)]
    [0.2366, 0.7634]
    """
    if n <= 0:
        return (None, None)
    p = k / n
    denominator = 1 + z * z / n
    centre = p + z * z / (2 * n)
    margin = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (max(0.0, (centre - margin) / denominator), min(1.0, (centre + margin) / denominator))


def proportion(k: int, n: int, *, ci: Interval | None = None) -> Proportion:
    """A count, its denominator, the rate and its 95 % interval: Wilson's unless ``ci`` is given
    (a cluster bootstrap, where the ``n`` trials are not independent)."""
    if ci is None:
        low, high = wilson(k, n)
        ci = [low, high]
    return Proportion(k=int(k), n=int(n), rate=_rate(k, n), ci=ci)


def percentile_ci(draws: np.ndarray, *, level: float = 0.95) -> Interval:
    """Percentile interval of bootstrap draws, ignoring undefined (NaN) draws.

    A degenerate bootstrap (every draw equal: one cluster, or a statistic no resample moves) gives no interval
    (``[None, None]``, shown as n/a), never a zero-width one that would read as certainty; shares at 0 or 1 get
    their exact bound from :func:`edge_interval`.
    """
    draws = np.asarray(draws, dtype=float)
    finite = draws[np.isfinite(draws)]
    if finite.size == 0 or finite.min() == finite.max():
        return [None, None]
    alpha = (1 - level) / 2
    return [float(np.quantile(finite, alpha)), float(np.quantile(finite, 1 - alpha))]


def bca_ci(draws: np.ndarray, point: float, jackknife: np.ndarray, *, level: float = 0.95) -> Interval:
    """The bias-corrected and accelerated percentile interval (Efron 1987) of a statistic from its bootstrap ``draws``,
    its value ``point`` on the data, and its delete-one-cluster ``jackknife`` values (the acceleration).

    Where a statistic's sampling distribution is skewed or its estimate biased (κ of a rule that rarely gives a level,
    on a hundred clusters), the plain percentile interval falls short of 95 %; BCa moves and stretches it by what the
    bootstrap and the jackknife show. A degenerate bootstrap gives no interval, as :func:`percentile_ci` does.

    >>> rng = np.random.default_rng(0)
    >>> low, high = bca_ci(rng.normal(1.0, 0.1, 2000), 1.0, rng.normal(1.0, 0.01, 50))
    >>> round(low, 1), round(high, 1)
    (0.8, 1.2)
    """
    from scipy.stats import norm

    draws = np.asarray(draws, dtype=float)
    finite = draws[np.isfinite(draws)]
    if finite.size == 0 or finite.min() == finite.max() or not math.isfinite(point):
        return [None, None]
    below = (np.sum(finite < point) + 0.5 * np.sum(finite == point)) / finite.size
    z0 = float(norm.ppf(min(max(below, 0.5 / finite.size), 1 - 0.5 / finite.size)))
    values = np.asarray(jackknife, dtype=float)
    values = values[np.isfinite(values)]
    spread = values.mean() - values if values.size else np.zeros(0)
    scale = float((spread**2).sum()) ** 1.5
    acceleration = float((spread**3).sum()) / (6 * scale) if scale > 0 else 0.0
    bounds = []
    for z in (norm.ppf((1 - level) / 2), norm.ppf((1 + level) / 2)):
        shifted = z0 + (z0 + z) / (1 - acceleration * (z0 + z))
        bounds.append(float(np.quantile(finite, min(max(float(norm.cdf(shifted)), 0.0), 1.0))))
    return [bounds[0], bounds[1]]


def edge_interval(value: float | None, ci: Interval, clusters: int, *, level: float = 0.95) -> tuple[Interval, bool]:
    """The interval of a share, exact at the edges: where the share is 0 or 1 (so a bootstrap or
    Wilson interval around it is degenerate or too narrow), the Clopper-Pearson bound on the
    ``clusters`` behind it; otherwise ``ci`` unchanged. Returns the interval and whether it was replaced.

    >>> edge_interval(0.0, [0.0, 0.0], 14)[0][1] > 0.23, edge_interval(0.4, [0.2, 0.6], 14)
    (True, ([0.2, 0.6], False))
    """
    if value is None or clusters <= 0 or 0.0 < value < 1.0:
        return ci, False
    tail = (1 - level) / 2
    bound = tail ** (1.0 / clusters)
    return ([0.0, 1.0 - bound], True) if value <= 0.0 else ([bound, 1.0], True)


def t_half_width(se: float, clusters: int, level: float = 0.95) -> float:
    """Half a Student-t interval on ``clusters - 1`` degrees of freedom, with the factor
    sqrt(C / (C - 1)) that a bootstrap over C clusters leaves out of its spread."""
    from scipy.stats import t

    clusters = max(2, clusters)
    return float(t.ppf(0.5 + level / 2, clusters - 1)) * se * math.sqrt(clusters / (clusters - 1))


def _cluster_variance(values: np.ndarray, codes: np.ndarray) -> tuple[float, float, int]:
    """The mean of per-item ``values``, the cluster-robust variance of that mean (the delete-one-cluster jackknife's,
    which a mean over clusters of unequal sizes needs) and the number of clusters C."""
    _, dense = np.unique(codes, return_inverse=True)
    clusters = int(dense.max()) + 1
    totals = np.bincount(dense, weights=values, minlength=clusters)
    sizes = np.bincount(dense, minlength=clusters).astype(float)
    mean = float(totals.sum() / sizes.sum())
    if clusters < 2:
        return mean, 0.0, clusters
    left_out = (totals.sum() - totals) / np.maximum(sizes.sum() - sizes, 1e-12)  # the mean without each cluster
    variance = float((clusters - 1) / clusters * ((left_out - left_out.mean()) ** 2).sum())
    return mean, variance, clusters


def cluster_share_ci(values: np.ndarray, codes: np.ndarray, *, level: float = 0.95) -> Interval:
    """The interval of a share (the mean of 0/1 values) over clustered items: Clopper-Pearson's on the effective sample
    size (the items over the design effect the clusters show, never more than the items, fewer again for C - 1 degrees
    of freedom: Korn and Graubard's interval); exact on the clusters at 0 and 1 (:func:`edge_interval`). It keeps its
    coverage where a share is small and lies in few clusters, where a bootstrap percentile interval falls short.

    >>> [round(x, 3) for x in cluster_share_ci(np.array([1.0, 0, 0, 0, 1, 0, 0, 0] * 5), np.repeat(np.arange(20), 2))]
    [0.12, 0.425]
    """
    from scipy.stats import beta, t

    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return [None, None]
    share, variance, clusters = _cluster_variance(values, np.asarray(codes))
    if share <= 0.0 or share >= 1.0:
        return edge_interval(share, [None, None], clusters, level=level)[0]
    if clusters < 2:
        return [None, None]
    z = float(t.ppf(0.5 + level / 2, 1e9))
    effective = values.size if variance <= 0 else min(values.size, share * (1 - share) / variance)
    effective *= (z / float(t.ppf(0.5 + level / 2, clusters - 1))) ** 2  # fewer clusters, fewer effective trials
    hits, tail = share * effective, (1 - level) / 2
    return [float(beta.ppf(tail, hits, effective - hits + 1)), float(beta.ppf(1 - tail, hits + 1, effective - hits))]


def cluster_mean_ci(values: np.ndarray, codes: np.ndarray, *, level: float = 0.95,
                    bounds: tuple[float, float] = (-1.0, 1.0)) -> Interval:
    """The interval of a mean over clustered items (a paired difference of two shares, item by item): Student's t on
    C - 1 degrees of freedom around it with the cluster-robust standard error, within ``bounds``; none where the
    clusters show no spread (never a zero-width interval).

    >>> [round(x, 3) for x in cluster_mean_ci(np.array([1.0, 0, -1, 0, 1, 0, 0, 0] * 5), np.repeat(np.arange(20), 2))]
    [-0.074, 0.324]
    """
    from scipy.stats import t

    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return [None, None]
    mean, variance, clusters = _cluster_variance(values, np.asarray(codes))
    if clusters < 2 or variance <= 0:
        return [None, None]
    half = float(t.ppf(0.5 + level / 2, clusters - 1)) * math.sqrt(variance)
    return [max(bounds[0], mean - half), min(bounds[1], mean + half)]
