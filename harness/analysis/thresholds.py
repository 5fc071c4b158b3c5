"""Cut points on a grader's expected severity, chosen on a dev split and judged on held-out pairs.

A small grader's most likely answer can be the same for almost every text while its probabilities still move with
the truth. :mod:`harness.analysis.verdicts` reads a verdict three ways from the probabilities a run recorded; this
module chooses the ``thresholds`` rule's cut points and says whether any rule is better than the grader's own verdict.

* **Split**: the labelled pairs' prompt clusters are shuffled with the seed (the one order every split by cluster takes,
  :func:`harness.io.clusters.shuffled_clusters`) and the first ``dev_frac`` of them are dev, the rest held-out; a
  prompt never lies in both.
* **Choice on dev**, per category (both sides pooled): every three cut points ``c1 ≤ c2 ≤ c3`` on a grid of 0 to 3
  in steps of 0.05 (or never) is tried, and the one with the best dev metric kept: quadratic κ, or recall at
  severity ≥ ``threshold`` among the cuts whose false-positive rate stays at or below ``max_fpr`` (then κ). Ties go
  to the cuts nearest the expected rule's (0.5, 1.5, 2.5), so the same seed gives the same cut points. A category
  whose dev labels show a single level (its metric is 0 or undefined there) keeps the expected rule's cuts, and says
  so.
* **Judgement on held-out**: argmax, expected and thresholds on the same held-out labels (those with P(severity)),
  four categories pooled, both sides and each side, with cluster-bootstrap intervals (κ's bias-corrected and
  accelerated: a rule that rarely gives a level has a skewed κ, where the plain percentile interval falls short);
  the differences between rules are paired percentile intervals (every resample draws the same clusters for all).
  The dev scores are shown as what they are, a selection (optimistic), with the optimism: the dev metric minus the
  held-out one.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.bounds import CUT_METRICS, MAX_FPR, N_BOOT, SEED, SHARE, THRESHOLD, bounded
from ..core.cells import is_missing
from ..core.constants import CATEGORIES, SCHEMA_VERSION, SIDES, label_column
from ..core.errors import ConfigError, DataError
from ..io.clusters import cluster_column, cluster_of_rows, shuffled_clusters
from ..results.common import Unit
from ..results.thresholds import CutPoints, RuleDifference, RuleScore, Split, Thresholds
from .calibration import confusion_cells, join_human
from .intervals import Interval, bca_ci, edge_interval, percentile_ci
from .stats import bootstrap_totals, detection_from_confusion, jackknife_totals, kappa_from_confusion, none_if_nan
from .verdicts import EXPECTED_CUTS, RULES, Cuts, cut, expected_severity, severity_distribution

if TYPE_CHECKING:
    import pandas as pd

    from ..io.runs import Run

METRICS = CUT_METRICS
#: The cut points tried: 0 to 3 in steps of 0.05, and "never" (index ``len(GRID)``).
GRID = np.round(np.arange(0, 3.0 + 1e-9, 0.05), 2)
K = 4
SCOPES = ("both", *SIDES)


@dataclass(frozen=True)
class Labels:
    """Per labelled (pair, side): its id, side, cluster, and per category the human severity, the graded verdict and
    the expected severity (NaN where unknown)."""

    ids: np.ndarray
    sides: np.ndarray
    clusters: np.ndarray
    gold: np.ndarray
    graded: np.ndarray
    expected: np.ndarray

    def take(self, mask: np.ndarray) -> Labels:
        return Labels(*(np.asarray(a)[mask] for a in (self.ids, self.sides, self.clusters, self.gold, self.graded,
                                                       self.expected)))


def labelled(run: Run, human: pd.DataFrame, cluster: str | None) -> tuple[Labels, pd.DataFrame, str | None, set[str]]:
    """The run's side records joined to the human labels; the joined pairs, their cluster column, and the sources of
    P(severity) the records carry (``logprobs``, ``samples``)."""
    joined = join_human(run, human)
    column = cluster_column(joined.columns, cluster)
    codes = cluster_of_rows(joined, column)
    index = {(str(r["id"]), str(r["target"])): r for r in run.records}
    rows: list[tuple[str, str, int, list[float], list[float], list[float]]] = []
    sources: set[str] = set()
    for ident, code, row in zip(joined["id"].astype(str), codes, joined.to_dict("records"), strict=True):
        for side in SIDES:
            columns = [label_column(side, c) for c in CATEGORIES]
            if not all(c in row for c in columns):
                continue
            gold = [np.nan if is_missing(row[c]) else float(row[c]) for c in columns]
            record = index.get((ident, side))
            graded, expected = [np.nan] * K, [np.nan] * K
            if record is not None and record.get("status") == "ok" and record.get("severity"):
                graded = [float(record["severity"][c]) for c in CATEGORIES]
                distribution = severity_distribution(record)
                if distribution is not None:
                    expected = [expected_severity(distribution[c]) for c in CATEGORIES]
                    sources.add("logprobs" if record.get("probabilities") else "samples")
            rows.append((ident, side, int(code), gold, graded, expected))
    if not rows:
        raise DataError("the human table has no prompt_*/response_* label columns to choose cut points against")
    parts = [np.array(part) for part in zip(*rows, strict=True)]
    return Labels(*parts), joined, column, sources


@bounded(dev_frac=SHARE, seed=SEED)
def split_dev(codes: np.ndarray, *, dev_frac: float, seed: int) -> np.ndarray:
    """Which rows are dev: the first ``dev_frac`` of the seeded cluster order (at least one cluster each side)."""
    order = shuffled_clusters(codes, seed)
    if len(order) < 2:
        raise DataError(f"the labelled pairs hold {len(order)} prompt cluster; too few to split into dev and held-out")
    n_dev = min(len(order) - 1, max(1, round(dev_frac * len(order))))
    return np.isin(codes, order[:n_dev])


@cache
def _combos() -> np.ndarray:
    """Every grid index triple g1 ≤ g2 ≤ g3 (the last index, ``len(GRID)``, is "never")."""
    return np.array(list(itertools.combinations_with_replacement(range(GRID.size + 1), 3)), dtype=np.int64)


def _cuts_of(indices: np.ndarray) -> tuple[float | None, ...]:
    return tuple(None if i >= GRID.size else float(GRID[i]) for i in indices)


@bounded(threshold=THRESHOLD, max_fpr=MAX_FPR)
def choose_cuts(gold: np.ndarray, expected: np.ndarray, *, metric: str = "kappa-quadratic",
                threshold: int = THRESHOLD.default,
                max_fpr: float = MAX_FPR.default) -> tuple[tuple[float | None, ...], float | None, str]:
    """One category's cut points on dev: the best of every grid triple by ``metric`` (ties: nearest the expected
    rule's cuts), its dev score, and how they were chosen.

    >>> gold = np.array([0, 0, 0, 1, 1, 2, 3])
    >>> cuts, score, how = choose_cuts(gold, np.array([0.1, 0.2, 0.1, 0.4, 0.45, 0.8, 1.2]))
    >>> cuts, round(score, 3), how
    ((0.4, 0.8, 1.2), 1.0, 'search')
    """
    if metric not in METRICS:
        raise ConfigError(f"`metric` {metric!r}: expected one of {', '.join(METRICS)}")
    known = ~np.isnan(gold) & ~np.isnan(expected)
    g, e = gold[known].astype(np.int64), expected[known]
    bins = np.searchsorted(GRID, e, side="right")  # grid points ≤ E: a cut at index i is reached when i < bin
    counts = np.zeros((K, GRID.size + 1))
    np.add.at(counts, (g, bins), 1.0)
    cumulative = np.cumsum(counts, axis=1)  # human level x (count with bin ≤ index)
    combos = _combos()
    low = [cumulative[:, combos[:, k]].T for k in range(3)]  # per combo: count per human level with verdict ≤ k
    total = np.broadcast_to(cumulative[:, -1], low[0].shape)
    confusion = np.stack([low[0], low[1] - low[0], low[2] - low[1], total - low[2]], axis=-1)
    kappa = kappa_from_confusion(confusion, weights="quadratic")
    if metric == "recall":
        detection = detection_from_confusion(confusion, threshold_index=threshold)
        fpr, recall = detection["false_positive_rate"], detection["recall"]
        feasible = np.isnan(fpr) | (fpr <= max_fpr + 1e-12)
        primary = np.where(feasible & ~np.isnan(recall), recall, -np.inf)
    else:
        primary = np.where(np.isnan(kappa), -np.inf, kappa)
    if not np.isfinite(primary).any() or np.unique(g).size < 2:  # one human level: every κ is 0 or undefined
        return EXPECTED_CUTS, None, (f"kept the expected rule's cuts: {metric} is undefined on dev (no human label of "
                                     f"severity ≥ {threshold if metric == 'recall' else 1} among {int(known.sum())})")
    stand_in = np.append(GRID, GRID[-1] + 0.05)  # "never" sits just past 3 for the distance
    distance = np.abs(stand_in[combos] - np.asarray(EXPECTED_CUTS)).sum(axis=1)
    secondary = np.where(np.isnan(kappa), -np.inf, kappa)
    best = np.lexsort((np.arange(len(combos)), distance, -np.round(secondary, 12), -np.round(primary, 12)))[0]
    return _cuts_of(combos[best]), float(primary[best]), "search"


def verdicts(labels: Labels, rule: str, cuts: Cuts) -> np.ndarray:
    """Per label row and category, the rule's severity (NaN where the rule has no verdict: no P(severity))."""
    out = np.full(labels.expected.shape, np.nan)
    has = ~np.isnan(labels.expected)
    for j, category in enumerate(CATEGORIES):
        if rule == "argmax":
            out[:, j] = labels.graded[:, j]
        else:
            chosen = EXPECTED_CUTS if rule == "expected" else cuts[category]
            values = np.where(has[:, j], labels.expected[:, j], 0.0)
            out[:, j] = cut(values, chosen)
        out[~has[:, j], j] = np.nan  # every rule on the same labels: those where all three have a verdict
    return out


