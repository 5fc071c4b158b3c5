"""``harness run STUDY.toml``: a whole study (grade → shot search → calibrate → compare → agreement → analyze →
plan → select → report) from one file, resumable, each step skipped when its inputs have not changed.

Each step is the library call its command makes (``grade``, ``calibrate_run``, ``compare`` …) and
reads its inputs from files the earlier steps wrote, so a step can be skipped and the next one
still runs. A step's *fingerprint* hashes its table of the study file and the bytes of every
input it reads (data, human labels, shots, templates, the labels of the run folders it reads);
``study.json`` in the output folder records each finished step's fingerprint and outputs. A
step whose fingerprint matches and whose outputs exist is skipped; a grade step that is not
finished resumes its run folder (only the missing items are sent). A step that fails stops the
study with its error and is not recorded, so the corrected command runs it again; grading that
leaves items ``failed`` is such a failure (the run is not a success).

Layout of ``out``: one run folder per grader (``out/<name>/``, its calibration and analysis
beside its labels), ``shot-search/``, ``comparison.json``, ``agreement.json``, ``plan.json``,
``picks.jsonl`` and ``picks.design.json``, the report (``report.md``, ``report.html``,
``figures/``) and ``view.html`` (the first grader's items beside the human labels).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ...core.atomic import ensure_folder
from .file import Study
from .runner import StepOutcome, StudyResult, StudyRunner
from .steps import analysis_steps, grading_steps, report_steps


def check_study(study: Study, folder: Path, flags: dict[str, Any] | None = None) -> None:
    """The whole study checked before any step runs: every step listed (none run), two steps of one name refused
    (two identical tables), and every file any step writes claimed against every file the study reads
    (:func:`harness.core.claims.claim`): no step may write over the study's inputs, a user's file, or another
    step's output."""
    from ...core.claims import Output, claim
    from ...core.errors import ConfigError

    runner = StudyRunner(study, folder, None, None, planning=True, flags=flags)
    grading_steps(runner)
    analysis_steps(runner)
    report_steps(runner)
    names = [step.name for step in runner.planned]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(
            f"{study.file}: the steps {', '.join(repr(n) for n in twice)} are declared twice (two tables with "
            "the same settings); remove the copy"
        )
    claims = [Output(folder / "study.json", param="the study's `out`", kind="study")]
    claims += [c for step in runner.planned for c in step.claims]
    written = [c.path for c in claims]
    read = [("the study file", study.file), ("[study] data", study.path(study.study.data)),
            ("[study] human", study.path(study.study.human) if study.study.human else None),
            ("[study] ratings", study.path(study.study.ratings) if study.study.ratings else None)]
    for step in runner.planned:  # what a step reads that no step writes: the study's own inputs
        read += [(f"an input of step {step.name!r}", p) for p in step.inputs
                 if not any(p == w or p.is_relative_to(w) for w in written)]
    claim(claims, inputs=read)


def run_study(study: Study, *, out: str | Path | None = None, on_step: Callable[[StepOutcome], None] | None = None,
              on_progress: Callable[[Any], None] | None = None, flags: dict[str, Any] | None = None) -> StudyResult:
    """Run every step the study declares (see the module docstring); ``out`` overrides ``study.out``; ``flags``:
    endpoint settings given on the command line (over the environment, over the study's ``[endpoint]``)."""
    folder = Path(out) if out is not None else study.out
    check_study(study, folder, flags)
    ensure_folder(folder, param="out")
    runner = StudyRunner(study, folder, on_step, on_progress, flags=flags)
    try:
        grading_steps(runner)
    finally:
        runner.endpoint.close()
    analysis_steps(runner)
    report_steps(runner)
    return runner.result
