"""Which prompt clusters to send to annotators: a pick of whole clusters with known inclusion probabilities.

Every strategy picks exactly ``budget`` prompt clusters (never half of one) by **systematic
probability-proportional sampling** over the clusters in a random order: cluster ``c`` is picked
with probability ``π_c`` exactly, and those probabilities travel with the picked rows
(``inclusion_probability``), so ``analyze --human`` and ``calibrate`` weight each labelled pair by
``1/π`` (inverse-probability weights: Horvitz-Thompson, as in Zrnic & Candès 2024, *Active
statistical inference*) and stay unbiased for the whole graded set whatever the strategy.

* ``uniform``: ``π_c = budget / clusters``.
* ``stratified``: clusters where the grader flags something (a harmful response, an
  escalation, severity 3 on either side) are picked :data:`FLAGGED_WEIGHT` times as often as the
  others: rare events, where a grader's errors sit, get more labels, and the quiet clusters (where
  a grader's misses hide) keep enough to be measured.
* ``active``: ``π_c`` grows with the grader's uncertainty about the cluster, half uniform and half
  proportional to the square root of its summed uncertainty (``1 − P(verdict)`` per category and
  side from ``grade --logprobs``, or ``1 −`` the samples' agreement from ``grade --samples``); without
  either it falls back to ``stratified`` and says so.

Probabilities are capped at 1 (a cluster certain to be picked), the budget spread over the rest.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core.bounds import BUDGET, SEED, STRATEGIES, bounded
from ..core.constants import CATEGORIES, INCLUSION, SCHEMA_VERSION, SIDES, label_column
from ..core.errors import ConfigError, DataError
from ..io.clusters import cluster_column, cluster_of_rows
from ..results.common import Unit
from ..results.planning import Selection

#: How many times as often ``stratified`` picks a flagged cluster as a quiet one.
FLAGGED_WEIGHT = 2.0


def capped(weights: np.ndarray, budget: int) -> np.ndarray:
    """Inclusion probabilities proportional to ``weights`` summing to ``budget``, none above 1.

    >>> capped(np.array([10.0, 1.0, 1.0, 1.0]), 2).tolist()
    [1.0, 0.3333333333333333, 0.3333333333333333, 0.3333333333333333]
    """
    pi = np.zeros(weights.size)
    fixed = np.zeros(weights.size, bool)
    while True:
        free = ~fixed
        left = budget - fixed.sum()
        pi[free] = left * weights[free] / weights[free].sum()
        pi[fixed] = 1.0
        over = free & (pi > 1.0)
        if not over.any():
            return np.clip(pi, 0.0, 1.0)
        fixed |= over


def systematic(pi: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A systematic πps sample in a random order: each unit picked with probability ``pi`` exactly,
    ``round(sum(pi))`` units in all."""
    order = rng.permutation(pi.size)
    edges = np.concatenate([[0.0], np.cumsum(pi[order])])
    points = rng.random() + np.arange(int(np.rint(edges[-1])))
    hit = np.searchsorted(edges, points, side="right") - 1
    chosen = np.zeros(pi.size, bool)
    chosen[order[np.clip(hit, 0, pi.size - 1)]] = True
    return chosen


def flagged(prompt: np.ndarray, response: np.ndarray) -> np.ndarray:
    """Per pair, does the grader flag it: a harmful response, an escalation, or severity 3 on a side."""
    top_p, top_r = np.nanmax(prompt, axis=1), np.nanmax(response, axis=1)
    return (top_r >= 1) | (top_r > top_p) | (top_p >= 3) | (top_r >= 3)


