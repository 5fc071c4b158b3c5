"""What a plan reads from a pilot: per prompt cluster, the sums a metric is a function of.

A pilot is labelled items with a grader's label beside each human one: two columns of a table, the per-pair highest
severities a calibration keeps (``max_severity_pairs``), or a run folder with human labels of some of its pairs. The
plan (:mod:`harness.analysis.planning`) simulates studies by drawing whole clusters of these sums.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.bounds import PLAN_METRICS
from ..core.errors import ConfigError, DataError
from .intervals import Interval

METRICS = PLAN_METRICS


@dataclass
class Pilot:
    """What a metric needs from a pilot, summed per prompt cluster."""

    metric: str
    source: str
    sums: np.ndarray  #: clusters x columns the metric is a function of
    items: np.ndarray  #: labelled items per cluster
    rows: np.ndarray  #: clusters x labels: items per human label (on the metric's side)
    labels: list[str]
    k: int = 0  #: κ's label count
    side: str | None = None
    threshold: int | None = None
    cluster: str | None = None
    #: ``escalation``: the real graded set's per-cluster (escalations the grader saw, pairs).
    graded: np.ndarray | None = None
    #: The pilot's value and interval as a calibration already reported them, and how it made them: the plan quotes
    #: that figure rather than bootstrapping the same pilot a second time.
    reported: tuple[float | None, Interval, str] | None = None
    #: Each row's cluster code, so the pilot's own interval resamples its clusters in the order calibrate's does.
    codes: np.ndarray | None = None

    def in_calibrate_order(self) -> np.ndarray:
        """The per-cluster sums in the order calibrate's bootstrap draws clusters (their codes sorted as text), so the
        same seed gives the pilot the very interval calibrate prints."""
        if self.codes is None:
            return self.sums
        return self.sums[np.argsort(self.codes.astype(str), kind="stable")]


def _per_cluster(codes: np.ndarray, columns: np.ndarray) -> np.ndarray:
    _, dense = np.unique(codes, return_inverse=True)
    out = np.zeros((int(dense.max()) + 1 if dense.size else 0, columns.shape[1]))
    np.add.at(out, dense, columns)
    return out


def pilot_from_labels(gold: np.ndarray, pred: np.ndarray, codes: np.ndarray, *, metric: str, labels: list[Any],
                      threshold: int | None, source: str, cluster: str | None, side: str | None = None) -> Pilot:
    """A pilot of one label per item: human ``gold`` and grader ``pred`` as codes 0..k-1 (NaN unknown)."""
    if metric not in ("kappa", "kappa-quadratic", "recall"):
        raise ConfigError(f"`metric` {metric}: a table of one label per item gives kappa, kappa-quadratic or recall; "
                          "recall-gap and escalation need both sides (a run with `human`, or calibration.json)")
    keep = ~np.isnan(gold) & ~np.isnan(pred)
    gold, pred, codes = gold[keep].astype(int), pred[keep].astype(int), codes[keep]
    if gold.size == 0:
        raise DataError(f"{source}: no item has both a human and a grader label")
    k = len(labels)
    if metric == "recall":
        if threshold is None or not 0 < threshold < k:
            raise ConfigError(f"`threshold` {threshold}: expected a label position from 1 to {k - 1}")
        columns = np.column_stack([(gold >= threshold) & (pred >= threshold), gold >= threshold]).astype(float)
    else:
        columns = np.zeros((gold.size, k * k))
        columns[np.arange(gold.size), gold * k + pred] = 1.0
    rows = np.zeros((gold.size, k))
    rows[np.arange(gold.size), gold] = 1.0
    return Pilot(
        metric,
        source,
        _per_cluster(codes, columns),
        _per_cluster(codes, np.ones((gold.size, 1)))[:, 0],
        _per_cluster(codes, rows),
        [str(v) for v in labels],
        k=k,
        side=side,
        threshold=threshold,
        cluster=cluster,
        codes=np.unique(codes),
    )


def pilot_from_pairs(pairs: dict[str, list[int]], *, metric: str, side: str, threshold: int, source: str,
                     cluster: str | None, graded: np.ndarray | None = None) -> Pilot:
    """A pilot of harm labels: per pair the human and grader highest severity per side (``calibration.json``'s
    ``max_severity_pairs``, -1 unknown). ``graded`` (escalation) is the graded set's per-cluster sums."""
    codes = np.asarray(pairs["cluster"])
    get = lambda key: np.asarray(pairs.get(key, [-1] * codes.size), dtype=float)
    if metric in ("kappa", "kappa-quadratic", "recall"):
        gold, pred = get(f"{side}_human"), get(f"{side}_grader")
        gold[gold < 0], pred[pred < 0] = np.nan, np.nan
        return pilot_from_labels(
            gold,
            pred,
            codes,
            metric=metric,
            labels=[0, 1, 2, 3],
            threshold=threshold,
            source=source,
            cluster=cluster,
            side=side,
        )
    ph, pg, rh, rg = get("prompt_human"), get("prompt_grader"), get("response_human"), get("response_grader")
    keep = (ph >= 0) & (pg >= 0) & (rh >= 0) & (rg >= 0)
    if not keep.any():
        raise DataError(f"{source}: no pair has human and grader labels on both sides (needed for {metric})")
    ph, pg, rh, rg, codes = ph[keep], pg[keep], rh[keep], rg[keep], codes[keep]
    ones = np.ones(codes.size)
    rows = np.zeros((codes.size, 4))
    rows[np.arange(codes.size), rh.astype(int)] = 1.0
    if metric == "recall-gap":
        columns = np.column_stack([(ph >= threshold) & (pg >= threshold), ph >= threshold,
                                   (rh >= threshold) & (rg >= threshold), rh >= threshold]).astype(float)
    elif metric == "escalation":
        if graded is None:
            raise ConfigError(
                "`metric` escalation needs the graded set: plan RUN with `human` LABELLED "
                "(a random subset of RUN's pairs)"
            )
        columns = np.column_stack([rg > pg, ones, rh > ph]).astype(float)
    else:
        raise ConfigError(f"`metric` {metric!r}: expected one of {', '.join(METRICS)}")
    return Pilot(
        metric,
        source,
        _per_cluster(codes, columns),
        _per_cluster(codes, ones[:, None])[:, 0],
        _per_cluster(codes, rows),
        ["0", "1", "2", "3"],
        side="response" if metric == "escalation" else None,
        threshold=threshold,
        cluster=cluster,
        graded=graded,
        codes=np.unique(codes),
    )


