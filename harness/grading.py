"""``grade``: pairs table -> rendered requests -> (cached) completions -> labels in a run folder.

Prompts and responses are graded separately, each with only its own text. A run is resumable:
re-running the same job grades only the (id, target) items that ``labels.jsonl`` lacks, so a
run killed at any point loses nothing it wrote and pays for nothing twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__
from .atomic import ensure_folder
from .cache import CompletionCache, public_base_url
from .client import EndpointConfig, GraderClient, Outcome
from .constants import DEFAULT_MAX_TOKENS, DEFAULT_MODEL, DEFAULT_SEED, STATUSES, TARGETS
from .errors import ConfigError, RunError
from .parsing import ParsedGrade, parse_batch, parse_relevance, parse_severity
from .redaction import Redactor
from .runs import (
    INPUT,
    LABELS,
    MANIFEST,
    LabelWriter,
    iter_labels,
    read_labels,
    read_manifest,
    rewrite_labels,
    run_lock,
    write_json_atomic,
)
from .shots import Shot, load_shots, shots_hash
from .templates import TemplateSet, load_template_set

if TYPE_CHECKING:
    import pandas as pd

#: Manifest fields that must match for a run folder to be resumed.
IDENTITY = ("model", "template_hash", "shots_hash", "params", "input_sha256")


@dataclass(frozen=True)
class GradeSpec:
    """What determines the labels of a run (besides the grader endpoint)."""

    model: str = DEFAULT_MODEL
    targets: tuple[str, ...] = ("prompt", "response")
    template_dir: str | None = None
    shots_path: str | None = None
    items_per_request: int = 1
    temperature: float = 0.0
    seed: int | None = DEFAULT_SEED
    max_tokens: int = DEFAULT_MAX_TOKENS
    json_mode: bool = True

    def __post_init__(self) -> None:
        bad = [t for t in self.targets if t not in TARGETS]
        if bad or not self.targets:
            raise ConfigError(f"--target {bad[0] if bad else ''!r}: expected prompt, response, both, relevance or all")
        if self.items_per_request < 1:
            raise ConfigError(f"--items-per-request {self.items_per_request}: expected an integer >= 1")
        if self.max_tokens < 1:
            raise ConfigError(f"--max-tokens {self.max_tokens}: expected an integer >= 1")

    def params(self) -> dict[str, Any]:
        return {
            "temperature": self.temperature,
            "seed": self.seed,
            "max_tokens": self.max_tokens,
            "json_mode": self.json_mode,
            "items_per_request": self.items_per_request,
        }


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
        from .pairs import load_pairs
        from .runs import INPUT, labels_wide

        frame = load_pairs(self.run_dir / INPUT)
        wide = labels_wide(read_labels(self.run_dir))
        return frame if wide.empty else frame.merge(wide, on="id", how="left")


@dataclass
class _Item:
    id: str
    target: str
    text: str | None = None
    prompt: str | None = None
    response: str | None = None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _work_items(run_dir: Path, target: str, done: set[tuple[str, str]]) -> Iterator[_Item]:
    """The items of one target still to grade, streamed from the run's validated input."""
    from .pairs import read_json_lines

    for _, row in read_json_lines(run_dir / INPUT):
        ident, prompt, response = row["id"], row["prompt"], row.get("response")
        if (ident, target) in done:
            continue
        if target == "prompt":
            yield _Item(ident, target, text=prompt)
        elif target == "response" and isinstance(response, str) and response.strip():
            yield _Item(ident, target, text=response)
        elif target == "relevance" and isinstance(response, str) and response.strip():
            yield _Item(ident, target, prompt=prompt, response=response)


