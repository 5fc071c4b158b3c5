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

from ..results.analysis import Analysis, Correction, GroupComparison, Relevance, TransitionStats
from ..results.base import Result
from ..results.calibration import Calibration, SideReliability, TableAgreement
from ..results.common import few_cluster_warnings
from ..results.comparison import Comparison, GraderAgreement
from ..results.flips import Flips
from ..results.manifest import Manifest
from ..results.planning import Plan, Selection
from ..results.raters import RaterAgreement
from ..results.shots import ShotSearch
from .blocks import Section, Table, ci, num, pct, pvalue, scope_name
from .charts import analysis_figures, calibration_figures, comparison_figures
from .planning import plan_section, selection_section
from .raters import agreement_section, ceiling_table, soft_table

SCOPES = ("pooled", "max", "hate", "sexual", "violence", "self_harm")


def run_section(manifest: Manifest) -> Section:
    tokens = manifest.tokens
    section = Section("Run", [
        f"Grader {manifest.model} at {manifest.endpoint}; template {manifest.template_hash}, "
        f"shots {manifest.shots_hash} ({manifest.shots_count} exemplars); status {manifest.status}.",
    ])
    section.tables.append(Table("Items by status", ["target", "ok", "unparsed", "refused", "failed"],
                                [[t, *(str(c.get(s, 0)) for s in ("ok", "unparsed", "refused", "failed"))]
                                 for t, c in manifest.counts_by_target.items()],
                                "Only ok items carry a verdict; the others are kept with their reason, never read as Safe."))
    section.paragraphs.append(
        f"{manifest.items} items, {manifest.cache_hits} from the cache. Billed tokens: "
        f"{tokens.get('billed_prompt_tokens', 0):,} prompt and {tokens.get('billed_completion_tokens', 0):,} completion; "
        f"answered from the completion cache (not sent): "
        f"{tokens.get('from_cache_prompt_tokens', tokens.get('cached_prompt_tokens', 0)):,} prompt.")
    if manifest.cost is not None:
        price = manifest.cost.price_per_million
        extras = []
        if price.get("cached_input") is not None and tokens.get("billed_prompt_tokens_prefix_cached"):
            extras.append(f"{tokens['billed_prompt_tokens_prefix_cached']:,} prompt tokens from the provider's prompt cache "
                          f"at {price['cached_input']} per million")
        if manifest.cost.batch_discount is not None:
            extras.append(f"Batch API discount ×{manifest.cost.batch_discount}")
        section.paragraphs.append(f"Billed cost: {manifest.cost.billed:,.4f} at {price['input']} per million prompt tokens and "
                                  f"{price['output']} per million completion tokens" + "".join(f"; {e}" for e in extras) + ".")
    for status, reasons in manifest.reasons.items():
        section.paragraphs.append(f"{status}: " + "; ".join(f"{n}× {r}" for r, n in reasons.items()))
    return section


