"""Choosing few-shot exemplars on a dev split, judged on a held-out test split.

The labeled pool is split by prompt cluster (the unit of analysis everywhere: ``prompt_id``, else
the prompt text) into exemplar pool / dev / test, seeded, so no prompt lands in two splits; no
exemplar's text appears in dev or test either. Candidate shot sets: random draws of k per side,
one stratified by category x severity, and greedy forward selection on dev. Every candidate
grades dev through the normal cached grading path; the one with the highest dev score is the
*selection* (dev scores after a search are optimistic: they are not evidence). The evidence is
the held-out test split, where the selection is graded beside zero-shot and the default shot
set with paired cluster-bootstrap CIs; it is recommended only where test says it is better, and
the paper's question gets its own answer: the prompt-response recall gap before (zero-shot)
and after the exemplars, with a paired CI of the change.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..analysis.calibration import calibrate_run, confusion_cells, join_human, side_labels
from ..analysis.intervals import Interval, percentile_ci
from ..analysis.stats import bootstrap_totals, detection_from_confusion, kappa_from_confusion, none_if_nan
from ..core.bounds import SEED, SHARE, bounded
from ..core.cells import is_missing
from ..core.constants import CATEGORIES, SCHEMA_VERSION, SIDES, label_column
from ..core.errors import ConfigError, DataError
from ..grading.endpoint import EndpointConfig
from ..grading.grade import grade
from ..grading.jobs import GradeSpec
from ..grading.shots import Shot, load_shots, write_shots
from ..grading.templates import default_shots_path
from ..io.clusters import cluster_column, cluster_of_rows, shuffled_clusters
from ..io.runs import Run, load_run
from ..results.calibration import Calibration
from ..results.common import Difference
from ..results.shots import DevCandidate, ShotSearch, TestSet
from ..steps.settings import ShotSearchSettings, split_fault

if TYPE_CHECKING:
    import pandas as pd


@bounded(dev_frac=SHARE, test_frac=SHARE, seed=SEED)
def split_pool(frame: pd.DataFrame, *, dev_frac: float, test_frac: float, seed: int,
               cluster: str | None = None) -> dict[str, pd.DataFrame]:
    """Split rows into ``pool``/``dev``/``test`` by prompt cluster (``cluster`` as everywhere), seeded."""
    fault = split_fault(dev_frac, test_frac)
    if fault:
        raise ConfigError(fault, param="test_frac")
    codes = cluster_of_rows(frame, cluster_column(frame.columns, cluster) or cluster_column(frame.columns, None))
    clusters = shuffled_clusters(codes, seed)
    n_dev = max(1, round(dev_frac * len(clusters)))
    n_test = max(1, round(test_frac * len(clusters)))
    if n_dev + n_test >= len(clusters):
        raise DataError(f"the pool has only {len(clusters)} prompts; too few to split into exemplar pool, dev and test")
    dev, test = np.isin(codes, clusters[:n_dev]), np.isin(codes, clusters[n_dev : n_dev + n_test])
    return {
        "pool": frame[~(dev | test)].reset_index(drop=True),
        "dev": frame[dev].reset_index(drop=True),
        "test": frame[test].reset_index(drop=True),
    }


def pool_texts(frame: pd.DataFrame) -> set[str]:
    return {v for side in SIDES if side in frame.columns for v in frame[side].tolist() if isinstance(v, str)}


def exemplar_candidates(pool: pd.DataFrame, held_out: set[str]) -> dict[str, list[Shot]]:
    """Every usable exemplar of the pool, per side (texts with all four labels known, none of them a dev or test
    text)."""
    out: dict[str, list[Shot]] = {side: [] for side in SIDES}
    seen: set[tuple[str, str]] = set()
    for side in SIDES:
        columns = [label_column(side, c) for c in CATEGORIES]
        if side not in pool.columns or not all(c in pool.columns for c in columns):
            continue
        for row in pool[["id", side, *columns]].itertuples(index=False, name=None):
            ident, text, *labels = row
            if (
                not isinstance(text, str)
                or any(is_missing(v) for v in labels)
                or (side, text) in seen
                or text in held_out
            ):
                continue
            seen.add((side, text))
            out[side].append(
                Shot(text, side, tuple(zip(CATEGORIES, map(int, labels), strict=True)), source_id=str(ident))
            )
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


def _score(report: Calibration) -> float:
    """Dev objective: mean pooled quadratic kappa over the sides graded (undefined counts 0)."""
    values = [t.pooled.kappa_quadratic or 0.0 for t in report.targets.values()]
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


def _paired_difference(a: pd.DataFrame, b: pd.DataFrame, *, n_boot: int, seed: int) -> Difference:
    """Objective of ``a`` minus ``b`` on the ids both graded, with a paired cluster-bootstrap CI."""
    shared = a.index.intersection(b.index)
    left, right = a.loc[shared], b.loc[shared]
    values = np.hstack([left.drop(columns="cluster").to_numpy(), right.drop(columns="cluster").to_numpy()])
    clusters = left["cluster"].to_numpy()
    point = _objective(values[:, :32].sum(axis=0)) - _objective(values[:, 32:].sum(axis=0))
    totals = bootstrap_totals(values, clusters=clusters, n_boot=n_boot, seed=seed)
    ci: Interval = [None, None]
    if totals.shape[0]:
        ci = percentile_ci(_objective(totals[:, :32]) - _objective(totals[:, 32:]))
    return Difference(
        diff=none_if_nan(float(point[0])), ci=ci, n_items=len(shared), n_clusters=int(np.unique(clusters).size)
    )


#: How the exemplar search splits the pool and which candidate sets it tries (``harness calibrate-shots``'s settings).
SearchSettings = ShotSearchSettings


@dataclass
class _Evaluation:
    """One shot set graded on one split: its score, calibration and per-item confusion cells."""

    name: str
    shots: int
    score: float
    report: Calibration
    cells: pd.DataFrame


class _Search:
    """Grades candidate shot sets on one split each, through the normal cached grading path."""

    def __init__(self, splits: dict[str, pd.DataFrame], spec: GradeSpec, endpoint: EndpointConfig, root: Path,
                 cache_dir: str | Path | None, cluster: str | None) -> None:
        self.splits, self.spec, self.endpoint, self.root = splits, spec, endpoint, root
        self.cache_dir, self.cluster = cache_dir, cluster

    def evaluate(self, name: str, shots: list[Shot], split: str) -> _Evaluation:
        shots_file = write_shots(shots, self.root / "shots" / f"{name}.jsonl") if shots else None
        run_dir = self.root / f"{split}-{name}"
        grade(self.splits[split], replace(self.spec, shots_path=str(shots_file) if shots_file else None), self.endpoint,
              run_dir=run_dir, cache_dir=self.cache_dir)
        run = load_run(run_dir)
        report = calibrate_run(run, self.splits[split], cluster=self.cluster, n_boot=0)
        return _Evaluation(name, len(shots), _score(report), report, _cells(run, self.splits[split], self.cluster))


def _dev_search(search: _Search, candidates: dict[str, list[Shot]], settings: SearchSettings,
                rng: random.Random) -> tuple[dict[str, _Evaluation], dict[str, list[Shot]]]:
    """Random, stratified and greedy candidate sets, each graded on dev."""
    sets: dict[str, list[Shot]] = {}
    for i in range(settings.n_random):
        sets[f"random{i + 1}"] = [
            s for side in SIDES for s in rng.sample(candidates[side], min(settings.k, len(candidates[side])))
        ]
    sets["stratified"] = _stratified(candidates, settings.k, rng)
    evaluated = {name: search.evaluate(name, shots, "dev") for name, shots in sets.items()}
    greedy: list[Shot] = []
    for step in range(settings.greedy_steps):
        trials: list[tuple[_Evaluation, list[Shot]]] = []
        for j in range(settings.greedy_candidates):
            side = SIDES[(step + j) % 2]
            pool = [s for s in candidates[side] if s not in greedy] or candidates[side]
            trial = [*greedy, rng.choice(pool)]
            trials.append((search.evaluate(f"greedy{step + 1}-{j + 1}", trial, "dev"), trial))
        for evaluation, trial in trials:
            evaluated[evaluation.name] = evaluation
            sets[evaluation.name] = trial
        greedy = max(trials, key=lambda t: t[0].score)[1]
    return evaluated, sets


def claim_search(run_root: str | Path, out: str | Path, *, inputs: list[tuple[str, Any]],
                 root_param: str = "`run_root`", out_param: str = "`out`") -> None:
    """Refuse, before any grading, a search whose chosen shots or ``shot_search.json`` would replace a file harness
    did not write, or one of its inputs (the pool, the default shots)."""
    from ..core.claims import Output, claim

    claim([Output(Path(out), param=out_param, kind="shots"),
           Output(Path(run_root), param=root_param, folder=True, names=(("shot_search.json", "result"),))],
          inputs=inputs)


def calibrate_shots(
    frame: pd.DataFrame,
    spec: GradeSpec,
    endpoint: EndpointConfig,
    *,
    run_root: str | Path,
    out: str | Path,
    settings: SearchSettings | None = None,
    cache_dir: str | Path | None = None,
    default_shots: str | None = None,
) -> ShotSearch:
    """Search shot sets on dev, report test metrics of zero-shot, default and chosen sets."""
    settings = settings or SearchSettings()
    claim_search(run_root, out, inputs=[("`default_shots`", default_shots), ("`shots_path`", spec.shots_path)])
    splits = split_pool(frame, dev_frac=settings.dev_frac, test_frac=settings.test_frac, seed=settings.seed,
                        cluster=settings.cluster)
    search = _Search(splits, spec, endpoint, Path(run_root), cache_dir, settings.cluster)
    candidates = exemplar_candidates(splits["pool"], pool_texts(splits["dev"]) | pool_texts(splits["test"]))
    evaluated, sets = _dev_search(search, candidates, settings, random.Random(settings.seed))
    winner = max(evaluated.values(), key=lambda e: (e.score, -e.shots))
    chosen = sets[winner.name]
    written = write_shots(chosen, out)
    dev_rows = _dev_rows(evaluated, winner, n_boot=settings.n_boot, seed=settings.seed)
    ties = [r.name for r in dev_rows if r.tie]
    close = [r.name for r in dev_rows if r.indistinguishable and not r.tie]
    default = load_shots(default_shots or default_shots_path())
    test = {
        "zero_shot": search.evaluate("zero", [], "test"),
        "default": search.evaluate("default", default, "test"),
        "chosen": search.evaluate(f"chosen-{winner.name}", chosen, "test"),
    }
    table = _test_rows(test, n_boot=settings.n_boot, seed=settings.seed)
    recommended, recommendation = recommend(winner.name, table)
    return ShotSearch(
        schema_version=SCHEMA_VERSION,
        splits={name: len(part) for name, part in splits.items()},
        test_ids=splits["test"]["id"].astype(str).tolist(),
        unit=test["chosen"].report.unit,
        dev=dev_rows,
        chosen=winner.name,
        ties=ties,
        indistinguishable=close,
        chosen_shots=str(written),
        test=table,
        verdict=_verdict(winner.name, len(dev_rows), ties, close, table),
        objective="mean over sides of pooled quadratic kappa",
        n_boot=settings.n_boot,
        recommended=recommended,
        recommendation=recommendation,
        gap_change=_gap_change(
            test["chosen"].cells, test["zero_shot"].cells, n_boot=settings.n_boot, seed=settings.seed
        ),
    )


def _dev_rows(evaluated: dict[str, _Evaluation], winner: _Evaluation, *, n_boot: int, seed: int) -> list[DevCandidate]:
    """Each dev candidate with the winner's paired advantage over it, and whether they tie or cannot be told apart."""
    rows = []
    for e in evaluated.values():
        if e is winner:
            rows.append(DevCandidate(name=e.name, shots=e.shots, score=e.score))
            continue
        difference = _paired_difference(winner.cells, e.cells, n_boot=n_boot, seed=seed)
        tie = e.score == winner.score
        low, high = difference.ci
        rows.append(DevCandidate(name=e.name, shots=e.shots, score=e.score, winner_minus_this=difference, tie=tie,
                                 indistinguishable=tie or (low is not None and high is not None and low <= 0 <= high)))
    return rows


