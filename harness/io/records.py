"""A pairs table as validated chunks of JSON lines: what a run folder stores, without pandas.

``grade`` needs each row only once, as the line it writes to ``input.jsonl``. A JSONL table is
therefore read and validated here in pure Python, chunk by chunk (memory does not grow with the
file, and ``harness grade`` never imports pandas for it); CSV and Parquet tables, and frames
given through the Python API, go through :func:`harness.io.pairs.validate_pairs` and come out as
the same chunks. Both paths apply the same rules in the same order, so they raise the same
located error for the same bad cell and write the same lines (a test holds them together).
"""

from __future__ import annotations

import json
import numbers
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.cells import as_int, is_blank, kind_of, label_problem, not_label_cell
from ..core.constants import LABEL_COLUMNS
from ..core.errors import DataError
from .readers import read_json_lines

if TYPE_CHECKING:
    import pandas as pd

#: Rows per chunk (as :func:`harness.io.pairs.iter_pairs` streams them).
CHUNK_ROWS = 5000
REQUIRED = ("id", "prompt")
TEXT_COLUMNS = ("prompt", "response")


@dataclass
class Chunk:
    """Validated rows as JSON lines, with what the run folder counts of them."""

    columns: list[str]
    lines: list[str]
    rows: int
    with_response: int


def chunks_of_frame(frame: pd.DataFrame) -> Iterator[Chunk]:
    """A validated frame (``validate_pairs``) as chunks of the lines ``write_pairs`` writes."""
    from .pairs import jsonl_lines

    responses = int(frame["response"].notna().sum()) if "response" in frame.columns else 0
    yield Chunk([str(c) for c in frame.columns], list(jsonl_lines(frame)), len(frame), responses)


def table_chunks(path: str | Path, *, mapping: Mapping[str, str] | None = None,
                 chunk_rows: int = CHUNK_ROWS) -> Iterator[Chunk]:
    """A pairs-table file as validated chunks: JSONL in pure Python, CSV and Parquet through pandas."""
    from .pairs import detect_format, iter_pairs

    file = Path(path)
    if detect_format(file) != "jsonl":
        for frame in iter_pairs(file, mapping=mapping, chunk_rows=chunk_rows):
            yield from chunks_of_frame(frame)
        return
    yield from _jsonl_record_chunks(file, mapping, chunk_rows)


def _jsonl_record_chunks(path: Path, mapping: Mapping[str, str] | None, chunk_rows: int) -> Iterator[Chunk]:
    seen: dict[str, int] = {}
    rows: list[dict[str, Any]] = []
    lines: list[int] = []
    first = True

    def flush() -> Chunk:
        nonlocal first
        chunk = _validated(rows, lines, path, mapping, check_mapping=first, seen=seen)
        first = False
        return chunk

    for number, row in read_json_lines(path):
        rows.append(row)
        lines.append(number)
        if len(rows) == chunk_rows:
            yield flush()
            rows, lines = [], []
    if rows:
        yield flush()
    elif first:
        raise DataError("the file holds no rows", path=str(path))


