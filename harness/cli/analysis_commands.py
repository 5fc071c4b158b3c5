"""``harness calibrate``, ``compare``, ``analyze``, ``flips`` and ``report``: the commands that read run files."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ..core.constants import DEFAULT_N_BOOT, DEFAULT_SEED
from .common import (
    ClusterOpt,
    EpsilonOpt,
    LimitOpt,
    MapOpt,
    NBootOpt,
    RatersOpt,
    SampleOpt,
    SampleSeedOpt,
    comparison_path,
    errors,
    mapping_of,
    read_json,
    split,
)

if TYPE_CHECKING:
    import pandas as pd



def analyze(
    source: Annotated[Path, typer.Argument(help="Pairs table with labels on both sides, or a run folder.")],
    by: Annotated[Optional[str], typer.Option(help="Group by this metadata column, e.g. model.")] = None,
    cluster: ClusterOpt = None,
    reference: Annotated[Optional[str], typer.Option(help="Group compared with each other group (default: the first in sort order).")] = None,
    all_pairs: Annotated[bool, typer.Option("--all-pairs", help="Compare every pair of groups instead.")] = False,
    n_boot: NBootOpt = DEFAULT_N_BOOT,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = DEFAULT_SEED,
    human: Annotated[Optional[Path], typer.Option(help="Human labels of a random subset of these pairs (whole prompt clusters; optional inclusion_probability column): every share corrected by prediction-powered inference.")] = None,
    correct: Annotated[Optional[Path], typer.Option(help="calibration.json measured on other pairs (harness calibrate): shares corrected by EM, transported (use --human when you can).")] = None,
    force: Annotated[bool, typer.Option("--force", help="With --correct: use a calibration of another grader, template or shots anyway.")] = False,
    limit: LimitOpt = None,
    sample: SampleOpt = None,
    sample_seed: SampleSeedOpt = 0,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Output folder (default: the run folder, or runs/analysis-<name>).")] = None,
    mapping: MapOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON result.")] = False,
) -> None:
    """The paired transition analysis: reduce / preserve / escalate, per group and category, with CIs."""
    with errors():
        from ..analysis.transitions import analyze as run_analysis
        from ..analysis.transitions import save_analysis
        from ..io.pairs import load_pairs, select_rows
        from ..io.provenance import provenance_of, stamped
        from .console import print_json, print_result

        frame, default_out = _pairs_or_run(source, mapping)
        frame = select_rows(frame, limit=limit, sample=sample, seed=sample_seed)
        calibration = read_json(correct, "--correct") if correct else None
        labelled = load_pairs(human, mapping=mapping_of(mapping)) if human else None
        result = run_analysis(frame, by=by, cluster=cluster, reference=reference, all_pairs=all_pairs, n_boot=n_boot, seed=seed,
                              correct=calibration, correct_source=str(correct), human=labelled, human_source=str(human),
                              force=force)
        source_kind = "grader" if source.is_dir() else "the table's labels"
        result = stamped(result, provenance_of("analyze", source_kind + (", corrected by human labels" if human or correct else ""),
                                               [("pairs", source), ("human", human), ("calibration", correct)]))
        written = save_analysis(result, out or default_out)
        print_json(result) if as_json else print_result(result)
        typer.echo(f"wrote {written[0]} and {len(written) - 1} CSV tables", err=True)


def _pairs_or_run(source: Path, mapping: str | None) -> tuple[pd.DataFrame, Path]:
    """A pairs table from a file, or the grader-labeled pairs of a run folder."""
    from ..io.pairs import load_pairs
    from ..io.runs import graded_pairs, load_run

    if source.is_dir():
        return graded_pairs(load_run(source)), source
    return load_pairs(source, mapping=mapping_of(mapping)), Path("runs") / f"analysis-{source.stem}"


def calibrate(
    source: Annotated[Path, typer.Argument(help="A run folder (with --human), or any table (with --gold/--pred).")],
    human: Annotated[Optional[Path], typer.Option(help="Pairs table with human labels, joined to the run on id.")] = None,
    gold: Annotated[Optional[str], typer.Option(help="Reference label column of a plain table.")] = None,
    pred: Annotated[Optional[str], typer.Option(help="Grader label column of a plain table.")] = None,
    labels: Annotated[Optional[str], typer.Option(help="Declared label set, comma-separated (others count as unparsed).")] = None,
    nominal: Annotated[bool, typer.Option("--nominal", help="Treat integer labels as nominal (no weighted kappa).")] = False,
    threshold: Annotated[int, typer.Option(help="Detection threshold: harmful when severity >= this.")] = 1,
    by: Annotated[Optional[str], typer.Option(help="Also calibrate within each group of this column (model, source): a grader's errors can differ by group.")] = None,
    raters: RatersOpt = None,
    epsilon: EpsilonOpt = 0.1,
    cluster: ClusterOpt = None,
    n_boot: NBootOpt = DEFAULT_N_BOOT,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = DEFAULT_SEED,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Output folder (default: the run folder; a plain table writes only with -o).")] = None,
    mapping: MapOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON result.")] = False,
) -> None:
    """Grader vs human agreement: confusion, kappa, detection, and the prompt/response asymmetry."""
    with errors():
        from ..analysis.calibration import calibrate_run, calibrate_table, save_calibration, save_table_calibration
        from ..core.errors import ConfigError
        from ..io.pairs import load_pairs
        from ..io.provenance import provenance_of, stamped
        from ..io.ratings import read_ratings
        from ..io.runs import load_run
        from .console import print_json, print_result

        if gold or pred:
            if not (gold and pred):
                raise ConfigError("--gold and --pred go together: name both label columns")
            frame = load_pairs(source, mapping=mapping_of(mapping), require=("id",))  # two label columns need no prompt
            several = read_ratings(source, raters=list(split(raters)), graders=[pred], final=gold, level="nominal" if nominal else None,
                                   cluster=cluster, mapping=mapping_of(mapping)) if raters else None
            table = calibrate_table(frame, gold, pred, labels=list(split(labels)) or None, ordinal=False if nominal else None,
                                    threshold=threshold, cluster=cluster, n_boot=n_boot, seed=seed, raters=several, epsilon=epsilon)
            table = stamped(table, provenance_of("calibrate", f"{pred} vs {gold}", [("table", source)]))
            print_json(table) if as_json else print_result(table)
            if out is not None:
                written = save_table_calibration(table, out)
                typer.echo(f"wrote {written[0]} and {written[1]}", err=True)
            return
        if human is None:
            raise ConfigError("calibrating a run needs --human DATA (or use --gold/--pred on a plain table)")
        several = read_ratings(human, raters=list(split(raters)), graders=[str(source)], final="canonical", cluster=cluster,
                               mapping=mapping_of(mapping)) if raters else None
        result = calibrate_run(load_run(source), load_pairs(human, mapping=mapping_of(mapping)), threshold=threshold,
                               cluster=cluster, n_boot=n_boot, seed=seed, by=by, raters=several, epsilon=epsilon)
        result = stamped(result, provenance_of("calibrate", "grader vs human", [("run", source), ("human", human)]))
        written = save_calibration(result, out or source)
        print_json(result) if as_json else print_result(result)
        typer.echo(f"wrote {written[0]} and {len(written) - 1} confusion matrices", err=True)


def compare(
    runs: Annotated[list[Path], typer.Argument(help="Two or more run folders graded on the same items.")],
    human: Annotated[Path, typer.Option(help="Pairs table with human labels.")],
    threshold: Annotated[int, typer.Option(help="Detection threshold: harmful when severity >= this.")] = 1,
    raters: RatersOpt = None,
    epsilon: EpsilonOpt = 0.1,
    cluster: ClusterOpt = None,
    n_boot: NBootOpt = DEFAULT_N_BOOT,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = DEFAULT_SEED,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Where to write the comparison JSON (default runs/comparison-<runs>-<hash>.json, one per set of runs).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON result.")] = False,
) -> None:
    """Several graders side by side against one human-labeled set, with paired significance."""
    with errors():
        from ..analysis.comparison import compare as run_compare
        from ..io.pairs import load_pairs
        from ..io.provenance import provenance_of, stamped
        from ..io.ratings import read_ratings
        from ..io.runs import load_run
        from .console import print_json, print_result

        several = read_ratings(human, raters=list(split(raters)), graders=[str(r) for r in runs], final="canonical",
                               cluster=cluster) if raters else None
        result = run_compare([load_run(r) for r in runs], load_pairs(human), threshold=threshold, cluster=cluster,
                             n_boot=n_boot, seed=seed, raters=several, epsilon=epsilon)
        result = stamped(result, provenance_of("compare", "graders vs human", [*(("run", r) for r in runs), ("human", human)]))
        target = out or comparison_path(runs)
        result.write(target)
        print_json(result) if as_json else print_result(result)
        typer.echo(f"wrote {target}", err=True)


def agreement(
    table: Annotated[Path, typer.Argument(help="Table with several raters' labels per item (wide or long).")],
    raters: Annotated[Optional[str], typer.Option(help="Rater columns, comma-separated (a1,a2,a3); or column prefixes for harm labels (h1,h2 for h1_prompt_hate …).")] = None,
    rater_column: Annotated[Optional[str], typer.Option(help="Long table: the column naming the rater (one row per item and rater).")] = None,
    label_column: Annotated[Optional[str], typer.Option(help="Long table: the label column (default: the eight harm label columns).")] = None,
    grader: Annotated[Optional[list[str]], typer.Option(help="A grader to set beside the humans: a column, a prefix, a rater value of a long table, or a run folder (repeatable).")] = None,
    final: Annotated[Optional[str], typer.Option(help="The final (adjudicated) label: a column, a prefix, or 'canonical' for the table's own harm label columns.")] = None,
    level: Annotated[Optional[str], typer.Option(help="Scale: nominal, ordinal or interval (default ordinal when every label is an integer, as harm labels are; else nominal).")] = None,
    epsilon: EpsilonOpt = 0.1,
    cluster: ClusterOpt = None,
    n_boot: NBootOpt = DEFAULT_N_BOOT,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = DEFAULT_SEED,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Where to write agreement.json (default runs/agreement-<table>.json).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON result.")] = False,
) -> None:
    """Several human raters: Krippendorff's alpha, the human ceiling beside each grader, and the alternative annotator test."""
    with errors():
        from ..analysis.raters import rater_agreement
        from ..io.provenance import provenance_of, stamped
        from ..io.ratings import read_ratings
        from .console import print_json, print_result

        ratings = read_ratings(table, raters=list(split(raters)), rater_column=rater_column, label_column_name=label_column,
                               graders=grader or [], final=final, level=level, cluster=cluster)
        result = rater_agreement(ratings, epsilon=epsilon, n_boot=n_boot, seed=seed)
        result = stamped(result, provenance_of("agreement", "human raters" + (" and graders" if grader else ""),
                                               [("ratings", table), *(("grader", g) for g in grader or [])]))
        target = out or Path("runs") / f"agreement-{table.stem}.json"
        result.write(target)
        print_json(result) if as_json else print_result(result)
        typer.echo(f"wrote {target}", err=True)


