"""A run folder during one grading session: its lock, identity, resume set and manifest.

``grade`` asks it, in order: take the folder (:meth:`RunFolder.session`), write or check the
input and the job's identity (:meth:`~RunFolder.prepare`), say what is already done
(:meth:`~RunFolder.resume_set`), write the starting manifest (:meth:`~RunFolder.start`) and, whatever
happens, the final one (:meth:`~RunFolder.finish`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from ..core.atomic import ensure_folder
from ..core.constants import SCHEMA_VERSION, STATUSES, TARGETS, VERSION
from ..core.errors import FolderBusyError, RunError
from ..io.runs import (
    INPUT,
    LABELS,
    MANIFEST,
    iter_labels,
    iter_superseded,
    keep_superseded,
    read_manifest,
    rewrite_labels,
)
from ..results.manifest import Cost, Manifest, SessionFigures
from .identity import answered_here, describe

if TYPE_CHECKING:
    from ..io.records import Chunk
    from .costs import Price

#: Manifest fields that must match for a run folder to be resumed (the endpoint is checked too).
IDENTITY = ("model", "template_hash", "shots_hash", "params", "input_sha256")


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


LOCK = ".lock"


@contextmanager
def run_lock(run_dir: Path, *, remove_if_failed: bool = False) -> Iterator[None]:
    """Hold the run folder for one grading session (an OS lock: a killed process frees it).

    Two sessions appending to one ``labels.jsonl`` would grade items twice, so a second one
    is refused. Temporary files left by a killed session are removed once the lock is held.
    ``remove_if_failed`` deletes the folder again when the session fails before writing a
    manifest (used when the folder was created for it).
    """
    from ..core.ownership import remove_run_folder

    path = run_dir / LOCK
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no locking
        fcntl = None  # type: ignore[assignment]
    for _ in range(100):  # the lock file is removed when a session ends: lock the file that is there now
        handle = path.open("a+", encoding="utf-8")
        if fcntl is None:
            break
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            if holder == str(os.getpid()):
                raise FolderBusyError(
                    f"{run_dir} is being graded by another call in this process "
                    "(a grade or agrade on the same folder has not finished); await it first, or pass another `run_dir`"
                ) from None
            raise FolderBusyError(
                f"{run_dir} is being graded by another process (pid {holder}); wait for it to "
                "finish, stop it, or pass another `run_dir`"
            ) from None
        try:
            if os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino:
                break
        except FileNotFoundError:
            pass
        handle.close()  # a session that ended removed the file this one had opened: open the new one
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    for name in (INPUT, MANIFEST, LABELS, "batches.json"):  # atomic-write temporaries of a killed session
        for stale in run_dir.glob(f".{name}.*"):
            stale.unlink(missing_ok=True)
    try:
        yield
    except BaseException:
        if remove_if_failed and not (run_dir / MANIFEST).exists():
            remove_run_folder(run_dir)  # its own files only: anything else put there meanwhile stays
        raise
    finally:
        with contextlib.suppress(OSError):  # removed while still held, so a finished folder keeps no lock file
            if path.exists() and os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino:
                path.unlink()
        handle.close()


class Resume(NamedTuple):
    """What a session starts from: the items already answered (and their count per target), and the
    cached answers to forget because the items they answered are being graded again (``--retry``)."""

    done: set[tuple[str, str]]
    done_by_target: Counter[str]
    forget: set[str]


class RunFolder:
    """One run folder, held by one grading session at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextmanager
    def session(self) -> Iterator[None]:
        """Create the folder if needed and hold its lock; a folder made for a session that
        fails before writing a manifest is removed again."""
        created = not self.path.exists()
        ensure_folder(self.path, param="run_dir")
        with run_lock(self.path, remove_if_failed=created):
            yield

    def prepare(self, chunks: Iterable[Chunk], identity: dict[str, Any], *, allow_new_endpoint: bool = False,
                url: str = "") -> tuple[Manifest | None, Counter[str]]:
        """Write ``input.jsonl`` (new run) or check the folder holds this job, graded at the endpoint ``identity``
        names (reached at ``url``); see :func:`_prepare`."""
        return _prepare(self.path, chunks, identity, allow_new_endpoint, url or identity["endpoint"])

    def resume_set(self, retry_statuses: Sequence[str]) -> Resume:
        """The (id, target) items already answered, after dropping those to be graded again.

        A torn last line left by a kill is repaired here, so new lines append cleanly.
        """
        done: set[tuple[str, str]] = set()
        done_by_target: Counter[str] = Counter()
        forget: set[str] = set()
        dropped = 0
        for record in iter_labels(self.path, repair=True):
            if record["status"] in retry_statuses:
                dropped += 1
                forget.update(str(record[k]) for k in ("request_hash", "after_request_hash") if record.get(k))
            else:
                done.add((str(record["id"]), record["target"]))
                done_by_target[record["target"]] += 1
        if dropped:  # kept first (their tokens were billed), then dropped
            keep_superseded(self.path, (r for r in iter_labels(self.path) if r["status"] in retry_statuses))
            rewrite_labels(self.path, (r for r in iter_labels(self.path) if r["status"] not in retry_statuses))
        return Resume(done, done_by_target, forget)

    def start(self, identity: dict[str, Any], previous: Manifest | None, items: Counter[str], *, targets: Sequence[str],
              source: str, details: dict[str, Any], answered: bool = False) -> Manifest:
        """Write and return the manifest of a session that is starting (status ``running``). Its endpoint joins the
        run's ``endpoints`` (those the folder may be resumed at) only once it has answered: ``answered`` here (it said
        who it is), else :meth:`record_endpoint` on its first answer, so a run answered wholly from the cache never
        pins an endpoint that never answered."""
        endpoints = _endpoints(previous)
        if answered and identity["endpoint"] not in endpoints:
            endpoints.append(identity["endpoint"])
        manifest = Manifest(
            **identity,
            harness_version=VERSION,
            schema_version=SCHEMA_VERSION,
            status="running",
            created=previous.created if previous is not None and previous.created else now(),
            updated=now(),
            endpoints=endpoints,
            targets=sorted(set(previous.targets if previous else []) | set(targets), key=TARGETS.index),
            **details,
            input_path=previous.input_path if previous is not None and previous.input_path else source,
            input_rows=items["prompt"],
            sessions=(previous.sessions if previous is not None else 0) + 1,
        )
        manifest.write(self.path / MANIFEST)
        return manifest

    def record_endpoint(self, manifest: Manifest) -> Manifest:
        """The session's endpoint has answered: it joins the run's ``endpoints`` now (written at once, so a run killed
        after its first answer is still pinned to the endpoint that gave it)."""
        if manifest.endpoint is None or manifest.endpoint in manifest.endpoints:
            return manifest
        endpoints = [*manifest.endpoints, manifest.endpoint]
        updated = Manifest(**{**manifest.fields(), "endpoints": endpoints, "updated": now()})
        updated.write(self.path / MANIFEST)
        return updated

    def finish(
        self,
        manifest: Manifest,
        *,
        status: str,
        error: str | None,
        session: SessionFigures,
        cache_notes: list[str],
        price: Price | None = None,
        answered: bool = False,
    ) -> Manifest:
        """Summarise the labels into the manifest and write it (whatever the session's status); ``answered``: the
        endpoint answered in this session (see :meth:`start`)."""
        summary = _summarise(iter_labels(self.path))
        replaced = _summarise(iter_superseded(self.path))
        if replaced["items"]:  # records a --retry replaced were billed too
            for key, value in replaced["tokens"].items():
                if not key.startswith(("from_cache_", "cached_")):  # cached_: the name older manifests gave them
                    summary["tokens"][key] = summary["tokens"].get(key, 0) + value
            summary["superseded"] = replaced["items"]
        updates: dict[str, Any] = {"status": status, **summary, "updated": now(), "last_session": session}
        if answered and manifest.endpoint is not None and manifest.endpoint not in manifest.endpoints:
            updates["endpoints"] = [*manifest.endpoints, manifest.endpoint]
        if error is not None and status != "complete":
            updates["error"] = error
        if price is not None:
            from .costs import billed_cost

            tokens = summary["tokens"]
            via_batch = bool(tokens.get("batch_prompt_tokens") or tokens.get("batch_completion_tokens"))
            updates["cost"] = Cost(billed=round(billed_cost(tokens, price), 6),
                                   price_per_million={
                                       "input": price.input,
                                       "output": price.output,
                                       "cached_input": price.cached_input,
                                   },
                                   batch_discount=price.batch_discount if via_batch else None)
        if cache_notes:
            updates["cache_notes"] = cache_notes
        final = Manifest(**{**manifest.fields(), **updates})
        try:
            final.write(self.path / MANIFEST)
        except OSError:  # a full disk: the old manifest's own blocks take the final one (never left "running")
            from ..core.atomic import rewrite_in_place

            rewrite_in_place(self.path / MANIFEST, final.to_json(), kind="manifest")
        return final


