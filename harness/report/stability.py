"""The robustness sections: a grader's stability across repeats (``harness stability``) and its probes
(``harness probe``)."""

from __future__ import annotations

from ..results.probes import Probe
from ..results.stability import Stability
from .blocks import Section, Table, ci, num, pct, scope_name


def stability_section(data: Stability) -> Section:
    """Test–retest agreement of the repeats, the verdicts that changed, and the asymmetry per repeat."""
    temperature = "an unknown temperature" if data.temperature is None else f"temperature {data.temperature:g}"
    seeds = ", ".join(str(s) for s in data.seeds)
    unit = data.unit
    lines = [f"{data.repeats} repeats of {data.model} at {temperature} (seeds {seeds}), "
             f"{unit.n_items} items in {unit.n_clusters} clusters of {unit.cluster or 'single items'}; "
             f"{data.n_boot} cluster-bootstrap resamples for every CI."]
    headline = [s for s in data.scopes if s.scope == "any"]
    for s in headline:
        lines.append(f"On the {s.side} side, {pct(s.changed)} of verdicts (CI {ci(s.changed_ci, pct=True)}; "
                     f"n={s.n_items}, {s.n_clusters} clusters) were not the same in every repeat; the repeats "
                     f"agree with α = {num(s.agreement.alpha)} (CI {ci(s.agreement.alpha_ci)}).")
    known = [a for a in data.asymmetry if a is not None]
    if known:
        lines.append(f"The prompt side's harmful share minus the response side's (severity ≥ {data.threshold}) "
                     f"ranged over {pct(min(known))} to {pct(max(known))} across repeats: a spread of "
                     f"{pct(data.asymmetry_range)}, to read beside any asymmetry measured once.")
    lines.extend(f"Warning: {w}." for w in data.warnings)
    section = Section(f"Stability across repeats: {data.model}", lines)
    section.tables.append(Table(
        "Verdicts across repeats",
        ["side", "scope", "n", "clusters", "changed", "95% CI", "margin", "α", "95% CI"],
        [[s.side, scope_name(s.scope), str(s.n_items), str(s.n_clusters), pct(s.changed), ci(s.changed_ci, pct=True),
          pct(s.margin), num(s.agreement.alpha), ci(s.agreement.alpha_ci)]
         for s in data.scopes],
        "changed: share of items whose verdict was not the same in every repeat; margin: mean share of repeats "
        "agreeing with the item's most frequent verdict (100 %: unanimous); α: Krippendorff's α (ordinal) with the "
        "repeats as raters. Only items every repeat graded ok.",
        key=2))
    return section


def probe_section(data: Probe) -> Section:
    """One perturbation's flip rate and severity shift per side and scope, with the sentence that says what it means."""
    sampled = data.null != "temperature 0"
    if sampled:
        null = f"the run against an unprobed repeat at its settings ({data.null}, the next seed, the probe's too)"
    else:
        null = "none at temperature 0, where nothing is sampled (the null is 0)"
    lines = [f"Probe {data.kind} on {data.model}: {data.perturbation}. Verdicts that change without the probe: {null}. "
             f"{data.n_boot} cluster-bootstrap resamples for every CI."]
    for s in (s for s in data.scopes if s.scope == "any"):
        lines.append(f"On the {s.side} side {pct(s.flip_rate)} of verdicts changed "
                     f"(CI {ci(s.flip_rate_ci, pct=True)}; n={s.n_items}, {s.n_clusters} clusters); "
                     f"unprobed repeats change {pct(s.null_rate)}, so the probe's excess is {_points(s.excess)} "
                     f"(paired CI {_points_ci(s.excess_ci)}, n={s.null_items}); "
                     f"the mean severity shift was {num(s.shift)} (CI {ci(s.shift_ci)}; positive: harsher under the "
                     "probe). A grader that should not care about this shows an excess near 0.")
    lines.extend(f"Warning: {w}." for w in data.warnings)
    section = Section(f"Probe: {data.kind} ({data.model})", lines)
    section.tables.append(Table(
        f"Verdicts under the {data.kind} probe",
        ["side", "scope", "n", "clusters", "flipped", "95% CI", "null", "excess", "95% CI", "shift", "95% CI", "raised",
         "lowered"],
        [[s.side, scope_name(s.scope), str(s.n_items), str(s.n_clusters), pct(s.flip_rate),
          ci(s.flip_rate_ci, pct=True), pct(s.null_rate), _points(s.excess), _points_ci(s.excess_ci), num(s.shift),
          ci(s.shift_ci), pct(s.raised), pct(s.lowered)] for s in data.scopes],
        "flipped: share of items whose verdict changed; null: share changed between two unprobed repeats at the "
        "run's settings (0 at temperature 0); excess: flipped minus null, item by item (points), with a paired "
        "cluster interval; shift: mean of probed minus original severity; raised / lowered: shares made harsher / "
        "milder. Only items graded ok both times (the excess: in all three runs).", key=2))
    return section


def _points(value: float | None) -> str:
    """A difference of two shares in percentage points (``n/a`` when unknown)."""
    return "n/a" if value is None else f"{100 * value:+.1f} pt"


def _points_ci(interval: list[float | None]) -> str:
    if interval[0] is None or interval[1] is None:
        return "n/a"
    return f"{100 * interval[0]:+.1f} to {100 * interval[1]:+.1f} pt"
