"""``harness calibrate`` as one library step: settings in, a typed result out, its files written."""

from __future__ import annotations

from pathlib import Path

from ..core.claims import Output
from ..core.constants import CATEGORIES, SIDES
from .outcome import Context, Outcome, claimed, held_out, ratings_without_fit, stamp, without_fit
from .settings import CalibrateSettings, mapping_of


def calibrate(source: str | Path, settings: CalibrateSettings, *,
              out: str | Path | None = None, context: Context = ()) -> Outcome:
    """A run folder against human labels (``settings.human``), or two label columns of a plain table
    (``settings.gold``/``settings.pred``).

    A run's calibration is written into ``out`` (default: the run folder) with one confusion matrix CSV per side and
    scope; a table's only when ``out`` is given. ``context`` adds provenance inputs (a study names its file).
    """
    from ..core.errors import ConfigError

    source = Path(source)
    if settings.gold or settings.pred:
        if not (settings.gold and settings.pred):
            raise ConfigError("`gold` and `pred` go together: name both label columns")
        claimed(planned(source, settings, out), [("the table", source), ("`ratings`", settings.ratings)])
        return _table(source, settings, out=Path(out) if out is not None else None, context=context)
    if settings.human is None:
        raise ConfigError("calibrating a run needs `human` DATA (or `gold`/`pred` on a plain table)")
    claimed(planned(source, settings, out), [("the run", source), ("`human`", settings.human),
                                             ("`ratings`", settings.ratings), ("`held_out`", settings.held_out)])
    return _run(source, settings, out=Path(out) if out is not None else source, context=context)


def planned(source: str | Path, settings: CalibrateSettings, out: str | Path | None) -> list[Output]:
    """The files calibrate writes: a run's calibration.json and confusion tables (into ``out``, default the run
    folder), or a table's calibration and its confusion table (only when ``out`` is given)."""
    from ..analysis.table_calibration import table_calibration_path

    if settings.gold and settings.pred:
        if out is None:
            return []
        target = table_calibration_path(out, settings.gold, settings.pred)
        confusion = f"confusion_{target.name[:-5]}.csv"
        return [Output(Path(out), folder=True, names=((target.name, "result"), (confusion, "table")))]
    tables = [(f"confusion_{side}_{scope}.csv", "table") for side in SIDES for scope in (*CATEGORIES, "pooled", "max")]
    return [Output(Path(out) if out is not None else Path(source), folder=True,
                   names=(("calibration.json", "result"), *tables))]


def _table(source: Path, settings: CalibrateSettings, *, out: Path | None, context: Context) -> Outcome:
    from ..analysis.table_calibration import calibrate_table, save_table_calibration
    from ..io.pairs import load_pairs
    from ..io.ratings import read_ratings

    assert settings.gold is not None and settings.pred is not None
    mapping = mapping_of(settings.map)
    frame = load_pairs(source, mapping=mapping, require=("id",))  # two label columns need no prompt
    several = read_ratings(Path(settings.ratings) if settings.ratings else source, raters=list(settings.raters),
                           graders=[settings.pred], final=settings.gold, level="nominal" if settings.nominal else None,
                           cluster=settings.cluster, mapping=mapping) if settings.raters else None
    table = calibrate_table(frame, settings.gold, settings.pred, labels=list(settings.labels) or None,
                            ordinal=False if settings.nominal else None, threshold=settings.threshold,
                            cluster=settings.cluster, n_boot=settings.n_boot, seed=settings.seed, raters=several,
                            epsilon=settings.epsilon, unparsed=settings.unparsed)
    table = stamp(table, "calibrate", f"{settings.pred} vs {settings.gold}",
                  [("table", source), ("ratings", settings.ratings)], context)
    return Outcome(table, save_table_calibration(table, out) if out is not None else [])


def _run(source: Path, settings: CalibrateSettings, *, out: Path, context: Context) -> Outcome:
    from ..analysis.calibration import calibrate_run, save_calibration
    from ..io.pairs import load_pairs
    from ..io.ratings import read_ratings
    from ..io.runs import load_run

    assert settings.human is not None
    mapping = mapping_of(settings.map)
    ratings = settings.ratings or settings.human
    several = read_ratings(ratings, raters=list(settings.raters), graders=[str(source)], final="canonical",
                           cluster=settings.cluster, mapping=mapping) if settings.raters else None
    human, warnings = held_out(load_pairs(settings.human, mapping=mapping), settings.held_out)
    run = load_run(source)
    human, fit = without_fit(human, [(source, run.manifest)])
    several = ratings_without_fit(several, [(source, run.manifest)])
    result = calibrate_run(run, human, threshold=settings.threshold, cluster=settings.cluster,
                           n_boot=settings.n_boot, seed=settings.seed, by=settings.by, raters=several,
                           epsilon=settings.epsilon, warnings=[*warnings, *fit])
    result = stamp(result, "calibrate", "grader vs human",
                   [("run", source), ("human", settings.human), ("ratings", ratings if settings.raters else None),
                    ("held out", settings.held_out)], context)
    return Outcome(result, save_calibration(result, out))