def _endpoints(manifest: Manifest | None) -> list[str]:
    """The endpoints that answered a run (manifests older than ``endpoints`` name only one)."""
    if manifest is None:
        return []
    if "endpoints" in manifest.model_fields_set or not manifest.endpoint:
        return list(manifest.endpoints)
    return [manifest.endpoint]


def _prepare(
    run_dir: Path, chunks: Iterable[Chunk], identity: dict[str, Any], allow_new_endpoint: bool, url: str
) -> tuple[Manifest | None, Counter[str]]:
    """Fill a new run folder, or check that an existing one holds the same job.

    The input is validated, hashed and (for a new run) written as ``input.jsonl`` in one
    streamed pass (an invalid table raises part-way; :func:`run_lock` then
    removes a folder created for it). Returns the previous manifest and how many items each
    target has (prompt: every row; response and relevance: rows with a response).
    """
    from ..core.atomic import atomic_path

    digest = hashlib.sha256()
    items: Counter[str] = Counter()

    def hashed_lines() -> Iterator[str]:
        for chunk in chunks:
            items["prompt"] += chunk.rows
            items["response"] += chunk.with_response
            items["relevance"] += chunk.with_response
            for line in chunk.lines:
                digest.update(line.encode())
                yield line

    exists = (run_dir / MANIFEST).exists() and _has_labels(run_dir)  # a run that graded nothing is started afresh
    if exists:
        for _ in hashed_lines():
            pass
    else:
        with atomic_path(run_dir / INPUT, kind="run") as tmp, tmp.open("w", encoding="utf-8") as out:
            out.writelines(hashed_lines())
    identity["input_sha256"] = digest.hexdigest()
    if not exists:
        return None, items
    previous = read_manifest(run_dir)
    for key in IDENTITY:
        if getattr(previous, key) != identity[key]:
            raise RunError(
                f"{run_dir} holds a different run ({key} was {getattr(previous, key)!r}, now "
                f"{identity[key]!r}); pass another `run_dir` or delete the folder"
            )
    endpoints = _endpoints(previous)
    if endpoints and not answered_here(endpoints, identity["endpoint"], url) and not allow_new_endpoint:
        raise RunError(
            f"{run_dir} was graded at {describe(endpoints[-1])}, now at {describe(identity['endpoint'])}: one run "
            "would mix two graders' labels. Pass another `run_dir`, or `same_grader` if both endpoints serve the "
            "same grader (replicas of one deployment)"
        )
    return previous, items


