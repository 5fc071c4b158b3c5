"""The report's figures (matplotlib, headless), drawn at print size and saved as SVG and PNG.

Every figure is drawn at the size it is printed at (3.4 in for a paper column, 7 in for the
full text width) with no text under 8 pt, so the SVG drops into a paper unscaled and the PNG
embedded in the HTML report is the same picture. Confusion matrices are row-normalised (each
row: where the first label's items went) with the counts in every cell (10,000 and up as
``12.1k``, so they fit); every bar carries its 95 % CI; a "pooled" group is drawn apart from
the groups, after a gap and a rule, hatched; legends sit under the axes; each figure names
its label source (and grader) in a subtitle.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: Print widths in inches: one paper column, the full text width.
COLUMN_IN = 3.4
FULL_IN = 7.0
#: The smallest font anywhere in a figure, in points at print size.
MIN_PT = 8
POOLED = "pooled"
#: One series of estimates: its name, a value per group and each value's (low, high) interval.
Series = tuple[str, Sequence[float | None], Sequence[Sequence[float | None]]]


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams.update({
        "text.parse_math": False,  # a model named "$x^{2$" is a name, not mathtext
        "font.size": MIN_PT, "axes.titlesize": 9, "axes.labelsize": MIN_PT, "xtick.labelsize": MIN_PT,
        "ytick.labelsize": MIN_PT, "legend.fontsize": MIN_PT, "figure.titlesize": 9,
        "svg.fonttype": "none",  # text stays text in the SVG: searchable, editable, crisp
        "svg.hashsalt": "harness",  # the same figure writes the same SVG
    })
    import matplotlib.pyplot as plt

    return plt


def save(fig: Any, stem: Path | None, *, pdf: bool = False) -> tuple[str, float]:
    """Write the figure as ``STEM.svg`` (and ``STEM.pdf``) when a stem is given, and return it as a base64 PNG at
    200 dpi with its width in inches; the figure is closed."""
    plt = _plt()
    try:
        if stem is not None:
            stem.parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(stem.with_suffix(".svg"), format="svg", bbox_inches="tight", metadata={"Date": None})
            if pdf:
                fig.savefig(stem.with_suffix(".pdf"), format="pdf", bbox_inches="tight",
                            metadata={"CreationDate": None})
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=200, bbox_inches="tight")
    finally:
        plt.close(fig)
    data = buffer.getvalue()
    width_px = int.from_bytes(data[16:20], "big")  # the PNG header's width
    return base64.b64encode(data).decode(), width_px / 200


def count_text(n: float) -> str:
    """A count short enough for its cell: ``950``, ``9999``, ``12.1k``, ``1.2M``.

    >>> [count_text(v) for v in (0, 950, 9999, 12060, 125000, 1234567)]
    ['0', '950', '9999', '12.1k', '125k', '1.2M']
    """
    n = int(n)
    if n < 10_000:
        return str(n)
    if n < 100_000:
        return f"{n / 1000:.1f}k"
    if n < 1_000_000:
        return f"{n / 1000:.0f}k"
    return f"{n / 1e6:.1f}M"


def _subtitle(fig: Any, source: str) -> None:
    if source:
        fig.text(0.0, 1.0, source, ha="left", va="bottom", fontsize=MIN_PT, color="#4a5561", transform=fig.transFigure)


def confusion_grid(matrices: Sequence[tuple[str, list[list[int]]]], *, xlabel: str, ylabel: str,
                   ticks: Sequence[Any], bar_label: str = "share of the row (human label)", source: str = "") -> Any:
    """Small multiples of row-normalised confusion matrices, counts annotated; four panels a row at full width."""
    import numpy as np

    plt = _plt()
    n = len(matrices)
    cols = min(4, n)
    rows = (n + cols - 1) // cols
    width = FULL_IN if cols > 1 else COLUMN_IN
    height = width / cols * 1.05 * rows + 0.3
    fig, axes = plt.subplots(rows, cols, figsize=(width, height), squeeze=False, layout="constrained")
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    image = None
    for index, (ax, (title, matrix)) in enumerate(zip(axes.ravel(), matrices, strict=False)):
        counts = np.asarray(matrix, dtype=float)
        totals = counts.sum(axis=1, keepdims=True)
        shares = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
        image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
        for i in range(counts.shape[0]):
            for j in range(counts.shape[1]):
                colour = "white" if shares[i, j] > 0.55 else "#1a1a1a"
                ax.text(j, i, count_text(counts[i, j]), ha="center", va="center", fontsize=MIN_PT, color=colour)
        ax.set_xticks(range(len(ticks)), [str(t) for t in ticks])
        ax.set_yticks(range(len(ticks)), [str(t) for t in ticks])
        if index // cols == rows - 1 or index + cols >= n:
            ax.set_xlabel(xlabel)
        if index % cols == 0:
            ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=MIN_PT + 1)
    if image is not None:
        bar = fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8)
        bar.set_label(bar_label)
    _subtitle(fig, source)
    return fig


def bars_with_ci(groups: Sequence[str], series: Sequence[Series],
                 *, ylabel: str, title: str = "", percent: bool = False, source: str = "") -> Any:
    """Grouped bars, each with its 95 % CI; a "pooled" group sits apart (gap, rule, hatching); the legend sits below."""
    import numpy as np

    plt = _plt()
    order = [g for g in groups if g != POOLED] + [g for g in groups if g == POOLED]
    index = [list(groups).index(g) for g in order]
    positions = np.arange(len(order), dtype=float)
    if POOLED in order and len(order) > 1:
        positions[-1] += 0.6
    per_group = 0.55 * max(1, len(series)) + 0.25
    width_in = min(FULL_IN, max(COLUMN_IN, per_group * len(order) + 1.2))
    # the longest name outgrows its slot
    rotate = max(len(g) for g in order) * 0.6 * MIN_PT > 0.9 * 72 * width_in / len(order)
    fig, ax = plt.subplots(figsize=(width_in, 2.6 + (0.5 if rotate else 0)), layout="constrained")
    bar = 0.8 / max(1, len(series))
    scale = 100.0 if percent else 1.0
    for k, (name, values, cis) in enumerate(series):
        vals = [values[i] for i in index]
        ints = [cis[i] for i in index]
        heights = np.array([np.nan if v is None else scale * v for v in vals])
        low = [0.0 if v is None or c[0] is None else max(0.0, scale * (v - c[0]))
               for v, c in zip(vals, ints, strict=True)]
        high = [0.0 if v is None or c[1] is None else max(0.0, scale * (c[1] - v))
                for v, c in zip(vals, ints, strict=True)]
        offset = (k - (len(series) - 1) / 2) * bar
        drawn = ax.bar(positions + offset, np.nan_to_num(heights), bar, yerr=[low, high], capsize=2.5, label=name,
                       error_kw={"elinewidth": 0.9})
        if POOLED in order and len(order) > 1:
            drawn[-1].set_hatch("///")
            drawn[-1].set_edgecolor("white")
    if POOLED in order and len(order) > 1:
        ax.axvline((positions[-2] + positions[-1]) / 2, color="#888888", linewidth=0.8, linestyle=":")
    ax.set_xticks(positions, order, rotation=30 if rotate else 0, ha="right" if rotate else "center")
    if POOLED in order and len(order) > 1:
        ax.get_xticklabels()[-1].set_fontstyle("italic")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.spines[["top", "right"]].set_visible(False)
    if len(series) > 1:
        fig.legend(loc="outside lower center", ncol=min(len(series), 4), frameon=False)
    _subtitle(fig, source)
    return fig


def reliability_diagram(series: Sequence[tuple[str, Sequence[tuple[float | None, float | None, int]]]], *,
                        source: str = "") -> Any:
    """Mean forecast against observed rate per bin, one line per side, the diagonal for perfect calibration;
    each point's size grows with its bin's count."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(COLUMN_IN, COLUMN_IN), layout="constrained")
    ax.plot([0, 1], [0, 1], color="#999999", linewidth=1, linestyle="--", label="perfectly calibrated")
    for (name, points), marker in zip(series, ("o", "s", "^"), strict=False):
        kept = [(x, y, n) for x, y, n in points if x is not None and y is not None and n > 0]
        if kept:
            xs, ys, ns = zip(*kept, strict=True)
            ax.plot(xs, ys, marker=marker, linewidth=1.2, label=name)
            ax.scatter(xs, ys, s=[12 + 60 * n / max(ns) for n in ns], alpha=0.35)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("grader's P(severity ≥ threshold)")
    ax.set_ylabel("share the humans labelled harmful")
    ax.legend(loc="upper left", frameon=False)
    _subtitle(fig, source)
    return fig


