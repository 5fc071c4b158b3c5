"""``grade``: pairs table -> rendered requests -> (cached) completions -> labels in a run folder.

Prompts and responses are graded separately, each with only its own text. A run is resumable:
re-running the same job grades only the (id, target) items that ``labels.jsonl`` lacks, so a
run killed at any point loses nothing it wrote and pays for nothing twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.constants import STATUSES
from ..core.errors import ConfigError
from ..core.redaction import Redactor
from ..io.runs import INPUT, LABELS, LabelWriter, read_labels
from .cache import CompletionCache, public_base_url
from .client import EndpointConfig, GraderClient, Outcome
from .jobs import GradeSpec, Item, build_request, item_of, user_message
from .parsing import ParsedGrade, parse_batch, parse_relevance, parse_severity
from .runfolder import RunFolder
from .shots import Shot, load_shots, shots_hash
from .templates import TemplateSet, load_template_set

if TYPE_CHECKING:
    import pandas as pd

    from .batch_api import BatchOptions
    from .costs import Price



@dataclass
class Progress:
    """Counters reported to ``on_progress`` after every finished item."""

    total: int
    done: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    cached: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    started: float = field(default_factory=time.perf_counter)

    @property
    def elapsed_s(self) -> float:
        return time.perf_counter() - self.started


@dataclass
class GradeResult:
    """What :func:`grade` returns: the run folder, its manifest and how many items were graded now.

    ``labels`` (the input joined to the grader's labels) is read from the run folder on first
    use, so grading itself never holds every record in memory.
    """

    run_dir: Path
    manifest: dict[str, Any]
    graded_now: int

    @cached_property
    def labels(self) -> pd.DataFrame:
        from ..io.pairs import load_pairs
        from ..io.runs import INPUT, labels_wide

        frame = load_pairs(self.run_dir / INPUT)
        wide = labels_wide(read_labels(self.run_dir))
        return frame if wide.empty else frame.merge(wide, on="id", how="left")


def _work_items(run_dir: Path, target: str, done: set[tuple[str, str]]) -> Iterator[Item]:
    """The items of one target still to grade, streamed from the run's validated input."""
    from ..io.pairs import read_json_lines

    for _, row in read_json_lines(run_dir / INPUT):
        if (row["id"], target) not in done and (item := item_of(row["id"], target, row["prompt"], row.get("response"))):
            yield item


def _jobs(run_dir: Path, targets: Sequence[str], done: set[tuple[str, str]], per_request: int) -> Iterator[list[Item]]:
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


class _Grader:
    """One grading job: renders, sends and records; owns nothing beyond the job's life."""

    def __init__(
        self,
        spec: GradeSpec,
        templates: TemplateSet,
        shots: list[Shot],
        client: GraderClient,
        writer: LabelWriter,
        progress: Progress,
        on_progress: Callable[[Progress], None] | None,
    ) -> None:
        self.spec = spec
        self.templates = templates
        self.client = client
        self.writer = writer
        self.progress = progress
        self.on_progress = on_progress
        self.use_cache = client.cache is not None
        self.systems = {t: templates.system(t, shots) for t in spec.targets}

    def _request(self, target: str, user: str, max_tokens: int) -> dict[str, Any]:
        return build_request(self.spec, self.systems[target], user, max_tokens)

    def _record(self, item: Item, parsed: ParsedGrade, outcome: Outcome, share: int = 1, *, via_batch: bool = False) -> None:
        completion = outcome.completion or {}
        record: dict[str, Any] = {
            "id": item.id,
            "target": item.target,
            "status": parsed.status,
            "severity": parsed.severity,
            "raw": parsed.raw,
            "relevance": parsed.relevance,
            "rationale": parsed.rationale,
            "disagreements": parsed.disagreements or None,
            "error": parsed.error,
            "completion": None if parsed.status == "ok" else completion.get("content"),
            "finish_reason": completion.get("finish_reason"),
            "cached": outcome.cached,
            "latency_ms": round(outcome.latency_ms, 2),
            "attempts": outcome.attempts,
            "prompt_tokens": int(completion.get("prompt_tokens", 0)) // share,
            "cached_prompt_tokens": int(completion.get("cached_prompt_tokens", 0)) // share,
            "completion_tokens": int(completion.get("completion_tokens", 0)) // share,
            "request_hash": outcome.request_hash,
            "batch_size": share,
            "batch_api": via_batch,
        }
        self.writer.write(record)
        progress = self.progress
        progress.done += 1
        progress.statuses[parsed.status] += 1
        progress.cached += int(outcome.cached)
        if not outcome.cached:
            progress.prompt_tokens += record["prompt_tokens"]
            progress.completion_tokens += record["completion_tokens"]
        if self.on_progress is not None:
            self.on_progress(progress)

    @staticmethod
    def _judge(outcome: Outcome, parse: Callable[[str | None], ParsedGrade]) -> ParsedGrade:
        if outcome.completion is None:
            return ParsedGrade("failed", error=outcome.error)
        finish = outcome.completion.get("finish_reason")
        if finish == "content_filter":
            return ParsedGrade("refused", error="stopped by the endpoint's content filter")
        if finish == "length":
            return ParsedGrade("unparsed", error="truncated (finish_reason=length); raise --max-tokens")
        return parse(outcome.completion.get("content"))

    async def single(self, item: Item) -> None:
        user = user_message(self.templates, [item])
        parse: Callable[[str | None], ParsedGrade] = parse_relevance if item.target == "relevance" else parse_severity
        outcome = await self.client.complete(
            self._request(item.target, user, self.spec.max_tokens), use_cache=self.use_cache
        )
        parsed = self._judge(outcome, parse)
        if parsed.status == "ok":
            self.client.remember(outcome)
        self._record(item, parsed, outcome)

    async def batch(self, items: list[Item]) -> None:
        if len(items) == 1:
            await self.single(items[0])
            return
        target = items[0].target
        request = self._request(target, user_message(self.templates, items), self.spec.max_tokens * len(items))
        outcome = await self.client.complete(request, use_cache=self.use_cache)
        judged = self._judge(outcome, lambda c: ParsedGrade("ok"))
        if judged.status != "ok":
            rows = {i: judged for i in range(len(items))}
        else:
            rows = parse_batch((outcome.completion or {}).get("content"), len(items))
        if all(r.status == "ok" for r in rows.values()):
            self.client.remember(outcome)
        retry = []
        for index, item in enumerate(items):
            if rows[index].status == "ok":
                self._record(item, rows[index], outcome, share=len(items))
            else:
                retry.append(item)
        for item in retry:  # missing or malformed in the batch answer: regrade singly
            await self.single(item)


async def _run_jobs(grader: _Grader, jobs: Iterator[list[Item]], workers: int) -> None:
    """``workers`` tasks pull jobs from one lazy iterator (safe: the event loop is one thread)."""

    async def worker() -> None:
        for job in jobs:
            await grader.batch(job)

    tasks = [asyncio.create_task(worker()) for _ in range(max(1, workers))]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def _check_response_column(data: str | Path | pd.DataFrame, mapping: dict[str, str] | None) -> None:
    """Refuse to grade responses of a table whose responses sit in an unmapped column."""
    from ..io.pairs import iter_pairs, response_hint

    if isinstance(data, (str, Path)):
        try:
            columns = next(iter_pairs(data, mapping=mapping, chunk_rows=1)).columns
        except StopIteration:  # pragma: no cover - an empty table is a DataError first
            return
    else:
        columns = data.columns
    hint = response_hint(columns)
    if hint is not None:
        raise ConfigError(f"{data if isinstance(data, (str, Path)) else 'the table'}: {hint} (or --target prompt)")


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


async def agrade(data: str | Path | pd.DataFrame, spec: GradeSpec | None = None, endpoint: EndpointConfig | None = None,
                 **options: Any) -> GradeResult:
    """:func:`grade` for async code (a notebook's running loop): the job runs in a worker
    thread with its own event loop, so the caller's loop keeps running.

    >>> import asyncio
    >>> asyncio.iscoroutinefunction(agrade)
    True
    """
    return await asyncio.to_thread(grade, data, spec, endpoint, **options)


def grade(
    data: str | Path | pd.DataFrame,
    spec: GradeSpec | None = None,
    endpoint: EndpointConfig | None = None,
    *,
    run_dir: str | Path,
    cache_dir: str | Path | None = None,
    retry_statuses: Sequence[str] = (),
    mapping: dict[str, str] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    same_grader: bool = False,
    price: Price | None = None,
    batch: BatchOptions | None = None,
) -> GradeResult:
    """Grade a pairs table into a run folder, resuming whatever the folder already holds.

    Args:
        data: a pairs-table file or an already validated frame.
        spec: model, targets, template set, shots and sampling parameters (default
            ``GradeSpec()``, as the CLI's defaults).
        endpoint: where to send requests (API key is used, never stored); default: resolved
            like the CLI's (``harness.toml``, ``OPENAI_BASE_URL``/``HARNESS_*``, defaults).
        run_dir: the run folder; created if missing, resumed if it holds the same job.
        cache_dir: the completion cache folder, or ``None`` for no cache.
        retry_statuses: statuses (``failed``, ``unparsed``, ``refused``) to grade again.
        mapping: column mapping when ``data`` is a file with other column names.
        on_progress: called after every finished item.
        same_grader: allow resuming a folder graded at another endpoint (replicas serving the
            same grader); otherwise that is refused, since one run would mix two graders.
        price: the grader's price (:class:`harness.costs.Price`): the manifest then holds the
            run's billed cost.
        batch: grade through the provider's Batch API (:mod:`harness.batching`) with these limits.
    """
    if _loop_running():  # called from a notebook cell: asyncio.run would refuse; use a thread
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1) as pool:
            return pool.submit(grade, data, spec, endpoint, run_dir=run_dir, cache_dir=cache_dir,
                               retry_statuses=retry_statuses, mapping=mapping, on_progress=on_progress,
                               same_grader=same_grader, price=price, batch=batch).result()
    spec = spec or GradeSpec()
    endpoint = endpoint or _endpoint_from_settings()
    session_start = time.perf_counter()
    if batch is not None and spec.items_per_request != 1:
        raise ConfigError("batch: one item per request (the Batch API already batches); drop --items-per-request", param="batch")
    bad = [s for s in retry_statuses if s not in STATUSES or s == "ok"]
    if bad:
        raise ConfigError(f"retry_statuses={bad[0]!r}: expected some of failed, unparsed, refused", param="retry_statuses")
    chunks, source = _input(data, mapping, spec)
    templates = load_template_set(spec.template_dir)
    shots = load_shots(spec.shots_path)
    identity: dict[str, Any] = {
        "model": spec.model, "template_hash": templates.hash, "shots_hash": shots_hash(shots), "params": spec.params(),
        "endpoint": public_base_url(endpoint.base_url),
    }
    folder = RunFolder(Path(run_dir))
    with folder.session():  # one grading session per run folder
        previous, items = folder.prepare(chunks, identity, allow_new_endpoint=same_grader)
        done, done_by_target = folder.resume_set(retry_statuses)
        manifest = folder.start(identity, previous, items, targets=spec.targets, source=source, details={
            "template_dir": str(templates.directory), "shots_path": spec.shots_path, "shots_count": len(shots),
            "replicas": [public_base_url(u) for u in endpoint.urls], "batch": batch is not None})
        progress = Progress(total=sum(items[t] - done_by_target[t] for t in spec.targets))
        run = _Session(spec, endpoint, templates, shots, folder.path, done, progress, on_progress, batch)
        try:
            run.execute(cache_dir)
            manifest["status"] = "complete"
        except (KeyboardInterrupt, asyncio.CancelledError):
            manifest["status"] = "interrupted"
            raise
        except BaseException as exc:
            manifest["status"] = "failed"  # never left claiming a live run
            manifest["error"] = Redactor.of(endpoint.api_key).text(str(exc) or type(exc).__name__)
            raise
        finally:
            folder.finish(manifest, run.figures(session_start), run.cache_notes, price=price)
        return GradeResult(folder.path, manifest, progress.done)


