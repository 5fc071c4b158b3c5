"""Run folders: ``manifest.json``, ``input.jsonl`` and the streamed ``labels.jsonl``.

A run folder is self-contained: ``input.jsonl`` is the validated input table (texts, human
labels, metadata), ``labels.jsonl`` holds one line per graded (id, target), appended and
flushed as each answer arrives, and ``manifest.json`` says how the labels were made. Any later
stage (calibrate, analyze, report) reads only these files.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ..core.atomic import atomic_path, write_csv_atomic
from ..core.constants import CATEGORIES, LABEL_COLUMNS, SIDES, label_column
from ..core.errors import RunError
from ..core.redaction import Redactor
from ..results.manifest import Manifest
from .readers import simple_id

if TYPE_CHECKING:
    import pandas as pd

MANIFEST = "manifest.json"
LABELS = "labels.jsonl"
#: Records a ``--retry`` replaced: kept for their tokens (they were billed) and their history.
SUPERSEDED = "superseded.jsonl"
INPUT = "input.jsonl"


def read_manifest(run_dir: Path) -> Manifest:
    """A run folder's manifest, read strictly (a damaged one is a located ResultError)."""
    from .readers import read_json_object

    try:
        data = read_json_object(run_dir / MANIFEST, error=RunError, what="manifest")
    except FileNotFoundError:
        raise RunError(f"{run_dir}: not a run folder (no {MANIFEST}); run `harness grade` first") from None
    return Manifest.from_json(data, name=str(run_dir / MANIFEST))


def iter_labels(run_dir: Path, *, repair: bool = False, ids: Collection[str] | None = None) -> Iterator[dict[str, Any]]:
    """The label records of a run, streamed in file order (memory does not grow with the run).

    A last line cut short by a kill is dropped (and, with ``repair``, truncated away so new
    lines append cleanly). A malformed line anywhere else is an error.
    """
    seen: set[tuple[str, str]] = set()
    for number, record in enumerate(_iter_records(run_dir / LABELS, repair=repair, ids=ids), start=1):
        key = (str(record["id"]), str(record["target"]))
        if key in seen:
            raise RunError(f"{run_dir / LABELS}: record {number} is a second label for {key[0]!r} ({key[1]}); {_FIX}")
        seen.add(key)
        yield record


def iter_superseded(run_dir: Path) -> Iterator[dict[str, Any]]:
    """The records a ``--retry`` replaced, each once (a kill between keeping and dropping them may have kept one
    twice)."""
    seen: set[tuple[Any, ...]] = set()
    for record in _iter_records(run_dir / SUPERSEDED, repair=False):
        key = tuple(record.get(field) for field in ("id", "target", "request_hash", "latency_ms", "status"))
        if key not in seen:
            seen.add(key)
            yield record


def _iter_records(path: Path, *, repair: bool, ids: Collection[str] | None = None) -> Iterator[dict[str, Any]]:
    """The records of a labels file; ``ids``: only theirs (a line whose id can be read off it is not parsed
    otherwise)."""
    if not path.exists():
        return
    offset = 0
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            whole = line.endswith(b"\n")
            if not line.strip():
                offset += len(line)
                continue
            if ids is not None and not repair:
                known = simple_id(line)
                if known is not None and known not in ids:
                    continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise ValueError("not an object")
            except (ValueError, RecursionError):
                if whole:
                    raise RunError(f"{path}, line {number}: malformed label record; {_FIX}") from None
                if repair:  # partial tail from an interrupted append
                    with path.open("r+b") as out:
                        out.truncate(offset)
                return
            if not whole and repair:  # a complete record that lost only its newline
                with path.open("ab") as out:
                    out.write(b"\n")
            offset += len(line)
            if ids is not None and str(record.get("id")) not in ids:
                continue
            problem = record_problem(record)
            if problem:
                raise RunError(f"{path}, line {number}: {problem}; {_FIX}")
            yield record


_FIX = "the file was edited or damaged: delete that line and re-run the same grade command to regrade it"


