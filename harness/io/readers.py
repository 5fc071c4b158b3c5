"""Reading table files, with every problem a located :class:`DataError`.

Lines are decoded as UTF-8 (a BOM dropped, ``.gz`` opened) and numbered; JSONL objects keep
their JSON types; CSV is parsed by pandas (whole or in chunks) with each row's physical line
known; Parquet is read whole. Validation of what the tables hold lives in :mod:`harness.io.pairs`.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ..core.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

    from ..results.base import Result

R = TypeVar("R", bound="Result")


def read_text(path: Path) -> str:
    """A data file's whole text (gunzipped for ``.gz``), with the errors of :func:`read_lines`."""
    return "".join(f"{line}\n" for _, line in read_lines(path))


def read_lines(path: Path) -> Iterator[tuple[int, str]]:
    """A data file's lines with their numbers, streamed (gunzipped for ``.gz``, BOM dropped).

    Missing, unreadable or non-gzip files and undecodable bytes are DataErrors naming the
    file and, for bytes, the line and character.
    """
    import gzip

    try:
        handle = gzip.open(path, "rb") if path.name.endswith(".gz") else path.open("rb")
    except FileNotFoundError:
        raise DataError("file not found", path=str(path)) from None
    except IsADirectoryError:
        raise DataError("is a directory; expected a table file", path=str(path)) from None
    except OSError as exc:
        raise DataError(f"cannot read file: {exc.strerror}", path=str(path)) from None
    with handle:
        number = 0
        try:
            for number, raw in enumerate(handle, start=1):
                try:
                    line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
                except UnicodeDecodeError as exc:
                    raise DataError(
                        f"byte 0x{raw[exc.start]:02x} at character {exc.start + 1} is not valid UTF-8; "
                        "expected a UTF-8 encoded file (re-save it as UTF-8)",
                        path=str(path),
                        line=number,
                    ) from None
                yield number, line.removesuffix("\n")
        except (OSError, EOFError) as exc:
            message = f"not a valid gzip file: {exc}" if path.name.endswith(".gz") else f"cannot read file: {exc}"
            raise DataError(message, path=str(path), line=number + 1) from None


_ID_PREFIX = '{"id": "'
_ID_PREFIX_BYTES = _ID_PREFIX.encode()


def simple_id(line: str | bytes) -> str | None:
    """The ``id`` of a JSONL line that harness wrote (it starts ``{"id": "…"``, no escape in the id), read off its first
    characters without parsing or decoding the line; None when the line is not that simple (the caller parses it).

    >>> simple_id('{"id": "p1", "target": "prompt"}'), simple_id(b'{"id": "p1"}')
    ('p1', 'p1')
    >>> simple_id('{"target": "x", "id": "p1"}') is None
    True
    """
    if isinstance(line, bytes):
        if not line.startswith(_ID_PREFIX_BYTES):
            return None
        end = line.find(b'"', len(_ID_PREFIX_BYTES))
        raw = line[len(_ID_PREFIX_BYTES):end]
        return None if end < 0 or b"\\" in raw else raw.decode("utf-8", errors="replace")
    if not line.startswith(_ID_PREFIX):
        return None
    end = line.find('"', len(_ID_PREFIX))
    text = line[len(_ID_PREFIX):end]
    return None if end < 0 or "\\" in text else text


