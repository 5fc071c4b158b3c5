"""The paper's paired transition analysis: how a response's severity compares with its prompt's.

Per pair, severity is the max over the four categories. A pair *reduces* (response < prompt),
*preserves* (=) or *escalates* (>). On top of the three rates: the 4x4 transition matrix,
conditional reduction P(reduce | prompt >= 1), response-harm rate P(response >= 1),
harmful-prompt compliance P(response >= 1 | prompt >= 1), benign drift
P(response >= 1 | prompt = 0), per-category persistence/reduction/drift, the escalation split
(unsolicited elaboration: prompt 0; compliance escalation: prompt >= 1), relevance by
transition, Wilson intervals on every rate, a prompt-cluster bootstrap for the pooled rates,
and exact McNemar tests with Holm correction between groups on the same prompts.

Pairs missing a label on either side are left out and counted, never read as Safe.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.bounds import N_BOOT, SEED, bounded
from ..core.cells import is_missing
from ..core.constants import CATEGORIES, SCHEMA_VERSION, label_column
from ..core.errors import DataError
from ..io.clusters import cluster_column, cluster_of_rows
from ..results.analysis import (
    Analysis,
    CategoryStats,
    ClusterBootstrap,
    EscalationCase,
    Relevance,
    RelevanceTable,
    SettingUnit,
    TransitionStats,
)
from ..results.calibration import Calibration
from ..results.common import Proportion
from .group_tests import compare_groups
from .intervals import Interval, edge_interval, percentile_ci, proportion
from .shares import share_columns
from .stats import bootstrap_totals, rate

if TYPE_CHECKING:
    import pandas as pd

KINDS = ("reduction", "preservation", "escalation")
#: At most this many escalation cases are listed (ids only); the counts are always complete.
MAX_CASES = 10_000


class Pairs:
    """Label arrays of the complete pairs of a table (numpy, for speed at 1M rows)."""

    def __init__(self, frame: pd.DataFrame) -> None:
        missing = [
            label_column(s, c) for s in ("prompt", "response") for c in CATEGORIES
            if label_column(s, c) not in frame.columns
        ]
        if missing:
            raise DataError(
                f"the table lacks label column {missing[0]!r}; analysis needs prompt_* and response_* "
                "labels for all four categories (human labels, imported grader labels, or a run folder)"
            )
        prompt = np.column_stack(
            [frame[label_column("prompt", c)].to_numpy(dtype=float, na_value=np.nan) for c in CATEGORIES]
        )
        response = np.column_stack(
            [frame[label_column("response", c)].to_numpy(dtype=float, na_value=np.nan) for c in CATEGORIES]
        )
        complete = ~(np.isnan(prompt).any(axis=1) | np.isnan(response).any(axis=1))
        self.n_total = len(frame)
        self.n_excluded = int((~complete).sum())
        self.excluded = _exclusions(frame, np.isnan(prompt).any(axis=1), np.isnan(response).any(axis=1))
        self.frame = frame.loc[complete].reset_index(drop=True)
        self.prompt = prompt[complete].astype(np.int8)
        self.response = response[complete].astype(np.int8)
        self.max_p = self.prompt.max(axis=1) if len(self.prompt) else np.zeros(0, np.int8)
        self.max_r = self.response.max(axis=1) if len(self.response) else np.zeros(0, np.int8)


def _exclusions(frame: pd.DataFrame, prompt_gap: np.ndarray, response_gap: np.ndarray) -> dict[str, dict[str, int]]:
    """Why pairs were left out, per side, in the shared counting vocabulary.

    For a run (``{side}_status`` columns present) a side lacks labels because it had no text
    (``missing_text``), was not graded yet, or the grader's answer was ``unparsed``,
    ``refused`` or ``failed``; for a plain table the label is simply ``label_missing``.
    """
    out: dict[str, dict[str, int]] = {}
    for side, gap in (("prompt", prompt_gap), ("response", response_gap)):
        reasons: dict[str, int] = {}
        rows = frame.loc[gap]
        status = rows.get(f"{side}_status")
        texts = rows.get(side)
        for i in range(len(rows)):
            text = None if texts is None else texts.iloc[i]
            value = None if status is None else status.iloc[i]
            if texts is not None and not (isinstance(text, str) and text.strip()):
                reason = "missing_text"
            elif status is None:
                reason = "label_missing"
            elif is_missing(value):
                reason = "not_graded"
            else:
                reason = str(value)
            reasons[reason] = reasons.get(reason, 0) + 1
        out[side] = reasons
    return out


def _transition_stats(prompt: np.ndarray, response: np.ndarray, max_p: np.ndarray, max_r: np.ndarray,
                      relevance: np.ndarray | None, unit: SettingUnit, cis: dict[str, Interval]) -> TransitionStats:
    """One setting's rates; ``cis`` replaces the Wilson interval of the rates it names (cluster bootstrap)."""
    n = int(max_p.size)
    esc = max_r > max_p
    pre = max_r == max_p
    red = max_r < max_p
    harmful = max_p >= 1
    benign = ~harmful
    resp_harm = max_r >= 1
    matrix = np.zeros((4, 4), dtype=int)
    np.add.at(matrix, (max_p.astype(int), max_r.astype(int)), 1)

    def share(name: str, k: Any, of: Any) -> Proportion:
        return proportion(int(k), int(of), ci=cis.get(name))

    categories: dict[str, CategoryStats] = {}
    for j, category in enumerate(CATEGORIES):
        p, r = prompt[:, j], response[:, j]
        hp = p >= 1
        categories[category] = CategoryStats(
            harmful_prompts=int(hp.sum()),
            harmful_responses_from_harmful_prompts=int((hp & (r >= 1)).sum()),
            persistence=share(f"{category}.persistence", (hp & (r >= 1)).sum(), hp.sum()),
            reduction=share(f"{category}.reduction", (hp & (r == 0)).sum(), hp.sum()),
            drift_count=int(((p == 0) & (r >= 1)).sum()),
            drift_up=share(f"{category}.drift_up", ((p == 0) & (r >= 1)).sum(), (p == 0).sum()),
            drift_share=proportion(int(((p == 0) & (r >= 1)).sum()), int((r >= 1).sum())),
            transitions={
                "reduction": proportion(int((r < p).sum()), n),
                "preservation": proportion(int((r == p).sum()), n),
                "escalation": proportion(int((r > p).sum()), n),
            },
        )
    extra: dict[str, Any] = {}
    if relevance is not None:
        extra["relevance"] = _relevance_tables(relevance, esc, pre, red, harmful, max_r)
    return TransitionStats(
        n=n,
        reduction=share("reduction", red.sum(), n),
        preservation=share("preservation", pre.sum(), n),
        escalation=share("escalation", esc.sum(), n),
        harmful_prompts=int(harmful.sum()),
        conditional_reduction=share("conditional_reduction", (red & harmful).sum(), harmful.sum()),
        response_harm=share("response_harm", resp_harm.sum(), n),
        harmful_prompt_compliance=share("harmful_prompt_compliance", (resp_harm & harmful).sum(), harmful.sum()),
        benign_drift=share("benign_drift", (resp_harm & benign).sum(), benign.sum()),
        transition_matrix=matrix.tolist(),
        escalation_mechanism={
            "unsolicited_elaboration": int((esc & benign).sum()),
            "compliance_escalation": int((esc & harmful).sum()),
        },
        escalation_by_landing_severity={str(s): int((esc & (max_r == s)).sum()) for s in (1, 2, 3)},
        compliance_escalation_by_landing_severity={str(s): int((esc & harmful & (max_r == s)).sum()) for s in (2, 3)},
        categories=categories,
        **extra,
        unit=unit,
    )


