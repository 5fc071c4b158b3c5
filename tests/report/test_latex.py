"""The report as LaTeX keeps non-ASCII text."""

from __future__ import annotations


def test_latex_keeps_non_ascii_text() -> None:
    from harness.report.latex import latex_text

    assert latex_text("Zoë naïve 中文") == "Zoë naïve [U+4E2D][U+6587]"
