"""``calibrate --gold --pred``: the agreement of any two label columns of one table (nominal or ordinal), and its
files."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.bounds import EPSILON, N_BOOT, SEED, THRESHOLD, Unparsed, bounded
from ..core.cells import as_int, is_missing
from ..core.errors import ConfigError, DataError
from ..io.clusters import cluster_column, cluster_of_rows
from ..results.calibration import TableAgreement
from .agreement import agreement
from .raters import rater_agreement

if TYPE_CHECKING:
    import pandas as pd

    from ..io.ratings import Ratings


@bounded(n_boot=N_BOOT, seed=SEED, epsilon=EPSILON)
def calibrate_table(
    frame: pd.DataFrame,
    gold: str,
    pred: str,
    *,
    labels: list[str] | None = None,
    ordinal: bool | None = None,
    threshold: Any = THRESHOLD.default,
    cluster: str | None = None,
    n_boot: int = N_BOOT.default,
    seed: int = SEED.default,
    raters: Ratings | None = None,
    epsilon: float = EPSILON.default,
    unparsed: Unparsed = "exclude",
) -> TableAgreement:
    """Agreement between any two label columns of a table (nominal or ordinal).

    ``labels`` declares the label set: a grader label outside it is unparsed, left out and counted
    as ``grader_outside_labels`` (``unparsed="disagree"``: kept as a class of its own that never
    matches, the conservative reading). By default the set is the sorted set of gold values, and
    grader labels outside it count as disagreements. Integer label sets are treated as ordinal
    unless told. ``cluster`` and ``raters`` (with ``pred`` as its grader) as in
    :func:`harness.analysis.calibration.calibrate_run`.
    """
    for column, flag in ((gold, "`gold`"), (pred, "`pred`")):
        if column not in frame.columns:
            raise DataError(f"{flag} {column!r}: no such column; the table has {sorted(map(str, frame.columns))}")
    gold_values = frame[gold].tolist()
    pred_values = frame[pred].tolist()
    if labels is None:
        declared: list[Any] = sorted({v for v in gold_values if not is_missing(v)}, key=str)
        whole = [as_int(v) for v in [*gold_values, *pred_values] if not is_missing(v)]
        if declared and all(as_int(v) is not None for v in declared) and all(w is not None for w in whole):
            # an integer scale: every step from the lowest label either column uses (a sample without a gold 0 is
            # still on the 0-3 scale when the grader says 0) to the reference's highest (a grader's stray 7 stays
            # outside)
            known = [w for w in whole if w is not None]
            declared = list(range(min(known), max(as_int(v) or 0 for v in declared) + 1))
    else:
        declared = list(labels)
    numeric = [int(v) for v in declared if str(v).lstrip("-").isdigit()]
    if len(numeric) == len(declared) and declared:
        declared = sorted(numeric)
        gold_values = [v if as_int(v) is None else as_int(v) for v in gold_values]
        pred_values = [v if as_int(v) is None else as_int(v) for v in pred_values]
        is_ordinal = True if ordinal is None else ordinal
    else:
        is_ordinal = bool(ordinal)
    if is_ordinal and threshold not in declared[1:]:
        raise ConfigError(
            f"`threshold` {threshold}: expected one of {declared[1:]} (a label above the lowest the data holds); "
            "declare the scale with `labels` (e.g. 0,1,2,3) when the data lack its lowest label"
        )
    unit_column = cluster_column(frame.columns, cluster)
    codes = cluster_of_rows(frame, unit_column)
    result = agreement(gold_values, pred_values, labels=declared, ordinal=is_ordinal, threshold=threshold,
                       clusters=codes, cluster_name=unit_column, n_boot=n_boot, seed=seed,
                       outside=unparsed if labels is not None else "disagree")
    table = TableAgreement(**result.fields(), gold=gold, pred=pred, n_rows=len(frame))
    if raters is None:
        return table
    return TableAgreement(
        **table.fields(), human_agreement=rater_agreement(raters, epsilon=epsilon, n_boot=n_boot, seed=seed)
    )


def save_table_calibration(result: TableAgreement, out_dir: str | Path) -> list[Path]:
    """Write a table calibration (``calibrate TABLE --gold --pred``) as JSON and its confusion CSV."""
    import pandas as pd

    from ..core.atomic import write_csv_atomic

    target = table_calibration_path(out_dir, result.gold, result.pred)
    result.write(target)
    labels = result.labels
    table = pd.DataFrame(result.confusion, index=[f"gold_{v}" for v in labels], columns=[f"pred_{v}" for v in labels])
    return [target, write_csv_atomic(target.with_name(f"confusion_{target.name[:-5]}.csv"), table, index=True)]


def table_calibration_path(out_dir: str | Path, gold: str, pred: str) -> Path:
    """Where ``calibrate TABLE --gold G --pred P -o DIR`` writes its JSON: ``DIR/calibration_G_vs_P.json``."""
    stem = "".join(ch if ch.isalnum() or ch in "-._" else "_" for ch in f"calibration_{gold}_vs_{pred}")
    return Path(out_dir) / f"{stem}.json"
