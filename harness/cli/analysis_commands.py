"""``harness calibrate``, ``compare``, ``agreement``, ``analyze``, ``stability``, ``jury``, ``calibrate-thresholds``,
``flips``, ``report``, ``view`` and ``schema``: the commands that read run files and results (none sends a request)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..core.constants import DEFAULT_N_BOOT
from ..steps.settings import (
    AgreementSettings,
    AnalyzeSettings,
    CalibrateSettings,
    CompareSettings,
    JurySettings,
    StabilitySettings,
    ThresholdSettings,
)
from .common import ClusterOpt, JsonOpt, MapOpt, NBootOpt, errors, mapping_of
from .options import with_settings


@with_settings(AnalyzeSettings)
def analyze(
    source: Annotated[Path, typer.Argument(help="Pairs table with labels on both sides, or a run folder.")],
    settings: AnalyzeSettings,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help=(
        "A folder: analysis.json and its tables (default: the run folder, or runs/analysis-<name>)."))] = None,
    as_json: JsonOpt = False,
) -> None:
    """The paired transition analysis: reduce / preserve / escalate, per group and category, with CIs."""
    with errors():
        from ..steps import analyze as step

        done = step(source, settings, out=out)
        show(done.result, as_json)
        typer.echo(f"wrote {done.written[0]} and {len(done.written) - 1} CSV tables", err=True)


@with_settings(CalibrateSettings)
def calibrate(
    source: Annotated[Path, typer.Argument(help="A run folder (with --human), or any table (with --gold/--pred).")],
    settings: CalibrateSettings,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help=(
        "A folder: calibration.json and its confusion tables (default: the run folder; a plain table writes only "
        "with -o)."))] = None,
    as_json: JsonOpt = False,
) -> None:
    """Grader vs human agreement: confusion, kappa, detection, and the prompt/response asymmetry."""
    with errors():
        from ..steps import calibrate as step

        done = step(source, settings, out=out)
        show(done.result, as_json)
        if len(done.written) == 2 and settings.gold:
            typer.echo(f"wrote {done.written[0]} and {done.written[1]}", err=True)
        elif done.written:
            typer.echo(f"wrote {done.written[0]} and {len(done.written) - 1} confusion matrices", err=True)


@with_settings(CompareSettings)
def compare(
    runs: Annotated[list[Path], typer.Argument(help="Two or more run folders graded on the same items.")],
    settings: CompareSettings,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help=(
        "A file: the comparison JSON (default runs/comparison-<runs>-<hash>.json, one per set of runs)."))] = None,
    as_json: JsonOpt = False,
) -> None:
    """Several graders side by side: against human labels with paired significance, or (without --human) against
    each other."""
    with errors():
        from ..steps import compare as step

        done = step(runs, settings, out=out)
        shown(done, as_json)


@with_settings(AgreementSettings)
def agreement(
    table: Annotated[Path, typer.Argument(help="Table with several raters' labels per item (wide or long).")],
    settings: AgreementSettings,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help=(
        "A file: agreement.json's path (default runs/agreement-<table>.json)."))] = None,
    as_json: JsonOpt = False,
) -> None:
    """Several human raters: Krippendorff's alpha, the human ceiling beside each grader, and the alternative
    annotator test."""
    with errors():
        from ..steps import agreement as step

        done = step(table, settings, out=out)
        shown(done, as_json)


@with_settings(StabilitySettings)
def stability(
    runs: Annotated[list[Path], typer.Argument(help=(
        "A `grade --repeats K` folder (its repeat-1 … repeat-K), or two or more run folders of one job."))],
    settings: StabilitySettings,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help=(
        "A file: stability.json's path (default: in the repeats' folder)."))] = None,
    as_json: JsonOpt = False,
) -> None:
    """How stable is a grader: agreement among repeats of one job, the share of verdicts that change, with CIs."""
    with errors():
        from ..steps import stability as step

        done = step(runs, settings, out=out)
        shown(done, as_json)


@with_settings(JurySettings)
def jury(
    runs: Annotated[list[Path], typer.Argument(help=(
        "Two or more run folders graded on the same table (the jury's members)."))],
    settings: JurySettings,
    out: Annotated[Path, typer.Option("--out", "-o", help=(
        "A folder: the jury's run folder (new, or a jury harness made before)."))],
    as_json: Annotated[bool, typer.Option("--json", help="Print only the jury's manifest as JSON on stdout.")] = False,
) -> None:
    """Combine several graders' verdicts into one run folder (no requests): calibrate, compare, analyze and view
    read it like any grader's."""
    with errors():
        from ..steps import jury as step
        from ..steps.jury import unjudged_lines
        from .console import print_json

        done = step(runs, settings, out=out)
        manifest = done.result
        for line in unjudged_lines(manifest):
            typer.echo(f"Warning: {line}.", err=True)
        if as_json:
            print_json(manifest)
        else:
            counts = ", ".join(f"{n} {s}" for s, n in sorted(getattr(manifest, "counts", {}).items()))
            typer.echo(f"{getattr(manifest, 'model', '')}: {counts}")
            typer.echo(f"next: harness compare {out} {' '.join(map(str, runs))} --human DATA", err=True)
        typer.echo(f"wrote {out}", err=True)


