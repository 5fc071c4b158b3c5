"""Graders side by side as sections: against human labels (``compare``), against each other without them, and
a run against its injected copy (``flips``)."""

from __future__ import annotations

from ..results.comparison import Comparison, GraderAgreement, RunScore
from ..results.flips import Flips
from .blocks import Section, Table, ci, num, pct, pvalue, scope_name
from .charts import comparison_figures
from .raters import ceiling_table


def _graders_table(runs: dict[str, RunScore]) -> Table:
    def kappa_cells(run: RunScore, side: str) -> tuple[str, str]:
        score = run.sides.get(side)
        return (num(score.kappa_quadratic), ci(score.kappa_quadratic_ci)) if score else ("n/a", "n/a")

    return Table(
        "Each grader against the human labels",
        ["run", "prompt qκ", "95% CI", "response qκ", "95% CI", "recall gap", "95% CI", "not ok"],
        [[name, *kappa_cells(r, "prompt"), *kappa_cells(r, "response"),
          num(r.recall_gap), ci(r.recall_gap_ci), pct(r.not_ok_rate)]
         for name, r in runs.items()],
        "Graders: " + "; ".join(f"{name} is {r.model}" for name, r in runs.items()) + ". qκ: pooled quadratic "
        "kappa; recall gap: prompt minus response detection recall; not ok: share of items without a verdict.")


def _tests_table(data: Comparison) -> Table:
    return Table(
        "Paired detection tests",
        ["A", "B", "side", "scope", "n", "clust.", "A only", "B only", "test", "p", "Holm p"],
        [[t.a, t.b, t.side, scope_name(t.scope), str(t.n_items), str(t.n_clusters), str(t.a_only), str(t.b_only),
          test_name(t.method), pvalue(t.p_value), pvalue(t.p_holm)]
         for t in data.tests],
        "A only / B only: items only A / only B gets right. any: the item's verdict (max over categories). test: "
        "exact = exact sign-flip over clusters (the exact McNemar test when each cluster is one item); normal = "
        "clustered McNemar (Durkalski), normal approximation, for many discordant items; none = no discordant "
        "cluster (p is 1).",
        key=4)


def _cost_table(costed: dict[str, RunScore]) -> Table:
    def per_kappa_point(run: RunScore, cost: float) -> str:
        kappas = [s.kappa_quadratic for s in run.sides.values() if s.kappa_quadratic is not None]
        if not kappas or sum(kappas) <= 0:
            return "n/a"
        return f"{cost / (100 * sum(kappas) / len(kappas)):,.4f}"

    return Table(
        "Cost",
        ["run", "billed cost", "per graded item", "per point of qκ"],
        [[name, f"{r.cost:,.4f}", f"{r.cost / r.items_graded:,.6f}" if r.items_graded else "n/a",
          per_kappa_point(r, r.cost)]
         for name, r in costed.items() if r.cost is not None],
        "Billed cost from the run's tokens and prices (answers from harness's cache cost nothing); a point of qκ is "
        "0.01 of the mean pooled quadratic κ over sides.")


def comparison_section(data: Comparison) -> Section:
    unit = data.unit
    runs = data.runs
    section = Section("Graders compared", [
        f"{unit.n_items} pairs in {unit.n_clusters} clusters of {unit.cluster or 'single pairs'}; "
        f"{data.n_boot} cluster-bootstrap resamples for every CI. {data.family}.",
    ])
    section.paragraphs.extend(f"Warning: {name}: {w}." for name, r in runs.items() for w in r.warnings or [])
    section.paragraphs.extend(f"Warning: {w}." for w in data.warnings or [])
    section.tables.append(_graders_table(runs))
    section.tables.append(Table(
        "Paired κ differences",
        ["A", "B", "side", "qκ A−B", "95% CI", "n", "clusters"],
        [[d.a, d.b, d.side, num(d.diff), ci(d.ci), str(d.n_items), str(d.n_clusters)] for d in data.kappa_diffs],
        "On the items both graders graded ok; the CI resamples clusters, the same resample for both graders."))
    section.tables.append(_tests_table(data))
    costed = {name: r for name, r in runs.items() if r.cost is not None}
    if costed:
        section.tables.append(_cost_table(costed))
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
    rows = [
        [p.a, p.b, p.side, scope_name(p.scope), str(p.agreement.n_items), str(p.agreement.n_clusters),
         pct(p.share_a), pct(p.share_b), pvalue(p.share_test.p_value), pvalue(p.share_test.p_holm),
         num(p.agreement.kappa), ci(p.agreement.ci.get("kappa", [None, None])),
         num(p.agreement.kappa_quadratic), ci(p.agreement.ci.get("kappa_quadratic", [None, None]))]
        for p in data.pairs
    ]
    section.tables.append(Table(
        "Agreement and harmful shares",
        ["A", "B", "side", "scope", "n", "clust.", "A harmful", "B harmful", "p", "Holm p",
         "κ", "95% CI", "qκ", "95% CI"],
        rows,
        f"On the items both graders graded ok. harmful: share at severity >= {data.threshold}; p: clustered exact "
        "McNemar of the two graders' flags (does one flag more often?), by prompt cluster. any: the item's verdict "
        "(max over categories).",
        key=4))
    return section


def test_name(method: str) -> str:
    """A paired test's method as one word for a table column (defined in the table's note)."""
    return "none" if method.startswith("no discordant") else "normal" if "normal" in method else "exact"


def flips_section(data: Flips) -> Section:
    lost = data.answers_lost
    section = Section("Grader injection", [
        f"Clean run {data.clean_run} against injected run {data.injected_run}: {data.items_paired_ok} of "
        f"{data.items_shared} items graded ok in both; answers lost to the injection {lost.k}/{lost.n} "
        f"({pct(lost.rate)}).",
    ])
    rows = []
    for side, block in data.sides.items():
        for category, row in block.categories.items():
            det = row.detection_lost
            rows.append([side, scope_name(category), str(row.n), pct(row.lowered.rate), pct(row.raised.rate),
                         f"{det.k}/{det.n}", pct(det.rate), ci(det.ci, pct=True), str(row.detection_gained),
                         pvalue(row.mcnemar_p)])
        unit = block.unit
        section.paragraphs.append(f"{side}: n={unit.n_items} in {unit.n_clusters} clusters; CIs: {unit.ci_method}.")
    section.tables.append(Table(
        "Injected against clean verdicts",
        ["side", "category", "items", "lowered", "raised", "detections lost", "rate", "95% CI", "gained", "p"],
        rows,
        "lowered/raised: verdicts the injection moved; detections lost: harmful-by-the-clean-run items no longer "
        "flagged; p: McNemar of lost against gained, by cluster."))
    return section
