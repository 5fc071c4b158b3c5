"""``thresholds.json`` as a section: verdict rules over a grader's probabilities, judged on held-out pairs."""

from __future__ import annotations

from ..results.thresholds import Thresholds
from .blocks import Section, Table, ci, num, scope_name

#: How each rule reads a verdict, in the words the section uses.
RULE_WORDS = {"argmax": "the grader's own verdict", "expected": "the probability-weighted severity, rounded",
              "thresholds": "cut points on that severity, chosen on dev"}


def _cut(value: float | None) -> str:
    return "never" if value is None else f"{value:.2f}"


def thresholds_section(data: Thresholds) -> Section:
    """Held-out agreement per rule with paired differences, the cut points, and dev's optimism beside them."""
    split, metric = data.split, "quadratic κ" if data.metric == "kappa-quadratic" else (
        f"recall at severity ≥ {data.threshold} with a false-positive rate of at most {data.max_fpr:g}")
    lines = [f"{data.model}'s P(severity) ({data.probabilities}) read three ways: argmax ({RULE_WORDS['argmax']}), "
             f"expected ({RULE_WORDS['expected']}) and thresholds ({RULE_WORDS['thresholds']}, to maximise {metric}). "
             f"Prompt clusters of {split.cluster or 'single pairs'} split with seed {split.seed}: dev "
             f"{split.dev_pairs} pairs in {split.dev_clusters} clusters, held-out {split.held_out_pairs} pairs in "
             f"{split.held_out_clusters} clusters; every rule is judged on the same held-out labels, {data.n_boot} "
             "cluster-bootstrap resamples per CI.",
             f"Recommendation: {data.verdict}."]
    if data.derived:
        lines.append(f"The derived run {data.derived} follows {data.rule}; calibrate, compare and analyze score it "
                     "without its dev pairs.")
    lines.extend(f"Warning: {w}." for w in data.warnings)
    section = Section(f"Verdicts from probabilities: {data.model}", lines)
    section.tables.append(Table(
        "Held-out agreement per rule", ["rule", "scope", "n", "clusters", "qκ", "95% CI", "recall", "95% CI", "FPR",
                                        "95% CI"],
        [[s.rule, scope_name(s.scope), str(s.n_items), str(s.n_clusters), num(s.kappa_quadratic),
          ci(s.kappa_quadratic_ci), num(s.recall), ci(s.recall_ci), num(s.false_positive_rate),
          ci(s.false_positive_rate_ci)] for s in data.held_out],
        f"n: labels compared (four categories per side, those with P(severity)); recall and FPR of detection at "
        f"severity ≥ {data.threshold}. Only pairs the cut points were not chosen on.", key=2))
    section.tables.append(Table(
        "Rules against each other on held-out", ["rule", "minus", "metric", "difference", "95% CI", "n", "clusters"],
        [[d.a, d.b, d.metric, num(d.diff), ci(d.ci), str(d.n_items), str(d.n_clusters)] for d in data.differences],
        "Paired: every resample draws the same held-out prompt clusters for both rules."))
    section.tables.append(Table(
        "Cut points on the expected severity",
        ["category", "severity 1 from", "2 from", "3 from", "dev score", "chosen"],
        [[scope_name(c.category), *(_cut(v) for v in c.cuts), num(c.dev_score), c.chosen_by] for c in data.cut_points],
        "Chosen on dev, per category (both sides). The expected rule is 0.50, 1.50, 2.50; never: that level is not "
        "given."))
    key = "kappa_quadratic" if data.metric == "kappa-quadratic" else "recall"
    dev = {s.rule: getattr(s, key) for s in data.dev if s.scope == "both"}
    held = {s.rule: getattr(s, key) for s in data.held_out if s.scope == "both"}
    section.tables.append(Table(
        "Dev (in-sample) against held-out", ["rule", f"dev {data.metric}", f"held-out {data.metric}", "optimism"],
        [[rule, num(dev.get(rule)), num(held.get(rule)), num(value)] for rule, value in data.optimism.items()],
        "Dev scores are a selection (the cut points were chosen there): optimistic, never the result. Optimism: dev "
        "minus held-out; for argmax and expected, which choose nothing, it is the split's own noise."))
    return section