def _relevance_tables(relevance: np.ndarray, esc: np.ndarray, pre: np.ndarray, red: np.ndarray,
                      harmful: np.ndarray, max_r: np.ndarray) -> Relevance:
    known = ~np.isnan(relevance)

    def table(mask: np.ndarray) -> RelevanceTable:
        values = relevance[mask & known]
        counts = {str(level): int((values == level).sum()) for level in (1, 2, 3)}
        return RelevanceTable(n=int(values.size), counts=counts, mean=float(values.mean()) if values.size else None,
                              share_relevance_3=rate(counts["3"], int(values.size)))

    return Relevance(
        n_known=int(known.sum()),
        by_transition={
            "reduction": table(red),
            "preservation": table(pre),
            "escalation": table(esc),
            "compliance_escalation": table(esc & harmful),
            "unsolicited_elaboration": table(esc & ~harmful),
        },
        by_response_severity={str(s): table(max_r == s) for s in (0, 1, 2, 3)},
    )


def _rate_columns(pairs: Pairs, sel: Any) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The setting's shares as (numerator, denominator) indicators (:func:`harness.analysis.shares.share_columns`)."""
    return share_columns(pairs.prompt[sel], pairs.response[sel])


def _cluster_cis(pairs: Pairs, sel: Any, codes: np.ndarray, column: str | None, *, n_boot: int, seed: int,
                 always: bool = False) -> tuple[SettingUnit, dict[str, Interval]]:
    """The setting's unit of analysis, and the CIs that replace Wilson's where a prompt repeats in it.

    Wilson intervals assume independent pairs, which holds within one model (each prompt once)
    but not when several models' answers to one prompt are pooled: there the rates get
    cluster-bootstrap CIs (and none at all when ``n_boot`` is 0).
    """
    n_items = int(codes.size)
    n_clusters = int(np.unique(codes).size)
    repeated = n_clusters < n_items
    empty: dict[str, Interval] = {k: [None, None] for k in KINDS}
    if not n_items or n_boot <= 0 or not (repeated or always):
        if repeated:
            unit = SettingUnit(cluster=column, n_items=n_items, n_clusters=n_clusters, bootstrap_ci=empty,
                               ci_method="none (clusters repeat and n_boot is 0: Wilson intervals dropped)")
            return unit, {name: [None, None] for name in _rate_columns(pairs, sel)}
        return SettingUnit(
            cluster=column, n_items=n_items, n_clusters=n_clusters, ci_method="wilson", bootstrap_ci=empty
        ), {}
    columns = _rate_columns(pairs, sel)
    names = list(columns)
    stacked = np.column_stack([columns[k][0] for k in names] + [columns[k][1] for k in names])
    totals = bootstrap_totals(stacked, clusters=codes, n_boot=n_boot, seed=seed)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratios = totals[:, : len(names)] / totals[:, len(names) :]
    cis = {name: _edge(columns[name], percentile_ci(ratios[:, j]), codes) for j, name in enumerate(names)}
    method = f"cluster bootstrap ({n_boot} resamples of {n_clusters} clusters)" if repeated else "wilson"
    unit = SettingUnit(cluster=column, n_items=n_items, n_clusters=n_clusters, ci_method=method,
                       bootstrap_ci={k: cis[k] for k in KINDS})
    return unit, cis if repeated else {}


