"""``harness.show(result)``: a result as the report's tables (and figures) in a notebook.

A notebook displays what ``show`` returns through ``_repr_html_``: the same section the report
and the terminal show (:func:`harness.report.sections.section_of`), rendered with the report's
own section template, so numbers, CIs, notes and escaping are the report's. ``figures=False``
skips matplotlib. Outside a notebook, ``repr`` gives the section as plain text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: The report's table styling, scoped to the displayed block.
_STYLE = ("<style>.harness-show table{border-collapse:collapse;font-variant-numeric:tabular-nums;margin:.3em 0}"
          ".harness-show th,.harness-show td{padding:2px 8px;border-bottom:1px solid #dde3ea;text-align:left;"
          "white-space:nowrap}"
          ".harness-show th.num,.harness-show td.num{text-align:right}"
          ".harness-show caption{text-align:left;font-weight:600}"
          ".harness-show .note{font-size:.85em;color:#4a5561}.harness-show img{max-width:100%}</style>")


@dataclass(frozen=True)
class Shown:
    """A displayed result: HTML for notebooks, text for everything else."""

    html: str
    text: str

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return self.text


def show(result: Any, *, figures: bool = True) -> Shown:
    """The result's section (tables, notes and, with ``figures``, its figures as PNG) for a notebook cell."""
    from .document import report_section, template_environment
    from .figures import save

    section = report_section(result)  # opened by its provenance, as in the report
    if figures:
        for figure in section.figures:
            figure.png, figure.width_in = save(figure.draw(), None)
    else:
        section.figures = []
    html = template_environment().get_template("section.html.j2").render(section=section)
    tables = (f"{t.caption}: {', '.join(t.header)} ({len(t.rows)} rows)" for t in section.tables)
    text = "\n".join([section.title, *section.paragraphs, *tables])
    return Shown(f'{_STYLE}<div class="harness-show">{html}</div>', text)
