"""Verdict rules: a label record's severity read again from the probabilities it recorded (no new request).

A grader graded with ``grade --logprobs`` keeps P(severity 0..3) per category; one graded with ``--samples K``
keeps its K answers, whose vote shares are such a distribution too. Three rules turn it into a verdict:

* ``argmax``: the grader's own verdict, as graded (its most likely answer; the samples' vote);
* ``expected``: the probability-weighted severity E = Σ s·P(s), rounded (a half rounds up);
* ``thresholds``: E cut at three points per category, ``c1 ≤ c2 ≤ c3``: severity 1 from ``c1``, 2 from ``c2``,
  3 from ``c3`` (a cut of ``None`` gives its level never). ``expected`` is the cuts 0.5, 1.5, 2.5.

A rule other than ``argmax`` needs the distribution: an ok record without one for every category is ``unparsed``
under it, with the reason (never the grader's own verdict passed off as the rule's, never Safe).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..core.bounds import VERDICT_RULES
from ..core.constants import CATEGORIES, SIDES

RULES = VERDICT_RULES
#: The cut points of the ``expected`` rule: E rounded, a half up.
EXPECTED_CUTS: tuple[float, float, float] = (0.5, 1.5, 2.5)
#: Cut points per category; ``None``: that level is never given.
Cuts = Mapping[str, Sequence[float | None]]


def severity_distribution(record: Mapping[str, Any]) -> dict[str, list[float]] | None:
    """P(severity 0..3) per category of an ok record: its recorded probabilities (``grade --logprobs``), else its
    samples' vote shares (``grade --samples``); None when it recorded neither for every category.

    >>> severity_distribution({"probabilities": {c: [0.5, 0.5, 0, 0] for c in CATEGORIES}})["hate"]
    [0.5, 0.5, 0, 0]
    >>> severity_distribution({"samples": [{c: 1 for c in CATEGORIES}, {c: 3 for c in CATEGORIES}]})["sexual"]
    [0.0, 0.5, 0.0, 0.5]
    >>> severity_distribution({"severity": {c: 0 for c in CATEGORIES}}) is None
    True
    """
    probabilities = record.get("probabilities")
    if isinstance(probabilities, Mapping) and all(isinstance(probabilities.get(c), list) for c in CATEGORIES):
        return {c: list(probabilities[c]) for c in CATEGORIES}
    samples = record.get("samples")
    if isinstance(samples, list) and samples and all(isinstance(s, Mapping) for s in samples):
        votes = {c: [0.0] * 4 for c in CATEGORIES}
        for sample in samples:
            for c in CATEGORIES:
                votes[c][int(sample[c])] += 1.0 / len(samples)
        return votes
    return None


def expected_severity(distribution: Sequence[float]) -> float:
    """E = Σ s·P(s) over severities 0..3, the probabilities normalised first.

    >>> expected_severity([0.7, 0.1, 0.1, 0.1])
    0.6
    """
    p = np.asarray(distribution, dtype=float)
    return round(float((np.arange(p.size) * p).sum() / p.sum()), 6)


def cut(expected: float | np.ndarray, cuts: Sequence[float | None]) -> Any:
    """The severity E earns under cut points ``cuts``: how many of them it reaches (``None`` is never reached).

    >>> cut(0.6, EXPECTED_CUTS), cut(1.5, EXPECTED_CUTS), cut(np.array([0.2, 2.9]), (0.1, None, None)).tolist()
    (1, 2, [1, 1])
    """
    values = np.asarray(expected, dtype=float)
    levels = sum((values >= c).astype(int) for c in cuts if c is not None)
    levels = np.zeros(values.shape, dtype=int) + levels
    return int(levels) if levels.ndim == 0 else levels


def rule_severity(record: Mapping[str, Any], rule: str, cuts: Cuts | None = None) -> dict[str, int] | None:
    """An ok side record's severity per category under ``rule`` (None where the rule lacks the distribution)."""
    if rule == "argmax":
        return dict(record["severity"])
    distribution = severity_distribution(record)
    if distribution is None:
        return None
    chosen = {c: EXPECTED_CUTS for c in CATEGORIES} if rule == "expected" else cuts
    if chosen is None:
        raise ValueError("the thresholds rule needs cut points")
    return {c: cut(expected_severity(distribution[c]), chosen[c]) for c in CATEGORIES}


def rule_record(record: dict[str, Any], rule: str, cuts: Cuts | None = None) -> dict[str, Any]:
    """The label record as the rule reads it: the severity replaced (the graded one kept as ``graded_severity``, E
    as ``expected_severity``); a record that is not an ok side, or lacks the distribution, as the rule leaves it."""
    if record.get("status") != "ok" or record.get("target") not in SIDES or rule == "argmax":
        return dict(record)
    severity = rule_severity(record, rule, cuts)
    if severity is None:
        return {**record, "status": "unparsed", "severity": None, "graded_severity": record.get("severity"),
                "error": f"verdict rule {rule}: the grader recorded no P(severity) for every category (grade with "
                         "--logprobs or --samples)"}
    distribution = severity_distribution(record) or {}
    return {**record, "severity": severity, "graded_severity": record.get("severity"),
            "expected_severity": {c: expected_severity(distribution[c]) for c in CATEGORIES}}


def rule_records(records: Sequence[dict[str, Any]], rule: str, cuts: Cuts | None = None) -> list[dict[str, Any]]:
    """Every label record of a run under ``rule`` (relevance and non-ok records unchanged)."""
    if rule not in RULES:
        raise ValueError(f"rule {rule!r}: expected one of {', '.join(RULES)}")
    return [rule_record(r, rule, cuts) for r in records]
