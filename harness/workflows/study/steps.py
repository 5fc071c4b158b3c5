"""The steps of a study (:mod:`harness.workflows.study`), each the library call of its command, stamped with
provenance."""

from __future__ import annotations

import re
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ...io.provenance import stamped
from .runner import study_provenance

if TYPE_CHECKING:
    from .file import GraderTable, ShotSearchTable
    from .runner import StudyRunner


def _shots(runner: StudyRunner, grader: GraderTable) -> str | None:
    return _spec(runner, grader).shots_path


def _spec(runner: StudyRunner, grader: GraderTable, *, shots: str | Literal["keep"] | None = "keep") -> Any:
    """The grader's spec (:func:`~harness.grading.jobs.spec_of`, the one builder), its files read from the
    study file's folder; ``shots = "chosen"`` is the exemplar search's pick."""
    from ...grading.jobs import spec_of

    chosen = str(runner.out / "chosen_shots.jsonl") if grader.shots == "chosen" else "keep"
    return spec_of(grader, shots_path=chosen if shots == "keep" else shots, root=runner.study.root)


def _grader_inputs(runner: StudyRunner, grader: GraderTable) -> list[Path]:
    spec = _spec(runner, grader)
    return [runner.study.path(runner.study.study.data), *(Path(p) for p in (spec.shots_path, spec.template_dir) if p)]


def grading_steps(runner: StudyRunner) -> None:
    """The exemplar search (when declared), then every grader's run folder."""
    if runner.study.shot_search is not None:
        _shot_search_step(runner, runner.study.shot_search)
    for grader in runner.study.grader:
        _grade_step(runner, grader)
    probe_steps(runner)


def _shot_search_step(runner: StudyRunner, table: ShotSearchTable) -> None:
    """The exemplar search: shot sets chosen on dev and judged on held-out test, the choice in chosen_shots.jsonl."""
    from ...grading.templates import default_shots_path
    from ...io.pairs import load_pairs, select_rows
    from ...io.readers import read_result
    from ...results.shots import ShotSearch
    from ...steps.settings import ShotSearchSettings, mapping_of
    from ..shot_search import calibrate_shots
    from .analyses import settings_of

    study, out = runner.study, runner.out
    base = study.grader_named(table.grader, key="shot_search.grader")
    target = out / "shot-search" / "shot_search.json"
    settings = settings_of(table, ShotSearchSettings)
    pool = study.path(study.study.human or "")

    def search() -> ShotSearch:
        # a search always starts afresh; the cache answers repeats
        _set_aside(runner, "shot search", out / "shot-search")
        pairs = load_pairs(pool, mapping=mapping_of(settings.map))
        human = select_rows(pairs, limit=settings.limit, sample=settings.sample, seed=settings.sample_seed)
        spec = replace(_spec(runner, base, shots=None), targets=("prompt", "response"), logprobs=False, samples=1)
        found = calibrate_shots(human, spec, runner.endpoint.get(), run_root=out / "shot-search",
                                out=out / "chosen_shots.jsonl", cache_dir=runner.cache, settings=settings)
        tested = sorted((out / "shot-search").glob("test-*"))  # the graders judged on held-out prompts
        inputs = [("pool", pool), ("default shots", default_shots_path()), *(("run", t) for t in tested)]
        found = stamped(found, study_provenance(runner, "shot-search", "grader vs human", inputs))
        found.write(target)
        return found

    runner.step("shot search", {"settings": settings, "grader": base}, [pool],
                [target, out / "chosen_shots.jsonl"], search, lambda: read_result(target, ShotSearch))


def _grade_step(runner: StudyRunner, grader: GraderTable) -> None:
    """One grader's run folder (and its repeats), resumed where it stopped."""
    from ...core.errors import GraderError
    from ...grading.grade import grade, grade_repeats
    from ...io.runs import read_manifest
    from ...results.manifest import Manifest
    from .runner import check_graded

    data = runner.study.path(runner.study.study.data)
    folder = runner.run_dir(grader)
    endpoint = runner.endpoint

    def run() -> Manifest:
        _set_aside_if_finished(runner, f"grade {grader.name}", folder)
        _set_aside_if_another_endpoint(runner, f"grade {grader.name}", folder)
        try:
            result = grade(data, _spec(runner, grader), endpoint.for_model(grader.model), run_dir=folder,
                           cache_dir=runner.cache, retry_statuses=("failed",), on_progress=runner.on_progress)
        except GraderError as exc:  # name the study's keys, not the grade command's flags
            raise GraderError(f"grader {grader.name} ({grader.model}; the study's endpoint.base_url and "
                              f"grader.model): {_as_study_keys(str(exc))}") from None
        check_graded(result, grader.name)
        if grader.repeats > 1:  # repeat 1 has the run's own seed: answered from the cache
            for repeat in grade_repeats(data, _spec(runner, grader), endpoint.for_model(grader.model),
                                        run_dir=folder / "repeats", repeats=grader.repeats, cache_dir=runner.cache,
                                        retry_statuses=("failed",), on_progress=runner.on_progress):
                check_graded(repeat, f"{grader.name} ({repeat.run_dir.name})")
        return result.manifest

    runner.step(
        f"grade {grader.name}",
        {"grader": grader, "endpoint": runner.study.endpoint.base_url},
        _grader_inputs(runner, grader),
        [folder / "labels.jsonl"],
        run,
        partial(read_manifest, folder),
        study_wide=False,
        on_changed=partial(_set_aside, runner, f"grade {grader.name}", folder),
    )


def _as_study_keys(message: str) -> str:
    """A grade's message with its parameters named as the study's keys (``endpoint.base_url``, ``grader.model``)."""
    return re.sub(r"`(base_url|model)`( \(or OPENAI_BASE_URL\))?",
                  lambda m: f"{'endpoint' if m.group(1) == 'base_url' else 'grader'}.{m.group(1)}", message)


