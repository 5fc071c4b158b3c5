"""Atomic file writes: write beside the target, then rename, so no reader ever sees half a file.

JSON results and CSV tables are written here too, CSV cells a spreadsheet would run as a formula
neutralised on the way.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


def ensure_folder(folder: Path, *, param: str | None = None) -> None:
    """Create ``folder`` (and its parents); a file in the way is a RunError, not a traceback."""
    from .errors import RunError

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise RunError(
            f"{f'`{param}` ' if param else ''}{folder}: expected a folder, but it is a file or lies below one; "
            "pick another path"
        ) from None
    except PermissionError as exc:
        raise RunError(f"{f'`{param}` ' if param else ''}{folder}: cannot create the folder: {exc.strerror}") from None


def umask() -> int:
    """The process's file-creation mask (read without changing it where /proc tells it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: the one-instant swap (the value is put back at once)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(target: Path, *, private: bool = False, kind: str = "file") -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it over ``target`` on success, and mark it as harness's.

    The file gets the mode a plain ``open`` would give it (0644 under umask 022), so colleagues on a shared machine can
    read a report; ``private`` keeps it 0600 (a file that could hold secrets). On any exception the temporary file is
    removed and ``target`` is left as it was. ``kind`` says what the file is (:mod:`harness.core.ownership`): a file
    already at ``target`` is replaced only when harness wrote it, unchanged since, as the same kind; anything else
    stops the write before a byte is written.
    """
    from .claims import check_write
    from .ownership import mark

    check_write(target, kind)
    ensure_folder(target.parent)
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(handle)
    tmp = Path(name)
    try:
        yield tmp
        if not private:
            os.chmod(tmp, 0o666 & ~umask())
        mark(target, kind, coming=tmp)  # both digests recorded: a kill between the two steps leaves a file of its own
        os.replace(tmp, target)
        mark(target, kind)
    except OSError as exc:
        raise named(exc, target) from exc
    finally:
        tmp.unlink(missing_ok=True)


def named(exc: OSError, path: Path) -> OSError:
    """The fault with the file it happened to (a write through a handle names none), for the message."""
    if exc.filename is not None or exc.errno is None:
        return exc
    return type(exc)(exc.errno, exc.strerror, str(path))


def write_json_atomic(path: Path, data: Any, *, kind: str = "json") -> None:
    """Write JSON to ``path`` through a temporary file and a rename."""
    with atomic_path(path, kind=kind) as tmp, tmp.open("w", encoding="utf-8") as out:
        json.dump(data, out, indent=2, ensure_ascii=False, default=str)
        out.write("\n")


def rewrite_in_place(path: Path, data: Any, *, kind: str) -> None:
    """Write JSON over an existing file of harness's in place (truncate, write, sync): the last resort when no new file
    can be made (a full disk), since the old file's blocks are freed first. Not atomic; used only where leaving the old
    content would mislead more (a manifest that still says "running")."""
    from .claims import check_write
    from .ownership import mark

    check_write(path, kind)
    text = (json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n").encode("utf-8")
    with path.open("r+b") as handle:
        handle.truncate(0)
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    mark(path, kind)


#: First characters that make a spreadsheet read a text cell as a formula (OWASP's list).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> Any:
    """A text cell a spreadsheet would evaluate gets a leading ``'``; everything else is kept.

    >>> spreadsheet_safe("=HYPERLINK(1)"), spreadsheet_safe(-1.5), spreadsheet_safe("model-a")
    ("'=HYPERLINK(1)", -1.5, 'model-a')
    """
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def write_csv_atomic(path: Path, frame: pd.DataFrame, *, index: bool = False, kind: str = "table") -> Path:
    """Write a result table as CSV through a temporary file and a rename.

    Text cells (and labels of the index and columns) that a spreadsheet would run as a formula
    are neutralised; numbers stay numbers.
    """
    safe = frame.copy()
    for column in safe.columns:
        if safe[column].dtype == object or str(safe[column].dtype).startswith(("str", "string")):
            safe[column] = safe[column].map(spreadsheet_safe)
    safe.columns = [spreadsheet_safe(c) for c in safe.columns]
    safe.index = [spreadsheet_safe(v) for v in safe.index]
    with atomic_path(path, kind=kind) as tmp:
        safe.to_csv(tmp, index=index)
    return path
