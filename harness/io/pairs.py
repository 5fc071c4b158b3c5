"""The canonical pairs table: reading, validating and writing it.

One row per prompt-response pair. Required columns: ``id`` (unique, non-empty string) and
``prompt`` (non-empty text). Optional: ``response``; human labels
``{prompt,response}_{hate,sexual,violence,self_harm}`` as integers 0-3 where an empty cell
means *unknown* (never 0); ``relevance`` 1-3. Every other column is kept as metadata.

Tables are read from JSONL, CSV or Parquet. Every problem raises :class:`DataError` naming the
file, the line (or row for Parquet) and the column.
"""

from __future__ import annotations

import json
import numbers
import os
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.atomic import atomic_path
from ..core.cells import as_int, is_blank, kind_of, label_problem, not_label_cell
from ..core.constants import LABEL_COLUMNS
from ..core.errors import DataError
from .readers import csv_chunks, jsonl_chunks, read_csv_table, read_jsonl_table, read_parquet_table

if TYPE_CHECKING:
    import pandas as pd

FORMATS = ("jsonl", "csv", "parquet")
REQUIRED = ("id", "prompt")
TEXT_COLUMNS = ("prompt", "response")


def detect_format(path: Path) -> str:
    """Infer the table format from the file name (``.jsonl``/``.json``, ``.csv``, ``.parquet``)."""
    name = path.name.lower()
    if name.endswith((".jsonl", ".ndjson", ".json", ".jsonl.gz")):
        return "jsonl"
    if name.endswith((".csv", ".csv.gz")):
        return "csv"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    raise DataError(
        "cannot tell the format from the file name; expected one of .jsonl, .csv, .parquet",
        path=str(path),
    )


def parse_mapping(spec: str | None) -> dict[str, str]:
    """Parse ``"id=uid,prompt=question"`` (canonical=source) into a dict."""
    if not spec:
        return {}
    out: dict[str, str] = {}
    for part in spec.split(","):
        if "=" not in part:
            raise DataError(f"`mapping` entry {part!r} must look like canonical=source, e.g. id=uid")
        canon, src = (s.strip() for s in part.split("=", 1))
        if not canon or not src:
            raise DataError(f"`mapping` entry {part!r} must look like canonical=source, e.g. id=uid")
        out[canon] = src
    return out


class _Locator:
    """Turns a row index into the most precise location the format allows."""

    def __init__(self, path: Path, lines: list[int] | None) -> None:
        self.path = str(path)
        self.lines = lines

    def error(self, index: int, message: str, column: str | None = None) -> DataError:
        if self.lines is not None and index < len(self.lines):
            return DataError(message, path=self.path, line=self.lines[index], column=column)
        return DataError(message, path=self.path, row=index + 1, column=column)


def _check_labels(
    frame: pd.DataFrame, column: str, allowed: range, loc: _Locator
) -> pd.Series:
    import pandas as pd

    series = frame[column]
    # JSON integers: nothing to judge per cell
    if series.dtype == object and set(map(type, series.array)) <= {int, type(None)}:
        stripped = series
        wrong_type = pd.Series(False, index=series.index)
    elif series.dtype == object or str(series.dtype).startswith(("str", "string")):
        stripped = series.map(lambda v: None if is_blank(v) else v)
        wrong_type = series.map(lambda v: not is_blank(v) and not_label_cell(v)).astype(bool)
    else:  # a typed numeric column (Parquet, a DataFrame): judged by value
        stripped = series
        wrong_type = pd.Series(False, index=series.index)
    numeric = pd.to_numeric(stripped, errors="coerce")
    present = stripped.notna()
    bad = present & (
        numeric.isna()
        | (numeric % 1 != 0)
        | (numeric < allowed.start)
        | (numeric >= allowed.stop)
        | wrong_type
    )
    if bool(bad.any()):
        rows = bad.to_numpy().nonzero()[0]
        index = int(rows[0])
        value = series.iloc[index]
        number = None if bool(wrong_type.iloc[index]) else as_int(value)
        more = f"; {rows.size - 1} more cells of {column!r} are not labels either" if rows.size > 1 else ""
        raise loc.error(index, label_problem(value, number, allowed) + more, column)
    return numeric.astype("Int8")


