"""Choosing few-shot exemplars on a dev split, judged on a held-out test split.

The labeled pool is split by prompt (``prompt_id`` if present, else ``id``) into exemplar
pool / dev / test, seeded, so no prompt lands in two splits and exemplars never come from dev
or test. Candidate shot sets: random draws of k per side, one stratified by category x
severity, and greedy forward selection on dev kappa. Every candidate grades dev through the
normal cached grading path; the winner (highest pooled quadratic kappa on dev, prompts and
responses together) is then graded on test beside zero-shot and the default shot set, so the
prompt/response asymmetry before and after calibration is one table.
"""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..analysis.calibration import calibrate_run, confusion_cells, join_human, side_labels
from ..analysis.stats import bootstrap_totals, kappa_from_confusion, none_if_nan, percentile_ci
from ..core.cells import is_missing
from ..core.constants import CATEGORIES, DEFAULT_N_BOOT, SCHEMA_VERSION, SIDES, label_column
from ..core.errors import DataError
from ..grading.endpoint import EndpointConfig
from ..grading.grade import GradeSpec, grade
from ..grading.shots import Shot, load_shots, write_shots
from ..grading.templates import prompts_root
from ..io.clusters import cluster_column, cluster_of_rows
from ..io.runs import Run, load_run

if TYPE_CHECKING:
    import pandas as pd


def default_shots_path() -> str:
    """The bundled default shot set (two mild exemplars per side)."""
    return str(prompts_root() / "default_shots.jsonl")


def split_pool(frame: pd.DataFrame, *, dev_frac: float, test_frac: float, seed: int) -> dict[str, pd.DataFrame]:
    """Split rows into ``pool``/``dev``/``test`` by prompt cluster, seeded."""
    if not (0 < dev_frac < 1 and 0 < test_frac < 1 and dev_frac + test_frac < 1):
        raise DataError(f"--dev-frac {dev_frac} and --test-frac {test_frac}: expected fractions in (0, 1) summing below 1")
    key = "prompt_id" if "prompt_id" in frame.columns else "id"
    clusters = sorted(frame[key].astype(str).unique())
    random.Random(seed).shuffle(clusters)
    n_dev = max(1, round(dev_frac * len(clusters)))
    n_test = max(1, round(test_frac * len(clusters)))
    if n_dev + n_test >= len(clusters):
        raise DataError(f"the pool has only {len(clusters)} prompts; too few to split into exemplar pool, dev and test")
    dev, test = set(clusters[:n_dev]), set(clusters[n_dev : n_dev + n_test])
    keys = frame[key].astype(str)
    return {
        "pool": frame[~keys.isin(dev | test)].reset_index(drop=True),
        "dev": frame[keys.isin(dev)].reset_index(drop=True),
        "test": frame[keys.isin(test)].reset_index(drop=True),
    }


def _candidates(pool: pd.DataFrame) -> dict[str, list[Shot]]:
    """Every usable exemplar of the pool, per side (texts with all four labels known)."""
    out: dict[str, list[Shot]] = {side: [] for side in SIDES}
    seen: set[tuple[str, str]] = set()
    for side in SIDES:
        columns = [label_column(side, c) for c in CATEGORIES]
        if side not in pool.columns or not all(c in pool.columns for c in columns):
            continue
        for row in pool[["id", side, *columns]].itertuples(index=False, name=None):
            ident, text, *labels = row
            if not isinstance(text, str) or any(is_missing(v) for v in labels) or (side, text) in seen:
                continue
            seen.add((side, text))
            out[side].append(Shot(text, side, tuple(zip(CATEGORIES, map(int, labels), strict=True)), source_id=str(ident)))
    if not out["prompt"] and not out["response"]:
        raise DataError("the exemplar pool has no text with all four labels known on either side")
    return out


def _stratified(candidates: dict[str, list[Shot]], k: int, rng: random.Random) -> list[Shot]:
    chosen: list[Shot] = []
    for shots in candidates.values():
        picked: list[Shot] = []
        cells = [(c, s) for s in (3, 2, 1) for c in CATEGORIES]
        rng.shuffle(cells)
        for category, severity in cells:
            options = [s for s in shots if s.label(category) == severity and s not in picked]
            if options and len(picked) < max(1, k - 1):
                picked.append(rng.choice(options))
        safe = [s for s in shots if all(v == 0 for _, v in s.labels) and s not in picked]
        if safe and len(picked) < k:
            picked.append(rng.choice(safe))
        chosen += picked[:k]
    return chosen


def _score(report: dict[str, Any]) -> float:
    """Dev objective: mean pooled quadratic kappa over the sides graded (undefined counts 0)."""
    values = [t["pooled"]["kappa_quadratic"] or 0.0 for t in report["targets"].values()]
    return sum(values) / len(values) if values else 0.0


