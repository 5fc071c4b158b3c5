"""The report's tables and figures as a LaTeX document (``harness report --latex``: ``report.tex``).

Each table becomes a ``table`` float with a booktabs ``tabular`` (numbers right-aligned, text
left), its caption and its note as a footnote-sized paragraph; each figure an
``\\includegraphics`` of its PDF in ``figures/``. Text is escaped for LaTeX (``_``, ``%``, ``&``
…) and the symbols the report uses (κ, ≥, –, λ …) are written as LaTeX commands, so the file
compiles with pdflatex and booktabs/graphicx alone; a table can be copied into a paper as is.
"""

from __future__ import annotations

from collections.abc import Sequence

from .blocks import Section, Table

_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
            "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}",
            ">": r"\textgreater{}", "|": r"\textbar{}"}
_SYMBOLS = {"κ": r"$\kappa$", "α": r"$\alpha$", "λ": r"$\lambda$", "ε": r"$\varepsilon$", "ω": r"$\omega$",
            "π": r"$\pi$", "ρ": r"$\rho$", "≥": r"$\geq$", "≤": r"$\leq$", "−": r"$-$", "–": "--", "—": "---",
            "→": r"$\to$", "×": r"$\times$", "±": r"$\pm$", "·": r"$\cdot$", "…": r"\ldots{}", "’": "'", "“": "``",
            "”": "''", "√": r"$\surd$", "≈": r"$\approx$"}


def latex_text(value: object) -> str:
    r"""Text as LaTeX: specials escaped, known symbols as commands, Latin letters (é, ß, ł …) kept as UTF-8 (the
    preamble's inputenc and T1 fonts typeset them), any other character as its code point (``[U+4E2D]``): nothing
    the document holds is lost, and it compiles with pdflatex.

    >>> latex_text("qκ ≥ 0.4 & 50% of a_b")
    'q$\\kappa$ $\\geq$ 0.4 \\& 50\\% of a\\_b'
    >>> latex_text("Café 中")
    'Café [U+4E2D]'
    """
    from ..core.display import printable

    out = []
    for char in printable(value):
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif char in _SYMBOLS:
            out.append(_SYMBOLS[char])
        elif ord(char) < 128 or (0xC0 <= ord(char) <= 0x17F and char not in "×÷"):
            out.append(char)
        else:
            out.append(f"[U+{ord(char):04X}]")
    return " ".join("".join(out).split())


def latex_table(table: Table, label: str) -> str:
    """One table float: caption, booktabs tabular, the note beneath."""
    align = "".join("r" if numeric else "l" for numeric in table.numeric)
    lines = [r"\begin{table}[htbp]", r"\centering", r"\footnotesize", rf"\caption{{{latex_text(table.caption)}}}",
             rf"\label{{tab:{label}}}", rf"\begin{{tabular}}{{{align}}}", r"\toprule",
             " & ".join(latex_text(cell) for cell in table.header) + r" \\", r"\midrule"]
    lines += [" & ".join(latex_text(cell) for cell in row) + r" \\" for row in table.rows]
    lines += [r"\bottomrule", r"\end{tabular}"]
    if table.note:
        lines += [r"\par\smallskip", rf"\parbox{{\linewidth}}{{\scriptsize {latex_text(table.note)}}}"]
    lines.append(r"\end{table}")
    return "\n".join(lines)


def latex_document(title: str, sections: Sequence[Section]) -> str:
    """The whole report; each rendered figure is included from its PDF (``figure.file`` + ``.pdf``)."""
    parts = [r"\documentclass[10pt]{article}",
             r"\usepackage[utf8]{inputenc}",
             r"\usepackage[T1]{fontenc}",
             r"\usepackage{booktabs}",
             r"\usepackage{graphicx}",
             r"\usepackage[margin=1.5cm]{geometry}",
             rf"\title{{{latex_text(title)}}}",
             r"\date{}",
             r"\begin{document}",
             r"\maketitle"]
    for s_index, section in enumerate(sections):
        parts.append(rf"\section{{{latex_text(section.title)}}}")
        parts += [latex_text(p) + "\n" for p in section.paragraphs]
        parts += [latex_table(t, f"s{s_index + 1}t{t_index + 1}") for t_index, t in enumerate(section.tables)]
        for figure in section.figures:
            if figure.file:
                parts += [r"\begin{figure}[htbp]", r"\centering", rf"\includegraphics{{{figure.file}.pdf}}",
                          rf"\caption{{{latex_text(figure.title)}}}", r"\end{figure}"]
    parts.append(r"\end{document}")
    return "\n".join(parts) + "\n"
