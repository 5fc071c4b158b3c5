"""``calibrate``: how far a grader agrees with human labels, side by side for prompts and responses.

For each side (prompt, response) and category, pooled over categories and on the
max-over-categories severity: :func:`harness.analysis.agreement.agreement`. Then the paper's asymmetry:
prompt-side minus response-side detection recall (and quadratic kappa), with a bootstrap that
resamples prompt clusters so both sides of every pair, and every pair of a prompt, move together.

Counting vocabulary (the same in grade, calibrate, analyze, compare and report): per side an
item is ``missing_text`` (nothing to grade on that side), ``not_graded`` (text, no label record
yet), or has the grader's status ``ok`` / ``unparsed`` / ``refused`` / ``failed``. A missing
human label is ``reference_missing``. None of these is ever read as Safe, and ``missing`` is
never ``unparsed``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.bounds import EPSILON, N_BOOT, SEED, THRESHOLD, bounded
from ..core.cells import is_missing
from ..core.constants import (
    CATEGORIES,
    DEFAULT_N_BOOT,
    DEFAULT_SEED,
    INCLUSION,
    SCHEMA_VERSION,
    SIDES,
    STATUSES,
    label_column,
)
from ..core.errors import DataError
from ..io.clusters import cluster_column, cluster_of_rows
from ..io.runs import id_hash
from ..results.calibration import Agreement, Asymmetry, Calibration, SideReport
from ..results.common import Unit
from .agreement import agreement
from .intervals import Interval, percentile_ci
from .raters import rater_agreement
from .reliability import reliability
from .soft_labels import soft_labels
from .stats import (
    bootstrap_totals,
    detection_from_confusion,
    kappa_from_confusion,
    none_if_nan,
)

if TYPE_CHECKING:
    import pandas as pd

    from ..io.ratings import Ratings
    from ..io.runs import Run

K = 4  # severities 0..3
SIDE_COUNTS = ("items", "missing_text", "not_graded", *STATUSES, "reference_missing")


def side_labels(frame: pd.DataFrame, prefix: str, side: str) -> np.ndarray:
    """One side's labels as a float matrix (rows x the four categories, NaN unknown); ``prefix``
    ``"pred_"`` reads the grader's columns, ``""`` the human ones."""
    return np.column_stack(
        [frame[f"{prefix}{label_column(side, c)}"].to_numpy(dtype=float, na_value=np.nan) for c in CATEGORIES]
    )


def max_or_nan(values: np.ndarray) -> np.ndarray:
    """Max over categories per row; NaN unless all four are known (never a partial max)."""
    out = np.full(values.shape[0], np.nan)
    complete = ~np.isnan(values).any(axis=1)
    out[complete] = values[complete].max(axis=1)
    return out


def _side_report(
    gold: np.ndarray,
    pred: np.ndarray,
    clusters: np.ndarray,
    cluster: str | None,
    counts: dict[str, int],
    *,
    threshold: int,
    n_boot: int,
    seed: int,
    weights: np.ndarray | None = None,
) -> SideReport:
    def agree(g: np.ndarray, p: np.ndarray, c: np.ndarray, w: np.ndarray | None) -> Agreement:
        return agreement(
            g, p, threshold=threshold, clusters=c, cluster_name=cluster, n_boot=n_boot, seed=seed, weights=w
        )

    pooled_weights = None if weights is None else np.repeat(weights, len(CATEGORIES))
    return SideReport(
        categories={c: agree(gold[:, j], pred[:, j], clusters, weights) for j, c in enumerate(CATEGORIES)},
        pooled=agree(gold.ravel(), pred.ravel(), np.repeat(clusters, len(CATEGORIES)), pooled_weights),
        max=agree(max_or_nan(gold), max_or_nan(pred), clusters, weights),
        counts=counts,
    )


