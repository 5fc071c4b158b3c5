"""Pieces several results share: a proportion with its interval, the unit of analysis, a paired
difference and a paired test."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from ..core.constants import FEWEST_CLUSTERS
from .base import CI, Result

#: The fields that say how many clusters an interval beside them rests on (the fewest counts).
CLUSTER_FIELDS = ("n_clusters", "n_labelled_clusters", "n_calibration_clusters", "n_graded_clusters")
#: The fields that name an item of a list in a warning's path (``scopes[response any]``).
_NAMING = ("side", "scope", "name", "a", "b", "setting", "metric")


class Proportion(Result):
    """``k`` of ``n``, the rate (None when ``n`` is 0) and its 95 % interval."""

    k: int
    n: int
    rate: float | None
    ci: CI


class Unit(Result):
    """The unit of analysis: the cluster column (None: rows independent), items and clusters."""

    cluster: str | None
    n_items: int
    n_clusters: int


class Difference(Result):
    """A paired difference with its cluster-bootstrap CI, on ``n_items`` in ``n_clusters``."""

    diff: float | None
    ci: CI
    n_items: int
    n_clusters: int


class PairedTest(Result):
    """A paired test of two graders' correctness on the same items, by cluster (``stats.mcnemar_test``)."""

    n_items: int
    n_clusters: int
    a_only: int
    b_only: int
    discordant_clusters: int
    p_value: float
    method: str


def _clusters(model: BaseModel, inherited: int | None) -> int | None:
    """How many clusters the intervals of ``model`` rest on: its own count (or its ``unit``'s), else its parent's."""
    counts = [getattr(model, name, None) for name in CLUSTER_FIELDS]
    unit = getattr(model, "unit", None)
    counts.append(getattr(unit, "n_clusters", None) if isinstance(unit, BaseModel) else None)
    known = [c for c in counts if isinstance(c, int) and not isinstance(c, bool) and c > 0]
    return min(known) if known else inherited


def _is_interval(value: Any) -> bool:
    return (isinstance(value, list) and len(value) == 2 and all(isinstance(v, int | float) or v is None for v in value)
            and any(v is not None for v in value))


def _item_name(value: Any, index: int | str) -> str:
    names = [str(getattr(value, n)) for n in _NAMING if isinstance(getattr(value, n, None), str)] if isinstance(
        value, BaseModel) else []
    return " ".join(names) or str(index)


def few_cluster_intervals(result: BaseModel, *, fewest: int = FEWEST_CLUSTERS) -> list[tuple[str, int]]:
    """Every interval in ``result`` (a field ``ci`` or ``*_ci``, or a mapping of them) that rests on fewer than
    ``fewest`` clusters, as (path, clusters); the count is the one its nearest result names.

    >>> class Scope(Result):
    ...     n_clusters: int
    ...     flip_ci: CI
    >>> few_cluster_intervals(Scope(n_clusters=2, flip_ci=[0.5, 1.0]))
    [('flip_ci', 2)]
    >>> few_cluster_intervals(Scope(n_clusters=2, flip_ci=[None, None]))
    []
    """
    found: list[tuple[str, int]] = []

    def walk(model: BaseModel, path: str, inherited: int | None) -> None:
        clusters = _clusters(model, inherited)
        for name in type(model).model_fields:
            value = getattr(model, name, None)
            where = f"{path}.{name}" if path else name
            if name == "ci" or name.endswith("_ci"):
                pairs = value.items() if isinstance(value, dict) else [(None, value)]
                for key, interval in pairs:
                    if _is_interval(interval) and clusters is not None and clusters < fewest:
                        found.append((where if key is None else f"{where}.{key}", clusters))
            elif isinstance(value, BaseModel):
                walk(value, where, clusters)
            elif isinstance(value, list | dict):
                items = value.items() if isinstance(value, dict) else enumerate(value)
                for key, item in items:
                    if isinstance(item, BaseModel):
                        walk(item, f"{where}[{_item_name(item, key)}]", clusters)

    walk(result, "", None)
    return found


def few_cluster_warnings(result: BaseModel, *, named: int | None = None) -> list[str]:
    """One warning per cluster count below ``FEWEST_CLUSTERS`` that intervals of ``result`` rest on, naming the count
    and (up to ``named`` of) the intervals: the words every command prints beside such intervals."""
    by_count: dict[int, list[str]] = {}
    for path, clusters in few_cluster_intervals(result):
        by_count.setdefault(clusters, []).append(path)
    every = len(few_cluster_intervals(result, fewest=2**62))
    out = []
    for clusters, paths in sorted(by_count.items()):
        shown = paths if named is None else paths[:named]
        more = f" and {len(paths) - len(shown)} more" if len(paths) > len(shown) else ""
        which = (f"all {len(paths)} intervals here" if len(paths) == every > 1 and named is not None
                 else f"{len(paths)} interval{'s' if len(paths) > 1 else ''} ({', '.join(shown)}{more})")
        out.append(f"{which} rest{'s' if len(paths) == 1 else ''} on {clusters} cluster{'s' if clusters > 1 else ''}, "
                   f"fewer than {FEWEST_CLUSTERS}: a cluster interval on so few covers well under 95 %; read "
                   f"{'it' if len(paths) == 1 else 'them'} as rough, not as 95 % intervals")
    return out
