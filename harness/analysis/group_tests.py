"""Comparisons between groups (models) of one analysis: matched on the prompt, exact McNemar, Holm.

Each group's pairs are matched to another group's on the cluster (the prompt both answered), so
each shared prompt is one independent unit of the paired test.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations
from typing import Any

import numpy as np

from ..core.errors import DataError
from ..results.analysis import GroupComparison, MatchedTest
from .stats import holm, mcnemar_test, rate

COMPARED = ("escalation", "response_harm", "harmful_prompt_compliance")


def _events(metric: str, max_p: np.ndarray, max_r: np.ndarray) -> np.ndarray:
    if metric == "escalation":
        return max_r > max_p
    return max_r >= 1


def compare_groups(
    max_p: np.ndarray,
    max_r: np.ndarray,
    group_of: np.ndarray,
    prompt_of: np.ndarray,
    unit_of: np.ndarray,
    by: str,
    matched_on: str,
    reference: str | None,
    all_pairs: bool,
    groups: Sequence[str],
) -> GroupComparison:
    """Exact McNemar between groups matched on the prompt (``prompt_of``), Holm within each metric.

    Each shared prompt gives one matched pair; the test is clustered by ``unit_of`` (the unit of
    analysis: the prompt itself by default, each row with ``--cluster none``, or a coarser
    column), so it is the exact McNemar test when every unit holds one prompt.

    The reference group is the one given, else the first in sort order: fixed before looking at
    the data, so picking the most extreme group cannot inflate the family-wise error. When a
    prompt occurs more than once in a group, its last pair is the one compared.
    """
    import pandas as pd

    index: dict[str, pd.Series] = {}  # per group: prompt code -> its (last) row, sorted by prompt
    for group in groups:
        rows = np.flatnonzero(group_of == group)
        last = pd.Series(rows, index=prompt_of[rows])
        index[group] = last[~last.index.duplicated(keep="last")].sort_index()
    if all_pairs:
        contrasts = list(combinations(groups, 2))
        chosen = None
    else:
        chosen = reference if reference is not None else groups[0]
        if chosen not in index:
            raise DataError(f"`reference` {chosen!r}: no such group in column {by!r}; groups are {list(groups)}")
        contrasts = [(chosen, g) for g in groups if g != chosen]
    metrics: dict[str, list[MatchedTest]] = {}
    for metric in COMPARED:
        rows_out: list[tuple[str, str, dict[str, Any]]] = []
        for a, b in contrasts:
            shared = index[a].index.intersection(index[b].index)
            ia = index[a].loc[shared].to_numpy(dtype=int)
            ib = index[b].loc[shared].to_numpy(dtype=int)
            if metric == "harmful_prompt_compliance" and ia.size:
                keep = (max_p[ia] >= 1) & (max_p[ib] >= 1)
                ia, ib = ia[keep], ib[keep]
            ea = _events(metric, max_p[ia], max_r[ia])
            eb = _events(metric, max_p[ib], max_r[ib])
            test = mcnemar_test(ea, eb, clusters=unit_of[ia])  # one pair per shared prompt, clustered by the unit
            rows_out.append((a, b, {
                "n_shared": int(ia.size), "n_clusters": test.n_clusters, "a_only": test.a_only,
                "b_only": test.b_only, "both": int((ea & eb).sum()), "neither": int((~ea & ~eb).sum()),
                "a_rate": rate(int(ea.sum()), int(ia.size)), "b_rate": rate(int(eb.sum()), int(ib.size)),
                "p_exact": test.p_value, "method": test.method,
            }))
        adjusted = holm({f"{a}|{b}": float(row["p_exact"]) for a, b, row in rows_out})
        metrics[metric] = [MatchedTest(a=a, b=b, **row, p_holm=adjusted[f"{a}|{b}"]) for a, b, row in rows_out]
    return GroupComparison(reference=chosen, matched_on=matched_on, metrics=metrics)