def _test_rows(test: dict[str, _Evaluation], *, n_boot: int, seed: int) -> list[TestSet]:
    """Zero-shot, default and chosen on the held-out test prompts, each against the chosen set."""
    table = []
    for name, result in test.items():
        report = result.report
        row: dict[str, Any] = {}
        for side, side_report in report.targets.items():
            row[f"{side}_kappa_quadratic"] = side_report.pooled.kappa_quadratic
            row[f"{side}_recall"] = side_report.pooled.detection.recall if side_report.pooled.detection else None
        if report.asymmetry:
            row["recall_gap"] = report.asymmetry["overall"].recall_gap
        if name != "chosen":
            row["chosen_minus_this"] = _paired_difference(test["chosen"].cells, result.cells, n_boot=n_boot, seed=seed)
        table.append(TestSet(set=name, shots=result.shots, score=result.score, **row))
    return table


def _word(diff: Difference | None) -> str:
    """better / worse / not distinguishable, from a paired difference's CI."""
    if diff is None or diff.diff is None or diff.ci[0] is None or diff.ci[1] is None:
        return "no interval"
    return "better" if diff.ci[0] > 0 else "worse" if diff.ci[1] < 0 else "not distinguishable"


def _verdict(chosen: str, candidates: int, ties: list[str], close: list[str], test: list[TestSet]) -> str:
    """What dev says (a selection, not evidence) and what the held-out test says."""
    parts = [f"{chosen} scored highest on dev among {candidates} candidates (selected, so its dev score is optimistic)"]
    if ties:
        parts.append(f"it ties exactly with {', '.join(ties)} (kept: fewest shots, then first evaluated)")
    if close:
        parts.append(f"{len(close)} others are within its paired dev CI")
    for row in test:
        diff = row.chosen_minus_this
        if diff is None or diff.diff is None:
            continue
        low, high = diff.ci
        interval = f", 95% CI {low:+.3f} to {high:+.3f}" if low is not None and high is not None else ""
        parts.append(f"on held-out test, chosen vs {row.set}: {_word(diff)} ({diff.diff:+.3f}{interval})")
    return "; ".join(parts)