@bounded(budget=BUDGET, seed=SEED)
def select(
    frame: Any,
    *,
    budget: int,
    strategy: str = "uniform",
    cluster: str | None = None,
    uncertainty: np.ndarray | None = None,
    seed: int = SEED.default,
    source: str = "graded pairs",
) -> tuple[Any, Selection]:
    """Pick ``budget`` prompt clusters of a graded pairs table (its label columns the grader's).

    Returns the picked rows (texts and metadata, the label columns blank for annotators, and
    ``inclusion_probability``) and the design.
    """
    if strategy not in STRATEGIES:
        raise ConfigError(f"`strategy` {strategy!r}: expected one of {', '.join(STRATEGIES)}")
    column = cluster_column(frame.columns, cluster)
    codes = cluster_of_rows(frame, column)
    n_clusters = int(codes.max()) + 1 if codes.size else 0
    if not 1 <= budget <= n_clusters:
        raise ConfigError(
            f"`budget` {budget}: expected a number of prompt clusters from 1 to {n_clusters} (the graded set's)"
        )
    notes: list[str] = []
    used, strata = strategy, None
    if strategy == "active" and uncertainty is None:
        used = "stratified"
        notes.append(
            "active needs the grader's uncertainty (grade --logprobs or --samples K): none in this run, so the pick "
            "is stratified"
        )
    if used == "uniform":
        pi = np.full(n_clusters, budget / n_clusters)
    elif used == "stratified":
        flags = np.zeros(n_clusters, bool)
        np.logical_or.at(flags, codes, flagged(_labels(frame, "prompt"), _labels(frame, "response")))
        pi = capped(np.where(flags, FLAGGED_WEIGHT, 1.0), budget)
    else:
        assert uncertainty is not None
        per = np.zeros(n_clusters)
        np.add.at(per, codes, np.nan_to_num(uncertainty, nan=float(np.nanmean(uncertainty))))
        spread = np.sqrt(per)
        share = spread / spread.sum() if spread.sum() > 0 else np.full(n_clusters, 1.0 / n_clusters)
        pi = capped(0.5 / n_clusters + 0.5 * share, budget)
    chosen = systematic(pi, np.random.default_rng(seed))
    picked = chosen[codes]
    rows = frame.loc[picked].copy()
    for side in SIDES:
        for category in CATEGORIES:
            if label_column(side, category) in rows.columns:
                rows[label_column(side, category)] = None  # annotators label blind
    graders_own = [c for c in rows.columns if c == "relevance" or str(c).endswith("_status")]
    rows = rows.drop(columns=graders_own)  # not for annotators
    rows[INCLUSION] = pi[codes[picked]]
    if used == "stratified":
        strata = {
            "flagged": [int((chosen & flags).sum()), int(flags.sum())],
            "quiet": [int((chosen & ~flags).sum()), int((~flags).sum())],
        }
    if (pi < 0.05).any():
        notes.append(
            f"{int((pi < 0.05).sum())} clusters had a chance under 5 % of being picked: a picked one weighs over 20 "
            "pairs, which widens the intervals"
        )
    design = Selection(
        schema_version=SCHEMA_VERSION, source=source, strategy=used, **_only_if(used != strategy, requested=strategy),
        budget_clusters=budget, unit=Unit(cluster=column, n_items=len(frame), n_clusters=n_clusters),
        n_picked_items=int(picked.sum()), n_picked_clusters=int(chosen.sum()), design=_describe(used),
        strata=strata, inclusion_min=float(pi.min()), inclusion_max=float(pi.max()), seed=seed, outputs=[], notes=notes,
    )
    return rows.reset_index(drop=True), design


def _labels(frame: Any, side: str) -> np.ndarray:
    columns = [label_column(side, c) for c in CATEGORIES]
    if not all(c in frame.columns for c in columns):
        raise DataError(
            f"the graded set lacks the grader's {side} labels ({columns[0]} …): a stratified pick reads them"
        )
    return np.column_stack([frame[c].to_numpy(dtype=float, na_value=np.nan) for c in columns])


def _describe(strategy: str) -> str:
    how = {
        "uniform": "systematic sample of prompt clusters, every cluster equally likely",
        "stratified": "systematic πps sample of prompt clusters, a cluster the grader flags "
        f"{FLAGGED_WEIGHT:g}× as likely as a quiet one",
        "active": "systematic πps sample of prompt clusters, half uniform and half by the square root of the "
        "grader's uncertainty",
    }[strategy]
    return how + f"; each picked row carries its {INCLUSION}: weight it by 1/π (analyze --human and calibrate do)"


def _only_if(condition: bool, **fields: Any) -> dict[str, Any]:
    """Fields set only when ``condition`` holds (a result leaves an unset field out of its JSON)."""
    return fields if condition else {}