def estimates_with_ci(names: Sequence[str], series: Sequence[Series],
                      *, xlabel: str, percent: bool = True, source: str = "") -> Any:
    """A dot plot: one row per estimate, one marker per series, each with its CI as a line (shares read side by
    side)."""
    import numpy as np

    plt = _plt()
    height = 0.32 * len(names) * max(1, len(series)) ** 0.5 + 1.1
    fig, ax = plt.subplots(figsize=(COLUMN_IN + 0.8, height), layout="constrained")
    scale = 100.0 if percent else 1.0
    step = 0.7 / max(1, len(series))
    for k, ((label, values, cis), marker) in enumerate(zip(series, ("o", "s", "D", "^"), strict=False)):
        y = np.arange(len(names)) + (k - (len(series) - 1) / 2) * step
        for yi, c in zip(y, cis, strict=True):
            if c and c[0] is not None and c[1] is not None:
                ax.plot([scale * c[0], scale * c[1]], [yi, yi], color=f"C{k}", linewidth=1.2)
        xs = [np.nan if v is None else scale * v for v in values]
        ax.plot(xs, y, marker, color=f"C{k}", label=label, markersize=4)
    ax.set_yticks(range(len(names)), list(names))
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="x", color="#e5e5e5", linewidth=0.6)
    if len(series) > 1:
        fig.legend(loc="outside lower center", ncol=min(len(series), 4), frameon=False)
    _subtitle(fig, source)
    return fig
