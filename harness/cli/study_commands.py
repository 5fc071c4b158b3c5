"""``harness run STUDY.toml`` and ``harness demo``: a whole study from one file (the demo is one)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..grading.settings import EndpointSettings
from .common import deprecated, errors
from .options import with_layers

#: The headline of each step's result when the study prints it.
_TITLES = {
    "grade": "the run folder",
    "calibrate": "against the human labels",
    "shot search": "exemplar search: dev, then held-out test",
    "compare": "graders compared",
    "agreement": "human agreement: the annotators, the graders beside them",
    "analyze": "paired transitions",
    "plan": "the next labelling round: a plan",
    "select": "the next labelling round: the pick",
}


def _on_step(outcome: Any) -> None:
    how = (f"ran in {outcome.seconds:.1f} s" + (f" ({outcome.note})" if outcome.note else "") if outcome.status == "ran"
           else f"skipped ({outcome.note})")
    typer.echo(f"  {outcome.name}: {how}", err=True)


def _print_study(result: Any, *, quiet: bool) -> None:
    from .console import console, print_result

    if not quiet:
        for step in result.steps:
            if step.result is not None:
                kind, _, grader = step.name.partition(" ")
                per_grader = f"{step.name}: {_TITLES[kind]}" if grader and kind in _TITLES else step.name
                console.rule(_TITLES.get(step.name) or per_grader)
                print_result(step.result)
    ran = sum(1 for s in result.steps if s.status == "ran")
    shown = [name for name in ("report.html", "view.html", "study.json") if (result.out / name).exists()]
    console.print(f"{len(result.steps)} steps: {ran} ran, {len(result.steps) - ran} skipped (inputs unchanged); "
                  f"outputs in {result.out}/ ({', '.join(shown)})")


@with_layers(EndpointSettings)
def run(
    study: Annotated[Path, typer.Argument(help=(
        "A study file (TOML): data, graders, human labels and the analyses to run."))],
    given: dict[str, Any],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help=(
        "A folder: the study's outputs (default: the study file's study.out)."))] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="Print only the steps, not each result.")] = False,
) -> None:
    """Run a study: grade -> shot search -> calibrate -> compare -> agreement -> analyze -> plan -> select -> report.

    Resumable: a step whose settings and input files have not changed since it last finished is
    skipped (study.json in the output folder records them); an unfinished grade resumes. See
    harness/data/demo.toml for every table and key.
    """
    with errors():
        from ..workflows.study.reading import read_study
        from ..workflows.study.run import run_study
        from .console import GradeProgress

        parsed = read_study(study)
        typer.echo(f"harness run {study}: {len(parsed.grader)} grader(s), output in {out or parsed.out}", err=True)
        with GradeProgress() as progress:
            result = run_study(parsed, out=out, on_step=_on_step, on_progress=progress.update, flags=given)
        _print_study(result, quiet=quiet)


@with_layers(EndpointSettings, exclude=("base_url", "api_key", "azure_api_version"))
def demo(
    given: dict[str, Any],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help=(
        "A folder: the demo's outputs (default runs/demo, or runs/demo-local; what an earlier demo wrote there is "
        "replaced, anything else refused)."))] = None,
    run_dir: Annotated[Optional[Path], typer.Option(hidden=True, help="Deprecated spelling of --out.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="Print only the steps, not each result.")] = False,
    local_model: Annotated[bool, typer.Option("--local-model", help=(
        "A real language model (SmolLM2-135M on the CPU; make install-local) grades 32 bundled pairs beside the "
        "embedded grader (about 14 minutes)."))] = False,
) -> None:
    """The bundled study (harness/data/demo.toml; demo_local.toml with --local-model) on the embedded endpoint, in
    a fresh folder."""
    with errors():
        from ..workflows.demo import demo_study_path, run_demo
        from .console import GradeProgress, console

        if local_model:
            console.print("harness demo --local-model: SmolLM2-135M-Instruct, a real instruct model, grades 32 "
                          "bundled pairs on the CPU beside the embedded grader; every answer it gives is kept, "
                          "parsed or not. "
                          f"The study file: {demo_study_path(True)}")
        else:
            console.print("harness demo: the embedded graders are small in-context graders (not LLMs), "
                          "cross-fitted by prompt so no text is graded by a model that saw it. "
                          f"The study file: {demo_study_path()}")
        with GradeProgress() as progress:
            result = run_demo(deprecated(run_dir, "--run-dir", "--out") or out, local_model=local_model,
                              on_step=_on_step, on_progress=progress.update, flags=given)
        _print_study(result, quiet=quiet)


def register(app: typer.Typer) -> None:
    """Add the study commands to ``app``."""
    app.command()(run)
    app.command()(demo)
