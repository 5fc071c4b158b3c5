"""``harness plan`` and ``harness select``: how many items to send to annotators, and which."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..core.constants import DEFAULT_SEED
from .common import ClusterOpt, MapOpt, errors, mapping_of, split


def plan(
    pilot: Annotated[Path, typer.Argument(help="The pilot: a table (with --gold/--pred), a run folder (with --human) or a calibration.json.")],
    metric: Annotated[str, typer.Option(help="kappa, kappa-quadratic, recall, recall-gap, or escalation (the corrected share; a run with --human).")] = "kappa",
    target_width: Annotated[Optional[float], typer.Option(help="The 95% interval width to reach, e.g. 0.10.")] = None,
    sizes: Annotated[Optional[str], typer.Option(help="Item counts to predict the width at, comma-separated (e.g. 100,200,400).")] = None,
    gold: Annotated[Optional[str], typer.Option(help="A table's human label column.")] = None,
    pred: Annotated[Optional[str], typer.Option(help="A table's grader label column.")] = None,
    human: Annotated[Optional[Path], typer.Option(help="With a run folder: the human labels of some of its pairs (the pilot).")] = None,
    side: Annotated[str, typer.Option(help="With harm labels: prompt or response (each pair's highest category).")] = "response",
    threshold: Annotated[int, typer.Option(help="recall and recall-gap: harmful when the label is at least this.")] = 1,
    cluster: ClusterOpt = None,
    studies: Annotated[int, typer.Option(help="Simulated studies per size.")] = 200,
    n_boot: Annotated[int, typer.Option(help="Bootstrap resamples per simulated study.")] = 200,
    seed: Annotated[int, typer.Option(help="Simulation seed.")] = DEFAULT_SEED,
    mapping: MapOpt = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Where to write plan.json (default runs/plan-<pilot>.json).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON result.")] = False,
) -> None:
    """How many items humans must label to know a metric to a given interval width, predicted from a pilot."""
    with errors():
        from ..analysis.planning import plan as make_plan
        from ..io.provenance import provenance_of, stamped
        from .console import print_json, print_result

        chosen = _pilot(pilot, metric=metric, gold=gold, pred=pred, human=human, side=side, threshold=threshold,
                        cluster=cluster, mapping=mapping)
        wanted = [_count(v) for v in split(sizes)]
        result = make_plan(chosen, target_width=target_width, sizes=wanted, studies=studies, n_boot=n_boot, seed=seed)
        result = stamped(result, provenance_of("plan", "pilot labels", [("pilot", pilot), ("human", human)]))
        target = out or Path("runs") / f"plan-{pilot.stem or pilot.name}.json"
        result.write(target)
        print_json(result) if as_json else print_result(result)
        typer.echo(f"wrote {target}", err=True)


def _count(text: str) -> int:
    from ..core.errors import ConfigError

    if not text.isdigit() or int(text) < 1:
        raise ConfigError(f"`sizes` {text!r}: expected positive item counts, e.g. 100,200,400")
    return int(text)


def _pilot(source: Path, *, metric: str, gold: str | None, pred: str | None, human: Path | None, side: str, threshold: int,
           cluster: str | None, mapping: str | None) -> Any:
    """The pilot the flags describe: a table's two columns, a run with its human labels, or calibration.json."""
    from ..analysis.planning import METRICS, graded_sums, pilot_from_pairs, pilot_from_table
    from ..core.constants import SIDES
    from ..core.errors import ConfigError
    from ..io.pairs import load_pairs

    if metric not in METRICS:
        raise ConfigError(f"`metric` {metric!r}: expected one of {', '.join(METRICS)}")
    if side not in SIDES:
        raise ConfigError(f"`side` {side!r}: expected prompt or response")
    if gold or pred:
        if not (gold and pred):
            raise ConfigError("`gold` and `pred` go together: name both label columns")
        return pilot_from_table(load_pairs(source, mapping=mapping_of(mapping)), gold, pred, metric=metric, threshold=threshold,
                                cluster=cluster, source=str(source))
    if source.is_dir():
        if human is None:
            raise ConfigError("a run folder as the pilot needs `human` LABELLED (human labels of some of its pairs)")
        from ..analysis.calibration import calibrate_run
        from ..analysis.calibration import side_labels as labels_of
        from ..io.clusters import cluster_column, cluster_of_rows
        from ..io.runs import graded_pairs, load_run

        run = load_run(source)
        found = calibrate_run(run, load_pairs(human, mapping=mapping_of(mapping)), cluster=cluster, n_boot=0)
        graded = None
        if metric == "escalation":
            frame = graded_pairs(run)
            codes = cluster_of_rows(frame, cluster_column(frame.columns, cluster))
            graded = graded_sums(labels_of(frame, "", "prompt"), labels_of(frame, "", "response"), codes)
        assert found.max_severity_pairs is not None
        return pilot_from_pairs(found.max_severity_pairs, metric=metric, side=side, threshold=threshold,
                                source=f"{source} with {human}", cluster=found.unit.cluster, graded=graded)
    if source.suffix == ".json":
        from ..io.readers import read_json_object
        from ..results.calibration import Calibration

        calibration = Calibration.from_json(read_json_object(source), name=source.name)
        if calibration.max_severity_pairs is None:
            raise ConfigError(f"{source}: no max_severity_pairs; recalibrate with this version of harness")
        return pilot_from_pairs(calibration.max_severity_pairs, metric=metric, side=side, threshold=threshold,
                                source=str(source), cluster=calibration.unit.cluster)
    raise ConfigError(f"{source}: a table as the pilot needs `gold` and `pred` (its human and grader label columns)")