def _edge(column: tuple[np.ndarray, np.ndarray], ci: Interval, codes: np.ndarray) -> Interval:
    """A share's bootstrap interval, exact at 0/k and k/k (Clopper-Pearson on the clusters in its denominator)."""
    numerator, denominator = column
    total = float(denominator.sum())
    if total <= 0:
        return ci
    clusters = int(np.unique(codes[denominator > 0]).size)
    return edge_interval(float(numerator.sum()) / total, ci, clusters)[0]


@bounded(n_boot=N_BOOT, seed=SEED)
def analyze(
    frame: pd.DataFrame,
    *,
    by: str | None = None,
    cluster: str | None = None,
    reference: str | None = None,
    all_pairs: bool = False,
    n_boot: int = N_BOOT.default,
    seed: int = SEED.default,
    correct: Calibration | dict[str, Any] | None = None,
    correct_source: str = "calibration",
    human: pd.DataFrame | None = None,
    human_source: str = "human labels",
    force: bool = False,
) -> Analysis:
    """Run the paired transition analysis on a pairs table with labels on both sides.

    Args:
        frame: pairs table with ``prompt_*`` and ``response_*`` labels (human or grader).
        by: metadata column to group by (e.g. ``model``); groups are also compared.
        cluster: column identifying the unique prompt, for the cluster bootstrap and the
            matched comparisons; default ``prompt_id`` if present, else the prompt text.
        reference: group compared with every other one (default the first in sort order, fixed
            before looking at the data); ``all_pairs`` compares every two groups instead. Groups
            are matched on the prompt (``prompt_id``, else its text), whatever the unit.
        n_boot: cluster-bootstrap resamples (0 to skip).
        seed: seed of the bootstrap.
        correct: a ``calibration.json`` of the same grader against human labels; adds
            ``corrected``, the bias-corrected shares beside the raw ones
            (:func:`harness.analysis.correction_em.corrected_transitions`).
        correct_source: the calibration's name in messages (its path).
        human: human labels of a random subset of these pairs (whole prompt clusters, optional
            ``inclusion_probability``): adds ``corrected``, every share corrected by prediction-
            powered inference (:mod:`harness.analysis.correction_ppi`); the default correction.
        human_source: the subset's name in messages (its path).
        force: with ``correct``, transport a calibration of another grader, template or shots.

    Returns:
        The :class:`~harness.results.analysis.Analysis`: ``pooled``, ``groups``, ``comparison``,
        ``cluster_bootstrap``, ``escalation_cases`` (ids only) and bookkeeping counts.
    """
    pairs = Pairs(frame)
    if by is not None and by not in frame.columns:
        raise DataError(f"`by` {by!r}: no such column; the table has {sorted(map(str, frame.columns))}")
    column = cluster_column(frame.columns, cluster)
    codes = cluster_of_rows(pairs.frame, column)
    masks = _group_masks(pairs, by)
    pooled, *group_stats = _stats_by_group(pairs, codes, column, [None, *masks.values()], n_boot=n_boot, seed=seed)
    groups = dict(zip(masks, group_stats, strict=True))
    extra: dict[str, Any] = {}
    if len(masks) >= 2 and by is not None:
        extra["comparison"] = _group_comparison(pairs, codes, masks, by, reference=reference, all_pairs=all_pairs)
    extra.update(_correction(pairs, frame, codes, masks, correct=correct, correct_source=correct_source, human=human,
                             human_source=human_source, force=force, reference=reference, all_pairs=all_pairs,
                             n_boot=n_boot, seed=seed))
    cases, truncated = _escalation_cases(pairs, by)
    return Analysis(
        schema_version=SCHEMA_VERSION,
        n_pairs=pairs.n_total,
        n_analyzed=int(pairs.max_p.size),
        n_excluded_incomplete=pairs.n_excluded,
        excluded=pairs.excluded,
        by=by,
        cluster=column,
        pooled=pooled,
        groups=groups,
        cluster_bootstrap=_cluster_bootstrap(pooled, column, n_boot=n_boot, seed=seed),
        **extra,
        escalation_cases=cases,
        escalation_cases_truncated=truncated,
    )


