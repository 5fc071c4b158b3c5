"""Pieces several results share: a proportion with its interval, the unit of analysis, a paired
difference and a paired test."""

from __future__ import annotations

from .base import CI, Result


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
