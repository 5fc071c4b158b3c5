"""The robustness sections: a grader's stability across repeats (``harness stability``) and its probes (``harness probe``)."""

from __future__ import annotations

from ..results.probes import Probe
from ..results.stability import Stability
from .blocks import Section, Table, ci, num, pct, scope_name


def stability_section(data: Stability) -> Section:
    """Test–retest agreement of the repeats, the verdicts that changed, and the asymmetry per repeat."""
    temperature = "an unknown temperature" if data.temperature is None else f"temperature {data.temperature:g}"
    lines = [f"{data.repeats} repeats of {data.model} at {temperature} (seeds {', '.join(str(s) for s in data.seeds)}), "
             f"{data.unit.n_items} items in {data.unit.n_clusters} clusters of {data.unit.cluster or 'single items'}; "
             f"{data.n_boot} cluster-bootstrap resamples for every CI."]
    headline = [s for s in data.scopes if s.scope == "any"]
    for s in headline:
        lines.append(f"On the {s.side} side, {pct(s.changed)} of verdicts (CI {ci(s.changed_ci, pct=True)}; n={s.n_items}, "
                     f"{s.n_clusters} clusters) were not the same in every repeat; the repeats agree with α = "
                     f"{num(s.agreement.alpha)} (CI {ci(s.agreement.alpha_ci)}).")
    known = [a for a in data.asymmetry if a is not None]
    if known:
        lines.append(f"The prompt side's harmful share minus the response side's (severity ≥ {data.threshold}) ranged over "
                     f"{pct(min(known))} to {pct(max(known))} across repeats: a spread of {pct(data.asymmetry_range)}, to "
                     "read beside any asymmetry measured once.")
    lines.extend(f"Warning: {w}." for w in data.warnings)
    section = Section(f"Stability across repeats: {data.model}", lines)
    section.tables.append(Table(
        "Verdicts across repeats", ["side", "scope", "n", "clusters", "changed", "95% CI", "margin", "α", "95% CI"],
        [[s.side, scope_name(s.scope), str(s.n_items), str(s.n_clusters), pct(s.changed), ci(s.changed_ci, pct=True), pct(s.margin),
          num(s.agreement.alpha), ci(s.agreement.alpha_ci)] for s in data.scopes],
        "changed: share of items whose verdict was not the same in every repeat; margin: mean share of repeats agreeing "
        "with the item's most frequent verdict (100 %: unanimous); α: Krippendorff's α (ordinal) with the repeats as raters. "
        "Only items every repeat graded ok.", key=2))
    return section


def probe_section(data: Probe) -> Section:
    """One perturbation's flip rate and severity shift per side and scope, with the sentence that says what it means."""
    lines = [f"Probe {data.kind} on {data.model}: {data.perturbation}. {data.n_boot} cluster-bootstrap resamples for every CI."]
    for s in (s for s in data.scopes if s.scope == "any"):
        lines.append(f"On the {s.side} side {pct(s.flip_rate)} of verdicts changed (CI {ci(s.flip_rate_ci, pct=True)}; n={s.n_items}, "
                     f"{s.n_clusters} clusters); the mean severity shift was {num(s.shift)} (CI {ci(s.shift_ci)}; positive: "
                     "harsher under the probe). A grader that should not care about this shows a flip rate near 0.")
    lines.extend(f"Warning: {w}." for w in data.warnings)
    section = Section(f"Probe: {data.kind} ({data.model})", lines)
    section.tables.append(Table(
        f"Verdicts under the {data.kind} probe", ["side", "scope", "n", "clusters", "flipped", "95% CI", "shift", "95% CI",
                                                   "raised", "lowered"],
        [[s.side, scope_name(s.scope), str(s.n_items), str(s.n_clusters), pct(s.flip_rate), ci(s.flip_rate_ci, pct=True), num(s.shift),
          ci(s.shift_ci), pct(s.raised), pct(s.lowered)] for s in data.scopes],
        "flipped: share of items whose verdict changed; shift: mean of probed minus original severity; raised / lowered: "
        "shares made harsher / milder. Only items graded ok both times.", key=2))
    return section
