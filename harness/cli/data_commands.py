"""``harness data import``/``inject``/``describe``, ``batch status``/``cancel``, ``export`` and ``templates``: tables in
and out, and the provider's batches."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import MapOpt, errors, mapping_of

data_app = typer.Typer(help="Import and inspect pairs tables.", no_args_is_help=True)


@data_app.command("import")
def data_import(
    fmt: Annotated[str, typer.Argument(help="pairedsafety, xstest or openai-moderation.")],
    path: Annotated[Path, typer.Argument(help="The data set's file or folder.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="A file: the pairs table (.jsonl, .csv, .parquet).")],
) -> None:
    """Import a public data set into the canonical pairs table."""
    with errors():
        from ..core.claims import Output, claim
        from ..io.importers import import_dataset
        from ..io.pairs import write_pairs

        claim([Output(out, kind="pairs")], inputs=[("the data set", path)])
        frame = import_dataset(fmt, path)
        write_pairs(frame, out)
        typer.echo(f"wrote {len(frame)} rows to {out}")


@data_app.command("inject")
def data_inject(
    path: Annotated[Path, typer.Argument(help="Pairs table to copy.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="A file: the injected copy (.jsonl, .csv, .parquet).")],
    side: Annotated[str, typer.Option(help="prompt or response: which text addresses the grader.")] = "response",
    name: Annotated[str, typer.Option(
        help="Built-in injection: ignore-rubric, fake-system or fake-verdict.")] = "ignore-rubric",
    text: Annotated[Optional[str], typer.Option(help="Your own instruction to the grader (instead of --name).")] = None,
    position: Annotated[str, typer.Option(help="start or end of the text.")] = "end",
    mapping: MapOpt = None,
) -> None:
    """Copy a pairs table with an instruction to the grader added to each prompt or response."""
    with errors():
        from ..analysis.injection import inject
        from ..core.claims import Output, claim
        from ..io.pairs import load_pairs, write_pairs

        claim([Output(out, kind="pairs")], inputs=[("the clean table", path)])
        clean = load_pairs(path, mapping=mapping_of(mapping))
        frame = inject(clean, side=side, text=text, name=name, position=position)
        write_pairs(frame, out)
        typer.echo(f"wrote {int((frame['injection'] != '').sum())} injected of {len(frame)} rows to {out}")


@data_app.command("describe")
def data_describe(
    path: Annotated[Path, typer.Argument(help="A pairs table.")],
    mapping: MapOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Row counts, label coverage and severity distributions of a pairs table."""
    with errors():
        from ..io.description import describe
        from ..io.pairs import load_pairs
        from .console import print_describe, print_json

        summary = describe(load_pairs(path, mapping=mapping_of(mapping)))
        print_json(summary) if as_json else print_describe(summary, str(path))




batch_app = typer.Typer(help="Batches a --batch run submitted: status and cancel.", no_args_is_help=True)


@batch_app.command("status")
def batch_status(
    run_dir: Annotated[Path, typer.Argument(help="Run folder graded with --batch.")],
    base_url: Annotated[Optional[str], typer.Option(
        help="Ask the endpoint for live statuses (or OPENAI_BASE_URL).")] = None,
) -> None:
    """The run's batches: id, status, requests, and whether their answers are recorded."""
    with errors():
        from ..grading.batch_api import batch_statuses
        from .console import print_batches

        print_batches(batch_statuses(run_dir, base_url=base_url))


@batch_app.command("cancel")
def batch_cancel(
    run_dir: Annotated[Path, typer.Argument(help="Run folder graded with --batch.")],
    base_url: Annotated[Optional[str], typer.Option(help="OpenAI-compatible endpoint (or OPENAI_BASE_URL).")] = None,
) -> None:
    """Cancel the run's batches that have not ended (their answers so far are recorded on the next grade)."""
    with errors():
        from ..grading.batch_api import cancel_batches

        cancelled = cancel_batches(run_dir, base_url=base_url)
        typer.echo(f"asked to cancel {len(cancelled)} batch(es): {', '.join(cancelled) or 'none open'}")


def register(app: typer.Typer) -> None:
    """Add the data and batch groups and the export and templates commands to ``app``."""
    app.add_typer(data_app, name="data")
    app.add_typer(batch_app, name="batch")
    app.command()(export)
    app.command()(templates)


def export(
    run_dir: Annotated[Path, typer.Argument(help="Run folder.")],
    out: Annotated[Optional[Path], typer.Option(
        "--out", "-o", help="A file: .csv, .parquet or .jsonl (default <run>/labels.csv).")] = None,
) -> None:
    """The run's input joined to the grader's labels and statuses, as one CSV, Parquet or JSONL table."""
    with errors():
        from ..io.runs import export_labels, load_run

        path, rows = export_labels(load_run(run_dir), out or run_dir / "labels.csv")
        typer.echo(f"wrote {rows} rows to {path}")


def templates() -> None:
    """List the bundled template sets and shot files (pass a folder of your own with --template)."""
    with errors():
        from ..grading.templates import list_template_sets
        from .console import print_templates

        print_templates(list_template_sets())