def record_problem(record: dict[str, Any]) -> str | None:
    """Why a label record breaks the run-file contract, or None (one check for every reader)."""
    from ..core.constants import STATUSES, TARGETS

    if not isinstance(record.get("id"), str) or not record["id"]:
        return "the record has no text 'id'"
    if record.get("target") not in TARGETS:
        return f"target {record.get('target')!r} is not one of {list(TARGETS)}"
    if record.get("status") not in STATUSES:
        return f"status {record.get('status')!r} is not one of {list(STATUSES)}"
    if record["status"] != "ok":
        return None
    if record["target"] == "relevance":
        value = record.get("relevance")
        ok = isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 3
        return None if ok else "an ok relevance record needs 'relevance' 1-3"
    severity = record.get("severity")
    if not isinstance(severity, dict) or any(
        not isinstance(severity.get(c), int) or isinstance(severity.get(c), bool) or not 0 <= severity[c] <= 3
        for c in CATEGORIES
    ):
        return "an ok record needs 'severity' with hate, sexual, violence and self_harm as integers 0-3"
    return None


def read_labels(run_dir: Path, *, repair: bool = False) -> list[dict[str, Any]]:
    """All label records of a run as a list (see :func:`iter_labels`)."""
    return list(iter_labels(run_dir, repair=repair))


