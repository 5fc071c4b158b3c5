"""Which files in a folder harness wrote: a command replaces or deletes only those, never a user's.

A folder harness fills with files of its own choosing (a report's ``figures/``) carries a small record,
``.harness-owned.json``, of the names it wrote there. Before writing again, the folder is checked: a
symlink, or a file harness did not write, stops the command with exit code 2 naming them, before
anything is touched. Only recorded files are then replaced.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from .errors import ConfigError

RECORD = ".harness-owned.json"
#: How a report an earlier harness wrote (before the record existed) names its figures: ``figures/01-transitions.svg``.
_LEGACY = re.compile(r"figures/(\d{2,3}-[a-z0-9-]+\.(?:svg|pdf|png))")
#: What the first bytes of a document harness wrote hold (its title, or the generator mark).
SIGNATURES = {".md": (b"# harness ",), ".html": (b"<title>harness ", b'name="generator" content="harness"'),
              ".tex": (b"\\title{harness ",)}


def _legacy(folder: Path) -> set[str]:
    """Figures an earlier harness drew: the ones its own report beside ``folder`` links to (never a name alone)."""
    names: set[str] = set()
    for report in (folder.parent / "report.md", folder.parent / "report.html"):
        if report.is_file() and not report.is_symlink() and harness_made(report):
            names |= set(_LEGACY.findall(report.read_text(encoding="utf-8", errors="replace")))
    return names


def harness_made(path: Path) -> bool:
    """Whether a document carries harness's signature in its first bytes (a report or page harness wrote)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(8192)
    except OSError:
        return False
    return any(mark in head for mark in SIGNATURES.get(path.suffix, ()))


def check_own_file(path: Path, *, param: str = "out") -> None:
    """A document harness is about to write over: refused (exit 2, naming it) when it is a symlink or a file harness
    did not write."""
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise ConfigError(f"`{param}` {path}: is a symbolic link or a folder; harness writes its documents only as plain files")
    if path.exists() and not harness_made(path):
        raise ConfigError(f"`{param}` {path}: a file harness did not write is in the way; move it, or choose another "
                          "output folder (harness replaces only its own documents)")


def owned(folder: Path) -> set[str]:
    """The names harness recorded as its own in ``folder`` (none when there is no readable record)."""
    try:
        data = json.loads((folder / RECORD).read_text(encoding="utf-8"))
        return {str(n) for n in data.get("files", []) if isinstance(n, str) and "/" not in n and n not in ("", ".", "..")}
    except (OSError, ValueError, AttributeError):
        return set()


def check_replaceable(folder: Path, *, param: str = "out") -> set[str]:
    """The names in ``folder`` harness may replace; a ConfigError naming anything else there (or a symlink)."""
    if folder.is_symlink():
        raise ConfigError(f"`{param}` {folder}: is a symbolic link; harness writes only into real folders it can own "
                          "(remove the link or choose another output folder)")
    if not folder.exists():
        return set()
    if not folder.is_dir():
        raise ConfigError(f"`{param}` {folder}: expected a folder, but it is a file; harness will not replace it")
    mine = owned(folder) if (folder / RECORD).exists() else _legacy(folder)
    present = [p for p in folder.iterdir() if p.name != RECORD]
    foreign = sorted(p.name for p in present if p.is_symlink() or not p.is_file() or p.name not in mine)
    if foreign:
        listed = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise ConfigError(f"`{param}` {folder}: holds files harness did not write ({listed}); harness replaces only its "
                          "own files there: move them, or choose another output folder")
    return {p.name for p in present}


def replace_owned(folder: Path, staging: Path) -> list[str]:
    """Move every file of ``staging`` into ``folder``, removing only the files harness wrote there before, and record them.

    Call :func:`check_replaceable` first (before any work); this checks again.
    """
    old = check_replaceable(folder)
    folder.mkdir(parents=True, exist_ok=True)
    new = sorted(p.name for p in staging.iterdir() if p.is_file())
    for name in old - set(new):
        (folder / name).unlink(missing_ok=True)
    for name in new:
        (staging / name).replace(folder / name)
    (folder / RECORD).write_text(json.dumps({"files": new}, indent=1), encoding="utf-8")
    return new
