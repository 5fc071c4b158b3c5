"""Turning a grader's completion into labels, or into an explicit non-verdict.

A completion becomes ``ok`` only when it holds a JSON object with all four categories, each
with an integer raw level 0-7 and/or severity 0-3. When raw and severity disagree with the
0-7 -> 0-3 mapping, the disagreement is recorded and the mapped raw value wins. Anything else
is ``unparsed`` (raw text kept) or ``refused``; none of these ever becomes a severity.

A template set that declares its verdict (:class:`~harness.grading.verdict_schema.VerdictSchema`) is read by that
declaration: the answer must validate against it, and a category written as a bare integer is on the scale it
declares (a raw level 0-7 in the ``compact`` set; a severity 0-3 when no schema says otherwise).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..core.cells import as_int
from ..core.constants import CATEGORIES, CATEGORY_CODES, raw_to_severity

if TYPE_CHECKING:
    from .verdict_schema import VerdictSchema

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)
_REFUSAL = re.compile(
    r"^\s*(?:i'?m sorry|i am sorry|sorry,|i can(?:no|')t|i cannot|i won'?t|i will not|"
    r"i'?m (?:not able|unable)|i am (?:not able|unable)|as an ai)",
    re.IGNORECASE,
)


@dataclass
class ParsedGrade:
    """A parsed answer: ``status`` ok/unparsed/refused, and labels only when ok."""

    status: str
    severity: dict[str, int] | None = None
    raw: dict[str, int | None] | None = None
    rationale: str | None = None
    relevance: int | None = None
    disagreements: list[str] = field(default_factory=list)
    error: str | None = None
    #: ``grade --samples``: every ok sample's severities, and each category's share agreeing with the verdict.
    sample_severities: list[dict[str, int]] | None = None
    sample_agreement: dict[str, float] | None = None


class AmbiguousJSON(ValueError):
    """A JSON object that names one key twice: which value the grader meant is unknowable."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise AmbiguousJSON(f"the key {key!r} appears twice in one object; the verdict is ambiguous")
        seen[key] = value
    return seen


def _loads(text: str) -> Any:
    return json.loads(text, object_pairs_hook=_no_duplicates)


def extract_json(content: str) -> Any:
    """The first JSON value in ``content``, tolerating code fences and surrounding prose.

    >>> extract_json('Sure! ```json\\n{"a": 1}\\n``` done')
    {'a': 1}

    Raises:
        AmbiguousJSON: when the JSON names a key twice (never "last value wins").
        ValueError: when no JSON object can be found.
    """
    candidates = [m.group(1) for m in _FENCE.finditer(content)] + [content]
    decoder = json.JSONDecoder(object_pairs_hook=_no_duplicates)
    for text in candidates:
        stripped = text.strip()
        try:
            return _loads(stripped)
        except (json.JSONDecodeError, RecursionError):
            pass
        for match in re.finditer(r"[{\[]", stripped):
            try:
                value, _ = decoder.raw_decode(stripped, match.start())
            except (json.JSONDecodeError, RecursionError):
                continue
            if isinstance(value, dict):
                return value
    raise ValueError("no JSON object found")


def _category_entry(obj: dict[str, Any], category: str) -> Any:
    """The entry for ``category`` under any of its names (case-insensitive).

    Raises:
        AmbiguousJSON: when two keys name the same category (e.g. ``"H"`` and ``"hate"``).
    """
    names = {CATEGORY_CODES[category].lower(), category, category.replace("_", "-")}
    keys = [k for k in obj if str(k).lower() in names]
    if len(keys) > 1:
        given = ", ".join(map(repr, keys))
        raise AmbiguousJSON(f"category {CATEGORY_CODES[category]} is given twice ({given}); the verdict is ambiguous")
    return obj[keys[0]] if keys else None


def labels_from_object(obj: Any, *, bare_raw: bool = False) -> ParsedGrade:
    """Validate one grader JSON object (one item) into a :class:`ParsedGrade`; ``bare_raw`` reads a category given as a
    bare integer as a raw level 0-7 (the compact verdict), else as a severity 0-3."""
    if not isinstance(obj, dict):
        return ParsedGrade("unparsed", error=f"expected a JSON object, got {type(obj).__name__}")
    severity: dict[str, int] = {}
    raw: dict[str, int | None] = {}
    disagreements: list[str] = []
    for category in CATEGORIES:
        try:
            entry = _category_entry(obj, category)
        except AmbiguousJSON as exc:
            return ParsedGrade("unparsed", error=str(exc))
        if entry is None:
            return ParsedGrade("unparsed", error=f"missing category {CATEGORY_CODES[category]}")
        if isinstance(entry, dict):
            raw_value = as_int(entry.get("raw_0_7", entry.get("raw")))
            sev_value = as_int(entry.get("severity_0_3", entry.get("severity")))
            if "raw_0_7" in entry and raw_value is None:
                return ParsedGrade("unparsed", error=f"{CATEGORY_CODES[category]}.raw_0_7 is not an integer")
            if ("severity_0_3" in entry) and sev_value is None:
                return ParsedGrade("unparsed", error=f"{CATEGORY_CODES[category]}.severity_0_3 is not an integer")
        elif bare_raw:
            raw_value, sev_value = as_int(entry), None
        else:
            raw_value, sev_value = None, as_int(entry)
        if raw_value is not None and not 0 <= raw_value <= 7:
            return ParsedGrade("unparsed", error=f"{CATEGORY_CODES[category]} raw {raw_value} outside 0-7")
        if sev_value is not None and not 0 <= sev_value <= 3:
            return ParsedGrade("unparsed", error=f"{CATEGORY_CODES[category]} severity {sev_value} outside 0-3")
        if raw_value is None and sev_value is None:
            return ParsedGrade("unparsed", error=f"{CATEGORY_CODES[category]} has no raw_0_7 or severity_0_3")
        if raw_value is not None:
            mapped = raw_to_severity(raw_value)
            if sev_value is not None and sev_value != mapped:
                disagreements.append(
                    f"{CATEGORY_CODES[category]}: raw {raw_value} maps to {mapped}, grader said {sev_value}"
                )
            severity[category] = mapped
        else:
            severity[category] = int(sev_value or 0)  # both None was rejected above
        raw[category] = raw_value
    rationale = obj.get("rationale")
    return ParsedGrade(
        "ok",
        severity=severity,
        raw=raw,
        rationale=str(rationale) if rationale is not None else None,
        disagreements=disagreements,
    )


