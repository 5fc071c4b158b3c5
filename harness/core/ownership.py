"""Which files harness wrote: the marks behind the one rule every writer follows (:mod:`harness.core.claims`).

Every file harness writes goes through :func:`harness.core.atomic.atomic_path`, which records it in its folder's
``.harness-owned.json``: the name, what kind of file it is (a result, a run's manifest, a schema, a report …) and a
digest of its bytes. A file is harness's to replace when its record says so and its bytes are still the ones harness
wrote (a file edited by hand since, a picks table with labels filled in, is the user's), and the new file is of the
same kind (``harness schema -o RUN`` never writes a schema over a run's manifest). Files an earlier harness wrote before
records existed are recognised by what they hold (:func:`_sniffed`); a run folder's own files are harness's when its
manifest is. Clearing a folder (:func:`clear`) removes only what harness wrote.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from .errors import ConfigError

RECORD = ".harness-owned.json"
#: A run folder's own files: harness's whenever the folder's manifest is.
RUN_FILES = ("input.jsonl", "labels.jsonl", "manifest.json", "batches.json", "superseded.jsonl", ".lock")
#: What the first bytes of a document harness wrote hold (its title, or the generator mark).
SIGNATURES = {".md": (b"# harness ",), ".html": (b"<title>harness ", b'name="generator" content="harness"'),
              ".tex": (b"\\title{harness ",)}
#: Files larger than this are digested by their size, head and tail (a hand edit changes at least one of them).
_WHOLE = 64 * 2**20
_PART = 4 * 2**20
#: How an earlier harness named the figures of its report: ``figures/01-transitions.svg``.
_LEGACY_FIGURE = re.compile(r"figures/(\d{2,3}-[a-z0-9-]+\.(?:svg|pdf|png))")
#: How an earlier harness named the tables beside a result: ``confusion_prompt_hate.csv``, ``analysis_categories.csv``.
_LEGACY_TABLE = re.compile(r"(confusion|analysis)_[a-z0-9_]+\.csv")


# ---------------------------------------------------------------------------------------------------------- marks
def digest(path: Path) -> str:
    """A digest of a file's bytes (whole up to 64 MiB; beyond, its size, first and last 4 MiB)."""
    h = hashlib.sha256()
    size = path.stat().st_size
    with path.open("rb") as handle:
        if size <= _WHOLE:
            for block in iter(lambda: handle.read(2**20), b""):
                h.update(block)
        else:
            h.update(str(size).encode())
            h.update(handle.read(_PART))
            handle.seek(size - _PART)
            h.update(handle.read(_PART))
    return h.hexdigest()


def _entries(folder: Path) -> dict[str, dict[str, object]]:
    """The record's entries by name (an earlier record's bare names carry no kind or digest)."""
    try:
        data = json.loads((folder / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    given = data.get("entries")
    entries: dict[str, object] = given if isinstance(given, dict) else {}
    found: dict[str, dict[str, object]] = {n: {} for n in data.get("files", []) if _plain(n)}
    found.update({n: e for n, e in entries.items() if _plain(n) and isinstance(e, dict)})
    return found


def _plain(name: object) -> bool:
    return isinstance(name, str) and "/" not in name and name not in ("", ".", "..", RECORD)


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Hold the record's lock (two writers in one folder never lose each other's marks)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    handle = os.open(folder, os.O_RDONLY)  # the folder itself: the record is replaced, never written in place
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)


def _store(folder: Path, entries: dict[str, dict[str, object]]) -> None:
    """Replace the record whole (a kill mid-write leaves the old record and a temporary, never half a record)."""
    text = json.dumps({"files": sorted(entries), "entries": {n: entries[n] for n in sorted(entries)}}, indent=1)
    tmp = folder / f"{RECORD}.{os.getpid()}.tmp"
    try:
        tmp.write_text(text + "\n", encoding="utf-8")
        os.replace(tmp, folder / RECORD)
    finally:
        tmp.unlink(missing_ok=True)


def _record_file(name: str) -> bool:
    """The record, or a temporary of it a killed writer left."""
    return name == RECORD or (name.startswith(f"{RECORD}.") and name.endswith(".tmp"))


def mark(path: Path, kind: str, *, coming: Path | None = None) -> None:
    """Record ``path`` as a file harness wrote, of ``kind``, with the digest of its bytes as they are now.

    ``coming``: the file about to be renamed over ``path``. Its digest is recorded beside the present one first, so a
    process killed between the rename and the record still finds its file its own, whichever of the two is there.
    """
    folder = path.parent
    with _locked(folder):
        entries = _entries(folder)
        entry: dict[str, object] = {"kind": kind, "digest": digest(coming or path)}
        if coming is not None and path.is_file() and not path.is_symlink():
            entry["previous"] = digest(path)
        entries[path.name] = entry
        _store(folder, entries)


