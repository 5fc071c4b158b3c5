"""``grade``: pairs table -> rendered requests -> (cached) completions -> labels in a run folder.

Prompts and responses are graded separately, each with only its own text. A run is resumable:
re-running the same job grades only the (id, target) items that ``labels.jsonl`` lacks, so a
run killed at any point loses nothing it wrote and pays for nothing twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..core.constants import STATUSES
from ..core.errors import ConfigError
from ..core.redaction import Redactor
from ..io.runs import INPUT, read_labels
from ..results.manifest import Manifest
from .cache import public_base_url
from .endpoint import EndpointConfig, endpoint_of
from .grader import Progress
from .identity import endpoint_identity
from .jobs import GradeSpec, spec_of
from .runfolder import RunFolder
from .session import Session
from .settings import EndpointSettings, JobSettings
from .shots import Shot, load_shots, shots_hash
from .templates import load_template_set

if TYPE_CHECKING:
    import pandas as pd

    from ..io.records import Chunk
    from .batch_api import BatchOptions
    from .costs import Price



@dataclass
class GradeResult:
    """What :func:`grade` returns: the run folder, its manifest and how many items were graded now.

    ``labels`` (the input joined to the grader's labels) is read from the run folder on first
    use, so grading itself never holds every record in memory.
    """

    run_dir: Path
    manifest: Manifest
    graded_now: int

    @cached_property
    def labels(self) -> pd.DataFrame:
        from ..io.pairs import load_pairs
        from ..io.runs import labels_frame

        # grader_* columns, as `harness export`
        return labels_frame(load_pairs(self.run_dir / INPUT), read_labels(self.run_dir))


def _check_response_column(columns: list[str], name: str) -> None:
    """Refuse to grade responses of a table whose responses sit in an unmapped column."""
    from ..io.pairs import response_hint

    hint = response_hint(columns)
    if hint is not None:
        raise ConfigError(f"{name}: {hint} (or grade prompts only: `targets` prompt)")


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class HasBaseUrl(Protocol):
    """Anything that says where an endpoint listens: ``harness.start_server(...)``'s handle, for one."""

    @property
    def base_url(self) -> str: ...


Endpoint = EndpointConfig | str | HasBaseUrl


def as_endpoint(endpoint: Endpoint) -> EndpointConfig:
    """One endpoint, whichever way it was made: an EndpointConfig as is, a base URL, or an object with ``base_url``
    (the embedded server's handle); the key, if any, from ``OPENAI_API_KEY`` as the CLI reads it.

    >>> as_endpoint("http://127.0.0.1:8000/v1").base_url
    'http://127.0.0.1:8000/v1'
    """
    if isinstance(endpoint, EndpointConfig):
        return endpoint
    if isinstance(endpoint, EndpointSettings):
        return endpoint_of(endpoint)
    url = endpoint if isinstance(endpoint, str) else getattr(endpoint, "base_url", None)
    if not isinstance(url, str):
        raise ConfigError(
            f"endpoint={endpoint!r}: expected an EndpointConfig, a base URL or a server handle with a base_url",
            param="endpoint",
        )
    from .settings import resolve

    return endpoint_of(resolve({"base_url": url}).endpoint)


async def agrade(data: str | Path | pd.DataFrame, spec: GradeSpec | None = None, endpoint: Endpoint | None = None,
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
    spec: GradeSpec | JobSettings | None = None,
    endpoint: Endpoint | EndpointSettings | None = None,
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
        price: the grader's price (:class:`harness.grading.costs.Price`): the manifest then holds the
            run's billed cost.
        batch: grade through the provider's Batch API (:mod:`harness.grading.batch_api`) with these limits.
    """
    if _loop_running():  # called from a notebook cell: asyncio.run would refuse; use a thread
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1) as pool:
            return pool.submit(grade, data, spec, endpoint, run_dir=run_dir, cache_dir=cache_dir,
                               retry_statuses=retry_statuses, mapping=mapping, on_progress=on_progress,
                               same_grader=same_grader, price=price, batch=batch).result()
    spec = spec_of(spec) if isinstance(spec, JobSettings) else spec or GradeSpec()
    endpoint = as_endpoint(endpoint) if endpoint is not None else _endpoint_from_settings()
    session_start = time.perf_counter()
    _check_options(spec, retry_statuses, batch)
    claim_run_folder(Path(run_dir), data, spec)
    chunks, source = _input(data, mapping, spec)
    templates, shots, overlap = load_template_set(spec.template_dir), load_shots(spec.shots_path), [0]
    if shots:  # a graded item that is one of the exemplars was graded with its own answer shown
        chunks = _count_exemplars(chunks, shots, overlap)
    who = endpoint_identity(endpoint)  # once per grade: the cache key and the run folder name the same grader
    endpoint = replace(endpoint, identity=who.value)
    identity: dict[str, Any] = {
        "model": spec.model, "template_hash": templates.hash, "shots_hash": shots_hash(shots), "params": spec.params(),
        "endpoint": who.value,
    }
    folder = RunFolder(Path(run_dir))
    if batch is None:
        _refuse_open_batches(folder.path)
    with folder.session():  # one grading session per run folder
        previous, items = folder.prepare(chunks, identity, allow_new_endpoint=same_grader, url=endpoint.base_url)
        done, done_by_target, forget = folder.resume_set(retry_statuses)
        manifest = folder.start(identity, previous, items, targets=spec.targets, source=source, answered=who.answered,
                                details={
            "template_dir": str(templates.directory), "shots_path": spec.shots_path, "shots_count": len(shots),
            "replicas": [public_base_url(u) for u in endpoint.urls], "batch": batch is not None,
            **({"shots_overlap": overlap[0]} if shots else {})})
        progress = Progress(total=sum(items[t] - done_by_target[t] for t in spec.targets),
                            already=sum(done_by_target[t] for t in spec.targets))
        started = manifest

        def answered() -> None:  # the endpoint's first answer pins the folder to it at once (a kill -9 keeps it)
            folder.record_endpoint(started)

        run = Session(spec, endpoint, templates, shots, folder.path, done, progress, on_progress, batch, forget=forget,
                      on_answered=answered)
        run.schema_refused = _schema_refused(previous)
        manifest = _execute(run, folder, manifest, cache_dir=cache_dir, session_start=session_start, price=price,
                            redact=Redactor.of(endpoint.api_key), answered=who.answered)
        return GradeResult(folder.path, manifest, progress.done)


def _schema_refused(previous: Manifest | None) -> bool:
    """The endpoint refused json_schema in an earlier session of this run: ask json_object from the start."""
    last = previous.last_session if previous is not None else None
    return bool(last and last.response_format_used == "json-object")


def claim_run_folder(folder: Path, data: object, spec: GradeSpec, param: str = "`run_dir`") -> None:
    """Refuse, before any work, a run folder that is not harness's to fill, or that holds this grade's own input."""
    from ..core.claims import Output, claim

    table = data if isinstance(data, (str, Path)) else None
    claim([Output(folder, param=param, run=True)],
          inputs=[("the pairs table", table), ("`shots_path`", spec.shots_path)])


def _refuse_open_batches(folder: Path) -> None:
    """A synchronous grade of a run whose batches are still open would send (and pay for) their requests
    twice: refuse it, and say how to collect the batches instead."""
    from .batch_api import STATE, read_state

    if not (folder / STATE).exists():
        return
    open_batches = [b for b in read_state(folder)["batches"] if not b.get("recorded")]
    if open_batches:
        ids = ", ".join(str(b.get("id") or b.get("input_file_id")) for b in open_batches)
        held = sum(len(b["keys"]) for b in open_batches)
        raise ConfigError(f"{folder} has {len(open_batches)} batches not yet collected ({ids}; {held} requests): "
                          "grading without `batch` would send and bill those requests again. "
                          "Rerun with `batch` to collect them (`harness batch cancel` first to stop them; "
                          "cancelled batches are collected the same way)",
                          param="batch")


def _count_exemplars(chunks: Iterator[Chunk], shots: list[Shot], count: list[int]) -> Iterator[Chunk]:
    """The chunks unchanged, counting in ``count`` the rows whose id or text is an exemplar's."""
    ids = {s.source_id for s in shots if s.source_id}
    texts = {s.text for s in shots}
    for chunk in chunks:
        for line in chunk.lines:
            row = json.loads(line)
            count[0] += row["id"] in ids or row.get("prompt") in texts or row.get("response") in texts
        yield chunk


def _check_options(spec: GradeSpec, retry_statuses: Sequence[str], batch: BatchOptions | None) -> None:
    if batch is not None and spec.items_per_request != 1:
        raise ConfigError(
            "`batch`: one item per request (the Batch API already batches); drop `items_per_request`", param="batch"
        )
    bad = [s for s in retry_statuses if s not in STATUSES or s == "ok"]
    if bad:
        raise ConfigError(
            f"retry_statuses={bad[0]!r}: expected some of failed, unparsed, refused", param="retry_statuses"
        )


def _execute(run: Session, folder: RunFolder, manifest: Manifest, *, cache_dir: str | Path | None, session_start: float,
             price: Price | None, redact: Redactor, answered: bool) -> Manifest:
    """Run the session; whatever way it ends, the manifest says how (never left claiming a live run)."""
    status, error = "failed", None
    try:
        run.execute(cache_dir)
        status = "complete"
    except (KeyboardInterrupt, asyncio.CancelledError):
        status = "interrupted"
        raise
    except BaseException as exc:
        error = redact.text(str(exc) or type(exc).__name__)
        raise
    finally:
        manifest = folder.finish(manifest, status=status, error=error, session=run.figures(session_start),
                                 cache_notes=run.cache_notes, price=price, answered=answered or run.answered)
    return manifest


def _endpoint_from_settings() -> EndpointConfig:
    from .settings import resolve

    return endpoint_of(resolve().endpoint)  # as the CLI does: the environment, then harness.toml


def _input(
    data: str | Path | pd.DataFrame, mapping: dict[str, str] | None, spec: GradeSpec
) -> tuple[Iterator[Chunk], str]:
    """The input as validated chunks of JSON lines (a file is streamed, never whole in memory) and its name."""
    from ..io.records import chunks_of_frame, table_chunks

    if isinstance(data, (str, Path)):
        chunks = table_chunks(data, mapping=mapping)
        name = str(data)
    else:
        from ..io.pairs import validate_pairs

        chunks = chunks_of_frame(validate_pairs(data))
        name = str(data.attrs.get("source", "<dataframe>"))
    if "response" not in spec.targets and "relevance" not in spec.targets:
        return chunks, name
    first = next(chunks, None)
    if first is not None:
        _check_response_column(first.columns, name if isinstance(data, (str, Path)) else "the table")
    return itertools.chain([first] if first is not None else [], chunks), name


def spec_digest(spec: GradeSpec, data: str) -> str:
    """A short stable name for a job, used for the default run folder."""
    material = repr((asdict(spec), str(Path(data).resolve())))
    return hashlib.sha256(material.encode()).hexdigest()[:8]


#: The sub-folders ``grade --repeats K`` writes: ``repeat-1`` … ``repeat-K``.
REPEAT_PREFIX = "repeat-"


def grade_repeats(
    data: str | Path | pd.DataFrame,
    spec: GradeSpec,
    endpoint: Endpoint | None = None,
    *,
    run_dir: str | Path,
    repeats: int,
    **options: Any,
) -> list[GradeResult]:
    """The same job graded ``repeats`` times at the spec's temperature, into ``run_dir/repeat-1`` … ``repeat-K``.

    Repeat ``k`` (from 0) samples with seed ``spec.seed + k``, so each draw has its own seed and its own cache entries
    (the seed is part of the cache key) and a re-run resumes each repeat. ``harness stability RUN_DIR`` reads them.
    ``options`` are :func:`grade`'s.
    """
    from ..core.errors import ConfigError

    if not 2 <= repeats <= MAX_REPEATS:
        raise ConfigError(f"repeats={repeats}: expected 2 to {MAX_REPEATS} (one grade is a plain run)", param="repeats")
    base = spec.seed if spec.seed is not None else 0
    folders = [Path(run_dir) / f"{REPEAT_PREFIX}{k + 1}" for k in range(repeats)]
    for folder in folders:  # every repeat's folder checked before the first is graded
        claim_run_folder(folder, data, spec)
    return [
        grade(data, replace(spec, seed=base + k), endpoint, run_dir=folder, **options)
        for k, folder in enumerate(folders)
    ]


MAX_REPEATS = 100


def repeat_folders(run_dir: str | Path) -> list[Path]:
    """The repeat run folders of a ``grade --repeats K`` folder, in order (none when it holds none)."""
    folder = Path(run_dir)
    found = [p for p in folder.glob(f"{REPEAT_PREFIX}*") if p.is_dir() and p.name[len(REPEAT_PREFIX):].isdigit()]
    return sorted(found, key=lambda p: int(p.name[len(REPEAT_PREFIX):]))
