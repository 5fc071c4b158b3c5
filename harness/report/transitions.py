"""The paired transition analysis (``analysis.json``) as a section: transitions, categories, posture, groups,
relevance and the corrected shares, each table with the note that defines its columns."""

from __future__ import annotations

from ..results.analysis import Analysis, Correction, GroupComparison, Relevance, TransitionStats
from .blocks import Section, Table, ci, num, pct, pvalue, scope_name
from .charts import analysis_figures


def _transitions_table(settings: list[tuple[str, TransitionStats]]) -> Table:
    rows = [
        [name, str(s.n), str(s.unit.n_clusters), pct(s.reduction.rate), pct(s.preservation.rate),
         pct(s.escalation.rate), ci(s.escalation.ci, pct=True), pct(s.conditional_reduction.rate)]
        for name, s in settings
    ]
    methods: dict[str, list[str]] = {}
    for name, s in settings:
        methods.setdefault(s.unit.ci_method, []).append(name)
    return Table(
        "Transitions",
        ["setting", "pairs", "clust.", "reduction", "preserv.", "escalation", "95% CI", "cond. red."],
        rows,
        "Severity of a side is its highest category. Reduction: response below prompt; preservation: equal; "
        "escalation: response above prompt. Conditional reduction (cond. red.): reduction among harmful prompts "
        "(≥ 1). CIs: "
        + "; ".join(f"{method} for {', '.join(names)}" for method, names in methods.items())
        + " (Wilson where each prompt occurs once, cluster bootstrap where prompts repeat).")


def _posture_table(settings: list[tuple[str, TransitionStats]]) -> Table:
    rows = [
        [name,
         pct(s.response_harm.rate), ci(s.response_harm.ci, pct=True),
         pct(s.harmful_prompt_compliance.rate), ci(s.harmful_prompt_compliance.ci, pct=True),
         pct(s.benign_drift.rate), ci(s.benign_drift.ci, pct=True)]
        for name, s in settings
    ]
    return Table(
        "Safety posture",
        ["setting", "response harm", "95% CI", "harmful-prompt compliance", "95% CI", "benign drift", "95% CI"],
        rows,
        "Response harm: responses at severity ≥ 1; harmful-prompt compliance: harmful prompts answered harmfully; "
        "benign drift: safe prompts answered harmfully.")


def _groups_table(comparison: GroupComparison) -> Table:
    table_rows = [
        [metric.replace("_", " "), r.a, r.b, str(r.n_shared), pct(r.a_rate), pct(r.b_rate), str(r.a_only),
         str(r.b_only), pvalue(r.p_exact), pvalue(r.p_holm)]
        for metric, rows in comparison.metrics.items() for r in rows
    ]
    return Table(
        f"Groups matched on {comparison.matched_on} (one pair per prompt and group)",
        ["metric", "A", "B", "shared prompts", "A rate", "B rate", "A only", "B only", "p", "Holm p"],
        table_rows,
        "Exact McNemar on the prompts both groups answered (each prompt one independent unit), Holm within each "
        "metric.",
        key=3)


def _relevance_table(relevance: Relevance) -> Table:
    by_severity = ((f"response severity {k}", v) for k, v in relevance.by_response_severity.items())
    subsets = [*relevance.by_transition.items(), *by_severity]
    return Table(
        "Relevance (pooled)",
        ["subset", "n", "rel 1", "rel 2", "rel 3", "mean", "share rel 3"],
        [[name.replace("_", " "), str(t.n), *(str(t.counts[k]) for k in ("1", "2", "3")), num(t.mean),
          pct(t.share_relevance_3)]
         for name, t in subsets],
        "Relevance 1–3 (human or grader labels): how on-task the response is.")


def _transported_table(corrected: Correction) -> Table:
    """EM from a calibration transported from other pairs."""
    dependence = corrected.error_dependence
    shares = ("reduction", "preservation", "escalation", "prompt_harm", "response_harm")
    return Table(
        f"Bias-corrected shares ({corrected.n_calibration} calibration pairs, "
        f"{corrected.n_calibration_clusters} clusters)",
        ["share", "raw", "95% CI", "corrected", "95% CI"],
        [[k.replace("_", " "), pct(corrected.raw[k]), ci(corrected.raw_ci[k], pct=True), pct(corrected.corrected[k]),
          ci(corrected.corrected_ci[k], pct=True)]
         for k in shares],
        f"{corrected.method}. Assumes: {'; '.join(corrected.assumptions)}."
        + (f" Error independence: {dependence.verdict}." if dependence else "")
        + "".join(f" Warning: {w}." for w in corrected.warnings))


