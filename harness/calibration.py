"""``calibrate``: how far a grader agrees with human labels, side by side for prompts and responses.

For each target (prompt, response) and category, pooled over categories and on the
max-over-categories severity: :func:`harness.agreement.agreement`. Then the paper's asymmetry:
prompt-side minus response-side detection recall (and quadratic kappa), with a paired
bootstrap that resamples pairs so both sides move together.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .agreement import agreement, kappa_score
from .constants import CATEGORIES, DEFAULT_N_BOOT, DEFAULT_SEED, SIDES, label_column
from .errors import DataError
from .statistics import percentile_ci

if TYPE_CHECKING:
    import pandas as pd

    from .runs import Run


def _matrix(frame: pd.DataFrame, prefix: str, side: str) -> np.ndarray:
    return np.column_stack(
        [frame[f"{prefix}{label_column(side, c)}"].to_numpy(dtype=float, na_value=np.nan) for c in CATEGORIES]
    )


def _max_or_nan(values: np.ndarray) -> np.ndarray:
    out = np.full(values.shape[0], np.nan)
    complete = ~np.isnan(values).any(axis=1)
    out[complete] = values[complete].max(axis=1)
    return out


def _side_report(gold: np.ndarray, pred: np.ndarray, threshold: int, n_boot: int, seed: int) -> dict[str, Any]:
    report: dict[str, Any] = {
        "categories": {c: agreement(gold[:, j], pred[:, j], threshold=threshold, n_boot=n_boot, seed=seed) for j, c in enumerate(CATEGORIES)},
        "pooled": agreement(gold.ravel(), pred.ravel(), threshold=threshold, n_boot=n_boot, seed=seed),
        "max": agreement(_max_or_nan(gold), _max_or_nan(pred), threshold=threshold, n_boot=n_boot, seed=seed),
    }
    return report


def _recall(gold: np.ndarray, pred: np.ndarray, threshold: int) -> float:
    known = ~np.isnan(gold) & ~np.isnan(pred)
    positives = known & (gold >= threshold)
    count = positives.sum()
    return float((positives & (pred >= threshold)).sum() / count) if count else float("nan")


def quadratic_kappa(gold: np.ndarray, pred: np.ndarray) -> float:
    """Quadratic kappa of 0-3 severities over the positions both sides know (NaN if undefined)."""
    known = ~np.isnan(gold) & ~np.isnan(pred)
    value = kappa_score(gold[known].astype(int), pred[known].astype(int), 4, "quadratic") if known.any() else None
    return float("nan") if value is None else value


def asymmetry(gold_p: np.ndarray, pred_p: np.ndarray, gold_r: np.ndarray, pred_r: np.ndarray, *,
              threshold: int = 1, n_boot: int = DEFAULT_N_BOOT, seed: int = DEFAULT_SEED) -> dict[str, Any]:
    """Prompt-side minus response-side recall and quadratic kappa, overall and per category.

    Rows are pairs; the bootstrap resamples rows, so a pair's prompt and response stay together.
    """
    n = gold_p.shape[0]
    rng = np.random.default_rng(seed)
    scopes: dict[str, tuple[slice | int, ...]] = {"overall": (slice(None),)}
    scopes.update({c: (j,) for j, c in enumerate(CATEGORIES)})

    def stats(idx: Any, cols: slice | int) -> tuple[float, float, float, float]:
        gp, pp = gold_p[idx][:, cols].ravel(), pred_p[idx][:, cols].ravel()
        gr, pr = gold_r[idx][:, cols].ravel(), pred_r[idx][:, cols].ravel()
        return _recall(gp, pp, threshold), _recall(gr, pr, threshold), quadratic_kappa(gp, pp), quadratic_kappa(gr, pr)

    out: dict[str, Any] = {}
    all_rows = np.arange(n)
    for name, (cols,) in scopes.items():
        rp, rr, kp, kr = stats(all_rows, cols)
        draws = np.asarray([stats(rng.integers(0, n, n), cols) for _ in range(n_boot if n else 0)]).reshape(-1, 4)
        out[name] = {
            "prompt_recall": _none(rp), "response_recall": _none(rr), "recall_gap": _none(rp - rr),
            "recall_gap_ci": percentile_ci(draws[:, 0] - draws[:, 1]) if len(draws) else [None, None],
            "prompt_kappa_quadratic": _none(kp), "response_kappa_quadratic": _none(kr), "kappa_gap": _none(kp - kr),
            "kappa_gap_ci": percentile_ci(draws[:, 2] - draws[:, 3]) if len(draws) else [None, None],
        }
    return out


def _none(value: float) -> float | None:
    return None if value != value else float(value)


def calibrate_run(run: Run, human: pd.DataFrame, *, threshold: int = 1, n_boot: int = DEFAULT_N_BOOT,
                  seed: int = DEFAULT_SEED) -> dict[str, Any]:
    """Compare a grade run's labels with human labels, joined on id (and side)."""
    from .runs import labels_wide

    wide = labels_wide(run.labels)
    if wide.empty:
        raise DataError(f"{run.path}: the run has no labels yet")
    human_cols = [c for c in human.columns if c in {label_column(s, c2) for s in SIDES for c2 in CATEGORIES}]
    if not human_cols:
        raise DataError("the human table has no prompt_*/response_* label columns to compare with")
    joined = human[["id", *human_cols]].merge(wide, on="id", how="inner")
    if joined.empty:
        raise DataError("no id of the human table occurs in the run; check that they describe the same pairs")
    result: dict[str, Any] = {"run": str(run.path), "model": run.manifest.get("model"), "n_joined": len(joined),
                              "threshold": threshold, "targets": {}}
    matrices: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for side in SIDES:
        gold_cols = [label_column(side, c) for c in CATEGORIES]
        if not all(c in joined.columns for c in gold_cols) or f"pred_{gold_cols[0]}" not in joined.columns:
            continue
        gold, pred = _matrix(joined, "", side), _matrix(joined, "pred_", side)
        statuses = joined.get(f"{side}_status")
        result["targets"][side] = _side_report(gold, pred, threshold, n_boot, seed)
        result["targets"][side]["statuses"] = statuses.value_counts().to_dict() if statuses is not None else {}
        matrices[side] = (gold, pred)
    if not result["targets"]:
        raise DataError("the run and the human table share no side with labels on both (prompt or response)")
    if len(matrices) == 2:
        result["asymmetry"] = asymmetry(*matrices["prompt"], *matrices["response"], threshold=threshold, n_boot=n_boot, seed=seed)
    return result