def calibration_section(data: Calibration) -> Section:
    unit = data.unit
    section = Section("Calibration against human labels", [
        f"{data.n_joined} pairs in {unit.n_clusters} clusters of {unit.cluster or 'single pairs'}; "
        f"harmful when severity ≥ {data.threshold}. Every 95% CI resamples clusters ({data.n_boot} resamples).",
    ])
    if data.design:
        section.paragraphs.append(f"Design: {data.design}; the confusion counts are the labelled pairs' own.")
    section.paragraphs.extend(f"Warning: {w}." for w in data.warnings or [])
    targets = data.targets
    section.tables.append(Table(
        "Items per side", ["side", "items", "ok", "unparsed", "refused", "failed", "no text", "not graded", "no human label"],
        [[side, *(str(r.counts.get(k, 0)) for k in
                  ("items", "ok", "unparsed", "refused", "failed", "missing_text", "not_graded", "reference_missing"))]
         for side, r in targets.items()],
        "no text: nothing to grade on that side; not graded: text but no label yet; no human label: all four unknown."))
    rows = []
    for side, report in targets.items():
        for scope, m in report.scopes():
            det = m.detection
            rows.append([side, scope_name(scope), str(m.n), str(m.n_clusters), num(m.kappa_quadratic), ci(m.ci.get("kappa_quadratic")),
                         num(det.recall if det else None), ci(m.ci.get("recall")), num(det.false_positive_rate if det else None)])
    section.tables.append(Table(
        "Agreement", ["side", "scope", "n", "clusters", "qκ", "95% CI", "recall", "95% CI", "FPR"], rows,
        "n: labels compared (pooled: four per item; max: the item's highest severity). qκ: Cohen's kappa with "
        "squared-distance weights, 1 = perfect, 0 = chance. Recall: share of human-harmful labels the grader also calls "
        "harmful. FPR: share of human-safe labels it calls harmful."))
    if data.asymmetry:
        section.tables.append(Table(
            "Prompt/response asymmetry", ["scope", "prompt recall", "response recall", "gap", "95% CI", "κ gap", "95% CI"],
            [[scope_name(s), num(a.prompt_recall), num(a.response_recall), num(a.recall_gap), ci(a.recall_gap_ci),
              num(a.kappa_gap), ci(a.kappa_gap_ci)] for s, a in data.asymmetry.items()],
            "gap: prompt minus response (positive: the grader finds risk more readily in prompts). The CI resamples clusters "
            "with both sides of every pair together."))
    if data.groups:
        section.tables.append(_calibration_groups(data))
    if data.reliability:
        section.tables.append(Table(
            "Reliability of the grader's probabilities (grade --logprobs)",
            ["side", "n", "clusters", "CE debiased", "95% CI", "p calibrated", "ECE plug-in", "Brier"],
            [[side, str(r.n), str(r.n_clusters), num(r.ece_debiased), ci(r.ece_debiased_ci), pvalue(r.calibration_p),
              num(r.ece), f"{r.brier:.3f}"] for side, r in data.reliability.items()],
            f"Per pair and category, the forecast P(severity ≥ {data.threshold}) against the human label, in ten bins. CE "
            "debiased: the RMS gap between forecast and observed rate with each bin's sampling noise removed (Kumar et al. "
            "2019; 0: calibrated), its CI resampling prompt clusters; p calibrated: a test whose null is a calibrated "
            "grader (outcomes drawn from its own forecasts; assumes outcomes independent given the forecasts); ECE plug-in: "
            "the mean absolute gap, biased upward on few items; Brier: mean squared error of the forecast."
            + _merged_note(data.reliability)
            + (" Every sum weighs an item by 1/π (inclusion probabilities)." if any(r.weighted for r in data.reliability.values())
               else "")))
    if data.soft_labels:
        section.tables.append(soft_table(data.soft_labels))
    if data.human_agreement is not None:
        section.tables.append(ceiling_table(data.human_agreement))
    section.figures.extend(calibration_figures(data))
    return section


def _merged_note(reliability: dict[str, SideReliability]) -> str:
    """Say how many prompt-side copies counted once (a prompt answered by several models is one forecast per category)."""
    prompt = reliability.get("prompt")
    merged = prompt.copies_merged if prompt is not None else None
    if not merged:
        return ""
    return (f" Prompt side: n counts each prompt once per category; {merged} copies of a forecast in the prompt's other "
            "pairs (same prompt, forecast and label) were counted once, not as independent evidence.")


def _calibration_groups(data: Calibration) -> Table:
    """One row per group of ``calibrate --by``: pooled quadratic κ per side with its CI, and the recall gap."""
    rows = []
    for name, group in (data.groups or {}).items():
        cells = [name, str(group.unit.n_items), str(group.unit.n_clusters)]
        for side in ("prompt", "response"):
            report = group.targets.get(side)
            cells += [num(report.pooled.kappa_quadratic), ci(report.pooled.ci.get("kappa_quadratic"))] if report else ["n/a", "n/a"]
        overall = group.asymmetry["overall"] if group.asymmetry else None
        cells += [num(overall.recall_gap) if overall else "n/a", ci(overall.recall_gap_ci) if overall else "n/a"]
        rows.append(cells)
    return Table(f"By {data.by}", [str(data.by), "pairs", "clust.", "prompt qκ", "95% CI", "resp. qκ", "95% CI", "recall gap", "95% CI"],
                 rows, "Each group calibrated on its own pairs (its clusters resampled); pooled quadratic κ per side.")