def select(
    graded: Annotated[Path, typer.Argument(help="A run folder, or a pairs table whose label columns hold a grader's labels.")],
    budget: Annotated[int, typer.Option(help="Prompt clusters to pick (each with all its pairs).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The picks: .jsonl, .csv (for a spreadsheet) or .parquet; the design goes beside it (<name>.design.json).")],
    strategy: Annotated[str, typer.Option(help="uniform (the default: on target in make validate), stratified (more of what the grader flags; under-covered there) or active (by the grader's uncertainty; needs grade --logprobs or --samples).")] = "uniform",
    cluster: ClusterOpt = None,
    seed: Annotated[int, typer.Option(help="Seed of the pick.")] = DEFAULT_SEED,
    mapping: MapOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the design as JSON.")] = False,
) -> None:
    """Pick prompt clusters for annotators: blank label columns, and each row's inclusion_probability for the analysis."""
    with errors():
        from ..analysis.selection import select as pick
        from ..io.pairs import load_pairs, write_pairs
        from ..io.provenance import provenance_of, stamped
        from ..io.runs import graded_pairs, load_run, uncertainty_by_id
        from .console import print_json, print_result

        uncertainty = None
        if graded.is_dir():
            run = load_run(graded)
            frame = graded_pairs(run)
            by_id = uncertainty_by_id(run.labels)
            if by_id is not None:
                uncertainty = frame["id"].astype(str).map(by_id).to_numpy(dtype=float, na_value=float("nan"))
        else:
            frame = load_pairs(graded, mapping=mapping_of(mapping))
        rows, design = pick(frame, budget=budget, strategy=strategy, cluster=cluster, uncertainty=uncertainty, seed=seed,
                            source=str(graded))
        sidecar = out.with_name(f"{out.stem}.design.json")
        design = type(design)(**{**design.fields(), "outputs": [str(out), str(sidecar)]})
        design = stamped(design, provenance_of("select", "grader" if graded.is_dir() else "the table's labels", [("graded", graded)]))
        write_pairs(rows, out)
        design.write(sidecar)
        print_json(design) if as_json else print_result(design)
        typer.echo(f"wrote {out} and {sidecar}", err=True)


def register(app: typer.Typer) -> None:
    """Add the planning commands to ``app``."""
    app.command()(plan)
    app.command()(select)
