"""A study's analysis steps: calibrate, compare, agreement, analyze, plan and select (each its command's library call)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.constants import DEFAULT_SEED
from ..io.provenance import stamped
from .study_runner import study_provenance

if TYPE_CHECKING:
    from .study_runner import StudyRunner


def _read(path: Path, kind: Any) -> Any:
    from ..io.readers import read_result

    return read_result(path, kind)


def _loader(path: Path, kind: Any) -> Any:
    """Read a skipped step's result from its file when asked."""
    return lambda: _read(path, kind)


def _human(runner: StudyRunner) -> Path:
    assert runner.study.study.human is not None  # checked when the study file was read
    return runner.study.path(runner.study.study.human)


def _ratings(runner: StudyRunner, graders: list[Path]) -> Any:
    from ..io.ratings import read_ratings

    info = runner.study.study
    if info.ratings is None or len(info.raters) < 2:
        return None
    return read_ratings(runner.study.path(info.ratings), raters=list(info.raters), final="canonical",
                        graders=[str(g) for g in graders], cluster=info.cluster)


def _ratings_inputs(runner: StudyRunner) -> list[Path]:
    info = runner.study.study
    return [runner.study.path(info.ratings)] if info.ratings and len(info.raters) >= 2 else []


def _held_out(runner: StudyRunner, names: list[str]) -> tuple[Any, str | None]:
    """The human labels to score these graders on, and why they were narrowed: a grader whose exemplars the shot
    search chose on the study's human labels is scored only on the search's held-out test prompts (never on what
    it was fit on), and so is every grader compared with it (all on the same items)."""
    from ..io.pairs import load_pairs
    from .shot_search import split_pool

    study = runner.study
    human = load_pairs(_human(runner))
    chosen = [n for n in names if study.grader_named(n, key="grader").shots == "chosen"]
    if not chosen or study.shot_search is None:
        return human, None
    table = study.shot_search
    test = split_pool(human, dev_frac=table.dev_frac, test_frac=table.test_frac, seed=study.study.seed,
                      cluster=study.study.cluster)["test"]
    return test, (f"scored on the shot search's held-out test prompts only ({len(test)} of {len(human)} pairs): "
                  f"{', '.join(chosen)} uses exemplars chosen on the others")


def calibrate_steps(runner: StudyRunner) -> None:
    from ..analysis.calibration import calibrate_run, save_calibration
    from ..io.runs import load_run
    from ..results.calibration import Calibration

    study = runner.study
    table = study.calibrate
    if table is None:
        return
    for name in table.graders or [g.name for g in study.grader]:
        folder = runner.run_dir(study.grader_named(name, key="calibrate.graders"))
        human = _human(runner)

        def run(folder: Path = folder, human: Path = human, name: str = name) -> Calibration:
            labels, narrowed = _held_out(runner, [name])
            result = calibrate_run(load_run(folder), labels, threshold=table.threshold, cluster=study.study.cluster,
                                   n_boot=study.study.n_boot, seed=study.study.seed, by=table.by, raters=_ratings(runner, [folder]),
                                   epsilon=table.epsilon)
            if narrowed:
                result = Calibration(**{**result.fields(), "warnings": [*(result.warnings or []), narrowed]})
            result = stamped(result, study_provenance(runner, "calibrate", "grader vs human",
                                                   [("run", folder), ("human", human), *(("ratings", p) for p in _ratings_inputs(runner))]))
            save_calibration(result, folder)
            return result

        target = folder / "calibration.json"
        runner.step(f"calibrate {name}", table, [folder, human, *_ratings_inputs(runner)], [target], run,
                    _loader(target, Calibration))


def compare_step(runner: StudyRunner) -> None:
    from ..analysis.comparison import compare
    from ..io.runs import load_run
    from ..results.comparison import Comparison

    study = runner.study
    table = study.compare
    names = (table.graders if table else None) or [g.name for g in study.grader]
    if table is None or len(names) < 2:
        return
    folders = [runner.run_dir(study.grader_named(n, key="compare.graders")) for n in names]
    target = runner.out / "comparison.json"

    def run() -> Comparison:
        labels, narrowed = _held_out(runner, names)
        result = compare([load_run(f) for f in folders], labels, threshold=table.threshold,
                         cluster=study.study.cluster, n_boot=study.study.n_boot, seed=study.study.seed,
                         raters=_ratings(runner, folders))
        if narrowed:
            runs = {k: type(v)(**{**v.fields(), "warnings": [*(v.warnings or []), narrowed]}) for k, v in result.runs.items()}
            result = Comparison(**{**result.fields(), "runs": runs})
        result = stamped(result, study_provenance(runner, "compare", "graders vs human", [*(("run", f) for f in folders), ("human", _human(runner)),
                                                                               *(("ratings", p) for p in _ratings_inputs(runner))]))
        result.write(target)
        return result

    runner.step("compare", table, [*folders, _human(runner), *_ratings_inputs(runner)], [target], run, lambda: _read(target, Comparison))