def read_json_lines(path: Path, *, ids: Collection[str] | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """The JSON objects of a JSONL file with their line numbers, streamed; blank lines skipped. ``ids``: only the
    objects whose ``id`` is one of them (the others are not parsed when their id can be read off the line)."""
    for number, line in read_lines(path):
        if not line.strip():
            continue
        if ids is not None:
            known = simple_id(line)
            if known is not None and known not in ids:
                continue
        obj = parse_json_line(line, path=path, line=number)
        if ids is not None and str(obj.get("id")) not in ids:
            continue
        if not isinstance(obj, dict):
            raise DataError(
                f"expected a JSON object, got {type(obj).__name__}", path=str(path), line=number
            )
        yield number, obj


def parse_json_line(text: str, *, path: Path | str, line: int) -> Any:
    """One JSON value, or a located DataError: malformed, nested too deeply, or holding a lone
    surrogate escape (``"\\ud800"``: valid JSON, but no valid text can carry it)."""
    try:
        value = json.loads(text)
        if "\\u" in text:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
    except json.JSONDecodeError as exc:
        raise DataError(
            f"malformed JSON at character {exc.colno}: {exc.msg}; expected one JSON object per line",
            path=str(path), line=line,
        ) from None
    except UnicodeEncodeError as exc:
        raise DataError(
            f"a \\u escape encodes a lone surrogate ({exc.object[exc.start:exc.end]!a}); expected valid Unicode text",
            path=str(path), line=line,
        ) from None
    except RecursionError:
        raise DataError(
            "JSON nested too deeply; expected a flat object of columns", path=str(path), line=line
        ) from None
    return value


def jsonl_chunks(
    path: Path, chunk_rows: int | None, *, ids: Collection[str] | None = None
) -> Iterator[tuple[pd.DataFrame, list[int]]]:
    """Raw JSONL rows in frames of up to ``chunk_rows`` (all in one when ``None``); ``ids``: only those rows.

    Rows are accumulated column by column (a dict per row would cost far more memory).
    """

    columns: dict[str, list[Any]] = {}
    rows = total = 0
    line_numbers: list[int] = []
    for number, obj in read_json_lines(path, ids=ids):
        for key, value in obj.items():
            column = columns.get(key)
            if column is None:
                column = columns[key] = [None] * rows
            column.append(value)
        rows += 1
        for column in columns.values():
            if len(column) < rows:
                column.append(None)
        line_numbers.append(number)
        if chunk_rows is not None and rows == chunk_rows:
            yield _object_frame(columns), line_numbers
            total += rows
            columns, rows, line_numbers = {}, 0, []
    if rows:
        yield _object_frame(columns), line_numbers
    elif not total:
        message = "the file holds no rows"
        if ids is not None:
            message = f"none of the {len(ids):,} ids asked for is a row of the file"
        raise DataError(message, path=str(path))


def _object_frame(columns: dict[str, list[Any]]) -> pd.DataFrame:
    """Columns kept as the JSON gave them (object dtype): ``1`` and ``1.0`` stay apart, so the
    type rules of :func:`validate_pairs` see what the file said."""
    import pandas as pd

    return pd.DataFrame({key: pd.Series(values, dtype=object) for key, values in columns.items()})


def read_jsonl_table(path: Path, *, ids: Collection[str] | None = None) -> tuple[pd.DataFrame, list[int]]:
    if ids is not None and not ids:
        raise DataError("no row asked for (an empty set of ids)", path=str(path))
    return next(jsonl_chunks(path, None, ids=ids))


def read_csv_table(path: Path) -> tuple[pd.DataFrame, list[int]]:
    import pandas as pd

    text = read_text(path)
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise DataError("the file holds no rows", path=str(path)) from None
    except (pd.errors.ParserError, csv.Error) as exc:
        raise _csv_error(path, exc) from None
    if frame.empty:
        raise DataError("the file holds no rows", path=str(path))
    return frame.replace({"": None}), list(_csv_row_starts(path))


class _LineStream(io.TextIOBase):
    """A read-only text stream over :func:`read_lines`, so pandas can parse a file in chunks
    while undecodable bytes still raise our located error."""

    def __init__(self, path: Path) -> None:
        self._lines = (line + "\n" for _, line in read_lines(path))
        self._buffer = ""

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> str:
        if size is None or size < 0:
            out, self._buffer = self._buffer + "".join(self._lines), ""
            return out
        parts = [self._buffer]
        have = len(self._buffer)
        for line in self._lines:
            parts.append(line)
            have += len(line)
            if have >= size:
                break
        text = "".join(parts)
        out, self._buffer = text[:size], text[size:]
        return out


def csv_chunks(path: Path, chunk_rows: int) -> Iterator[tuple[pd.DataFrame, list[int]]]:
    """CSV rows in frames of up to ``chunk_rows``, parsed by pandas as :func:`read_csv_table` does,
    with each row's starting line from a second streamed pass (:func:`_csv_row_starts`)."""
    import itertools

    import pandas as pd

    starts = _csv_row_starts(path)
    total = 0
    try:
        reader = pd.read_csv(_LineStream(path), dtype=str, keep_default_na=False, chunksize=chunk_rows)
        for frame in reader:
            total += len(frame)
            yield frame.replace({"": None}), list(itertools.islice(starts, len(frame)))
    except pd.errors.EmptyDataError:
        raise DataError("the file holds no rows", path=str(path)) from None
    except (pd.errors.ParserError, csv.Error) as exc:
        raise _csv_error(path, exc) from None
    if not total:
        raise DataError("the file holds no rows", path=str(path))


def _csv_error(path: Path, exc: Exception) -> DataError:
    """A located error for a CSV the parser rejected; an unclosed quote names the line it opens on."""
    opened = _unclosed_quote_line(path)
    if opened is not None:
        return DataError(
            'a quoted field opens here and is never closed; expected a closing "', path=str(path), line=opened
        )
    return DataError(f"malformed CSV: {exc}", path=str(path))


def _unclosed_quote_line(path: Path) -> int | None:
    """The line on which the last still-open quoted field starts, if the file ends inside one."""
    inside, opened = False, None
    for number, line in read_lines(path):
        for char in line:
            if char == '"':
                inside = not inside  # an escaped "" toggles twice
                if inside:
                    opened = number
    return opened if inside else None


def _csv_row_starts(path: Path) -> Iterator[int]:
    """The physical line on which each CSV data row starts, streamed (quoted newlines respected).

    Blank and whitespace-only lines are skipped, as pandas skips them, so the numbers stay
    aligned with the frame's rows.
    """
    import gzip

    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8-sig", newline="") as handle:  # type: ignore[operator]
            reader = csv.reader(handle)
            previous_end = 0
            header_seen = False
            for row in reader:
                blank = not row or (len(row) == 1 and not row[0].strip())
                if header_seen and not blank:
                    yield previous_end + 1
                header_seen = header_seen or not blank
                previous_end = reader.line_num
    except csv.Error as exc:
        raise _csv_error(path, exc) from None
    except (UnicodeDecodeError, OSError, EOFError):
        read_text(path)  # raises the located error
        raise


def read_parquet_table(path: Path) -> pd.DataFrame:
    import pandas as pd

    if not path.exists():
        raise DataError("file not found", path=str(path))
    import pyarrow.parquet as pq
    import pyarrow.types as kinds

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises many unrelated types
        raise DataError(f"cannot read Parquet: {exc}", path=str(path)) from None
    nested = (kinds.is_list, kinds.is_large_list, kinds.is_fixed_size_list, kinds.is_struct, kinds.is_map)
    for index, field in enumerate(table.schema):
        if kinds.is_dictionary(field.type):  # a dictionary-encoded column is read as its plain values
            table = table.set_column(index, field.name, table.column(index).cast(field.type.value_type))
        elif any(check(field.type) for check in nested):
            raise DataError(f"column {field.name!r} holds {field.type} cells (lists or records); "
                            "expected one plain value per cell", path=str(path))
    frame = table.to_pandas()
    for column in frame.columns:
        if pd.api.types.is_bool_dtype(frame[column].dtype):  # True is not a label: refused as JSONL's true is
            frame[column] = frame[column].astype(object)
    return pd.DataFrame(frame)


def read_json_object(path: Path, *, error: type[Exception] = DataError, what: str = "JSON file") -> dict[str, Any]:
    """A whole JSON file that must hold one object; every failure is ``error`` naming the file.

    ``FileNotFoundError`` is left to the caller, which knows what a missing file means.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise error(f"{path}: unreadable {what}: {exc or 'nested too deeply'}") from None
    if not isinstance(data, dict):
        raise error(f"{path}: the {what} must be a JSON object")
    return data


def read_result(path: Path, kind: type[R]) -> R:
    """A result file (calibration.json, analysis.json …) read strictly as its typed result; a problem is a
    :class:`~harness.core.errors.RunError` naming the file (and the field's path)."""
    from ..core.errors import RunError

    return kind.from_json(read_json_object(path, error=RunError), name=path.name)
