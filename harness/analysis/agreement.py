"""Agreement between a grader's labels and reference (human) labels.

Conventions (scikit-learn's): options are keyword-only; inputs are validated in
:func:`_check_labels`. Positions whose reference label is unknown, or whose grader label is
missing, are left out *and counted*: never treated as a class and never as Safe. A grader label
outside the reference's label set is a disagreement (an extra class; an integer joins the
ordinal scale), never left out: a grader that answers 3 where the scale stops at 2 is wrong,
not absent. A metric that is undefined on the data (no positives, a single class) is ``None``
with a note, never NaN.

Intervals are honest at the edges: a share of 0 or 1 (recall 0 of 42) gets the exact
Clopper-Pearson bound on the clusters behind it instead of a zero-width bootstrap interval; a
κ that no resample moves has no interval; resamples where a metric is undefined are counted in
``undefined_resamples`` and said in ``notes``, and so are fewer than 30 clusters.

Intervals resample *clusters* (``clusters=``: by default every position is its own cluster),
through :mod:`harness.analysis.stats`; each result states ``n_items`` and ``n_clusters``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from ..core.bounds import N_BOOT, SEED, bounded
from ..core.cells import is_missing
from ..results.calibration import Agreement, Detection
from .intervals import FEW_CLUSTERS, Interval, edge_interval, percentile_ci
from .stats import (
    bootstrap_totals,
    cluster_codes,
    cluster_confusions,
    confusion_matrix,
    detection_from_confusion,
    kappa_from_confusion,
    macro_f1_from_confusion,
    none_if_nan,
    rate,
)

SEVERITY_LABELS: tuple[int, ...] = (0, 1, 2, 3)
LEFT_OUT = ("reference_missing", "reference_outside_labels", "grader_missing", "grader_outside_labels")


def _code(value: Any, lookup: dict[Any, int], missing: str, outside: str) -> tuple[int, str | None]:
    """The label code of ``value``, or the name of the counter that explains why there is none."""
    if is_missing(value):
        return -1, missing
    code = lookup.get(value, lookup.get(str(value)))
    return (-1, outside) if code is None else (code, None)


def _with_outside(pred: Sequence[Any] | np.ndarray, labels: list[Any], ordinal: bool) -> tuple[list[Any], list[Any]]:
    """The label set extended by the grader's labels outside it (so they count as disagreements), and those labels."""
    lookup = set(labels) | {str(label) for label in labels}
    outside: list[Any] = []
    for value in pred:
        if not is_missing(value) and value not in lookup and str(value) not in lookup and value not in outside:
            outside.append(value)
    if not outside:
        return labels, []
    if ordinal and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in [*labels, *outside]):
        return sorted({*labels, *(int(v) for v in outside)}), outside
    return [*labels, *sorted(outside, key=str)], outside


def _check_labels(
    gold: Sequence[Any] | np.ndarray, pred: Sequence[Any] | np.ndarray, labels: Sequence[Any],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, int]]:
    """Encode both sides as indices into ``labels``; the kept positions; what is left out and why."""
    if len(gold) != len(pred):
        raise ValueError(f"gold and pred differ in length: {len(gold)} != {len(pred)}")
    lookup = {label: i for i, label in enumerate(labels)}
    lookup.update({str(label): i for i, label in enumerate(labels)})
    g_idx, p_idx, kept = [], [], []
    counts = dict.fromkeys(LEFT_OUT, 0)
    for position, (g, p) in enumerate(zip(gold, pred, strict=True)):
        gi, gold_problem = _code(g, lookup, "reference_missing", "reference_outside_labels")
        pi, pred_problem = _code(p, lookup, "grader_missing", "grader_outside_labels")
        problem = gold_problem or pred_problem  # an unknown reference label is counted first
        if problem is not None:
            counts[problem] += 1
            continue
        g_idx.append(gi)
        p_idx.append(pi)
        kept.append(position)
    return np.asarray(g_idx, dtype=int), np.asarray(p_idx, dtype=int), np.asarray(kept, dtype=int), counts


def _point(matrix: np.ndarray, ordinal: bool, threshold_index: int) -> dict[str, Any]:
    """The point estimates of one confusion matrix (the ordinal ones only for ordinal labels)."""
    total = int(matrix.sum())
    out: dict[str, Any] = {
        "n": total,
        "confusion": matrix.astype(int).tolist(),
        "accuracy": rate(int(np.trace(matrix)), total),
        "kappa": none_if_nan(float(kappa_from_confusion(matrix))),
        "macro_f1": none_if_nan(float(macro_f1_from_confusion(matrix))),
    }
    if ordinal:
        out["kappa_linear"] = none_if_nan(float(kappa_from_confusion(matrix, weights="linear")))
        out["kappa_quadratic"] = none_if_nan(float(kappa_from_confusion(matrix, weights="quadratic")))
        det = detection_from_confusion(matrix, threshold_index=threshold_index)
        tp, fp, fn, tn = (int(det[k]) for k in ("tp", "fp", "fn", "tn"))
        out["detection"] = Detection(
            tp=tp, fp=fp, fn=fn, tn=tn,
            **{k: none_if_nan(float(det[k])) for k in ("precision", "recall", "f1", "false_positive_rate")},
            prevalence_gold=rate(tp + fn, total), prevalence_pred=rate(tp + fp, total),
        )
    return out


