"""``thresholds.json``: verdict rules over a grader's probabilities, cut points chosen on dev, judged on held-out pairs
(``harness calibrate-thresholds``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from .base import CI, Result
from .common import Unit
from .provenance import Stamped

if TYPE_CHECKING:
    import pandas as pd


def _none() -> CI:
    return [None, None]


class CutPoints(Result):
    """One category's cut points on the expected severity: severity 1 from ``cuts[0]``, 2 from ``cuts[1]``, 3 from
    ``cuts[2]`` (``None``: that level is never given), and the dev score that chose them (in-sample: optimistic)."""

    category: str
    cuts: list[float | None]
    dev_score: float | None
    #: ``search`` (the best on dev), or why the expected rule's cuts were kept (the metric undefined on dev).
    chosen_by: str


class RuleScore(Result):
    """One rule's agreement with the human labels on one scope (both sides pooled, or one side), the four categories
    pooled: quadratic κ, and detection at severity ≥ ``threshold`` (recall, false-positive rate)."""

    rule: str
    scope: str
    n_items: int
    n_clusters: int
    kappa_quadratic: float | None
    kappa_quadratic_ci: CI = Field(default_factory=_none)
    recall: float | None
    recall_ci: CI = Field(default_factory=_none)
    false_positive_rate: float | None
    false_positive_rate_ci: CI = Field(default_factory=_none)


class RuleDifference(Result):
    """The declared metric of rule ``a`` minus rule ``b`` on the same held-out labels, with a paired cluster-bootstrap
    CI (every resample draws the same prompt clusters for both)."""

    a: str
    b: str
    metric: str
    diff: float | None
    ci: CI
    n_items: int
    n_clusters: int


class Split(Result):
    """The seeded split of the labelled pairs' prompt clusters into dev (where cut points are chosen) and held-out
    (where every rule is judged): the same discipline as the exemplar search (``calibrate-shots``)."""

    seed: int
    dev_frac: float
    cluster: str | None
    dev_pairs: int
    dev_clusters: int
    held_out_pairs: int
    held_out_clusters: int
    #: The dev pairs' ids: a run whose verdicts follow cut points chosen on them is never scored on them.
    dev_ids: list[str]
    held_out_ids: list[str]


class Thresholds(Stamped):
    """``thresholds.json``: argmax, expected and thresholds side by side on held-out pairs (cut points from dev)."""

    schema_version: int
    run: str
    model: str
    #: The run folder whose verdicts follow ``rule`` (None when none was written).
    derived: str | None = None
    #: The rule the derived run's verdicts follow.
    rule: str
    #: What the cut points maximise on dev: ``kappa-quadratic``, or ``recall`` at a false-positive rate ≤ ``max_fpr``.
    metric: str
    threshold: int
    max_fpr: float | None = None
    #: Where P(severity) came from: ``logprobs`` (token log-probabilities), ``samples`` (the samples' vote), or both.
    probabilities: str
    cut_points: list[CutPoints]
    split: Split
    #: The held-out labels every rule is judged on.
    unit: Unit
    held_out: list[RuleScore]
    differences: list[RuleDifference]
    #: The same rules on dev, where the cut points were chosen: in-sample, optimistic; never the result.
    dev: list[RuleScore]
    #: Per rule, its declared metric on dev minus on held-out (both sides pooled): what choosing on dev added for
    #: ``thresholds``, the split's own noise for the rules that choose nothing.
    optimism: dict[str, float | None]
    #: Labels left out of the comparison: the side not graded ok, no P(severity), no human label.
    left_out: dict[str, int]
    #: The rule held-out agreement supports (``argmax`` unless another is better with a paired CI above 0).
    recommended: str
    verdict: str
    n_boot: int
    seed: int
    warnings: list[str] = Field(default_factory=list)

    def to_frame(self) -> pd.DataFrame:
        """One row per rule and scope on held-out pairs: n, clusters, quadratic κ, recall, FPR and their CIs."""
        import pandas as pd

        return pd.DataFrame([{"rule": s.rule, "scope": s.scope, "n_items": s.n_items, "n_clusters": s.n_clusters,
                              "kappa_quadratic": s.kappa_quadratic, "kappa_lo": s.kappa_quadratic_ci[0],
                              "kappa_hi": s.kappa_quadratic_ci[1], "recall": s.recall, "recall_lo": s.recall_ci[0],
                              "recall_hi": s.recall_ci[1], "false_positive_rate": s.false_positive_rate}
                             for s in self.held_out])
