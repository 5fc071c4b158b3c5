"""``report``: a run, its calibration, a comparison, flips and an analysis as Markdown and HTML.

Each stage's JSON is read as its typed result and becomes a :class:`~harness.report.sections.Section`
(:mod:`harness.report.sections`, shared with the terminal); one Jinja template renders the sections as
Markdown and another as self-contained HTML (figures embedded as base64 PNGs), so both say
the same thing. The report never recomputes a metric: it shows what the stages wrote,
including every CI with its unit of analysis.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from ..core.atomic import atomic_path, ensure_folder
from ..core.claims import Output, claim
from ..core.errors import RunError
from ..core.ownership import check_replaceable
from ..results.analysis import Analysis
from ..results.base import Result
from ..results.calibration import Calibration, TableAgreement
from ..results.comparison import Comparison, GraderAgreement
from ..results.flips import Flips
from ..results.manifest import Manifest
from ..results.planning import Plan, Selection
from ..results.probes import Probe
from ..results.provenance import Provenance
from ..results.raters import RaterAgreement
from ..results.shots import ShotSearch
from ..results.stability import Stability
from ..results.thresholds import Thresholds
from .blocks import Section

R = TypeVar("R", bound=Result)


def _load(path: Path | None, kind: type[R]) -> R | None:
    """A stage's JSON file read as its typed result (strictly: a missing field names its path); None when absent."""
    from ..io.readers import read_result

    return read_result(path, kind) if path is not None and path.exists() else None


def _keys(path: Path) -> set[str]:
    from ..io.readers import read_json_object

    return set(read_json_object(path, error=RunError))


def template_environment() -> Any:
    from jinja2 import Environment, PackageLoader, StrictUndefined

    env = Environment(loader=PackageLoader("harness", "report/templates"),
                      undefined=StrictUndefined,
                      autoescape=lambda name: bool(name and name.endswith(".html.j2")),
                      trim_blocks=True,
                      lstrip_blocks=True)
    env.filters["md"] = _markdown_text
    return env