def flips(
    clean: Annotated[Path, typer.Argument(help="Run folder graded on the clean table.")],
    injected: Annotated[Path, typer.Argument(help="Run folder graded on its injected copy (harness data inject).")],
    threshold: Annotated[int, typer.Option(help="Detection threshold: harmful when severity >= this.")] = 1,
    cluster: ClusterOpt = None,
    n_boot: NBootOpt = DEFAULT_N_BOOT,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Where to write flips.json (default: the injected run).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON result.")] = False,
) -> None:
    """A grader's flip rate under injection: verdicts lowered and detections lost, item by item."""
    with errors():
        from ..analysis.injection import flip_rates
        from ..io.provenance import provenance_of, stamped
        from ..io.runs import load_run
        from .console import print_json, print_result

        result = flip_rates(load_run(clean), load_run(injected), threshold=threshold, cluster=cluster, n_boot=n_boot)
        result = stamped(result, provenance_of("flips", "grader (clean vs injected)", [("clean", clean), ("injected", injected)]))
        target = out or injected / "flips.json"
        result.write(target)
        print_json(result) if as_json else print_result(result)
        typer.echo(f"wrote {target}", err=True)


def report(
    run_dir: Annotated[Optional[Path], typer.Argument(help="Run folder (its analysis.json and calibration.json are used).")] = None,
    analysis: Annotated[Optional[Path], typer.Option(help="analysis.json to include.")] = None,
    calibration: Annotated[Optional[Path], typer.Option(help="calibration.json to include.")] = None,
    comparison: Annotated[Optional[Path], typer.Option(help="comparison.json to include.")] = None,
    flips: Annotated[Optional[Path], typer.Option(help="flips.json (harness flips) to include.")] = None,
    agreement: Annotated[Optional[Path], typer.Option(help="agreement.json (harness agreement) to include.")] = None,
    shot_search: Annotated[Optional[Path], typer.Option(help="shot_search.json (harness shots) to include (default: the run folder's shot-search/shot_search.json).")] = None,
    latex: Annotated[bool, typer.Option("--latex", help="Also write report.tex (booktabs tables) and every figure as PDF.")] = False,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Output folder (default: the run folder).")] = None,
) -> None:
    """Render Markdown, self-contained HTML and SVG figures (with --latex, LaTeX and PDF) from the stages' JSON files."""
    with errors():
        from ..core.errors import ConfigError
        from ..report.document import render_report

        target = out or run_dir
        if target is None:
            raise ConfigError("--out is needed when no run folder is given")
        paths = render_report(run_dir, analysis=analysis, calibration=calibration, comparison=comparison, flips=flips,
                              agreement=agreement, shot_search=shot_search, out_dir=target, latex=latex)
        typer.echo("wrote " + ", ".join(str(p) + ("/" if key == "figures" else "") for key, p in paths.items()))


