"""How many items humans must label: a metric's interval width at each labelling size, predicted from a pilot.

The prediction is a **simulation from the pilot's estimated joint distribution**, clustered as the
study will be: a study of ``C`` prompt clusters is ``C`` clusters drawn with replacement from the
pilot's, each with all its pairs and both labels; its interval is the one harness will report (the
cluster-bootstrap percentile interval for κ and recall, the prediction-powered interval for a
corrected share, whose graded set stays the real one); its width is recorded. The pilot is itself a
sample, so every simulated study first redraws the pilot's clusters (a bootstrap of the pilot),
and the spread of the widths carries the pilot's uncertainty: the plan gives the **median** width
(the size to plan on) and the ``assurance`` quantile (default 0.9: a size that meets the target in
nine studies out of ten). A study whose metric is undefined, or whose resamples all agree (a κ of 1
in every one: calibrate prints no interval for it), counts as one that missed the target, never as a
narrow one; the widths are made monotone in the size (common random numbers across sizes, then an
envelope), and the size is searched by doubling then bisection, never below 10 clusters nor the
smallest size where the metric is defined in 95 % of studies. The textbook rule, the pilot's own
width times ``sqrt(pilot clusters / C)``, is shown beside it. What the simulation cannot do is
invent what the pilot never showed (a severity-3 disagreement, an escalation): those are warned.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..core.bounds import ASSURANCE, PLAN_N_BOOT, SEED, SIZE, STUDIES, TARGET_WIDTH, bounded
from ..core.constants import DEFAULT_N_BOOT, SCHEMA_VERSION
from ..core.errors import ConfigError
from ..results.common import Unit
from ..results.planning import Plan, PlanSize
from .intervals import FEW_CLUSTERS, Interval, edge_interval, percentile_ci
from .pilots import METRICS, Pilot
from .ppi import A_HAT, A_HAT_LAB, A_LAB, B_HAT, B_HAT_LAB, B_LAB, estimate
from .stats import kappa_from_confusion, resample_counts

#: A size is recommended only where the metric is defined in at least this share of the simulated studies.
DEFINED_SHARE = 0.95
#: No size below this many clusters is recommended: an interval on fewer says little (``make validate``).
MIN_CLUSTERS = 10


def statistic(metric: str, totals: np.ndarray, k: int = 0) -> np.ndarray:
    """The metric from column totals (vectorised over leading dimensions; NaN where undefined)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        if metric in ("kappa", "kappa-quadratic"):
            matrices = totals.reshape(*totals.shape[:-1], k, k)
            return kappa_from_confusion(matrices, weights="quadratic" if metric == "kappa-quadratic" else None)
        if metric == "recall":
            return np.where(totals[..., 1] > 0, totals[..., 0] / totals[..., 1], np.nan)
        if metric == "recall-gap":
            return totals[..., 0] / totals[..., 1] - totals[..., 2] / totals[..., 3]
    raise ConfigError(f"`metric` {metric!r}: expected one of {', '.join(METRICS)}")