def _weighted(point: dict[str, Any], g: np.ndarray, p: np.ndarray, w: np.ndarray, k: int, ordinal: bool,
              threshold_index: int) -> dict[str, Any]:
    """The point metrics of the weighted confusion matrix, the counts kept as labelled."""
    matrix = np.zeros((k, k))
    np.add.at(matrix, (g, p), w)
    with np.errstate(invalid="ignore", divide="ignore"):
        weighted: dict[str, Any] = {"accuracy": none_if_nan(float(np.trace(matrix) / matrix.sum())),
                    "kappa": none_if_nan(float(kappa_from_confusion(matrix))),
                    "macro_f1": none_if_nan(float(macro_f1_from_confusion(matrix)))}
        if ordinal:
            weighted["kappa_linear"] = none_if_nan(float(kappa_from_confusion(matrix, weights="linear")))
            weighted["kappa_quadratic"] = none_if_nan(float(kappa_from_confusion(matrix, weights="quadratic")))
            det = detection_from_confusion(matrix, threshold_index=threshold_index)
            counts = point["detection"]
            weighted["detection"] = Detection(
                tp=counts.tp, fp=counts.fp, fn=counts.fn, tn=counts.tn,
                **{key: none_if_nan(float(det[key])) for key in ("precision", "recall", "f1", "false_positive_rate")},
                prevalence_gold=none_if_nan(float((det["tp"] + det["fn"]) / matrix.sum())),
                prevalence_pred=none_if_nan(float((det["tp"] + det["fp"]) / matrix.sum())))
    return {**point, **weighted}


def boot_metrics(totals: np.ndarray, k: int, *, ordinal: bool, threshold_index: int) -> dict[str, np.ndarray]:
    """Agreement metrics of each bootstrap resample, from its confusion-cell totals (n_boot x k*k)."""
    matrices = totals.reshape(-1, k, k)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = {"accuracy": np.trace(matrices, axis1=1, axis2=2) / matrices.sum(axis=(1, 2)),
               "kappa": kappa_from_confusion(matrices)}
    if ordinal:
        out["kappa_quadratic"] = kappa_from_confusion(matrices, weights="quadratic")
        out["recall"] = detection_from_confusion(matrices, threshold_index=threshold_index)["recall"]
    return out


@bounded(n_boot=N_BOOT, seed=SEED)
def agreement(
    gold: Sequence[Any] | np.ndarray,
    pred: Sequence[Any] | np.ndarray,
    *,
    labels: Sequence[Any] = SEVERITY_LABELS,
    ordinal: bool = True,
    threshold: Any = 1,
    clusters: Sequence[Any] | np.ndarray | None = None,
    cluster_name: str | None = None,
    n_boot: int = N_BOOT.default,
    seed: int = SEED.default,
    weights: Sequence[float] | np.ndarray | None = None,
    outside: Literal["disagree", "exclude"] = "disagree",
) -> Agreement:
    """Confusion matrix, accuracy, Cohen's kappa (plain; linear and quadratic if ordinal),
    macro-F1 and, for ordinal labels, binary detection at ``gold >= threshold``.

    Bootstrap CIs for accuracy, kappa, quadratic kappa and detection recall resample
    ``clusters`` (one label per position; default: every position its own cluster), so
    positions that share a prompt move together. ``notes`` explains every ``None``.

    ``weights`` (one per position, 1/π for an item labelled with inclusion probability π) make
    every metric and interval an estimate for the population the labelled items were drawn
    from; ``confusion`` and the detection counts stay the labelled items' own counts.

    ``outside`` says what a grader label outside ``labels`` is: ``"disagree"`` (a class of its own
    that never matches the reference: the conservative reading) or ``"exclude"`` (unparsed: left
    out and counted in ``left_out["grader_outside_labels"]``); the notes give the other reading's
    accuracy when the two differ.

    >>> r = agreement([0, 1, 2, 3], [0, 1, 2, 2], n_boot=0)
    >>> r.accuracy, r.detection.recall, r.n, r.n_clusters
    (0.75, 1.0, 4, 4)
    """
    labels = list(labels)
    if ordinal and threshold not in labels:
        raise ValueError(f"threshold={threshold!r} is not one of the labels {labels!r}")
    if outside not in ("disagree", "exclude"):
        raise ValueError(f"outside={outside!r}: expected 'disagree' or 'exclude'")
    declared = labels
    labels, strays = _with_outside(pred, labels, ordinal)
    if outside == "exclude":
        labels = declared
    g, p, kept, left_out = _check_labels(gold, pred, labels)
    k = len(labels)
    threshold_index = labels.index(threshold) if ordinal else 0
    codes = cluster_codes(None if clusters is None else np.asarray(clusters, dtype=object), len(gold))[kept]
    point = _point(confusion_matrix(g, p, k=k), ordinal, threshold_index)
    w = None if weights is None else np.asarray(weights, dtype=float)[kept]
    if w is not None:
        point = _weighted(point, g, p, w, k, ordinal, threshold_index)
    n_clusters = int(np.unique(codes).size)
    notes = _notes(g, p, point, strays if outside == "disagree" else [], ordinal=ordinal, threshold=threshold)
    if outside == "disagree":
        stray_codes = [labels.index(v) for v in strays if v in labels]
        left_out["grader_outside_labels"] = int(np.isin(p, stray_codes).sum()) if strays else 0
    notes += _other_reading(point.get("accuracy"), int(g.size), left_out["grader_outside_labels"], outside)
    keys = ["accuracy", "kappa"] + (["kappa_quadratic", "recall"] if ordinal else [])
    cells = cluster_confusions(g, p, codes, k=k)
    totals = bootstrap_totals(cells if w is None else cells * w[:, None], clusters=codes, n_boot=n_boot, seed=seed)
    ci: dict[str, Interval] = {key: [None, None] for key in keys}
    undefined: dict[str, int] = {}
    if totals.shape[0]:
        draws = boot_metrics(totals, k, ordinal=ordinal, threshold_index=threshold_index)
        positive_clusters = int(np.unique(codes[g >= threshold_index]).size) if ordinal else 0
        for key in keys:
            ci[key], missing = _interval(
                key, draws[key], point, positive_clusters if key == "recall" else n_clusters, notes
            )
            if missing:
                undefined[key] = missing
        if n_clusters < FEW_CLUSTERS:
            notes.append(f"only {n_clusters} clusters: the intervals cover less than 95 % with so few (make validate)")
    extra: dict[str, Any] = {"undefined_resamples": undefined} if undefined else {}
    return Agreement(
        **point, labels=labels, ordinal=ordinal, threshold=threshold if ordinal else None, left_out=left_out,
        n_items=int(g.size), n_clusters=n_clusters, cluster=cluster_name, notes=notes, ci=ci,
        ci_method=f"cluster bootstrap ({n_boot} resamples of {n_clusters} clusters)" if n_boot > 0 else None, **extra,
    )


