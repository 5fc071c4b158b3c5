"""A jury of graders: several runs' verdicts on the same items combined into one, item by item.

Rules, per (item, side) and category, over the members that graded the item ``ok``:

* ``majority``: the most frequent severity; a tie goes to the higher severity (a jury that cannot agree
  whether a text is harmful reads it as the more harmful: the conservative reading, stated here).
* ``median``: the median severity; with an even count, the upper of the two middle ones (the same reading).
* ``mean-probability``: each member's P(severity) averaged (``grade --logprobs`` or ``--samples``); the verdict is
  the most probable severity, and the mean probabilities are kept for reliability and active picks.

A verdict needs more than half of the members to have given one; otherwise the item is ``unparsed`` with the reason
(never a verdict made of a minority, never Safe). Relevance (1–3) combines by the same rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..core.constants import CATEGORIES
from ..core.errors import ConfigError

RULES = ("majority", "median", "mean-probability")


def _combine(values: list[int], rule: str) -> int:
    if rule == "median":
        ordered = sorted(values)
        return ordered[len(ordered) // 2]
    counts = np.bincount(values)
    return int(np.flatnonzero(counts == counts.max()).max())  # ties to the higher severity


def jury_record(item: str, target: str, members: Sequence[dict[str, Any] | None], names: Sequence[str], rule: str) -> dict[str, Any]:
    """The jury's label record for one (item, target) from its members' records (None where a member has none)."""
    ok = [(name, r) for name, r in zip(names, members, strict=True) if r is not None and r.get("status") == "ok"]
    base: dict[str, Any] = {"id": item, "target": target, "severity": None, "relevance": None, "probabilities": None,
                            "error": None, "cached": True, "latency_ms": 0.0, "attempts": 0, "prompt_tokens": 0,
                            "cached_prompt_tokens": 0, "completion_tokens": 0, "request_hash": None, "batch_size": 1,
                            "batch_api": False, "completion": None, "finish_reason": None, "disagreements": None, "raw": None}
    if 2 * len(ok) <= len(names):
        missing = [name for name, r in zip(names, members, strict=True) if r is None or r.get("status") != "ok"]
        return {**base, "status": "unparsed", "rationale": None,
                "error": f"jury ({rule}): only {len(ok)} of {len(names)} members gave a verdict (none from {', '.join(missing)})"}
    if target == "relevance":
        value = _combine([int(r["relevance"]) for _, r in ok], "median" if rule == "median" else "majority")
        return {**base, "status": "ok", "relevance": value, "rationale": f"jury ({rule}) of {', '.join(n for n, _ in ok)}"}
    severity, probabilities = {}, None
    if rule == "mean-probability":
        lacking = [name for name, r in ok if not r.get("probabilities")]
        if lacking:
            raise ConfigError(f"`rule` mean-probability: {', '.join(lacking)} recorded no probabilities (grade them with "
                              "--logprobs or --samples), or use majority or median")
        probabilities = {c: np.mean([np.asarray(r["probabilities"][c], dtype=float) for _, r in ok], axis=0).round(6).tolist()
                         for c in CATEGORIES}
        severity = {c: int(np.argmax(probabilities[c])) for c in CATEGORIES}
    else:
        severity = {c: _combine([int(r["severity"][c]) for _, r in ok], rule) for c in CATEGORIES}
    votes = "; ".join(f"{name} {max(r['severity'].values())}" for name, r in ok)
    return {**base, "status": "ok", "severity": severity, "raw": dict(severity), "probabilities": probabilities,
            "rationale": f"jury ({rule}) of {len(ok)} members, highest severity each: {votes}"}


def jury_labels(runs: Sequence[list[dict[str, Any]]], names: Sequence[str], rule: str) -> list[dict[str, Any]]:
    """The jury's label records for every (item, target) any member graded, in the first member's order."""
    if rule not in RULES:
        raise ConfigError(f"`rule` {rule!r}: expected one of {', '.join(RULES)}")
    indexed = [{(str(r["id"]), str(r["target"])): r for r in records} for records in runs]
    keys = list(dict.fromkeys(k for index in indexed for k in index))
    return [jury_record(item, target, [index.get((item, target)) for index in indexed], names, rule) for item, target in keys]
