"""``harness plan`` and ``harness select`` as library steps: how many items to send to annotators, and which."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..core.claims import Output
from .outcome import Context, Outcome, claimed, result_file, stamp
from .settings import PlanSettings, SelectSettings, mapping_of


def plan(pilot: str | Path, settings: PlanSettings, *, out: str | Path | None = None, context: Context = ()) -> Outcome:
    """The labelling size at which a metric's 95 % interval reaches ``settings.target_width`` (or the width at each
    of ``settings.sizes``), simulated from a pilot: a table (``gold``/``pred``), a run folder with ``human`` labels,
    or a calibration.json. Writes ``plan.json`` to ``out`` (default ``runs/plan-<pilot>.json``)."""
    from ..analysis.planning import plan as make_plan

    source = Path(pilot)
    target = Path(out) if out is not None else Path("runs") / f"plan-{source.stem or source.name}.json"
    claimed([result_file(target)], [("the pilot", source), ("`human`", settings.human)])
    chosen = pilot_of(source, settings)
    result = make_plan(chosen, target_width=settings.target_width, sizes=list(settings.sizes), studies=settings.studies,
                       n_boot=settings.n_boot, seed=settings.seed, assurance=settings.assurance)
    result = stamp(result, "plan", "pilot labels", [("pilot", source), ("human", settings.human)], context)
    result.write(target)
    return Outcome(result, [target])


def pilot_of(source: Path, settings: PlanSettings) -> Any:
    """The pilot the settings describe: a table's two columns, a run with its human labels, or calibration.json."""
    from ..analysis.pilots import pilot_from_pairs, pilot_from_table
    from ..core.errors import ConfigError
    from ..io.pairs import load_pairs

    if settings.gold or settings.pred:
        if not (settings.gold and settings.pred):
            raise ConfigError("`gold` and `pred` go together: name both label columns")
        table = load_pairs(source, mapping=mapping_of(settings.map), require=("id",))
        return pilot_from_table(table, settings.gold, settings.pred, metric=settings.metric,
                                threshold=settings.threshold, cluster=settings.cluster, source=str(source))
    if source.is_dir():
        return _run_pilot(source, settings)
    if source.suffix == ".json":
        from ..io.readers import read_json_object
        from ..results.calibration import Calibration

        calibration = Calibration.from_json(read_json_object(source), name=source.name)
        if calibration.max_severity_pairs is None:
            raise ConfigError(f"{source}: no max_severity_pairs; recalibrate with this version of harness")
        found = pilot_from_pairs(calibration.max_severity_pairs, metric=settings.metric, side=settings.side,
                                 threshold=settings.threshold, source=str(source), cluster=calibration.unit.cluster)
        found.reported = _reported(calibration, settings, source)
        return found
    raise ConfigError(f"{source}: a table as the pilot needs `gold` and `pred` (its human and grader label columns)")


def _reported(calibration: Any, settings: PlanSettings, source: Path) -> Any:
    """The metric's value and interval as the calibration reported them (its max scope on the side), where it reported
    this very figure: same metric and threshold, unweighted labels, an interval drawn."""
    if calibration.design is not None or settings.metric == "escalation":
        return None
    how = f"{source.name}'s own interval ({calibration.n_boot:,} cluster resamples, seed {calibration.seed})"
    if settings.metric == "recall-gap":
        gap = (calibration.asymmetry or {}).get("max")
        if gap is None or calibration.threshold != settings.threshold or gap.recall_gap_ci[0] is None:
            return None
        return gap.recall_gap, list(gap.recall_gap_ci), how
    report = calibration.targets.get(settings.side)
    if report is None or (settings.metric == "recall" and calibration.threshold != settings.threshold):
        return None
    key = {"kappa": "kappa", "kappa-quadratic": "kappa_quadratic", "recall": "recall"}[settings.metric]
    value = report.max.detection.recall if key == "recall" and report.max.detection else getattr(report.max, key, None)
    interval = report.max.ci.get(key, [None, None])
    return (value, list(interval), how) if interval[0] is not None else None


def _run_pilot(source: Path, settings: PlanSettings) -> Any:
    from ..analysis.calibration import calibrate_run
    from ..analysis.calibration import side_labels as labels_of
    from ..analysis.pilots import graded_sums, pilot_from_pairs
    from ..core.errors import ConfigError
    from ..io.clusters import cluster_column, cluster_of_rows
    from ..io.pairs import load_pairs
    from ..io.runs import graded_pairs, load_run

    if settings.human is None:
        raise ConfigError("a run folder as the pilot needs `human` LABELLED (human labels of some of its pairs)")
    human = load_pairs(settings.human, mapping=mapping_of(settings.map))
    # agreement metrics need only the labelled pairs: a 1M-pair run is read for those alone; escalation reads every pair
    run = load_run(source, ids=None if settings.metric == "escalation" else set(human["id"].astype(str)))
    found = calibrate_run(run, human, cluster=settings.cluster, n_boot=0)
    graded = None
    if settings.metric == "escalation":
        frame = graded_pairs(run)
        codes = cluster_of_rows(frame, cluster_column(frame.columns, settings.cluster))
        graded = graded_sums(labels_of(frame, "", "prompt"), labels_of(frame, "", "response"), codes)
    assert found.max_severity_pairs is not None
    return pilot_from_pairs(found.max_severity_pairs, metric=settings.metric, side=settings.side,
                            threshold=settings.threshold, source=f"{source} with {settings.human}",
                            cluster=found.unit.cluster, graded=graded)


def design_path(picks: Path) -> Path:
    """Where select writes the design beside its picks: ``<name>.design.json``."""
    return picks.with_name(f"{picks.stem}.design.json")


def select_outputs(picks: Path, param: str = "`out`") -> list[Output]:
    """The picks table and its design beside it."""
    return [Output(picks, param=param, kind="pairs"), result_file(design_path(picks), param)]


def select(graded: str | Path, settings: SelectSettings, *, out: str | Path, context: Context = ()) -> Outcome:
    """Pick ``settings.budget`` prompt clusters for annotators from a run folder (or a table of a grader's labels):
    the picks (blank label columns, each row's inclusion_probability) at ``out`` and the design beside it
    (``<name>.design.json``)."""
    from ..analysis.selection import select as pick
    from ..io.pairs import load_pairs, write_pairs
    from ..io.runs import graded_pairs, load_run, uncertainty_by_id

    source, target = Path(graded), Path(out)
    claimed(select_outputs(target), [("the graded pairs", source)])
    uncertainty = None
    if source.is_dir():
        run = load_run(source)
        frame = graded_pairs(run)
        by_id = uncertainty_by_id(run.records)
        if by_id is not None:
            uncertainty = frame["id"].astype(str).map(by_id).to_numpy(dtype=float, na_value=float("nan"))
    else:
        frame = load_pairs(source, mapping=mapping_of(settings.map))
    rows, design = pick(frame, budget=settings.budget, strategy=settings.strategy, cluster=settings.cluster,
                        uncertainty=uncertainty, seed=settings.seed, source=str(source))
    sidecar = design_path(target)
    design = type(design)(**{**design.fields(), "outputs": [str(target), str(sidecar)]})
    label_source = "grader" if source.is_dir() else "the table's labels"
    design = stamp(design, "select", label_source, [("graded", source)], context)
    write_pairs(rows, target)
    design.write(sidecar)
    return Outcome(design, [sidecar, target])
