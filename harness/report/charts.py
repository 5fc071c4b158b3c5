"""Which figures each result gets, and the label source each one names.

The drawing itself is :mod:`harness.report.figures`; here a typed result becomes a list of
:class:`~harness.report.blocks.Figure` whose titles say what is drawn, from whose labels, and
whose subtitle (inside the image, so a figure copied into a paper keeps it) names the label
source and grader from the result's provenance.
"""

from __future__ import annotations

from typing import Any

from ..results.analysis import Analysis, Correction, TransitionStats
from ..results.calibration import Calibration
from ..results.comparison import Comparison
from .blocks import Figure, scope_name


def label_source(result: Any, fallback: str = "") -> str:
    """'labels: grader harness-baseline vs human' from a result's provenance (or the fallback)."""
    provenance = getattr(result, "provenance", None)
    if provenance is None:
        return fallback
    models = ", ".join(dict.fromkeys(g.model for g in provenance.graders))
    graders = f" · grader{'s' if ',' in models else ''} {models}" if models else ""
    return f"labels: {provenance.label_source}" + graders


def calibration_figures(data: Calibration) -> list[Figure]:
    from .figures import bars_with_ci, confusion_grid, reliability_diagram

    source = label_source(data, f"labels: grader {data.model or data.run} vs human")
    targets = data.targets
    grid = [(f"{side}: {scope_name(scope)}", (report.pooled if scope == "pooled" else report.max).confusion)
            for side, report in targets.items() for scope in ("pooled", "max")]
    series = []
    for side, report in targets.items():
        metrics = [report.pooled, *report.categories.values()]
        series.append((side,
                       [m.kappa_quadratic for m in metrics],
                       [m.ci.get("kappa_quadratic", [None, None]) for m in metrics]))
    names = ["pooled", *(scope_name(c) for c in next(iter(targets.values())).categories)] if targets else []
    figures = [
        Figure("Confusion matrices (rows: human label, share of the row; numbers: counts)", "calibration-confusion",
               lambda: confusion_grid(grid, xlabel="grader", ylabel="human", ticks=[0, 1, 2, 3], source=source)),
        Figure("Quadratic κ by side and category (95% cluster-bootstrap CIs)", "calibration-kappa",
               lambda: bars_with_ci(names, series, ylabel="quadratic κ vs human", source=source)),
    ]
    if data.reliability:
        curves = [(side, [(b.mean_forecast, b.observed, b.n) for b in r.bins]) for side, r in data.reliability.items()]
        figures.append(Figure("Reliability diagram", "calibration-reliability",
                              lambda: reliability_diagram(curves, source=source)))
    return figures


def comparison_figures(data: Comparison) -> list[Figure]:
    from .figures import bars_with_ci

    runs = data.runs
    names = list(runs)
    series = [(side, [s.kappa_quadratic if (s := runs[n].sides.get(side)) else None for n in names],
               [s.kappa_quadratic_ci if (s := runs[n].sides.get(side)) else [None, None] for n in names])
              for side in ("prompt", "response") if any(side in runs[n].sides for n in names)]
    source = label_source(data, "labels: graders vs human · " + ", ".join(f"{n}: {r.model}" for n, r in runs.items()))
    return [Figure("Agreement by grader (95% CIs)", "comparison-kappa",
                   lambda: bars_with_ci(names, series, ylabel="quadratic κ vs human", source=source))]


def analysis_figures(data: Analysis, settings: list[tuple[str, TransitionStats]]) -> list[Figure]:
    """The transition matrix, the transitions and the safety posture by setting, persistence by category, and the
    corrected shares beside the grader's and the humans' own."""
    from .figures import bars_with_ci, confusion_grid, estimates_with_ci

    source = label_source(data, "labels: as given in the analysed table")
    corrected_source = source
    if data.corrected is not None:  # every figure but the corrected one draws the grader's own labels
        source = source.replace(", corrected by human labels", " (uncorrected)")
    names = [n for n, _ in settings]
    kinds = ("reduction", "preservation", "escalation")
    series = [(k, [getattr(s, k).rate for _, s in settings], [getattr(s, k).ci for _, s in settings]) for k in kinds]
    postures = (("response_harm", "response harm"),
                ("harmful_prompt_compliance", "harmful-prompt compliance"),
                ("benign_drift", "benign drift"))
    posture = [(label, [getattr(s, key).rate for _, s in settings], [getattr(s, key).ci for _, s in settings])
               for key, label in postures]
    categories = data.pooled.categories
    persistence = [("persistence",
                    [v.persistence.rate for v in categories.values()],
                    [v.persistence.ci for v in categories.values()])]
    figures = [
        Figure("Transition matrix, pooled (rows: prompt severity, share of the row; numbers: pairs)", "analysis-matrix",
               lambda: confusion_grid([("prompt → response", data.pooled.transition_matrix)],
                                      xlabel="response severity", ylabel="prompt severity", ticks=[0, 1, 2, 3],
                                      bar_label="share of the row", source=source)),
        Figure("Transitions by setting (95% CIs)", "analysis-transitions",
               lambda: bars_with_ci(names, series, ylabel="share of pairs (%)", percent=True, source=source)),
        Figure("Safety posture by setting (95% CIs)", "analysis-posture",
               lambda: bars_with_ci(names, posture, ylabel="share (%)", percent=True, source=source)),
        Figure("Persistence by category, pooled: harmful prompts whose response stays harmful in it (95% CIs)",
               "analysis-categories",
               lambda: bars_with_ci([scope_name(c) for c in categories], persistence, ylabel="persistence (%)",
                                    percent=True, source=source)),
    ]
    if data.corrected is not None and data.corrected.n_labelled is not None:
        figures.append(Figure("Corrected shares beside the grader's and the humans' own (95% CIs)",
                              "analysis-corrected",
                              lambda: _corrected(data.corrected, corrected_source, estimates_with_ci)))
    return figures


def _corrected(corrected: Correction | None, source: str, draw: Any) -> Any:
    assert corrected is not None
    keys = [k for k in corrected.corrected if "." not in k]
    names = [k.replace("_", " ") for k in keys]
    human = corrected.human_only or {}
    series = [("grader, all pairs",
               [corrected.raw.get(k) for k in keys],
               [corrected.raw_ci.get(k, [None, None]) for k in keys]),
              ("humans, labelled subset",
               [human.get(k) for k in keys],
               [[None, None] for _ in keys]),
              ("corrected (PPI)",
               [corrected.corrected.get(k) for k in keys],
               [corrected.corrected_ci.get(k, [None, None]) for k in keys])]
    return draw(names, series, xlabel="share of pairs (%)", source=source)
