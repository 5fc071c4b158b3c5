"""Interval estimates and tests shared by the analyses.

Conventions: an empty denominator gives ``None`` (never NaN, never 0); every function is pure
and seeded where it draws random numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

Z95 = 1.959963984540054


def rate(k: int, n: int) -> float | None:
    """``k / n``, or ``None`` when ``n`` is 0.

    >>> rate(1, 4), rate(0, 0)
    (0.25, None)
    """
    return k / n if n else None


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float] | tuple[None, None]:
    """Wilson score interval for a binomial proportion; ``(None, None)`` when ``n`` is 0.

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


def proportion(k: int, n: int) -> dict[str, Any]:
    """A count, its denominator, the rate and its Wilson 95 % interval, as one record."""
    low, high = wilson(k, n)
    return {"k": int(k), "n": int(n), "rate": rate(k, n), "ci": [low, high]}


def exact_mcnemar(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value from the two discordant counts.

    >>> round(exact_mcnemar(10, 2), 4)
    0.0386
    >>> exact_mcnemar(0, 0)
    1.0
    """
    n = only_a + only_b
    if n == 0:
        return 1.0
    from scipy.stats import binom

    return float(min(1.0, 2.0 * binom.cdf(min(only_a, only_b), n, 0.5)))


def holm(p_values: Mapping[str, float]) -> dict[str, float]:
    """Holm step-down adjusted p-values (family-wise error), keyed like the input.

    >>> {k: round(v, 6) for k, v in holm({"a": 0.01, "b": 0.04, "c": 0.03}).items()}
    {'a': 0.03, 'c': 0.06, 'b': 0.06}
    """
    ordered = sorted(p_values, key=lambda key: p_values[key])
    m = len(ordered)
    adjusted: dict[str, float] = {}
    running = 0.0
    for rank, key in enumerate(ordered):
        running = max(running, min(1.0, (m - rank) * p_values[key]))
        adjusted[key] = running
    return adjusted


def percentile_ci(draws: np.ndarray, level: float = 0.95) -> list[float | None]:
    """Percentile interval of bootstrap draws, ignoring undefined (NaN) draws."""
    finite = draws[np.isfinite(draws)]
    if finite.size == 0:
        return [None, None]
    alpha = (1 - level) / 2
    return [float(np.quantile(finite, alpha)), float(np.quantile(finite, 1 - alpha))]


def cluster_bootstrap(
    clusters: np.ndarray,
    numerators: Mapping[str, np.ndarray],
    denominator: np.ndarray,
    *,
    n_boot: int,
    seed: int,
    chunk: int = 256,
) -> dict[str, list[float | None]]:
    """Percentile CIs of ratio statistics, resampling whole clusters with replacement.

    Each statistic is ``sum(numerator) / sum(denominator)`` over the rows of the resampled
    clusters, so rows sharing a cluster (one prompt answered by several models) move together.

    Args:
        clusters: cluster code per row (integers 0..C-1).
        numerators: statistic name -> per-row numerator (e.g. 1 if the pair escalates).
        denominator: per-row denominator (e.g. 1 for every pair).
        n_boot: number of resamples; 0 returns no intervals.
        seed: seed of the generator.
    """
    if n_boot <= 0 or clusters.size == 0:
        return {name: [None, None] for name in numerators}
    n_clusters = int(clusters.max()) + 1
    den = np.bincount(clusters, weights=denominator, minlength=n_clusters)
    nums = {k: np.bincount(clusters, weights=v, minlength=n_clusters) for k, v in numerators.items()}
    rng = np.random.default_rng(seed)
    draws: dict[str, list[np.ndarray]] = {k: [] for k in numerators}
    probabilities = np.full(n_clusters, 1.0 / n_clusters)
    remaining = n_boot
    while remaining > 0:
        size = min(chunk, remaining)
        weights = rng.multinomial(n_clusters, probabilities, size=size).astype(float)
        total = weights @ den
        with np.errstate(invalid="ignore", divide="ignore"):
            for name, values in nums.items():
                draws[name].append((weights @ values) / total)
        remaining -= size
    return {name: percentile_ci(np.concatenate(parts)) for name, parts in draws.items()}
