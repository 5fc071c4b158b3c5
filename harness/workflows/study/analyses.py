"""A study's analysis steps: calibrate, compare, agreement, analyze, plan and select, each its command's step.

A table of the study file is its command's settings model; the study only says which input the step reads
(``[study] data``, or a study grader's run folder), where it writes, and, for a grader whose exemplars the
shot search chose, that it is scored on the search's held-out test pairs (``held_out``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...core.constants import DEFAULT_SEED
from ...steps.settings import (
    AgreementSettings,
    AnalyzeSettings,
    CalibrateSettings,
    CompareSettings,
    JurySettings,
    PlanSettings,
    SelectSettings,
    Settings,
    StabilitySettings,
    ThresholdSettings,
)

if TYPE_CHECKING:
    from .runner import StudyRunner


def settings_of(table: Any, model: type[Settings], **update: Any) -> Any:
    """The command's settings from a study table (its study-only keys left out), with ``update`` applied."""
    values = {k: v for k, v in table.model_dump().items() if k in model.model_fields}
    return model.model_validate({**values, **update})


def _read(path: Path, kind: Any) -> Any:
    from ...io.readers import read_result

    return read_result(path, kind)


def _loader(path: Path, kind: Any) -> Any:
    """Read a skipped step's result from its file when asked."""
    return lambda: _read(path, kind)


def _context(runner: StudyRunner) -> list[tuple[str, Any]]:
    return [("study", runner.study.file)]


def _held_out(runner: StudyRunner, names: list[str]) -> str | None:
    """The shot search's result file when any of these graders uses the exemplars it chose (never scored on what it was
    fit on; every grader compared with it is scored on the same pairs)."""
    study = runner.study
    graders = [m for n in names for m in study.source_of(n)]
    if study.shot_search is None or not any(study.grader_named(n, key="grader").shots == "chosen" for n in graders):
        return None
    return str(runner.out / "shot-search" / "shot_search.json")


def _inputs(*paths: str | Path | None) -> list[Path]:
    return [Path(p) for p in paths if p]


def calibrate_steps(runner: StudyRunner) -> None:
    from ...analysis.table_calibration import table_calibration_path
    from ...results.calibration import Calibration, TableAgreement
    from ...steps import calibrate
    from ...steps.calibrate import planned as planned_calibration

    study, table = runner.study, runner.study.calibrate
    if table is None:
        return
    data = study.path(study.study.data)
    if table.gold and table.pred:  # two columns of the data: no grader needed
        settings = settings_of(table, CalibrateSettings)
        target = table_calibration_path(runner.out, table.gold, table.pred)
        runner.step("calibrate", settings, _inputs(data, settings.ratings if settings.raters else None), [target],
                    lambda: calibrate(data, settings, out=runner.out, context=_context(runner)).result,
                    lambda: _read(target, TableAgreement), claims=planned_calibration(data, settings, runner.out))
        return
    for name in table.graders or study.judged():
        folder = runner.folder(name, key="calibrate.graders")
        settings = settings_of(table, CalibrateSettings, held_out=_held_out(runner, [name]))
        target = folder / "calibration.json"

        def run(folder: Path = folder, settings: CalibrateSettings = settings) -> Any:
            return calibrate(folder, settings, out=folder, context=_context(runner)).result

        inputs = _inputs(folder, settings.human, settings.ratings if settings.raters else None, settings.held_out)
        runner.step(f"calibrate {name}", settings, inputs, [target], run, _loader(target, Calibration),
                    claims=planned_calibration(folder, settings, folder))


def compare_step(runner: StudyRunner) -> None:
    from ...results.comparison import Comparison, GraderAgreement
    from ...steps import compare

    study, table = runner.study, runner.study.compare
    if table is None:
        return
    names = table.graders or study.judged()
    folders = [runner.folder(n, key="compare.graders") for n in names]
    settings = settings_of(table, CompareSettings, held_out=_held_out(runner, names) if table.human else None)
    target = runner.out / "comparison.json"
    kind = Comparison if settings.human else GraderAgreement
    runner.step(
        "compare",
        settings,
        _inputs(*folders, settings.human, settings.ratings if settings.raters else None, settings.held_out),
        [target],
        lambda: compare(folders, settings, out=target, context=_context(runner)).result,
        lambda: _read(target, kind),
    )


def agreement_step(runner: StudyRunner) -> None:
    from ...results.raters import RaterAgreement
    from ...steps import agreement

    study, table = runner.study, runner.study.agreement
    if table is None:
        return
    source = study.path(study.study.ratings or study.study.data)
    named = {g.name: str(runner.run_dir(g)) for g in study.grader}
    graders = [named.get(g, g) for g in table.grader] if table.grader else list(named.values())
    final = table.final if table.final is not None or not study.grader else "canonical"
    settings = settings_of(table, AgreementSettings, grader=graders, final=final)
    target = runner.out / "agreement.json"
    runner.step("agreement", settings, _inputs(source, *(g for g in graders if Path(g).is_dir())), [target],
                lambda: agreement(source, settings, out=target, context=_context(runner)).result,
                lambda: _read(target, RaterAgreement))


