"""``analyze GRADED --human LABELLED``: every transition share corrected by a human-labelled subset.

The grader's labels of all graded pairs are corrected by prediction-powered inference
(:mod:`harness.analysis.ppi`) with human labels of a random subset of the same pairs, taken as
whole prompt clusters (uniformly, or with the known ``inclusion_probability`` of each row). Every
share of the analysis (reduction, preservation, escalation, prompt and response harm, the
conditional shares, per-category persistence and drift) gets the grader's raw value, the humans'
alone and the corrected one with its interval, pooled and per group, and the groups' corrected
differences get paired intervals. What the data cannot support is said in ``warnings``.
"""

from __future__ import annotations

from itertools import combinations
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.constants import CATEGORIES, INCLUSION, MIN_INCLUSION, label_column
from ..core.errors import DataError
from ..results.analysis import CorrectedSetting, Correction, ShareDifference
from .intervals import Interval, percentile_ci, t_half_width
from .ppi import MIN_EVENT_CLUSTERS, Design, Estimate, ShareData, cluster_sums, draws, estimate, inclusion_numbers
from .shares import share_columns

if TYPE_CHECKING:
    import pandas as pd

#: Fewer labelled clusters than this gets a warning beside the interval (``make validate``).
FEW_CLUSTERS = 30
#: The shares whose group differences are tested (as the raw analysis compares groups).
COMPARED = ("escalation", "response_harm", "harmful_prompt_compliance")
#: The shares that partition the pairs: corrected with one λ, so they add up to 1 as their raw values do.
PARTITION = ("reduction", "preservation", "escalation")
METHOD = (
    "prediction-powered inference (PPI++): the grader's labels of every graded pair, corrected by human labels "
    "of a random subset of prompt clusters; lambda tuned per share, one lambda for reduction, preservation and "
    "escalation so that they add up to 1 (classic PPI, lambda 1, where fewer than "
    f"{MIN_EVENT_CLUSTERS} labelled clusters show it); cluster-bootstrap SE with lambda re-tuned in each resample; "
    "Student-t interval on the labelled clusters"
)
ASSUMPTIONS = [
    "the human-labelled pairs are a random sample of the graded pairs' prompt clusters (uniform, or with the "
    "inclusion probabilities given)",
    "the human labels are the truth the shares are measured against",
    "the graded pairs are a random sample of the population the shares describe (clusters independent)",
]


class HumanSubset:
    """Human labels aligned with the analysed pairs: which are labelled, their severities, their π."""

    def __init__(
        self, ids: np.ndarray, codes: np.ndarray, human: pd.DataFrame, graded_ids: set[str], source: str
    ) -> None:
        columns = [label_column(s, c) for s in ("prompt", "response") for c in CATEGORIES]
        missing = [c for c in columns if c not in human.columns]
        if missing:
            raise DataError(
                f"{source}: no human label column {missing[0]!r}; the subset needs prompt_* and response_* labels "
                "for all four categories"
            )
        human_ids = human["id"].astype(str)
        unknown = sorted(set(human_ids) - graded_ids)
        if unknown:
            raise DataError(f"{source}: {len(unknown)} ids are not in the graded set (first {unknown[0]!r}); the human "
                            "labels must be for pairs that were graded")
        labels = human.set_index(human_ids)[columns].reindex(ids.astype(str)).to_numpy(dtype=float, na_value=np.nan)
        known = ~np.isnan(labels).any(axis=1)
        self.warnings: list[str] = []
        present = human_ids.isin(set(ids.astype(str)))
        incomplete = int(present.sum()) - int(known.sum())
        if int((~present).sum()):
            self.warnings.append(f"{int((~present).sum())} human-labelled pairs have no complete grader labels "
                                 "(unparsed, refused or failed) and are left out")
        if incomplete:
            self.warnings.append(
                f"{incomplete} human-labelled pairs lack a human label on some side or category and are left out"
            )
        self.labelled = known
        self.prompt = np.nan_to_num(labels[:, :4]).astype(np.int8)
        self.response = np.nan_to_num(labels[:, 4:]).astype(np.int8)
        self.inclusion = _inclusion(human, human_ids, ids, known, source)
        touched = np.unique(codes[known])
        part = int(np.unique(codes[np.isin(codes, touched) & ~known]).size)
        if part:
            self.warnings.append(f"{part} prompt clusters are labelled in part: the subset should take whole clusters "
                                 "(harness select does)")