def _markdown_text(value: object) -> str:
    """A value as one line of Markdown text: no table-breaking pipes, no HTML a renderer would run, no control
    characters.

    >>> _markdown_text("<script>x</script> | a & b")
    '&lt;script&gt;x&lt;/script&gt; \\\\| a &amp; b'
    """
    from ..core.display import printable

    text = printable(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")
    return " ".join(text.split())


def render_report(
    run_dir: str | Path | None = None,
    *,
    analysis: str | Path | None = None,
    calibration: str | Path | None = None,
    comparison: str | Path | None = None,
    flips: str | Path | None = None,
    agreement: str | Path | None = None,
    shot_search: str | Path | None = None,
    plan: str | Path | None = None,
    picks: str | Path | None = None,
    grader_agreement: str | Path | None = None,
    table_agreement: str | Path | None = None,
    stability: str | Path | None = None,
    thresholds: str | Path | None = None,
    probes: Sequence[str | Path] = (),
    out_dir: str | Path,
    latex: bool = False,
) -> dict[str, Path]:
    """Write ``report.md``, ``report.html`` and ``figures/*.svg`` (with ``latex``: ``report.tex`` and ``figures/*.pdf``)
    from whichever inputs are given or found in ``run_dir``."""
    folder = Path(run_dir) if run_dir is not None else None
    if folder is not None and not folder.is_dir():
        raise RunError(f"{folder}: no such run folder")
    given = {"analysis": analysis, "calibration": calibration, "comparison": comparison, "flips": flips,
             "agreement": agreement, "shot_search": shot_search, "plan": plan, "picks": picks,
             "grader_agreement": grader_agreement, "table_agreement": table_agreement, "stability": stability,
             "thresholds": thresholds}
    for flag, path in given.items():
        if path is not None and not Path(path).is_file():
            raise RunError(f"`{flag}` {path}: no such file")
    if comparison is not None and "graders" in _keys(Path(comparison)):  # compare without human labels
        given["grader_agreement"], given["comparison"] = comparison, None
    results = _results(folder, given)

    found = list(probes) or (sorted(folder.glob("probe-*/probe.json")) if folder is not None else [])
    results += [r for r in (_load(Path(p), Probe) for p in found) if r is not None]
    if not results:
        raise RunError("nothing to report: give a run folder or "
                       "`analysis`/`calibration`/`comparison`/`flips`/`agreement`/`shot_search` files")
    sections, appendix = _arranged(results)
    out = Path(out_dir)
    names = tuple((name, "document") for name in ("report.md", "report.html", *(("report.tex",) if latex else ())))
    claim([Output(out, param="`out_dir`", folder=True, names=names)],
          inputs=[(f"`{key}`", path) for key, path in given.items()] + [("a probe", p) for p in probes])
    check_replaceable(out / "figures", param="out")  # before any figure is drawn: a user's file there stops the report
    ensure_folder(out, param="out_dir")
    title = report_title(results)
    return _write(out, title, sections + appendix, latex=latex)


def _arranged(results: list[Result]) -> tuple[list[Section], list[Section]]:
    """The answers first (the summary), the contents, each result's section; provenance and the token bill (the run's
    own section) in an appendix at the end, where a reviewer finds them without reading past them first."""
    from .summary import summary_section

    stages = [r for r in results if not isinstance(r, Manifest)]
    main = [section_of_result(r) for r in stages]
    bill = [section_of_result(r) for r in results if isinstance(r, Manifest)]
    lines = [f"{section.title}: {provenance_line(p)}"
             for section, r in zip(main, stages, strict=True) if (p := getattr(r, "provenance", None))]
    appendix = Section("Appendix: provenance and cost", lines)
    for section in bill:
        appendix.paragraphs += section.paragraphs
        appendix.tables += section.tables
    summary = summary_section(results)
    front = [summary] if summary is not None else []
    listed = [*front, *main, appendix]
    if len(listed) > 2:
        (front or main)[0].paragraphs.insert(0, "Contents: " + ", ".join(s.title for s in listed) + ".")
    return [*front, *main], ([appendix] if appendix.paragraphs or appendix.tables else [])


#: Where each stage's JSON lies in a run folder (None: only when given), in report order.
_FOUND: list[tuple[str | None, str, type[Result]]] = [
    (None, "manifest.json", Manifest), ("calibration", "calibration.json", Calibration), ("comparison", "", Comparison),
    ("grader_agreement", "", GraderAgreement), ("table_agreement", "", TableAgreement),
    ("shot_search", "shot-search/shot_search.json", ShotSearch), ("agreement", "agreement.json", RaterAgreement),
    ("plan", "plan.json", Plan), ("picks", "picks.design.json", Selection), ("flips", "flips.json", Flips),
    ("stability", "stability.json", Stability), ("thresholds", "thresholds.json", Thresholds),
    ("analysis", "analysis.json", Analysis),
]


def _results(folder: Path | None, given: dict[str, str | Path | None]) -> list[Result]:
    """Each stage's result, from the file given for it or its usual place in the run folder."""
    found: list[Result] = []
    for key, name, kind in _FOUND:
        path = Path(p) if key and (p := given.get(key)) else (folder / name if folder and name else None)
        result = _load(path, kind)
        if result is not None:
            found.append(result)
    return found


def section_of_result(result: Result) -> Section:
    """The result's section (its provenance goes to the appendix)."""
    from .sections import section_of

    return section_of(result)


def report_section(result: Result) -> Section:
    """The result's section, opened by where its numbers came from (a section shown alone, as in a notebook)."""
    section = section_of_result(result)
    provenance = getattr(result, "provenance", None)
    if provenance is not None:
        section.paragraphs.insert(0, provenance_line(provenance))
    return section


def provenance_line(p: Provenance) -> str:
    """One sentence: label source, graders, inputs with short hashes, version and time."""
    graders = "; ".join(f"{g.model} (template {g.template_hash[:8]}, shots {g.shots_hash[:8]}, "
                        f"{g.shots_count} exemplars{', at ' + g.endpoint if g.endpoint else ''})"
                        for g in p.graders)
    inputs = "; ".join(f"{i.role} {i.path}" + (f" (sha256 {i.sha256[:12]})" if i.sha256 else "") for i in p.inputs)
    return (f"Labels: {p.label_source}"
            + (f"; graders: {graders}" if graders else "")
            + (f". Inputs: {inputs}" if inputs else "")
            + f". harness {p.harness_version}, {p.step}, {p.created}.")


def report_title(results: list[Result]) -> str:
    """What the report is: its parts, the graders and the data ("Calibration and transitions: harness-baseline on
    sample_pairs")."""
    kinds = {Manifest: "grading", Calibration: "calibration", Comparison: "comparison",
             GraderAgreement: "grader agreement", TableAgreement: "calibration", Stability: "stability",
             Probe: "probes", ShotSearch: "exemplar search", RaterAgreement: "rater agreement", Plan: "label plan",
             Selection: "label picks", Flips: "injection flips", Analysis: "paired transitions",
             Thresholds: "verdict rules"}
    parts = list(dict.fromkeys(kinds[type(r)] for r in results if type(r) in kinds))
    models: list[str] = []
    data: list[str] = []
    for result in results:
        if isinstance(result, Manifest):
            models.append(result.model)
            data.append(Path(result.input_path or "").name)
        provenance = getattr(result, "provenance", None)
        if provenance is not None:
            models += [g.model for g in provenance.graders]
            data += [Path(i.path).name for i in provenance.inputs
                     if i.role in ("human", "pairs", "table", "ratings") and not Path(i.path).is_dir()]
    what = parts[0] if len(parts) == 1 else " and ".join(parts) if len(parts) == 2 else "study"
    who = ", ".join(dict.fromkeys(m for m in models if m))
    on = next((d for d in data if d), "")
    return f"harness {what} report" + (f": {who}" if who else "") + (f" on {on}" if on else "")


def _sweep(out: Path) -> None:
    """Remove the staging folders of reports killed while drawing (``.figures-<pid>-*`` of a process that is gone, or
    an earlier harness's ``.figures-*`` untouched for an hour): they hold only figures harness drew."""
    import shutil
    import time

    for stale in out.glob(".figures-*"):
        parts = stale.name.split("-")
        if not stale.is_dir() or stale.is_symlink():
            continue
        if any(p.suffix not in (".svg", ".pdf", ".png") for p in stale.iterdir()):
            continue
        if len(parts) >= 3 and parts[1].isdigit():
            try:
                os.kill(int(parts[1]), 0)
                continue  # a report still drawing
            except ProcessLookupError:
                pass
            except OSError:
                continue
        elif time.time() - stale.stat().st_mtime < 3600:
            continue
        shutil.rmtree(stale, ignore_errors=True)


def _write(out: Path, title: str, sections: list[Section], *, latex: bool) -> dict[str, Path]:
    """Draw the figures into a fresh folder, render the documents, then swap the folder in (nothing half-written)."""
    import shutil
    import tempfile

    from ..core.ownership import RECORD, replace_owned
    from .figures import save

    _sweep(out)
    staging = Path(tempfile.mkdtemp(prefix=f".figures-{os.getpid()}-", dir=out))  # its files move into figures/
    try:
        figures = [figure for section in sections for figure in section.figures]
        for number, figure in enumerate(figures, start=1):
            stem = f"{number:02d}-{figure.name}"
            figure.png, figure.width_in = save(figure.draw(), staging / stem, pdf=latex)
            figure.file = f"figures/{stem}"
        env = template_environment()
        paths = {"markdown": out / "report.md", "html": out / "report.html"}
        texts = {key: env.get_template(template).render(title=title, sections=sections)
                 for key, template in (("markdown", "report.md.j2"), ("html", "report.html.j2"))}
        if latex:
            from .latex import latex_document

            paths["latex"] = out / "report.tex"
            texts["latex"] = latex_document(title, sections)
        target = out / "figures"
        if figures:
            replace_owned(target, staging)
        elif target.exists():  # no figures now: remove only the ones harness drew there before
            for name in check_replaceable(target):
                (target / name).unlink(missing_ok=True)
            (target / RECORD).unlink(missing_ok=True)
            if not any(target.iterdir()):
                target.rmdir()
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    for key, text in texts.items():
        with atomic_path(paths[key], kind="document") as tmp:
            tmp.write_text(text, encoding="utf-8")
    if figures:
        paths["figures"] = target
    return paths