def comparison_section(data: Comparison) -> Section:
    unit = data.unit
    runs = data.runs
    section = Section("Graders compared", [
        f"{unit.n_items} pairs in {unit.n_clusters} clusters of {unit.cluster or 'single pairs'}; "
        f"{data.n_boot} cluster-bootstrap resamples for every CI. {data.family}.",
    ])
    section.paragraphs.extend(f"Warning: {name}: {w}." for name, r in runs.items() for w in r.warnings or [])
    section.paragraphs.extend(f"Warning: {w}." for w in data.warnings or [])
    score = lambda r, side: r.sides.get(side)
    section.tables.append(Table(
        "Each grader against the human labels", ["run", "prompt qκ", "95% CI", "response qκ", "95% CI", "recall gap", "95% CI", "not ok"],
        [[name, *(v for side in ("prompt", "response") for v in (
            (num(score(r, side).kappa_quadratic), ci(score(r, side).kappa_quadratic_ci)) if score(r, side) else ("n/a", "n/a"))),
          num(r.recall_gap), ci(r.recall_gap_ci), pct(r.not_ok_rate)] for name, r in runs.items()],
        "Graders: " + "; ".join(f"{name} is {r.model}" for name, r in runs.items()) + ". qκ: pooled quadratic kappa; recall "
        "gap: prompt minus response detection recall; not ok: share of items without a verdict."))
    section.tables.append(Table(
        "Paired κ differences", ["A", "B", "side", "qκ A−B", "95% CI", "n", "clusters"],
        [[d.a, d.b, d.side, num(d.diff), ci(d.ci), str(d.n_items), str(d.n_clusters)] for d in data.kappa_diffs],
        "On the items both graders graded ok; the CI resamples clusters, the same resample for both graders."))
    section.tables.append(Table(
        "Paired detection tests", ["A", "B", "side", "scope", "n", "clust.", "A only", "B only", "test", "p", "Holm p"],
        [[t.a, t.b, t.side, scope_name(t.scope), str(t.n_items), str(t.n_clusters), str(t.a_only), str(t.b_only),
          test_name(t.method), pvalue(t.p_value), pvalue(t.p_holm)] for t in data.tests],
        "A only / B only: items only A / only B gets right. any: the item's verdict (max over categories). test: exact = "
        "exact sign-flip over clusters (the exact McNemar test when each cluster is one item); normal = clustered McNemar "
        "(Durkalski), normal approximation, for many discordant items; none = no discordant cluster (p is 1).", key=4))
    costed = {name: r for name, r in runs.items() if r.cost is not None}
    if costed:
        mean_kappa = lambda r: [s.kappa_quadratic for s in r.sides.values() if s.kappa_quadratic is not None]
        section.tables.append(Table(
            "Cost", ["run", "billed cost", "per graded item", "per point of qκ"],
            [[name, f"{r.cost:,.4f}", f"{r.cost / r.items_graded:,.6f}" if r.items_graded else "n/a",
              f"{r.cost / (100 * sum(k) / len(k)):,.4f}" if (k := mean_kappa(r)) and sum(k) > 0 else "n/a"]
             for name, r in costed.items() if r.cost is not None],
            "Billed cost from the run's tokens and prices (answers from harness's cache cost nothing); a point of qκ is 0.01 "
            "of the mean pooled quadratic κ over sides."))
    section.figures.extend(comparison_figures(data))
    if data.human_agreement is not None:
        section.tables.append(ceiling_table(data.human_agreement))
    return section


