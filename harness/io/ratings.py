"""Several raters' labels of the same items: wide or long tables, one label or the harm layout.

* **wide**, one label: ``--raters a1,a2,a3`` names one column per rater (XSTest's
  ``annotation_1,annotation_2``);
* **wide**, harm labels: ``--raters h1,h2`` names column *prefixes*: ``h1_prompt_hate`` …
  ``h1_response_self_harm`` per rater, so both sides and all four categories come at once;
* **long**: ``--rater-column rater`` with one row per (item, rater): a ``--label-column`` for one
  label, or the eight canonical label columns (``prompt_hate`` …) for harm labels.

A grader is a column (or prefix) of the same table, a rater value of a long table, or a run folder
(harm labels). A missing rating is allowed everywhere; a value that is not a label on the scale
(``--level ordinal`` and ``interval`` need numbers) is a located error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.cells import as_int, as_number, is_blank
from ..core.constants import CATEGORIES, LEVELS, SIDES, label_column
from ..core.errors import DataError
from .clusters import cluster_column, cluster_of_rows

if TYPE_CHECKING:
    import pandas as pd

#: The scope name of a one-label table.
LABEL = "label"
HARM_SCOPES = tuple(f"{side}.{c}" for side in SIDES for c in (*CATEGORIES, "max"))


@dataclass
class Ratings:
    """Every scope's ratings as value codes (items x raters, NaN missing), graders' and the final label's too."""

    source: str
    ids: list[str]
    clusters: np.ndarray
    cluster: str | None
    raters: list[str]
    scopes: dict[str, np.ndarray]
    graders: dict[str, dict[str, np.ndarray]]
    final: dict[str, np.ndarray] | None
    labels: list[Any]  #: code -> label value
    level: str

    @property
    def values(self) -> np.ndarray | None:
        """The numbers the codes stand for (interval distances), or None for a nominal scale."""
        return None if self.level == "nominal" else np.asarray(self.labels, dtype=float)


def read_ratings(
    path: str | Path,
    *,
    raters: list[str] | None = None,
    rater_column: str | None = None,
    label_column_name: str | None = None,
    graders: list[str] | tuple[str, ...] = (),
    final: str | None = None,
    level: str | None = None,
    cluster: str | None = None,
    mapping: dict[str, str] | None = None,
) -> Ratings:
    """Read a ratings table (see the module docstring) into value codes per scope.

    ``level`` defaults to ordinal where every label is an integer (harm labels always are),
    interval where every label is a number, nominal where none is.
    """
    file = Path(path)
    graders, raters = list(graders), list(raters or [])
    for given, flag in ((raters, "raters"), (graders, "grader")):
        twice = sorted({n for n in given if given.count(n) > 1})
        if twice:
            raise DataError(f"`{flag}` names {twice[0]!r} twice; name each once")
    both = sorted(set(raters) & set(graders))
    if both:
        raise DataError(f"{both[0]!r} is both among `raters` and a `grader`: "
                        "a grader compared with itself always agrees; leave it out of one of them")
    if level is not None and level not in LEVELS:
        raise DataError(f"`level` {level!r}: expected one of {', '.join(LEVELS)}")
    if rater_column is not None:
        frame, rater_names, columns = _long(file, rater_column, label_column_name, raters, graders)
    else:
        frame, rater_names, columns = _wide(file, raters, mapping)
    harm = LABEL not in next(iter(columns.values()))
    grader_columns = _graders(frame, graders, columns, harm)
    final_columns = _final(frame, final, harm) if final else None
    named = {
        **{r: columns[r] for r in rater_names},
        **grader_columns,
        **({"<final>": final_columns} if final_columns else {}),
    }
    cells = {name: {scope: frame[column].tolist() for scope, column in per.items()} for name, per in named.items()}
    ids = frame["id"].astype(str).tolist()
    labels, level, encode = _scale(cells, named, ids, level, harm, str(file))
    scopes_of = list(HARM_SCOPES) if harm else [LABEL]
    coded = {name: {scope: encode(values) for scope, values in per.items()} for name, per in cells.items()}
    if harm:
        for per in coded.values():
            for side in SIDES:
                per[f"{side}.max"] = _max(np.column_stack([per[f"{side}.{c}"] for c in CATEGORIES]))
    names = _grader_names(graders)
    for grader in _run_graders(graders):
        coded[grader] = _run_codes(Path(grader), ids)
    column = cluster_column(frame.columns, cluster)
    return Ratings(
        source=str(file), ids=ids, clusters=cluster_of_rows(frame, column), cluster=column, raters=rater_names,
        scopes={scope: np.column_stack([coded[r][scope] for r in rater_names]) for scope in scopes_of},
        graders={names[g]: coded[g] for g in graders},
        final={s: coded["<final>"][s] for s in scopes_of} if final else None,
        labels=labels, level=level,
    )


