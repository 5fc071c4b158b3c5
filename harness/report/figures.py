"""The report's figures (matplotlib, headless), each returned as a base64 PNG.

Confusion matrices are row-normalised (each row: where the human label's items went) with the
counts written in every cell, in a colour map whose text colour flips on dark cells. Every bar
carries its 95 % CI, and legends sit outside the axes.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import Any


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["text.parse_math"] = False  # a model named "$x^{2$" is a name, not mathtext
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> str:
    plt = _plt()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def confusion_grid(matrices: Sequence[tuple[str, list[list[int]]]], *, xlabel: str, ylabel: str,
                   ticks: Sequence[Any], bar_label: str = "share of the row (human label)") -> str:
    """Small multiples of row-normalised confusion matrices, counts annotated."""
    import numpy as np

    plt = _plt()
    n = len(matrices)
    cols = min(4, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.5 * rows), squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    image = None
    fig.subplots_adjust(wspace=0.35, hspace=0.45)
    for index, (ax, (title, matrix)) in enumerate(zip(axes.ravel(), matrices, strict=False)):
        counts = np.asarray(matrix, dtype=float)
        totals = counts.sum(axis=1, keepdims=True)
        shares = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
        image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
        for i in range(counts.shape[0]):
            for j in range(counts.shape[1]):
                colour = "white" if shares[i, j] > 0.55 else "#1a1a1a"
                ax.text(j, i, f"{int(counts[i, j])}", ha="center", va="center", fontsize=8, color=colour)
        ax.set_xticks(range(len(ticks)), [str(t) for t in ticks], fontsize=7)
        ax.set_yticks(range(len(ticks)), [str(t) for t in ticks], fontsize=7)
        if index // cols == rows - 1 or index + cols >= n:
            ax.set_xlabel(xlabel, fontsize=7)
        if index % cols == 0:
            ax.set_ylabel(ylabel, fontsize=7)
        ax.set_title(title, fontsize=8)
    if image is not None:
        bar = fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8)
        bar.set_label(bar_label, fontsize=7)
        bar.ax.tick_params(labelsize=7)
    return _png(fig)


def bars_with_ci(groups: Sequence[str], series: Sequence[tuple[str, Sequence[float | None], Sequence[Sequence[float | None]]]],
                 *, ylabel: str, title: str, percent: bool = False) -> str:
    """Grouped bars, each with its 95 % CI as an error bar; the legend sits below the axes."""
    import numpy as np

    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(4.2, 1.3 * len(groups) * max(1, len(series)) / 2 + 2), 3.2))
    width = 0.8 / max(1, len(series))
    scale = 100.0 if percent else 1.0
    for k, (name, values, cis) in enumerate(series):
        heights = np.array([np.nan if v is None else scale * v for v in values])
        low = [0.0 if v is None or ci[0] is None else max(0.0, scale * (v - ci[0])) for v, ci in zip(values, cis, strict=True)]
        high = [0.0 if v is None or ci[1] is None else max(0.0, scale * (ci[1] - v)) for v, ci in zip(values, cis, strict=True)]
        offset = (k - (len(series) - 1) / 2) * width
        ax.bar(np.arange(len(groups)) + offset, np.nan_to_num(heights), width, yerr=[low, high], capsize=3, label=name,
               error_kw={"elinewidth": 1})
    ax.set_xticks(range(len(groups)), list(groups), rotation=20 if len(groups) > 3 else 0, ha="right" if len(groups) > 3 else "center",
                  fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.tick_params(axis="y", labelsize=7)
    ax.spines[["top", "right"]].set_visible(False)
    if len(series) > 1:
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=len(series), frameon=False)
    return _png(fig)


def reliability_diagram(series: Sequence[tuple[str, Sequence[tuple[float | None, float | None, int]]]]) -> str:
    """Mean forecast against observed rate per bin, one line per side, the diagonal for perfect calibration;
    each point's size grows with its bin's count."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.2, 4.0))
    ax.plot([0, 1], [0, 1], color="#999999", linewidth=1, linestyle="--", label="perfectly calibrated")
    for (name, points), marker in zip(series, ("o", "s", "^"), strict=False):
        kept = [(x, y, n) for x, y, n in points if x is not None and y is not None and n > 0]
        if kept:
            xs, ys, ns = zip(*kept, strict=True)
            ax.plot(xs, ys, marker=marker, linewidth=1.2, label=name)
            ax.scatter(xs, ys, s=[12 + 60 * n / max(ns) for n in ns], alpha=0.35)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("grader's P(severity ≥ threshold)", fontsize=8)
    ax.set_ylabel("share the humans labelled harmful", fontsize=8)
    ax.legend(fontsize=7, loc="upper left", frameon=False)
    return _png(fig)
