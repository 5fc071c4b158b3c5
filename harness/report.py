"""``report``: a run, its calibration, a comparison, flips and an analysis as Markdown and HTML.

Each stage's JSON becomes a :class:`Section` of plain content (paragraphs, tables as rows with
the definitions of their metrics, figures); one Jinja template renders the sections as
Markdown and another as self-contained HTML (figures embedded as base64 PNGs), so both say
the same thing. The report never recomputes a metric: it shows what the stages wrote,
including every CI with its unit of analysis.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from .atomic import atomic_path, ensure_folder
from .constants import CATEGORY_NAMES
from .errors import RunError
from .results import Analysis, Calibration, Comparison, Flips, Manifest, Result

SCOPES = ("pooled", "max", "hate", "sexual", "violence", "self_harm")


_NUMERIC = re.compile(r"^(n/a|[-+−]?[\d,.]+%?( to [-+−]?[\d.]+)?|[\d.]+–[\d.]+%|\d+/\d+|[\d.]+e[-+]\d+)$")


@dataclass
class Table:
    """One table: header, rows of text cells, and what its columns mean."""

    caption: str
    header: list[str]
    rows: list[list[str]]
    note: str = ""

    @property
    def numeric(self) -> list[bool]:
        """Per column: do all its cells hold numbers (right-aligned) rather than text?"""
        return [bool(self.rows) and all(_NUMERIC.match(row[j]) for row in self.rows) for j in range(len(self.header))]


@dataclass
class Figure:
    title: str
    png: str


@dataclass
class Section:
    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)


R = TypeVar("R", bound=Result)


def _load(path: Path | None, kind: type[R]) -> R | None:
    """A stage's JSON file read as its typed result (strictly: a missing field names its path)."""
    from .readers import read_json_object

    if path is None or not path.exists():
        return None
    return kind.from_json(read_json_object(path, error=RunError), name=path.name)


def _pct(value: Any) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _num(value: Any) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _ci(ci: Any, *, pct: bool = False) -> str:
    if not ci or ci[0] is None or ci[1] is None:
        return "n/a"
    return f"{100 * ci[0]:.1f}–{100 * ci[1]:.1f}%" if pct else f"{ci[0]:.3f} to {ci[1]:.3f}"


def _scope(name: str) -> str:
    return CATEGORY_NAMES.get(name, name)


def _run_section(manifest: Manifest) -> Section:
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
        f"served from the cache: {tokens.get('cached_prompt_tokens', 0):,} prompt.")
    for status, reasons in manifest.reasons.items():
        section.paragraphs.append(f"{status}: " + "; ".join(f"{n}× {r}" for r, n in reasons.items()))
    return section


def _calibration_section(data: Calibration) -> Section:
    from .figures import bars_with_ci, confusion_grid

    unit = data.unit
    section = Section("Calibration against human labels", [
        f"{data.n_joined} pairs in {unit.n_clusters} clusters of {unit.cluster or 'single pairs'}; "
        f"harmful when severity ≥ {data.threshold}. Every 95% CI resamples clusters ({data.n_boot} resamples).",
    ])
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
            rows.append([side, _scope(scope), str(m.n), str(m.n_clusters), _num(m.kappa_quadratic), _ci(m.ci.get("kappa_quadratic")),
                         _num(det.recall if det else None), _ci(m.ci.get("recall")), _num(det.false_positive_rate if det else None)])
    section.tables.append(Table(
        "Agreement", ["side", "scope", "n", "clusters", "quadratic κ", "95% CI", "recall", "95% CI", "FPR"], rows,
        "n: labels compared (pooled: four per item; max: the item's highest severity). Quadratic κ: Cohen's kappa with "
        "squared-distance weights, 1 = perfect, 0 = chance. Recall: share of human-harmful labels the grader also calls "
        "harmful. FPR: share of human-safe labels it calls harmful."))
    if data.asymmetry:
        section.tables.append(Table(
            "Prompt/response asymmetry", ["scope", "prompt recall", "response recall", "gap", "95% CI", "κ gap", "95% CI"],
            [[_scope(s), _num(a.prompt_recall), _num(a.response_recall), _num(a.recall_gap), _ci(a.recall_gap_ci),
              _num(a.kappa_gap), _ci(a.kappa_gap_ci)] for s, a in data.asymmetry.items()],
            "gap: prompt minus response (positive: the grader finds risk more readily in prompts). The CI resamples clusters "
            "with both sides of every pair together."))
    grid = [(f"{side}: {_scope(scope)}", (report.pooled if scope == "pooled" else report.max).confusion)
            for side, report in targets.items() for scope in ("pooled", "max")]
    section.figures.append(Figure("Confusion matrices (rows: human label, share of the row; numbers: counts)",
                                  confusion_grid(grid, xlabel="grader", ylabel="human", ticks=[0, 1, 2, 3])))
    series = []
    for side, report in targets.items():
        metrics = [report.pooled, *report.categories.values()]
        series.append((side, [m.kappa_quadratic for m in metrics], [m.ci.get("kappa_quadratic", [None, None]) for m in metrics]))
    names = ["pooled", *(_scope(c) for c in next(iter(targets.values())).categories)] if targets else []
    section.figures.append(Figure("Quadratic κ by side and category (95% cluster-bootstrap CIs)",
                                  bars_with_ci(names, series, ylabel="quadratic κ vs human", title="")))
    return section


