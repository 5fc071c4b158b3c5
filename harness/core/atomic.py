"""Atomic file writes: write beside the target, then rename, so no reader ever sees half a file."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def ensure_folder(folder: Path, *, flag: str | None = None) -> None:
    """Create ``folder`` (and its parents); a file in the way is a RunError, not a traceback."""
    from .errors import RunError

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise RunError(
            f"{(flag + ' ') if flag else ''}{folder}: expected a folder, but it is a file or lies below one; "
            "pick another path"
        ) from None
    except PermissionError as exc:
        raise RunError(f"{(flag + ' ') if flag else ''}{folder}: cannot create the folder: {exc.strerror}") from None


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it over ``target`` on success.

    On any exception the temporary file is removed and ``target`` is left as it was.
    """
    ensure_folder(target.parent)
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(handle)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
