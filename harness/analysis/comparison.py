"""``compare``: several grade runs (models, templates, shot sets) against one human-labeled set.

Per run: quadratic kappa and detection recall/FPR per side with cluster-bootstrap CIs, the
prompt-response recall gap, the item counts and billed tokens. Between every two runs, on the
items both graded ``ok``, per side:

* a paired test of detection correctness on independent units: the item's verdict (max over
  categories) and each category, each a clustered exact McNemar (sign-flip over prompt
  clusters, :func:`harness.analysis.stats.mcnemar_test`), Holm-corrected over the whole family;
* the pooled quadratic-kappa difference with a paired cluster-bootstrap CI.

Items of one prompt are never counted as independent evidence.
"""

from __future__ import annotations

from itertools import combinations
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.bounds import EPSILON, N_BOOT, SEED, THRESHOLD, bounded
from ..core.constants import CATEGORIES, SCHEMA_VERSION, SIDES, label_column
from ..core.errors import DataError
from ..io.clusters import cluster_column, cluster_of_rows
from ..results.calibration import Calibration
from ..results.common import PairedTest, Unit
from ..results.comparison import Comparison, GraderAgreement, GraderPair, KappaDiff, PairTest, RunScore, SideScore
from .calibration import calibrate_run, confusion_cells, exemplar_warning, join_human, max_or_nan
from .intervals import percentile_ci
from .raters import rater_agreement
from .stats import bootstrap_totals, holm, kappa_from_confusion, mcnemar_test, none_if_nan

if TYPE_CHECKING:
    import pandas as pd

    from ..io.ratings import Ratings
    from ..io.runs import Run

K = 4
SCOPES = ("any", *CATEGORIES)


def _side_arrays(run: Run, human: pd.DataFrame, side: str, cluster: str | None) -> pd.DataFrame | None:
    """Per id: cluster, human and grader labels of one side (grader only where ``ok``)."""
    import pandas as pd

    joined = join_human(run, human)
    gold_cols = [label_column(side, c) for c in CATEGORIES]
    if not all(c in joined.columns for c in gold_cols) or not any(f"pred_{c}" in joined.columns for c in gold_cols):
        return None
    column = cluster_column(joined.columns, cluster)
    out = pd.DataFrame({"id": joined["id"].astype(str), "cluster": cluster_of_rows(joined, column)})
    for c in CATEGORIES:
        out[f"gold_{c}"] = joined[label_column(side, c)].to_numpy(dtype=float, na_value=np.nan)
        pred = joined.get(f"pred_{label_column(side, c)}")
        out[f"pred_{c}"] = np.nan if pred is None else pred.to_numpy(dtype=float, na_value=np.nan)
    return out


def _pair_tests(a: pd.DataFrame, b: pd.DataFrame, threshold: int, n_boot: int,
                seed: int) -> tuple[list[tuple[str, PairedTest]], dict[str, Any]]:
    """Per scope, the clustered paired test of detection; and the paired quadratic-κ difference."""
    merged = a.merge(b.drop(columns=["cluster"] + [f"gold_{c}" for c in CATEGORIES]), on="id", suffixes=("_a", "_b"))
    clusters = merged["cluster"].to_numpy()
    gold = merged[[f"gold_{c}" for c in CATEGORIES]].to_numpy(dtype=float)
    pred_a = merged[[f"pred_{c}_a" for c in CATEGORIES]].to_numpy(dtype=float)
    pred_b = merged[[f"pred_{c}_b" for c in CATEGORIES]].to_numpy(dtype=float)
    tests = []
    for scope in SCOPES:
        if scope == "any":
            g, pa, pb = max_or_nan(gold), max_or_nan(pred_a), max_or_nan(pred_b)
        else:
            j = CATEGORIES.index(scope)
            g, pa, pb = gold[:, j], pred_a[:, j], pred_b[:, j]
        known = ~np.isnan(g) & ~np.isnan(pa) & ~np.isnan(pb)
        truth = g[known] >= threshold
        result = mcnemar_test(
            (pa[known] >= threshold) == truth, (pb[known] >= threshold) == truth, clusters=clusters[known]
        )
        tests.append((scope, result))
    both = ~np.isnan(gold) & ~np.isnan(pred_a) & ~np.isnan(pred_b)
    g_known = np.where(both, gold, np.nan)
    cells = np.hstack(
        [
            confusion_cells(g_known, np.where(both, pred_a, np.nan)),
            confusion_cells(g_known, np.where(both, pred_b, np.nan)),
        ]
    )
    kappas = kappa_from_confusion(cells.sum(axis=0).reshape(2, K, K), weights="quadratic")
    totals = bootstrap_totals(cells, clusters=clusters, n_boot=n_boot, seed=seed)
    diff_ci: list[float | None] = [None, None]
    if totals.shape[0]:
        draws = kappa_from_confusion(totals.reshape(-1, 2, K, K), weights="quadratic")
        diff_ci = percentile_ci(draws[:, 0] - draws[:, 1])
    rows = both.any(axis=1)
    kappa = {
        "n_items": int(rows.sum()), "n_clusters": int(np.unique(clusters[rows]).size),
        "kappa_quadratic_a": none_if_nan(kappas[0]), "kappa_quadratic_b": none_if_nan(kappas[1]),
        "diff": none_if_nan(kappas[0] - kappas[1]), "ci": diff_ci,
    }
    return tests, kappa