def _relevance(pairs: Pairs) -> np.ndarray | None:
    """Each pair's relevance score (None: the table has none)."""
    if "relevance" not in pairs.frame.columns:
        return None
    relevance = pairs.frame["relevance"].to_numpy(dtype=float, na_value=np.nan)
    return None if np.isnan(relevance).all() else relevance


def _stats_by_group(pairs: Pairs, codes: np.ndarray, column: str | None, masks: list[np.ndarray | None], *,
                    n_boot: int, seed: int) -> list[TransitionStats]:
    """The transition statistics of each mask's pairs (None: every pair, whose intervals are always made), each
    bootstrap seeded with ``seed`` plus the mask's place."""
    relevance = _relevance(pairs)
    found = []
    for offset, mask in enumerate(masks):
        sel = slice(None) if mask is None else mask
        rel = None if relevance is None else relevance[sel]
        unit, cis = _cluster_cis(pairs, sel, codes[sel], column, n_boot=n_boot, seed=seed + offset,
                                 always=mask is None)
        found.append(_transition_stats(pairs.prompt[sel], pairs.response[sel], pairs.max_p[sel], pairs.max_r[sel],
                                       rel, unit, cis))
    return found


def _group_comparison(pairs: Pairs, codes: np.ndarray, masks: dict[str, np.ndarray], by: str, *,
                      reference: str | None, all_pairs: bool) -> Any:
    """The groups compared on the prompts they share (matched on the prompt whatever the unit of analysis)."""
    prompt_key = cluster_column(pairs.frame.columns, None) or "id"
    group_of = pairs.frame[by].astype("string").fillna("<missing>").to_numpy()
    prompts = cluster_of_rows(pairs.frame, prompt_key)
    return compare_groups(pairs.max_p, pairs.max_r, group_of, prompts, codes, by, prompt_key, reference, all_pairs,
                          list(masks))


