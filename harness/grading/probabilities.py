"""What a grader is unsure of: the severity probabilities behind its answer, and its samples' agreement.

**Token log-probabilities** (``grade --logprobs``): a category's uncertainty sits on the first
number the grader writes for it. For each category the first digit after its key
(``"V": {"raw_0_7": 4`` or ``"V": 2``) is found in the content, and its alternatives that are
digits too become probabilities: raw levels 0-7 are summed in pairs into severities 0-3
(``raw_0_7`` first, as the rubric asks), a severity digit counts as itself. The digits the
endpoint left out of its top alternatives are mass we do not see: the probabilities are
normalised over what was seen, and a category where less than half the mass was seen gets none.

**At the constrained position** (a template set that declares its verdict, answered under its
schema): the first number of a category is where the schema lets only that category's values
follow, so its distribution is the alternatives among those values, renormalised over them (they
are all the model could have written there), whatever mass the model put elsewhere; that mass
outside them is kept beside the probabilities (``probability_outside``). harness serve's local
model reports every allowed value at that position (its top alternatives are drawn from the
tokens the grammar allows, with the model's own log-probabilities); another endpoint's top
alternatives may leave some out, and the probabilities are then over the values it reported.

**Samples** (``grade --samples K``, temperature > 0): K answers to the same request; the label
is each category's most frequent severity (ties: the first answer's), ``sample_agreement`` the
share of answers that gave it.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Any

from ..core.constants import CATEGORIES, CATEGORY_CODES
from .jobs import GradeSpec
from .parsing import ParsedGrade
from .verdict_schema import VerdictSchema

#: A category's probabilities are kept only when the seen digits carry at least this much mass.
MIN_MASS = 0.5


def _first_digit(content: str, category: str, bare: str = "severity") -> tuple[int, str] | None:
    """The offset of the first number written for ``category`` and whether it is a raw level (a bare number is on the
    ``bare`` scale)."""
    keys = "|".join(re.escape(k) for k in (CATEGORY_CODES[category], category))
    nested_key = r'(?:\{\s*"(raw_0_7|raw|severity_0_3|severity)"\s*:\s*)?'  # e.g. "V": {"raw_0_7": 5}
    found = re.search(rf'"(?:{keys})"\s*:\s*{nested_key}"?(\d)', content, re.IGNORECASE)
    if found is None:
        return None
    key = found.group(1)
    return found.start(2), bare if key is None else "raw" if key.startswith("raw") else "severity"


def _token_starts(content: str | None, logprobs: dict[str, Any] | None) -> list[int] | None:
    """Each kept token's offset in ``content``, or None when the tokens do not spell it."""
    if not content or not logprobs or "".join(logprobs.get("tokens", [])) != content:
        return None
    starts, offset = [], 0
    for token in logprobs["tokens"]:
        starts.append(offset)
        offset += len(token)
    return starts


def severity_probabilities(content: str | None, logprobs: dict[str, Any] | None) -> dict[str, list[float]] | None:
    """Per category, P(severity 0..3) from the kept token log-probabilities (None where unknown).

    >>> tokens = ['{"', 'V', '":', ' {"', 'raw_0_7', '":', ' ', '4', '}}']
    >>> probs = severity_probabilities('{"V": {"raw_0_7": 4}}', {"tokens": tokens,
    ...     "digits": {"7": [["4", math.log(0.5)], ["5", math.log(0.2)], ["0", math.log(0.3)]]}})
    >>> probs["violence"]
    [0.3, 0.0, 0.7, 0.0]
    """
    starts = _token_starts(content, logprobs)
    if content is None or logprobs is None or starts is None:
        return None
    out: dict[str, list[float]] = {}
    for category in CATEGORIES:
        place = _first_digit(content, category)
        if place is None:
            continue
        index = max(i for i, start in enumerate(starts) if start <= place[0])
        mass = [0.0] * 4
        for digit, logprob in logprobs.get("digits", {}).get(str(index), []):
            value = int(digit) if digit.isdigit() else -1
            severity = value // 2 if place[1] == "raw" and 0 <= value <= 7 else value if 0 <= value <= 3 else None
            if severity is not None:
                mass[severity] += math.exp(logprob)
        total = sum(mass)
        if total >= MIN_MASS:
            out[category] = [round(m / total, 4) for m in mass]
    return out or None