def _inclusion(
    human: pd.DataFrame, human_ids: Any, ids: np.ndarray, known: np.ndarray, source: str
) -> np.ndarray | None:
    """Each analysed pair's inclusion probability, when the subset carries a known design."""
    if INCLUSION not in human.columns:
        return None
    values = human.set_index(human_ids)[INCLUSION].reindex(ids.astype(str))
    numbers = inclusion_numbers(values.tolist())
    bad = known & ~((numbers >= MIN_INCLUSION) & (numbers <= 1))
    if bad.any():
        first = ids.astype(str)[bad][0]
        raise DataError(
            f"{source}: row {first!r} has {INCLUSION} {values.iloc[int(np.flatnonzero(bad)[0])]!r}; expected a "
            f"probability from {MIN_INCLUSION:g} to 1 on every labelled row (the one harness select wrote), or no "
            "such column for a uniform random sample of prompt clusters"
        )
    return np.where(known, numbers, 1.0)


def correct_by_subset(
    prompt: np.ndarray,
    response: np.ndarray,
    ids: np.ndarray,
    codes: np.ndarray,
    human: pd.DataFrame,
    *,
    graded_ids: set[str],
    groups: dict[str, np.ndarray] | None = None,
    reference: str | None = None,
    all_pairs: bool = False,
    n_boot: int,
    seed: int,
    source: str = "human labels",
) -> Correction:
    """The corrected shares of the analysed pairs (severities per category, their ids and cluster codes).

    Args:
        prompt, response: the grader's severities (pairs x 4 categories).
        ids, codes: each pair's id and prompt-cluster code.
        human: the human-labelled subset (a pairs table; ``inclusion_probability`` optional).
        graded_ids: every graded id (complete or not), to tell a foreign id from a failed one.
        groups: group name -> mask of pairs, for per-group shares and their differences.
        reference: the group the others are compared with (default the first); ``all_pairs``
            compares every two groups instead.
        n_boot, seed: the cluster bootstrap.
        source: how to name the subset in messages.
    """
    subset = HumanSubset(ids, codes, human, graded_ids, source)
    design = Design.of(subset.labelled, codes, subset.inclusion)
    if design.n_labelled_clusters == 0:
        raise DataError(
            f"{source}: none of its pairs is an analysed pair with labels on both sides; nothing to correct with"
        )
    grader = share_columns(prompt, response)
    truth = share_columns(subset.prompt, subset.response)
    data = {name: ShareData(grader[name][0], grader[name][1], truth[name][0], truth[name][1]) for name in grader}
    counts = draws(design.n_clusters, n_boot=n_boot, seed=seed)
    pooled = _estimates({name: cluster_sums(share, design) for name, share in data.items()}, counts)
    raw_ci = {name: _percentile(counts, cluster_sums(share, design)) for name, share in data.items()}
    settings: dict[str, CorrectedSetting] = {}
    per_group: dict[str, dict[str, Estimate]] = {}
    for name, mask in (groups or {}).items():
        per_group[name] = _estimates({s: cluster_sums(data[s], design, mask) for s in data}, counts)
        settings[name] = _setting(per_group[name], design, mask, codes)
    differences = _differences(per_group, reference, all_pairs, design)
    warnings = [
        *subset.warnings,
        *_warnings(pooled, design),
        *_scope_warnings({"all pairs": pooled, **per_group}, design),
    ]
    extra: dict[str, Any] = {"groups": settings, "differences": differences} if groups else {}
    return Correction(
        n_graded=int(codes.size), n_graded_clusters=design.n_clusters, n_labelled=int(subset.labelled.sum()),
        n_labelled_clusters=design.n_labelled_clusters, source=source,
        design="inclusion probabilities given (inverse-probability weighted)" if subset.inclusion is not None
        else "uniform random sample of prompt clusters",
        raw={s: e.raw for s, e in pooled.items()}, corrected={s: e.value for s, e in pooled.items()},
        raw_ci=raw_ci, corrected_ci={s: e.ci for s, e in pooled.items()},
        human_only={s: e.human_only for s, e in pooled.items()}, lambdas={s: e.lam for s, e in pooled.items()},
        **extra, n_boot=n_boot, method=METHOD, assumptions=ASSUMPTIONS, warnings=warnings,
    )


def _estimates(sums: dict[str, np.ndarray], counts: np.ndarray) -> dict[str, Estimate]:
    """Every share's estimate; the three that partition the pairs with one λ, so that they add up to 1."""
    return {
        name: estimate(part, counts, together=[sums[s] for s in PARTITION if s != name] if name in PARTITION else ())
        for name, part in sums.items()
    }