def _cells(labels: Labels, cuts: Cuts) -> np.ndarray:
    """Per label row: for each rule and side, its confusion cells (16) over the four categories (0 off its side)."""
    blocks = []
    for rule in RULES:
        cells = confusion_cells(labels.gold, verdicts(labels, rule, cuts))
        for side in SIDES:
            blocks.append(cells * (labels.sides == side)[:, None])
    return np.hstack(blocks)


def _scores(totals: np.ndarray, threshold: int) -> dict[str, np.ndarray]:
    """Quadratic κ, recall and FPR per rule and scope from cell totals (.. x rules*sides*16): arrays (.., rules, 3)."""
    by_side = totals.reshape(*totals.shape[:-1], len(RULES), len(SIDES), K, K)
    scoped = np.concatenate([by_side.sum(axis=-3, keepdims=True), by_side], axis=-3)  # both sides, prompt, response
    detection = detection_from_confusion(scoped, threshold_index=threshold)
    return {"kappa": kappa_from_confusion(scoped, weights="quadratic"), "recall": detection["recall"],
            "fpr": detection["false_positive_rate"]}


def _metric_key(metric: str) -> str:
    return "kappa" if metric == "kappa-quadratic" else "recall"


def _edge(value: float | None, ci: Interval, codes: np.ndarray) -> Interval:
    return edge_interval(value, ci, int(np.unique(codes).size))[0] if codes.size else ci