def confusion_cells(gold: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Per row, the one-hot confusion cells (k*k) summed over the columns where both are known."""
    gold = gold.reshape(gold.shape[0], -1)
    pred = pred.reshape(pred.shape[0], -1)
    cells = np.zeros((gold.shape[0], K * K))
    known = ~np.isnan(gold) & ~np.isnan(pred)
    rows, cols = np.nonzero(known)
    np.add.at(cells, (rows, gold[rows, cols].astype(int) * K + pred[rows, cols].astype(int)), 1.0)
    return cells


def _recall_kappa(cells: np.ndarray, threshold: int) -> tuple[np.ndarray, np.ndarray]:
    matrices = cells.reshape(-1, K, K)
    return detection_from_confusion(matrices, threshold_index=threshold)["recall"], kappa_from_confusion(
        matrices, weights="quadratic"
    )


def asymmetry(gold_p: np.ndarray, pred_p: np.ndarray, gold_r: np.ndarray, pred_r: np.ndarray, *,
              clusters: np.ndarray | None = None, threshold: int = 1, n_boot: int = DEFAULT_N_BOOT,
              seed: int = DEFAULT_SEED, weights: np.ndarray | None = None) -> dict[str, Asymmetry]:
    """Prompt-side minus response-side recall and quadratic kappa: pooled, max and per category.

    Rows are pairs; the bootstrap resamples ``clusters`` of pairs (default: each pair), so a
    pair's prompt and response, and all pairs of one prompt, stay together.
    """
    n = gold_p.shape[0]
    codes = np.arange(n) if clusters is None else np.asarray(clusters)
    scopes: dict[str, tuple[Any, Any, Any, Any]] = {
        "overall": (gold_p, pred_p, gold_r, pred_r),
        "max": (max_or_nan(gold_p), max_or_nan(pred_p), max_or_nan(gold_r), max_or_nan(pred_r)),
    }
    scopes.update({c: (gold_p[:, j], pred_p[:, j], gold_r[:, j], pred_r[:, j]) for j, c in enumerate(CATEGORIES)})
    out: dict[str, Asymmetry] = {}
    for name, (gp, pp, gr, pr) in scopes.items():
        cells = np.hstack([confusion_cells(gp, pp), confusion_cells(gr, pr)])
        if weights is not None:
            cells = cells * weights[:, None]
        (rp, rr), (kp, kr) = (_recall_kappa(cells.sum(axis=0).reshape(2, -1), threshold))
        totals = bootstrap_totals(cells, clusters=codes, n_boot=n_boot, seed=seed)
        recall_gap_ci: Interval = [None, None]
        kappa_gap_ci: Interval = [None, None]
        if totals.shape[0]:
            recall_p, kappa_p = _recall_kappa(totals[:, : K * K], threshold)
            recall_r, kappa_r = _recall_kappa(totals[:, K * K :], threshold)
            recall_gap_ci = percentile_ci(recall_p - recall_r)
            kappa_gap_ci = percentile_ci(kappa_p - kappa_r)
        out[name] = Asymmetry(
            prompt_recall=none_if_nan(rp), response_recall=none_if_nan(rr), recall_gap=none_if_nan(rp - rr),
            prompt_kappa_quadratic=none_if_nan(kp), response_kappa_quadratic=none_if_nan(kr),
            kappa_gap=none_if_nan(kp - kr), recall_gap_ci=recall_gap_ci, kappa_gap_ci=kappa_gap_ci,
        )
    return out


def side_counts(frame: pd.DataFrame, side: str) -> dict[str, int]:
    """Item counts of one side in the shared vocabulary (see the module docstring)."""
    n = len(frame)
    has_text = np.ones(n, bool)
    if side == "response" and "response" in frame.columns:
        has_text = frame["response"].map(lambda v: isinstance(v, str) and v.strip() != "").to_numpy()
    status = frame[f"{side}_status"] if f"{side}_status" in frame.columns else None
    counts = dict.fromkeys(SIDE_COUNTS, 0)
    counts["items"] = n
    counts["missing_text"] = int((~has_text).sum())
    values = [None] * n if status is None else status.tolist()
    for text, value in zip(has_text, values, strict=True):
        if not text:
            continue
        if is_missing(value):
            counts["not_graded"] += 1
        else:
            counts[str(value)] = counts.get(str(value), 0) + 1
    gold_cols = [label_column(side, c) for c in CATEGORIES if label_column(side, c) in frame.columns]
    if gold_cols:
        counts["reference_missing"] = int(frame[gold_cols].isna().all(axis=1).sum())
    return counts


def join_human(run: Run, human: pd.DataFrame) -> pd.DataFrame:
    """The human table joined to the run on id: human labels, the run's metadata, and the grader's
    labels (``pred_*``) and statuses; an error when no id is shared."""
    from ..io.runs import labels_wide

    wide = labels_wide(run.records)
    extra = ["id", *(c for c in run.input.columns if c not in human.columns)]
    joined = human.merge(run.input[extra], on="id", how="inner")
    if joined.empty:
        raise DataError("no id of the human table occurs in the run; check that they describe the same pairs")
    return joined if wide.empty else joined.merge(wide, on="id", how="left")


@bounded(threshold=THRESHOLD, n_boot=N_BOOT, seed=SEED, epsilon=EPSILON)
def calibrate_run(
    run: Run,
    human: pd.DataFrame,
    *,
    threshold: int = THRESHOLD.default,
    cluster: str | None = None,
    n_boot: int = N_BOOT.default,
    seed: int = SEED.default,
    by: str | None = None,
    raters: Ratings | None = None,
    epsilon: float = EPSILON.default,
    warnings: Sequence[str] = (),
) -> Calibration:
    """Compare a grade run's labels with human labels, joined on id, resampling prompt clusters.

    Args:
        run: a loaded run folder.
        human: pairs table with human ``prompt_*`` / ``response_*`` labels.
        threshold: harmful when severity >= this (1..3).
        cluster: column naming the unit of analysis (default ``prompt_id``, else the prompt
            text; ``"none"`` for independent rows).
        n_boot: bootstrap resamples (0 to skip intervals).
        seed: bootstrap seed.
        by: a column of the run's input or the human table (``model``, ``source``): the
            calibration is also made within each of its groups (``groups``), since a grader's
            errors can differ between the models whose answers it reads.
        raters: several human raters' labels with this run as a grader
            (:func:`harness.io.ratings.read_ratings`): α among them, the human ceiling beside the
            grader and the alternative annotator test at margin ``epsilon`` (``human_agreement``).
        warnings: what the caller knows about these labels that the numbers cannot show (e.g. that they
            were narrowed to an exemplar search's held-out pairs); kept in the result's ``warnings``.
    """
    options: dict[str, Any] = {"threshold": threshold, "cluster": cluster, "n_boot": n_boot, "seed": seed}
    if raters is not None:
        return _with_raters(run, human, raters, epsilon=epsilon, by=by, warnings=warnings, **options)
    if by is not None:
        return _by_group(run, human, by, warnings=warnings, **options)
    if not run.records:
        raise DataError(f"{run.path}: the run has no labels yet")
    human_cols = [c for c in human.columns if c in {label_column(s, c2) for s in SIDES for c2 in CATEGORIES}]
    if not human_cols:
        raise DataError("the human table has no prompt_*/response_* label columns to compare with")
    joined = join_human(run, human)
    weights = _weights(joined)
    column = cluster_column(joined.columns, cluster)
    codes = cluster_of_rows(joined, column)
    matrices = _side_matrices(joined)
    targets = {side: _side_report(gold, pred, codes, column, side_counts(joined, side), threshold=threshold,
                                  n_boot=n_boot, seed=seed, weights=weights)
               for side, (gold, pred) in matrices.items()}
    if not targets:
        raise DataError("the run and the human table share no side with labels on both (prompt or response)")
    both: dict[str, Any] = ({"asymmetry": asymmetry(*matrices["prompt"], *matrices["response"], clusters=codes,
                                                    threshold=threshold, n_boot=n_boot, seed=seed, weights=weights)}
                            if len(matrices) == 2 else {})
    forecasts = _ok_values(run, "probabilities")
    if forecasts:
        both["reliability"] = reliability(
            joined, forecasts, codes, threshold=threshold, n_boot=n_boot, seed=seed, weights=weights
        )
    if weights is not None:
        both["design"] = (
            f"weighted by 1/{INCLUSION} (a pick of harness select): every metric and interval estimates the "
            f"population the {len(joined)} labelled pairs were drawn from"
        )
    return Calibration(
        run=str(run.path), model=run.manifest.model, n_joined=len(joined), threshold=threshold,
        unit=Unit(cluster=column, n_items=len(joined), n_clusters=int(np.unique(codes).size)),
        n_boot=n_boot, seed=seed, targets=targets, schema_version=SCHEMA_VERSION, **both,
        max_severity_pairs=_max_pairs(matrices, codes), template_hash=run.manifest.template_hash,
        shots_hash=run.manifest.shots_hash, id_hashes=[id_hash(i) for i in joined["id"].astype(str)],
        **_warned(exemplar_warning(run), *warnings, _unequal_weights(weights)),
    )


def _side_matrices(joined: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each side with human labels and a grader status: its (human, grader) label matrices (a category the grader
    never labelled is missing, never Safe)."""
    matrices = {}
    for side in SIDES:
        gold_cols = [label_column(side, c) for c in CATEGORIES]
        if not all(c in joined.columns for c in gold_cols) or f"{side}_status" not in joined.columns:
            continue
        for c in gold_cols:
            if f"pred_{c}" not in joined.columns:
                joined[f"pred_{c}"] = np.nan
        matrices[side] = (side_labels(joined, "", side), side_labels(joined, "pred_", side))
    return matrices


def _with_raters(run: Run, human: pd.DataFrame, raters: Ratings, *, epsilon: float, n_boot: int, seed: int,
                 **options: Any) -> Calibration:
    """The calibration with the raters beside it: α among them, the human ceiling, the alternative annotator test,
    and the soft-label scores where the run recorded probabilities."""
    found = calibrate_run(run, human, n_boot=n_boot, seed=seed, **options)
    forecasts = _ok_values(run, "probabilities")
    verdicts = _ok_values(run, "severity")
    soft = soft_labels(raters, forecasts, n_boot=n_boot, seed=seed, verdicts=verdicts) if forecasts else None
    humans = rater_agreement(raters, epsilon=epsilon, n_boot=n_boot, seed=seed)
    return Calibration(**found.fields(), human_agreement=humans, soft_labels=soft or None)


def _ok_values(run: Run, key: str) -> dict[tuple[str, str], Any]:
    """``key`` of every record graded ok that holds one, by (id, target)."""
    return {(str(r["id"]), str(r["target"])): r[key] for r in run.records
            if r.get("status") == "ok" and r.get(key)}


def _unequal_weights(weights: np.ndarray | None) -> str | None:
    """Say so when the labels come from a pick with unequal inclusion probabilities (a stratified or active pick)."""
    if weights is None or np.allclose(weights, weights[0]):
        return None
    return ("the human labels come from a pick with unequal inclusion probabilities (stratified or active): its κ "
            "intervals run somewhat narrow (make validate measures a stratified pick's coverage below 95 %)")


def _weights(joined: pd.DataFrame) -> np.ndarray | None:
    """1/π per joined pair when the human table carries the pick's inclusion probabilities."""
    if INCLUSION not in joined.columns:
        return None
    from ..core.constants import MIN_INCLUSION
    from .ppi import inclusion_numbers

    values = inclusion_numbers(joined[INCLUSION].tolist())
    bad = ~((values >= MIN_INCLUSION) & (values <= 1))
    if bad.any():
        raise DataError(
            f"the human table's row {joined['id'].astype(str).to_numpy()[bad][0]!r} has {INCLUSION} "
            f"{joined[INCLUSION].to_numpy()[bad][0]!r}; expected a probability from {MIN_INCLUSION:g} to 1 on "
            "every row (as harness select wrote it), or no such column for a uniform random sample"
        )
    return 1.0 / values


def _by_group(run: Run, human: pd.DataFrame, by: str, *, warnings: Sequence[str], **options: Any) -> Calibration:
    """The whole calibration, with one calibration per group of ``by`` beside it."""
    overall = calibrate_run(run, human, warnings=warnings, **options)
    joined = join_human(run, human)
    if by not in joined.columns:
        raise DataError(f"`by` {by!r}: no such column in the run's input or the human table; they have "
                        f"{sorted(map(str, joined.columns))}")
    values = joined[by].astype("string").fillna("<missing>")
    groups = {}
    for name in sorted(values.unique().tolist(), key=str):
        ids = set(joined.loc[(values == name).to_numpy(), "id"].astype(str))
        groups[name] = calibrate_run(run, human[human["id"].astype(str).isin(ids)], **options)
    return Calibration(**overall.fields(), by=by, groups=groups)


def _warned(*warnings: str | None) -> dict[str, Any]:
    kept = [w for w in warnings if w]
    return {"warnings": kept} if kept else {}


def exemplar_warning(run: Run) -> str | None:
    """Say when the run graded items that are exemplars of its own shot set (their answer was shown)."""
    overlap = run.manifest.shots_overlap
    if not overlap:
        return None
    return (
        f"{overlap} of the run's graded items are exemplars of its shot set (same id or text): they were graded with "
        "their own answer shown, so agreement on them is not evidence"
    )


def _max_pairs(matrices: dict[str, tuple[np.ndarray, np.ndarray]], codes: np.ndarray) -> dict[str, list[int]]:
    """Per joined pair: cluster code and the human and grader max severity per side (-1 unknown).

    Kept in ``calibration.json`` so that ``analyze --correct`` can resample the calibration set
    by cluster. Holds no text, only codes.
    """
    out: dict[str, list[int]] = {"cluster": codes.astype(int).tolist()}
    for side, (gold, pred) in matrices.items():
        for name, values in (("human", gold), ("grader", pred)):
            column = max_or_nan(values)
            out[f"{side}_{name}"] = np.where(np.isnan(column), -1, column).astype(int).tolist()
    return out


def save_calibration(result: Calibration, out_dir: str | Path) -> list[Path]:
    """Write ``calibration.json`` and a CSV confusion matrix per target and category."""
    import pandas as pd

    from ..core.atomic import write_csv_atomic

    folder = Path(out_dir)
    written = [result.write(folder / "calibration.json")]
    for side, report in result.targets.items():
        for name, metrics in [*report.categories.items(), ("pooled", report.pooled), ("max", report.max)]:
            labels = metrics.labels
            table = pd.DataFrame(
                metrics.confusion, index=[f"human_{v}" for v in labels], columns=[f"grader_{v}" for v in labels]
            )
            written.append(write_csv_atomic(folder / f"confusion_{side}_{name}.csv", table, index=True))
    return written