def _cells(run: Run, frame: pd.DataFrame, cluster: str | None) -> pd.DataFrame:
    """Per id: its cluster and pooled confusion cells of each side (prompt 16, response 16)."""
    import pandas as pd

    joined = join_human(run, frame)
    column = cluster_column(joined.columns, cluster)
    parts = []
    for side in SIDES:
        for c in CATEGORIES:
            if f"pred_{label_column(side, c)}" not in joined.columns:
                joined[f"pred_{label_column(side, c)}"] = np.nan
        parts.append(confusion_cells(side_labels(joined, "", side), side_labels(joined, "pred_", side)))
    out = pd.DataFrame(np.hstack(parts), index=joined["id"].astype(str))
    out.insert(0, "cluster", cluster_of_rows(joined, column))
    return out.sort_index()


def _objective(totals: np.ndarray) -> np.ndarray:
    """Mean over sides of pooled quadratic kappa (undefined counts 0), per row of totals (.. x 32)."""
    kappas = np.nan_to_num(kappa_from_confusion(totals.reshape(-1, 2, 4, 4), weights="quadratic"), nan=0.0)
    return np.asarray(kappas.mean(axis=1))


def _paired_difference(a: pd.DataFrame, b: pd.DataFrame, *, n_boot: int, seed: int) -> dict[str, Any]:
    """Objective of ``a`` minus ``b`` on the ids both graded, with a paired cluster-bootstrap CI."""
    shared = a.index.intersection(b.index)
    left, right = a.loc[shared], b.loc[shared]
    values = np.hstack([left.drop(columns="cluster").to_numpy(), right.drop(columns="cluster").to_numpy()])
    clusters = left["cluster"].to_numpy()
    point = _objective(values[:, :32].sum(axis=0)) - _objective(values[:, 32:].sum(axis=0))
    totals = bootstrap_totals(values, clusters=clusters, n_boot=n_boot, seed=seed)
    ci = percentile_ci(_objective(totals[:, :32]) - _objective(totals[:, 32:])) if totals.shape[0] else [None, None]
    return {"diff": none_if_nan(float(point[0])), "ci": ci, "n_items": len(shared),
            "n_clusters": int(np.unique(clusters).size)}


def calibrate_shots(
    frame: pd.DataFrame,
    spec: GradeSpec,
    endpoint: EndpointConfig,
    *,
    run_root: str | Path,
    out: str | Path,
    k: int = 4,
    n_random: int = 3,
    greedy_steps: int = 2,
    greedy_candidates: int = 3,
    dev_frac: float = 0.3,
    test_frac: float = 0.3,
    seed: int = 20260709,
    cache_dir: str | Path | None = None,
    default_shots: str | None = None,
    cluster: str | None = None,
    n_boot: int = DEFAULT_N_BOOT,
) -> dict[str, Any]:
    """Search shot sets on dev, report test metrics of zero-shot, default and chosen sets."""
    if k < 1:
        raise DataError(f"--k {k}: expected an integer >= 1")
    root = Path(run_root)
    splits = split_pool(frame, dev_frac=dev_frac, test_frac=test_frac, seed=seed)
    candidates = _candidates(splits["pool"])
    rng = random.Random(seed)
    evaluated: dict[str, dict[str, Any]] = {}

    def evaluate(name: str, shots: list[Shot], split: str) -> dict[str, Any]:
        shots_file = write_shots(shots, root / "shots" / f"{name}.jsonl") if shots else None
        run_dir = root / f"{split}-{name}"
        grade(splits[split], replace(spec, shots_path=str(shots_file) if shots_file else None), endpoint,
              run_dir=run_dir, cache_dir=cache_dir)
        run = load_run(run_dir)
        report = calibrate_run(run, splits[split], cluster=cluster, n_boot=0)
        return {"name": name, "shots": len(shots), "score": _score(report), "report": report,
                "cells": _cells(run, splits[split], cluster)}

    sets: dict[str, list[Shot]] = {}
    for i in range(n_random):
        sets[f"random{i + 1}"] = [s for side in SIDES for s in rng.sample(candidates[side], min(k, len(candidates[side])))]
    sets["stratified"] = _stratified(candidates, k, rng)
    for name, shots in sets.items():
        evaluated[name] = evaluate(name, shots, "dev")
    greedy: list[Shot] = []
    for step in range(greedy_steps):
        trials: list[tuple[dict[str, Any], list[Shot]]] = []
        for j in range(greedy_candidates):
            side = SIDES[(step + j) % 2]
            pool = [s for s in candidates[side] if s not in greedy] or candidates[side]
            trial = [*greedy, rng.choice(pool)]
            trials.append((evaluate(f"greedy{step + 1}-{j + 1}", trial, "dev"), trial))
        for evaluation, trial in trials:
            evaluated[evaluation["name"]] = evaluation
            sets[evaluation["name"]] = trial
        greedy = max(trials, key=lambda t: t[0]["score"])[1]
    winner = max(evaluated.values(), key=lambda e: (e["score"], -e["shots"]))
    chosen = sets[winner["name"]]
    written = write_shots(chosen, out)
    dev_rows = _dev_rows(evaluated, winner, n_boot=n_boot, seed=seed)
    ties = [r["name"] for r in dev_rows if r.get("tie")]
    close = [r["name"] for r in dev_rows if r.get("indistinguishable") and not r.get("tie")]
    default = load_shots(default_shots or default_shots_path())
    test = {
        "zero_shot": evaluate("zero", [], "test"),
        "default": evaluate("default", default, "test"),
        "chosen": evaluate(f"chosen-{winner['name']}", chosen, "test"),
    }
    table = _test_rows(test, n_boot=n_boot, seed=seed)
    return {
        "schema_version": SCHEMA_VERSION,
        "splits": {name: len(part) for name, part in splits.items()},
        "unit": test["chosen"]["report"]["unit"],
        "dev": dev_rows,
        "chosen": winner["name"],
        "ties": ties,
        "indistinguishable": close,
        "chosen_shots": str(written),
        "test": table,
        "verdict": _verdict(winner["name"], ties, close, table),
        "objective": "mean over sides of pooled quadratic kappa",
        "n_boot": n_boot,
    }