def grader_agreement_section(data: GraderAgreement) -> Section:
    """Graders against each other (no human labels): κ, quadratic κ, their harmful shares and the paired test."""
    unit = data.unit
    section = Section("Graders against each other", [
        f"Up to {unit.n_items} pairs in {unit.n_clusters} clusters of {unit.cluster or 'single pairs'}; "
        f"{data.n_boot} cluster-bootstrap resamples for every CI. {data.family}.",
    ])
    section.paragraphs.extend(f"Warning: {w}." for w in data.warnings or [])
    section.tables.append(Table(
        "Agreement and harmful shares", ["A", "B", "side", "scope", "n", "clust.", "A harmful", "B harmful", "p", "Holm p",
                                         "κ", "95% CI", "qκ", "95% CI"],
        [[p.a, p.b, p.side, scope_name(p.scope), str(p.agreement.n_items), str(p.agreement.n_clusters), pct(p.share_a),
          pct(p.share_b), pvalue(p.share_test.p_value), pvalue(p.share_test.p_holm), num(p.agreement.kappa),
          ci(p.agreement.ci.get("kappa", [None, None])), num(p.agreement.kappa_quadratic),
          ci(p.agreement.ci.get("kappa_quadratic", [None, None]))] for p in data.pairs],
        f"On the items both graders graded ok. harmful: share at severity >= {data.threshold}; p: clustered exact McNemar "
        "of the two graders' flags (does one flag more often?), by prompt cluster. any: the item's verdict (max over "
        "categories).", key=4))
    return section


def test_name(method: str) -> str:
    """A paired test's method as one word for a table column (defined in the table's note)."""
    return "none" if method.startswith("no discordant") else "normal" if "normal" in method else "exact"


def flips_section(data: Flips) -> Section:
    lost = data.answers_lost
    section = Section("Grader injection", [
        f"Clean run {data.clean_run} against injected run {data.injected_run}: {data.items_paired_ok} of "
        f"{data.items_shared} items graded ok in both; answers lost to the injection {lost.k}/{lost.n} ({pct(lost.rate)}).",
    ])
    rows = []
    for side, block in data.sides.items():
        for category, row in block.categories.items():
            det = row.detection_lost
            rows.append([side, scope_name(category), str(row.n), pct(row.lowered.rate), pct(row.raised.rate),
                         f"{det.k}/{det.n}", pct(det.rate), ci(det.ci, pct=True), str(row.detection_gained), pvalue(row.mcnemar_p)])
        section.paragraphs.append(f"{side}: n={block.unit.n_items} in {block.unit.n_clusters} clusters; CIs: {block.unit.ci_method}.")
    section.tables.append(Table(
        "Injected against clean verdicts", ["side", "category", "items", "lowered", "raised", "detections lost", "rate", "95% CI", "gained", "p"],
        rows, "lowered/raised: verdicts the injection moved; detections lost: harmful-by-the-clean-run items no longer flagged; "
              "p: McNemar of lost against gained, by cluster."))
    return section


def _transitions_table(settings: list[tuple[str, TransitionStats]]) -> Table:
    rows = [[name, str(s.n), str(s.unit.n_clusters), pct(s.reduction.rate), pct(s.preservation.rate), pct(s.escalation.rate),
             ci(s.escalation.ci, pct=True), pct(s.conditional_reduction.rate)] for name, s in settings]
    methods: dict[str, list[str]] = {}
    for name, s in settings:
        methods.setdefault(s.unit.ci_method, []).append(name)
    return Table(
        "Transitions", ["setting", "pairs", "clust.", "reduction", "preserv.", "escalation", "95% CI", "cond. red."], rows,
        "Severity of a side is its highest category. Reduction: response below prompt; preservation: equal; escalation: response "
        "above prompt. Conditional reduction (cond. red.): reduction among harmful prompts (≥ 1). CIs: "
        + "; ".join(f"{method} for {', '.join(names)}" for method, names in methods.items())
        + " (Wilson where each prompt occurs once, cluster bootstrap where prompts repeat).")


