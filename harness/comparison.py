"""``compare``: several grade runs (models, templates, shot sets) against one human-labeled set.

Per run: quadratic kappa and detection recall/FPR per side, the prompt-response recall gap,
the unparsed rate and billed tokens. Between every two runs, on the items both graded: exact
McNemar on detection correctness (per id, side and category) and a paired bootstrap of the
pooled quadratic-kappa difference, with Holm correction across the pairs of runs.
"""

from __future__ import annotations

from itertools import combinations
from typing import TYPE_CHECKING, Any

import numpy as np

from .calibration import calibrate_run, quadratic_kappa
from .constants import CATEGORIES, DEFAULT_N_BOOT, DEFAULT_SEED, SIDES, label_column
from .errors import DataError
from .statistics import exact_mcnemar, holm, percentile_ci

if TYPE_CHECKING:
    import pandas as pd

    from .runs import Run


def _long(run: Run, human: pd.DataFrame) -> pd.DataFrame:
    """One row per (id, side, category) with the human and the grader label."""
    import pandas as pd

    from .runs import labels_wide

    wide = labels_wide(run.labels)
    parts = []
    for side in SIDES:
        for category in CATEGORIES:
            column = label_column(side, category)
            if column not in human.columns or f"pred_{column}" not in wide.columns:
                continue
            part = human[["id", column]].merge(wide[["id", f"pred_{column}"]], on="id", how="left")
            parts.append(pd.DataFrame({"id": part["id"], "side": side, "category": category,
                                       "gold": part[column].astype("Float64"), "pred": part[f"pred_{column}"].astype("Float64")}))
    if not parts:
        raise DataError(f"{run.path}: no side shared with the human labels")
    return pd.concat(parts, ignore_index=True)


def compare(runs: list[Run], human: pd.DataFrame, *, threshold: int = 1, n_boot: int = DEFAULT_N_BOOT,
            seed: int = DEFAULT_SEED) -> dict[str, Any]:
    """Side-by-side agreement of ``runs`` with ``human``, and paired tests between runs."""
    if len(runs) < 2:
        raise DataError("compare needs at least two run folders")
    names = [r.path.name for r in runs]
    if len(set(names)) != len(names):
        names = [str(r.path) for r in runs]
    summary: dict[str, Any] = {}
    longs: dict[str, pd.DataFrame] = {}
    for name, run in zip(names, runs, strict=True):
        report = calibrate_run(run, human, threshold=threshold, n_boot=0, seed=seed)
        manifest = run.manifest
        counts = manifest.get("counts", {})
        total = sum(counts.values()) or 1
        row: dict[str, Any] = {"model": manifest.get("model"), "template_hash": manifest.get("template_hash"),
                               "shots_hash": manifest.get("shots_hash"),
                               "not_ok_rate": (total - counts.get("ok", 0)) / total,
                               "billed_tokens": sum(v for k, v in manifest.get("tokens", {}).items() if k.startswith("billed"))}
        for side, side_report in report["targets"].items():
            pooled = side_report["pooled"]
            row[f"{side}_kappa_quadratic"] = pooled["kappa_quadratic"]
            row[f"{side}_recall"] = pooled["detection"]["recall"]
            row[f"{side}_fpr"] = pooled["detection"]["false_positive_rate"]
            row[f"{side}_n_unparsed"] = pooled["n_unparsed"]
        if "asymmetry" in report:
            row["recall_gap"] = report["asymmetry"]["overall"]["recall_gap"]
        summary[name] = row
        longs[name] = _long(run, human)
    pairs: list[dict[str, Any]] = []
    for a, b in combinations(names, 2):
        merged = longs[a].merge(longs[b], on=["id", "side", "category"], suffixes=("_a", "_b"))
        both = merged[merged["gold_a"].notna() & merged["pred_a"].notna() & merged["pred_b"].notna()]
        gold = both["gold_a"].to_numpy(dtype=float) >= threshold
        correct_a = (both["pred_a"].to_numpy(dtype=float) >= threshold) == gold
        correct_b = (both["pred_b"].to_numpy(dtype=float) >= threshold) == gold
        a_only, b_only = int((correct_a & ~correct_b).sum()), int((correct_b & ~correct_a).sum())
        g = both["gold_a"].to_numpy(dtype=float)
        pa, pb = both["pred_a"].to_numpy(dtype=float), both["pred_b"].to_numpy(dtype=float)
        ids = both["id"].astype(str).factorize()[0]
        diff = quadratic_kappa(g, pa) - quadratic_kappa(g, pb)
        rng = np.random.default_rng(seed)
        draws = []
        n_ids = int(ids.max()) + 1 if ids.size else 0
        for _ in range(n_boot if n_ids else 0):
            chosen = np.bincount(rng.integers(0, n_ids, n_ids), minlength=n_ids)[ids]
            rows = np.repeat(np.arange(ids.size), chosen)
            draws.append(quadratic_kappa(g[rows], pa[rows]) - quadratic_kappa(g[rows], pb[rows]))
        pair: dict[str, Any] = {
            "a": a, "b": b, "n_items": int(ids.size), "a_correct_only": a_only, "b_correct_only": b_only,
            "p_mcnemar": exact_mcnemar(a_only, b_only),
            "kappa_quadratic_diff": None if diff != diff else float(diff),
            "kappa_quadratic_diff_ci": percentile_ci(np.asarray(draws)) if draws else [None, None],
        }
        pairs.append(pair)
    adjusted = holm({f"{p['a']}|{p['b']}": float(p["p_mcnemar"]) for p in pairs})
    for item in pairs:
        item["p_holm"] = adjusted[f"{item['a']}|{item['b']}"]
    return {"threshold": threshold, "runs": summary, "pairs": pairs, "n_boot": n_boot, "seed": seed}
