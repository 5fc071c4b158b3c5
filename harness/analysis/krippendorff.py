"""Krippendorff's α: agreement among any number of raters, with missing ratings, on a nominal,
ordinal or interval scale (Krippendorff, *Content Analysis*, ch. 12; Hayes & Krippendorff 2007).

Every unit (item) rated by at least two raters contributes its pairable values to the
*coincidence matrix* ``o[c, k]`` (each ordered pair of its values, weighted ``1 / (m_u − 1)``
for ``m_u`` values); with ``n_c`` the marginals and ``n`` their sum,

    α = 1 − (n − 1) · Σ o[c, k] δ²(c, k) / Σ n_c n_k δ²(c, k)

with δ² the metric's distance: nominal 1 when c ≠ k; interval (c − k)²; ordinal the squared
count of values between c and k (each end counted half). α is 1 for perfect agreement, 0 at
chance, negative below it. Because α is a function of the summed coincidence matrix, the
cluster bootstrap sums per-cluster coincidences once and recomputes α for every resample in
one vectorised pass.
"""

from __future__ import annotations

import numpy as np

from ..core.constants import LEVELS


def coincidences(ratings: np.ndarray, k: int) -> np.ndarray:
    """Per unit, its ``k x k`` coincidence contributions, flattened: ``(units, k*k)``.

    ``ratings`` is units x raters of value codes ``0..k-1`` (NaN where a rater did not rate).
    """
    values = np.asarray(ratings, dtype=float)
    known = ~np.isnan(values)
    counts = np.zeros((values.shape[0], k))
    for code in range(k):
        counts[:, code] = ((values == code) & known).sum(axis=1)
    m = counts.sum(axis=1)
    pairable = m >= 2
    # ordered pairs within a unit
    outer = counts[:, :, None] * counts[:, None, :] - np.eye(k)[None] * counts[:, :, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        weight = np.where(pairable, 1.0 / (m - 1), 0.0)
    return (outer * weight[:, None, None]).reshape(values.shape[0], k * k)


def distances(marginals: np.ndarray, level: str, values: np.ndarray | None = None) -> np.ndarray:
    """δ² between codes (.. x k x k), from the marginals for the ordinal metric.

    ``values`` are the numbers the codes stand for (interval metric); default ``0..k-1``.
    """
    k = marginals.shape[-1]
    i, j = np.indices((k, k))
    if level == "nominal":
        return np.broadcast_to((i != j).astype(float), (*marginals.shape[:-1], k, k))
    if level == "interval":
        v = np.arange(k, dtype=float) if values is None else np.asarray(values, dtype=float)
        return np.broadcast_to((v[:, None] - v[None, :]) ** 2, (*marginals.shape[:-1], k, k))
    if level == "ordinal":
        cumulative = np.cumsum(marginals, axis=-1)
        low, high = np.minimum(i, j), np.maximum(i, j)
        # Σ_{g=low..high} n_g − (n_low + n_high)/2
        below_high = np.take(cumulative, high, axis=-1)
        below_low = np.take(cumulative, low, axis=-1)
        between = below_high - below_low + np.take(marginals, low, axis=-1)
        ends = (np.take(marginals, i, axis=-1) + np.take(marginals, j, axis=-1)) / 2
        return (between - ends) ** 2
    raise ValueError(f"level={level!r}: expected one of {list(LEVELS)}")


def alpha_from_coincidences(totals: np.ndarray, k: int, level: str, values: np.ndarray | None = None) -> np.ndarray:
    """α of summed coincidence matrices (.. x k*k), NaN where undefined (fewer than two values, or one value only)."""
    o = np.asarray(totals, dtype=float).reshape(*np.shape(totals)[:-1], k, k)
    marginals = o.sum(axis=-1)
    n = marginals.sum(axis=-1)
    delta = distances(marginals, level, values)
    observed = (o * delta).sum(axis=(-2, -1))
    expected = (marginals[..., :, None] * marginals[..., None, :] * delta).sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        alpha = 1.0 - (n - 1) * observed / expected
    return np.where((expected > 0) & (n > 1), alpha, np.nan)


def alpha(
    ratings: np.ndarray, *, level: str = "nominal", k: int | None = None, values: np.ndarray | None = None
) -> float | None:
    """Krippendorff's α of units x raters value codes (NaN missing); None where undefined.

    >>> round(alpha(np.array([[0, 0], [1, 1], [0, 1], [1, 1.0]])), 4)
    0.5333
    """
    codes = np.asarray(ratings, dtype=float)
    k = int(np.nanmax(codes)) + 1 if k is None and np.isfinite(codes).any() else (k or 1)
    value = float(alpha_from_coincidences(coincidences(codes, k).sum(axis=0), k, level, values))
    return value if np.isfinite(value) else None
