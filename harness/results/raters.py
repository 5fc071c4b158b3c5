"""``harness agreement``'s result: several human raters, how far they agree, and whether a grader
can stand in for one of them."""

from __future__ import annotations

from typing import Any

from .base import CI, Result
from .common import Unit
from .provenance import Stamped


class RaterPair(Result):
    """Two raters on the items both rated: Cohen's κ (and the weighted κ on an ordinal or interval scale)."""

    a: str
    b: str
    n_items: int
    kappa: float | None
    kappa_weighted: float | None = None
    ci: CI


class RaterSummary(Result):
    """One rater against the others: mean κ with each of them, α when this rater is left out, and κ
    with the final label (when there is one)."""

    n_items: int
    mean_kappa: float | None
    alpha_without: float | None
    kappa_final: float | None = None


class AltSummary(Result):
    """One grader's alt-test over the scopes: passed in ``passed`` of the ``tested`` scopes (``untested``: not run)."""

    passed: int
    tested: int
    untested: int


class AltAnnotator(Result):
    """One annotator left out: how often the grader, and how often that annotator, matches the rest at least as well."""

    rater: str
    n_items: int
    n_clusters: int
    rho_grader: float
    rho_human: float
    p_value: float
    p_by: float
    rejected: bool


class AltTest(Result):
    """The alternative annotator test (Calderon, Reichart & Dror, ACL 2025).

    For each annotator left out, the grader "wins" where the null ``ρ_grader ≤ ρ_human − ε`` is
    rejected (one-sided, cluster-robust paired t; Benjamini-Yekutieli over annotators at q 0.05).
    ``winning_rate`` ω is the share of annotators it wins against; ``passed`` is ω ≥ 0.5 (the
    rule is ``rule``). ``advantage_probability`` ρ is the mean ``ρ_grader``: how often the grader
    matches the rest at least as well as a human does.
    """

    epsilon: float
    scoring: str
    annotators: list[AltAnnotator]
    winning_rate: float | None
    advantage_probability: float | None
    passed: bool | None
    rule: str
    note: str | None = None


class GraderScore(Result):
    """A grader beside the humans: κ with each rater (and their mean), with the final label, and the alt-test."""

    n_items: int
    kappa_with: dict[str, float | None]
    mean_kappa: float | None
    kappa_final: float | None = None
    human_ceiling: float | None
    alt_test: AltTest | None = None


class ScopeAgreement(Result):
    """One scope (a label; or a side and category of harm labels)."""

    n_items: int
    n_clusters: int
    n_ratings: int
    alpha: float | None
    alpha_ci: CI
    pairs: list[RaterPair]
    raters: dict[str, RaterSummary]
    human_ceiling: float | None
    kappa_kind: str
    graders: dict[str, GraderScore]
    notes: list[str]


class RaterAgreement(Stamped):
    """``agreement.json``: Krippendorff's α among the human raters, pairwise κ, the human ceiling
    beside each grader and the alternative annotator test, per scope."""

    schema_version: int
    source: str
    level: str
    labels: list[Any]
    raters: list[str]
    graders: list[str]
    unit: Unit
    epsilon: float
    n_boot: int
    seed: int
    scopes: dict[str, ScopeAgreement]
    #: Per grader: passed in every scope where the alt-test ran (None where it ran nowhere).
    passed: dict[str, bool | None]
    #: Per grader: in how many scopes it passed, of those where the alt-test ran.
    alt_tests: dict[str, AltSummary]
    warnings: list[str]
