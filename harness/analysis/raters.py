"""Several human raters: how far they agree, the human ceiling, and whether a grader can replace one.

Per scope (one label, or each side and category of harm labels and each side's highest
category):

* **Krippendorff's α** among the humans (:mod:`harness.analysis.krippendorff`), missing ratings
  allowed, with a cluster-bootstrap interval (prompt clusters resampled whole);
* **pairwise κ** between every two raters (plain; quadratic-weighted on an ordinal or interval
  scale) with cluster-bootstrap intervals, and each rater's mean κ with the others and the α
  left when that rater is dropped;
* **the human ceiling**: the mean rater-vs-rater κ, printed beside each grader's mean κ with the
  same raters (and with the final label, if any), so "grader κ 0.56 against a human ceiling of
  0.89" is one line;
* **the alternative annotator test** (Calderon, Reichart & Dror, ACL 2025): leaving each
  annotator out in turn, does the grader match the remaining annotators at least as well as the
  left-out annotator does, within a cost-benefit margin ε? Alignment per item is the share of
  the remaining annotators who gave the same label (nominal), or minus the root mean squared
  distance to their labels (ordinal, interval), as the paper scores them; the one-sided paired
  test is a cluster-robust t on the per-item win indicators (with one item per cluster, the
  paper's paired t), Benjamini-Yekutieli across annotators; the grader passes when it wins
  against at least half of them (ω ≥ 0.5). An annotator with fewer than 30 items rated beside
  another is left out of the test and named; fewer than three left, the test is not run. An item
  the grader did not label is a loss (the paper drops it; a grader should not gain by failing).
"""

from __future__ import annotations

import math
from itertools import combinations
from typing import Any

import numpy as np

from ..core.bounds import EPSILON, N_BOOT, SEED, bounded
from ..core.constants import SCHEMA_VERSION
from ..io.ratings import Ratings
from ..results.common import Unit
from ..results.raters import (
    AltAnnotator,
    AltSummary,
    AltTest,
    GraderScore,
    RaterAgreement,
    RaterPair,
    RaterSummary,
    ScopeAgreement,
)
from .intervals import Interval, percentile_ci
from .krippendorff import alpha_from_coincidences, coincidences
from .stats import (
    benjamini_yekutieli,
    bootstrap_totals,
    cluster_confusions,
    confusion_matrix,
    kappa_from_confusion,
    none_if_nan,
)

#: The alt-test needs at least this many annotators and items (Calderon et al.: three; 30 or more items).
MIN_ANNOTATORS = 3
MIN_ITEMS = 30
#: The false discovery rate of the alt-test's annotator family.
Q = 0.05
RULE = "the grader passes when it wins against at least half of the annotators (winning rate ω ≥ 0.5)"


@bounded(epsilon=EPSILON, n_boot=N_BOOT, seed=SEED)
def rater_agreement(ratings: Ratings, *, epsilon: float = EPSILON.default, n_boot: int = N_BOOT.default,
                    seed: int = SEED.default) -> RaterAgreement:
    """α, pairwise κ, the human ceiling beside each grader and the alt-test, per scope of ``ratings``."""
    k = len(ratings.labels)
    scopes = {
        scope: scope_agreement(
            matrix, ratings.clusters, ratings.raters, {g: per[scope] for g, per in ratings.graders.items()},
            ratings.final[scope] if ratings.final else None, level=ratings.level, k=k, values=ratings.values,
            epsilon=epsilon, n_boot=n_boot, seed=seed)
        for scope, matrix in ratings.scopes.items()
    }
    passed: dict[str, bool | None] = {}
    summary: dict[str, AltSummary] = {}
    for grader in ratings.graders:
        tests = [s.graders[grader].alt_test for s in scopes.values()]
        verdicts = [t.passed for t in tests if t is not None and t.passed is not None]
        passed[grader] = all(verdicts) if verdicts else None
        summary[grader] = AltSummary(passed=sum(verdicts), tested=len(verdicts), untested=len(tests) - len(verdicts))
    warnings = []
    if len(ratings.raters) < MIN_ANNOTATORS and ratings.graders:
        warnings.append(
            f"{len(ratings.raters)} raters: the alternative annotator test needs at least {MIN_ANNOTATORS}; "
            "read each grader's κ with each rater beside the raters' κ with each other instead"
        )
    return RaterAgreement(
        schema_version=SCHEMA_VERSION, source=ratings.source, level=ratings.level, labels=ratings.labels,
        raters=ratings.raters, graders=list(ratings.graders),
        unit=Unit(cluster=ratings.cluster, n_items=len(ratings.ids), n_clusters=int(np.unique(ratings.clusters).size)),
        epsilon=epsilon, n_boot=n_boot, seed=seed, scopes=scopes, passed=passed, alt_tests=summary, warnings=warnings,
    )


