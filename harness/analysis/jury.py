"""A jury of graders: several runs' verdicts on the same items combined into one, item by item.

The item's verdict comes first, as a jury of people would give it: **harmful at all** (any category at severity 1 or
more) is decided over the members' own item-level verdicts, never pieced together from per-category votes (two of
three members calling a text harmful, one for hate and one for violence, make a harmful verdict). Then each category's
severity, over the members that graded the item ``ok``:

* ``majority``: harmful when at least half the members say so; per category the most frequent severity.
* ``median``: the same item verdict (the median of yes/no verdicts is the majority's); per category the median severity.
* ``any``: harmful when any member says so; per category the highest severity (with two members: either flags it).
* ``mean-probability``: the item's verdict as under ``majority`` (the members' P(severity) are per category: the
  chance that the item is harmful at all would need how categories go together, which no member says); per category
  the most probable severity under the members' averaged P(severity) (``grade --logprobs``, or the vote shares of
  ``--samples``). The mean probabilities are kept for reliability and active picks.

**One tie rule for every rule**: a tie goes to the higher severity, and an item-level tie (as many members for harmful
as against) to harmful: a jury that cannot agree reads the text as the more harmful, the conservative reading. A jury
of two members under ``majority``, ``median`` or ``mean-probability`` would therefore be "either flags it" under
another name: it is refused, naming ``any``. Where the item is harmful but no category reaches severity 1 by itself
(each member flagged another category), the categories flagged by the most members (mean-probability: the most
probably harmful) keep the rule's severity among their flags; where it is safe but a category's averaged probabilities
favour harm, that category is 0; the rationale says so. An item is never harmful in a category while safe as a whole,
nor the reverse.

A verdict needs more than half of the members to have given one (``any``: every member, since a missing member might
have flagged it); otherwise the item is ``unparsed`` with the reason (never a verdict made of a minority, never Safe).
Relevance (1–3) combines by the same rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..core.bounds import JURY_RULES
from ..core.constants import CATEGORIES
from ..core.errors import ConfigError

RULES = JURY_RULES
#: The rules whose two-member verdict is "either flags it" by the tie rule.
MAJORITY_RULES = ("majority", "median", "mean-probability")
TIES = "ties to the higher severity (an item-level tie to harmful)"


def _combine(values: list[int], rule: str) -> int:
    """One severity from the members' (ties to the higher)."""
    if rule == "any":
        return max(values)
    if rule == "median":
        ordered = sorted(values)
        return ordered[len(ordered) // 2]  # the upper of the two middle ones
    counts = np.bincount(values)
    return int(np.flatnonzero(counts == counts.max()).max())


def _highest(values: np.ndarray) -> int:
    """The position of the largest value, the last of equals (ties to the higher severity)."""
    return int(np.flatnonzero(values >= values.max() - 1e-12).max())


def member_probabilities(record: dict[str, Any]) -> dict[str, list[float]] | None:
    """A member's P(severity) per category: its log-probabilities' (``--logprobs``), else its samples' vote shares
    (``--samples``), else None."""
    if record.get("probabilities"):
        return {c: [float(v) for v in record["probabilities"][c]] for c in CATEGORIES}
    samples = record.get("samples")
    if samples:
        return {
            c: (np.bincount([int(s[c]) for s in samples], minlength=4)[:4] / len(samples)).tolist() for c in CATEGORIES
        }
    return None


def _base(item: str, target: str) -> dict[str, Any]:
    return {"id": item, "target": target, "severity": None, "relevance": None, "probabilities": None, "error": None,
            "cached": True, "latency_ms": 0.0, "attempts": 0, "prompt_tokens": 0, "cached_prompt_tokens": 0,
            "completion_tokens": 0, "request_hash": None, "batch_size": 1, "batch_api": False, "completion": None,
            "finish_reason": None, "disagreements": None, "raw": None}


def _verdicts(
    ok: list[tuple[str, dict[str, Any]]], rule: str
) -> tuple[dict[str, int], dict[str, list[float]] | None, bool]:
    """Per category severities, the mean probabilities (mean-probability) and the item-level verdict."""
    if rule == "mean-probability":
        given = [(name, member_probabilities(r)) for name, r in ok]
        lacking = [name for name, p in given if p is None]
        if lacking:
            raise ConfigError(
                f"`rule` mean-probability: {', '.join(lacking)} recorded no probabilities (grade them with "
                "--logprobs or --samples), or use majority or median"
            )
        member = [np.array([p[c] for c in CATEGORIES], dtype=float) for _, p in given if p is not None]
        member = [m / np.clip(m.sum(axis=1, keepdims=True), 1e-12, None) for m in member]
        mean = np.mean(member, axis=0)
        probabilities = {c: mean[j].round(6).tolist() for j, c in enumerate(CATEGORIES)}
        severity = {c: _highest(mean[j]) for j, c in enumerate(CATEGORIES)}
    else:
        severity, probabilities = {c: _combine([int(r["severity"][c]) for _, r in ok], rule) for c in CATEGORIES}, None
    flags = sum(max(r["severity"].values()) >= 1 for _, r in ok)
    return severity, probabilities, flags >= 1 if rule == "any" else 2 * flags >= len(ok)


def _reconcile(
    severity: dict[str, int],
    probabilities: dict[str, list[float]] | None,
    ok: list[tuple[str, dict[str, Any]]],
    rule: str,
) -> tuple[dict[str, int], str]:
    """A harmful item whose categories all combined to 0: the categories flagged by the most members (mean-probability:
    the most probably harmful) keep the rule's severity among their flags."""
    if probabilities is not None:
        harm = {c: 1 - probabilities[c][0] for c in CATEGORIES}
        top = max(harm.values())
        kept = [c for c in CATEGORIES if harm[c] >= top - 1e-12]
        fixed = {**severity, **{c: 1 + _highest(np.asarray(probabilities[c][1:])) for c in kept}}
    else:
        votes = {c: [int(r["severity"][c]) for _, r in ok if int(r["severity"][c]) >= 1] for c in CATEGORIES}
        most = max(len(v) for v in votes.values())
        kept = [c for c in CATEGORIES if len(votes[c]) == most]
        fixed = {**severity, **{c: _combine(votes[c], rule) for c in kept}}
    return fixed, (f"; harmful as a whole though no category by itself: {', '.join(kept)} kept at "
                   f"{', '.join(str(fixed[c]) for c in kept)}")


def jury_record(
    item: str, target: str, members: Sequence[dict[str, Any] | None], names: Sequence[str], rule: str
) -> dict[str, Any]:
    """The jury's label record for one (item, target) from its members' records (None where a member has none)."""
    ok = [(name, r) for name, r in zip(names, members, strict=True) if r is not None and r.get("status") == "ok"]
    base = _base(item, target)
    needed = len(names) if rule == "any" else len(names) // 2 + 1
    if len(ok) < needed:
        missing = [name for name, r in zip(names, members, strict=True) if r is None or r.get("status") != "ok"]
        return {
            **base,
            "status": "unparsed",
            "rationale": None,
            "error": f"jury ({rule}): only {len(ok)} of {len(names)} members gave a verdict "
            f"(none from {', '.join(missing)})" + ("; any needs every member's" if rule == "any" else ""),
        }
    if target == "relevance":
        value = _combine([int(r["relevance"]) for _, r in ok], rule if rule != "mean-probability" else "majority")
        return {
            **base,
            "status": "ok",
            "relevance": value,
            "rationale": f"jury ({rule}) of {', '.join(n for n, _ in ok)}",
        }
    severity, probabilities, harmful = _verdicts(ok, rule)
    note = ""
    if harmful and max(severity.values()) == 0:
        severity, note = _reconcile(severity, probabilities, ok, rule)
    elif not harmful and max(severity.values()) > 0:  # mean-probability only: a majority rule cannot get here
        note = f"; safe by the members' verdicts: {', '.join(c for c in CATEGORIES if severity[c])} set to 0"
        severity = dict.fromkeys(CATEGORIES, 0)
    flags = sum(max(r["severity"].values()) >= 1 for _, r in ok)
    votes = "; ".join(f"{name} {max(r['severity'].values())}" for name, r in ok)
    return {**base, "status": "ok", "severity": severity, "raw": dict(severity), "probabilities": probabilities,
            "rationale": f"jury ({rule}, {TIES}) of {len(ok)} members, {flags} calling it harmful; highest severity "
                         f"each: {votes}{note}"}


def check_rule(rule: str, members: int) -> None:
    """Refuse an unknown rule, and a majority or median of two (by the tie rule it is "either flags it")."""
    if rule not in RULES:
        raise ConfigError(f"`rule` {rule!r}: expected one of {', '.join(RULES)}")
    if rule in MAJORITY_RULES and members == 2:
        raise ConfigError(
            f"`rule` {rule} with two members: when one flags an item and the other does not, the tie goes "
            'to the higher severity, so the verdict is "either flags it"; say so with `rule` any, or add a '
            "third member for a majority"
        )


def jury_labels(runs: Sequence[list[dict[str, Any]]], names: Sequence[str], rule: str,
                targets: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """The jury's label records for every (item, target) any member graded (``targets``: only those), in the first
    member's order."""
    check_rule(rule, len(names))
    indexed = [{(str(r["id"]), str(r["target"])): r for r in records} for records in runs]
    keys = [k for k in dict.fromkeys(k for index in indexed for k in index) if targets is None or k[1] in targets]
    return [
        jury_record(item, target, [index.get((item, target)) for index in indexed], names, rule)
        for item, target in keys
    ]