def view(
    run_dir: Annotated[Path, typer.Argument(help="A run folder (harness grade).")],
    human: Annotated[Optional[Path], typer.Option(help="Pairs table with human labels, joined on id: shown beside the grader's, disagreements marked.")] = None,
    cache_dir: Annotated[Optional[Path], typer.Option("--cache-dir", help="Completion cache to read ok items' raw completions from (default: the grade default, .harness-cache, or the run's .cache when present).")] = None,
    mapping: MapOpt = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Where to write the page (default RUN/view.html).")] = None,
) -> None:
    """Every item of a run on one self-contained HTML page: text, verdicts, human labels, status, the grader's output; filters and search."""
    with errors():
        from ..grading.cache import completion_lookup
        from ..io.pairs import load_pairs
        from ..io.runs import load_run
        from ..report.view import render_view
        from .console import console

        run = load_run(run_dir, full=True)
        labelled = load_pairs(human, mapping=mapping_of(mapping)) if human else None
        with completion_lookup(_cache_folder(run_dir, cache_dir)) as lookup:
            summary = render_view(run, out or run_dir / "view.html", human=labelled, human_source=str(human) if human else None,
                                  completion_of=lookup)
        console.print(f"wrote {summary.path}: {summary.items:,} items ({summary.graded:,} graded), {summary.completions:,} raw "
                   f"completions" + (f", {summary.with_human:,} with human labels, {summary.disagreements:,} disagreements"
                                     if human else ""))