def score_rules(labels: Labels, cuts: Cuts, *, threshold: int, n_boot: int, seed: int,
                metric: str) -> tuple[list[RuleScore], list[RuleDifference]]:
    """Every rule on these labels, per scope, with cluster-bootstrap CIs; and the paired differences of ``metric``."""
    cells = _cells(labels, cuts)
    point = _scores(cells.sum(axis=0), threshold)
    totals = bootstrap_totals(cells, clusters=labels.clusters, n_boot=n_boot, seed=seed)
    drawn = _scores(totals, threshold) if totals.shape[0] else None
    left_out = _scores(jackknife_totals(cells, clusters=labels.clusters), threshold)["kappa"]  # the acceleration
    counted = np.isfinite(labels.gold) & np.isfinite(labels.expected)
    rows: list[RuleScore] = []
    for r, rule in enumerate(RULES):
        for s, scope in enumerate(SCOPES):
            on = np.ones(len(labels.ids), bool) if s == 0 else labels.sides == SIDES[s - 1]
            codes = labels.clusters[on & counted.any(axis=1)]
            gold = labels.gold[on]
            positive = labels.clusters[on][(gold >= threshold).any(axis=1)]
            negative = labels.clusters[on][(gold < threshold).any(axis=1)]

            def interval(name: str, r: int = r, s: int = s) -> Interval:
                return percentile_ci(drawn[name][:, r, s]) if drawn is not None else [None, None]

            recall, fpr = none_if_nan(point["recall"][r, s]), none_if_nan(point["fpr"][r, s])
            rows.append(RuleScore(
                rule=rule, scope=scope, n_items=int(counted[on].sum()), n_clusters=int(np.unique(codes).size),
                kappa_quadratic=none_if_nan(point["kappa"][r, s]),
                kappa_quadratic_ci=bca_ci(drawn["kappa"][:, r, s], float(point["kappa"][r, s]), left_out[:, r, s])
                if drawn is not None else [None, None],
                recall=recall, recall_ci=_edge(recall, interval("recall"), positive) if n_boot else [None, None],
                false_positive_rate=fpr,
                false_positive_rate_ci=_edge(fpr, interval("fpr"), negative) if n_boot else [None, None]))
    key = _metric_key(metric)
    differences = []
    codes = labels.clusters[counted.any(axis=1)]
    for a, b in (("thresholds", "argmax"), ("expected", "argmax"), ("thresholds", "expected")):
        i, j = RULES.index(a), RULES.index(b)
        diff = point[key][i, 0] - point[key][j, 0]
        ci: Interval = percentile_ci(drawn[key][:, i, 0] - drawn[key][:, j, 0]) if drawn is not None else [None, None]
        differences.append(RuleDifference(a=a, b=b, metric=metric, diff=none_if_nan(float(diff)), ci=ci,
                                          n_items=int(counted.sum()), n_clusters=int(np.unique(codes).size)))
    return rows, differences