def _read(file: Path) -> pd.DataFrame:
    from .pairs import detect_format
    from .readers import read_csv_table, read_jsonl_table, read_parquet_table

    kind = detect_format(file)
    if kind == "jsonl":
        return read_jsonl_table(file)[0]
    return read_csv_table(file)[0] if kind == "csv" else read_parquet_table(file)


def _table(file: Path, mapping: dict[str, str] | None) -> pd.DataFrame:
    """Any table as text cells (CSV, JSONL, Parquet), columns renamed by ``mapping``; an ``id`` per row
    (its ordinal when the table has none)."""
    raw = _read(file)
    if mapping:
        absent = [source for source in mapping.values() if source not in raw.columns]
        if absent:
            raise DataError(f"`mapping` names column {absent[0]!r}, which the table lacks", path=str(file))
        raw = raw.rename(columns={source: canonical for canonical, source in mapping.items()})
    if "id" not in raw.columns:
        raw.insert(0, "id", [f"row {i + 1}" for i in range(len(raw))])
    raw["id"] = raw["id"].astype(str)
    if raw["id"].duplicated().any():
        raise DataError(f"id {raw['id'][raw['id'].duplicated()].iloc[0]!r} appears twice; expected one row per item "
                        "(or a long table with one row per item and rater: pass `rater_column`)", path=str(file))
    return raw


def _wide(
    file: Path, raters: list[str], mapping: dict[str, str] | None
) -> tuple[pd.DataFrame, list[str], dict[str, dict[str, str]]]:
    frame = _table(file, mapping)
    if len(raters) < 2:
        raise DataError(f"`raters` {','.join(raters) or '(none)'}: expected at least two rater columns (or prefixes), "
                        "or a long table's `rater_column`", path=str(file))
    present = [r for r in raters if r in frame.columns]
    if present:
        if len(present) < len(raters):
            absent = [r for r in raters if r not in frame.columns]
            raise DataError(
                f"`raters`: no column {absent[0]!r}; the table has {sorted(map(str, frame.columns))}", path=str(file)
            )
        return frame, raters, {r: {LABEL: r} for r in raters}
    prefixed = {r: {f"{s}.{c}": f"{r}_{label_column(s, c)}" for s in SIDES for c in CATEGORIES} for r in raters}
    absent = [col for per in prefixed.values() for col in per.values() if col not in frame.columns]
    if len(absent) == 8 * len(raters):
        raise DataError(f"`raters` {','.join(raters)}: neither columns nor prefixes of this table "
                        f"({raters[0]}_prompt_hate …); it has {sorted(map(str, frame.columns))}", path=str(file))
    if absent:
        raise DataError(
            f"rater prefix columns missing: {absent[:3]}; each prefix needs all eight side_category columns",
            path=str(file),
        )
    return frame, raters, prefixed


