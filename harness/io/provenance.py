"""Build a result's :class:`~harness.results.provenance.Provenance` from the paths a step was given."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

from ..core.constants import VERSION
from ..results.provenance import GraderInfo, InputFile, Provenance, Stamped

S = TypeVar("S", bound=Stamped)


def file_sha256(path: Path) -> str | None:
    """The SHA-256 of a file's bytes (``None`` when it cannot be read). A file unchanged since it was last hashed
    (same size and modification time) is not read again: a study hashes its data once, not once per step."""
    try:
        stat = path.stat()
    except OSError:
        return None
    if time.time_ns() - stat.st_mtime_ns < 2_000_000_000:  # written just now: a second write could keep size and time
        return _sha256.__wrapped__(str(path), stat.st_size, stat.st_mtime_ns)
    return _sha256(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=256)
def _sha256(path: str, size: int, mtime_ns: int) -> str | None:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def input_file(role: str, path: str | Path) -> InputFile:
    """An input by role; a run folder is hashed by its labels (what a result read from it)."""
    where = Path(path)
    target = where / "labels.jsonl" if where.is_dir() else where
    return InputFile(role=role, path=str(where), sha256=file_sha256(target))


def grader_info(run_dir: str | Path) -> GraderInfo | None:
    """The grader of a run folder, from its manifest (``None`` for a plain table)."""
    from .runs import MANIFEST, read_manifest

    folder = Path(run_dir)
    if not (folder / MANIFEST).is_file():
        return None
    m = read_manifest(folder)
    return GraderInfo(run=str(folder), model=m.model, endpoint=m.endpoint, template_hash=m.template_hash,
                      shots_hash=m.shots_hash, shots_count=m.shots_count)


def provenance_of(step: str, label_source: str, inputs: Iterable[tuple[str, str | Path | None]]) -> Provenance:
    """The provenance of a step's result: each given input hashed, the graders of the run folders among them."""
    given = [(role, Path(path)) for role, path in inputs if path is not None]
    graders = [g for _, path in given if path.is_dir() and (g := grader_info(path)) is not None]
    # a calibration as pilot
    graders += [g for _, path in given if path.suffix == ".json" for g in _graders_of_result(path)]
    return Provenance(
        harness_version=VERSION,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        step=step,
        label_source=label_source,
        inputs=[input_file(role, path) for role, path in given],
        graders=graders,
    )


def _graders_of_result(path: Path) -> list[GraderInfo]:
    """The graders a result file names in its own provenance (none when it has none or cannot be read)."""
    import json

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return [GraderInfo.from_json(g) for g in data.get("provenance", {}).get("graders", [])]
    except (OSError, ValueError, AttributeError, TypeError):
        return []


def stamped(result: S, provenance: Provenance) -> S:
    """The result with its provenance set (written into its JSON), and a warning for each count of fewer than
    ``FEWEST_CLUSTERS`` clusters its intervals rest on (:func:`~harness.results.common.few_cluster_warnings`)."""
    from ..results.common import few_cluster_warnings

    warnings = few_cluster_warnings(result)
    return result.model_copy(update={"provenance": provenance, **({"few_clusters": warnings} if warnings else {})})