def _endpoint_from_settings() -> EndpointConfig:
    from .config import Settings, resolve

    return resolve(Settings()).endpoint()  # as the CLI does: harness.toml, then the environment


def _input(data: str | Path | pd.DataFrame, mapping: dict[str, str] | None, spec: GradeSpec) -> tuple[Iterable[pd.DataFrame], str]:
    """The input as validated chunks (a file is streamed, never whole in memory) and its name."""
    from ..io.pairs import iter_pairs, validate_pairs

    if "response" in spec.targets or "relevance" in spec.targets:
        _check_response_column(data, mapping)
    if isinstance(data, (str, Path)):
        return iter_pairs(data, mapping=mapping), str(data)
    return [validate_pairs(data)], str(data.attrs.get("source", "<dataframe>"))


class _Session:
    """One grading session's event loop: client, cache, label writer and timings."""

    def __init__(self, spec: GradeSpec, endpoint: EndpointConfig, templates: TemplateSet, shots: list[Shot], folder: Path,
                 done: set[tuple[str, str]], progress: Progress, on_progress: Callable[[Progress], None] | None,
                 batch: BatchOptions | None = None) -> None:
        self.batch = batch
        self.spec, self.endpoint, self.templates, self.shots = spec, endpoint, templates, shots
        self.folder, self.done, self.progress, self.on_progress = folder, done, progress, on_progress
        self.requests_sent = 0
        self.client_setup_s = 0.0
        self.cache_notes: list[str] = []
        self.by_replica: dict[str, int] = {}

    def execute(self, cache_dir: str | Path | None) -> None:
        cache = CompletionCache(cache_dir) if cache_dir is not None else None
        writer = LabelWriter(self.folder / LABELS, Redactor.of(self.endpoint.api_key))
        try:
            self.requests_sent = asyncio.run(self._main(cache, writer))
        finally:
            writer.close()
            if cache is not None:
                self.cache_notes = cache.notes
                cache.close()

    async def _main(self, cache: CompletionCache | None, writer: LabelWriter) -> int:
        async with GraderClient(self.endpoint, cache) as client:
            self.progress.started = time.perf_counter()  # rates measure grading, setup_s the rest
            made_before = client.setup_s  # the SDK client may already exist (no cache) or come later
            grader = _Grader(self.spec, self.templates, self.shots, client, writer, self.progress, self.on_progress)
            jobs = _jobs(self.folder, self.spec.targets, self.done, self.spec.items_per_request)
            try:
                if self.batch is not None:
                    from .batch_api import BatchRun

                    batches = BatchRun(self.folder, grader, client, self.batch)
                    for job in jobs:
                        for item in job:
                            batches.add(item)
                    await batches.run()
                else:
                    await _run_jobs(grader, jobs, self.endpoint.concurrency)
            finally:
                self.client_setup_s = client.setup_s - made_before
                self.requests_sent = client.requests_sent
                self.by_replica = {public_base_url(u): n for u, n in client.replicas.sent.items()}
            return client.requests_sent

    def figures(self, session_start: float) -> dict[str, Any]:
        """The session's counts and timings (the SDK client is made on first use, so its set-up is apart)."""
        grading_s = max(0.0, self.progress.elapsed_s - self.client_setup_s)
        return {
            "graded": self.progress.done,
            "requests_sent": self.requests_sent,
            "setup_s": round(self.progress.started - session_start + self.client_setup_s, 3),
            "elapsed_s": round(grading_s, 3),
            "items_per_s": round(self.progress.done / grading_s, 1) if grading_s > 0 else None,
            **({"requests_by_replica": self.by_replica} if len(self.by_replica) > 1 else {}),
        }


def spec_digest(spec: GradeSpec, data: str) -> str:
    """A short stable name for a job, used for the default run folder."""
    material = repr((asdict(spec), str(Path(data).resolve())))
    return hashlib.sha256(material.encode()).hexdigest()[:8]