def _long(file: Path, rater_column: str, label_name: str | None, raters: list[str],
          graders: list[str]) -> tuple[pd.DataFrame, list[str], dict[str, dict[str, str]]]:
    """A long table pivoted to one row per item (in order of first appearance) and one column per rater.

    Every rater value is a human rater or a grader: named by ``raters`` and ``graders``, or, without
    ``raters``, every value that is not a grader is a human (said in the result's rater list).
    """
    import pandas as pd

    raw = _read(file)
    label_columns = [label_name] if label_name else [label_column(s, c) for s in SIDES for c in CATEGORIES]
    needed = ["id", rater_column, *label_columns]
    missing = [c for c in needed if c not in raw.columns]
    if missing:
        raise DataError(
            f"the long table lacks column {missing[0]!r}; it has {sorted(map(str, raw.columns))}", path=str(file)
        )
    raw["id"] = raw["id"].astype(str)
    raw[rater_column] = raw[rater_column].astype(str)
    if raw.duplicated(["id", rater_column]).any():
        first = raw[raw.duplicated(["id", rater_column])].iloc[0]
        raise DataError(
            f"item {first['id']!r} has two ratings by {first[rater_column]!r}; expected one row per item and rater",
            path=str(file),
        )
    everyone = list(dict.fromkeys(raw[rater_column].tolist()))
    unknown = [r for r in (*raters, *(g for g in graders if not Path(g).is_dir())) if r not in everyone]
    if raters and unknown:
        raise DataError(f"{unknown[0]!r} is not a value of {rater_column!r}; it holds {everyone}", path=str(file))
    unnamed = [r for r in everyone if r not in raters and r not in graders]
    if raters and unnamed:
        raise DataError(f"{rater_column!r} also holds {unnamed}: name each value as one of `raters` or a `grader`",
                        path=str(file))
    humans = raters or [r for r in everyone if r not in graders]
    if len(humans) < 2:
        raise DataError(f"{rater_column!r} names {len(humans)} human raters; expected at least two", path=str(file))
    keep = [c for c in raw.columns if c not in (rater_column, *needed[2:])]
    items = raw.drop_duplicates("id")[keep].reset_index(drop=True)
    values = needed[2:]
    wide = raw.pivot(index="id", columns=rater_column, values=values)
    frame = items.copy()
    for value in values:
        for who in everyone:
            frame[f"{who}::{value}"] = wide[(value, who)].reindex(items["id"]).tolist()
    if label_name:
        columns = {who: {LABEL: f"{who}::{label_name}"} for who in everyone}
    else:
        columns = {
            who: {f"{s}.{c}": f"{who}::{label_column(s, c)}" for s in SIDES for c in CATEGORIES} for who in everyone
        }
    return pd.DataFrame(frame), humans, columns


def _grader_names(graders: list[str]) -> dict[str, str]:
    """Each grader's display name: a run folder by its grader model (with the folder where two share a
    model), a column or rater by itself."""
    from .runs import read_manifest

    models = {g: read_manifest(Path(g)).model for g in _run_graders(graders)}
    shared = {m for m in models.values() if list(models.values()).count(m) > 1}
    names = {
        g: (f"{models[g]} ({Path(g).name})" if models[g] in shared else models[g]) if g in models else g
        for g in graders
    }
    if len(set(names.values())) < len(names):
        raise DataError(f"`grader`: two graders share a name ({sorted(names.values())}); name each once")
    return names


def _run_graders(graders: list[str]) -> list[str]:
    return [g for g in graders if Path(g).is_dir()]


def _graders(
    frame: pd.DataFrame, graders: list[str], columns: dict[str, dict[str, str]], harm: bool
) -> dict[str, dict[str, str]]:
    out = {}
    for grader in graders:
        if Path(grader).is_dir():
            if not harm:
                raise DataError(f"`grader` {grader}: a run folder grades harm labels; "
                                "this table has one label per rater (name the grader's column instead)")
            continue
        if grader in columns:  # a rater value of a long table
            out[grader] = columns[grader]
        elif not harm and grader in frame.columns:
            out[grader] = {LABEL: grader}
        elif harm and f"{grader}_prompt_hate" in frame.columns:
            out[grader] = {f"{s}.{c}": f"{grader}_{label_column(s, c)}" for s in SIDES for c in CATEGORIES}
        else:
            raise DataError(f"`grader` {grader!r}: not a column, a prefix, a rater of a long table, or a run folder")
    return out