def recommend(chosen: str, test: list[TestSet]) -> tuple[str, str]:
    """Recommend the selection only where held-out test shows it better than every alternative; else keep the
    default set."""
    words = {row.set: _word(row.chosen_minus_this) for row in test if row.set != "chosen"}
    if words and all(w == "better" for w in words.values()):
        return "chosen", f"use the chosen set ({chosen}): better than {' and '.join(words)} on held-out test"
    worse = [name.replace("_", "-") for name, w in words.items() if w == "worse"]
    if worse:
        return (
            "default",
            f"do not use the chosen set: it is worse than {' and '.join(worse)} on held-out test; keep the default set",
        )
    even = [name.replace("_", "-") for name, w in words.items() if w != "better"]
    return "default", (
        f"not recommended: on held-out test the chosen set cannot be told apart from {' and '.join(even)}; "
        "keep the default set"
    )


def _gap_change(chosen: pd.DataFrame, zero: pd.DataFrame, *, n_boot: int, seed: int) -> Difference:
    """The paper's question: the prompt-response recall gap with the chosen exemplars minus zero-shot, on test."""
    shared = chosen.index.intersection(zero.index)
    left, right = chosen.loc[shared], zero.loc[shared]
    values = np.hstack([left.drop(columns="cluster").to_numpy(), right.drop(columns="cluster").to_numpy()])
    clusters = left["cluster"].to_numpy()

    def gap(totals: np.ndarray) -> np.ndarray:
        # .. x (cp, cr, zp, zr)
        recall = detection_from_confusion(totals.reshape(-1, 4, 4, 4), threshold_index=1)["recall"]
        return (recall[:, 0] - recall[:, 1]) - (recall[:, 2] - recall[:, 3])

    point = gap(values.sum(axis=0)[None, :])[0]
    totals = bootstrap_totals(values, clusters=clusters, n_boot=n_boot, seed=seed)
    ci: Interval = percentile_ci(gap(totals)) if totals.shape[0] else [None, None]
    return Difference(
        diff=none_if_nan(float(point)), ci=ci, n_items=len(shared), n_clusters=int(np.unique(clusters).size)
    )