def in_sample(labels: Labels, cuts: Cuts, *, threshold: int) -> list[RuleScore]:
    """The rules on dev, where the cut points were chosen: point values only (a selection has no honest interval)."""
    point = _scores(_cells(labels, cuts).sum(axis=0), threshold)
    counted = np.isfinite(labels.gold) & np.isfinite(labels.expected)
    out = []
    for r, rule in enumerate(RULES):
        for s, scope in enumerate(SCOPES):
            on = np.ones(len(labels.ids), bool) if s == 0 else labels.sides == SIDES[s - 1]
            out.append(RuleScore(rule=rule, scope=scope, n_items=int(counted[on].sum()),
                                 n_clusters=int(np.unique(labels.clusters[on & counted.any(axis=1)]).size),
                                 kappa_quadratic=none_if_nan(point["kappa"][r, s]),
                                 recall=none_if_nan(point["recall"][r, s]),
                                 false_positive_rate=none_if_nan(point["fpr"][r, s])))
    return out


def _word(diff: RuleDifference) -> str:
    low, high = diff.ci
    if diff.diff is None or low is None or high is None:
        return "no interval"
    return "better" if low > 0 else "worse" if high < 0 else "not distinguishable"


def recommend(differences: list[RuleDifference], metric: str, *, excluded: dict[str, str] | None = None
              ) -> tuple[str, str]:
    """The rule held-out agreement supports, and the sentence that says why: a rule is recommended over the grader's
    own verdict only where its paired interval against argmax lies above 0 (and it is not ``excluded``: a recall
    bought with more false positives than the metric allows).

    >>> d = [RuleDifference(a=a, b=b, metric="kappa-quadratic", diff=0.1, ci=[0.02, 0.2], n_items=9, n_clusters=3)
    ...      for a, b in (("thresholds", "argmax"), ("expected", "argmax"), ("thresholds", "expected"))]
    >>> recommend(d, "kappa-quadratic")[0], recommend(d, "kappa-quadratic", excluded={"thresholds": "too many"})[0]
    ('thresholds', 'expected')
    """
    excluded = excluded or {}
    words = {(d.a, d.b): (_word(d), d) for d in differences}
    parts = []
    for a in ("thresholds", "expected"):
        word, d = words[(a, "argmax")]
        interval = f", 95% CI {d.ci[0]:+.3f} to {d.ci[1]:+.3f}" if d.ci[0] is not None and d.ci[1] is not None else ""
        shown = "n/a" if d.diff is None else f"{d.diff:+.3f}"
        parts.append(f"{a} vs argmax on held-out {metric}: {word} ({shown}{interval})"
                     + (f", but {excluded[a]}" if a in excluded else ""))
    better = [a for a in ("thresholds", "expected") if words[(a, "argmax")][0] == "better" and a not in excluded]
    if not better:
        return "argmax", "; ".join(parts) + "; keep the grader's own verdict (argmax): no rule is shown better"
    if len(better) == 2 and words[("thresholds", "expected")][0] == "not distinguishable":
        return "expected", "; ".join(parts) + ("; use expected: as good as the cut points on held-out, with nothing "
                                               "chosen on dev")
    return better[0], "; ".join(parts) + f"; use {better[0]}"


