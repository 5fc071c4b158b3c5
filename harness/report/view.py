"""``harness view``: every item of a run on one self-contained HTML page, to read a grader's work item by item.

One row per graded item (and per item the run has not graded, said so): id, side, the text
graded, the grader's verdict per category (or relevance), the human labels when a table of
them is given, status and reason, and what the grader said: its rationale and raw scores, the
raw completion where one is known (always for an unparsed or refused answer; for an ok one
when the completion cache still holds it). The page filters (disagreements only, side,
category, severity, status, model, free-text search) and pages through the items in the
browser: no server, opening the file from disk works, and 50,000 items stay responsive.

Safety: the data travel as one JSON document inside a ``<script type="application/json">``
with ``<``, ``>``, ``&`` and the JavaScript line separators escaped, so no text can close the
script; the page's script writes every text with ``textContent``, never as HTML; control
characters are dropped before anything is written.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.atomic import atomic_path
from ..core.constants import CATEGORIES, SIDES, label_column
from ..core.display import printable
from ..core.errors import ConfigError, DataError

#: What the page shows of each severity.
SEVERITY_WORDS = ("Safe", "Low", "Medium", "High")


@dataclass(frozen=True)
class ViewSummary:
    """What ``render_view`` wrote."""

    path: Path
    items: int
    graded: int
    with_human: int
    disagreements: int
    completions: int


#: Characters a page would render invisibly or that reorder text: shown as a visible mark instead.
_HIDDEN = {"\u2028": "\n", "\u2029": "\n\n", **{chr(c): f"⟨U+{c:04X}⟩" for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A),
                                                                                 0x200E, 0x200F, 0x061C, 0xFEFF)}}


def visible(value: object) -> str:
    r"""Text as the page shows it: control characters dropped, line separators as line breaks, bidirectional
    controls (which could show a text reversed) as a visible ``⟨U+202E⟩``.

    >>> visible("a\u2028b \u202eevil")
    'a\nb ⟨U+202E⟩evil'
    """
    text = printable(value)
    return "".join(_HIDDEN.get(ch, ch) for ch in text) if any(ch in _HIDDEN for ch in text) else text


class _Strings:
    """A string table: every distinct text stored once (a prompt answered by six models is one string)."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.values: list[str] = []

    def __call__(self, value: object) -> int:
        if value is None:
            return -1
        text = visible(value)
        found = self.index.get(text)
        if found is None:
            found = self.index[text] = len(self.values)
            self.values.append(text)
        return found


def _labels(row: dict[str, Any], target: str) -> list[int | None] | None:
    """The human labels of one side (four categories) or the relevance, from a pairs row."""
    if target == "relevance":
        value = row.get("relevance")
        return None if value is None else [_int(value)]
    values = [_int(row.get(label_column(target, c))) for c in CATEGORIES]
    return None if all(v is None for v in values) else values


def _int(value: Any) -> int | None:
    try:
        return None if value is None or value != value else int(value)
    except (TypeError, ValueError):
        return None


def _verdict(record: dict[str, Any]) -> list[int | None] | None:
    if record.get("status") != "ok":
        return None
    if record["target"] == "relevance":
        return [_int(record.get("relevance"))]
    severity = record.get("severity") or {}
    return [_int(severity.get(c)) for c in CATEGORIES]


def _disagrees(grader: list[int | None] | None, human: list[int | None] | None) -> bool:
    return bool(grader and human and any(g is not None and h is not None and g != h for g, h in zip(grader, human, strict=True)))