def _final(frame: pd.DataFrame, final: str, harm: bool) -> dict[str, str]:
    if not harm:
        if final not in frame.columns:
            raise DataError(f"`final` {final!r}: no such column")
        return {LABEL: final}
    prefix = "" if final in ("", "canonical") else f"{final}_"
    columns = {f"{s}.{c}": f"{prefix}{label_column(s, c)}" for s in SIDES for c in CATEGORIES}
    if any(col not in frame.columns for col in columns.values()):
        raise DataError(f"`final` {final!r}: expected columns {prefix}prompt_hate …; "
                        "`final` canonical takes the table's own label columns")
    return columns


def _scale(cells: dict[str, dict[str, list[Any]]], named: dict[str, dict[str, str]], ids: list[str], level: str | None,
           harm: bool, source: str) -> tuple[list[Any], str, Any]:
    """The label set (codes 0..k-1), the level, and a function turning one column's cells into codes (NaN missing).

    Harm labels are the integers 0-3. Otherwise a cell that holds a number is that number; with no
    ``level`` the scale is ordinal when every label is an integer, interval when every label is a
    number, nominal when none is, and a table mixing numbers and text is refused (one stray cell
    would otherwise turn the whole scale nominal).
    """
    located = [(value, named[name][scope], row) for name, per in cells.items() for scope, values in per.items()
               for row, value in enumerate(values) if not is_blank(value)]

    def where(column: str, row: int) -> str:
        return f"{source}: column {column!r}, item {ids[row]!r}"

    if harm:
        for value, column, row in located:
            number = as_int(value)
            if number is None or not 0 <= number <= 3:
                raise DataError(f"{where(column, row)}: harm label {value!r} is outside 0-3; "
                                "expected an integer 0-3 or an empty cell")
        return [0, 1, 2, 3], level or "ordinal", _encoder({v: v for v in range(4)})
    numbers = [(as_number(value), value, column, row) for value, column, row in located]
    text = [n for n in numbers if n[0] is None]
    if level is None and text and len(text) < len(numbers):
        _, value, column, row = text[0]
        raise DataError(f"{where(column, row)}: label {value!r} is text among numeric labels; pass `level` nominal to "
                        "treat every label as a name, or fix the cell")
    if level in ("ordinal", "interval") and text:
        _, value, column, row = text[0]
        raise DataError(f"{where(column, row)}: label {value!r} is not a number; `level` {level} needs numbers "
                        "(or pass `level` nominal)")
    if level is None:
        level = "nominal" if text else "ordinal" if all(isinstance(n[0], int) for n in numbers) else "interval"
    labels = sorted({n[0] if n[0] is not None else str(n[1]) for n in numbers}, key=lambda v: (isinstance(v, str), v))
    return labels, level, _encoder({label: code for code, label in enumerate(labels)})


def _encoder(index: dict[Any, int]) -> Any:
    """Cells to codes through ``index`` (a cell that is a number is looked up as that number)."""

    def encode(values: list[Any]) -> np.ndarray:
        out = np.full(len(values), np.nan)
        for row, value in enumerate(values):
            if not is_blank(value):
                number = as_number(value)
                out[row] = index[number if number is not None else str(value)]
        return out

    return encode


def _max(values: np.ndarray) -> np.ndarray:
    """The highest category per item, NaN unless all four are known."""
    out = np.full(values.shape[0], np.nan)
    complete = ~np.isnan(values).any(axis=1)
    out[complete] = values[complete].max(axis=1)
    return out


def _run_codes(run_dir: Path, ids: list[str]) -> dict[str, np.ndarray]:
    """A run folder's ok labels, aligned with the table's ids, per harm scope."""
    from .runs import labels_wide, read_labels

    wide = labels_wide(read_labels(run_dir))
    out: dict[str, np.ndarray] = {}
    aligned = wide.set_index("id").reindex(ids) if not wide.empty else None
    for side in SIDES:
        for c in CATEGORIES:
            column = f"pred_{label_column(side, c)}"
            if aligned is not None and column in aligned:
                out[f"{side}.{c}"] = aligned[column].to_numpy(dtype=float, na_value=np.nan)
            else:
                out[f"{side}.{c}"] = np.full(len(ids), np.nan)
        out[f"{side}.max"] = _max(np.column_stack([out[f"{side}.{c}"] for c in CATEGORIES]))
    return out