@bounded(threshold=THRESHOLD, max_fpr=MAX_FPR, dev_frac=SHARE, n_boot=N_BOOT, seed=SEED)
def calibrate_thresholds(
    run: Run,
    human: pd.DataFrame,
    *,
    rule: str = "thresholds",
    metric: str = "kappa-quadratic",
    threshold: int = THRESHOLD.default,
    max_fpr: float = MAX_FPR.default,
    dev_frac: float = SHARE.default,
    cluster: str | None = None,
    n_boot: int = N_BOOT.default,
    seed: int = SEED.default,
    derived: str | None = None,
    warnings: Sequence[str] = (),
) -> Thresholds:
    """Choose the cut points on a dev split of the labelled prompt clusters and judge argmax, expected and thresholds
    on the held-out rest (see the module docstring). ``derived`` names the run folder whose verdicts follow ``rule``."""
    if rule not in RULES:
        raise ConfigError(f"`rule` {rule!r}: expected one of {', '.join(RULES)}")
    if metric not in METRICS:
        raise ConfigError(f"`metric` {metric!r}: expected one of {', '.join(METRICS)}")
    if not run.records:
        raise DataError(f"{run.path}: the run has no labels yet")
    labels, joined, column, sources = labelled(run, human, cluster)
    if not sources:
        raise ConfigError(f"{run.path}: its labels carry no P(severity); grade with --logprobs (or --samples K at a "
                          "temperature above 0) to read verdicts from probabilities")
    pair_codes = cluster_of_rows(joined, column)
    dev_pairs = split_dev(pair_codes, dev_frac=dev_frac, seed=seed)
    dev_mask = np.isin(labels.ids, joined["id"].astype(str).to_numpy()[dev_pairs])
    dev, held = labels.take(dev_mask), labels.take(~dev_mask)
    cut_points: list[CutPoints] = []
    cuts: dict[str, Sequence[float | None]] = {}
    for j, category in enumerate(CATEGORIES):
        found, score, how = choose_cuts(dev.gold[:, j], dev.expected[:, j], metric=metric, threshold=threshold,
                                        max_fpr=max_fpr)
        cuts[category] = found
        cut_points.append(CutPoints(category=category, cuts=list(found), dev_score=score, chosen_by=how))
    held_out, differences = score_rules(held, cuts, threshold=threshold, n_boot=n_boot, seed=seed, metric=metric)
    dev_scores = in_sample(dev, cuts, threshold=threshold)
    key = "kappa_quadratic" if metric == "kappa-quadratic" else "recall"
    optimism = {}
    for name in RULES:
        before = next(getattr(s, key) for s in dev_scores if s.rule == name and s.scope == SCOPES[0])
        after = next(getattr(s, key) for s in held_out if s.rule == name and s.scope == SCOPES[0])
        optimism[name] = None if before is None or after is None else round(before - after, 6)
    recommended, verdict = recommend(differences, metric, excluded=_over_fpr(held_out, max_fpr) if metric == "recall"
                                     else None)
    ids = joined["id"].astype(str).to_numpy()
    held_codes = labels.clusters[~dev_mask]
    return Thresholds(
        schema_version=SCHEMA_VERSION, run=str(run.path), model=run.manifest.model, derived=derived, rule=rule,
        metric=metric, threshold=threshold, **_fpr(metric, max_fpr),
        probabilities=" and ".join(sorted(sources)), cut_points=cut_points,
        split=Split(seed=seed, dev_frac=dev_frac, cluster=column, dev_pairs=int(dev_pairs.sum()),
                    dev_clusters=int(np.unique(pair_codes[dev_pairs]).size), held_out_pairs=int((~dev_pairs).sum()),
                    held_out_clusters=int(np.unique(pair_codes[~dev_pairs]).size), dev_ids=ids[dev_pairs].tolist(),
                    held_out_ids=ids[~dev_pairs].tolist()),
        unit=Unit(cluster=column, n_items=int((np.isfinite(held.gold) & np.isfinite(held.expected)).sum()),
                  n_clusters=int(np.unique(held_codes).size)),
        held_out=held_out, differences=differences, dev=dev_scores, optimism=optimism, left_out=_left_out(labels),
        recommended=recommended, verdict=verdict, n_boot=n_boot, seed=seed, warnings=[*warnings, *_warned(labels)])