def constrained_probabilities(content: str | None, logprobs: dict[str, Any] | None,
                              verdict: VerdictSchema) -> tuple[dict[str, list[float]], dict[str, float]] | None:
    """Per category, P(severity 0..3) read at the position where ``verdict`` lets only that category's values follow,
    renormalised over them (each sums to 1), and the mass the model put outside them there.

    >>> from harness.grading.templates import load_template_set, prompts_root
    >>> verdict = load_template_set(prompts_root() / "compact").verdict
    >>> content = '{"H": 0, "S": 0, "V": 5, "SH": 0, "rationale": null}'
    >>> tokens = ['{"', 'H', '":', ' ', '0', ',', ' "', 'S', '":', ' ', '0', ',', ' "', 'V', '":', ' ', '5', ',',
    ...           ' "', 'SH', '":', ' ', '0', ',', ' "', 'rational', 'e', '":', ' null', '}']
    >>> sure = [["0", 0.0]]
    >>> violence = [["5", math.log(0.4)], ["4", math.log(0.2)], ["7", math.log(0.2)]]
    >>> digits = {"4": sure, "10": sure, "22": sure, "16": violence}
    >>> probs, outside = constrained_probabilities(content, {"tokens": tokens, "digits": digits}, verdict)
    >>> probs["violence"], outside["violence"], probs["hate"]
    ([0.0, 0.0, 0.75, 0.25], 0.2, [1.0, 0.0, 0.0, 0.0])
    """
    starts = _token_starts(content, logprobs)
    if content is None or logprobs is None or starts is None:
        return None
    probabilities: dict[str, list[float]] = {}
    outside: dict[str, float] = {}
    for category in CATEGORIES:
        scale = verdict.scales[category]
        place = _first_digit(content, category, "raw" if scale.raw else "severity")
        if place is None:
            continue
        allowed = scale.allowed if (place[1] == "raw") == scale.raw else range(8 if place[1] == "raw" else 4)
        index = max(i for i, start in enumerate(starts) if start <= place[0])
        mass = [0.0] * 4
        for digit, logprob in logprobs.get("digits", {}).get(str(index), []):
            value = int(digit) if digit.isdigit() else -1
            if value in allowed:
                mass[value // 2 if place[1] == "raw" else value] += math.exp(logprob)
        total = sum(mass)
        if total > 0:
            probabilities[category] = [round(m / total, 9) for m in mass]  # 9 places: still sums to 1 within 1e-8
            outside[category] = round(max(0.0, 1.0 - total), 9)
    return (probabilities, outside) if probabilities else None


def uncertainty(parsed: ParsedGrade, completion: dict[str, Any], spec: GradeSpec,
                verdict: VerdictSchema | None = None) -> dict[str, Any]:
    """The label record's uncertainty fields: ``probabilities`` (with ``logprobs``; read at the constrained position,
    with ``probability_outside``, when the template set declares its ``verdict``) and the samples with their agreement
    (with ``samples``); nothing when neither was asked for or the grade is not ok."""
    out: dict[str, Any] = {}
    if parsed.status != "ok" or parsed.severity is None:
        return out
    if spec.logprobs and verdict is not None:
        read = constrained_probabilities(completion.get("content"), completion.get("logprobs"), verdict)
        out["probabilities"], out["probability_outside"] = read if read is not None else (None, None)
    elif spec.logprobs:
        out["probabilities"] = severity_probabilities(completion.get("content"), completion.get("logprobs"))
    if parsed.sample_severities is not None:
        out["samples"] = parsed.sample_severities
        out["sample_agreement"] = parsed.sample_agreement
    return out


def consensus(samples: list[ParsedGrade]) -> tuple[ParsedGrade, dict[str, float]]:
    """The samples' verdict (each category's most frequent severity) and each category's agreement.

    Only ``ok`` samples count; the first ok sample supplies the rationale and a raw level matching
    the chosen severity where one does.
    """
    ok = [s for s in samples if s.status == "ok" and s.severity is not None]
    first = ok[0]
    severity: dict[str, int] = {}
    raw: dict[str, int | None] = {}
    agreement: dict[str, float] = {}
    for category in CATEGORIES:
        votes = Counter(s.severity[category] for s in ok if s.severity)
        top = max(votes.values())
        chosen = next(s.severity[category] for s in ok if s.severity and votes[s.severity[category]] == top)
        severity[category] = chosen
        raws = ((s.raw or {}).get(category) for s in ok if s.severity and s.severity[category] == chosen)
        raw[category] = next(raws, None)
        agreement[category] = round(top / len(ok), 4)
    verdict = ParsedGrade(
        "ok", severity=severity, raw=raw, rationale=first.rationale, disagreements=first.disagreements
    )
    return verdict, agreement
