"""``report``: a run, its calibration, a comparison, flips and an analysis as Markdown and HTML.

Each stage's JSON is read as its typed result and becomes a :class:`~harness.report.sections.Section`
(:mod:`harness.report.sections`, shared with the terminal); one Jinja template renders the sections as
Markdown and another as self-contained HTML (figures embedded as base64 PNGs), so both say
the same thing. The report never recomputes a metric: it shows what the stages wrote,
including every CI with its unit of analysis.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from ..core.atomic import atomic_path, ensure_folder
from ..core.errors import RunError
from ..results.analysis import Analysis
from ..results.base import Result
from ..results.calibration import Calibration
from ..results.comparison import Comparison
from ..results.flips import Flips
from ..results.manifest import Manifest
from ..results.planning import Plan, Selection
from ..results.raters import RaterAgreement
from .blocks import Section
from .planning import plan_section, selection_section
from .raters import agreement_section
from .sections import analysis_section, calibration_section, comparison_section, flips_section, run_section

R = TypeVar("R", bound=Result)


def _load(path: Path | None, kind: type[R]) -> R | None:
    """A stage's JSON file read as its typed result (strictly: a missing field names its path)."""
    from ..io.readers import read_json_object

    if path is None or not path.exists():
        return None
    return kind.from_json(read_json_object(path, error=RunError), name=path.name)


def _environment() -> Any:
    from jinja2 import Environment, PackageLoader, StrictUndefined

    env = Environment(loader=PackageLoader("harness", "report/templates"), undefined=StrictUndefined,
                      autoescape=lambda name: bool(name and name.endswith(".html.j2")), trim_blocks=True, lstrip_blocks=True)
    env.filters["md"] = _markdown_text
    return env


def _markdown_text(value: object) -> str:
    """A value as one line of Markdown text: no table-breaking pipes, no HTML a renderer would run, no control characters.

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
    out_dir: str | Path,
) -> dict[str, Path]:
    """Write ``report.md`` and ``report.html`` from whichever inputs are given or found in ``run_dir``."""
    folder = Path(run_dir) if run_dir is not None else None
    if folder is not None and not folder.is_dir():
        raise RunError(f"{folder}: no such run folder")
    for flag, given in (("`analysis`", analysis), ("`calibration`", calibration), ("`comparison`", comparison), ("`flips`", flips),
                        ("`agreement`", agreement)):
        if given is not None and not Path(given).is_file():
            raise RunError(f"{flag} {given}: no such file")
    found = lambda given, name: Path(given) if given else (folder / name if folder else None)
    sections: list[Section] = []
    manifest = _load(folder / "manifest.json" if folder else None, Manifest)
    if manifest:
        sections.append(run_section(manifest))
    calibration_data = _load(found(calibration, "calibration.json"), Calibration)
    if calibration_data:
        sections.append(calibration_section(calibration_data))
    comparison_data = _load(Path(comparison) if comparison else None, Comparison)
    if comparison_data:
        sections.append(comparison_section(comparison_data))
    agreement_data = _load(found(agreement, "agreement.json"), RaterAgreement)
    if agreement_data:
        sections.append(agreement_section(agreement_data))
    plan_data = _load(found(None, "plan.json"), Plan)
    if plan_data:
        sections.append(plan_section(plan_data))
    pick_data = _load(found(None, "picks.design.json"), Selection)
    if pick_data:
        sections.append(selection_section(pick_data))
    flips_data = _load(found(flips, "flips.json"), Flips)
    if flips_data:
        sections.append(flips_section(flips_data))
    analysis_data = _load(found(analysis, "analysis.json"), Analysis)
    if analysis_data:
        sections.append(analysis_section(analysis_data))
    if not sections:
        raise RunError("nothing to report: give a run folder or `analysis`/`calibration`/`comparison`/`flips`/`agreement` files")
    out = Path(out_dir)
    ensure_folder(out, param="out_dir")
    env = _environment()
    paths = {"markdown": out / "report.md", "html": out / "report.html"}
    for key, template in (("markdown", "report.md.j2"), ("html", "report.html.j2")):
        text = env.get_template(template).render(title="harness report", sections=sections)
        with atomic_path(paths[key]) as tmp:
            tmp.write_text(text, encoding="utf-8")
    return paths