def _percentile(counts: np.ndarray, sums: np.ndarray) -> Interval:
    """The grader-only share's cluster-bootstrap percentile interval."""
    if not counts.shape[0]:
        return [None, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        return percentile_ci((counts @ sums[:, 0]) / (counts @ sums[:, 1]))


def _setting(estimates: dict[str, Estimate], design: Design, mask: np.ndarray, codes: np.ndarray) -> CorrectedSetting:
    labelled = design.labelled & mask
    return CorrectedSetting(
        n_graded=int(mask.sum()), n_graded_clusters=int(np.unique(codes[mask]).size), n_labelled=int(labelled.sum()),
        n_labelled_clusters=int(np.unique(codes[labelled]).size),
        raw={s: e.raw for s, e in estimates.items()}, human_only={s: e.human_only for s, e in estimates.items()},
        corrected={s: e.value for s, e in estimates.items()}, corrected_ci={s: e.ci for s, e in estimates.items()},
        lambdas={s: e.lam for s, e in estimates.items()},
    )


def _differences(per_group: dict[str, dict[str, Estimate]], reference: str | None, all_pairs: bool,
                 design: Design) -> list[ShareDifference]:
    """Corrected share of one group minus another's, paired (the same cluster resamples)."""
    names = list(per_group)
    if len(names) < 2:
        return []
    if all_pairs:
        contrasts = list(combinations(names, 2))
    else:
        chosen = reference if reference is not None else names[0]
        contrasts = [(chosen, other) for other in names if other != chosen]
    out = []
    for a, b in contrasts:
        for share in COMPARED:
            first, second = per_group[a][share], per_group[b][share]
            diff = None if first.value is None or second.value is None else first.value - second.value
            ci: Interval = [None, None]
            if diff is not None and first.boot.size and second.boot.size:
                spread = first.boot - second.boot
                spread = spread[np.isfinite(spread)]
                if spread.size >= 2:
                    half = t_half_width(float(spread.std(ddof=1)), design.n_labelled_clusters)
                    ci = [max(-1.0, diff - half), min(1.0, diff + half)]
            out.append(ShareDifference(a=a, b=b, share=share, diff=diff, ci=ci))
    return out


def _scope_warnings(scopes: dict[str, dict[str, Estimate]], design: Design) -> list[str]:
    """Per scope (all pairs, each group) and per share, categories included: every share whose denominator has fewer
    than FEW_CLUSTERS labelled clusters, and every share that fell back to classic PPI, named."""
    out = []
    for scope, estimates in scopes.items():
        thin = [f"{s} ({e.units})" for s, e in estimates.items() if e.units < FEW_CLUSTERS and e.value is not None]
        if thin and design.n_labelled_clusters >= FEW_CLUSTERS:
            out.append(
                f"{scope}: fewer than {FEW_CLUSTERS} labelled clusters in the denominator of {', '.join(thin)}: those "
                "intervals cover less than 95 %"
            )
        classic = [s for s, e in estimates.items() if not e.tuned and e.value is not None]
        if classic:
            out.append(
                f"{scope}: classic PPI (lambda 1) for {', '.join(classic)}: fewer than {MIN_EVENT_CLUSTERS} labelled "
                "clusters show them, too few to tune lambda on"
                + (
                    f" ({', '.join(PARTITION)} share one lambda: one of them rare is enough)"
                    if set(PARTITION) & set(classic)
                    else ""
                )
            )
    return out


def _warnings(pooled: dict[str, Estimate], design: Design) -> list[str]:
    out = []
    if design.n_labelled_clusters < FEW_CLUSTERS:
        out.append(
            f"the human-labelled subset has {design.n_labelled_clusters} prompt clusters, fewer than {FEW_CLUSTERS}: "
            "intervals cover less than 95 % there (make validate measures it); label more clusters"
        )

    exact = [s for s, e in pooled.items() if e.exact_fallback]
    if exact:
        out.append(f"no resample moved {', '.join(exact)}: their intervals are exact (Clopper-Pearson) bounds on the "
                   "labelled clusters")
    clipped = [f"{s} ({e.unclipped:+.4f})" for s, e in pooled.items() if e.unclipped is not None]
    if clipped:
        out.append(
            f"corrected below 0 or above 1 and shown clipped: {', '.join(clipped)}; the correction removed more "
            "than the grader found (the share is near its edge, or the labelled subset is small): read the interval"
        )
    undefined = {s: e.undefined_resamples for s, e in pooled.items() if e.undefined_resamples}
    if undefined:
        out.append("resamples with no pair in a share's denominator were left out: "
                   + ", ".join(f"{s} {n}" for s, n in undefined.items()))
    return out