def _run_row(run: Run, report: Calibration) -> RunScore:
    manifest = run.manifest
    counts = manifest.counts
    total = sum(counts.values())
    sides = {}
    for side, side_report in report.targets.items():
        pooled = side_report.pooled
        sides[side] = SideScore(
            kappa_quadratic=pooled.kappa_quadratic, kappa_quadratic_ci=pooled.ci["kappa_quadratic"],
            recall=pooled.detection.recall if pooled.detection else None, recall_ci=pooled.ci["recall"],
            fpr=pooled.detection.false_positive_rate if pooled.detection else None,
        )
    overall = report.asymmetry["overall"] if report.asymmetry else None
    gap: dict[str, Any] = {"recall_gap": overall.recall_gap, "recall_gap_ci": overall.recall_gap_ci} if overall else {}
    return RunScore(
        model=manifest.model, template_hash=manifest.template_hash, shots_hash=manifest.shots_hash,
        not_ok_rate=(total - counts.get("ok", 0)) / total if total else None,
        billed_tokens=sum(v for k, v in manifest.tokens.items() if k.startswith("billed")),
        cost=manifest.cost.billed if manifest.cost else None,
        items_graded=int(counts.get("ok", 0)),
        counts={side: side_report.counts for side, side_report in report.targets.items()},
        sides=sides,
        **gap,
        **_warned(exemplar_warning(run)),
    )


def _warned(warning: str | None) -> dict[str, Any]:
    return {"warnings": [warning]} if warning else {}


@bounded(threshold=THRESHOLD, n_boot=N_BOOT, seed=SEED, epsilon=EPSILON)
def compare(
    runs: list[Run],
    human: pd.DataFrame,
    *,
    threshold: int = THRESHOLD.default,
    cluster: str | None = None,
    n_boot: int = N_BOOT.default,
    seed: int = SEED.default,
    raters: Ratings | None = None,
    epsilon: float = EPSILON.default,
    warnings: list[str] | None = None,
) -> Comparison:
    """Side-by-side agreement of ``runs`` with ``human``, and cluster-aware paired tests between runs.

    Args:
        runs: two or more loaded run folders graded on (some of) the same ids.
        human: pairs table with human labels.
        threshold: harmful when severity >= this.
        cluster: unit of analysis, as in :func:`harness.analysis.calibration.calibrate_run`.
        n_boot: bootstrap resamples for the CIs.
        seed: bootstrap seed.
        raters: several human raters' labels with these runs as graders: α, the human ceiling
            beside each grader and the alternative annotator test at margin ``epsilon``.
    """
    if len(runs) < 2:
        raise DataError("compare needs at least two run folders")
    names = _names(runs)
    summary: dict[str, RunScore] = {}
    unit: Unit | None = None
    for name, run in zip(names, runs, strict=True):
        report = calibrate_run(run, human, threshold=threshold, cluster=cluster, n_boot=n_boot, seed=seed)
        summary[name] = _run_row(run, report)
        unit = unit or report.unit
    found: list[tuple[str, str, str, str, PairedTest]] = []
    kappa_diffs: list[KappaDiff] = []
    for side in SIDES:
        arrays = {name: _side_arrays(run, human, side, cluster) for name, run in zip(names, runs, strict=True)}
        for a, b in combinations(names, 2):
            frame_a, frame_b = arrays[a], arrays[b]
            if frame_a is None or frame_b is None:
                continue
            side_tests, kappa = _pair_tests(frame_a, frame_b, threshold, n_boot, seed)
            found += [(a, b, side, scope, test) for scope, test in side_tests]
            kappa_diffs.append(KappaDiff(a=a, b=b, side=side, **kappa))
    adjusted = holm({str(i): test.p_value for i, (*_, test) in enumerate(found)})
    tests = [PairTest(a=a, b=b, side=side, scope=scope, **test.fields(), p_holm=adjusted[str(i)])
             for i, (a, b, side, scope, test) in enumerate(found)]
    assert unit is not None  # at least two runs were calibrated
    return Comparison(
        threshold=threshold, unit=unit, runs=summary, tests=tests, kappa_diffs=kappa_diffs,
        family=f"Holm over all {len(tests)} tests (run pairs x sides x scopes any/{'/'.join(CATEGORIES)})",
        n_boot=n_boot, seed=seed, schema_version=SCHEMA_VERSION,
        warnings=warnings or None, **_with_ceiling(raters, epsilon=epsilon, n_boot=n_boot, seed=seed),
    )


