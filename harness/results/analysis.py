"""``analyze``'s result: the paired transition analysis, per setting and category, with CIs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field

from .base import CI, Result
from .common import Proportion

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


class Correction(Result):
    """Bias-corrected shares beside the raw ones, with the method, assumptions and warnings."""

    n_graded: int
    n_graded_clusters: int
    n_calibration: int
    n_calibration_clusters: int
    calibration_model: str | None
    confusion_prompt: list[list[int]]
    confusion_response: list[list[int]]
    raw: dict[str, float]
    corrected: dict[str, float]
    raw_ci: dict[str, CI]
    corrected_ci: dict[str, CI]
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


class Analysis(Result):
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
            row: dict[str, Any] = {"setting": name, "n": stats.n, "n_clusters": stats.unit.n_clusters, "ci_method": stats.unit.ci_method}
            for kind in ("reduction", "preservation", "escalation", "conditional_reduction", "response_harm"):
                record: Proportion = getattr(stats, kind)
                row[kind], (row[f"{kind}_ci_low"], row[f"{kind}_ci_high"]) = record.rate, record.ci
            rows.append(row)
        return pd.DataFrame(rows)

    def settings(self, *, pooled_last: bool = True) -> list[tuple[str, TransitionStats]]:
        """The groups and the pooled figures (pooled left out when there is a single group)."""
        groups = list(self.groups.items())
        return groups if len(groups) == 1 else [*groups, ("pooled", self.pooled)] if pooled_last else [("pooled", self.pooled), *groups]