def _dev_rows(evaluated: dict[str, dict[str, Any]], winner: dict[str, Any], *, n_boot: int, seed: int) -> list[dict[str, Any]]:
    """Each dev candidate with the winner's paired advantage over it, and whether they tie or cannot be told apart."""
    rows = []
    for e in evaluated.values():
        row: dict[str, Any] = {"name": e["name"], "shots": e["shots"], "score": e["score"]}
        if e is not winner:
            row["winner_minus_this"] = _paired_difference(winner["cells"], e["cells"], n_boot=n_boot, seed=seed)
            row["tie"] = e["score"] == winner["score"]
            low, high = row["winner_minus_this"]["ci"]
            row["indistinguishable"] = row["tie"] or (low is not None and high is not None and low <= 0 <= high)
        rows.append(row)
    return rows


def _test_rows(test: dict[str, dict[str, Any]], *, n_boot: int, seed: int) -> list[dict[str, Any]]:
    """Zero-shot, default and chosen on the held-out test prompts, each against the chosen set."""
    table = []
    for name, result in test.items():
        report = result["report"]
        row: dict[str, Any] = {"set": name, "shots": result["shots"], "score": result["score"]}
        for side, side_report in report["targets"].items():
            row[f"{side}_kappa_quadratic"] = side_report["pooled"]["kappa_quadratic"]
            row[f"{side}_recall"] = side_report["pooled"]["detection"]["recall"]
        if "asymmetry" in report:
            row["recall_gap"] = report["asymmetry"]["overall"]["recall_gap"]
        if name != "chosen":
            row["chosen_minus_this"] = _paired_difference(test["chosen"]["cells"], result["cells"], n_boot=n_boot, seed=seed)
        table.append(row)
    return table


def _verdict(chosen: str, ties: list[str], close: list[str], test: list[dict[str, Any]]) -> str:
    """One honest sentence: was there a winner on dev, and does it beat the others on test?"""
    parts = []
    if ties:
        parts.append(f"on dev {chosen} ties exactly with {', '.join(ties)} (kept: fewest shots, then first evaluated)")
    if close:
        parts.append(f"on dev {chosen} cannot be told apart from {', '.join(close)} (paired 95% CI of the difference includes 0)")
    if not ties and not close:
        parts.append(f"on dev {chosen} beats every other candidate (paired 95% CIs exclude 0)")
    for row in test:
        diff = row.get("chosen_minus_this")
        if not diff or diff["diff"] is None:
            continue
        low, high = diff["ci"]
        if low is None or high is None:
            word = "no interval"
        elif low > 0:
            word = "better"
        elif high < 0:
            word = "worse"
        else:
            word = "not distinguishable"
        parts.append(f"on test, chosen vs {row['set']}: {word} ({diff['diff']:+.3f}, 95% CI {low:+.3f} to {high:+.3f})"
                     if low is not None and high is not None else f"on test, chosen vs {row['set']}: {word}")
    return "; ".join(parts)