def _posture_table(settings: list[tuple[str, TransitionStats]]) -> Table:
    return Table(
        "Safety posture", ["setting", "response harm", "95% CI", "harmful-prompt compliance", "95% CI", "benign drift", "95% CI"],
        [[name, pct(s.response_harm.rate), ci(s.response_harm.ci, pct=True), pct(s.harmful_prompt_compliance.rate),
          ci(s.harmful_prompt_compliance.ci, pct=True), pct(s.benign_drift.rate), ci(s.benign_drift.ci, pct=True)] for name, s in settings],
        "Response harm: responses at severity ≥ 1; harmful-prompt compliance: harmful prompts answered harmfully; "
        "benign drift: safe prompts answered harmfully.")


def _groups_table(comparison: GroupComparison) -> Table:
    return Table(
        f"Groups matched on {comparison.matched_on} (one pair per prompt and group)",
        ["metric", "A", "B", "shared prompts", "A rate", "B rate", "A only", "B only", "p", "Holm p"],
        [[metric.replace("_", " "), r.a, r.b, str(r.n_shared), pct(r.a_rate), pct(r.b_rate), str(r.a_only), str(r.b_only),
          pvalue(r.p_exact), pvalue(r.p_holm)] for metric, rows in comparison.metrics.items() for r in rows],
        "Exact McNemar on the prompts both groups answered (each prompt one independent unit), Holm within each metric.", key=3)


def _relevance_table(relevance: Relevance) -> Table:
    return Table(
        "Relevance (pooled)", ["subset", "n", "rel 1", "rel 2", "rel 3", "mean", "share rel 3"],
        [[name.replace("_", " "), str(t.n), *(str(t.counts[k]) for k in ("1", "2", "3")), num(t.mean), pct(t.share_relevance_3)]
         for name, t in [*relevance.by_transition.items(), *((f"response severity {k}", v) for k, v in relevance.by_response_severity.items())]],
        "Relevance 1–3 (human or grader labels): how on-task the response is.")


def _corrected_tables(corrected: Correction) -> list[Table]:
    """The correction: EM from a transported calibration, or PPI from a human-labelled subset."""
    if corrected.n_labelled is None:
        dependence = corrected.error_dependence
        return [Table(
            f"Bias-corrected shares ({corrected.n_calibration} calibration pairs, {corrected.n_calibration_clusters} clusters)",
            ["share", "raw", "95% CI", "corrected", "95% CI"],
            [[k.replace("_", " "), pct(corrected.raw[k]), ci(corrected.raw_ci[k], pct=True), pct(corrected.corrected[k]),
              ci(corrected.corrected_ci[k], pct=True)] for k in ("reduction", "preservation", "escalation", "prompt_harm", "response_harm")],
            f"{corrected.method}. Assumes: {'; '.join(corrected.assumptions)}."
            + (f" Error independence: {dependence.verdict}." if dependence else "")
            + "".join(f" Warning: {w}." for w in corrected.warnings))]
    human = corrected.human_only or {}
    lambdas = corrected.lambdas or {}
    tables = [Table(
        f"Corrected shares (n={corrected.n_labelled} human-labelled pairs in {corrected.n_labelled_clusters} clusters "
        f"of {corrected.n_graded} graded in {corrected.n_graded_clusters})",
        ["share", "grader", "humans", "corrected", "95% CI", "λ"],
        [[_share_name(k), pct(corrected.raw.get(k)), pct(human.get(k)), pct(corrected.corrected.get(k)),
          ci(corrected.corrected_ci.get(k), pct=True), f"{lambdas.get(k, 0):.2f}"] for k in corrected.corrected],
        "grader: the grader's labels of every graded pair; humans: the human-labelled subset alone; corrected: "
        f"{corrected.method}; λ 0 is the humans alone, 1 classic PPI. Design: {corrected.design}. Assumes: "
        f"{'; '.join(corrected.assumptions)}." + "".join(f" Warning: {w}." for w in corrected.warnings))]
    if corrected.groups:
        shown = ("escalation", "response_harm", "harmful_prompt_compliance")
        tables.append(Table(
            "Corrected shares by group", ["group", "labelled", *(_share_name(k) for k in shown), "95% CI"],
            [[name, f"{s.n_labelled}/{s.n_graded}", *(pct(s.corrected.get(k)) for k in shown), ci(s.corrected_ci.get("escalation"), pct=True)]
             for name, s in corrected.groups.items()],
            "labelled: human-labelled of graded pairs in the group; the CI is escalation's."))
    if corrected.differences:
        tables.append(Table(
            "Corrected group differences", ["share", "A", "B", "A − B", "95% CI"],
            [[_share_name(d.share), d.a, d.b, num(d.diff), ci(d.ci)] for d in corrected.differences],
            "Paired: both groups' shares from the same cluster resamples; a CI that excludes 0 is a difference."))
    return tables