def scope_agreement(matrix: np.ndarray, clusters: np.ndarray, raters: list[str], graders: dict[str, np.ndarray],
                    final: np.ndarray | None, *, level: str, k: int, values: np.ndarray | None, epsilon: float,
                    n_boot: int, seed: int) -> ScopeAgreement:
    """One scope's agreement among raters and its graders beside them."""
    weights = None if level == "nominal" else "quadratic"
    rated = (~np.isnan(matrix)).sum(axis=1) >= 2
    notes = []
    cells = coincidences(matrix, k)
    point = none_if_nan(float(alpha_from_coincidences(cells.sum(axis=0), k, level, values)))
    alpha_ci: Interval = [None, None]
    if n_boot > 0 and rated.any():
        totals = bootstrap_totals(cells[rated], clusters=clusters[rated], n_boot=n_boot, seed=seed)
        alpha_ci = percentile_ci(alpha_from_coincidences(totals, k, level, values))
    n_clusters = int(np.unique(clusters[rated]).size)
    if 0 < n_clusters < 30:
        notes.append(f"only {n_clusters} clusters of items rated twice or more: the intervals cover less than 95 %")
    pairs = [_pair(raters[a], raters[b], matrix[:, a], matrix[:, b], clusters, k, weights, n_boot, seed)
             for a, b in combinations(range(len(raters)), 2)]
    kappa_of = lambda pair: pair.kappa_weighted if weights else pair.kappa
    known = [kappa_of(p) for p in pairs if kappa_of(p) is not None]
    ceiling = float(np.mean(known)) if known else None
    summaries = {
        name: RaterSummary(
            n_items=int((~np.isnan(matrix[:, j])).sum()),
            mean_kappa=_mean([kappa_of(p) for p in pairs if name in (p.a, p.b)]),
            alpha_without=(
                none_if_nan(
                    float(
                        alpha_from_coincidences(
                            coincidences(np.delete(matrix, j, axis=1), k).sum(axis=0), k, level, values
                        )
                    )
                )
                if len(raters) > 2
                else None
            ),
            **({"kappa_final": _kappa(matrix[:, j], final, k, weights)} if final is not None else {}),
        )
        for j, name in enumerate(raters)
    }
    scores = {name: _grader(grader, matrix, raters, final, clusters, k=k, weights=weights, ceiling=ceiling, level=level,
                            values=values, epsilon=epsilon) for name, grader in graders.items()}
    return ScopeAgreement(
        n_items=int(rated.sum()), n_clusters=n_clusters, n_ratings=int((~np.isnan(matrix)).sum()), alpha=point,
        alpha_ci=alpha_ci, pairs=pairs, raters=summaries, human_ceiling=ceiling,
        kappa_kind="quadratic-weighted κ" if weights else "Cohen's κ", graders=scores, notes=notes,
    )


def _mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return float(np.mean(known)) if known else None


def _kappa(a: np.ndarray, b: np.ndarray, k: int, weights: str | None) -> float | None:
    both = ~np.isnan(a) & ~np.isnan(b)
    if not both.any():
        return None
    return none_if_nan(
        float(kappa_from_confusion(confusion_matrix(a[both].astype(int), b[both].astype(int), k=k), weights=weights))
    )


def _pair(name_a: str, name_b: str, a: np.ndarray, b: np.ndarray, clusters: np.ndarray, k: int, weights: str | None,
          n_boot: int, seed: int) -> RaterPair:
    both = ~np.isnan(a) & ~np.isnan(b)
    kind = weights or None
    ci: Interval = [None, None]
    if n_boot > 0 and both.any():
        cells = cluster_confusions(a[both], b[both], clusters[both], k=k)
        totals = bootstrap_totals(cells, clusters=clusters[both], n_boot=n_boot, seed=seed)
        ci = percentile_ci(kappa_from_confusion(totals.reshape(-1, k, k), weights=kind))
    extra: dict[str, Any] = {"kappa_weighted": _kappa(a, b, k, weights)} if weights else {}
    return RaterPair(a=name_a, b=name_b, n_items=int(both.sum()), kappa=_kappa(a, b, k, None), **extra, ci=ci)


def _grader(
    grader: np.ndarray,
    matrix: np.ndarray,
    raters: list[str],
    final: np.ndarray | None,
    clusters: np.ndarray,
    *,
    k: int,
    weights: str | None,
    ceiling: float | None,
    level: str,
    values: np.ndarray | None,
    epsilon: float,
) -> GraderScore:
    with_each = {name: _kappa(grader, matrix[:, j], k, weights) for j, name in enumerate(raters)}
    extra: dict[str, Any] = {"kappa_final": _kappa(grader, final, k, weights)} if final is not None else {}
    return GraderScore(
        n_items=int((~np.isnan(grader)).sum()), kappa_with=with_each, mean_kappa=_mean(list(with_each.values())),
        **extra, human_ceiling=ceiling,
        alt_test=alt_test(grader, matrix, clusters, raters, level=level, values=values, epsilon=epsilon),
    )