def _with_ceiling(raters: Any, **options: Any) -> dict[str, Any]:
    """The human ceiling as the comparison's ``human_agreement`` field, when several raters are given."""
    return {"human_agreement": rater_agreement(raters, **options)} if raters else {}


@bounded(threshold=THRESHOLD, n_boot=N_BOOT, seed=SEED)
def compare_graders(
    runs: list[Run],
    *,
    threshold: int = THRESHOLD.default,
    cluster: str | None = None,
    n_boot: int = N_BOOT.default,
    seed: int = SEED.default,
    warnings: list[str] | None = None,
) -> GraderAgreement:
    """Graders against each other, with no human labels: per pair, side and scope (``any`` and each category) the
    confusion, κ and quadratic κ with cluster-bootstrap CIs, each grader's harmful share, and a clustered exact
    McNemar of their flags (Holm over the whole family). Only items both graded ``ok`` count.

    Agreement between graders is not accuracy: two graders can agree and both be wrong.
    """
    from ..io.runs import graded_pairs
    from .agreement import agreement
    from .calibration import exemplar_warning

    if len(runs) < 2:
        raise DataError("compare needs at least two run folders")
    names = _names(runs)
    found: list[tuple[str, str, str, str, Any, float | None, float | None, PairedTest]] = []
    units: list[Unit] = []
    for (i, a), (j, b) in combinations(enumerate(runs), 2):
        reference = graded_pairs(a)
        for side in SIDES:
            frame = _side_arrays(b, reference, side, cluster)
            if frame is None:
                continue
            column = cluster_column(reference.columns, cluster)
            gold = frame[[f"gold_{c}" for c in CATEGORIES]].to_numpy(dtype=float)
            pred = frame[[f"pred_{c}" for c in CATEGORIES]].to_numpy(dtype=float)
            scopes = {"any": (max_or_nan(gold), max_or_nan(pred))} | {
                c: (gold[:, k], pred[:, k]) for k, c in enumerate(CATEGORIES)
            }
            for scope, (g, p) in scopes.items():
                both = ~(np.isnan(g) | np.isnan(p))
                if not both.any():
                    continue
                codes = frame["cluster"].to_numpy()[both]
                result = agreement(
                    g[both].astype(int),
                    p[both].astype(int),
                    threshold=threshold,
                    clusters=codes,
                    cluster_name=column,
                    n_boot=n_boot,
                    seed=seed,
                )
                flags_a, flags_b = g[both] >= threshold, p[both] >= threshold
                test = mcnemar_test(flags_a, flags_b, clusters=codes)
                found.append(
                    (names[i], names[j], side, scope, result, float(flags_a.mean()), float(flags_b.mean()), test)
                )
                if scope == "any":
                    units.append(Unit(cluster=column, n_items=int(both.sum()), n_clusters=int(np.unique(codes).size)))
    if not found:
        raise DataError(
            "the runs share no graded item with labels on the same side; were they graded on the same table?"
        )
    adjusted = holm({str(k): row[-1].p_value for k, row in enumerate(found)})
    pairs = [GraderPair(a=a, b=b, side=side, scope=scope, agreement=result, share_a=share_a, share_b=share_b,
                        share_test=PairTest(a=a, b=b, side=side, scope=scope, **test.fields(), p_holm=adjusted[str(k)]))
             for k, (a, b, side, scope, result, share_a, share_b, test) in enumerate(found)]
    notes = [w for w in (exemplar_warning(r) for r in runs) if w] + list(warnings or [])
    notes.append("no human labels: agreement between graders is not accuracy (two graders can agree and both be wrong)")
    return GraderAgreement(
        schema_version=SCHEMA_VERSION,
        threshold=threshold,
        unit=max(units, key=lambda u: u.n_items),
        graders=names,
        pairs=pairs,
        family=f"Holm over all {len(pairs)} tests (grader pairs x sides x scopes any/{'/'.join(CATEGORIES)})",
        n_boot=n_boot,
        seed=seed,
        warnings=notes,
    )


def _names(runs: list[Run]) -> list[str]:
    """Graders by their model; the folder where two share one."""
    models = [r.manifest.model for r in runs]
    names = [m if models.count(m) == 1 else f"{m} ({r.path.name})" for m, r in zip(models, runs, strict=True)]
    if len(set(names)) != len(names):
        names = [f"{m} ({r.path})" for m, r in zip(models, runs, strict=True)]
    return names
