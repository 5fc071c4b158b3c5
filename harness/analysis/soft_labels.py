"""Soft labels: a grader's probabilities against the spread of several human raters, not one gold label.

Per rated (pair, side, category) with a grader forecast ``P(severity)`` (``grade --logprobs``, or the samples' vote of
``--samples``) and two or more raters: for each rater ``r`` in turn, the *others'* label distribution ``q`` is the
reference. Three scores against it, averaged over ``r`` and then over items (each with a prompt-cluster interval):

* the grader's **Jensen–Shannon distance** ``JSD(p, q)`` (base 2, square-rooted: 0 same distribution, 1 disjoint);
* the same for the grader's hard verdict (its most probable severity as certainty): what the probabilities add;
* the **human spread**: rater ``r``'s own label against the others, the distance one more annotator would sit at.

And the grader's **cross-entropy** against ``q`` (nats; probabilities floored at 1e-6). A grader whose distance is
at or below the human spread is as close to the raters as one of them is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.constants import CATEGORIES, SIDES
from ..results.calibration import SoftSide
from .intervals import Interval, percentile_ci
from .stats import bootstrap_totals

if TYPE_CHECKING:
    from ..io.ratings import Ratings

FLOOR = 1e-6


def js_distance(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen–Shannon distance (base 2) of two distributions.

    >>> js_distance(np.array([1.0, 0.0]), np.array([0.0, 1.0])), js_distance(np.array([0.5, 0.5]), np.array([0.5, 0.5]))
    (1.0, 0.0)
    """
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        keep = a > 0
        return float(np.sum(a[keep] * np.log2(a[keep] / m[keep])))

    return float(np.sqrt(max(0.0, (kl(p) + kl(q)) / 2)))


def _item(p: np.ndarray, severities: list[int]) -> tuple[float, float, float, float]:
    """One item's scores, each averaged over leaving out one rater: grader JSD, hard JSD, human JSD, cross-entropy."""
    hard = np.eye(4)[int(np.argmax(p))]
    out = []
    for r in range(len(severities)):
        others = np.bincount([s for k, s in enumerate(severities) if k != r], minlength=4)[:4].astype(float)
        q = others / others.sum()
        out.append((js_distance(p, q), js_distance(hard, q), js_distance(np.eye(4)[severities[r]], q),
                    float(-np.sum(q * np.log(np.clip(p, FLOOR, 1.0))))))
    return tuple(float(v) for v in np.mean(out, axis=0))  # type: ignore[return-value]


def soft_labels(ratings: Ratings, forecasts: dict[tuple[str, str], dict[str, list[float]]], *, n_boot: int,
                seed: int) -> dict[str, SoftSide]:
    """Per side, the grader's forecasts against the raters' label distributions (see the module docstring)."""
    values = np.asarray(ratings.labels, dtype=object)
    out: dict[str, SoftSide] = {}
    for side in SIDES:
        rows, codes = [], []
        for category in CATEGORIES:
            matrix = ratings.scopes.get(f"{side}.{category}")
            if matrix is None:
                continue
            for i, ident in enumerate(ratings.ids):
                found = forecasts.get((str(ident), side))
                known = matrix[i][~np.isnan(matrix[i])].astype(int)
                if not found or category not in found or known.size < 2:
                    continue
                severities = [int(values[k]) for k in known]
                if any(s not in (0, 1, 2, 3) for s in severities):
                    continue
                p = np.clip(np.asarray(found[category], dtype=float)[:4], 0.0, None)
                if p.sum() <= 0:
                    continue
                rows.append(_item(p / p.sum(), severities))
                codes.append(ratings.clusters[i])
        if rows:
            out[side] = _summary(np.asarray(rows), np.asarray(codes), n_boot, seed)
    return out


def _summary(rows: np.ndarray, codes: np.ndarray, n_boot: int, seed: int) -> SoftSide:
    means = rows.mean(axis=0)
    totals = bootstrap_totals(np.column_stack([rows, np.ones(len(rows))]), clusters=codes, n_boot=n_boot, seed=seed)
    ci: list[Any] = [percentile_ci(totals[:, k] / totals[:, 4]) if totals.shape[0] else [None, None] for k in range(4)]
    gap: Interval = percentile_ci((totals[:, 0] - totals[:, 2]) / totals[:, 4]) if totals.shape[0] else [None, None]
    return SoftSide(n=len(rows), n_clusters=int(np.unique(codes).size), grader_js=float(means[0]), grader_js_ci=ci[0],
                    hard_js=float(means[1]), hard_js_ci=ci[1], human_js=float(means[2]), human_js_ci=ci[2],
                    cross_entropy=float(means[3]), cross_entropy_ci=ci[3], grader_minus_human=float(means[0] - means[2]),
                    grader_minus_human_ci=gap)