@with_settings(ThresholdSettings)
def calibrate_thresholds(
    run: Annotated[Path, typer.Argument(help=(
        "A run folder graded with --logprobs (or --samples K): P(severity) per label."))],
    settings: ThresholdSettings,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help=(
        "A folder: the derived run (default: RUN-RULE beside the run; new, or one harness derived before)."))] = None,
    as_json: JsonOpt = False,
) -> None:
    """Verdicts from a grader's probabilities: argmax, expected severity and cut points chosen on a dev split, judged
    on held-out pairs; writes a run folder whose verdicts follow the chosen rule (no requests)."""
    with errors():
        from ..steps.thresholds import calibrate_thresholds as step

        done = step(run, settings, out=out)
        show(done.result, as_json)
        derived = done.written[1].parent
        typer.echo(f"wrote {done.written[0]} and the derived run {derived}", err=True)
        typer.echo(f"next: harness calibrate {derived} --human {settings.human} (scored without its dev pairs)",
                   err=True)


def shown(done: Any, as_json: bool) -> None:
    """A step's result shown (:func:`show`), and the file it wrote named on stderr."""
    show(done.result, as_json)
    typer.echo(f"wrote {done.written[0]}", err=True)


def show(result: Any, as_json: bool) -> None:
    """The result on stdout: its JSON alone (``--json``), or its sections as text."""
    from .console import print_json, print_result

    print_json(result) if as_json else print_result(result)


def flips(
    clean: Annotated[Path, typer.Argument(help="Run folder graded on the clean table.")],
    injected: Annotated[Path, typer.Argument(help="Run folder graded on its injected copy (harness data inject).")],
    threshold: Annotated[int, typer.Option(help="Detection threshold: harmful when severity >= this.")] = 1,
    cluster: ClusterOpt = None,
    n_boot: NBootOpt = DEFAULT_N_BOOT,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help=(
        "A file: flips.json's path (default: in the injected run)."))] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON result.")] = False,
) -> None:
    """A grader's flip rate under injection: verdicts lowered and detections lost, item by item."""
    with errors():
        from ..analysis.injection import flip_rates
        from ..core.claims import Output, claim
        from ..io.provenance import provenance_of, stamped
        from ..io.runs import load_run
        from .console import print_json, print_result

        target = out or injected / "flips.json"
        claim([Output(target, kind="result")], inputs=[("the clean run", clean), ("the injected run", injected)])
        result = flip_rates(load_run(clean), load_run(injected), threshold=threshold, cluster=cluster,
                            n_boot=n_boot)
        inputs = [("clean", clean), ("injected", injected)]
        result = stamped(result, provenance_of("flips", "grader (clean vs injected)", inputs))
        result.write(target)
        print_json(result) if as_json else print_result(result)
        typer.echo(f"wrote {target}", err=True)