def _matches(entry: dict[str, object], path: Path) -> bool:
    found = digest(path)
    return found == entry.get("digest") or found == entry.get("previous")


def unmark(folder: Path, names: Iterable[str]) -> None:
    """Drop these names from the folder's record (files harness removed)."""
    if not (folder / RECORD).exists():
        return
    with _locked(folder):
        entries = _entries(folder)
        for name in names:
            entries.pop(name, None)
        _store(folder, entries)


def _sniffed(path: Path) -> str | None:
    """What an unrecorded file is, when an earlier harness plainly wrote it; ``None`` otherwise."""
    try:
        with path.open("rb") as handle:
            head = handle.read(8192)
    except OSError:
        return None
    if any(mark in head for mark in SIGNATURES.get(path.suffix, ())):
        return "document"
    if path.suffix == ".json" and head.lstrip().startswith(b"{"):  # read whole: a schema names itself at its end
        try:
            data = json.loads(path.read_text(encoding="utf-8")) if path.stat().st_size < 2**24 else None
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict):
            return None
        if "$schema" in data:
            return "schema"
        if "steps" in data and "harness_version" in data:
            return "study"
        if "harness_version" in data and "counts" in data and "model" in data:
            return "manifest"
        if isinstance(data.get("provenance"), dict) and "harness_version" in data["provenance"]:
            return "result"
    return None


def _legacy(path: Path) -> str | None:
    """An earlier harness's file by where it lies: a figure its report links to, a table beside its result, an output
    its study recorded, the exemplar files of its shot search, its demo's marker."""
    folder = path.parent
    if path.name == ".harness-demo" and path.read_bytes()[:21] == b"made by harness demo;":
        return "marker"
    if path.suffix == ".jsonl" and (
        (folder.name == "shots" and _sniffed(folder.parent / "shot_search.json") == "result")
        or (path.name == "human_subset.jsonl" and _sniffed(folder / "analysis.json"))
    ):
        return "legacy"
    for study in (folder / "study.json", folder.parent / "study.json"):
        if study.is_file() and _sniffed(study) == "study":
            steps = json.loads(study.read_text(encoding="utf-8")).get("steps")
            listed = {str(o) for step in (steps.values() if isinstance(steps, dict) else ()) if isinstance(step, dict)
                      for o in step.get("outputs", []) if isinstance(o, str)}
            if str(path.absolute()) in listed or str(path.resolve()) in listed:
                return "legacy"
    if folder.name == "figures" and path.suffix in (".svg", ".pdf", ".png"):
        for report in (folder.parent / "report.md", folder.parent / "report.html"):
            if report.is_file() and _sniffed(report) == "document" and path.name in set(
                    _LEGACY_FIGURE.findall(report.read_text(encoding="utf-8", errors="replace"))):
                return "figure"
    if _LEGACY_TABLE.fullmatch(path.name) and any(
            _sniffed(folder / name) == "result" for name in ("calibration.json", "analysis.json")):
        return "table"
    return None


def run_folder(folder: Path) -> bool:
    """Whether ``folder`` holds a run harness graded (its manifest is harness's)."""
    manifest = folder / "manifest.json"
    if not manifest.is_file() or manifest.is_symlink():
        return False
    entry = _entries(folder).get("manifest.json")
    if entry is not None and "digest" in entry:  # harness's state file: recorded as its own, whatever it says now
        return entry.get("kind") == "manifest"
    return _sniffed(manifest) == "manifest"


def kind_of(path: Path) -> str | None:
    """The kind of file harness wrote at ``path``, or ``None`` when harness did not write it (or it changed since)."""
    if path.is_symlink() or not path.is_file():
        return None
    if path.name in RUN_FILES and run_folder(path.parent):
        # appended to as the run goes, its manifest vouching for it; the manifest itself recorded as harness's
        return "manifest" if path.name == "manifest.json" else "run"
    entry = _entries(path.parent).get(path.name)
    if entry is not None:
        if "digest" not in entry:  # an earlier record: names only
            return str(entry.get("kind") or "figure")
        if _matches(entry, path):
            return str(entry.get("kind"))
        # changed since: the user's now, but for what holds nothing of a user's (a schema harness publishes)
        return "schema" if entry.get("kind") == "schema" and _sniffed(path) == "schema" else None
    return _sniffed(path) or _legacy(path)


