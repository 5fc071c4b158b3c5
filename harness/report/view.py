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
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.atomic import atomic_path
from ..core.constants import CATEGORIES, LABEL_COLUMNS, SIDES, label_column
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
    #: Items whose runs' verdicts differ (several runs on the page), and how many runs.
    splits: int = 0
    runs: int = 1
    #: Per run, the items where it disagrees with the human labels (``disagreements``: where any run does).
    disagreements_by_run: tuple[int, ...] = ()


#: Characters a page would render invisibly or that reorder text: shown as a visible mark instead.
_INVISIBLE = (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C, 0xFEFF)
_HIDDEN = {"\u2028": "\n", "\u2029": "\n\n", **{chr(c): f"⟨U+{c:04X}⟩" for c in _INVISIBLE}}
_HIDDEN_CHAR = re.compile("[" + "".join(_HIDDEN) + "]")
#: Input columns the page never shows as metadata (the texts, the ids, the labels have their own places).
_NOT_META = {"id", "prompt", "response", "model"}


def visible(value: object) -> str:
    r"""Text as the page shows it: control characters dropped, line separators as line breaks, bidirectional
    controls (which could show a text reversed) as a visible ``⟨U+202E⟩``.

    >>> visible("a\u2028b \u202eevil")
    'a\nb ⟨U+202E⟩evil'
    """
    text = printable(value)
    return _HIDDEN_CHAR.sub(lambda match: _HIDDEN[match.group()], text) if _HIDDEN_CHAR.search(text) else text


class _Strings:
    """A string table: every distinct text stored once (a prompt answered by six models is one string)."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.given: dict[str, int] = {}  # a text as given -> its index (a repeated text is made visible once)
        self.values: list[str] = []

    def __call__(self, value: object) -> int:
        if value is None:
            return -1
        if isinstance(value, str):
            known = self.given.get(value)
            if known is not None:
                return known
            self.given[value] = number = self._add(visible(value))
            return number
        return self._add(visible(value))

    def _add(self, text: str) -> int:
        found = self.index.get(text)
        if found is None:
            found = self.index[text] = len(self.values)
            self.values.append(text)
        return found


_COLUMNS = {side: [label_column(side, c) for c in CATEGORIES] for side in SIDES}


def _labels(row: dict[str, Any], target: str) -> list[int | None] | None:
    """The human labels of one side (four categories) or the relevance, from a pairs row."""
    if target == "relevance":
        value = row.get("relevance")
        return None if value is None else [_int(value)]
    values = [_int(row.get(column)) for column in _COLUMNS[target]]
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
    return bool(grader and human and any(g is not None and h is not None and g != h
                                         for g, h in zip(grader, human, strict=True)))


def _meta_columns(frame: Any) -> list[str]:
    """The input's own columns worth showing beside an item (source, category, ...): not texts, ids or labels."""
    return [str(c) for c in frame.columns if str(c) not in _NOT_META and str(c) not in LABEL_COLUMNS
            and str(c) != "relevance" and not str(c).startswith("_")]


def _verdicts_by_item(run: Any) -> dict[tuple[str, str], tuple[list[int | None] | None, str, Any]]:
    return {(str(r["id"]), str(r["target"])): (_verdict(r), str(r.get("status")), r.get("rationale") or r.get("error"))
            for r in run.records}