def _width(draws: np.ndarray) -> float:
    """The 95 % percentile interval's width from a simulated study's resamples, NaN where the study has none.

    A study whose resamples all agree (a κ of 1 in every one) is degenerate: calibrate prints no interval for it, so
    it never counts as narrow enough. The quantiles are median-unbiased (Hyndman & Fan's type 8): with the few
    resamples a simulated study affords, plain interpolation puts the 2.5 % and 97.5 % points inside the interval the
    2,000 resamples of calibrate would find (2 % narrower at 200), and the plan then promised more than it delivered.
    """
    finite = draws[np.isfinite(draws)]
    if finite.size < max(10, draws.size // 2) or finite.max() == finite.min():
        return math.nan
    low, high = np.quantile(finite, [0.025, 0.975], method="median_unbiased")
    return float(high - low)


def _edge_width(study: np.ndarray, pilot: Pilot) -> float:
    """Recall of 0 or 1 in a study: the width of the exact bound calibrate reports on the clusters behind it."""
    value = statistic(pilot.metric, study.sum(axis=0), pilot.k)
    positives = int((study[:, 1] > 0).sum())
    if pilot.metric != "recall" or not np.isfinite(value) or 0 < value < 1 or positives == 0:
        return math.nan
    low, high = edge_interval(float(value), [None, None], positives)[0]
    return math.nan if low is None or high is None else float(high - low)


def _bootstrap_width(study: np.ndarray, pilot: Pilot, n_boot: int, seed: int) -> float:
    counts = np.concatenate(list(resample_counts(study.shape[0], n_boot=n_boot, seed=seed)))
    width = _width(statistic(pilot.metric, counts @ study, pilot.k))
    return _edge_width(study, pilot) if math.isnan(width) else width


def _ppi_width(labelled: np.ndarray, pilot: Pilot, rng: np.random.Generator, n_boot: int, seed: int) -> float:
    """The corrected share's interval width when ``labelled`` (pilot clusters' sums) are labelled among the graded
    set."""
    graded = pilot.graded
    assert graded is not None
    n, c = graded.shape[0], labelled.shape[0]
    sums = np.zeros((n, 6))
    sums[:, A_HAT], sums[:, B_HAT] = graded[:, 0], graded[:, 1]
    where = rng.choice(n, size=c, replace=False)
    weight = n / c
    sums[where, A_HAT], sums[where, B_HAT] = labelled[:, 0], labelled[:, 1]
    sums[where, A_LAB], sums[where, B_LAB] = weight * labelled[:, 2], weight * labelled[:, 1]
    sums[where, A_HAT_LAB], sums[where, B_HAT_LAB] = weight * labelled[:, 0], weight * labelled[:, 1]
    counts = np.concatenate(list(resample_counts(n, n_boot=n_boot, seed=seed)))
    found = estimate(sums, counts)
    return math.nan if found.ci[0] is None or found.ci[1] is None else float(found.ci[1] - found.ci[0])


def simulate(pilot: Pilot, clusters: int, *, studies: int, n_boot: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Widths of ``studies`` simulated studies of ``clusters`` clusters (NaN where the metric was undefined), and their
    rows per human label.

    Common random numbers: study ``r`` draws the same bootstrap of the pilot (its population) and the same stream of
    cluster picks at every size, so the widths of two sizes differ by the size, not by luck, and the search over sizes
    sees a smooth curve.
    """
    size = pilot.sums.shape[0]
    widths = np.full(studies, np.nan)
    rows = np.zeros((studies, pilot.rows.shape[1]))
    for r in range(studies):
        rng, population = _population(pilot, seed, r)
        chosen = population[rng.integers(0, size, size=clusters)]
        rows[r] = pilot.rows[chosen].sum(axis=0)
        if pilot.metric == "escalation":
            widths[r] = _ppi_width(pilot.sums[chosen], pilot, rng, n_boot, seed + r)
        else:
            widths[r] = _bootstrap_width(pilot.sums[chosen], pilot, n_boot, seed + r)
    return widths, rows


#: A width's relative variance from ``B`` resamples is about ``NOISE / B``: for the percentile interval, twice the
#: variance of a 2.5 % quantile (normal draws: 2 x 0.025 x 0.975 / φ(1.96)² over the width 3.92², 0.93); for the
#: prediction-powered interval, a standard error's (1/2).
NOISE = {"percentile": 0.93, "t": 0.5}


def without_resampling_noise(widths: np.ndarray, n_boot: int, metric: str) -> np.ndarray:
    """The studies' widths with the noise of their few resamples taken out, down to what calibrate's 2,000 leave.

    A study's width from ``n_boot`` resamples is its width from calibrate's plus noise (about 6 % of it at 200); that
    noise widens the spread of the widths over studies, and their ``assurance`` quantile with it, so the conservative
    size came out larger than needed (``make validate``: 93 % delivered for 90 % stated). The spread around the median
    is shrunk by the share of its variance the noise accounts for; the median stays.
    """
    extra = NOISE["t" if metric == "escalation" else "percentile"] * (1 / n_boot - 1 / DEFAULT_N_BOOT)
    finite = widths[np.isfinite(widths)]
    if extra <= 0 or finite.size < 3:
        return widths
    centre, spread = float(np.median(finite)), float(np.var(finite, ddof=1))
    noise = extra * float(np.mean(finite**2))
    keep = math.sqrt(max(0.0, 1 - noise / spread)) if spread > 0 else 1.0
    return np.where(np.isfinite(widths), centre + keep * (widths - centre), widths)


def _population(pilot: Pilot, seed: int, r: int) -> tuple[np.random.Generator, np.ndarray]:
    """Study ``r``'s population (a bootstrap of the pilot's clusters) and the generator that goes on to draw from it."""
    rng = np.random.default_rng([seed, r])
    size = pilot.sums.shape[0]
    return rng, np.asarray(rng.integers(0, size, size=size))


def stuck_share(pilot: Pilot, *, studies: int, seed: int) -> float:
    """The share of the simulated studies' populations in which no study of any size has an interval: the metric is
    undefined in every resample of the population, or the same in every one (a grader that never disagrees with the
    humans: κ 1 whatever is drawn), where calibrate would print none (recall at 0 or 1 keeps its exact bound)."""
    if pilot.metric == "escalation":
        return 0.0
    stuck = 0
    for r in range(studies):
        _, population = _population(pilot, seed, r)
        sums = pilot.sums[population]
        counts = np.concatenate(list(resample_counts(sums.shape[0], n_boot=20, seed=seed + r)))
        draws = statistic(pilot.metric, counts @ sums, pilot.k)
        finite = draws[np.isfinite(draws)]
        if finite.size == 0:
            stuck += 1
        elif finite.min() == finite.max():
            stuck += not (pilot.metric == "recall" and finite[0] in (0.0, 1.0))
    return stuck / studies if studies else 0.0


def _quantile(widths: np.ndarray, q: float) -> float | None:
    """The ``q`` quantile of the widths, an undefined study counting as one that missed every target (infinite
    width)."""
    value = float(np.quantile(np.where(np.isfinite(widths), widths, np.inf), q, method="higher"))
    return value if math.isfinite(value) else None


@bounded(target_width=TARGET_WIDTH, studies=STUDIES, n_boot=PLAN_N_BOOT, seed=SEED, assurance=ASSURANCE)
def plan(
    pilot: Pilot,
    *,
    target_width: float | None = TARGET_WIDTH.default,
    sizes: list[int] | None = None,
    studies: int = STUDIES.default,
    n_boot: int = PLAN_N_BOOT.default,
    seed: int = SEED.default,
    assurance: float = ASSURANCE.default,
) -> Plan:
    """The predicted interval width at each labelling size (items), and the sizes that meet ``target_width``: in half
    the simulated studies (``n_items``) and in ``assurance`` of them (``n_items_conservative``).

    A study whose metric is undefined counts as one that missed the target; no size below the smallest at which the
    metric is defined in at least :data:`DEFINED_SHARE` of the studies is recommended; the widths are made monotone
    (each size's width is the largest at that size or any larger one), so a tighter target never gets a smaller size.
    """
    if target_width is None and not sizes:
        raise ConfigError("give `target_width` (e.g. 0.10) or `sizes` (e.g. 100,200,400)")
    for size in sizes or []:
        SIZE.check("sizes", size)
    per = float(pilot.items.mean())
    n_pilot = pilot.sums.shape[0]
    limit = pilot.graded.shape[0] if pilot.graded is not None else None
    value, pilot_ci, own, pilot_interval = _pilot_figure(pilot, n_boot, seed)
    found: dict[int, PlanSize] = {}
    starts = [math.ceil(i / per) for i in sizes or []]
    if target_width is not None:
        starts = [max(MIN_CLUSTERS, n_pilot // 8)]
    for first in starts:
        _check_work(first, studies, n_boot)  # the smallest size the search starts at: refused now, not after an hour

    def at(clusters: int) -> PlanSize:
        clusters = max(2, min(clusters, limit) if limit else clusters)
        _check_work(clusters, studies, n_boot)
        if clusters not in found:
            widths, rows = simulate(pilot, clusters, studies=studies, n_boot=n_boot, seed=seed)
            widths = without_resampling_noise(widths, n_boot, pilot.metric)
            found[clusters] = _plan_size(pilot, clusters, widths, rows, own=own, assurance=assurance)
        return found[clusters]

    for items in sizes or []:
        at(math.ceil(items / per))
    best = conservative = None
    stuck = stuck_share(pilot, studies=studies, seed=seed) if target_width is not None else 0.0
    if target_width is not None and stuck <= 1 - DEFINED_SHARE:  # else no size can do: more clusters cannot help
        best = _search(at, found, target_width, n_pilot, limit, "width")
        conservative = _search(at, found, target_width, n_pilot, limit, "width_conservative")
    elif target_width is not None:
        at(max(MIN_CLUSTERS, n_pilot // 8))
    rows = _monotone(sorted(found.values(), key=lambda s: s.n_clusters))
    floor = next((s.n_clusters for s in rows if 1 - s.undefined >= DEFINED_SHARE), None)
    return Plan(
        schema_version=SCHEMA_VERSION,
        metric=pilot.metric,
        side=pilot.side,
        threshold=pilot.threshold,
        source=pilot.source,
        pilot=Unit(cluster=pilot.cluster, n_items=int(pilot.items.sum()), n_clusters=n_pilot),
        pilot_value=value,
        pilot_width=own,
        pilot_ci=pilot_ci,
        pilot_interval=pilot_interval,
        items_per_cluster=round(per, 3),
        graded_clusters=limit,
        target_width=target_width,
        **_sizes_met(best, conservative),
        sizes=rows,
        method=METHOD,
        studies=studies,
        n_boot=n_boot,
        seed=seed,
        assurance=assurance,
        defined_floor=floor,
        warnings=_stuck_warning(stuck)
        + _warnings(pilot, best, target_width if stuck <= 1 - DEFINED_SHARE else None, limit)
        + _undefined_warning(rows),
    )


def _plan_size(pilot: Pilot, clusters: int, widths: np.ndarray, rows: np.ndarray, *, own: float | None,
               assurance: float) -> PlanSize:
    """One size as the plan reports it: the median and ``assurance`` quantile of its simulated widths, the textbook
    rule's width beside them (``own``: the pilot's width), and how many studies left the metric undefined."""
    per = float(pilot.items.mean())
    defined = int(np.isfinite(widths).sum())
    mean_rows = zip(pilot.labels, rows.mean(axis=0), strict=True)
    return PlanSize(
        n_items=round(clusters * per),
        n_clusters=clusters,
        width=_quantile(widths, 0.5),
        width_conservative=_quantile(widths, assurance),
        width_formula=own * math.sqrt(pilot.sums.shape[0] / clusters) if own is not None else None,
        rows_by_label={label: round(float(v), 1) for label, v in mean_rows},
        undefined=round(1 - defined / widths.size, 4),
        undefined_studies=widths.size - defined,
    )


def _sizes_met(best: PlanSize | None, conservative: PlanSize | None) -> dict[str, Any]:
    """The sizes that meet the target in half the studies, and in ``assurance`` of them (None: not within reach)."""
    return {
        "n_items": best.n_items if best else None,
        "n_clusters": best.n_clusters if best else None,
        "n_items_conservative": conservative.n_items if conservative else None,
        "n_clusters_conservative": conservative.n_clusters if conservative else None,
    }


#: Work a plan may take per size: resampled cluster draws (studies x resamples x clusters; about 1e8 a second here,
#: so about ten seconds a size at most), and memory per study.
MAX_WORK = 1e9
MAX_BYTES = 1e9


def _check_work(clusters: int, studies: int, n_boot: int) -> None:
    """Refuse, before allocating, a size whose simulation would not fit in memory or would run for hours."""
    memory = 8.0 * n_boot * clusters
    work = float(studies) * n_boot * clusters
    if memory > MAX_BYTES or work > MAX_WORK:
        raise ConfigError(
            f"simulating {studies} studies of {clusters:,} clusters with {n_boot} resamples each needs about "
            f"{memory / 1e9:.1f} GB per study and {work:.1e} resampled draws (limits {MAX_BYTES / 1e9:g} GB, "
            f"{MAX_WORK:.0e}); lower `studies` or `n_boot`, or give `sizes` below that"
        )


def _monotone(rows: list[PlanSize]) -> list[PlanSize]:
    """Each size's widths raised to the largest at any larger size: the envelope the search reads (a width that
    shrinks with more labels, as it must, not the simulation's wiggle)."""
    out: list[PlanSize] = []
    worst: dict[str, float | None] = {"width": None, "width_conservative": None}
    for row in reversed(rows):
        update: dict[str, float | None] = {}
        for key in worst:
            mine = getattr(row, key)
            seen = worst[key]
            value = None if mine is None else (mine if seen is None else max(mine, seen))
            worst[key] = value if value is not None else seen
            update[key] = value
        out.append(row.model_copy(update=update))
    return out[::-1]


def _stuck_warning(stuck: float) -> list[str]:
    if stuck <= 1 - DEFINED_SHARE:
        return []
    return [f"in {stuck:.0%} of the populations the pilot allows, no resample moves the metric (the grader never "
            "disagrees with the humans there, or the metric is undefined): studies drawn from them have no interval at "
            "any size, so no size is recommended; label a larger pilot, with more of the cases the grader gets wrong"]


def _undefined_warning(rows: list[PlanSize]) -> list[str]:
    undefined = [f"{s.n_clusters} clusters ({s.undefined_studies})" for s in rows if s.undefined_studies]
    if not undefined:
        return []
    return [f"studies where the metric was undefined or no resample moved it (no interval: counted as missing the "
            f"target): {', '.join(undefined)}; no size below "
            f"the smallest where it is defined in {DEFINED_SHARE:.0%} of studies is recommended"]


METHOD = ("simulation from the pilot's estimated joint distribution: each study draws its prompt clusters (all "
          "their pairs, both labels) from a bootstrap of the pilot's clusters and computes the interval harness "
          "reports (common random numbers across sizes); width: the median over studies, conservative: the assurance "
          "quantile, an undefined study counting as too wide; both made monotone in the size")


def _pilot_figure(pilot: Pilot, n_boot: int, seed: int) -> tuple[float | None, Interval, float | None, str]:
    """The pilot's own value, its 95 % interval and that interval's width, and how it was made: the interval a
    calibration reported, else calibrate's (its 2,000 cluster resamples, the plan's seed), so the plan and a calibration
    of the same pilot print the same interval, never two bootstraps of one figure."""
    clean = lambda x: None if x is None or not math.isfinite(x) else float(x)
    if pilot.metric == "escalation":  # analyze's interval needs the labelled clusters' places in the graded set
        labelled = pilot.sums
        share = float(labelled[:, 2].sum() / labelled[:, 1].sum())
        ppi_width = _ppi_width(labelled, pilot, np.random.default_rng(seed), n_boot, seed)
        placed = ("the prediction-powered interval's width with the labelled clusters placed at random "
                  f"({n_boot} resamples)")
        return clean(share), [None, None], clean(ppi_width), placed
    value: float | None
    if pilot.reported is not None:
        value, ci, how = pilot.reported
    else:
        value = clean(float(statistic(pilot.metric, pilot.sums.sum(axis=0), pilot.k)))
        counts = np.concatenate(list(resample_counts(pilot.sums.shape[0], n_boot=DEFAULT_N_BOOT, seed=seed)))
        ci = percentile_ci(statistic(pilot.metric, counts @ pilot.in_calibrate_order(), pilot.k))
        if pilot.metric == "recall" and value is not None:
            ci = edge_interval(value, ci, int((pilot.sums[:, 1] > 0).sum()))[0]
        how = f"calibrate's cluster bootstrap ({DEFAULT_N_BOOT:,} resamples, seed {seed})"
    width = ci[1] - ci[0] if ci[0] is not None and ci[1] is not None else None
    return value, ci, width, how


def _search(
    at: Any, found: dict[int, PlanSize], target: float, n_pilot: int, limit: int | None, key: str
) -> PlanSize | None:
    """The smallest size of at least MIN_CLUSTERS clusters whose width (``key``, on the monotone envelope) is at most
    ``target`` and whose metric is defined in at least DEFINED_SHARE of the studies: doubling from a small size until
    one meets it, then bisection."""
    def meets(clusters: int) -> bool:
        at(clusters)
        rows = _monotone(sorted(found.values(), key=lambda s: s.n_clusters))
        row = next(r for r in rows if r.n_clusters == max(2, min(clusters, limit) if limit else clusters))
        width = getattr(row, key)
        return width is not None and width <= target and 1 - row.undefined >= DEFINED_SHARE

    high_limit = limit or n_pilot * 400
    if high_limit < MIN_CLUSTERS:
        return None
    low, high = MIN_CLUSTERS - 1, max(MIN_CLUSTERS, n_pilot // 8)
    while not meets(high):
        if high >= high_limit:
            return None
        low, high = high, min(high * 2, high_limit)
    while high - low > max(1, low // 50):  # to within 2 %
        middle = (low + high) // 2
        low, high = (low, middle) if meets(middle) else (middle, high)
    return at(high)


def _warnings(pilot: Pilot, best: PlanSize | None, target: float | None, limit: int | None) -> list[str]:
    out = []
    clusters = pilot.sums.shape[0]
    if clusters < FEW_CLUSTERS:
        out.append(f"the pilot has {clusters} prompt clusters: its picture of the grader is itself rough; plan on the "
                   "conservative size, or label a larger pilot")
    seen = pilot.rows.sum(axis=0)
    thin = [f"{label} ({int(n)})" for label, n in zip(pilot.labels, seen, strict=True) if 0 < n < 5]
    absent = [label for label, n in zip(pilot.labels, seen, strict=True) if n == 0]
    if thin:
        out.append(
            f"few pilot items with human label {', '.join(thin)}: the plan cannot foresee errors the pilot did not "
            "show there; a stratified pick (harness select --strategy stratified) brings more of them"
        )
    if absent and pilot.metric in ("kappa", "kappa-quadratic"):
        out.append(
            f"no pilot item has human label {', '.join(absent)}: the plan treats it as absent from the population"
        )
    if pilot.metric == "escalation" and pilot.sums[:, 2].sum() == 0:
        out.append("the pilot shows no human-labelled escalation: the width it predicts is only that of a share near 0")
    if target is not None and best is None:
        out.append(
            f"no size tried reaches a width of {target}"
            + (f" (the graded set has {limit} clusters, the most that can be labelled)" if limit else "")
            + ": the target is too tight for this metric"
        )
    return out