def _has_labels(run_dir: Path) -> bool:
    """Does the run folder hold any label record or submitted batch (a failed start, e.g. at a closed port,
    holds neither, and the corrected command may start it afresh)?"""
    if (run_dir / "batches.json").exists():
        return True
    path = run_dir / LABELS
    if not path.exists():
        return False
    with path.open("rb") as handle:
        return any(line.strip() for line in handle)


_ATTEMPTS = re.compile(r"^gave up after \d+ attempts: ")


def _reason(error: str | None) -> str:
    """An item's error without its attempt count, so like failures group together."""
    return _ATTEMPTS.sub("", error or "no reason recorded")[:200]


def _summarise(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    counts: Counter[str] = Counter()
    by_target: dict[str, Counter[str]] = {}
    tokens = Counter[str]()
    items = billed_items = cache_hits = cached_non_verdicts = disagreements = 0
    reasons: dict[str, Counter[str]] = {}
    for record in records:  # one pass over a stream
        counts[record["status"]] += 1
        if record["status"] != "ok":
            reasons.setdefault(record["status"], Counter())[_reason(record.get("error"))] += 1
        by_target.setdefault(record["target"], Counter())[record["status"]] += 1
        cached = bool(record.get("cached"))
        key = "from_cache" if cached else "billed"  # answered by the completion cache, or sent (the provider's own
        # prompt cache, a label's `cached_prompt_tokens`, is the `_prefix_cached` share of either)
        tokens[f"{key}_prompt_tokens"] += int(record.get("prompt_tokens") or 0)
        tokens[f"{key}_prompt_tokens_prefix_cached"] += int(record.get("cached_prompt_tokens") or 0)
        tokens[f"{key}_completion_tokens"] += int(record.get("completion_tokens") or 0)
        if record.get("batch_api") and not cached:  # the billed part sent through the Batch API
            tokens["batch_prompt_tokens"] += int(record.get("prompt_tokens") or 0)
            tokens["batch_prompt_tokens_prefix_cached"] += int(record.get("cached_prompt_tokens") or 0)
            tokens["batch_completion_tokens"] += int(record.get("completion_tokens") or 0)
        items += 1
        billed_items += not cached
        cache_hits += cached
        cached_non_verdicts += cached and record["status"] in ("unparsed", "refused")
        disagreements += bool(record.get("disagreements"))
    return {
        "counts": {s: counts.get(s, 0) for s in STATUSES},
        "counts_by_target": {t: {s: c.get(s, 0) for s in STATUSES} for t, c in by_target.items()},
        "items": items,
        "cache_hits": cache_hits,
        "cached_non_verdicts": cached_non_verdicts,
        "disagreements": disagreements,
        "tokens": dict(tokens),
        "reasons": {status: dict(c.most_common(5)) for status, c in reasons.items()},
        "prompt_tokens_per_billed_item": (
            round(tokens["billed_prompt_tokens"] / billed_items, 1) if billed_items else None
        ),
    }