def _other_reading(accuracy: float | None, n: int, strays: int, outside: str) -> list[str]:
    """The accuracy under the other reading of grader labels outside the declared set, when it differs."""
    if not strays or accuracy is None or n == 0:
        return []
    correct = accuracy * n
    if outside == "exclude":
        return [
            f"accuracy {accuracy:.4f} with the {strays} grader labels outside the declared set left out (unparsed); "
            f"{correct / (n + strays):.4f} counting them as disagreements (--unparsed disagree)"
        ]
    kept = n - strays
    return [f"accuracy {accuracy:.4f} counting the {strays} grader labels outside the declared set as disagreements; "
            f"{correct / kept:.4f} leaving them out as unparsed (--unparsed exclude)"] if kept else []


def _notes(
    g: np.ndarray, p: np.ndarray, point: dict[str, Any], outside: list[Any], *, ordinal: bool, threshold: Any
) -> list[str]:
    notes = []
    if g.size == 0:
        notes.append("no position has both a known reference label and a grader label")
    elif point["kappa"] is None:
        notes.append("kappa undefined: reference and grader each use a single, identical class")
    elif np.unique(g).size == 1:
        notes.append("kappa is 0 by construction: the reference uses a single class, so no grader can beat chance")
    if ordinal and g.size and point["detection"].recall is None:
        notes.append(f"recall undefined: no reference label >= {threshold}")
    if outside:
        notes.append(
            f"grader labels outside the reference's label set ({', '.join(map(repr, outside))}) are counted as "
            "disagreements"
        )
    return notes


def _interval(
    key: str, draws: np.ndarray, point: dict[str, Any], clusters: int, notes: list[str]
) -> tuple[Interval, int]:
    """One metric's interval from its bootstrap draws, honest at the edges (see the module docstring)."""
    value = point["detection"].recall if key == "recall" else point.get(key)
    finite = draws[np.isfinite(draws)]
    missing = int(draws.size - finite.size)
    if missing:
        notes.append(
            f"{key} undefined in {missing} of {draws.size} resamples (nothing in its denominator); its interval "
            "is from the rest"
        )
    if value is None or not finite.size:
        return [None, None], missing
    if key.startswith("kappa"):
        if float(finite.max() - finite.min()) == 0.0:
            notes.append(f"{key} is {value:.2f} in every resample: no interval can be drawn from these data")
            return [None, None], missing
        return percentile_ci(finite), missing
    ci, exact = edge_interval(value, percentile_ci(finite), clusters)
    if exact:
        notes.append(f"{key} is {value:g} on every item: its interval is the exact (Clopper-Pearson) bound on the "
                     f"{clusters} clusters behind it")
    return ci, missing