def alignment(labels: np.ndarray, others: np.ndarray, *, level: str, values: np.ndarray | None) -> np.ndarray:
    """Per item, how well ``labels`` match the ``others`` (items x annotators; NaN missing): the share
    who agree (nominal), or minus the root mean squared distance between the values (ordinal, interval)."""
    known = ~np.isnan(others)
    count = known.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        if level == "nominal":
            same = (others == labels[:, None]) & known
            return np.where(count > 0, same.sum(axis=1) / count, np.nan)
        scale = np.arange(int(np.nanmax(others, initial=0)) + 1, dtype=float) if values is None else values
        lookup = lambda codes: np.where(np.isnan(codes), np.nan, scale[np.nan_to_num(codes).astype(int)])
        squared = (lookup(others) - lookup(labels)[:, None]) ** 2
        return np.where(count > 0, -np.sqrt(np.nansum(np.where(known, squared, 0.0), axis=1) / count), np.nan)


def _not_run(epsilon: float, scoring: str, note: str) -> AltTest:
    """An alternative annotator test that could not be run, and why."""
    return AltTest(epsilon=epsilon, scoring=scoring, annotators=[], winning_rate=None, advantage_probability=None,
                   passed=None, rule=RULE, note=note)


def alt_test(grader: np.ndarray, humans: np.ndarray, clusters: np.ndarray, raters: list[str], *, level: str,
             values: np.ndarray | None, epsilon: float) -> AltTest:
    """The alternative annotator test of ``grader`` against ``humans`` (see the module docstring)."""
    scoring = ("share of the other annotators with the same label" if level == "nominal"
               else "minus the root mean squared distance to the other annotators' labels")
    if len(raters) < MIN_ANNOTATORS:
        return _not_run(epsilon, scoring, (
            f"not run: {len(raters)} annotators; it needs at least {MIN_ANNOTATORS}. With two, leaving one out leaves "
            "a single person as the truth, so the comparison is the grader's κ with each rater against the raters' κ "
            "with each other (the human ceiling)"))
    rows: list[dict[str, Any]] = []
    for j, name in enumerate(raters):
        others = np.delete(humans, j, axis=1)
        usable = ~np.isnan(humans[:, j]) & ((~np.isnan(others)).sum(axis=1) >= 1)
        human_score = alignment(humans[:, j], others, level=level, values=values)
        grader_score = alignment(np.where(np.isnan(grader), -1.0, grader), others, level=level, values=values)
        missing = np.isnan(grader)
        win_grader = np.where(missing, 0.0, (grader_score >= human_score).astype(float))
        win_human = np.where(missing, 1.0, (human_score >= grader_score).astype(float))
        rows.append({"rater": name, **_one_sided(win_grader[usable] - win_human[usable], clusters[usable], epsilon),
                     "rho_grader": float(win_grader[usable].mean()) if usable.any() else 0.0,
                     "rho_human": float(win_human[usable].mean()) if usable.any() else 0.0})
    sparse = [f"{r['rater']} ({r['n_items']} items)" for r in rows if r["n_items"] < MIN_ITEMS]
    rows = [r for r in rows if r["n_items"] >= MIN_ITEMS]
    left_out = (f"left out {', '.join(sparse)}: fewer than {MIN_ITEMS} items rated beside another annotator, too few "
                "for the t test") if sparse else None
    if len(rows) < MIN_ANNOTATORS:
        return _not_run(epsilon, scoring, (
            f"not run: it needs {MIN_ANNOTATORS} annotators with {MIN_ITEMS} or more items each, and {left_out}"
            if left_out else f"not run: {len(rows)} annotators"))
    adjusted = benjamini_yekutieli({r["rater"]: r["p_value"] for r in rows})
    annotators = [AltAnnotator(**r, p_by=adjusted[r["rater"]], rejected=adjusted[r["rater"]] <= Q) for r in rows]
    omega = float(np.mean([a.rejected for a in annotators]))
    return AltTest(
        epsilon=epsilon,
        scoring=scoring,
        annotators=annotators,
        winning_rate=omega,
        advantage_probability=float(np.mean([a.rho_grader for a in annotators])),
        passed=omega >= 0.5,
        rule=RULE,
        note=left_out,
    )


def _one_sided(d: np.ndarray, clusters: np.ndarray, epsilon: float) -> dict[str, Any]:
    """H0: mean(d) ≤ −ε against H1: mean(d) > −ε, cluster-robust t on the clusters' totals."""
    from scipy.stats import t

    n = d.size
    _, dense = np.unique(clusters, return_inverse=True)
    c = int(dense.max()) + 1 if n else 0
    totals = np.bincount(dense, weights=d, minlength=c) if n else np.zeros(0)
    sizes = np.bincount(dense, minlength=c).astype(float) if n else np.zeros(0)
    if c < 2:
        return {"n_items": n, "n_clusters": c, "p_value": 1.0}
    mean = float(d.mean())
    se = math.sqrt(c / (c - 1) * float(((totals - mean * sizes) ** 2).sum())) / n
    if se == 0:
        p = 0.0 if mean + epsilon > 0 else 1.0
    else:
        p = float(t.sf((mean + epsilon) / se, c - 1))
    return {"n_items": n, "n_clusters": c, "p_value": p}