def agreement_step(runner: StudyRunner) -> None:
    from ..analysis.raters import rater_agreement
    from ..results.raters import RaterAgreement

    study = runner.study
    if study.agreement is None:
        return
    table = study.agreement
    folders = [runner.run_dir(g) for g in study.grader]
    target = runner.out / "agreement.json"

    def run() -> RaterAgreement:
        result = rater_agreement(_ratings(runner, folders), epsilon=table.epsilon, n_boot=study.study.n_boot, seed=study.study.seed)
        result = stamped(result, study_provenance(runner, "agreement", "human raters and graders",
                                               [*(("ratings", p) for p in _ratings_inputs(runner)), *(("grader", f) for f in folders)]))
        result.write(target)
        return result

    runner.step("agreement", table, [*_ratings_inputs(runner), *folders], [target], run, lambda: _read(target, RaterAgreement))


def analyze_step(runner: StudyRunner) -> None:
    from ..analysis.transitions import analyze, save_analysis
    from ..io.pairs import load_pairs, write_pairs
    from ..io.runs import graded_pairs, load_run
    from ..results.analysis import Analysis

    study = runner.study
    table = study.analyze
    if table is None:
        return
    folder = runner.run_dir(study.grader_named(table.grader, key="analyze.grader"))
    labelled = study.path(table.human) if table.human else (folder / "human_subset.jsonl" if table.human_share else None)
    inputs = [folder, *([study.path(table.human)] if table.human else []), *([_human(runner)] if table.human_share else [])]
    target = folder / "analysis.json"

    def run() -> Analysis:
        if table.human_share and labelled is not None:  # a simulated labelling round: a random share of the prompt clusters
            write_pairs(human_subset(load_pairs(_human(runner)), share=table.human_share, seed=study.study.seed), labelled)
        human = load_pairs(labelled) if labelled else None
        result = analyze(graded_pairs(load_run(folder)), by=table.by, cluster=study.study.cluster, n_boot=study.study.n_boot,
                         seed=study.study.seed, human=human, human_source=str(labelled) if labelled else "human labels")
        source = "grader" + (", corrected by human labels" if labelled else "")
        result = stamped(result, study_provenance(runner, "analyze", source, [("pairs", folder), ("human", labelled)]))
        save_analysis(result, folder)
        return result

    runner.step("analyze", table, inputs, [target], run, lambda: _read(target, Analysis))


def plan_steps(runner: StudyRunner) -> None:
    """The next labelling round: a plan from the calibration as pilot, and a pick of clusters to label."""
    from ..analysis.planning import pilot_from_pairs, plan
    from ..analysis.selection import select
    from ..io.pairs import write_pairs
    from ..io.runs import graded_pairs, load_run, uncertainty_by_id
    from ..results.calibration import Calibration
    from ..results.planning import Plan, Selection

    study, out = runner.study, runner.out
    if study.plan is not None:
        table = study.plan
        pilot_file = runner.run_dir(study.grader_named(table.grader, key="plan.grader")) / "calibration.json"
        target = out / "plan.json"

        def run_plan() -> Plan:
            from ..core.errors import ConfigError

            if not pilot_file.exists():
                raise ConfigError(f"plan: {pilot_file} is missing; add a [calibrate] table for that grader")
            calibration = _read(pilot_file, Calibration)
            pilot = pilot_from_pairs(calibration.max_severity_pairs, metric=table.metric, side=table.side, threshold=1,
                                     source=str(pilot_file), cluster=calibration.unit.cluster)
            found = plan(pilot, target_width=table.target_width, studies=table.studies, n_boot=table.n_boot, seed=study.study.seed)
            found = stamped(found, study_provenance(runner, "plan", "grader vs human (calibration as pilot)", [("pilot", pilot_file)]))
            found.write(target)
            return found

        runner.step("plan", table, [pilot_file] if pilot_file.exists() else [], [target], run_plan, lambda: _read(target, Plan))
    if study.select is not None:
        chosen = study.select
        folder = runner.run_dir(study.grader_named(chosen.grader, key="select.grader"))
        picks, design_file = out / "picks.jsonl", out / "picks.design.json"

        def run_select() -> Selection:
            run = load_run(folder)
            by_id = uncertainty_by_id(run.labels)
            frame = graded_pairs(run)
            uncertainty = frame["id"].astype(str).map(by_id).to_numpy(dtype=float, na_value=float("nan")) if by_id else None
            rows, design = select(frame, budget=chosen.budget, strategy=chosen.strategy, cluster=study.study.cluster,
                                  uncertainty=uncertainty, seed=study.study.seed, source=str(folder))
            write_pairs(rows, picks)
            design = Selection(**{**design.fields(), "outputs": [str(picks), str(design_file)]})
            design = stamped(design, study_provenance(runner, "select", "grader", [("graded", folder)]))
            design.write(design_file)
            return design

        runner.step("select", chosen, [folder], [picks, design_file], run_select, lambda: _read(design_file, Selection))


def human_subset(human: Any, share: float = 1 / 3, seed: int = DEFAULT_SEED) -> Any:
    """A random share of the prompt clusters with their human labels: what an annotation round would return.

    The demo corrects the grader's transition shares with it (prediction-powered inference),
    not with the pairs it calibrated on.
    """
    import numpy as np

    prompts = np.unique(human["prompt_id"].astype(str))
    chosen = np.random.default_rng(seed).choice(prompts, size=max(1, round(share * prompts.size)), replace=False)
    return human[human["prompt_id"].astype(str).isin(set(chosen))].reset_index(drop=True)