def calibrate_table(frame: pd.DataFrame, gold: str, pred: str, *, labels: list[str] | None = None,
                    ordinal: bool | None = None, threshold: Any = 1, n_boot: int = DEFAULT_N_BOOT,
                    seed: int = DEFAULT_SEED) -> dict[str, Any]:
    """Agreement between any two label columns of a table (nominal or ordinal).

    ``labels`` declares the label set (values outside it count as unparsed); by default it is
    the sorted set of gold values. Integer label sets are treated as ordinal unless told.
    """
    for column, flag in ((gold, "--gold"), (pred, "--pred")):
        if column not in frame.columns:
            raise DataError(f"{flag} {column!r}: no such column; the table has {sorted(map(str, frame.columns))}")
    gold_values = frame[gold].tolist()
    pred_values = frame[pred].tolist()
    if labels is None:
        declared: list[Any] = sorted({v for v in gold_values if v is not None and v == v}, key=str)
    else:
        declared = list(labels)
    numeric = [int(v) for v in declared if str(v).lstrip("-").isdigit()]
    if len(numeric) == len(declared) and declared:
        declared = sorted(numeric)
        gold_values = [int(v) if v is not None and v == v and str(v).lstrip("-").isdigit() else v for v in gold_values]
        pred_values = [int(v) if v is not None and v == v and str(v).lstrip("-").isdigit() else v for v in pred_values]
        is_ordinal = True if ordinal is None else ordinal
    else:
        is_ordinal = bool(ordinal)
    if is_ordinal and threshold not in declared:
        threshold = declared[min(1, len(declared) - 1)]
    result = agreement(gold_values, pred_values, labels=declared, ordinal=is_ordinal, threshold=threshold, n_boot=n_boot, seed=seed)
    result.update({"gold": gold, "pred": pred, "n_rows": len(frame)})
    return result


def save_calibration(result: dict[str, Any], out_dir: str | Path) -> list[Path]:
    """Write ``calibration.json`` and a CSV confusion matrix per target and category."""
    import pandas as pd

    from .runs import write_csv_atomic, write_json_atomic

    folder = Path(out_dir)
    written = [folder / "calibration.json"]
    write_json_atomic(written[0], result)
    for side, report in result.get("targets", {}).items():
        for name, metrics in [*report["categories"].items(), ("pooled", report["pooled"]), ("max", report["max"])]:
            labels = metrics["labels"]
            table = pd.DataFrame(metrics["confusion"], index=[f"human_{v}" for v in labels], columns=[f"grader_{v}" for v in labels])
            written.append(write_csv_atomic(folder / f"confusion_{side}_{name}.csv", table, index=True))
    return written
