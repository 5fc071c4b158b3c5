"""Reading a chat request the way a grader model does.

The last user message holds the text(s) to grade between ``<<<LABEL>>>`` markers (several,
with ``ROW_INDEX`` lines, in a batch), and names the side ("prompt text" / "response text").
Few-shot exemplars come as ``<<<EXAMPLE>>>`` blocks with an ``Answer:`` line in the system
message, or as earlier user turns each answered by an assistant turn; the rubric's raw levels are
read in the order the system message lists them (``- 0: …`` lines). Look-alike characters are
read as their plain forms (NFKC) and invisible ones dropped, as a model would read them.

Every reading here takes time linear in the message (a client chooses the message: a lazy regex
scanning on from each unclosed marker would take minutes on a few hundred kilobytes, holding the
interpreter, and so every other request, meanwhile).
"""

from __future__ import annotations

import bisect
import itertools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..core.constants import CATEGORIES, CATEGORY_CODES
from .graders import Exemplar, Shots

_OPEN = re.compile(r"<<<([A-Z_]+)>>>\n")
_CLOSE = re.compile(r"\n<<<END_([A-Z_]+)>>>")
_ROW = re.compile(r"ROW_INDEX:\s*(\d{1,18})(?!\d)")
_INVISIBLE = re.compile("[\u00ad\u180e\u200b-\u200f\u2060-\u2064\ufeff]")


@dataclass(frozen=True)
class Block:
    """One delimited text of a message: its label, its text and where its opening marker starts."""

    label: str
    body: str
    start: int


def blocks(text: str) -> list[Block]:
    """The delimited blocks of a message in order: what ``<<<L>>>\\n(body)\\n<<<END_L>>>`` matches with the shortest
    body, each match after the last. Each label's closing markers are listed once and looked up, so it takes linear
    time (a lazy regex scans to the end from every unclosed opening: quadratic).

    >>> [(b.label, b.body) for b in blocks("<<<A>>>\\n<<<B>>>\\nx\\n<<<END_A>>> <<<B>>>\\ny\\n<<<END_B>>>")]
    [('A', '<<<B>>>\\nx'), ('B', 'y')]
    """
    closes: dict[str, list[int]] = {}
    for match in _CLOSE.finditer(text):
        closes.setdefault(match.group(1), []).append(match.start())
    found, position = [], 0
    while (opening := _OPEN.search(text, position)) is not None:
        label = opening.group(1)
        ends = closes.get(label, [])
        index = bisect.bisect_left(ends, opening.end())
        if index == len(ends):  # never closed: the next opening may be
            position = opening.start() + 1
            continue
        found.append(Block(label, text[opening.end():ends[index]], opening.start()))
        position = ends[index] + len("\n<<<END_>>>") + len(label)
    return found


def row_indices(text: str) -> tuple[list[int], list[int]]:
    """The ``ROW_INDEX: n`` lines of a batch: where each ends, and its ``n``."""
    found = [(match.end(), int(match.group(1))) for match in _ROW.finditer(text)]
    return [end for end, _ in found], [row for _, row in found]


def row_of(rows: tuple[list[int], list[int]], block: Block, default: int) -> int:
    """The ``n`` of the last ``ROW_INDEX`` line before ``block`` (from :func:`row_indices`), else ``default``."""
    ends, numbers = rows
    before = bisect.bisect_right(ends, block.start)
    return numbers[before - 1] if before else default


def content_text(content: Any) -> str:
    """A message's content as text (OpenAI's array of text parts joined; null as nothing)."""
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return "" if content is None else str(content)


def as_read(text: str) -> str:
    """The message as a model reads it: look-alike characters as their plain forms (NFKC), and
    invisible characters gone, so a fullwidth or zero-width-split marker closes a block here
    just as it might for an LLM grader (what the client's neutralising must prevent)."""
    import unicodedata

    return _INVISIBLE.sub("", unicodedata.normalize("NFKC", text))


_EXAMPLE = re.compile(r"\((?P<side>prompt|response|any) text\):\n<<<EXAMPLE>>>\n")
_EXAMPLE_END = "\n<<<END_EXAMPLE>>>\nAnswer: "
# The answer: one line's JSON object, nothing but blanks after it on that line.
_ANSWER = re.compile(r"\{[^\n]*\}(?=[^\S\n]*$)", re.MULTILINE)
SIDE = re.compile(r"\b(prompt|response) texts?\b", re.IGNORECASE)
LEVEL = re.compile(r"^\s*-\s*([0-7]):", re.MULTILINE)


def _examples(text: str) -> list[tuple[str, str, str]]:
    """The ``(side, text, answer)`` of each exemplar block of a system message (in linear time, as :func:`blocks`)."""
    found, position = [], 0
    while (opening := _EXAMPLE.search(text, position)) is not None:
        end = text.find(_EXAMPLE_END, opening.end())
        if end < 0:  # no exemplar closes after this one opens, nor after any later one
            break
        answer = _ANSWER.match(text, end + len(_EXAMPLE_END))
        if answer is None:
            position = opening.start() + 1
            continue
        found.append((opening.group("side"), text[opening.end():end], answer.group(0)))
        position = answer.end()
    return found


def _labels_of(answer: str) -> tuple[int, int, int, int] | None:
    """The severities an exemplar's answer teaches, or None when it cannot be read."""
    try:
        data = json.loads(answer)
    except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth
        return None
    labels = []
    for category in CATEGORIES:
        entry = data.get(CATEGORY_CODES[category], data.get(category)) if isinstance(data, dict) else None
        value = entry.get("severity_0_3") if isinstance(entry, dict) else entry
        if not isinstance(value, int) or not 0 <= value <= 3:
            return None
        labels.append(value)
    return (labels[0], labels[1], labels[2], labels[3])


def first_level(system: str) -> int | None:
    r"""The severity (0-3) of the raw level a rubric lists first, when it lists two or more as ``- 0: …`` lines.

    >>> first_level("- 0: safe\n- 1: mild\n"), first_level("- 7: worst\n- 6: bad\n"), first_level("no scale")
    (0, 3, None)
    """
    levels = LEVEL.findall(system)
    return int(levels[0]) // 2 if len(levels) >= 2 else None


def read_exemplars(messages: Sequence[dict[str, Any]]) -> Shots:
    """Few-shot exemplars wherever the template puts them: blocks in the system message, or
    earlier user turns (a delimited text) each answered by an assistant turn (the JSON); with the
    severity of the level the system message lists first."""
    out = Shots()
    for m in messages:
        if m.get("role") == "system":
            system = as_read(content_text(m.get("content")))
            if out.first_level is None:
                out.first_level = first_level(system.split("<<<EXAMPLE>>>", 1)[0])
            for side_text, body, answer in _examples(system):
                labels = _labels_of(answer)
                if labels is not None:
                    out.append(Exemplar(body, side_text, labels))
    for asked, answered in itertools.pairwise(messages):
        if asked.get("role") == "user" and answered.get("role") == "assistant":
            content = as_read(content_text(asked.get("content")))
            block = next(iter(blocks(content)), None)
            labels = _labels_of(content_text(answered.get("content")))
            if block is not None and labels is not None:
                side = SIDE.search(content)
                out.append(Exemplar(block.body, side.group(1).lower() if side else "any", labels))
    return out
