"""``plan.json`` and a pick's design as sections: the labelling round's size and what was picked."""

from __future__ import annotations

from ..results.planning import Plan, Selection
from .blocks import Section, Table, ci, num

_NAMES = {
    "kappa": "Cohen's κ",
    "kappa-quadratic": "quadratic κ",
    "recall": "recall",
    "recall-gap": "prompt-minus-response recall gap",
    "escalation": "the corrected escalation share",
}


def plan_section(data: Plan) -> Section:
    """The predicted width at each size, and the size that meets the target."""
    side = f" ({data.side} side)" if data.side and data.metric != "escalation" else ""
    what = _NAMES.get(data.metric, data.metric) + side
    pilot = data.pilot
    if data.pilot_ci and data.pilot_ci[0] is not None and data.pilot_interval:
        interval = f" ({ci(data.pilot_ci)}: {data.pilot_interval})."
    else:
        interval = f" ({data.pilot_interval})." if data.pilot_interval else "."
    lines = [f"Planning {what} from a pilot of {pilot.n_items} items in {pilot.n_clusters} clusters of "
             f"{pilot.cluster or 'single items'} ({data.source}); {data.items_per_cluster:g} items per cluster. "
             f"The pilot measures {num(data.pilot_value)} with a 95% interval {num(data.pilot_width)} wide"
             + interval]
    if data.target_width is not None:
        if data.n_items is not None:
            conservative = data.n_items_conservative or "more than the largest size tried"
            lines.append(f"To know it to ±{data.target_width / 2:.3g} (a {data.target_width:.2f}-wide interval): "
                         f"label about {data.n_items} items ({data.n_clusters} clusters); {conservative}"
                         + (f" items ({data.n_clusters_conservative} clusters)" if data.n_items_conservative else "")
                         + f" to meet it in {data.assurance:.0%} of studies (the pilot's own uncertainty included).")
        else:
            lines.append(f"No size tried reaches a {data.target_width:.2f}-wide interval.")
    lines.append(f"Method: {data.method} ({data.studies} studies per size, {data.n_boot} resamples each).")
    lines.extend(f"Warning: {w}." for w in data.warnings)
    section = Section(f"Labelling plan: {what}", lines)
    labels = list(data.sizes[0].rows_by_label) if data.sizes else []
    sure = f"{data.assurance:.0%}"
    rare = labels[-1] if labels else None
    section.tables.append(Table(
        "Predicted 95% interval width by labelling size",
        ["items", "clusters", "width", f"{sure} sure", "√n rule", "undefined", *([f"label {rare}"] if rare else [])],
        [[str(s.n_items), str(s.n_clusters), num(s.width), num(s.width_conservative), num(s.width_formula),
          str(s.undefined_studies), *([f"{s.rows_by_label[rare]:.0f}"] if rare else [])]
         for s in data.sizes],
        f"width: median over simulated studies; {sure} sure: the width {sure} of studies stay under; both never "
        "narrower than at a larger size, and a study whose metric is undefined counts as too wide; √n rule: the "
        f"pilot's width scaled by the square root of the clusters; undefined: studies (of {data.studies}) where the "
        "metric was undefined or no resample moved it (no interval)"
        + (f"; label {rare}: expected items with that human label." if rare else ".")))
    return section


def selection_section(data: Selection) -> Section:
    """What was picked for annotation, and how to use it."""
    unit = data.unit
    lines = [f"Picked {data.n_picked_clusters} of {unit.n_clusters} prompt clusters "
             f"({data.n_picked_items} of {unit.n_items} pairs) from {data.source} by the {data.strategy} strategy: "
             f"{data.design}.",
             f"Inclusion probabilities from {data.inclusion_min:.3f} to {data.inclusion_max:.3f}. The picked rows' "
             "label columns are blank: annotators fill them, then harness analyze GRADED --human PICKS (and "
             "calibrate) weight each pair by 1/π.",
             *(f"Note: {n}." for n in data.notes)]
    section = Section("Pick for annotation", lines)
    if data.strata:
        section.tables.append(Table(
            "Clusters picked per stratum",
            ["stratum", "picked", "clusters"],
            [[name, str(p), str(n)] for name, (p, n) in data.strata.items()],
            "flagged: the grader sees a harmful response, an escalation or severity 3 in the cluster."))
    return section
