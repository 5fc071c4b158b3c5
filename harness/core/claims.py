"""Claims: before any work, a command names what it will write and what it reads; every conflict is refused at once.

harness creates new files, or replaces files it marked as its own (:mod:`harness.core.ownership`); it never writes over
an input of the same command or study. :func:`claim` refuses, naming the file and the flag or key that chose it: an
output that is an input (a run folder's own files included), two outputs at one path, a user's file (or a symbolic
link, or a folder) in the way, a file name given where a folder is written, a name too long, a place that is not a
file system, a parent that is not writable. :func:`check_write` is the same check at write time
(:func:`harness.core.atomic.atomic_path`), so a writer that forgot to claim still cannot replace a user's file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError
from .ownership import RUN_FILES, kind_of, owned, run_folder

#: Names that say "a file", refused where a command writes a folder of several files.
FILE_SUFFIXES = (".json", ".jsonl", ".csv", ".parquet", ".html", ".md", ".tex", ".txt", ".toml", ".svg", ".pdf", ".png")
#: Places that look like folders but are not files on a disk.
PSEUDO = ("/proc", "/sys", "/dev")
#: Longest file name (bytes) most file systems take.
NAME_MAX = 255


@dataclass(frozen=True)
class Output:
    """A path a command will write.

    Attributes:
        path: the file, or the folder.
        param: what chose it, as the user names it: a parameter in backticks (``\\`out\\```, shown as ``--out`` on the
            command line) or a study key (``[select] out``).
        kind: what harness writes there (see the module docstring); only a file of the same kind is replaced.
        folder: a folder of several files (a file name there is refused).
        names: the files written into the folder, each with its kind, when known before the work.
        run: a run folder: it may hold a run harness graded (its manifest says), never a user's files of those names.
    """

    path: Path
    param: str = "`out`"
    kind: str = ""
    folder: bool = False
    names: tuple[tuple[str, str], ...] = ()
    run: bool = False


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def _check_place(path: Path, param: str, *, shown: Path | None = None) -> None:
    """A path that can hold a file: a real file system, names not too long, no file where a folder must be."""
    absolute = path.absolute()
    path = shown or path
    if any(str(absolute) == p or str(absolute).startswith(p + "/") for p in PSEUDO):
        raise ConfigError(f"{param} {path}: lies under /{absolute.parts[1]}, which is not a place for files; choose a "
                          "folder on a disk")
    for part in absolute.parts[1:]:
        if len(part.encode("utf-8", "surrogateescape")) > NAME_MAX:
            raise ConfigError(f"{param} {path}: the name {part[:40]}… is {len(part.encode())} bytes; file systems take "
                              f"at most {NAME_MAX}: choose a shorter name")
    for parent in absolute.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"{param} {path}: {parent} is a file, so nothing can be written below it; choose "
                                  "another path")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise ConfigError(f"{param} {path}: {parent} is not writable (read-only, or not yours); choose a "
                                  "folder you can write to")
            break


def _check_file(path: Path, kind: str, param: str, inputs: Sequence[tuple[str, Path]]) -> None:
    for name, source in inputs:
        if _same(path, source):
            raise ConfigError(f"{param} {path}: is {name}, an input of this command; harness never writes over its "
                              f"inputs: choose another path for {param}")
    if path.is_symlink():
        raise ConfigError(f"{param} {path}: is a symbolic link; harness writes only plain files it owns: remove the "
                          "link or choose another path")
    if not path.exists():
        return
    if path.is_dir():
        raise ConfigError(f"{param} {path}: is a folder; expected the path of a file to write")
    if not owned(path, kind):
        found = kind_of(path)
        why = (f"harness wrote it as a {found}, not a {kind}" if found is not None else
               "harness did not write it (or it was changed since)")
        raise ConfigError(f"{param} {path}: a file is in the way: {why}; harness replaces only its own files of the "
                          "same kind: move it, or choose another path")


def _check_run(folder: Path, param: str, inputs: Sequence[tuple[str, Path]]) -> None:
    for name, source in inputs:
        if any(_same(folder / n, source) for n in RUN_FILES):
            raise ConfigError(f"{param} {folder}: {name} {source} is one of this run folder's own files, which harness "
                              f"writes; grade a copy of it, or choose another folder for {param}")
    if not folder.is_dir() or run_folder(folder):
        return
    present = [n for n in RUN_FILES if n != ".lock" and (folder / n).exists() and kind_of(folder / n) is None]
    if present:
        raise ConfigError(f"{param} {folder}: holds {', '.join(present)} that harness did not write (no manifest of a "
                          "harness run beside them); harness will not take the folder over: choose another folder")


def claim(outputs: Iterable[Output], *, inputs: Iterable[tuple[str, str | Path | None]] = ()) -> None:
    """Refuse, before any work, every write that could change a byte harness did not write (see the module).

    ``inputs`` are ``(name, path)`` of what the command or study reads, named as the user named them.
    """
    outputs = list(outputs)
    sources: list[tuple[str, Path]] = []
    for name, given in inputs:
        path = Path(given) if given is not None and str(given) != "" else None
        if path is None or not path.exists():
            continue  # a column's name, or a file not there: nothing to write over
        sources.append((name, path))
        if path.is_dir():  # a run folder read as an input: its own files are inputs too
            sources += [(f"{name} ({path / n})", path / n) for n in RUN_FILES if (path / n).exists()]
    seen: dict[Path, str] = {}
    for out in outputs:
        files = [(out.path / n, k) for n, k in out.names] if out.folder or out.run else [(out.path, out.kind)]
        if not (out.folder or out.run):
            _check_place(out.path, out.param)
        else:
            _check_place(out.path / "x", out.param, shown=out.path)
            if out.path.suffix.lower() in FILE_SUFFIXES:
                raise ConfigError(f"{out.param} {out.path}: this writes a folder of several files, but the name is a "
                                  f"file's ({out.path.suffix}); give a folder")
            if out.path.is_symlink() or (out.path.exists() and not out.path.is_dir()):
                raise ConfigError(f"{out.param} {out.path}: expected a folder, but it is a file or a symbolic link")
        if out.run:
            _check_run(out.path, out.param, sources)
        for path, kind in files:
            key = path.absolute()
            if key in seen and seen[key] != out.param:
                raise ConfigError(f"{out.param} and {seen[key]} both write {path}; give each its own path")
            seen[key] = out.param
            _check_file(path, kind, out.param, sources)


def check_write(path: Path, kind: str) -> None:
    """The write-time guard (:func:`atomic_path`): a file in the way that is not harness's, of this kind, stops it."""
    if path.is_symlink() or (path.exists() and not owned(path, kind)):
        _check_file(path, kind, "`out`", ())


def check_own_file(path: Path, *, param: str = "out", kind: str = "document") -> None:
    """A single document harness is about to write over: refused (naming it) unless it is harness's."""
    _check_file(path, kind, f"`{param}`", ())