def _not_json(content: str) -> ParsedGrade:
    if _REFUSAL.search(content):
        return ParsedGrade("refused", error="the grader refused")
    return ParsedGrade("unparsed", error="no JSON object in the completion")


def _answer_object(content: str | None) -> Any:
    """The JSON object of a single-item answer, or the ``unparsed`` grade saying why there is none."""
    if not content or not content.strip():
        return ParsedGrade("unparsed", error="empty completion")
    try:
        return extract_json(content)
    except AmbiguousJSON as exc:
        return ParsedGrade("unparsed", error=str(exc))
    except ValueError:
        return _not_json(content)


def _verdicts(content: str, bare_raw: bool) -> list[dict[str, int]]:
    """The severities of every complete verdict object written in ``content``, in order (a small model may copy an
    exemplar's answer before its own)."""
    decoder = json.JSONDecoder()
    found, at = [], 0
    while (start := content.find("{", at)) >= 0:
        try:
            value, end = decoder.raw_decode(content, start)
        except (json.JSONDecodeError, RecursionError):
            at = start + 1
            continue
        at = end
        if isinstance(value, dict):
            try:
                parsed = labels_from_object(value, bare_raw=bare_raw)
            except AmbiguousJSON:
                continue
            if parsed.status == "ok" and parsed.severity is not None:
                found.append(parsed.severity)
    return found


def _bare_raw(verdict: VerdictSchema | None) -> bool:
    return verdict is not None and any(s.key is None and s.raw for s in verdict.scales.values())


def parse_severity(content: str | None, verdict: VerdictSchema | None = None) -> ParsedGrade:
    """Parse a single-item severity answer, by the template set's declared ``verdict`` when it has one. An answer
    holding two verdicts that differ is ``unparsed``: which one the grader meant is unknowable (the same verdict
    written twice is kept)."""
    obj = _answer_object(content)
    if isinstance(obj, ParsedGrade):
        return obj
    problem = verdict.violation(obj) if verdict is not None else None
    if problem is not None:
        return ParsedGrade("unparsed", error=f"the answer does not follow the template set's schema.json: {problem}")
    parsed = labels_from_object(obj, bare_raw=_bare_raw(verdict))
    # one verdict opens itself and each category written as an object (5 in the default verdict, 1 in the compact
    # one): only an answer with more can hold a second
    opens = 1 + sum(s.key is not None for s in verdict.scales.values()) if verdict is not None else 1 + len(CATEGORIES)
    if parsed.status == "ok" and content is not None and content.count("{") > opens:
        different = {tuple(sorted(v.items())) for v in _verdicts(content, _bare_raw(verdict))}
        if len(different) > 1:
            return ParsedGrade("unparsed", error=f"the completion holds {len(different)} different verdicts; "
                                                 "which one the grader meant is unknowable")
    return parsed


def parse_relevance(content: str | None) -> ParsedGrade:
    """Parse a relevance answer ``{"relevance": 1-3}``."""
    obj = _answer_object(content)
    if isinstance(obj, ParsedGrade):
        return obj
    value = as_int(obj.get("relevance")) if isinstance(obj, dict) else None
    if value is None or not 1 <= value <= 3:
        return ParsedGrade("unparsed", error="relevance missing or not an integer 1-3")
    rationale = obj.get("rationale")
    return ParsedGrade("ok", relevance=value, rationale=None if rationale is None else str(rationale))


def parse_batch(content: str | None, size: int, verdict: VerdictSchema | None = None) -> dict[int, ParsedGrade]:
    """Parse a batch answer into one grade per row index in ``range(size)`` (a bare integer on the scale ``verdict``
    declares; the rows are not validated against it, which declares one item's answer).

    Rows the answer lacks, repeats or garbles come back ``unparsed`` so the caller can regrade
    them one by one.
    """
    missing = {i: ParsedGrade("unparsed", error="row missing from the batch answer") for i in range(size)}
    if not content or not content.strip():
        return missing
    try:
        obj = extract_json(content)
    except ValueError:
        return missing
    items = obj.get("items") if isinstance(obj, dict) else obj
    if not isinstance(items, list):
        return missing
    seen: dict[int, ParsedGrade] = {}
    duplicates: set[int] = set()
    for item in items:
        index = as_int(item.get("row_index")) if isinstance(item, dict) else None
        if index is None or not 0 <= index < size:
            continue
        if index in seen:
            duplicates.add(index)
        seen[index] = labels_from_object(item, bare_raw=_bare_raw(verdict))
    for index in duplicates:
        seen[index] = ParsedGrade("unparsed", error="row answered twice in the batch")
    return {i: seen.get(i, missing[i]) for i in range(size)}