def view_items(run: Any, human: Any = None, completion_of: Callable[[str], str | None] | None = None) -> dict[str, Any]:
    """The page's data: a string table and one compact row per item (see the module docstring).

    ``run`` is a :class:`~harness.io.runs.Run` loaded with ``full=True``; ``human`` a pairs frame
    with human labels; ``completion_of`` looks a raw completion up by its request hash.
    """
    strings = _Strings()
    frame = run.input
    rows = {str(r["id"]): r for r in frame.to_dict("records")}
    humans = {str(r["id"]): r for r in human.to_dict("records")} if human is not None else {}
    items: list[list[Any]] = []
    seen: set[tuple[str, str]] = set()
    stats = {"disagreements": 0, "completions": 0, "with_human": 0}

    def add(item_id: str, target: str, record: dict[str, Any] | None) -> None:
        row = rows.get(item_id, {})
        grader = _verdict(record) if record else None
        human_labels = _labels(humans[item_id], target) if item_id in humans else None
        completion = (record or {}).get("completion")
        if completion is None and record and record.get("status") == "ok" and completion_of and record.get("request_hash"):
            completion = completion_of(str(record["request_hash"]))
        disagree = _disagrees(grader, human_labels)
        stats["disagreements"] += disagree
        stats["completions"] += completion is not None
        stats["with_human"] += human_labels is not None
        shown = row.get("prompt") if target == "prompt" else row.get("response")
        reason = (record or {}).get("error") or ""
        items.append([
            strings(item_id), strings(row.get("model")), target, strings(shown), strings(row.get("prompt")) if target != "prompt" else -1,
            grader, human_labels, (record or {}).get("status", "not graded"), strings(reason) if reason else -1,
            strings((record or {}).get("rationale")), strings(completion), int(disagree),
            (record or {}).get("raw") if record and record.get("raw") != (record.get("severity")) else None,
        ])

    for record in run.records:
        key = (str(record["id"]), str(record["target"]))
        seen.add(key)
        add(*key, record)
    targets = [t for t in run.manifest.targets if t in (*SIDES, "relevance")] or list(SIDES)
    for item_id in rows:
        for target in targets:
            if (item_id, target) not in seen:
                add(item_id, target, None)
    return {"strings": strings.values, "items": items, "categories": list(CATEGORIES), "severity_words": list(SEVERITY_WORDS),
            "has_human": human is not None, **stats}


def script_json(data: Any) -> str:
    """JSON safe inside a ``<script>`` element: nothing in it can end the element or start markup.

    >>> print(script_json({"t": "</script><b>&"}))
    {"t":"\\u003c/script\\u003e\\u003cb\\u003e\\u0026"}
    """
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def render_view(run: Any, out: str | Path, *, human: Any = None, human_source: str | None = None,
                completion_of: Callable[[str], str | None] | None = None) -> ViewSummary:
    """Write the page for a run (``load_run(path, full=True)``) to ``out``, atomically."""
    from jinja2 import Environment, PackageLoader, StrictUndefined

    from ..core.ownership import check_own_file

    target = Path(out)
    if target.is_dir():
        raise ConfigError(f"`out` {target} is a folder; give the page's file name, e.g. {target / 'view.html'}")
    check_own_file(target, param="out")  # a page of the user's own at that name is never written over
    data = view_items(run, human, completion_of)
    if human is not None and data["with_human"] == 0:
        raise DataError(f"no id of the human labels is an id of the run {run.path} (give the labels of these pairs)",
                        path=human_source)
    manifest = run.manifest
    title = (f"harness view: {manifest.model} on {Path(manifest.input_path or run.path).name}, {len(data['items']):,} items"
             + (f", human labels from {Path(human_source).name}" if human_source else ""))
    meta = {"title": printable(title), "run": printable(run.path), "model": printable(manifest.model),
            "template": manifest.template_hash, "shots": f"{manifest.shots_hash} ({manifest.shots_count} exemplars)",
            "human": printable(human_source or ""), "status": manifest.status}
    env = Environment(loader=PackageLoader("harness", "report/templates"), undefined=StrictUndefined, autoescape=True)
    # the JSON is made script-safe by script_json (no <, >, &), so the template marks it safe
    page = env.get_template("view.html.j2").render(title=meta["title"], data=script_json(data), meta=script_json(meta))
    with atomic_path(target) as tmp:
        tmp.write_text(page, encoding="utf-8")
    graded = sum(1 for item in data["items"] if item[7] != "not graded")
    return ViewSummary(target, len(data["items"]), graded, data["with_human"], data["disagreements"], data["completions"])
