"""``harness plan`` and ``harness select``: how many items to send to annotators, and which."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..steps.settings import PlanSettings, SelectSettings
from .analysis_commands import show, shown
from .common import JsonOpt, errors
from .options import with_settings


@with_settings(PlanSettings)
def plan(
    pilot: Annotated[Path, typer.Argument(help=(
        "The pilot: a table (with --gold/--pred), a run folder (with --human) or a calibration.json."))],
    settings: PlanSettings,
    out: Annotated[Optional[Path], typer.Option(
        "--out", "-o", help="A file: plan.json's path (default runs/plan-<pilot>.json).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """How many items humans must label to know a metric to a given interval width, predicted from a pilot."""
    with errors():
        from ..steps import plan as step

        done = step(pilot, settings, out=out)
        shown(done, as_json)


@with_settings(SelectSettings)
def select(
    graded: Annotated[Path, typer.Argument(help=(
        "A run folder, or a pairs table whose label columns hold a grader's labels."))],
    settings: SelectSettings,
    out: Annotated[Path, typer.Option("--out", "-o", help=(
        "A file: the picks (.jsonl, .csv for a spreadsheet, or .parquet); the design goes beside it "
        "(<name>.design.json)."))],
    as_json: Annotated[bool, typer.Option("--json", help="Print only the design's JSON on stdout.")] = False,
) -> None:
    """Pick prompt clusters for annotators: blank label columns, and each row's inclusion_probability for the
    analysis."""
    with errors():
        from ..steps import select as step

        done = step(graded, settings, out=out)
        show(done.result, as_json)
        typer.echo(f"wrote {done.written[1]} and {done.written[0]}", err=True)


def register(app: typer.Typer) -> None:
    """Add the planning commands to ``app``."""
    app.command()(plan)
    app.command()(select)
