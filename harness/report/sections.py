"""Every result as tables: the one place where a typed result becomes rows, headers and notes.

The terminal (:mod:`harness.cli.console`) prints these sections with rich, the report
(:mod:`harness.report.document`) renders them as Markdown and HTML through one Jinja template each;
both therefore show the same figures, the same CIs and the same definitions. Figures are drawn
only when a report asks for them. (CSV files hold raw numbers, not display strings, and are
written from the result's own frames: ``transition_tables.analysis_tables``, ``Result.to_frame``.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..results.analysis import Analysis
from ..results.base import Result
from ..results.calibration import Calibration, SideReliability, TableAgreement
from ..results.common import few_cluster_warnings
from ..results.comparison import Comparison, GraderAgreement
from ..results.flips import Flips
from ..results.manifest import Cost, Manifest
from ..results.planning import Plan, Selection
from ..results.raters import RaterAgreement
from ..results.shots import DevCandidate, ShotSearch
from .blocks import Section, Table, ci, num, pvalue, scope_name
from .charts import calibration_figures
from .comparison import comparison_section, flips_section, grader_agreement_section
from .planning import plan_section, selection_section
from .raters import agreement_section, ceiling_table, soft_table
from .transitions import analysis_section

SCOPES = ("pooled", "max", "hate", "sexual", "violence", "self_harm")

_STATUSES = ("ok", "unparsed", "refused", "failed")


def _billed_cost(cost: Cost, tokens: dict[str, int]) -> str:
    """The run's billed cost, its prices and what lowered it (the provider's prompt cache, the Batch API)."""
    price = cost.price_per_million
    extras = []
    prefix_cached = tokens.get("billed_prompt_tokens_prefix_cached")
    if price.get("cached_input") is not None and prefix_cached:
        extras.append(f"{prefix_cached:,} prompt tokens from the provider's prompt cache "
                      f"at {price['cached_input']} per million")
    if cost.batch_discount is not None:
        extras.append(f"Batch API discount ×{cost.batch_discount}")
    return (f"Billed cost: {cost.billed:,.4f} at {price['input']} per million prompt tokens and "
            f"{price['output']} per million completion tokens" + "".join(f"; {e}" for e in extras) + ".")


def run_section(manifest: Manifest) -> Section:
    tokens = manifest.tokens
    section = Section("Run", [
        f"Grader {manifest.model} at {manifest.endpoint}; template {manifest.template_hash}, "
        f"shots {manifest.shots_hash} ({manifest.shots_count} exemplars); status {manifest.status}.",
    ])
    section.tables.append(Table(
        "Items by status",
        ["target", "ok", "unparsed", "refused", "failed"],
        [[t, *(str(c.get(s, 0)) for s in _STATUSES)] for t, c in manifest.counts_by_target.items()],
        "Only ok items carry a verdict; the others are kept with their reason, never read as Safe."))
    from_cache = tokens.get("from_cache_prompt_tokens", tokens.get("cached_prompt_tokens", 0))
    section.paragraphs.append(
        f"{manifest.items} items, {manifest.cache_hits} from the cache. Billed tokens: "
        f"{tokens.get('billed_prompt_tokens', 0):,} prompt and "
        f"{tokens.get('billed_completion_tokens', 0):,} completion; "
        f"answered from the completion cache (not sent): "
        f"{from_cache:,} prompt.")
    if manifest.cost is not None:
        section.paragraphs.append(_billed_cost(manifest.cost, tokens))
    for status, reasons in manifest.reasons.items():
        section.paragraphs.append(f"{status}: " + "; ".join(f"{n}× {r}" for r, n in reasons.items()))
    return section


_SIDE_COUNTS = ("items", "ok", "unparsed", "refused", "failed", "missing_text", "not_graded", "reference_missing")


def _agreement_table(data: Calibration) -> Table:
    rows = []
    for side, report in data.targets.items():
        for scope, m in report.scopes():
            det = m.detection
            rows.append([side, scope_name(scope), str(m.n), str(m.n_clusters),
                         num(m.kappa_quadratic), ci(m.ci.get("kappa_quadratic")),
                         num(det.recall if det else None), ci(m.ci.get("recall")),
                         num(det.false_positive_rate if det else None)])
    return Table(
        "Agreement",
        ["side", "scope", "n", "clusters", "qκ", "95% CI", "recall", "95% CI", "FPR"],
        rows,
        "n: labels compared (pooled: four per item; max: the item's highest severity). qκ: Cohen's kappa with "
        "squared-distance weights, 1 = perfect, 0 = chance. Recall: share of human-harmful labels the grader also "
        "calls harmful. FPR: share of human-safe labels it calls harmful.")


def _reliability_table(data: Calibration) -> Table:
    reliability = data.reliability or {}
    weighted = any(r.weighted for r in reliability.values())
    return Table(
        "Reliability of the grader's probabilities (grade --logprobs)",
        ["side", "n", "clusters", "CE debiased", "95% CI", "p calibrated", "ECE plug-in", "Brier"],
        [[side, str(r.n), str(r.n_clusters), num(r.ece_debiased), ci(r.ece_debiased_ci), pvalue(r.calibration_p),
          num(r.ece), f"{r.brier:.3f}"]
         for side, r in reliability.items()],
        f"Per pair and category, the forecast P(severity ≥ {data.threshold}) against the human label, in ten bins. "
        "CE debiased: the RMS gap between forecast and observed rate with each bin's sampling noise removed (Kumar "
        "et al. 2019; 0: calibrated), its CI resampling prompt clusters; p calibrated: a test whose null is a "
        "calibrated grader (outcomes drawn from its own forecasts; assumes outcomes independent given the "
        "forecasts); ECE plug-in: the mean absolute gap, biased upward on few items; Brier: mean squared error of "
        "the forecast."
        + _merged_note(reliability)
        + (" Every sum weighs an item by 1/π (inclusion probabilities)." if weighted else ""))


def calibration_section(data: Calibration) -> Section:
    unit = data.unit
    section = Section("Calibration against human labels", [
        f"{data.n_joined} pairs in {unit.n_clusters} clusters of {unit.cluster or 'single pairs'}; "
        f"harmful when severity ≥ {data.threshold}. Every 95% CI resamples clusters ({data.n_boot} resamples).",
    ])
    if data.design:
        section.paragraphs.append(f"Design: {data.design}; the confusion counts are the labelled pairs' own.")
    section.paragraphs.extend(f"Warning: {w}." for w in data.warnings or [])
    section.tables.append(Table(
        "Items per side",
        ["side", "items", "ok", "unparsed", "refused", "failed", "no text", "not graded", "no human label"],
        [[side, *(str(r.counts.get(k, 0)) for k in _SIDE_COUNTS)] for side, r in data.targets.items()],
        "no text: nothing to grade on that side; not graded: text but no label yet; no human label: all four "
        "unknown."))
    section.tables.append(_agreement_table(data))
    if data.asymmetry:
        section.tables.append(Table(
            "Prompt/response asymmetry",
            ["scope", "prompt recall", "response recall", "gap", "95% CI", "κ gap", "95% CI"],
            [[scope_name(s), num(a.prompt_recall), num(a.response_recall), num(a.recall_gap), ci(a.recall_gap_ci),
              num(a.kappa_gap), ci(a.kappa_gap_ci)]
             for s, a in data.asymmetry.items()],
            "gap: prompt minus response (positive: the grader finds risk more readily in prompts). The CI resamples "
            "clusters with both sides of every pair together."))
    if data.groups:
        section.tables.append(_calibration_groups(data))
    if data.reliability:
        section.tables.append(_reliability_table(data))
    if data.soft_labels:
        section.tables.append(soft_table(data.soft_labels))
    if data.human_agreement is not None:
        section.tables.append(ceiling_table(data.human_agreement))
    section.figures.extend(calibration_figures(data))
    return section


def _merged_note(reliability: dict[str, SideReliability]) -> str:
    """Say how many prompt-side copies counted once (a prompt answered by several models is one forecast per
    category)."""
    prompt = reliability.get("prompt")
    merged = prompt.copies_merged if prompt is not None else None
    if not merged:
        return ""
    return (f" Prompt side: n counts each prompt once per category; {merged} copies of a forecast in the prompt's "
            "other pairs (same prompt, forecast and label) were counted once, not as independent evidence.")


def _calibration_groups(data: Calibration) -> Table:
    """One row per group of ``calibrate --by``: pooled quadratic κ per side with its CI, and the recall gap."""
    rows = []
    for name, group in (data.groups or {}).items():
        cells = [name, str(group.unit.n_items), str(group.unit.n_clusters)]
        for side in ("prompt", "response"):
            report = group.targets.get(side)
            if report:
                cells += [num(report.pooled.kappa_quadratic), ci(report.pooled.ci.get("kappa_quadratic"))]
            else:
                cells += ["n/a", "n/a"]
        overall = group.asymmetry["overall"] if group.asymmetry else None
        cells += [num(overall.recall_gap) if overall else "n/a", ci(overall.recall_gap_ci) if overall else "n/a"]
        rows.append(cells)
    return Table(
        f"By {data.by}",
        [str(data.by), "pairs", "clust.", "prompt qκ", "95% CI", "resp. qκ", "95% CI", "recall gap", "95% CI"],
        rows,
        "Each group calibrated on its own pairs (its clusters resampled); pooled quadratic κ per side.")


def _dev_table(data: ShotSearch) -> Table:
    def name(c: DevCandidate) -> str:
        return c.name + (" (chosen)" if c.name == data.chosen else " (tie)" if c.tie else "")

    return Table(
        "Dev candidates",
        ["candidate", "shots", "dev score", "chosen − this", "95% CI"],
        [[name(c), str(c.shots), num(c.score),
          num(c.winner_minus_this.diff) if c.winner_minus_this else "",
          ci(c.winner_minus_this.ci) if c.winner_minus_this else ""]
         for c in data.dev],
        "Paired cluster-bootstrap CI of the chosen set's score minus each candidate's, on the same dev prompts.")


def _test_table(data: ShotSearch) -> Table:
    return Table(
        "Held-out test",
        ["set", "shots", "score", "prompt qκ", "response qκ", "recall gap", "chosen − this", "95% CI"],
        [[t.set, str(t.shots), num(t.score),
          num(t.prompt_kappa_quadratic), num(t.response_kappa_quadratic), num(t.recall_gap),
          num(t.chosen_minus_this.diff) if t.chosen_minus_this else "",
          ci(t.chosen_minus_this.ci) if t.chosen_minus_this else ""]
         for t in data.test],
        "Graded on prompts the search never saw; the difference is paired, resampling test prompts.")


def shot_search_section(data: ShotSearch) -> Section:
    unit = data.unit
    splits = ", ".join(f"{k} {v}" for k, v in data.splits.items())
    section = Section("Exemplar search", [
        f"Splits by prompt: {splits} pairs; objective: {data.objective}; "
        f"on test n={unit.n_items} in {unit.n_clusters} clusters of {unit.cluster or 'single pairs'}.",
    ])
    section.tables.append(_dev_table(data))
    section.tables.append(_test_table(data))
    section.paragraphs.append(f"Selected {data.chosen} on dev (written to {data.chosen_shots}): {data.verdict}.")
    if data.recommendation:
        section.paragraphs.append(f"Recommendation: {data.recommendation}.")
    gap = data.gap_change
    if gap is not None and gap.diff is not None:
        gaps = {row.set: row.recall_gap for row in data.test}
        moved = gap.ci[0] is not None and gap.ci[1] is not None and (gap.ci[0] > 0 or gap.ci[1] < 0)
        section.paragraphs.append(
            f"Prompt-minus-response recall gap on test: {num(gaps.get('zero_shot'))} zero-shot, "
            f"{num(gaps.get('chosen'))} with the chosen exemplars; change {gap.diff:+.3f} "
            f"(95% CI {ci(gap.ci)}; n={gap.n_items} in {gap.n_clusters} clusters): "
            + ("a measurable change." if moved else "no measurable change."))
    return section


def table_agreement_section(data: TableAgreement) -> Section:
    left = data.left_out
    reference_left = left["reference_missing"] + left["reference_outside_labels"]
    section = Section(f"{data.gold} against {data.pred}", [
        f"{data.n} of {data.n_rows} rows compared "
        f"(n={data.n_items} in {data.n_clusters} clusters of {data.cluster or 'single rows'}); "
        f"grader label missing {left['grader_missing']}, outside the label set {left['grader_outside_labels']}; "
        f"reference label missing or outside {reference_left}. 95% CIs: {data.ci_method or 'none'}.",
        *(f"Note: {note}." for note in data.notes),
    ])
    rows = [["accuracy", num(data.accuracy), ci(data.ci.get("accuracy"))],
            ["κ", num(data.kappa), ci(data.ci.get("kappa"))],
            ["macro-F1", num(data.macro_f1), ""]]
    detects = data.ordinal and data.detection is not None
    if data.ordinal and data.detection is not None:
        rows += [["quadratic κ", num(data.kappa_quadratic), ci(data.ci.get("kappa_quadratic"))],
                 [f"recall (≥ {data.threshold})", num(data.detection.recall), ci(data.ci.get("recall"))],
                 ["precision", num(data.detection.precision), ""],
                 ["FPR", num(data.detection.false_positive_rate), ""]]
    if detects:
        note = ("κ: Cohen's kappa; quadratic κ weighs a disagreement by its squared distance; recall, precision "
                f"and FPR of detection at label ≥ {data.threshold}.")
    else:
        note = ("κ: Cohen's kappa (labels nominal: no weighted κ, no detection rates); macro-F1: the mean F1 over "
                "the labels.")
    section.tables.append(Table("Agreement", ["metric", "value", "95% CI"], rows, note))
    labels = [str(v) for v in data.labels]
    section.tables.append(Table(
        "Confusion matrix (rows: reference, columns: grader)",
        ["reference", *labels],
        [[label, *map(str, row)] for label, row in zip(labels, data.confusion, strict=True)],
        "Counts of rows by reference label (rows) and grader label (columns)."))
    if data.human_agreement is not None:
        section.tables.append(ceiling_table(data.human_agreement))
    return section


def section_of(result: Result) -> Section:
    """The section of any typed result (the one dispatch the terminal and the report use), closing with a warning
    for each count of fewer than ``FEWEST_CLUSTERS`` clusters its intervals rest on."""
    builders: list[tuple[type, Callable[[Any], Section]]] = [
        (Analysis, analysis_section),
        (TableAgreement, table_agreement_section),
        (Calibration, calibration_section),
        (Comparison, comparison_section),
        (GraderAgreement, grader_agreement_section),
        (ShotSearch, shot_search_section),
        (Flips, flips_section),
        (Manifest, run_section),
        (RaterAgreement, agreement_section),
        (Plan, plan_section),
        (Selection, selection_section),
    ]
    from ..results.probes import Probe
    from ..results.stability import Stability
    from ..results.thresholds import Thresholds
    from .stability import probe_section, stability_section
    from .thresholds import thresholds_section

    builders += [(Stability, stability_section), (Probe, probe_section), (Thresholds, thresholds_section)]
    for kind, build in builders:
        if isinstance(result, kind):
            section = build(result)
            section.paragraphs.extend(f"Warning: {w}." for w in few_cluster_warnings(result, named=4))
            return section
    raise TypeError(f"no section for {type(result).__name__}")
