"""``calibrate``'s results: agreement of a grader with reference labels, per side and scope."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field

from .base import CI, Result
from .common import Unit
from .provenance import Stamped
from .raters import RaterAgreement

if TYPE_CHECKING:
    import pandas as pd


class Detection(Result):
    """Binary detection (harmful when severity >= the threshold) against the reference."""

    tp: int
    fp: int
    fn: int
    tn: int
    precision: float | None
    recall: float | None
    f1: float | None
    false_positive_rate: float | None
    prevalence_gold: float | None
    prevalence_pred: float | None


class Agreement(Result):
    """One confusion matrix and what it says: accuracy, κ, macro-F1, detection, with cluster CIs."""

    n: int
    confusion: list[list[int]]
    accuracy: float | None
    kappa: float | None
    macro_f1: float | None
    kappa_linear: float | None = None
    kappa_quadratic: float | None = None
    detection: Detection | None = None
    labels: list[Any]
    ordinal: bool
    threshold: Any
    left_out: dict[str, int]
    n_items: int
    n_clusters: int
    cluster: str | None
    notes: list[str]
    ci: dict[str, CI]
    ci_method: str | None
    #: Per metric, the bootstrap resamples where it was undefined (left out of its interval).
    undefined_resamples: dict[str, int] | None = None


class TableAgreement(Agreement, Stamped):
    """``calibrate TABLE --gold G --pred P``: the agreement of two columns of one table."""

    gold: str = ""
    pred: str = ""
    n_rows: int = 0
    #: ``calibrate --raters``: several humans' agreement and the ceiling beside ``pred``.
    human_agreement: RaterAgreement | None = None


class SideReport(Result):
    """One side's agreement per category, pooled over categories and on the max severity."""

    categories: dict[str, Agreement]
    pooled: Agreement
    max: Agreement
    counts: dict[str, int]

    def scopes(self) -> list[tuple[str, Agreement]]:
        """pooled, max, then each category, in the order tables show them."""
        return [("pooled", self.pooled), ("max", self.max), *self.categories.items()]


class Asymmetry(Result):
    """Prompt-side minus response-side recall and quadratic κ, with paired cluster CIs."""

    prompt_recall: float | None
    response_recall: float | None
    recall_gap: float | None
    prompt_kappa_quadratic: float | None
    response_kappa_quadratic: float | None
    kappa_gap: float | None
    recall_gap_ci: CI
    kappa_gap_ci: CI


class ReliabilityBin(Result):
    """Forecasts in ``[low, high)``: how many, their mean, and how often the human label was harmful."""

    low: float
    high: float
    n: int
    mean_forecast: float | None
    observed: float | None


class SideReliability(Result):
    """One side's forecasts ``P(severity ≥ threshold)`` (per pair and category) against the human labels.

    ``ece`` is the plug-in ECE (biased upward on few items); ``ece_debiased`` the RMS calibration error with each
    bin's sampling variance removed (Kumar et al. 2019), its interval resampling prompt clusters; ``calibration_p``
    the p-value of "calibrated" (``calibration_test`` names the method and its assumption).
    """

    n: int
    n_clusters: int
    ece: float
    ece_ci: CI
    brier: float
    bins: list[ReliabilityBin]
    ece_debiased: float | None = None
    ece_debiased_ci: CI = Field(default_factory=lambda: list[float | None]([None, None]))
    calibration_p: float | None = None
    calibration_test: str | None = None
    #: Whether every sum weighs an item by 1/π (human labels from a pick with inclusion probabilities).
    weighted: bool = False
    #: Prompt side: copies of a forecast counted once (the same prompt, category, forecast and label in another pair).
    copies_merged: int | None = None


class SoftScore(Result):
    """A forecast's mean log loss (nats) and multi-class Brier score against held-out raters, or a paired difference
    of two such scores (below 0: the first forecast is better), each with a prompt-cluster interval."""

    log_loss: float
    log_loss_ci: CI
    brier: float
    brier_ci: CI


class SoftSide(Result):
    """A grader's probabilities against several raters on one side, by proper scoring rules (lower is better).

    Each rater's label in turn is the outcome: ``grader`` scores the grader's P(severity), ``verdict`` its severity as
    a forecast made with certainty, ``annotator`` one rater's label as a forecast of another's (the like-for-like
    comparison for the verdict); ``probabilities_minus_verdict`` below 0: the probabilities add to the verdict;
    ``verdict_minus_annotator`` below 0: the verdict predicts a rater better than another rater does.
    """

    n: int
    n_clusters: int
    grader: SoftScore
    verdict: SoftScore
    annotator: SoftScore
    probabilities_minus_verdict: SoftScore
    verdict_minus_annotator: SoftScore
    method: str


class Calibration(Stamped):
    """``calibration.json``: a run's labels against human labels joined on id."""

    run: str
    model: str | None
    n_joined: int
    threshold: int
    unit: Unit
    n_boot: int
    seed: int
    targets: dict[str, SideReport]
    schema_version: int
    asymmetry: dict[str, Asymmetry] | None = None
    #: Per joined pair: cluster code and the human and grader max severity per side (-1 unknown),
    #: kept so that ``analyze --correct`` can resample the calibration set (no text).
    max_severity_pairs: dict[str, list[int]] | None = None
    #: The grader's template and shots (with ``model``: what a transported calibration must match).
    template_hash: str | None = None
    shots_hash: str | None = None
    #: One-way hashes of the joined pairs' ids (in ``max_severity_pairs`` order), to detect overlap
    #: between the calibration set and a graded set.
    id_hashes: list[str] | None = None
    #: What the data cannot support (e.g. graded items that were also exemplars).
    warnings: list[str] | None = None
    #: ``calibrate --by COL``: the column, and the calibration within each of its groups.
    by: str | None = None
    groups: dict[str, Calibration] | None = None
    #: ``calibrate --raters``: several humans' agreement, the ceiling beside this grader, the alt-test.
    human_agreement: RaterAgreement | None = None
    #: How the labelled pairs were weighted (a pick with inclusion probabilities), None for unweighted.
    design: str | None = None
    #: ``grade --logprobs``: per side, the reliability of the grader's probabilities (ECE, Brier, bins).
    reliability: dict[str, SideReliability] | None = None
    #: ``calibrate --raters`` on a run with probabilities: per side, the grader's distribution against the raters'.
    soft_labels: dict[str, SoftSide] | None = None

    def to_frame(self) -> pd.DataFrame:
        """One row per side and scope: n, clusters, κ (plain, quadratic) with CIs, recall, FPR; and, where the run has
        probabilities, the side's calibration error (debiased and plug-in ECE) and Brier score on every row of it."""
        import pandas as pd

        rows = []
        for side, report in self.targets.items():
            reliable = (self.reliability or {}).get(side)
            for scope, m in report.scopes():
                low, high = m.ci.get("kappa_quadratic", [None, None])
                rows.append({"side": side, "scope": scope, "n": m.n, "n_clusters": m.n_clusters, "kappa": m.kappa,
                             "kappa_quadratic": m.kappa_quadratic,
                             "kappa_quadratic_ci_low": low,
                             "kappa_quadratic_ci_high": high,
                             "recall": m.detection.recall if m.detection else None,
                             "false_positive_rate": m.detection.false_positive_rate if m.detection else None,
                             "ece_debiased": reliable.ece_debiased if reliable else None,
                             "ece": reliable.ece if reliable else None, "brier": reliable.brier if reliable else None})
        return pd.DataFrame(rows)
