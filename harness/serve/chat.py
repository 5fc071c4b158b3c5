"""Reading a chat request the way a grader model does.

The last user message holds the text(s) to grade between ``<<<LABEL>>>`` markers (several,
with ``ROW_INDEX`` lines, in a batch), and names the side ("prompt text" / "response text").
Few-shot exemplars come as ``<<<EXAMPLE>>>`` blocks with an ``Answer:`` line in the system
message, or as earlier user turns each answered by an assistant turn; the rubric's raw levels are
read in the order the system message lists them (``- 0: …`` lines). Look-alike characters are
read as their plain forms (NFKC) and invisible ones dropped, as a model would read them.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Sequence
from typing import Any

from ..core.constants import CATEGORIES, CATEGORY_CODES
from .graders import Exemplar, Shots

BLOCK = re.compile(r"<<<(?P<label>[A-Z_]+)>>>\n(?P<body>.*?)\n<<<END_(?P=label)>>>", re.DOTALL)
ROW = re.compile(r"ROW_INDEX:\s*(\d+)")
# An instruction addressed to the grader: it names the grader or its rubric and asks for a verdict.
_INVISIBLE = re.compile("[\u00ad\u180e\u200b-\u200f\u2060-\u2064\ufeff]")


def as_read(text: str) -> str:
    """The message as a model reads it: look-alike characters as their plain forms (NFKC), and
    invisible characters gone, so a fullwidth or zero-width-split marker closes a block here
    just as it might for an LLM grader (what the client's neutralising must prevent)."""
    import unicodedata

    return _INVISIBLE.sub("", unicodedata.normalize("NFKC", text))


_EXAMPLE = re.compile(
    r"\((?P<side>prompt|response|any) text\):\n<<<EXAMPLE>>>\n(?P<body>.*?)\n<<<END_EXAMPLE>>>\nAnswer: (?P<answer>\{.*?\})\s*$",
    re.DOTALL | re.MULTILINE,
)
SIDE = re.compile(r"\b(prompt|response) texts?\b", re.IGNORECASE)
LEVEL = re.compile(r"^\s*-\s*([0-7]):", re.MULTILINE)


def _labels_of(answer: str) -> tuple[int, int, int, int] | None:
    """The severities an exemplar's answer teaches, or None when it cannot be read."""
    try:
        data = json.loads(answer)
    except json.JSONDecodeError:
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
            system = as_read(str(m.get("content", "")))
            if out.first_level is None:
                out.first_level = first_level(system.split("<<<EXAMPLE>>>", 1)[0])
            for match in _EXAMPLE.finditer(system):
                labels = _labels_of(match.group("answer"))
                if labels is not None:
                    out.append(Exemplar(match.group("body"), match.group("side"), labels))
    for asked, answered in itertools.pairwise(messages):
        if asked.get("role") == "user" and answered.get("role") == "assistant":
            content = as_read(str(asked.get("content", "")))
            block = BLOCK.search(content)
            labels = _labels_of(str(answered.get("content", "")))
            if block is not None and labels is not None:
                side = SIDE.search(content)
                out.append(Exemplar(block.group("body"), side.group(1).lower() if side else "any", labels))
    return out
