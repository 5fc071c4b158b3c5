"""Reading a batch's output and error files line by line, trusting nothing in them.

A line is used only when it is a JSON object whose ``custom_id`` is a request of *that* batch;
anything else (not JSON, not an object, a ``custom_id`` that is not a string or belongs to
another batch) is counted and skipped, so one bad line fails at most its own item (which then
ends ``failed`` as unanswered, with the count in its reason). Files are streamed with a cap on
their size: the part past the cap is not read, its items end ``failed`` with the reason.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any


@dataclass
class LineCounts:
    """What the files of one batch held besides usable lines."""

    unreadable: int = 0
    foreign: int = 0
    over_cap: bool = False
    answered: set[str] = field(default_factory=set)

    def reason(self) -> str:
        parts = []
        if self.unreadable:
            parts.append(f"{self.unreadable} unreadable output lines skipped")
        if self.foreign:
            parts.append(f"{self.foreign} lines for requests not of this batch skipped")
        if self.over_cap:
            parts.append("its output file passed the size cap and was not read to the end")
        return f" ({'; '.join(parts)})" if parts else ""


async def rows_of(
    lines: AsyncIterator[str], keys: set[str], counts: LineCounts
) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """The usable rows of an output or error file: ``(custom_id, row)`` for this batch's keys only."""
    async for line in lines:
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            counts.unreadable += 1
            continue
        key = row.get("custom_id") if isinstance(row, dict) else None
        if not isinstance(key, str):
            counts.unreadable += 1
            continue
        if key not in keys:
            counts.foreign += 1
            continue
        counts.answered.add(key)
        yield key, row


async def capped_lines(response: Any, cap: int, counts: LineCounts) -> AsyncIterator[str]:
    """The text lines of a streamed file, stopping (and saying so) past ``cap`` bytes."""
    size = 0
    async for line in response.iter_lines():
        size += len(line.encode("utf-8", errors="replace")) + 1
        if size > cap:
            counts.over_cap = True
            return
        yield line


def line_error(row: dict[str, Any]) -> str | None:
    """Why a row is not a usable answer (an error line, a non-200 status, a body that is not an object), or None."""
    response = row.get("response")
    error = row.get("error")
    status = response.get("status_code") if isinstance(response, dict) else None
    body = response.get("body") if isinstance(response, dict) else None
    if error or status != 200 or not isinstance(body, dict):
        inner = body.get("error") if isinstance(body, dict) else None
        message = ((error.get("message") if isinstance(error, dict) else None)
                   or (inner.get("message") if isinstance(inner, dict) else None))
        return f"line failed ({status}): {message or 'no message'}"
    return None
