"""One grading session's event loop: the client, the cache, the label writer, the workers and the timings.

Jobs are streamed from the run's ``input.jsonl`` (never all in memory), skipping what the run
folder already holds; ``workers`` tasks pull them from one lazy iterator, or the Batch API path
takes them all.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.redaction import Redactor
from ..io.runs import INPUT, LABELS, LabelWriter
from ..results.manifest import SessionFigures
from .cache import CompletionCache, public_base_url
from .client import GraderClient
from .endpoint import EndpointConfig
from .grader import Grader, Progress
from .jobs import GradeSpec, Item, item_of
from .replicas import same_model
from .shots import Shot
from .templates import TemplateSet

if TYPE_CHECKING:
    from .batch_api import BatchOptions


def _work_items(run_dir: Path, target: str, done: set[tuple[str, str]]) -> Iterator[Item]:
    """The items of one target still to grade, streamed from the run's validated input."""
    from ..io.readers import read_json_lines

    for _, row in read_json_lines(run_dir / INPUT):
        if (row["id"], target) not in done and (item := item_of(row["id"], target, row["prompt"], row.get("response"))):
            yield item


def jobs_of(
    run_dir: Path, targets: Sequence[str], done: set[tuple[str, str]], per_request: int
) -> Iterator[list[Item]]:
    """Requests to send, target by target, each a list of up to ``per_request`` items."""
    for target in targets:
        size = 1 if target == "relevance" else per_request
        job: list[Item] = []
        for item in _work_items(run_dir, target, done):
            job.append(item)
            if len(job) == size:
                yield job
                job = []
        if job:
            yield job


async def run_jobs(grader: Grader, jobs: Iterator[list[Item]], workers: int) -> None:
    """``workers`` tasks pull jobs from one lazy iterator (safe: the event loop is one thread).

    Once the run is stopping (Ctrl-C cancels the session, or a worker failed) no worker takes another
    job, even one whose cancellation was lost in a race with its request finishing.
    """
    stopping = asyncio.Event()

    async def worker() -> None:
        for job in jobs:
            if stopping.is_set():
                return
            await grader.job(job)

    tasks = [asyncio.create_task(worker()) for _ in range(max(1, workers))]
    try:
        # asyncio.wait, not gather: a cancelled gather waits for its children, and a child that lost
        # its cancellation would drain every job before this frame could say "stop"
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        failed = next((task.exception() for task in done if task.exception() is not None), None)
        if failed is not None:
            raise failed
    finally:
        stopping.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class Session:
    """One grading session's event loop: client, cache, label writer and timings."""

    def __init__(
        self,
        spec: GradeSpec,
        endpoint: EndpointConfig,
        templates: TemplateSet,
        shots: list[Shot],
        folder: Path,
        done: set[tuple[str, str]],
        progress: Progress,
        on_progress: Callable[[Progress], None] | None,
        batch: BatchOptions | None = None,
        *,
        forget: set[str] | None = None,
        on_answered: Callable[[], None] | None = None,
    ) -> None:
        self.batch = batch
        self.on_answered = on_answered  # called once, when the endpoint first answers
        self.answered = False
        self.forget = forget or set()  # cached answers of the items a --retry grades again
        self.spec, self.endpoint, self.templates, self.shots = spec, endpoint, templates, shots
        self.folder, self.done, self.progress, self.on_progress = folder, done, progress, on_progress
        self.requests_sent = 0
        self.client_setup_s = 0.0
        self.sdk_setup_s = 0.0
        self.cache_notes: list[str] = []
        self.by_replica: dict[str, int] = {}
        self.set_aside: dict[str, str] = {}
        self.answered_models: dict[str, list[str]] = {}
        #: The endpoint refused json_schema in an earlier session: ask json_object from the start.
        self.schema_refused = False
        self.format: dict[str, Any] = {}

    def execute(self, cache_dir: str | Path | None) -> None:
        cache = CompletionCache(cache_dir) if cache_dir is not None else None
        if cache is not None:
            cache.forget(self.forget)
        writer = LabelWriter(self.folder / LABELS, Redactor.of(self.endpoint.api_key))
        try:
            self.requests_sent = asyncio.run(self._main(cache, writer))
        finally:
            writer.close()
            if cache is not None:
                self.cache_notes = cache.notes
                cache.close()

    async def _main(self, cache: CompletionCache | None, writer: LabelWriter) -> int:
        async with GraderClient(self.endpoint, cache, on_answered=self.on_answered) as client:
            self.progress.started = time.perf_counter()  # rates measure grading, setup_s the rest
            made_before = client.setup_s  # the SDK client may already exist (no cache) or come later
            client.schema_refused = self.schema_refused
            grader = Grader(self.spec, self.templates, self.shots, client, writer, self.progress, self.on_progress)
            jobs = jobs_of(self.folder, self.spec.targets, self.done, self.spec.items_per_request)
            try:
                if self.batch is not None:
                    from .batch_api import BatchRun

                    batches = BatchRun(self.folder, grader, client, self.batch)
                    for job in jobs:
                        for item in job:
                            batches.add(item)
                    await batches.run()
                else:
                    await run_jobs(grader, jobs, self.endpoint.concurrency)
            finally:
                self.client_setup_s = client.setup_s - made_before
                self.sdk_setup_s = client.setup_s
                self.requests_sent = client.requests_sent
                self.answered = client.has_answered
                self.by_replica = {public_base_url(u): n for u, n in client.replicas.sent.items()}
                self.set_aside = {public_base_url(u): reason for u, reason in client.replicas.lost.items()}
                self.answered_models = {public_base_url(u): sorted(names) for u, names in client.replicas.models.items()
                                        if any(not same_model(self.spec.model, n) for n in names)}
                if client.response_format_used:
                    self.format = {"response_format_used": client.response_format_used,
                                   "format_refusals": client.format_refusals}
            return client.requests_sent

    def _replica_figures(self) -> dict[str, Any]:
        """Per replica: requests sent (with several), those set aside, answers from another model."""
        out: dict[str, Any] = {"requests_by_replica": self.by_replica} if len(self.by_replica) > 1 else {}
        if self.set_aside:
            out["replicas_set_aside"] = self.set_aside
        if self.answered_models:
            out["answered_models"] = self.answered_models
        return out

    def figures(self, session_start: float) -> SessionFigures:
        """The session's counts and timings (the SDK client is made on first use, so its set-up is apart)."""
        grading_s = max(0.0, self.progress.elapsed_s - self.client_setup_s)
        return SessionFigures(
            graded=self.progress.done,
            requests_sent=self.requests_sent,
            setup_s=round(self.progress.started - session_start + self.client_setup_s, 3),
            sdk_setup_s=round(self.sdk_setup_s, 3),
            elapsed_s=round(grading_s, 3),
            items_per_s=round(self.progress.done / grading_s, 1) if grading_s > 0 else None,
            **self._replica_figures(),
            **self.format,
        )