def _jobs(run_dir: Path, targets: Sequence[str], done: set[tuple[str, str]], per_request: int) -> Iterator[list[_Item]]:
    """Requests to send, target by target, each a list of up to ``per_request`` items."""
    for target in targets:
        size = 1 if target == "relevance" else per_request
        job: list[_Item] = []
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
        request: dict[str, Any] = {
            "model": self.spec.model,
            "messages": [
                {"role": "system", "content": self.systems[target]},
                {"role": "user", "content": user},
            ],
            "temperature": self.spec.temperature,
            "max_tokens": max_tokens,
        }
        if self.spec.seed is not None:
            request["seed"] = self.spec.seed
        if self.spec.json_mode:
            request["response_format"] = {"type": "json_object"}
        return request

    def _record(self, item: _Item, parsed: ParsedGrade, outcome: Outcome, share: int = 1) -> None:
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
            "completion_tokens": int(completion.get("completion_tokens", 0)) // share,
            "request_hash": outcome.request_hash,
            "batch_size": share,
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

    async def single(self, item: _Item) -> None:
        if item.target == "relevance":
            user = self.templates.relevance(item.prompt or "", item.response or "")
            parse: Callable[[str | None], ParsedGrade] = parse_relevance
        else:
            user = self.templates.user(item.target, item.text or "")
            parse = parse_severity
        outcome = await self.client.complete(
            self._request(item.target, user, self.spec.max_tokens), use_cache=self.use_cache
        )
        parsed = self._judge(outcome, parse)
        if parsed.status == "ok":
            self.client.remember(outcome)
        self._record(item, parsed, outcome)

    async def batch(self, items: list[_Item]) -> None:
        if len(items) == 1:
            await self.single(items[0])
            return
        target = items[0].target
        user = self.templates.batch(target, [i.text or "" for i in items])
        request = self._request(target, user, self.spec.max_tokens * len(items))
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


async def _run_jobs(grader: _Grader, jobs: Iterator[list[_Item]], workers: int) -> None:
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


def _prepare_run_dir(
    run_dir: Path, chunks: Iterable[pd.DataFrame], identity: dict[str, Any]
) -> tuple[dict[str, Any], Counter[str]]:
    """Fill a new run folder, or check that an existing one holds the same job.

    The input is validated, hashed and (for a new run) written as ``input.jsonl`` in one
    streamed pass (an invalid table raises part-way; :func:`~harness.runs.run_lock` then
    removes a folder created for it). Returns the previous manifest and how many items each
    target has (prompt: every row; response and relevance: rows with a response).
    """
    from .atomic import atomic_path
    from .pairs import jsonl_lines

    digest = hashlib.sha256()
    items: Counter[str] = Counter()

    def hashed_lines() -> Iterator[str]:
        for chunk in chunks:
            items["prompt"] += len(chunk)
            with_response = int(chunk["response"].notna().sum()) if "response" in chunk.columns else 0
            items["response"] += with_response
            items["relevance"] += with_response
            for line in jsonl_lines(chunk):
                digest.update(line.encode())
                yield line

    exists = (run_dir / MANIFEST).exists()
    if exists:
        for _ in hashed_lines():
            pass
    else:
        with atomic_path(run_dir / INPUT) as tmp, tmp.open("w", encoding="utf-8") as out:
            out.writelines(hashed_lines())
    identity["input_sha256"] = digest.hexdigest()
    if not exists:
        return {}, items
    previous = read_manifest(run_dir)
    for key in IDENTITY:
        if previous.get(key) != identity[key]:
            raise RunError(
                f"{run_dir} holds a different run ({key} was {previous.get(key)!r}, now "
                f"{identity[key]!r}); pass another --run-dir or delete the folder"
            )
    endpoints = previous.get("endpoints") or ([previous["endpoint"]] if previous.get("endpoint") else [])
    if endpoints and identity["endpoint"] not in endpoints and not identity.get("allow_new_endpoint"):
        raise RunError(
            f"{run_dir} was graded at {endpoints[-1]}, now at {identity['endpoint']}: one run would mix two "
            "graders' labels. Pass another --run-dir, or --same-grader if both endpoints serve the same "
            "grader (replicas of one deployment)"
        )
    return previous, items


