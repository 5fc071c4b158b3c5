"""``analyze``'s result: the paired transition analysis, per setting and category, with CIs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field

from .base import CI, Result
from .common import Proportion
from .provenance import Stamped

if TYPE_CHECKING:
    import pandas as pd


class CategoryStats(Result):
    harmful_prompts: int
    harmful_responses_from_harmful_prompts: int
    persistence: Proportion
    reduction: Proportion
    drift_count: int
    drift_up: Proportion
    drift_share: Proportion
    transitions: dict[str, Proportion]


class RelevanceTable(Result):
    n: int
    counts: dict[str, int]
    mean: float | None
    share_relevance_3: float | None


class Relevance(Result):
    n_known: int
    by_transition: dict[str, RelevanceTable]
    by_response_severity: dict[str, RelevanceTable]


class SettingUnit(Result):
    """A setting's unit of analysis and how its CIs were made (Wilson, or a cluster bootstrap)."""

    cluster: str | None
    n_items: int
    n_clusters: int
    ci_method: str = "wilson"
    bootstrap_ci: dict[str, CI] = Field(default_factory=dict)


class TransitionStats(Result):
    """One setting (a group, or all pairs pooled)."""

    n: int
    reduction: Proportion
    preservation: Proportion
    escalation: Proportion
    harmful_prompts: int
    conditional_reduction: Proportion
    response_harm: Proportion
    harmful_prompt_compliance: Proportion
    benign_drift: Proportion
    transition_matrix: list[list[int]]
    escalation_mechanism: dict[str, int]
    escalation_by_landing_severity: dict[str, int]
    compliance_escalation_by_landing_severity: dict[str, int]
    categories: dict[str, CategoryStats]
    relevance: Relevance | None = None
    unit: SettingUnit


class MatchedTest(Result):
    a: str
    b: str
    n_shared: int
    n_clusters: int
    a_only: int
    b_only: int
    both: int
    neither: int
    a_rate: float | None
    b_rate: float | None
    p_exact: float
    method: str
    p_holm: float


class GroupComparison(Result):
    reference: str | None
    matched_on: str
    metrics: dict[str, list[MatchedTest]]


class ClusterBootstrap(Result):
    unit: str
    n_clusters: int
    n_boot: int
    seed: int
    ci: dict[str, CI]


class CorrectedSetting(Result):
    """One setting's shares (all pairs, or one group) corrected by the human-labelled subset."""

    n_graded: int
    n_graded_clusters: int
    n_labelled: int
    n_labelled_clusters: int
    raw: dict[str, float | None]
    human_only: dict[str, float | None]
    corrected: dict[str, float | None]
    corrected_ci: dict[str, CI]
    lambdas: dict[str, float]


class ShareDifference(Result):
    """A corrected share of group ``a`` minus group ``b``, with a paired cluster-bootstrap interval."""

    a: str
    b: str
    share: str
    diff: float | None
    ci: CI


class ErrorDependence(Result):
    """Are the grader's prompt and response errors independent given the true severities?

    Within each true (prompt, response) severity cell of the calibration pairs, the share of
    response errors among pairs whose prompt was graded wrong minus among those graded right,
    pooled over cells (Mantel-Haenszel weights), with a cluster-bootstrap interval.
    """

    difference: float | None
    ci: CI
    n_pairs: int
    n_prompt_errors: int
    verdict: str


class Correction(Result):
    """Shares corrected for the grader's errors, beside the raw ones, with the method, its
    assumptions and what the data cannot support (``warnings``).

    ``method`` says which correction: prediction-powered from a human-labelled random subset of
    the graded pairs (``analyze --human``; the default), or EM on confusion matrices from a
    calibration set measured elsewhere and transported (``analyze --correct``).
    """

    n_graded: int
    n_graded_clusters: int
    n_calibration: int | None = None
    n_calibration_clusters: int | None = None
    calibration_model: str | None = None
    confusion_prompt: list[list[int]] | None = None
    confusion_response: list[list[int]] | None = None
    n_labelled: int | None = None
    n_labelled_clusters: int | None = None
    design: str | None = None
    source: str | None = None
    raw: dict[str, float | None]
    corrected: dict[str, float | None]
    raw_ci: dict[str, CI]
    corrected_ci: dict[str, CI]
    human_only: dict[str, float | None] | None = None
    lambdas: dict[str, float] | None = None
    groups: dict[str, CorrectedSetting] | None = None
    differences: list[ShareDifference] | None = None
    error_dependence: ErrorDependence | None = None
    calibration_overlap: int | None = None
    n_boot: int
    method: str
    assumptions: list[str]
    warnings: list[str]


class EscalationCase(Result):
    """An escalating pair, by id (never its texts)."""

    id: str
    group: str | None = None
    max_prompt: int
    max_response: int
    mechanism: str


class Analysis(Stamped):
    """``analysis.json``: the paired transition analysis per setting and category, with CIs."""

    schema_version: int
    n_pairs: int
    n_analyzed: int
    n_excluded_incomplete: int
    excluded: dict[str, dict[str, int]]
    by: str | None
    cluster: str | None
    pooled: TransitionStats
    groups: dict[str, TransitionStats]
    comparison: GroupComparison | None = None
    cluster_bootstrap: ClusterBootstrap
    corrected: Correction | None = None
    escalation_cases: list[EscalationCase] = Field(default_factory=list)
    escalation_cases_truncated: bool

    def to_frame(self) -> pd.DataFrame:
        """One row per setting (groups, pooled): the transition rates with their CIs and units."""
        import pandas as pd

        rows = []
        for name, stats in [*self.groups.items(), ("pooled", self.pooled)]:
            row: dict[str, Any] = {
                "setting": name,
                "n": stats.n,
                "n_clusters": stats.unit.n_clusters,
                "ci_method": stats.unit.ci_method,
            }
            for kind in ("reduction", "preservation", "escalation", "conditional_reduction", "response_harm"):
                record: Proportion = getattr(stats, kind)
                row[kind], (row[f"{kind}_ci_low"], row[f"{kind}_ci_high"]) = record.rate, record.ci
            rows.append(row)
        return pd.DataFrame(rows)

    def settings(self, *, pooled_last: bool = True) -> list[tuple[str, TransitionStats]]:
        """The groups and the pooled figures (pooled left out when there is a single group)."""
        groups = list(self.groups.items())
        if len(groups) == 1:
            return groups
        return [*groups, ("pooled", self.pooled)] if pooled_last else [("pooled", self.pooled), *groups]