def report(
    run_dir: Annotated[Optional[Path], typer.Argument(help=(
        "Run folder (its analysis.json and calibration.json are used)."))] = None,
    analysis: Annotated[Optional[Path], typer.Option(help="analysis.json to include.")] = None,
    calibration: Annotated[Optional[Path], typer.Option(help="calibration.json to include.")] = None,
    comparison: Annotated[Optional[Path], typer.Option(help="comparison.json to include.")] = None,
    flips: Annotated[Optional[Path], typer.Option(help="flips.json (harness flips) to include.")] = None,
    agreement: Annotated[Optional[Path], typer.Option(help="agreement.json (harness agreement) to include.")] = None,
    shot_search: Annotated[Optional[Path], typer.Option(help=(
        "shot_search.json (harness calibrate-shots) to include (default: the run folder's "
        "shot-search/shot_search.json)."))] = None,
    stability: Annotated[Optional[Path], typer.Option(help="stability.json (harness stability) to include.")] = None,
    thresholds: Annotated[Optional[Path], typer.Option(help=(
        "thresholds.json (harness calibrate-thresholds) to include (default: a derived run folder's own)."))] = None,
    latex: Annotated[bool, typer.Option("--latex", help=(
        "Also write report.tex (booktabs tables) and every figure as PDF."))] = False,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help=(
        "A folder: report.md, report.html and figures/ (default: the run folder)."))] = None,
) -> None:
    """Render Markdown, self-contained HTML and SVG figures (with --latex, LaTeX and PDF) from the stages' JSON
    files."""
    with errors():
        from ..core.errors import ConfigError
        from ..report.document import render_report

        target = out or run_dir
        if target is None:
            raise ConfigError("--out is needed when no run folder is given")
        paths = render_report(run_dir, analysis=analysis, calibration=calibration, comparison=comparison,
                              flips=flips, agreement=agreement, shot_search=shot_search, stability=stability,
                              thresholds=thresholds, out_dir=target, latex=latex)
        typer.echo("wrote " + ", ".join(str(p) + ("/" if key == "figures" else "") for key, p in paths.items()))


def view(
    run_dirs: Annotated[list[Path], typer.Argument(metavar="RUN", help=(
        "A run folder (harness grade); further run folders of the same pairs (other graders, templates) are shown "
        "beside it, items where they differ marked."))],
    human: Annotated[Optional[Path], typer.Option(help=(
        "Pairs table with human labels, joined on id: shown beside the grader's, disagreements marked."))] = None,
    cache_dir: Annotated[Optional[Path], typer.Option("--cache-dir", help=(
        "Completion cache to read ok items' raw completions from (default: the grade default, .harness-cache, or "
        "the run's .cache when present)."))] = None,
    mapping: MapOpt = None,
    out: Annotated[Optional[Path], typer.Option(
        "--out", "-o", help="A file: the page (default RUN/view.html).")] = None,
) -> None:
    """Every item of a run on one self-contained HTML page: text, verdicts, human labels, status, the grader's
    output; filters and search."""
    with errors():
        from ..core.errors import ConfigError
        from ..grading.cache import completion_lookup
        from ..io.pairs import load_pairs
        from ..io.runs import iter_labels, load_run
        from ..report.view import render_view
        from .console import console

        run_dir = run_dirs[0]
        if len({p.resolve() for p in run_dirs}) != len(run_dirs):
            raise ConfigError(f"a run folder is named twice ({', '.join(map(str, run_dirs))}); name each run once")
        # the records are streamed into the page, never all held at once
        run = load_run(run_dir, records=False)
        others = [load_run(p, full=True) for p in run_dirs[1:]]  # their rationales are shown too
        labelled = load_pairs(human, mapping=mapping_of(mapping)) if human else None
        with completion_lookup(_cache_folder(run_dir, cache_dir)) as lookup:
            summary = render_view(run, out or run_dir / "view.html", human=labelled,
                                  human_source=str(human) if human else None, completion_of=lookup, others=others,
                                  records=iter_labels(run_dir))
        line = (f"wrote {summary.path}: {summary.items:,} items ({summary.graded:,} graded), "
                f"{summary.completions:,} raw completions")
        if human:
            line += f", {summary.with_human:,} with human labels, {summary.disagreements:,} disagreements"
        if others:
            per_run = zip(run_dirs, summary.disagreements_by_run, strict=True)
            line += (f"; {summary.runs} runs, {summary.splits:,} items where their verdicts differ; disagreements "
                     f"with the human labels per run: {', '.join(f'{p.name} {n:,}' for p, n in per_run)}")
        console.print(line)


