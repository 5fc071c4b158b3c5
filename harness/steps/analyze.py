"""``harness analyze`` as one library step: the paired transition analysis of a run folder or a labelled table."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..core.claims import Output
from .outcome import Context, Outcome, claimed, stamp
from .settings import AnalyzeSettings, mapping_of

if TYPE_CHECKING:
    import pandas as pd


def analyze(source: str | Path, settings: AnalyzeSettings, *,
            out: str | Path | None = None, context: Context = ()) -> Outcome:
    """Reduce / preserve / escalate per group and category with CIs, corrected by human labels when given.

    ``source`` is a run folder (the grader's labels) or a pairs table with labels on both sides. Writes
    ``analysis.json`` and its CSV tables into ``out`` (default: the run folder, or ``runs/analysis-<table>``).
    """
    from ..analysis.transition_tables import save_analysis
    from ..analysis.transitions import analyze as run_analysis
    from ..io.pairs import load_pairs, select_rows

    path = Path(source)
    claimed(planned(path, out), [("the pairs", path), ("`human`", settings.human), ("`correct`", settings.correct)])
    frame, default_out = pairs_or_run(path, settings.map)
    frame = select_rows(frame, limit=settings.limit, sample=settings.sample, seed=settings.sample_seed)
    calibration = _calibration(settings.correct)
    labelled = load_pairs(settings.human, mapping=mapping_of(settings.map)) if settings.human else None
    fit: list[str] = []
    if labelled is not None and path.is_dir():  # a derived run's cut points were chosen on some labels: not those
        from ..io.runs import read_manifest
        from .outcome import without_fit

        labelled, fit = without_fit(labelled, [(path, read_manifest(path))])
    result = run_analysis(frame, by=settings.by, cluster=settings.cluster, reference=settings.reference,
                          all_pairs=settings.all_pairs, n_boot=settings.n_boot, seed=settings.seed, correct=calibration,
                          correct_source=str(settings.correct), human=labelled, human_source=str(settings.human),
                          force=settings.force)
    if fit and result.corrected is not None:
        result = result.model_copy(update={"corrected": result.corrected.model_copy(
            update={"warnings": [*result.corrected.warnings, *fit]})})
    kind = "grader" if path.is_dir() else "the table's labels"
    corrected = ", corrected by human labels" if settings.human or settings.correct else ""
    result = stamp(result, "analyze", kind + corrected,
                   [("pairs", path), ("human", settings.human), ("calibration", settings.correct)], context)
    return Outcome(result, save_analysis(result, Path(out) if out is not None else default_out))


def _calibration(path: str | None) -> dict[str, object] | None:
    from ..core.errors import DataError
    from ..io.readers import read_json_object

    if path is None:
        return None
    try:
        return read_json_object(Path(path), what="`correct` file")
    except FileNotFoundError:
        raise DataError(f"`correct` {path}: no such file") from None


#: The tables analyze writes beside ``analysis.json`` (``analysis_<name>.csv``).
TABLES = ("transitions", "categories", "transition_matrix", "escalation_cases", "comparison")


def planned(source: Path, out: str | Path | None) -> list[Output]:
    """The files analyze writes: ``analysis.json`` and its tables, into ``out`` (default: the run folder, or
    ``runs/analysis-<table>``)."""
    folder = Path(out) if out is not None else source if source.is_dir() else Path("runs") / f"analysis-{source.stem}"
    tables = ((f"analysis_{t}.csv", "table") for t in TABLES)
    return [Output(folder, folder=True, names=(("analysis.json", "result"), *tables))]


def pairs_or_run(source: Path, mapping: list[str]) -> tuple[pd.DataFrame, Path]:
    """A pairs table from a file, or the grader-labelled pairs of a run folder; and where its analysis goes."""
    from ..io.pairs import load_pairs
    from ..io.runs import graded_pairs, load_run

    if source.is_dir():
        return graded_pairs(load_run(source)), source
    return load_pairs(source, mapping=mapping_of(mapping)), Path("runs") / f"analysis-{source.stem}"