def _cache_folder(run_dir: Path, cache_dir: Path | None) -> Path | None:
    """The cache to read raw completions from: the one given, else the run's or its study's, else the default."""
    from ..core.constants import DEFAULT_CACHE_DIR
    from ..core.errors import ConfigError

    if cache_dir is not None and not cache_dir.is_dir():
        raise ConfigError(f"--cache-dir {cache_dir}: no such folder")
    return cache_dir or next((p for p in (run_dir / ".cache", run_dir.parent / ".cache", Path(DEFAULT_CACHE_DIR)) if p.is_dir()), None)


def schema(
    name: Annotated[Optional[str], typer.Argument(help="A result: manifest, dry-run, calibration, table-agreement, comparison, analysis, flips, shot-search or agreement (default: list them).")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write every result's schema as NAME.json into this folder.")] = None,
) -> None:
    """The JSON Schema of the files harness writes, so other tools can read run folders."""
    with errors():
        import json

        from ..core.atomic import write_json_atomic
        from ..core.errors import ConfigError
        from ..results.base import schema_of
        from ..results.catalog import RESULT_TYPES

        if out is not None:
            for key, kind in RESULT_TYPES.items():
                write_json_atomic(out / f"{key}.json", schema_of(kind))
            typer.echo(f"wrote {len(RESULT_TYPES)} schemas to {out}")
            return
        if name is None:
            for key, kind in RESULT_TYPES.items():
                typer.echo(f"{key:16s} {(kind.__doc__ or '').strip().splitlines()[0].replace('``', '')}")
            return
        if name not in RESULT_TYPES:
            raise ConfigError(f"`name` {name!r}: expected one of {list(RESULT_TYPES)}")
        typer.echo(json.dumps(schema_of(RESULT_TYPES[name]), indent=2, ensure_ascii=False))


def register(app: typer.Typer) -> None:
    """Add the analysis commands to ``app``."""
    app.command()(calibrate)
    app.command()(compare)
    app.command()(agreement)
    app.command()(analyze)
    app.command()(flips)
    app.command()(report)
    app.command()(view)
    app.command()(schema)