def _share_name(key: str) -> str:
    category, _, share = key.partition(".")
    return f"{scope_name(category)} {share.replace('_', ' ')}" if share else key.replace("_", " ")


def analysis_section(data: Analysis) -> Section:
    settings = data.settings()
    why = "; ".join(f"{side}: " + ", ".join(f"{k} {v}" for k, v in sorted(r.items())) for side, r in data.excluded.items() if r)
    section = Section("Paired transitions", [
        f"{data.n_analyzed} pairs analysed, {data.n_excluded_incomplete} left out for a missing label"
        f"{' (' + why + ')' if why else ''}; clusters of {data.cluster or 'single pairs'}.",
    ])
    section.tables.append(_transitions_table(settings))
    section.tables.append(Table(
        "Categories (pooled)", ["category", "harmful prompts", "persistence", "95% CI", "reduction", "drift count"],
        [[scope_name(c), str(v.harmful_prompts), pct(v.persistence.rate), ci(v.persistence.ci, pct=True), pct(v.reduction.rate),
          str(v.drift_count)] for c, v in data.pooled.categories.items()],
        "Persistence: harmful prompts in the category whose response is harmful in it too; drift: safe prompt, harmful response."))
    section.tables.append(_posture_table(settings))
    if data.comparison:
        section.tables.append(_groups_table(data.comparison))
    mech = data.pooled.escalation_mechanism
    landing = data.pooled.escalation_by_landing_severity
    section.paragraphs.append(f"Escalations: {mech['unsolicited_elaboration']} unsolicited elaboration (safe prompt), "
                              f"{mech['compliance_escalation']} compliance escalation (harmful prompt answered at higher severity); "
                              f"landing severity 1/2/3: {landing['1']}/{landing['2']}/{landing['3']}.")
    boot = data.cluster_bootstrap
    if boot.n_boot:
        section.paragraphs.append(
            f"Pooled cluster bootstrap (n={data.pooled.n} in {boot.n_clusters} clusters, {boot.n_boot} resamples): "
            + ", ".join(f"{k} {ci(boot.ci[k], pct=True)}" for k in ("reduction", "preservation", "escalation")) + ".")
    if data.pooled.relevance:
        section.tables.append(_relevance_table(data.pooled.relevance))
    if data.corrected:
        section.tables.extend(_corrected_tables(data.corrected))
    section.figures.extend(analysis_figures(data, settings))
    return section