def owned(path: Path, kind: str) -> bool:
    """Whether harness may replace ``path`` with a file of ``kind``: it wrote it, unchanged, of the same kind."""
    found = kind_of(path)
    return found is not None and (found in (kind, "legacy") or (found == "run" and kind.startswith("run")))


def harness_made(path: Path) -> bool:
    """Whether harness wrote ``path`` (and it is unchanged since)."""
    return kind_of(path) is not None


# ---------------------------------------------------------------------------------------------------------- folders
def foreign(folder: Path, *, deep: bool = True) -> list[Path]:
    """The entries of ``folder`` harness did not write (symbolic links included); a subfolder is looked into."""
    found: list[Path] = []
    if not folder.is_dir() or folder.is_symlink():
        return [folder] if folder.exists() or folder.is_symlink() else []
    for entry in sorted(folder.iterdir()):
        if _record_file(entry.name):
            continue
        if entry.is_symlink():
            found.append(entry)
        elif entry.is_dir():
            found += foreign(entry) if deep else [entry]
        elif kind_of(entry) is None:
            found.append(entry)
    return found


def check_clearable(folder: Path, *, param: str, keep: Sequence[str] = ()) -> None:
    """Refuse (naming them) when ``folder`` holds anything harness did not write, outside the names in ``keep``."""
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise ConfigError(f"{param} {folder}: expected a folder, but it is a file or a symbolic link")
    if not folder.exists():
        return
    strays = [p for p in foreign(folder) if p.relative_to(folder).parts[0] not in keep]
    if strays:
        listed = ", ".join(str(p.relative_to(folder)) for p in strays[:5])
        more = f" and {len(strays) - 5} more" if len(strays) > 5 else ""
        raise ConfigError(f"{param} {folder}: holds files harness did not write ({listed}{more}); harness clears only "
                          "its own files: move them, or choose another folder")


def clear(folder: Path, *, keep: Sequence[str] = ()) -> None:
    """Remove what harness wrote in ``folder`` (and below), then every folder left empty; the names in ``keep``
    stay. Call :func:`check_clearable` first: a file harness did not write is left where it is."""
    if not folder.is_dir() or folder.is_symlink():
        return
    for entry in sorted(folder.iterdir()):
        if entry.name in keep or entry.is_symlink():
            continue
        if _record_file(entry.name):
            if entry.name != RECORD:
                entry.unlink(missing_ok=True)
            continue
        if entry.is_dir():
            clear(entry)
            with contextlib.suppress(OSError):
                entry.rmdir()
        elif kind_of(entry) is not None:
            entry.unlink()
    unmark(folder, [n for n in _entries(folder) if not (folder / n).exists()])
    if not _entries(folder):
        (folder / RECORD).unlink(missing_ok=True)


def remove_run_folder(folder: Path) -> None:
    """Remove a run folder a session made and left without a manifest: its own files, then the folder if empty."""
    for name in (*RUN_FILES, RECORD):
        (folder / name).unlink(missing_ok=True)
    for stale in folder.glob(f"{RECORD}.*.tmp"):
        stale.unlink(missing_ok=True)
    for stale in folder.glob(".*.*"):  # atomic-write temporaries of the run's own files
        if stale.name.split(".")[1] in {n.split(".")[0] for n in RUN_FILES}:
            stale.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        folder.rmdir()


# ---------------------------------------------------------------------------------------------------------- figures
def check_replaceable(folder: Path, *, param: str = "out") -> set[str]:
    """The names in ``folder`` harness may replace; a ConfigError naming anything else there (or a symlink)."""
    if folder.is_symlink():
        raise ConfigError(f"`{param}` {folder}: is a symbolic link; harness writes only into real folders it can own "
                          "(remove the link or choose another output folder)")
    if not folder.exists():
        return set()
    if not folder.is_dir():
        raise ConfigError(f"`{param}` {folder}: expected a folder, but it is a file; harness will not replace it")
    check_clearable(folder, param=f"`{param}`")
    return {p.name for p in folder.iterdir() if not _record_file(p.name)}


def replace_owned(folder: Path, staging: Path, kind: str = "figure") -> list[str]:
    """Move every file of ``staging`` into ``folder``, removing only the files harness wrote there before, and mark
    them. Call :func:`check_replaceable` first (before any work); this checks again."""
    old = check_replaceable(folder)
    folder.mkdir(parents=True, exist_ok=True)
    new = sorted(p.name for p in staging.iterdir() if p.is_file())
    for name in old - set(new):
        (folder / name).unlink(missing_ok=True)
    for name in new:
        (staging / name).replace(folder / name)
    with _locked(folder):
        _store(folder, {name: {"kind": kind, "digest": digest(folder / name)} for name in new})
    return new
