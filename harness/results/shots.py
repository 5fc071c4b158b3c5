"""``calibrate-shots``'s result: exemplar sets chosen on dev, judged on held-out test."""

from __future__ import annotations

from .base import Result
from .common import Difference, Unit
from .provenance import Stamped


class DevCandidate(Result):
    name: str
    shots: int
    score: float
    winner_minus_this: Difference | None = None
    tie: bool = False
    indistinguishable: bool = False


class TestSet(Result):
    __test__ = False  # not a pytest class

    set: str
    shots: int
    score: float
    prompt_kappa_quadratic: float | None = None
    prompt_recall: float | None = None
    response_kappa_quadratic: float | None = None
    response_recall: float | None = None
    recall_gap: float | None = None
    chosen_minus_this: Difference | None = None


class ShotSearch(Stamped):
    """``shot_search.json``: exemplar sets chosen on dev and judged on held-out test."""

    schema_version: int
    splits: dict[str, int]
    unit: Unit
    dev: list[DevCandidate]
    chosen: str
    ties: list[str]
    indistinguishable: list[str]
    chosen_shots: str
    test: list[TestSet]
    verdict: str
    objective: str
    n_boot: int
    #: ``chosen`` only where held-out test shows it better than zero-shot and the default set;
    #: else the set to keep (``default`` or ``zero_shot``), with the sentence that says why.
    recommended: str | None = None
    recommendation: str | None = None
    #: The paper's question on test: recall gap (prompt minus response) with the chosen exemplars
    #: minus zero-shot, paired by cluster.
    gap_change: Difference | None = None
    #: The ids of the held-out test pairs: a grader using the chosen exemplars is scored on these only
    #: (``calibrate --held-out``, and a study's graders with ``shots = "chosen"``).
    test_ids: list[str] | None = None