def probe_steps(runner: StudyRunner) -> None:
    """Each [[probe]]: a grader's job graded again with one perturbation, compared item by item (needs the endpoint)."""
    from ...io.readers import read_result
    from ...results.probes import Probe
    from ...steps.settings import ProbeSettings
    from ..probe import planned as planned_probe
    from ..probe import run_probe
    from .analyses import settings_of

    study = runner.study
    for table in study.probe:
        settings = settings_of(table, ProbeSettings)
        for name in table.graders or [study.grader[0].name]:
            folder = runner.run_dir(study.grader_named(name, key="probe.graders"))
            target = folder / f"probe-{settings.kind}" / "probe.json"

            def run(folder: Path = folder, settings: ProbeSettings = settings) -> Probe:
                return run_probe(
                    folder,
                    settings,
                    runner.endpoint.get(),
                    cache_dir=runner.cache,
                    on_progress=runner.on_progress,
                    context=[("study", runner.study.file)],
                )

            runner.step(
                f"probe {settings.kind} {name}",
                {"settings": settings, "endpoint": study.endpoint.base_url},
                [folder],
                [target],
                run,
                partial(read_result, target, Probe),
                claims=planned_probe(folder, settings.kind, None),
            )


def analysis_steps(runner: StudyRunner) -> None:
    """Calibrate, compare, agreement, analyze, plan and select, as the study declares them."""
    from .analyses import (
        agreement_step,
        analyze_step,
        calibrate_steps,
        compare_step,
        jury_step,
        plan_steps,
        stability_step,
        thresholds_step,
    )

    jury_step(runner)
    thresholds_step(runner)
    calibrate_steps(runner)
    compare_step(runner)
    agreement_step(runner)
    stability_step(runner)
    analyze_step(runner)
    plan_steps(runner)


def report_steps(runner: StudyRunner) -> None:
    """The report of everything the study wrote, and the first grader's item viewer."""
    from ...analysis.table_calibration import table_calibration_path
    from ...io.pairs import load_pairs
    from ...io.runs import load_run
    from ...report.document import render_report
    from ...report.view import render_view

    study, out = runner.study, runner.out
    if study.report is None:
        return
    table = study.report
    first = runner.run_dir(study.grader[0]) if study.grader else None
    analysed = (runner.run_dir(study.grader_named(study.analyze.grader, key="analyze.grader"))
                if study.analyze and study.grader else first or out)
    given = {
        "analysis": analysed / "analysis.json",
        "comparison": out / "comparison.json",
        "agreement": out / "agreement.json",
        "shot_search": out / "shot-search" / "shot_search.json",
        "plan": out / "plan.json",
        "picks": out / "picks.design.json",
        **({"thresholds": out / study.thresholds.name / "thresholds.json"} if study.thresholds else {}),
    }
    probes: list[Path] = []
    if first is not None:
        given["calibration"] = first / "calibration.json"
        given["stability"] = first / "repeats" / "stability.json"
        probes = [p for p in sorted(first.glob("probe-*/probe.json"))]
    elif study.calibrate is not None and study.calibrate.gold and study.calibrate.pred:
        given["table_agreement"] = table_calibration_path(out, study.calibrate.gold, study.calibrate.pred)
    present = {key: path for key, path in given.items() if path.exists()}  # exactly what the report reads
    inputs = [*([first / "manifest.json"] if first else []), *present.values(), *probes]
    outputs = [out / "report.md", out / "report.html"] + ([out / "report.tex"] if table.latex else [])

    def report() -> None:
        render_report(first, **present, probes=probes, out_dir=out, latex=table.latex)
        return None

    runner.step("report", table, inputs, outputs, report)
    if table.view and first is not None:
        human = study.path(study.study.human) if study.study.human else None

        def view() -> None:
            from ...grading.cache import completion_lookup

            with completion_lookup(runner.cache) as lookup:
                render_view(load_run(first, full=True), out / "view.html", human=load_pairs(human) if human else None,
                            human_source=str(human) if human else None, completion_of=lookup)
            return None

        runner.step("view", table, [first, *([human] if human else [])], [out / "view.html"], view)


def _set_aside_if_finished(runner: StudyRunner, step: str, folder: Path) -> None:
    """A grade step that finished before and now has other inputs (data, model, shots, template) is another run: its
    folder is moved aside (``NAME.superseded-TIME``), never deleted, and the grader grades afresh (the cache answers
    whatever did not change). An unfinished folder is resumed."""
    if step in runner.state.steps:
        _set_aside(runner, step, folder)


def _set_aside_if_another_endpoint(runner: StudyRunner, step: str, folder: Path) -> None:
    """An unfinished run folder graded at another endpoint than the study's now holds another grader's labels: it is
    set aside rather than mixed (endpoints compared by identity: the embedded endpoint, or any harness serve, is one
    grader whatever its port, and another grader when its code, fit or flags changed)."""
    from ...grading.identity import answered_here
    from ...io.runs import MANIFEST, read_manifest

    if not (folder / MANIFEST).exists():
        return
    before = read_manifest(folder).endpoint
    endpoint = runner.endpoint.get()
    if before and not answered_here([before], endpoint.identity, endpoint.base_url):
        _set_aside(runner, step, folder)


def _set_aside(runner: StudyRunner, step: str, folder: Path) -> None:
    from datetime import UTC, datetime

    if folder.exists():
        aside = folder.with_name(f"{folder.name}.superseded-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%f')}")
        folder.rename(aside)
        runner.notes.append(f"{step}: the earlier folder was moved to {aside}")