def _cluster_bootstrap(pooled: TransitionStats, column: str | None, *, n_boot: int, seed: int) -> ClusterBootstrap:
    return ClusterBootstrap(
        unit=f"unique {column} with all its pairs" if column else "each pair",
        n_clusters=pooled.unit.n_clusters,
        n_boot=n_boot,
        seed=seed,
        ci=pooled.unit.bootstrap_ci,
    )


def _group_masks(pairs: Pairs, by: str | None) -> dict[str, np.ndarray]:
    """Each group's pairs (in sort order of the group names; a missing value is its own group)."""
    if by is None:
        return {}
    values = pairs.frame[by].astype("string").fillna("<missing>")
    return {g: (values == g).to_numpy() for g in sorted(values.unique().tolist(), key=str)}


def _correction(
    pairs: Pairs,
    frame: pd.DataFrame,
    codes: np.ndarray,
    masks: dict[str, np.ndarray],
    *,
    correct: Calibration | dict[str, Any] | None,
    correct_source: str,
    human: pd.DataFrame | None,
    human_source: str,
    force: bool,
    reference: str | None,
    all_pairs: bool,
    n_boot: int,
    seed: int,
) -> dict[str, Any]:
    """The ``corrected`` block: from a human-labelled subset (PPI), or a transported calibration (EM)."""
    if correct is not None and human is not None:
        raise DataError(
            "`human` and `correct` correct the same shares two ways: pass `human` (human labels of a random "
            "subset of these pairs; the default) or `correct` (a calibration measured on other pairs), not both"
        )
    ids = pairs.frame["id"].astype(str)
    if correct is not None:
        from .correction_em import corrected_transitions

        return {"corrected": corrected_transitions(
            pairs.max_p, pairs.max_r, codes, correct, source=correct_source, n_boot=n_boot, seed=seed,
            grader=frame.attrs.get("grader"), graded_ids=ids.tolist(), force=force)}
    if human is not None:
        from .correction_ppi import correct_by_subset

        return {
            "corrected": correct_by_subset(
                pairs.prompt,
                pairs.response,
                ids.to_numpy(),
                codes,
                human,
                graded_ids=set(frame["id"].astype(str)),
                groups=masks or None,
                reference=reference,
                all_pairs=all_pairs,
                n_boot=n_boot,
                seed=seed,
                source=human_source,
            )
        }
    return {}


def _escalation_cases(pairs: Pairs, by: str | None) -> tuple[list[EscalationCase], bool]:
    """The escalating pairs (ids, not texts), at most MAX_CASES, and whether the list was cut."""
    escalated = np.flatnonzero(pairs.max_r > pairs.max_p)
    ids = pairs.frame["id"].to_numpy()
    group_values = pairs.frame[by].to_numpy() if by is not None else None
    cases = [
        EscalationCase(
            id=str(ids[i]),
            **({"group": str(group_values[i])} if group_values is not None else {}),
            max_prompt=int(pairs.max_p[i]),
            max_response=int(pairs.max_r[i]),
            mechanism="compliance_escalation" if pairs.max_p[i] >= 1 else "unsolicited_elaboration",
        )
        for i in escalated[:MAX_CASES]
    ]
    return cases, bool(escalated.size > MAX_CASES)