def _columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Rows as columns in order of first appearance, a missing key as None (as pandas builds them)."""
    names: dict[str, None] = {}
    for row in rows:
        for key in row:
            names.setdefault(key, None)
    return {name: [row.get(name) for row in rows] for name in names}


def _validated(rows: list[dict[str, Any]], lines: list[int], path: Path, mapping: Mapping[str, str] | None, *,
               check_mapping: bool, seen: dict[str, int]) -> Chunk:
    """One chunk checked against the pairs-table contract, in :func:`validate_pairs`'s order."""
    columns = _columns(rows)
    if mapping:
        absent = [src for src in mapping.values() if src not in columns]
        if check_mapping and absent:
            raise DataError(f"`mapping` names column {absent[0]!r}, which the table does not have; it has "
                            f"{sorted(map(str, columns))}", path=str(path))
        renames = {src: canon for canon, src in mapping.items()}
        columns = {renames.get(name, name): values for name, values in columns.items()}
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise DataError(f"missing required column {missing[0]!r}; the table has columns {sorted(map(str, columns))}. "
                        f"Rename it or pass `mapping` {missing[0]}=<column>", path=str(path))

    def error(index: int, message: str, column: str) -> DataError:
        return DataError(message, path=str(path), line=lines[index], column=column)

    for name, values in columns.items():
        for index, value in enumerate(values):
            if isinstance(value, (list, dict, tuple)):
                raise error(index, f"the cell holds {kind_of(value)}; expected text, a number, true/false or empty "
                                   "(flatten it into columns or encode it as text)", name)
    columns["id"] = _ids(columns["id"], lines, error)
    for name in TEXT_COLUMNS:
        if name in columns:
            columns[name] = _texts(columns[name], name, error)
    for name in (*LABEL_COLUMNS, "relevance"):
        if name in columns:
            columns[name] = _labels(columns[name], name, range(1, 4) if name == "relevance" else range(4), error)
    # unique across chunks too (checked after the chunk, as iter_pairs does)
    for index, text in enumerate(columns["id"]):
        first = seen.setdefault(text, lines[index])
        if first != lines[index]:
            raise error(index, f"duplicate id {text!r} (first seen at line {first})", "id")
    names = list(columns)
    out = [json.dumps({n: _plain(columns[n][i]) for n in names}, ensure_ascii=False) + "\n" for i in range(len(rows))]
    responses = sum(value is not None for value in columns["response"]) if "response" in columns else 0
    return Chunk(names, out, len(rows), responses)


def _ids(values: list[Any], lines: list[int], error: Any) -> list[str]:
    for index, value in enumerate(values):
        if is_blank(value):
            raise error(index, "empty id; expected a unique non-empty string", "id")
    ids = []
    for index, value in enumerate(values):
        if isinstance(value, str):
            ids.append(value)
        elif isinstance(value, numbers.Integral) and not isinstance(value, bool):
            ids.append(str(int(value)))
        else:
            expected = "expected text or an integer (quote it to make it text)"
            raise error(index, f"id {value!r} is {kind_of(value)}; {expected}", "id")
    local: dict[str, int] = {}
    for index, text in enumerate(ids):
        if text in local:
            raise error(index, f"duplicate id {text!r} (first seen at line {lines[local[text]]})", "id")
        local[text] = index
    return ids


def _texts(values: list[Any], column: str, error: Any) -> list[Any]:
    """Blank texts become None; the prompt may not be blank, and no cell may be a non-text."""
    for index, value in enumerate(values):
        if column == "prompt" and is_blank(value):
            raise error(index, "empty text; expected a non-empty prompt", column)
        if not is_blank(value) and not isinstance(value, str):
            raise error(index, f"expected text, got {type(value).__name__} {value!r}", column)
    return [None if is_blank(v) else v for v in values]


def _number(value: Any) -> int | None:
    """The whole number a present label cell holds (``2``, ``"2"``, ``2.0``, ``"2.0"``; None: not one)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (str, float)) or isinstance(value, numbers.Integral):
        return as_int(value)
    return None


def _labels(values: list[Any], column: str, allowed: range, error: Any) -> list[int | None]:
    out: list[int | None] = []
    for index, value in enumerate(values):
        if is_blank(value):
            out.append(None)
            continue
        wrong_type = not_label_cell(value)
        number = _number(value)
        if wrong_type or number is None or number not in allowed:
            others = sum(_bad_label(v, allowed) for v in values[index + 1:])
            more = f"; {others} more cells of {column!r} are not labels either" if others else ""
            raise error(index, label_problem(value, None if wrong_type else as_int(value), allowed) + more, column)
        out.append(number)
    return out


def _bad_label(value: Any, allowed: range) -> bool:
    if is_blank(value):
        return False
    number = _number(value)
    return not_label_cell(value) or number is None or number not in allowed


def _plain(value: Any) -> Any:
    """A cell as ``write_pairs`` writes it: blank as null, everything else as JSON gave it."""
    return None if is_blank(value) else value