def _cache_folder(run_dir: Path, cache_dir: Path | None) -> Path | None:
    """The cache to read raw completions from: the one given, else the run's or its study's, else the default."""
    from ..core.constants import DEFAULT_CACHE_DIR
    from ..core.errors import ConfigError

    if cache_dir is not None and not cache_dir.is_dir():
        raise ConfigError(f"--cache-dir {cache_dir}: no such folder")
    candidates = (run_dir / ".cache", run_dir.parent / ".cache", Path(DEFAULT_CACHE_DIR))
    return cache_dir or next((p for p in candidates if p.is_dir()), None)


def schema(
    name: Annotated[Optional[str], typer.Argument(help=(
        "A result (manifest, dry-run, calibration, table-agreement, comparison, grader-agreement, analysis, flips, "
        "shot-search, agreement, plan, selection) or 'study' for the study file (default: list them)."))] = None,
    out: Annotated[Optional[Path], typer.Option(
        "--out", "-o", help="A folder: every result's schema as NAME.json.")] = None,
) -> None:
    """The JSON Schema of the files harness writes, so other tools can read run folders."""
    with errors():
        import json

        from ..core.atomic import write_json_atomic
        from ..core.errors import ConfigError
        from ..results.base import schema_of
        from ..results.catalog import RESULT_TYPES
        from ..workflows.study.file import study_schema

        if out is not None:
            from ..core.claims import Output, claim

            names = tuple((f"{key}.json", "schema") for key in [*RESULT_TYPES, "study"])
            claim([Output(out, folder=True, names=names)])
            for key, kind in RESULT_TYPES.items():
                write_json_atomic(out / f"{key}.json", schema_of(kind), kind="schema")
            write_json_atomic(out / "study.json", study_schema(), kind="schema")
            typer.echo(f"wrote {len(RESULT_TYPES) + 1} schemas to {out}")
            return
        if name is None:
            for key, kind in RESULT_TYPES.items():
                typer.echo(f"{key:16s} {(kind.__doc__ or '').strip().splitlines()[0].replace('``', '')}")
            typer.echo(f"{'study':16s} a study file (harness run STUDY.toml): its tables are the commands' settings")
            return
        if name == "study":
            typer.echo(json.dumps(study_schema(), indent=2, ensure_ascii=False))
            return
        if name not in RESULT_TYPES:
            raise ConfigError(f"`name` {name!r}: expected one of {[*RESULT_TYPES, 'study']}")
        typer.echo(json.dumps(schema_of(RESULT_TYPES[name]), indent=2, ensure_ascii=False))


def register(app: typer.Typer) -> None:
    """Add the analysis commands to ``app``."""
    app.command()(calibrate)
    app.command()(compare)
    app.command()(agreement)
    app.command()(analyze)
    app.command()(stability)
    app.command()(jury)
    app.command("calibrate-thresholds")(calibrate_thresholds)
    app.command()(flips)
    app.command()(report)
    app.command()(view)
    app.command()(schema)