def view_items(run: Any, human: Any = None, completion_of: Callable[[str], str | None] | None = None,
               others: Sequence[Any] = (), records: Iterable[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The page's data: a string table and one compact row per item (see the module docstring).

    ``run`` is a :class:`~harness.io.runs.Run` loaded with ``full=True``; ``human`` a pairs frame
    with human labels; ``completion_of`` looks a raw completion up by its request hash; ``others``
    are further runs of the same pairs, whose verdicts are shown beside the first's (items where
    the runs' verdicts differ are marked); ``records``: the run's label records as a stream (default
    ``run.records``), so a 200,000-pair page never holds them all at once.
    """
    strings = _Strings()
    frame = run.input
    meta_columns = _meta_columns(frame)
    rows = {str(r["id"]): r for r in frame.to_dict("records")}
    wanted = ([c for c in human.columns if c == "id" or c == "relevance" or c in LABEL_COLUMNS]
              if human is not None else [])
    humans = {str(r["id"]): r for r in human[wanted].to_dict("records")} if human is not None else {}
    beside = [_verdicts_by_item(other) for other in others]
    items: list[list[Any]] = []
    seen: set[tuple[str, str]] = set()
    stats = {"disagreements": 0, "completions": 0, "with_human": 0, "splits": 0}
    by_run = [0] * (len(others) + 1)  # items where each run disagrees with the human labels

    def add(item_id: str, target: str, record: dict[str, Any] | None) -> None:
        row = rows.get(item_id, {})
        grader = _verdict(record) if record else None
        human_labels = _labels(humans[item_id], target) if item_id in humans else None
        completion = (record or {}).get("completion")
        request_hash = record.get("request_hash") if record and record.get("status") == "ok" else None
        if completion is None and request_hash and completion_of:
            completion = completion_of(str(request_hash))
        theirs = [verdicts.get((item_id, target), (None, "not graded", None)) for verdicts in beside]
        each = [_disagrees(v, human_labels) for v in (grader, *(t[0] for t in theirs))]
        for k, off in enumerate(each):
            by_run[k] += off
        disagree = any(each)  # with several runs: any of them
        stats["disagreements"] += disagree
        stats["completions"] += completion is not None
        stats["with_human"] += human_labels is not None
        shown = row.get("prompt") if target == "prompt" else row.get("response")
        reason = (record or {}).get("error") or ""
        given = [g for g in (grader, *(t[0] for t in theirs)) if g]
        split = int(len(given) > 1 and any(g != given[0] for g in given[1:]))
        stats["splits"] += split
        items.append([
            strings(item_id), strings(row.get("model")), target, strings(shown),
            strings(row.get("prompt")) if target != "prompt" else -1,
            grader, human_labels, (record or {}).get("status", "not graded"), strings(reason) if reason else -1,
            strings((record or {}).get("rationale")), strings(completion), int(disagree),
            (record or {}).get("raw") if record and record.get("raw") != (record.get("severity")) else None,
            [strings(_cell(row.get(c))) for c in meta_columns] if meta_columns else None,
            [[labels, status, strings(said)] for labels, status, said in theirs] if theirs else None, split,
        ])

    for record in run.records if records is None else records:
        key = (str(record["id"]), str(record["target"]))
        seen.add(key)
        add(*key, record)
    targets = [t for t in run.manifest.targets if t in (*SIDES, "relevance")] or list(SIDES)
    for item_id in rows:
        for target in targets:
            if (item_id, target) not in seen:
                add(item_id, target, None)
    # file order is the input's, not the order answers came in
    position = {item_id: n for n, item_id in enumerate(rows)}
    rank = {"prompt": 0, "response": 1, "relevance": 2}
    values = strings.values
    items.sort(key=lambda item: (position.get(values[item[0]], len(position)), rank.get(item[2], 3)))
    names = [_run_name(r) for r in (run, *others)]
    return {"strings": strings.values, "items": items, "categories": list(CATEGORIES),
            "severity_words": list(SEVERITY_WORDS), "has_human": human is not None, "runs": names,
            "meta_columns": meta_columns, "disagreements_by_run": by_run, **stats}


def _cell(value: Any) -> str | None:
    """A metadata cell as text (missing values blank)."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    return str(value)


def _run_name(run: Any) -> str:
    return f"{Path(str(run.path)).name} · {run.manifest.model}"


def script_json(data: Any) -> str:
    """JSON safe inside a ``<script>`` element: nothing in it can end the element or start markup.

    >>> print(script_json({"t": "</script><b>&"}))
    {"t":"\\u003c/script\\u003e\\u003cb\\u003e\\u0026"}
    """
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def render_view(run: Any, out: str | Path, *, human: Any = None, human_source: str | None = None,
                completion_of: Callable[[str], str | None] | None = None, others: Sequence[Any] = (),
                records: Iterable[dict[str, Any]] | None = None) -> ViewSummary:
    """Write the page for a run (``load_run(path, full=True)``) to ``out``, atomically; ``others``: further runs of
    the same pairs shown beside it (a run whose ids share nothing with the first is refused)."""
    from jinja2 import Environment, PackageLoader, StrictUndefined

    from ..core.claims import Output, claim

    target = Path(out)
    if target.is_dir():
        raise ConfigError(f"`out` {target} is a folder; give the page's file name, e.g. {target / 'view.html'}")
    # a page of the user's own at that name, or one of the page's inputs, is never written over
    inputs = [("the run", run.path),
              *(("a run", o.path) for o in others),
              ("`human`", human.attrs.get("source") if human is not None else None)]
    claim([Output(target, kind="document")], inputs=inputs)
    ids = {str(i) for i in run.input["id"]}
    for other in others:
        if not ids & {str(i) for i in other.input["id"]}:
            raise ConfigError(f"{other.path} shares no pair id with {run.path}; the page shows runs of the same pairs")
    data = view_items(run, human, completion_of, others, records)
    if human is not None and data["with_human"] == 0:
        raise DataError(f"no id of the human labels is an id of the run {run.path} (give the labels of these pairs)",
                        path=human_source)
    manifest = run.manifest
    graders = " vs ".join(r.manifest.model for r in (run, *others))
    title = (f"harness view: {graders} on {Path(manifest.input_path or run.path).name}, {len(data['items']):,} items"
             + (f", human labels from {Path(human_source).name}" if human_source else ""))
    meta = {"title": printable(title), "run": printable(run.path), "model": printable(manifest.model),
            "template": manifest.template_hash, "shots": f"{manifest.shots_hash} ({manifest.shots_count} exemplars)",
            "human": printable(human_source or ""), "status": manifest.status,
            "beside": [printable(f"{o.path} (grader {o.manifest.model}, template {o.manifest.template_hash}, shots "
                                 f"{o.manifest.shots_hash})") for o in others]}
    env = Environment(loader=PackageLoader("harness", "report/templates"), undefined=StrictUndefined, autoescape=True)
    # the JSON is made script-safe by script_json (no <, >, &), so the template marks it safe
    page = env.get_template("view.html.j2").render(title=meta["title"], data=script_json(data), meta=script_json(meta))
    with atomic_path(target, kind="document") as tmp:
        tmp.write_text(page, encoding="utf-8")
    graded = sum(1 for item in data["items"] if item[7] != "not graded")
    return ViewSummary(target, len(data["items"]), graded, data["with_human"], data["disagreements"],
                       data["completions"], data["splits"], len(others) + 1, tuple(data["disagreements_by_run"]))
