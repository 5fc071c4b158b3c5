"""Grading through a provider's Batch API (OpenAI; Azure OpenAI batch deployments the same way).

Requests not already labeled or cached are written as batch JSONL (``custom_id`` = the
request key), split within the provider's limits, uploaded and submitted. Every batch id is
written to the run folder's ``batches.json`` *before* waiting, so a killed process that is run
again polls the same batches and never submits them twice (no double billing). The uploaded
input file is recorded before the batch is created; a process killed between the two finds, on
rerun, the batch the endpoint holds for that file (or creates it from that file) instead of
submitting the requests again. Terminal
batches are turned into labels through the same judging and recording as the synchronous
path: an answer becomes ``ok``/``unparsed``/``refused``, an error line or a request missing
from the output of a completed, expired, cancelled or failed batch becomes ``failed`` with its
reason, and ``--retry failed`` regrades those (batch or not). Answers fill the same cache.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.constants import SCHEMA_VERSION
from ..core.errors import GraderError
from .answers import Reply, api_message
from .cache import request_key

if TYPE_CHECKING:
    from .client import GraderClient
    from .grader import Grader
    from .jobs import Item

STATE = "batches.json"
TERMINAL = ("completed", "failed", "expired", "cancelled")


@dataclass(frozen=True)
class BatchOptions:
    """Limits of one batch file (the provider's: 50,000 requests, 200 MB) and the polling pace."""

    max_requests: int = 50_000
    max_bytes: int = 190_000_000
    #: Output and error files are read up to this size (the rest of their items end failed).
    max_output_bytes: int = 2_000_000_000
    poll_initial_s: float = 1.0
    poll_max_s: float = 60.0


def read_state(folder: Path) -> dict[str, Any]:
    """The run's submitted batches (``batches.json``, read strictly), or an empty state."""
    from ..core.errors import RunError
    from ..io.readers import read_json_object
    from ..results.batches import batch_state

    path = folder / STATE
    if not path.exists():
        return {"schema_version": SCHEMA_VERSION, "batches": []}
    try:
        return batch_state(read_json_object(path, error=RunError, what="batch state"), str(path))
    except ValueError as exc:
        raise RunError(f"{exc}; the batch state is damaged: restore it, or if `harness batch status {folder}` shows no "
                       f"batch still running, remove {path} (removing it forgets running batches: their requests would "
                       "be sent and billed again)") from None


def _write_state(folder: Path, state: dict[str, Any]) -> None:
    from ..core.atomic import write_json_atomic

    write_json_atomic(folder / STATE, state, kind="run")


class BatchRun:
    """Submits what is left of a run as batches, then records every batch that ends."""

    def __init__(self, folder: Path, grader: Grader, client: GraderClient, options: BatchOptions) -> None:
        self.folder = folder
        self.grader = grader
        self.client = client
        self.options = options
        self.state = read_state(folder)
        self.items: dict[str, list[Item]] = {}
        self.requests: dict[str, dict[str, Any]] = {}
        self.resubmit: list[tuple[list[str], list[str]]] = []
        self.notes: list[str] = []

    def add(self, item: Item) -> None:
        """Queue one item: answered from the cache now, or by a batch (one already submitted, or a new one)."""
        from .jobs import user_message

        message = user_message(self.grader.templates, [item])
        request = self.grader.request(item.target, message, self.grader.spec.max_tokens)
        key = request_key(self.client.identity, request)
        self.items.setdefault(key, []).append(item)
        self.requests[key] = request

    async def run(self) -> None:
        await self._answer_from_cache()
        if self.items:  # something to send: the endpoint must be ready
            await self.client.wait_ready()
        await self._resume_submissions()
        submitted = {key for batch in self.state["batches"] for key in batch["keys"] if not batch.get("recorded")}
        fresh = [key for key in self.requests if key not in submitted and key in self.items]
        for chunk in self._chunks(fresh):
            await self._submit(chunk)
        await self._wait_and_record()

    async def _answer_from_cache(self) -> None:
        if self.client.cache is None:
            return
        for key in list(self.items):
            hit = self.client.cache.get(key)
            if hit is not None:
                self._record(key, Reply(hit, None, 0, 0.0, True, key))

    def _chunks(self, keys: list[str]) -> list[list[str]]:
        chunks: list[list[str]] = []
        current: list[str] = []
        size = 0
        for key in keys:
            line = len(self._line(key))
            if current and (len(current) >= self.options.max_requests or size + line > self.options.max_bytes):
                chunks.append(current)
                current, size = [], 0
            current.append(key)
            size += line
        return [*chunks, current] if current else chunks

    def _line(self, key: str) -> bytes:
        body = {"custom_id": key, "method": "POST", "url": "/v1/chat/completions", "body": self.requests[key]}
        return (json.dumps(body, ensure_ascii=False) + "\n").encode("utf-8")

    async def _sdk(self, what: str, call: Any) -> Any:
        """One Batch API call, its failures turned into a one-line error with secrets redacted (a 404 on a
        batch is :class:`Lost`: the endpoint no longer knows it)."""
        import openai

        from ..core.errors import GraderError

        try:
            return await call
        except openai.NotFoundError as exc:
            if what.startswith(("poll", "resume")):
                raise Lost(self.client.redact.text(str(exc))) from None
            raise GraderError(f"{what}: the endpoint answered 404 ({self.client.redact.text(api_message(exc))}); "
                              "it may have no Batch API (grade without `batch`)") from None
        except openai.APIStatusError as exc:
            raise GraderError(f"{what}: the Batch API answered {exc.status_code} "
                              f"({self.client.redact.text(api_message(exc))})") from None
        except openai.APIConnectionError as exc:
            raise GraderError(f"{what}: cannot reach the endpoint ({self.client.redact.text(str(exc))})") from None

    async def _submit(self, keys: list[str], replaces: list[str] | None = None) -> None:
        data = b"".join(self._line(key) for key in keys)
        upload = self.client.sdk().files.create(file=("harness-batch.jsonl", data), purpose="batch")
        uploaded = await self._sdk("upload the batch file", upload)
        entry: dict[str, Any] = {
            "id": None,
            "input_file_id": uploaded.id,
            "keys": keys,
            "status": "submitting",
            "recorded": False,
            "request_counts": None,
            "replaces": replaces,
        }
        self.state["batches"].append(entry)
        _write_state(self.folder, self.state)  # before creating: a rerun finds the batch by its input file
        await self._create(entry)
        self.client.requests_sent += len(keys)

    async def _create(self, entry: dict[str, Any]) -> None:
        batch = await self._sdk("create the batch", self.client.sdk().batches.create(
            input_file_id=entry["input_file_id"], endpoint="/v1/chat/completions", completion_window="24h"))
        entry["id"], entry["status"] = _checked(batch).id, batch.status
        _write_state(self.folder, self.state)  # before any waiting: a rerun polls this batch, never resubmits it
        self.client.note_answer()  # the endpoint holds the batch: the run folder records it

    async def _resume_submissions(self) -> None:
        """Entries a killed process uploaded but may not have seen created: adopt the batch the endpoint
        holds for that input file, or create it from the file already uploaded (never a second batch)."""
        pending = {entry["input_file_id"]: entry for entry in self.state["batches"] if entry.get("id") is None}
        if not pending:
            return
        listing = self.client.sdk().batches.list(limit=100)
        try:
            async for batch in listing:
                entry = pending.pop(batch.input_file_id, None)
                if entry is not None:
                    entry["id"], entry["status"] = batch.id, batch.status
                    _write_state(self.folder, self.state)
                if not pending:
                    break
        except Exception as exc:
            await self._sdk("list batches", _raise(exc))
        for entry in pending.values():
            try:
                await self._create(entry)
            except GraderError:
                self._lose(entry, "its uploaded input file is unknown to the endpoint")

    def _lose(self, entry: dict[str, Any], why: str) -> None:
        """The endpoint no longer knows a batch: mark it lost and queue its requests once more (a batch
        that was itself a resubmission is not resubmitted again: its items end failed)."""
        entry["status"], entry["recorded"] = "lost", True
        _write_state(self.folder, self.state)
        pending = [key for key in entry["keys"] if key in self.items]
        if entry.get("replaces"):
            for key in pending:
                lost = (f"batch {entry['id']} lost by the endpoint ({why}), "
                        f"and the batch before it ({', '.join(entry['replaces'])}) too; grade again")
                self._record(key, Reply(None, lost, 1, 0.0, False, key))
            return
        self.resubmit.append((pending, [entry["id"] or entry["input_file_id"]]))

    async def _wait_and_record(self) -> None:
        wait = self.options.poll_initial_s
        while True:
            for keys, replaces in self.resubmit:
                if keys:
                    await self._submit(keys, replaces)
            self.resubmit.clear()
            open_batches = [b for b in self.state["batches"] if not b.get("recorded")]
            if not open_batches:
                return
            for entry in open_batches:
                try:
                    batch = _checked(await self._sdk("poll a batch", self.client.sdk().batches.retrieve(entry["id"])))
                except Lost:
                    self._lose(entry, "the endpoint answered 404")
                    continue
                entry["status"] = batch.status
                entry["request_counts"] = _counts(batch)
                if batch.status in TERMINAL:
                    await self._record_batch(entry, batch)
                    entry["recorded"] = True
                _write_state(self.folder, self.state)
            if any(not b.get("recorded") for b in self.state["batches"]) and not self.resubmit:
                await asyncio.sleep(wait)
                wait = min(self.options.poll_max_s, wait * 1.5)

    async def _record_batch(self, entry: dict[str, Any], batch: Any) -> None:
        from .answers import RetryableError, completion_fields
        from .batch_output import LineCounts, capped_lines, line_error, rows_of

        counts = LineCounts()
        keys = set(entry["keys"])
        for file_id, is_error in ((batch.output_file_id, False), (batch.error_file_id, True)):
            if not file_id:
                continue
            try:
                async with self.client.sdk().files.with_streaming_response.content(file_id) as response:
                    lines = capped_lines(response, self.options.max_output_bytes, counts)
                    async for key, row in rows_of(lines, keys, counts):
                        message = "error file line" if is_error else line_error(row)
                        if is_error and line_error(row):
                            message = line_error(row)
                        if message is not None:
                            self._record(key, Reply(None, f"batch {entry['id']}: {message}", 1, 0.0, False, key))
                            continue
                        try:
                            body = self.client.redact.text(json.dumps(row["response"]["body"]))
                            completion = completion_fields(body.encode())
                        except RetryableError as exc:
                            self._record(key, Reply(None, f"batch {entry['id']}: {exc}", 1, 0.0, False, key))
                            continue
                        self._record(key, Reply(completion, None, 1, 0.0, False, key))
            except Exception as exc:
                counts.unreadable += 1
                self.notes.append(f"batch {entry['id']}: file {file_id} could not be read "
                                  f"({self.client.redact.text(type(exc).__name__)})")
        reason = _batch_reason(batch) + counts.reason()
        for key in entry["keys"]:
            if key not in counts.answered and key in self.items:
                unanswered = f"batch {entry['id']} {batch.status} without answering it{reason}"
                self._record(key, Reply(None, unanswered, 1, 0.0, False, key))

    def _record(self, key: str, outcome: Any) -> None:
        items = self.items.pop(key, [])
        self.client.remember(outcome)
        for part, item in enumerate(items):  # one request, several identical items: they share its tokens
            parsed = self.grader.judge(outcome, self.grader.parser(item.target))
            if parsed.status == "ok":
                parsed = self.grader.settle(item, parsed, outcome)
            self.grader.record(item, parsed, outcome, len(items), part=part, via_batch=not outcome.cached)


class Lost(Exception):
    """The endpoint answered 404 for a batch it was given: it no longer knows it."""


async def _raise(exc: BaseException) -> None:
    raise exc


#: The statuses a batch can have (OpenAI's).
STATUSES = ("validating", "failed", "in_progress", "finalizing", "completed", "expired", "cancelling", "cancelled")


def _checked(batch: Any) -> Any:
    """A batch object as the endpoint returned it, refused when it is not one (no id or status of a batch)."""
    from ..core.errors import GraderError

    if not isinstance(getattr(batch, "id", None), str) or getattr(batch, "status", None) not in STATUSES:
        raise GraderError("the Batch API answered with something that is not a batch (no id, or a status outside "
                          f"{', '.join(STATUSES)}); this endpoint may not implement it: grade without `batch`")
    return batch


def _counts(batch: Any) -> dict[str, int] | None:
    counts = getattr(batch, "request_counts", None)
    if counts is None:
        return None
    try:
        return {k: int(v) for k, v in counts.model_dump().items()}
    except (AttributeError, TypeError, ValueError):
        return None


def _batch_reason(batch: Any) -> str:
    errors = getattr(batch, "errors", None)
    data = getattr(errors, "data", None) or []
    messages = [getattr(e, "message", None) for e in data]
    return f": {'; '.join(m for m in messages if m)}" if any(messages) else ""


def options_from_environment(**overrides: Any) -> BatchOptions:
    """Batch options, with ``HARNESS_BATCH_POLL_S`` setting the first polling interval (tests use a short one)."""
    poll = os.environ.get("HARNESS_BATCH_POLL_S")
    values: dict[str, Any] = {"poll_initial_s": float(poll)} if poll else {}
    values.update({k: v for k, v in overrides.items() if v is not None})
    return BatchOptions(**values)


def _endpoint(base_url: str | None) -> Any:
    from .endpoint import endpoint_of
    from .settings import resolve

    return endpoint_of(resolve({"base_url": base_url} if base_url else {}).endpoint)


def batch_statuses(run_dir: str | Path, *, base_url: str | None = None) -> list[dict[str, Any]]:
    """The run's batches as ``batches.json`` records them, refreshed from the endpoint when one answers."""
    from ..core.errors import RunError
    from .client import GraderClient

    folder = Path(run_dir)
    if not (folder / STATE).exists():
        raise RunError(f"{folder}: no {STATE}; this run was not graded with `batch`")
    state = read_state(folder)

    async def refresh() -> None:
        async with GraderClient(_endpoint(base_url)) as client:
            for entry in state["batches"]:
                if entry.get("id") is None:
                    continue  # uploaded, creation not confirmed: the next grade run resolves it
                try:
                    batch = _checked(await client.sdk().batches.retrieve(entry["id"]))
                except Exception as exc:
                    entry["note"] = "unknown to the endpoint: the next grade with `batch` resubmits it" if getattr(
                        exc, "status_code", None) == 404 else f"status from {STATE}; the endpoint did not answer"
                    continue
                entry["status"] = batch.status
                entry["request_counts"] = _counts(batch)

    try:
        asyncio.run(refresh())
    except Exception as exc:  # the file is still worth showing
        for entry in state["batches"]:
            entry["note"] = f"status from {STATE}; the endpoint did not answer ({type(exc).__name__})"
    return [
        {k: v for k, v in entry.items() if k != "keys"} | {"requests": len(entry["keys"])} for entry in state["batches"]
    ]


def cancel_batches(run_dir: str | Path, *, base_url: str | None = None) -> list[str]:
    """Cancel every batch of the run that has not ended; returns their ids."""
    from ..core.errors import RunError
    from .client import GraderClient

    folder = Path(run_dir)
    if not (folder / STATE).exists():
        raise RunError(f"{folder}: no {STATE}; this run was not graded with `batch`")
    state = read_state(folder)
    open_ids = [
        b["id"] for b in state["batches"] if b.get("id") and not b.get("recorded") and b.get("status") not in TERMINAL
    ]

    cancelled: list[str] = []

    async def cancel() -> None:
        import openai

        async with GraderClient(_endpoint(base_url)) as client:
            for batch_id in open_ids:
                try:
                    await client.sdk().batches.cancel(batch_id)
                    cancelled.append(batch_id)
                except openai.NotFoundError:
                    pass  # the endpoint no longer knows it: the next grade --batch marks it lost and resubmits it
                except openai.APIError as exc:
                    raise GraderError(f"cancelling batch {batch_id}: {client.redact.text(str(exc))}") from None

    asyncio.run(cancel())
    return cancelled
