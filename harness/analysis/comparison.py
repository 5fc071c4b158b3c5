"""``compare``: several grade runs (models, templates, shot sets) against one human-labeled set.

Per run: quadratic kappa and detection recall/FPR per side with cluster-bootstrap CIs, the
prompt-response recall gap, the item counts and billed tokens. Between every two runs, on the
items both graded ``ok``, per side:

* a paired test of detection correctness on independent units: the item's verdict (max over
  categories) and each category, each a clustered exact McNemar (sign-flip over prompt
  clusters, :func:`harness.stats.mcnemar_test`), Holm-corrected over the whole family;
* the pooled quadratic-kappa difference with a paired cluster-bootstrap CI.

Items of one prompt are never counted as independent evidence.
"""

from __future__ import annotations

from itertools import combinations
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.constants import CATEGORIES, DEFAULT_N_BOOT, DEFAULT_SEED, SCHEMA_VERSION, SIDES, label_column
from ..core.errors import DataError
from ..io.clusters import cluster_column, cluster_of_rows
from .calibration import calibrate_run, confusion_cells, join_human, max_or_nan
from .stats import bootstrap_totals, holm, kappa_from_confusion, mcnemar_test, none_if_nan, percentile_ci

if TYPE_CHECKING:
    import pandas as pd

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


def _pair_tests(a: pd.DataFrame, b: pd.DataFrame, threshold: int, n_boot: int, seed: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
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
        result = mcnemar_test((pa[known] >= threshold) == truth, (pb[known] >= threshold) == truth, clusters=clusters[known])
        tests.append({"scope": scope, **result})
    both = ~np.isnan(gold) & ~np.isnan(pred_a) & ~np.isnan(pred_b)
    g_known = np.where(both, gold, np.nan)
    cells = np.hstack([confusion_cells(g_known, np.where(both, pred_a, np.nan)), confusion_cells(g_known, np.where(both, pred_b, np.nan))])
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


def _run_row(run: Run, report: dict[str, Any]) -> dict[str, Any]:
    manifest = run.manifest
    counts = manifest.get("counts", {})
    total = sum(counts.values())
    row: dict[str, Any] = {
        "model": manifest.get("model"), "template_hash": manifest.get("template_hash"), "shots_hash": manifest.get("shots_hash"),
        "not_ok_rate": (total - counts.get("ok", 0)) / total if total else None,
        "billed_tokens": sum(v for k, v in manifest.get("tokens", {}).items() if k.startswith("billed")),
        "cost": (manifest.get("cost") or {}).get("billed"),
        "items_graded": int(counts.get("ok", 0)),
        "counts": {side: side_report["counts"] for side, side_report in report["targets"].items()},
        "sides": {},
    }
    for side, side_report in report["targets"].items():
        pooled = side_report["pooled"]
        row["sides"][side] = {
            "kappa_quadratic": pooled["kappa_quadratic"], "kappa_quadratic_ci": pooled["ci"]["kappa_quadratic"],
            "recall": pooled["detection"]["recall"], "recall_ci": pooled["ci"]["recall"],
            "fpr": pooled["detection"]["false_positive_rate"],
        }
    if "asymmetry" in report:
        row["recall_gap"] = report["asymmetry"]["overall"]["recall_gap"]
        row["recall_gap_ci"] = report["asymmetry"]["overall"]["recall_gap_ci"]
    return row


def compare(runs: list[Run], human: pd.DataFrame, *, threshold: int = 1, cluster: str | None = None,
            n_boot: int = DEFAULT_N_BOOT, seed: int = DEFAULT_SEED) -> dict[str, Any]:
    """Side-by-side agreement of ``runs`` with ``human``, and cluster-aware paired tests between runs.

    Args:
        runs: two or more loaded run folders graded on (some of) the same ids.
        human: pairs table with human labels.
        threshold: harmful when severity >= this.
        cluster: unit of analysis, as in :func:`harness.calibration.calibrate_run`.
        n_boot: bootstrap resamples for the CIs.
        seed: bootstrap seed.
    """
    if len(runs) < 2:
        raise DataError("compare needs at least two run folders")
    names = [r.path.name for r in runs]
    if len(set(names)) != len(names):
        names = [str(r.path) for r in runs]
    summary: dict[str, Any] = {}
    unit: dict[str, Any] = {}
    for name, run in zip(names, runs, strict=True):
        report = calibrate_run(run, human, threshold=threshold, cluster=cluster, n_boot=n_boot, seed=seed)
        summary[name] = _run_row(run, report)
        unit = unit or report["unit"]
    tests: list[dict[str, Any]] = []
    kappa_diffs: list[dict[str, Any]] = []
    for side in SIDES:
        arrays = {name: _side_arrays(run, human, side, cluster) for name, run in zip(names, runs, strict=True)}
        for a, b in combinations(names, 2):
            frame_a, frame_b = arrays[a], arrays[b]
            if frame_a is None or frame_b is None:
                continue
            side_tests, kappa = _pair_tests(frame_a, frame_b, threshold, n_boot, seed)
            tests += [{"a": a, "b": b, "side": side, **t} for t in side_tests]
            kappa_diffs.append({"a": a, "b": b, "side": side, **kappa})
    adjusted = holm({str(i): float(t["p_value"]) for i, t in enumerate(tests)})
    for i, test in enumerate(tests):
        test["p_holm"] = adjusted[str(i)]
    return {
        "threshold": threshold, "unit": unit, "runs": summary, "tests": tests, "kappa_diffs": kappa_diffs,
        "family": f"Holm over all {len(tests)} tests (run pairs x sides x scopes any/{'/'.join(CATEGORIES)})",
        "n_boot": n_boot, "seed": seed, "schema_version": SCHEMA_VERSION,
    }
