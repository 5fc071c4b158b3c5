"""Agreement between a grader's labels and reference (human) labels.

Conventions (scikit-learn's): metrics ending in ``_score``-like names are higher-is-better;
options are keyword-only; inputs are validated in :func:`_check_labels`. Pairs whose gold
label is unknown are left out; pairs whose grader label is missing (an unparsed, refused or
failed grade) or outside the declared label set are left out *and counted* — never treated
as a class and never as Safe. A metric that is undefined on the data (no positives, a single
class) is ``None`` with a note, never NaN.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .constants import DEFAULT_N_BOOT, DEFAULT_SEED
from .statistics import percentile_ci, rate

SEVERITY_LABELS: tuple[int, ...] = (0, 1, 2, 3)


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN, pd.NA raise or compare unequal
    except (TypeError, ValueError):
        return True


def _code(value: Any, lookup: dict[Any, int], missing: str, outside: str) -> tuple[int, str | None]:
    """The label code of ``value``, or the name of the counter that explains why there is none."""
    if _is_missing(value):
        return -1, missing
    code = lookup.get(value, lookup.get(str(value)))
    return (-1, outside) if code is None else (code, None)


def _check_labels(gold: Sequence[Any] | np.ndarray, pred: Sequence[Any] | np.ndarray, labels: Sequence[Any]) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Encode both sides as indices into ``labels``; count what is left out and why."""
    if len(gold) != len(pred):
        raise ValueError(f"gold and pred differ in length: {len(gold)} != {len(pred)}")
    lookup = {label: i for i, label in enumerate(labels)}
    lookup.update({str(label): i for i, label in enumerate(labels)})
    g_idx, p_idx = [], []
    counts = {"gold_unknown": 0, "gold_outside_labels": 0, "pred_missing": 0, "pred_outside_labels": 0}
    for g, p in zip(gold, pred, strict=True):
        gi, gold_problem = _code(g, lookup, "gold_unknown", "gold_outside_labels")
        pi, pred_problem = _code(p, lookup, "pred_missing", "pred_outside_labels")
        problem = gold_problem or pred_problem  # an unknown gold label is counted first
        if problem is not None:
            counts[problem] += 1
            continue
        g_idx.append(gi)
        p_idx.append(pi)
    return np.asarray(g_idx, dtype=int), np.asarray(p_idx, dtype=int), counts


def kappa_score(g: np.ndarray, p: np.ndarray, k: int, weights: str | None) -> float | None:
    """Cohen's kappa of label codes ``0..k-1`` (weights None, linear or quadratic).

    ``None`` when chance agreement is total (a single identical class on both sides).
    """
    if g.size == 0:
        return None
    matrix = np.zeros((k, k))
    np.add.at(matrix, (g, p), 1)
    total = matrix.sum()
    expected = np.outer(matrix.sum(axis=1), matrix.sum(axis=0)) / total
    i, j = np.indices((k, k))
    if weights is None:
        w = (i != j).astype(float)
    elif weights == "linear":
        w = np.abs(i - j).astype(float)
    else:
        w = ((i - j) ** 2).astype(float)
    denominator = (w * expected).sum()
    if denominator == 0:
        return None
    return float(1 - (w * matrix).sum() / denominator)


def _binary(g: np.ndarray, p: np.ndarray, threshold_index: int) -> dict[str, Any]:
    gold_pos = g >= threshold_index
    pred_pos = p >= threshold_index
    tp = int((gold_pos & pred_pos).sum())
    fp = int((~gold_pos & pred_pos).sum())
    fn = int((gold_pos & ~pred_pos).sum())
    tn = int((~gold_pos & ~pred_pos).sum())
    precision = rate(tp, tp + fp)
    recall = rate(tp, tp + fn)
    f1 = None if precision is None or recall is None or precision + recall == 0 else 2 * precision * recall / (precision + recall)
    if precision is not None and recall is not None and precision + recall == 0:
        f1 = 0.0
    return {
        "tp": tp, "fp": fp, "fn": fn, "tn": tn,
        "precision": precision, "recall": recall, "f1": f1,
        "false_positive_rate": rate(fp, fp + tn),
        "prevalence_gold": rate(tp + fn, g.size), "prevalence_pred": rate(tp + fp, g.size),
    }