#: pandas' inferred kinds of an object column that hold no nested value (no per-cell scan needed).
_SCALAR_KINDS = {"string", "integer", "floating", "mixed-integer-float", "boolean", "empty", "decimal"}


def _check_scalars(frame: pd.DataFrame, loc: _Locator) -> None:
    """Every cell is a scalar (text, number, true/false or empty): nested values are refused."""
    import pandas as pd

    for column in frame.columns:
        if frame[column].dtype != object:
            continue
        if pd.api.types.infer_dtype(frame[column], skipna=True) in _SCALAR_KINDS:
            continue  # one C-level pass says every cell is a plain scalar
        nested = frame[column].map(lambda v: isinstance(v, (list, dict, tuple)))
        if bool(nested.any()):
            index = int(nested.to_numpy().nonzero()[0][0])
            value = frame[column].iloc[index]
            raise loc.error(
                index, f"the cell holds {kind_of(value)}; expected text, a number, true/false or empty "
                "(flatten it into columns or encode it as text)", str(column),
            )


def _check_ids(frame: pd.DataFrame, loc: _Locator, lines: list[int] | None) -> list[str] | pd.Series:
    import pandas as pd

    series = frame["id"]
    integers = pd.api.types.is_integer_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype)
    if integers and series.is_unique:
        return series.astype(str)  # a typed integer column (Parquet): no per-row checks needed
    missing = series.map(is_blank)
    if bool(missing.any()):
        index = int(missing.to_numpy().nonzero()[0][0])
        raise loc.error(index, "empty id; expected a unique non-empty string", "id")
    ids = []
    for index, value in enumerate(series.tolist()):
        if isinstance(value, str):
            ids.append(value)
        elif isinstance(value, numbers.Integral) and not isinstance(value, bool):
            ids.append(str(int(value)))
        else:
            raise loc.error(
                index, f"id {value!r} is {kind_of(value)}; expected text or an integer (quote it to make it text)", "id"
            )
    if len(set(ids)) != len(ids):
        seen: dict[str, int] = {}
        for index, text in enumerate(ids):
            if text in seen:
                first = seen[text]
                first_where = f"line {lines[first]}" if lines else f"row {first + 1}"
                raise loc.error(index, f"duplicate id {text!r} (first seen at {first_where})", "id")
            seen[text] = index
    return ids


def _check_texts(series: pd.Series, column: str, loc: _Locator) -> list[Any] | pd.Series:
    """A text column with blanks as None; the prompt may not be blank, and no cell may be a non-text."""
    import pandas as pd

    kind = pd.api.types.infer_dtype(series, skipna=True)
    if kind in ("string", "empty"):  # the common case, checked column-wise
        missing = series.isna().to_numpy()
        blank = missing | series.fillna("").str.strip().eq("").to_numpy()
        if column == "prompt" and blank.any():
            raise loc.error(int(blank.nonzero()[0][0]), "empty text; expected a non-empty prompt", column)
        return series.astype(object).where(~blank, None) if blank.any() else series
    texts = series.tolist()
    for index, value in enumerate(texts):
        if column == "prompt" and is_blank(value):
            raise loc.error(index, "empty text; expected a non-empty prompt", column)
        if not is_blank(value) and not isinstance(value, str):
            raise loc.error(index, f"expected text, got {type(value).__name__} {value!r}", column)
    return [None if is_blank(v) else v for v in texts]