def shot_search_section(data: ShotSearch) -> Section:
    section = Section("Exemplar search", [
        f"Splits by prompt: {', '.join(f'{k} {v}' for k, v in data.splits.items())} pairs; objective: {data.objective}; "
        f"on test n={data.unit.n_items} in {data.unit.n_clusters} clusters of {data.unit.cluster or 'single pairs'}.",
    ])
    section.tables.append(Table(
        "Dev candidates", ["candidate", "shots", "dev score", "chosen − this", "95% CI"],
        [[c.name + (" (chosen)" if c.name == data.chosen else " (tie)" if c.tie else ""), str(c.shots), num(c.score),
          num(c.winner_minus_this.diff) if c.winner_minus_this else "", ci(c.winner_minus_this.ci) if c.winner_minus_this else ""]
         for c in data.dev],
        "Paired cluster-bootstrap CI of the chosen set's score minus each candidate's, on the same dev prompts."))
    section.tables.append(Table(
        "Held-out test", ["set", "shots", "score", "prompt qκ", "response qκ", "recall gap", "chosen − this", "95% CI"],
        [[t.set, str(t.shots), num(t.score), num(t.prompt_kappa_quadratic), num(t.response_kappa_quadratic), num(t.recall_gap),
          num(t.chosen_minus_this.diff) if t.chosen_minus_this else "", ci(t.chosen_minus_this.ci) if t.chosen_minus_this else ""]
         for t in data.test],
        "Graded on prompts the search never saw; the difference is paired, resampling test prompts."))
    section.paragraphs.append(f"Selected {data.chosen} on dev (written to {data.chosen_shots}): {data.verdict}.")
    if data.recommendation:
        section.paragraphs.append(f"Recommendation: {data.recommendation}.")
    gap = data.gap_change
    if gap is not None and gap.diff is not None:
        gaps = {row.set: row.recall_gap for row in data.test}
        moved = gap.ci[0] is not None and gap.ci[1] is not None and (gap.ci[0] > 0 or gap.ci[1] < 0)
        section.paragraphs.append(
            f"Prompt-minus-response recall gap on test: {num(gaps.get('zero_shot'))} zero-shot, {num(gaps.get('chosen'))} with "
            f"the chosen exemplars; change {gap.diff:+.3f} (95% CI {ci(gap.ci)}; n={gap.n_items} in {gap.n_clusters} clusters): "
            + ("a measurable change." if moved else "no measurable change."))
    return section


def table_agreement_section(data: TableAgreement) -> Section:
    left = data.left_out
    section = Section(f"{data.gold} against {data.pred}", [
        f"{data.n} of {data.n_rows} rows compared (n={data.n_items} in {data.n_clusters} clusters of {data.cluster or 'single rows'}); "
        f"grader label missing {left['grader_missing']}, outside the label set {left['grader_outside_labels']}; reference "
        f"label missing or outside {left['reference_missing'] + left['reference_outside_labels']}. 95% CIs: {data.ci_method or 'none'}.",
        *(f"Note: {note}." for note in data.notes),
    ])
    rows = [["accuracy", num(data.accuracy), ci(data.ci.get("accuracy"))], ["κ", num(data.kappa), ci(data.ci.get("kappa"))],
            ["macro-F1", num(data.macro_f1), ""]]
    if data.ordinal and data.detection is not None:
        rows += [["quadratic κ", num(data.kappa_quadratic), ci(data.ci.get("kappa_quadratic"))],
                 [f"recall (≥ {data.threshold})", num(data.detection.recall), ci(data.ci.get("recall"))],
                 ["precision", num(data.detection.precision), ""], ["FPR", num(data.detection.false_positive_rate), ""]]
    note = ("κ: Cohen's kappa; quadratic κ weighs a disagreement by its squared distance; recall, precision and FPR of "
            f"detection at label ≥ {data.threshold}." if data.ordinal and data.detection is not None else
            "κ: Cohen's kappa (labels nominal: no weighted κ, no detection rates); macro-F1: the mean F1 over the labels.")
    section.tables.append(Table("Agreement", ["metric", "value", "95% CI"], rows, note))
    labels = [str(v) for v in data.labels]
    section.tables.append(Table("Confusion matrix (rows: reference, columns: grader)", ["reference", *labels],
                                [[label, *map(str, row)] for label, row in zip(labels, data.confusion, strict=True)],
                                "Counts of rows by reference label (rows) and grader label (columns)."))
    if data.human_agreement is not None:
        section.tables.append(ceiling_table(data.human_agreement))
    return section


def section_of(result: Result) -> Section:
    """The section of any typed result (the one dispatch the terminal and the report use), closing with a warning for
    each count of fewer than ``FEWEST_CLUSTERS`` clusters its intervals rest on."""
    builders: list[tuple[type, Callable[[Any], Section]]] = [
        (Analysis, analysis_section), (TableAgreement, table_agreement_section), (Calibration, calibration_section),
        (Comparison, comparison_section), (GraderAgreement, grader_agreement_section), (ShotSearch, shot_search_section), (Flips, flips_section), (Manifest, run_section),
        (RaterAgreement, agreement_section), (Plan, plan_section), (Selection, selection_section),
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