def _macro_f1(g: np.ndarray, p: np.ndarray, k: int) -> float | None:
    """Macro F1 over the classes present in gold or pred (absent classes are not averaged)."""
    scores = []
    for c in range(k):
        tp = int(((g == c) & (p == c)).sum())
        fp = int(((g != c) & (p == c)).sum())
        fn = int(((g == c) & (p != c)).sum())
        if tp + fp + fn == 0:
            continue
        scores.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores)) if scores else None


def _point(g: np.ndarray, p: np.ndarray, k: int, ordinal: bool, threshold_index: int) -> dict[str, Any]:
    matrix = np.zeros((k, k), dtype=int)
    if g.size:
        np.add.at(matrix, (g, p), 1)
    out: dict[str, Any] = {
        "n": int(g.size),
        "confusion": matrix.tolist(),
        "accuracy": rate(int((g == p).sum()), int(g.size)),
        "kappa": kappa_score(g, p, k, None),
        "macro_f1": _macro_f1(g, p, k),
    }
    if ordinal:
        out["kappa_linear"] = kappa_score(g, p, k, "linear")
        out["kappa_quadratic"] = kappa_score(g, p, k, "quadratic")
        out["detection"] = _binary(g, p, threshold_index)
    return out


def agreement(
    gold: Sequence[Any] | np.ndarray,
    pred: Sequence[Any] | np.ndarray,
    *,
    labels: Sequence[Any] = SEVERITY_LABELS,
    ordinal: bool = True,
    threshold: Any = 1,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = DEFAULT_SEED,
) -> dict[str, Any]:
    """Confusion matrix, accuracy, Cohen's kappa (plain; linear and quadratic if ordinal),
    macro-F1 and, for ordinal labels, binary detection at ``gold >= threshold``.

    Bootstrap CIs (resampling pairs) are given for accuracy, kappa, quadratic kappa and
    detection recall. ``notes`` explains every ``None``.

    >>> r = agreement([0, 1, 2, 3], [0, 1, 2, 2], n_boot=0)
    >>> r["accuracy"], r["detection"]["recall"], r["n"]
    (0.75, 1.0, 4)
    """
    labels = list(labels)
    g, p, left_out = _check_labels(gold, pred, labels)
    k = len(labels)
    threshold_index = labels.index(threshold) if ordinal else 0
    result = _point(g, p, k, ordinal, threshold_index)
    result.update({"labels": labels, "ordinal": ordinal, "threshold": threshold if ordinal else None, "left_out": left_out})
    result["n_unparsed"] = left_out["pred_missing"] + left_out["pred_outside_labels"]
    notes = []
    if g.size == 0:
        notes.append("no pair has both a known gold label and a parsed grader label")
    elif result["kappa"] is None:
        notes.append("kappa undefined: gold and grader each use a single, identical class")
    if ordinal and g.size and result["detection"]["recall"] is None:
        notes.append(f"recall undefined: no gold label >= {threshold}")
    result["notes"] = notes
    result["ci"] = _bootstrap_ci(g, p, k, ordinal, threshold_index, n_boot, seed)
    return result


def _bootstrap_ci(g: np.ndarray, p: np.ndarray, k: int, ordinal: bool, threshold_index: int, n_boot: int, seed: int) -> dict[str, Any]:
    keys = ["accuracy", "kappa"] + (["kappa_quadratic", "recall"] if ordinal else [])
    if n_boot <= 0 or g.size == 0:
        return {key: [None, None] for key in keys}
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {key: [] for key in keys}
    for _ in range(n_boot):
        idx = rng.integers(0, g.size, size=g.size)
        gs, ps = g[idx], p[idx]
        draws["accuracy"].append(float((gs == ps).mean()))
        draws["kappa"].append(_nan(kappa_score(gs, ps, k, None)))
        if ordinal:
            draws["kappa_quadratic"].append(_nan(kappa_score(gs, ps, k, "quadratic")))
            pos = gs >= threshold_index
            draws["recall"].append(float((ps[pos] >= threshold_index).mean()) if pos.any() else float("nan"))
    return {key: percentile_ci(np.asarray(values)) for key, values in draws.items()}


def _nan(value: float | None) -> float:
    return float("nan") if value is None else value
