"""Paste a ``make validate`` table into docs/statistics.md between its markers, so a claim there is the figure the
run made."""

from __future__ import annotations

from pathlib import Path

README = Path(__file__).resolve().parent.parent / "docs" / "statistics.md"


def paste(marker: str, text: str, readme: Path = README) -> None:
    """Replace what lies between ``<!-- marker -->`` and ``<!-- /marker -->`` in the README with ``text``."""
    content = readme.read_text(encoding="utf-8")
    start, end = f"<!-- {marker} -->\n", f"<!-- /{marker} -->"
    if start not in content or end not in content:
        raise SystemExit(f"{readme}: no {start.strip()} … {end} block to paste the results into")
    head, rest = content.split(start, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(head + start + text.rstrip("\n") + "\n" + end + tail, encoding="utf-8")