def _corrected_tables(corrected: Correction) -> list[Table]:
    """The correction: EM from a transported calibration, or PPI from a human-labelled subset."""
    if corrected.n_labelled is None:
        return [_transported_table(corrected)]
    human = corrected.human_only or {}
    lambdas = corrected.lambdas or {}
    tables = [Table(
        f"Corrected shares (n={corrected.n_labelled} human-labelled pairs in {corrected.n_labelled_clusters} clusters "
        f"of {corrected.n_graded} graded in {corrected.n_graded_clusters})",
        ["share", "grader", "humans", "corrected", "95% CI", "λ"],
        [[_share_name(k), pct(corrected.raw.get(k)), pct(human.get(k)), pct(corrected.corrected.get(k)),
          ci(corrected.corrected_ci.get(k), pct=True), f"{lambdas.get(k, 0):.2f}"]
         for k in corrected.corrected],
        "grader: the grader's labels of every graded pair; humans: the human-labelled subset alone; corrected: "
        f"{corrected.method}; λ 0 is the humans alone, 1 classic PPI. Design: {corrected.design}. Assumes: "
        f"{'; '.join(corrected.assumptions)}." + "".join(f" Warning: {w}." for w in corrected.warnings))]
    if corrected.groups:
        shown = ("escalation", "response_harm", "harmful_prompt_compliance")
        tables.append(Table(
            "Corrected shares by group",
            ["group", "labelled", *(_share_name(k) for k in shown), "95% CI"],
            [[name, f"{s.n_labelled}/{s.n_graded}", *(pct(s.corrected.get(k)) for k in shown),
              ci(s.corrected_ci.get("escalation"), pct=True)]
             for name, s in corrected.groups.items()],
            "labelled: human-labelled of graded pairs in the group; the CI is escalation's."))
    if corrected.differences:
        tables.append(Table(
            "Corrected group differences",
            ["share", "A", "B", "A − B", "95% CI"],
            [[_share_name(d.share), d.a, d.b, num(d.diff), ci(d.ci)] for d in corrected.differences],
            "Paired: both groups' shares from the same cluster resamples; a CI that excludes 0 is a difference."))
    return tables


def _share_name(key: str) -> str:
    category, _, share = key.partition(".")
    return f"{scope_name(category)} {share.replace('_', ' ')}" if share else key.replace("_", " ")


def _categories_table(data: Analysis) -> Table:
    return Table(
        "Categories (pooled)",
        ["category", "harmful prompts", "persistence", "95% CI", "reduction", "drift count"],
        [[scope_name(c), str(v.harmful_prompts), pct(v.persistence.rate), ci(v.persistence.ci, pct=True),
          pct(v.reduction.rate), str(v.drift_count)]
         for c, v in data.pooled.categories.items()],
        "Persistence: harmful prompts in the category whose response is harmful in it too; drift: safe prompt, "
        "harmful response.")


def analysis_section(data: Analysis) -> Section:
    settings = data.settings()
    why = "; ".join(
        f"{side}: " + ", ".join(f"{k} {v}" for k, v in sorted(r.items()))
        for side, r in data.excluded.items() if r)
    section = Section("Paired transitions", [
        f"{data.n_analyzed} pairs analysed, {data.n_excluded_incomplete} left out for a missing label"
        f"{' (' + why + ')' if why else ''}; clusters of {data.cluster or 'single pairs'}.",
    ])
    section.tables.append(_transitions_table(settings))
    section.tables.append(_categories_table(data))
    section.tables.append(_posture_table(settings))
    if data.comparison:
        section.tables.append(_groups_table(data.comparison))
    mech = data.pooled.escalation_mechanism
    landing = data.pooled.escalation_by_landing_severity
    section.paragraphs.append(
        f"Escalations: {mech['unsolicited_elaboration']} unsolicited elaboration (safe prompt), "
        f"{mech['compliance_escalation']} compliance escalation (harmful prompt answered at higher severity); "
        f"landing severity 1/2/3: {landing['1']}/{landing['2']}/{landing['3']}.")
    boot = data.cluster_bootstrap
    if boot.n_boot:
        section.paragraphs.append(
            f"Pooled cluster bootstrap (n={data.pooled.n} in {boot.n_clusters} clusters, {boot.n_boot} resamples): "
            + ", ".join(f"{k} {ci(boot.ci[k], pct=True)}" for k in ("reduction", "preservation", "escalation"))
            + ".")
    if data.pooled.relevance:
        section.tables.append(_relevance_table(data.pooled.relevance))
    if data.corrected:
        section.tables.extend(_corrected_tables(data.corrected))
    section.figures.extend(analysis_figures(data, settings))
    return section