def _over_fpr(scores: list[RuleScore], max_fpr: float) -> dict[str, str]:
    """The rules whose held-out false-positive rate lies above ``max_fpr`` (its interval wholly above): their recall
    was bought with more false alarms than the metric allows."""
    out = {}
    for s in scores:
        low = s.false_positive_rate_ci[0]
        bound = low if low is not None else s.false_positive_rate
        if s.scope == SCOPES[0] and s.rule != "argmax" and bound is not None and bound > max_fpr:
            out[s.rule] = (f"its held-out false-positive rate is {s.false_positive_rate:.2f} (CI from {bound:.2f}), "
                           f"above max_fpr {max_fpr:g}")
    return out


def _fpr(metric: str, max_fpr: float) -> dict[str, Any]:
    """``max_fpr`` where the metric reads it (absent otherwise)."""
    return {"max_fpr": max_fpr} if metric == "recall" else {}


def _left_out(labels: Labels) -> dict[str, int]:
    """Human labels (pair, side, category) the comparison could not use, by why."""
    known = np.isfinite(labels.gold)
    graded = np.isfinite(labels.graded)
    return {"not_graded_ok": int((known & ~graded).sum()),
            "no_probabilities": int((known & graded & ~np.isfinite(labels.expected)).sum()),
            "no_human_label": int((~known).sum())}


def _warned(labels: Labels) -> list[str]:
    out = []
    missing = _left_out(labels)["no_probabilities"]
    if missing:
        out.append(f"{missing} labels graded ok carry no P(severity) and are left out of every rule's score (the "
                   "derived run reads them as unparsed under expected and thresholds)")
    return out
