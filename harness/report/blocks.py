"""The pieces every section is built of: tables, figures, paragraphs, and how numbers are written.

A section is display text only; :mod:`harness.report.sections` and :mod:`harness.report.raters`
build them from typed results, the terminal and the report render them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..core.constants import CATEGORY_NAMES

_NUMERIC = re.compile(r"^(n/a|[<>]?[-+−]?[\d,.]+%?|-?[\d.]+(–| to )-?[\d.]+%?|\d+/\d+|[\d.]+e[-+]\d+)$")


@dataclass
class Table:
    """One table: header, rows of text cells, and what its columns mean."""

    caption: str
    header: list[str]
    rows: list[list[str]]
    note: str = ""
    #: How many leading columns name a row: a table too wide for the terminal repeats them in every stacked part.
    key: int = 1

    @property
    def numeric(self) -> list[bool]:
        """Per column: do all its cells hold numbers (right-aligned) rather than text?"""
        return [bool(self.rows) and all(_NUMERIC.match(row[j]) for row in self.rows) for j in range(len(self.header))]


@dataclass
class Figure:
    """A figure drawn only when a report renders it (the terminal never pays for matplotlib).

    ``name`` is its file stem (``figures/NAME.svg`` beside the report); ``draw`` returns the
    matplotlib figure, which the report saves as SVG and embeds as PNG.
    """

    title: str
    name: str
    draw: Callable[[], Any]
    #: Set when a report renders it: the PNG (base64) it embeds, the file stem under the report's folder, and
    #: its print width in inches (the HTML shows every figure at one scale, so fonts match across figures).
    png: str = ""
    file: str = ""
    width_in: float = 0.0


@dataclass
class Section:
    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)


def pct(value: Any) -> str:
    """A share as a percentage with one decimal (``n/a`` when unknown)."""
    return "n/a" if value is None else f"{100 * value:.1f}%"


def num(value: Any) -> str:
    """A number with two decimals (``n/a`` when unknown)."""
    return "n/a" if value is None else f"{value:.2f}"


def ci(ci: Any, *, pct: bool = False) -> str:
    """An interval as ``lo–hi`` (``n/a`` when either end is unknown)."""
    if not ci or ci[0] is None or ci[1] is None:
        return "n/a"
    if pct:
        return f"{100 * ci[0]:.1f}–{100 * ci[1]:.1f}%"
    low, high = (f"{v:.2f}".replace("-0.00", "0.00") for v in ci)  # a bound that rounds to zero has no sign
    # "-0.27 to -0.04" reads better than "-0.27–-0.04"
    dash = " to " if low.startswith("-") or high.startswith("-") else "–"
    return f"{low}{dash}{high}"


def scope_name(name: str) -> str:
    """A category's display name."""
    return CATEGORY_NAMES.get(name, name)


def pvalue(value: float | None) -> str:
    """A p-value in one format everywhere: three decimals, or "<0.001".

    >>> [pvalue(v) for v in (2.6e-06, 0.00051, 0.0051, 0.099, 1.0, None)]
    ['<0.001', '<0.001', '0.005', '0.099', '1.000', 'n/a']
    """
    if value is None:
        return "n/a"
    return "<0.001" if value < 0.001 else f"{value:.3f}"