def pilot_from_table(frame: Any, gold: str, pred: str, *, metric: str, threshold: int | None, cluster: str | None,
                     source: str) -> Pilot:
    """A pilot from two label columns of one table (numbers ordered as numbers; κ on any labels)."""
    from ..core.cells import as_number, is_blank
    from ..io.clusters import cluster_column, cluster_of_rows

    for name, flag in ((gold, "gold"), (pred, "pred")):
        if name not in frame.columns:
            raise DataError(f"`{flag}` {name!r}: no such column; the table has {sorted(map(str, frame.columns))}")
    cells = [
        [None if is_blank(v) else (as_number(v) if as_number(v) is not None else str(v)) for v in frame[c]]
        for c in (gold, pred)
    ]
    labels = sorted({v for column in cells for v in column if v is not None}, key=lambda v: (isinstance(v, str), v))
    if metric in ("kappa-quadratic", "recall") and any(isinstance(v, str) for v in labels):
        raise DataError(f"`metric` {metric} needs numeric labels; {gold!r} or {pred!r} holds text (use `metric` kappa)")
    index = {v: i for i, v in enumerate(labels)}
    codes = [np.array([np.nan if v is None else index[v] for v in column], dtype=float) for column in cells]
    position = None
    if metric == "recall":
        position = next(
            (
                i
                for i, v in enumerate(labels)
                if isinstance(v, (int, float)) and threshold is not None and v >= threshold
            ),
            None,
        )
    column = cluster_column(frame.columns, cluster)
    return pilot_from_labels(codes[0], codes[1], cluster_of_rows(frame, column), metric=metric, labels=labels,
                             threshold=position if metric == "recall" else threshold, source=source, cluster=column)


def graded_sums(prompt: np.ndarray, response: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Per graded cluster: the escalations the grader sees and the pairs (the graded set of a corrected share)."""
    top_p, top_r = prompt.max(axis=1), response.max(axis=1)
    return _per_cluster(codes, np.column_stack([(top_r > top_p).astype(float), np.ones(codes.size)]))