_ATTEMPTS = re.compile(r"^gave up after \d+ attempts: ")


def _reason(error: str | None) -> str:
    """An item's error without its attempt count, so like failures group together."""
    return _ATTEMPTS.sub("", error or "no reason recorded")[:200]


def _summarise(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    counts: Counter[str] = Counter()
    by_target: dict[str, Counter[str]] = {}
    tokens = Counter[str]()
    items = billed_items = cache_hits = disagreements = 0
    reasons: dict[str, Counter[str]] = {}
    for record in records:  # one pass over a stream
        counts[record["status"]] += 1
        if record["status"] != "ok":
            reasons.setdefault(record["status"], Counter())[_reason(record.get("error"))] += 1
        by_target.setdefault(record["target"], Counter())[record["status"]] += 1
        cached = bool(record.get("cached"))
        key = "cached" if cached else "billed"
        tokens[f"{key}_prompt_tokens"] += int(record.get("prompt_tokens") or 0)
        tokens[f"{key}_completion_tokens"] += int(record.get("completion_tokens") or 0)
        items += 1
        billed_items += not cached
        cache_hits += cached
        disagreements += bool(record.get("disagreements"))
    return {
        "counts": {s: counts.get(s, 0) for s in STATUSES},
        "counts_by_target": {t: {s: c.get(s, 0) for s in STATUSES} for t, c in by_target.items()},
        "items": items,
        "cache_hits": cache_hits,
        "disagreements": disagreements,
        "tokens": dict(tokens),
        "reasons": {status: dict(c.most_common(5)) for status, c in reasons.items()},
        "prompt_tokens_per_billed_item": (
            round(tokens["billed_prompt_tokens"] / billed_items, 1) if billed_items else None
        ),
    }


def _check_response_column(data: str | Path | pd.DataFrame, mapping: dict[str, str] | None) -> None:
    """Refuse to grade responses of a table whose responses sit in an unmapped column."""
    from .pairs import iter_pairs, response_hint

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
    """
    from .pairs import iter_pairs, validate_pairs

    if _loop_running():  # called from a notebook cell: asyncio.run would refuse; use a thread
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1) as pool:
            return pool.submit(grade, data, spec, endpoint, run_dir=run_dir, cache_dir=cache_dir,
                               retry_statuses=retry_statuses, mapping=mapping, on_progress=on_progress,
                               same_grader=same_grader).result()
    if spec is None:
        spec = GradeSpec()
    if endpoint is None:
        from .config import Settings, resolve

        endpoint = resolve(Settings()).endpoint()  # as the CLI does: harness.toml, then the environment
    session_start = time.perf_counter()
    bad = [s for s in retry_statuses if s not in STATUSES or s == "ok"]
    if bad:
        raise ConfigError(f"--retry {bad[0]!r}: expected some of failed, unparsed, refused")
    chunks: Iterable[pd.DataFrame]
    if "response" in spec.targets or "relevance" in spec.targets:
        _check_response_column(data, mapping)
    if isinstance(data, (str, Path)):
        chunks = iter_pairs(data, mapping=mapping)  # streamed: the table is never whole in memory
        source = str(data)
    else:
        chunks = [validate_pairs(data)]
        source = str(data.attrs.get("source", "<dataframe>"))
    templates = load_template_set(spec.template_dir)
    shots = load_shots(spec.shots_path)
    folder = Path(run_dir)
    identity: dict[str, Any] = {
        "model": spec.model,
        "template_hash": templates.hash,
        "shots_hash": shots_hash(shots),
        "params": spec.params(),
        "endpoint": public_base_url(endpoint.base_url),
        "allow_new_endpoint": same_grader,
    }
    created = not folder.exists()
    ensure_folder(folder, flag="--run-dir")
    with run_lock(folder, remove_if_failed=created):  # one grading session per run folder
        previous, items = _prepare_run_dir(folder, chunks, identity)
        done: set[tuple[str, str]] = set()
        done_by_target: Counter[str] = Counter()
        dropped = 0
        for record in iter_labels(folder, repair=True):
            if record["status"] in retry_statuses:
                dropped += 1
            else:
                done.add((str(record["id"]), record["target"]))
                done_by_target[record["target"]] += 1
        if dropped:
            rewrite_labels(folder, (r for r in iter_labels(folder) if r["status"] not in retry_statuses))
        pending = sum(items[t] - done_by_target[t] for t in spec.targets)
        targets = sorted(set(previous.get("targets", [])) | set(spec.targets), key=TARGETS.index)
        endpoints = previous.get("endpoints") or ([previous["endpoint"]] if previous.get("endpoint") else [])
        manifest: dict[str, Any] = {
            **{k: v for k, v in identity.items() if k != "allow_new_endpoint"},
            "harness_version": __version__,
            "status": "running",
            "created": previous.get("created", _now()),
            "updated": _now(),
            "endpoints": [*endpoints, identity["endpoint"]] if identity["endpoint"] not in endpoints else endpoints,
            "targets": targets,
            "template_dir": str(templates.directory),
            "shots_path": spec.shots_path,
            "shots_count": len(shots),
            "input_path": previous.get("input_path", source),
            "input_rows": items["prompt"],
            "sessions": previous.get("sessions", 0) + 1,
        }
        write_json_atomic(folder / MANIFEST, manifest)
        progress = Progress(total=pending)
        cache: CompletionCache | None = None
        writer = LabelWriter(folder / LABELS, Redactor.of(endpoint.api_key))
        requests_sent = 0
        client_setup_s = 0.0
        try:
            cache = CompletionCache(cache_dir) if cache_dir is not None else None

            async def main() -> int:
                nonlocal client_setup_s
                async with GraderClient(endpoint, cache) as client:
                    progress.started = time.perf_counter()  # rates measure grading, setup_s the rest
                    made_before = client.setup_s  # the SDK client may already exist (no cache) or come later
                    grader = _Grader(spec, templates, shots, client, writer, progress, on_progress)
                    jobs = _jobs(folder, spec.targets, done, spec.items_per_request)
                    try:
                        await _run_jobs(grader, jobs, endpoint.concurrency)
                    finally:
                        client_setup_s = client.setup_s - made_before
                    return client.requests_sent

            requests_sent = asyncio.run(main())
            manifest["status"] = "complete"
            manifest.pop("error", None)
        except (KeyboardInterrupt, asyncio.CancelledError):
            manifest["status"] = "interrupted"
            raise
        except BaseException as exc:
            manifest["status"] = "failed"  # never left claiming a live run
            manifest["error"] = Redactor.of(endpoint.api_key).text(str(exc) or type(exc).__name__)
            raise
        finally:
            writer.close()
            if cache is not None:
                cache.close()
            manifest.update(_summarise(iter_labels(folder)))
            manifest["updated"] = _now()
            grading_s = max(0.0, progress.elapsed_s - client_setup_s)  # the SDK client is made on first use
            manifest["last_session"] = {
                "graded": progress.done,
                "requests_sent": requests_sent,
                "setup_s": round(progress.started - session_start + client_setup_s, 3),
                "elapsed_s": round(grading_s, 3),
                "items_per_s": round(progress.done / grading_s, 1) if grading_s > 0 else None,
            }
            if cache is not None and cache.notes:
                manifest["cache_notes"] = cache.notes
            write_json_atomic(folder / MANIFEST, manifest)
        return GradeResult(folder, manifest, progress.done)


def spec_digest(spec: GradeSpec, data: str) -> str:
    """A short stable name for a job, used for the default run folder."""
    material = repr((asdict(spec), str(Path(data).resolve())))
    return hashlib.sha256(material.encode()).hexdigest()[:8]
