"""Soft labels: a grader's probabilities scored against several human raters by proper scoring rules.

Per rated (pair, side, category) with a grader forecast ``P(severity)`` (``grade --logprobs``) and two or more raters,
each rater's label in turn is the outcome a forecast is scored on (the raters are held out: no forecast is made from
the label it is scored against). Three forecasts of that held-out label, each scored by **log loss** (``−ln p[y]``,
nats, the forecast floored at 1e-6) and the multi-class **Brier score** (``Σ_k (p_k − [k = y])²``, 0 to 2):

* the grader's probabilities;
* the grader's verdict (its severity for the category) as a forecast made with certainty;
* one annotator's label as a forecast of another's (every ordered pair of the item's raters): the like-for-like
  comparison for the verdict, a one-hot forecast beside a one-hot forecast, on the same held-out labels.

Both rules are proper: a forecast equal to the distribution the held-out labels are drawn from scores best in
expectation, so a grader whose probabilities are the raters' true distribution beats its own verdict (``make validate``
shows it; the Jensen–Shannon distance used before was not proper and ranked them the other way). Scores average over
the held-out raters within an item, then over items, each with a prompt-cluster interval, and so do the two paired
differences: probabilities minus verdict (below 0: the probabilities add to the verdict) and verdict minus annotator
(below 0: the grader's verdict predicts a rater better than another rater's label does).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..core.constants import CATEGORIES, SIDES
from ..results.calibration import SoftScore, SoftSide
from .intervals import Interval, percentile_ci
from .stats import bootstrap_totals

if TYPE_CHECKING:
    from ..io.ratings import Ratings

FLOOR = 1e-6
#: Columns of an item's scores: (log loss, Brier) of the probabilities, the verdict and an annotator.
GRADER, VERDICT, ANNOTATOR = 0, 2, 4
METHOD = (
    "each rater's label in turn the outcome (held out); log loss in nats (forecasts floored at 1e-6) and the "
    "multi-class Brier score (0 to 2), averaged over held-out raters within an item, then over items; an annotator's "
    "score: one rater's label as a forecast of another's, over every ordered pair of the item's raters"
)


def log_loss(p: np.ndarray, y: int) -> float:
    """``−ln p[y]`` with ``p`` floored at :data:`FLOOR`.

    >>> round(log_loss(np.array([0.5, 0.5, 0.0, 0.0]), 1), 4), round(log_loss(np.eye(4)[0], 2), 2)
    (0.6931, 13.82)
    """
    return float(-np.log(max(float(p[y]), FLOOR)))


def brier(p: np.ndarray, y: int) -> float:
    """The multi-class Brier score of one forecast: ``Σ_k (p_k − [k = y])²`` (0 right and certain, 2 wrong and certain).

    >>> brier(np.array([0.5, 0.5, 0.0, 0.0]), 1), brier(np.eye(4)[0], 2)
    (0.5, 2.0)
    """
    return float(np.sum((p - np.eye(p.size)[y]) ** 2))


def item_scores(p: np.ndarray, verdict: int, labels: list[int]) -> np.ndarray:
    """One item's six scores: log loss and Brier of the probabilities, of the verdict and of one annotator's label,
    each averaged over the held-out raters (the annotator's over every ordered pair of raters)."""
    hard = np.eye(4)[verdict]
    grader = [(log_loss(p, y), brier(p, y)) for y in labels]
    own = [(log_loss(hard, y), brier(hard, y)) for y in labels]
    other = [(log_loss(np.eye(4)[labels[s]], y), brier(np.eye(4)[labels[s]], y))
             for r, y in enumerate(labels) for s in range(len(labels)) if s != r]
    return np.concatenate([np.mean(grader, axis=0), np.mean(own, axis=0), np.mean(other, axis=0)])


def _verdict(p: np.ndarray, given: dict[str, int] | None, category: str) -> int:
    """The grader's severity for the category: as recorded, else its most probable one."""
    if given is not None and category in given and int(given[category]) in (0, 1, 2, 3):
        return int(given[category])
    return int(np.argmax(p))


def soft_labels(ratings: Ratings, forecasts: dict[tuple[str, str], dict[str, list[float]]], *, n_boot: int, seed: int,
                verdicts: dict[tuple[str, str], dict[str, int]] | None = None) -> dict[str, SoftSide]:
    """Per side, the grader's forecasts and verdicts (``verdicts``: its severities per (id, side); by default the most
    probable severity) scored against the raters (see the module docstring)."""
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
                if p.size < 4 or p.sum() <= 0:
                    continue
                p = p / p.sum()
                rows.append(item_scores(p, _verdict(p, (verdicts or {}).get((str(ident), side)), category), severities))
                codes.append(ratings.clusters[i])
        if rows:
            out[side] = _summary(np.asarray(rows), np.asarray(codes), n_boot, seed)
    return out


def _summary(rows: np.ndarray, codes: np.ndarray, n_boot: int, seed: int) -> SoftSide:
    means = rows.mean(axis=0)
    totals = bootstrap_totals(np.column_stack([rows, np.ones(len(rows))]), clusters=codes, n_boot=n_boot, seed=seed)
    draws = totals[:, :6] / totals[:, 6:7] if totals.shape[0] else np.zeros((0, 6))

    def score(first: int, minus: int | None = None) -> SoftScore:
        """Log loss and Brier from columns ``first`` and ``first + 1`` (minus those from ``minus``: a paired
        difference)."""
        point = means[first:first + 2] - (means[minus:minus + 2] if minus is not None else 0.0)
        spread = draws[:, first:first + 2] - (draws[:, minus:minus + 2] if minus is not None else 0.0)
        ci: list[Interval] = [percentile_ci(spread[:, k]) if spread.shape[0] else [None, None] for k in (0, 1)]
        return SoftScore(log_loss=float(point[0]), log_loss_ci=ci[0], brier=float(point[1]), brier_ci=ci[1])

    return SoftSide(n=len(rows), n_clusters=int(np.unique(codes).size), grader=score(GRADER), verdict=score(VERDICT),
                    annotator=score(ANNOTATOR), probabilities_minus_verdict=score(GRADER, VERDICT),
                    verdict_minus_annotator=score(VERDICT, ANNOTATOR), method=METHOD)
