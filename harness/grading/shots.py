"""Few-shot exemplars: a shot set is data (a JSONL file), rendered by the template.

One line per exemplar::

    {"text": "...", "target": "prompt", "labels": {"hate": 0, "sexual": 1, "violence": 0,
     "self_harm": 0}, "rationale": "optional sentence", "id": "optional source id"}

``target`` is ``prompt``, ``response`` or ``any``; labels are merged severities 0-3 keyed by
category name or by the grader's codes (H, S, V, SH).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.atomic import atomic_path
from ..core.constants import CATEGORIES, CATEGORY_CODES, CODE_TO_CATEGORY
from ..core.errors import TemplateError


@dataclass(frozen=True)
class Shot:
    """One graded exemplar."""

    text: str
    target: str
    labels: tuple[tuple[str, int], ...]
    rationale: str = "Graded example."
    source_id: str | None = None

    def label(self, category: str) -> int:
        return dict(self.labels)[category]

    def answer(self) -> str:
        """The grader JSON this exemplar teaches (raw level = lower raw of the severity)."""
        body: dict[str, Any] = {
            CATEGORY_CODES[c]: {"raw_0_7": 2 * s, "severity_0_3": s} for c, s in self.labels
        }
        body["rationale"] = self.rationale
        return json.dumps(body, ensure_ascii=False)

    def as_template_vars(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "target": self.target,
            "labels": dict(self.labels),
            "answer": self.answer(),
            "rationale": self.rationale,
        }

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"text": self.text, "target": self.target, "labels": dict(self.labels)}
        out["rationale"] = self.rationale
        if self.source_id is not None:
            out["id"] = self.source_id
        return out


def _parse_labels(value: Any, where: str) -> tuple[tuple[str, int], ...]:
    if not isinstance(value, dict):
        raise TemplateError(f"{where}: 'labels' must be an object of category -> 0-3")
    labels: dict[str, int] = {}
    for key, severity in value.items():
        category = CODE_TO_CATEGORY.get(key, key)
        if category not in CATEGORIES:
            raise TemplateError(
                f"{where}: unknown category {key!r}; expected one of {list(CATEGORIES)} "
                f"or {list(CATEGORY_CODES.values())}"
            )
        if isinstance(severity, bool) or not isinstance(severity, int) or not 0 <= severity <= 3:
            raise TemplateError(f"{where}: label {key}={severity!r}; expected an integer 0-3")
        labels[category] = severity
    missing = [c for c in CATEGORIES if c not in labels]
    if missing:
        raise TemplateError(f"{where}: 'labels' lacks {missing}; all four categories are needed")
    return tuple((c, labels[c]) for c in CATEGORIES)


def load_shots(path: str | Path | None) -> list[Shot]:
    """Read a shot file; ``None`` means zero-shot (an empty list)."""
    if path is None:
        return []
    file = Path(path)
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise TemplateError(f"{file}: shot file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(f"{file}: cannot read shot file: {exc}") from None
    shots = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{file}, line {number}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TemplateError(f"{where}: malformed JSON at character {exc.colno}: {exc.msg}") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("text"), str) or not obj["text"].strip():
            raise TemplateError(f"{where}: expected an object with a non-empty 'text'")
        target = obj.get("target", "any")
        if target not in ("prompt", "response", "any"):
            raise TemplateError(f"{where}: target {target!r}; expected prompt, response or any")
        shots.append(
            Shot(
                text=obj["text"],
                target=target,
                labels=_parse_labels(obj.get("labels"), where),
                rationale=str(obj.get("rationale") or "Graded example."),
                source_id=None if obj.get("id") is None else str(obj["id"]),
            )
        )
    return shots


def shots_hash(shots: Sequence[Shot]) -> str:
    """Identity of a shot set: the hash of its canonical JSON ("none" when empty)."""
    if not shots:
        return "none"
    canonical = json.dumps([s.to_json() for s in shots], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def write_shots(shots: Iterable[Shot], path: str | Path) -> Path:
    """Write a shot file atomically, in the format :func:`load_shots` reads."""
    target = Path(path)
    with atomic_path(target, kind="shots") as tmp, tmp.open("w", encoding="utf-8") as out:
        for shot in shots:
            out.write(json.dumps(shot.to_json(), ensure_ascii=False) + "\n")
    return target