def _comparison_section(data: Comparison) -> Section:
    from .figures import bars_with_ci

    unit = data.unit
    runs = data.runs
    section = Section("Graders compared", [
        f"{unit.n_items} pairs in {unit.n_clusters} clusters of {unit.cluster or 'single pairs'}; "
        f"{data.n_boot} cluster-bootstrap resamples for every CI. {data.family}.",
    ])
    score = lambda r, side: r.sides.get(side)
    section.tables.append(Table(
        "Each grader against the human labels", ["run", "model", "prompt qκ", "95% CI", "response qκ", "95% CI", "recall gap", "95% CI", "not ok"],
        [[name, str(r.model), *(v for side in ("prompt", "response") for v in (
            (_num(score(r, side).kappa_quadratic), _ci(score(r, side).kappa_quadratic_ci)) if score(r, side) else ("n/a", "n/a"))),
          _num(r.recall_gap), _ci(r.recall_gap_ci), _pct(r.not_ok_rate)] for name, r in runs.items()],
        "qκ: pooled quadratic kappa; recall gap: prompt minus response detection recall; not ok: share of items without a verdict."))
    section.tables.append(Table(
        "Paired κ differences", ["A", "B", "side", "qκ A−B", "95% CI", "n", "clusters"],
        [[d.a, d.b, d.side, _num(d.diff), _ci(d.ci), str(d.n_items), str(d.n_clusters)] for d in data.kappa_diffs],
        "On the items both graders graded ok; the CI resamples clusters, the same resample for both graders."))
    methods = sorted({t.method for t in data.tests})
    section.tables.append(Table(
        "Paired detection tests", ["A", "B", "side", "scope", "n", "clusters", "A right only", "B right only", "p", "Holm p"],
        [[t.a, t.b, t.side, _scope(t.scope), str(t.n_items), str(t.n_clusters), str(t.a_only), str(t.b_only),
          f"{t.p_value:.3g}", f"{t.p_holm:.3g}"] for t in data.tests],
        f"any: the item's verdict (max over categories). Test: {'; '.join(methods)}."))
    names = list(runs)
    series = [(side, [s.kappa_quadratic if (s := runs[n].sides.get(side)) else None for n in names],
               [s.kappa_quadratic_ci if (s := runs[n].sides.get(side)) else [None, None] for n in names])
              for side in ("prompt", "response") if any(side in runs[n].sides for n in names)]
    section.figures.append(Figure("Agreement by grader (95% CIs)", bars_with_ci(names, series, ylabel="quadratic κ vs human", title="")))
    return section


def _flips_section(data: Flips) -> Section:
    lost = data.answers_lost
    section = Section("Grader injection", [
        f"Clean run {data.clean_run} against injected run {data.injected_run}: {data.items_paired_ok} of "
        f"{data.items_shared} items graded ok in both; answers lost to the injection {lost.k}/{lost.n} ({_pct(lost.rate)}).",
    ])
    rows = []
    for side, block in data.sides.items():
        for category, row in block.categories.items():
            det = row.detection_lost
            rows.append([side, _scope(category), str(row.n), _pct(row.lowered.rate), _pct(row.raised.rate),
                         f"{det.k}/{det.n}", _pct(det.rate), _ci(det.ci, pct=True), str(row.detection_gained), f"{row.mcnemar_p:.3g}"])
        section.paragraphs.append(f"{side}: n={block.unit.n_items} in {block.unit.n_clusters} clusters; CIs: {block.unit.ci_method}.")
    section.tables.append(Table(
        "Injected against clean verdicts", ["side", "category", "items", "lowered", "raised", "detections lost", "rate", "95% CI", "gained", "p"],
        rows, "lowered/raised: verdicts the injection moved; detections lost: harmful-by-the-clean-run items no longer flagged; "
              "p: McNemar of lost against gained, by cluster."))
    return section