def validate_pairs(
    frame: pd.DataFrame, *, path: Path | str = "<table>", lines: list[int] | None = None,
    require: tuple[str, ...] = REQUIRED,
) -> pd.DataFrame:
    """Check a raw table against the pairs-table contract and normalise its types.

    Returns a new frame with ``id`` as string, label columns as nullable ``Int8`` and the
    metadata columns untouched. Raises :class:`DataError` at the first problem. ``require``:
    the columns that must be there (a table of two label columns needs no ``prompt``).
    """
    loc = _Locator(Path(path), lines)
    missing = [c for c in require if c not in frame.columns]
    if missing:
        raise DataError(
            f"missing required column {missing[0]!r}; the table has columns "
            f"{sorted(map(str, frame.columns))}. Rename it or pass `mapping` {missing[0]}=<column>",
            path=str(path),
        )
    out = frame.copy()
    _check_scalars(out, loc)
    ids = _check_ids(out, loc, lines)
    out["id"] = ids
    for column in TEXT_COLUMNS:
        if column not in out.columns:
            continue
        out[column] = _check_texts(out[column], column, loc)
    for column in LABEL_COLUMNS:
        if column in out.columns:
            out[column] = _check_labels(out, column, range(4), loc)
    if "relevance" in out.columns:
        out["relevance"] = _check_labels(out, "relevance", range(1, 4), loc)
    return out.reset_index(drop=True)


def load_pairs(
    path: str | os.PathLike[str],
    *,
    mapping: Mapping[str, str] | None = None,
    fmt: str | None = None,
    require: tuple[str, ...] = REQUIRED,
    ids: Collection[str] | None = None,
) -> pd.DataFrame:
    """Read and validate a pairs table.

    Args:
        path: a ``.jsonl``, ``.csv`` or ``.parquet`` file.
        mapping: canonical column name -> column name in the file, for tables whose columns
            are named differently (``{"id": "uid", "prompt": "question"}``).
        fmt: force a format instead of inferring it from the file name.
        ids: only the rows with these ids (of a JSONL file, the others are not even parsed: a 1M-row run's
            labelled few hundred are read in a second). Without ``mapping``.

    Raises:
        DataError: naming the file, line (or row) and column of the first problem.
    """
    file = Path(path)
    kind = fmt or detect_format(file)
    lines: list[int] | None
    if ids is not None and mapping:
        raise DataError("`ids` reads rows by their `id` column: not with a `mapping`", path=str(file))
    if kind == "jsonl":
        frame, lines = read_jsonl_table(file, ids=ids)
    elif kind == "csv":
        frame, lines = read_csv_table(file)
    elif kind == "parquet":
        frame, lines = read_parquet_table(file), None
    else:
        raise DataError(f"unknown format {kind!r}; expected one of {list(FORMATS)}", path=str(file))
    if ids is not None and kind != "jsonl" and "id" in frame.columns:
        keep = frame["id"].astype(str).isin(set(ids)).to_numpy()
        frame = frame[keep].reset_index(drop=True)
        lines = [n for n, k in zip(lines, keep, strict=True) if k] if lines else lines
    out = validate_pairs(_renamed(frame, mapping, file), path=file, lines=lines, require=require)
    out.attrs["source"] = str(file)
    return out


def _renamed(frame: pd.DataFrame, mapping: Mapping[str, str] | None, file: Path) -> pd.DataFrame:
    if not mapping:
        return frame
    absent = [src for src in mapping.values() if src not in frame.columns]
    if absent:
        raise DataError(
            f"`mapping` names column {absent[0]!r}, which the table does not have; it has "
            f"{sorted(map(str, frame.columns))}",
            path=str(file),
        )
    return frame.rename(columns={src: canon for canon, src in mapping.items()})


CHUNK_ROWS = 5000

#: Column names that usually hold the response text, for a --map hint.
RESPONSE_ALIASES = ("completion", "output", "answer", "model_output", "generation", "reply")


