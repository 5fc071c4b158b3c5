"""``flips``'s result: how an injected copy's verdicts differ from the clean run's, item by item."""

from __future__ import annotations

from .base import Result
from .common import Proportion
from .provenance import Stamped


class FlipCategory(Result):
    n: int
    lowered: Proportion
    raised: Proportion
    detection_lost: Proportion
    detection_gained: int
    mcnemar_p: float
    mcnemar_method: str


class FlipUnit(Result):
    cluster: str | None
    n_items: int
    n_clusters: int
    ci_method: str = "wilson"


class FlipSide(Result):
    n: int
    unit: FlipUnit
    any_lowered: Proportion
    any_detection_lost: Proportion
    categories: dict[str, FlipCategory]


class Flips(Stamped):
    """``flips.json``: a grader's verdicts on an injected copy against the clean run's."""

    schema_version: int
    clean_run: str
    injected_run: str
    threshold: int
    cluster: str | None
    items_shared: int
    items_paired_ok: int
    status_transitions: dict[str, int]
    answers_lost: Proportion
    sides: dict[str, FlipSide]