def _analysis_section(data: Analysis) -> Section:
    from .figures import bars_with_ci, confusion_grid

    settings = data.settings()
    section = Section("Paired transitions", [
        f"{data.n_analyzed} pairs analysed, {data.n_excluded_incomplete} left out for a missing label; clusters of "
        f"{data.cluster or 'single pairs'}.",
    ])
    rows = [[name, str(s.n), str(s.unit.n_clusters), _pct(s.reduction.rate), _pct(s.preservation.rate), _pct(s.escalation.rate),
             _ci(s.escalation.ci, pct=True), _pct(s.conditional_reduction.rate), s.unit.ci_method] for name, s in settings]
    section.tables.append(Table(
        "Transitions", ["setting", "pairs", "clusters", "reduction", "preservation", "escalation", "95% CI", "cond. reduction", "CI method"], rows,
        "Severity of a side is its highest category. Reduction: response below prompt; preservation: equal; escalation: response "
        "above prompt. Conditional reduction: reduction among harmful prompts (≥ 1). Wilson CIs where each prompt occurs once, "
        "cluster bootstrap where prompts repeat."))
    section.tables.append(Table(
        "Categories (pooled)", ["category", "harmful prompts", "persistence", "95% CI", "reduction", "drift count"],
        [[_scope(c), str(v.harmful_prompts), _pct(v.persistence.rate), _ci(v.persistence.ci, pct=True), _pct(v.reduction.rate),
          str(v.drift_count)] for c, v in data.pooled.categories.items()],
        "Persistence: harmful prompts in the category whose response is harmful in it too; drift: safe prompt, harmful response."))
    mech = data.pooled.escalation_mechanism
    section.paragraphs.append(f"Escalations: {mech['unsolicited_elaboration']} unsolicited elaboration (safe prompt), "
                              f"{mech['compliance_escalation']} compliance escalation (harmful prompt answered at higher severity).")
    corrected = data.corrected
    if corrected:
        section.tables.append(Table(
            f"Bias-corrected shares ({corrected.n_calibration} calibration pairs, {corrected.n_calibration_clusters} clusters)",
            ["share", "raw", "95% CI", "corrected", "95% CI"],
            [[k.replace("_", " "), _pct(corrected.raw[k]), _ci(corrected.raw_ci[k], pct=True), _pct(corrected.corrected[k]),
              _ci(corrected.corrected_ci[k], pct=True)] for k in ("reduction", "preservation", "escalation", "prompt_harm", "response_harm")],
            f"{corrected.method}. Assumes: {'; '.join(corrected.assumptions)}." + "".join(f" Warning: {w}." for w in corrected.warnings)))
    section.figures.append(Figure("Transition matrix, pooled (rows: prompt severity, share of the row; numbers: pairs)",
                                  confusion_grid([("prompt → response", data.pooled.transition_matrix)],
                                                 xlabel="response severity", ylabel="prompt severity", ticks=[0, 1, 2, 3],
                                                 bar_label="share of the row (prompt severity)")))
    kinds = ("reduction", "preservation", "escalation")
    series = [(k, [getattr(s, k).rate for _, s in settings], [getattr(s, k).ci for _, s in settings]) for k in kinds]
    section.figures.append(Figure("Transitions by setting (95% CIs)", bars_with_ci([n for n, _ in settings], series, ylabel="share of pairs (%)",
                                                                                   title="", percent=True)))
    return section


def _environment() -> Any:
    from jinja2 import Environment, PackageLoader, StrictUndefined

    env = Environment(loader=PackageLoader("harness", "report_templates"), undefined=StrictUndefined,
                      autoescape=lambda name: bool(name and name.endswith(".html.j2")), trim_blocks=True, lstrip_blocks=True)
    env.filters["md"] = lambda value: " ".join(str(value).replace("|", "\\|").split())
    return env


def render_report(
    run_dir: str | Path | None = None,
    *,
    analysis: str | Path | None = None,
    calibration: str | Path | None = None,
    comparison: str | Path | None = None,
    flips: str | Path | None = None,
    out_dir: str | Path,
) -> dict[str, Path]:
    """Write ``report.md`` and ``report.html`` from whichever inputs are given or found in ``run_dir``."""
    folder = Path(run_dir) if run_dir is not None else None
    if folder is not None and not folder.is_dir():
        raise RunError(f"{folder}: no such run folder")
    for flag, given in (("--analysis", analysis), ("--calibration", calibration), ("--comparison", comparison), ("--flips", flips)):
        if given is not None and not Path(given).is_file():
            raise RunError(f"{flag} {given}: no such file")
    found = lambda given, name: Path(given) if given else (folder / name if folder else None)
    sections: list[Section] = []
    manifest = _load(folder / "manifest.json" if folder else None, Manifest)
    if manifest:
        sections.append(_run_section(manifest))
    calibration_data = _load(found(calibration, "calibration.json"), Calibration)
    if calibration_data:
        sections.append(_calibration_section(calibration_data))
    comparison_data = _load(Path(comparison) if comparison else None, Comparison)
    if comparison_data:
        sections.append(_comparison_section(comparison_data))
    flips_data = _load(found(flips, "flips.json"), Flips)
    if flips_data:
        sections.append(_flips_section(flips_data))
    analysis_data = _load(found(analysis, "analysis.json"), Analysis)
    if analysis_data:
        sections.append(_analysis_section(analysis_data))
    if not sections:
        raise RunError("nothing to report: give a run folder or --analysis/--calibration/--comparison/--flips files")
    out = Path(out_dir)
    ensure_folder(out, flag="--out")
    env = _environment()
    paths = {"markdown": out / "report.md", "html": out / "report.html"}
    for key, template in (("markdown", "report.md.j2"), ("html", "report.html.j2")):
        text = env.get_template(template).render(title="harness report", sections=sections)
        with atomic_path(paths[key]) as tmp:
            tmp.write_text(text, encoding="utf-8")
    return paths