def select_rows(
    frame: pd.DataFrame, *, limit: int | None = None, sample: int | None = None, seed: int = 0
) -> pd.DataFrame:
    """The first ``limit`` rows, or ``sample`` rows drawn at random (seeded); both ``None``: all.

    >>> import pandas as pd
    >>> select_rows(pd.DataFrame({"id": list("abcd")}), limit=2)["id"].tolist()
    ['a', 'b']
    """
    from ..core.errors import ConfigError

    if limit is not None and sample is not None:
        raise ConfigError("`limit` and `sample` exclude each other: take the first N rows, or N at random")
    for flag, value in (("`limit`", limit), ("`sample`", sample)):
        if value is not None and value < 1:
            raise ConfigError(f"{flag} {value}: expected an integer >= 1")
    if limit is not None:
        out = frame.head(limit)
    elif sample is not None:
        out = frame.sample(n=min(sample, len(frame)), random_state=seed).sort_index()
    else:
        return frame
    out = out.reset_index(drop=True)
    out.attrs.update(frame.attrs)
    return out


def response_hint(columns: list[str] | pd.Index) -> str | None:
    """A ``--map`` suggestion when a table has no ``response`` but a column that looks like one."""
    names = [str(c) for c in columns]
    if "response" in names:
        return None
    alias = next((c for c in names if c.lower() in RESPONSE_ALIASES), None)
    if alias is None:
        return None
    return f"the table has no 'response' column but has {alias!r}: pass `mapping` response={alias}"


def iter_pairs(
    path: str | os.PathLike[str],
    *,
    mapping: Mapping[str, str] | None = None,
    fmt: str | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> Iterator[pd.DataFrame]:
    """Read and validate a pairs table as a stream of validated frames.

    JSONL and CSV are streamed ``chunk_rows`` rows at a time, so memory does not grow with
    the file (ids are checked unique across chunks); Parquet comes as one frame. Errors are
    those of :func:`load_pairs`, raised when the chunk holding the problem is read.
    """
    file = Path(path)
    kind = fmt or detect_format(file)
    if kind == "jsonl":
        chunks = jsonl_chunks(file, chunk_rows)
    elif kind == "csv":
        chunks = csv_chunks(file, chunk_rows)
    else:
        yield load_pairs(file, mapping=mapping, fmt=fmt)
        return
    seen: dict[str, int] = {}
    for index, (raw, lines) in enumerate(chunks):
        if index == 0:
            raw = _renamed(raw, mapping, file)  # the mapping must name columns the file has
        elif mapping:
            raw = raw.rename(columns={src: canon for canon, src in mapping.items()})
        chunk = validate_pairs(raw, path=file, lines=lines)
        for position, ident in enumerate(chunk["id"].tolist()):
            first = seen.setdefault(ident, lines[position])
            if first != lines[position]:
                raise DataError(f"duplicate id {ident!r} (first seen at line {first})", path=str(file),
                                line=lines[position], column="id")
        chunk.attrs["source"] = str(file)
        yield chunk


def _jsonable(value: Any) -> Any:
    if is_blank(value):
        return None
    if hasattr(value, "item") and not isinstance(value, str):
        return value.item()
    return value


def write_pairs(frame: pd.DataFrame, path: str | os.PathLike[str], *, kind: str = "pairs") -> Path:
    """Write a table atomically: to a temporary file beside ``path``, then renamed.

    A failure part-way leaves no half-written file behind. ``kind`` is what the file is to
    :mod:`harness.core.ownership` (a table of pairs; an export of a run).
    """
    target = Path(path)
    form = detect_format(target)
    with atomic_path(target, kind=kind) as tmp:
        if form == "jsonl":
            with tmp.open("w", encoding="utf-8") as out:
                out.writelines(jsonl_lines(frame))
        elif form == "csv":
            frame.to_csv(tmp, index=False)
        else:
            frame.to_parquet(tmp, index=False)
    return target


def jsonl_lines(frame: pd.DataFrame) -> Iterator[str]:
    """The table as JSONL lines (missing values as null), the format :func:`write_pairs` writes."""
    columns = list(frame.columns)
    for row in frame.itertuples(index=False, name=None):
        record = {c: _jsonable(v) for c, v in zip(columns, row, strict=True)}
        yield json.dumps(record, ensure_ascii=False) + "\n"