def analyze_step(runner: StudyRunner) -> None:
    from ...io.pairs import load_pairs, write_pairs
    from ...results.analysis import Analysis
    from ...steps import analyze

    study, table = runner.study, runner.study.analyze
    if table is None:
        return
    source = (
        runner.run_dir(study.grader_named(table.grader, key="analyze.grader"))
        if study.grader
        else study.path(study.study.data)
    )
    folder = source if study.grader else runner.out
    subset = folder / "human_subset.jsonl" if table.human_share else None
    settings = settings_of(table, AnalyzeSettings, **({"human": str(subset)} if subset else {}))
    inputs = _inputs(
        source, table.human, study.path(study.study.human) if table.human_share and study.study.human else None
    )
    target = folder / "analysis.json"

    def run() -> Any:
        if (
            subset is not None and study.study.human
        ):  # a simulated labelling round: a random share of the prompt clusters
            write_pairs(human_subset(load_pairs(study.path(study.study.human)), share=table.human_share or 1.0,
                                     seed=settings.seed, cluster=settings.cluster), subset)
        return analyze(source, settings, out=folder, context=_context(runner)).result

    from ...core.claims import Output
    from ...steps.analyze import planned

    claims = planned(source, folder) + ([Output(subset, kind="pairs")] if subset is not None else [])
    runner.step("analyze", {"settings": settings, "human_share": table.human_share}, inputs, [target], run,
                lambda: _read(target, Analysis), claims=claims)


def jury_step(runner: StudyRunner) -> None:
    """The study's jury: its graders' verdicts combined into a run folder of its own (no requests)."""
    from ...steps import jury

    study, table = runner.study, runner.study.jury
    if table is None:
        return
    members = [runner.run_dir(study.grader_named(n, key="jury.graders")) for n in study.jury_members()]
    settings = settings_of(table, JurySettings)
    target = runner.out / table.name

    def run() -> Any:
        return jury(members, settings, out=target, context=_context(runner)).result

    runner.step(
        "jury",
        {"settings": settings, "members": [str(m) for m in members]},
        members,
        [target / "labels.jsonl"],
        run,
        study_wide=False,
    )


def thresholds_step(runner: StudyRunner) -> None:
    """The study's verdict rules: a grader's probabilities cut on a dev split, judged on held-out pairs, and the derived
    run folder (no requests) that calibrate and compare then read beside the graders (without its dev pairs)."""
    from ...results.thresholds import Thresholds
    from ...steps.thresholds import RESULT, calibrate_thresholds, planned

    study, table = runner.study, runner.study.thresholds
    if table is None:
        return
    grader = study.grader_named(table.grader, key="thresholds.grader")
    source, target = runner.run_dir(grader), runner.out / table.name
    settings = settings_of(table, ThresholdSettings, held_out=_held_out(runner, [grader.name]))

    def run() -> Any:
        return calibrate_thresholds(source, settings, out=target, context=_context(runner)).result

    runner.step("thresholds", {"settings": settings, "grader": grader.name, "name": table.name},
                _inputs(source, settings.human, settings.held_out), [target / RESULT], run,
                _loader(target / RESULT, Thresholds), claims=planned(target))


def stability_step(runner: StudyRunner) -> None:
    """Each grader's repeats (``repeats`` > 1 in its [[grader]]) read as raters of the same items."""
    from ...results.stability import Stability
    from ...steps import stability

    study, table = runner.study, runner.study.stability
    if table is None:
        return
    names = table.graders or [g.name for g in study.grader if g.repeats > 1]
    settings = settings_of(table, StabilitySettings)
    for name in names:
        folder = runner.run_dir(study.grader_named(name, key="stability.graders")) / "repeats"
        target = folder / "stability.json"

        def run(folder: Path = folder, target: Path = target) -> Any:
            return stability([folder], settings, out=target, context=_context(runner)).result

        runner.step(
            f"stability {name}",
            settings,
            [*sorted(folder.glob("repeat-*"))] if folder.exists() else [],
            [target],
            run,
            _loader(target, Stability),
        )


def plan_steps(runner: StudyRunner) -> None:
    """The next labelling round: a plan from a pilot, and a pick of clusters to label."""
    from ...results.planning import Plan, Selection
    from ...steps import plan, select

    study, out = runner.study, runner.out
    if study.plan is not None:
        table = study.plan
        settings = settings_of(table, PlanSettings)
        if table.gold and table.pred:
            pilot = study.path(study.study.data)
        else:
            folder = runner.run_dir(study.grader_named(table.grader, key="plan.grader"))
            pilot = folder if table.human else folder / "calibration.json"
        target = out / "plan.json"

        def run_plan() -> Any:
            from ...core.errors import ConfigError

            if not pilot.exists():
                raise ConfigError(f"plan: {pilot} is missing; add a [calibrate] table for that grader")
            return plan(pilot, settings, out=target, context=_context(runner)).result

        runner.step("plan", settings, _inputs(pilot if pilot.exists() else None, settings.human), [target], run_plan,
                    lambda: _read(target, Plan))
    if study.select is not None:
        chosen = study.select
        source = (
            runner.run_dir(study.grader_named(chosen.grader, key="select.grader"))
            if study.grader
            else study.path(study.study.data)
        )
        settings = settings_of(chosen, SelectSettings)
        picks, design_file = out / "picks.jsonl", out / "picks.design.json"
        from ...steps.plan import select_outputs

        runner.step("select", settings, [source], [picks, design_file],
                    lambda: select(source, settings, out=picks, context=_context(runner)).result,
                    lambda: _read(design_file, Selection), claims=select_outputs(picks))


def human_subset(human: Any, share: float = 1 / 3, seed: int = DEFAULT_SEED, cluster: str | None = None) -> Any:
    """A random share of the prompt clusters (``cluster`` as everywhere: prompt_id, else the prompt text) with their
    human labels: what an annotation round would return.

    The demo corrects the grader's transition shares with it (prediction-powered inference),
    not with the pairs it calibrated on.
    """
    import numpy as np

    from ...io.clusters import cluster_column, cluster_of_rows

    codes = np.asarray(cluster_of_rows(human, cluster_column(human.columns, cluster)))
    clusters = np.unique(codes)
    chosen = np.random.default_rng(seed).choice(clusters, size=max(1, round(share * clusters.size)), replace=False)
    return human[np.isin(codes, chosen)].reset_index(drop=True)