class LabelWriter:
    """Appends label records, one ``write`` + flush per line so a kill loses at most one."""

    def __init__(self, path: Path, redact: Redactor | None = None) -> None:
        self.path = path
        self.redact = redact or Redactor()
        self._handle: TextIO = path.open("a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        from ..core.atomic import named

        try:
            self._handle.write(json.dumps(self.redact(record), ensure_ascii=False) + "\n")
            self._handle.flush()
        except OSError as exc:  # a full disk: the message names the file
            raise named(exc, self.path) from exc

    def close(self) -> None:
        from ..core.atomic import named

        try:
            self._handle.close()
        except OSError as exc:  # what a full disk left unwritten: the torn line is repaired when the run resumes
            raise named(exc, self.path) from exc


def keep_superseded(run_dir: Path, records: Iterable[dict[str, Any]]) -> None:
    """Append records about to be dropped for regrading to ``superseded.jsonl`` (flushed to disk first)."""
    import os

    with (run_dir / SUPERSEDED).open("a", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
        out.flush()
        os.fsync(out.fileno())


def rewrite_labels(run_dir: Path, records: Iterable[dict[str, Any]]) -> None:
    """Replace ``labels.jsonl`` atomically (used to drop records that will be regraded)."""
    with atomic_path(run_dir / LABELS, kind="run") as tmp, tmp.open("w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")


@dataclass
class Run:
    """A loaded run folder."""

    path: Path
    manifest: Manifest
    #: The label records of ``labels.jsonl`` (one dict per graded id and target), as the analyses read them.
    records: list[dict[str, Any]]
    input: pd.DataFrame

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def labels(self) -> pd.DataFrame:
        """The input joined to the grader's labels: ``grader_prompt_hate`` …, ``prompt_status`` … (as ``harness export``
        and ``GradeResult.labels`` name them); a side not graded ok has missing labels, never Safe."""
        return labels_frame(self.input, self.records)


def labels_frame(frame: pd.DataFrame, records: list[dict[str, Any]]) -> pd.DataFrame:
    """A table joined to its label records, one row per pair, grader columns named ``grader_*``."""
    wide = labels_wide(records)
    wide = wide.rename(columns={c: "grader_" + c.removeprefix("pred_") for c in wide.columns if c.startswith("pred_")})
    return frame if wide.empty else frame.merge(wide, on="id", how="left")


#: What the analyses read of a label record (the rest, rationale and completion text above all, stays on disk).
ANALYSED_FIELDS = ("id", "target", "status", "severity", "relevance", "error", "probabilities", "sample_agreement",
                   "cached")


def load_run(path: str | Path, *, full: bool = False, ids: Collection[str] | None = None, records: bool = True) -> Run:
    """Read a run folder written by :func:`harness.grading.grade.grade`.

    The label records keep only :data:`ANALYSED_FIELDS` (a 200,000-label run then fits in a
    fraction of the memory); ``full`` keeps every field, as :func:`read_labels` does. ``ids``: only
    these pairs' records and input rows (a calibration of a 1M-pair run reads only its labelled pairs).
    ``records=False``: the manifest and input only (a caller that streams :func:`iter_labels` itself).
    """
    from .pairs import load_pairs

    run_dir = Path(path)
    if not run_dir.is_dir():
        raise RunError(f"{run_dir}: no such run folder")
    manifest = read_manifest(run_dir)
    if ids is not None:
        ids = {str(i) for i in ids}
    labels = []
    if records:
        labels = [r if full else {k: r[k] for k in ANALYSED_FIELDS if k in r} for r in iter_labels(run_dir, ids=ids)]
    frame = load_pairs(run_dir / INPUT, ids=ids)
    return Run(run_dir, manifest, labels, frame)


def uncertainty_by_id(records: list[dict[str, Any]]) -> dict[str, float] | None:
    """Per pair id, how unsure the grader was, summed over its sides and categories: ``1 − P(verdict)``
    from ``grade --logprobs``, else ``1 −`` the samples' agreement from ``grade --samples``; None when
    the run recorded neither.

    >>> uncertainty_by_id([{"id": "a", "target": "prompt", "status": "ok", "severity": {"hate": 1},
    ...                     "probabilities": {"hate": [0.2, 0.7, 0.1, 0.0]}}])
    {'a': 0.3}
    """
    out: dict[str, float] = {}
    seen = False
    for record in records:
        if record.get("status") != "ok" or record.get("target") not in ("prompt", "response"):
            continue
        severity = record.get("severity") or {}
        probabilities, agreement = record.get("probabilities"), record.get("sample_agreement")
        if probabilities:
            value = sum(1.0 - p[severity[c]] for c, p in probabilities.items() if c in severity)
        elif agreement:
            value = sum(1.0 - a for a in agreement.values())
        else:
            continue
        seen = True
        out[str(record["id"])] = round(out.get(str(record["id"]), 0.0) + value, 6)
    return out if seen else None


def labels_wide(records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per id: ``{target}_status`` and grader labels ``pred_{side}_{category}``.

    Grader labels are filled only where the status is ``ok``; elsewhere they are missing.
    """
    import pandas as pd

    rows: dict[str, dict[str, Any]] = {}
    for record in records:
        row = rows.setdefault(str(record["id"]), {"id": str(record["id"])})
        target = record["target"]
        row[f"{target}_status"] = record["status"]
        if record["status"] != "ok":
            continue
        if target in SIDES and record.get("severity"):
            for category in CATEGORIES:
                row[f"pred_{label_column(target, category)}"] = record["severity"].get(category)
        elif target == "relevance":
            row["pred_relevance"] = record.get("relevance")
    frame = pd.DataFrame(list(rows.values()))
    for column in frame.columns:
        if column.startswith("pred_"):
            frame[column] = frame[column].astype("Int8")
    return frame


def graded_pairs(run: Run) -> pd.DataFrame:
    """The run's input with the grader's labels in the canonical label columns.

    Human label columns of the input are replaced by the grader's; a side whose grade is not
    ``ok`` has missing labels (it is never read as Safe).
    """
    wide = labels_wide(run.records)
    human = [c for c in (*LABEL_COLUMNS, "relevance") if c in run.input.columns]
    frame = run.input.drop(columns=human)
    if not wide.empty:
        merged = frame.merge(wide, on="id", how="left")
        frame = merged.rename(columns={c: c[len("pred_"):] for c in merged.columns if c.startswith("pred_")})
    frame.attrs["grader"] = grader_identity(run.manifest)
    frame.attrs["source"] = str(run.path)
    return frame


def grader_identity(manifest: Manifest) -> dict[str, str]:
    """What makes a grader the same grader: model, template and shots (a calibration transports only within one)."""
    return {"model": manifest.model, "template_hash": manifest.template_hash, "shots_hash": manifest.shots_hash}


def id_hash(ident: str) -> str:
    """A short one-way hash of a pair id, so result files can be matched without carrying ids."""
    import hashlib

    return hashlib.sha256(str(ident).encode("utf-8")).hexdigest()[:16]


def export_labels(run: Run, out: str | Path) -> tuple[Path, int]:
    """Write the run's input with the grader's labels (``grader_*``) and statuses beside the
    human ones, as CSV (spreadsheet-safe), Parquet or JSONL, chosen by the file name."""
    from ..core.claims import Output, claim
    from .pairs import detect_format, write_pairs

    target = Path(out)
    claim([Output(target, kind="export")], inputs=[("the run", run.path)])
    kind = detect_format(target)
    wide = labels_wide(run.records)
    frame = run.input
    if not wide.empty:
        frame = frame.merge(wide.rename(columns=lambda c: c.replace("pred_", "grader_", 1)), on="id", how="left")
    if kind == "csv":
        write_csv_atomic(target, frame, kind="export")
    elif kind in ("parquet", "jsonl"):
        write_pairs(frame, target, kind="export")
    else:  # pragma: no cover - detect_format raises first
        raise RunError(f"`out` {target}: expected .csv, .parquet or .jsonl")
    return target, len(frame)
