"""``harness serve``, ``grade``, ``probe`` and ``calibrate-shots``: the commands that talk to a grader endpoint.

The three that grade take the same endpoint flags, made from one declaration
(:class:`harness.grading.settings.EndpointSettings`); ``grade`` and ``calibrate-shots`` also the job's
(:class:`harness.grading.settings.JobSettings`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from ..core.constants import DEFAULT_SERVE_PORT
from ..grading.settings import EndpointSettings, JobSettings
from ..steps.settings import ProbeSettings, ShotSearchSettings
from .common import (
    JsonOpt,
    LimitOpt,
    MapOpt,
    SampleOpt,
    SampleSeedOpt,
    deprecated,
    errors,
    mapping_of,
    split,
)
from .options import with_layers, with_settings

if TYPE_CHECKING:
    from ..grading.jobs import GradeSpec

ConfigOpt = Annotated[Optional[Path], typer.Option(help=(
    "Settings file (default harness.toml; below flags and the environment)."))]


def serve(
    host: Annotated[str, typer.Option(help="Address to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (1 to 65535).")] = DEFAULT_SERVE_PORT,
    fit: Annotated[Optional[Path], typer.Option(help=(
        "Labeled pairs table to fit the embedded graders on (default: the bundled sample; read before the server "
        "listens); texts of it are graded out of fold."))] = None,
    model_name: Annotated[Optional[list[str]], typer.Option("--model-name", help=(
        "Graders to serve (default all: harness-baseline, harness-small, harness-literal; smollm2-135m is a real "
        "language model, make install-local)."))] = None,
    api_key: Annotated[Optional[str], typer.Option(
        help="Require this bearer key.", envvar="HARNESS_SERVE_API_KEY")] = None,
    latency_ms: Annotated[float, typer.Option(
        help="Added latency per request, in milliseconds (0 to 3,600,000).")] = 0.0,
    fail_rate: Annotated[float, typer.Option(help="Share of requests given an injected fault (0-1).")] = 0.0,
    fail_modes: Annotated[Optional[str], typer.Option(help="Comma-separated fault modes (default: all).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the fault injection (0 to 4,294,967,295).")] = 0,
    hang_s: Annotated[float, typer.Option(
        help="How long the 'timeout' fault hangs, in seconds (0 to 3,600).")] = 30.0,
    batch_fault: Annotated[Optional[str], typer.Option(help=(
        "Fault every batch: fail_validation, expire, error_lines, slow or bad_lines (for tests)."))] = None,
    gullible: Annotated[bool, typer.Option("--gullible", help=(
        "Obey instructions to the grader found in graded texts (to test flip-rate measurement)."))] = False,
    answer_as: Annotated[Optional[str], typer.Option(help=(
        "Grade every request with this grader and name it in the answer, whatever was asked (to test replicas "
        "that lie)."))] = None,
    no_prefix_reuse: Annotated[bool, typer.Option("--no-prefix-reuse", help=(
        "Local language models: recompute the shared few-shot prefix for every request (to measure what reusing "
        "it saves)."))] = False,
    refuse_json_schema: Annotated[bool, typer.Option("--refuse-json-schema", help=(
        "Answer every response_format json_schema with a 400 naming it, as an endpoint without structured outputs "
        "does (for tests)."))] = False,
) -> None:
    """Run the embedded OpenAI-compatible endpoint: small in-context graders (not LLMs), cross-fitted so no text is
    graded in-sample.

    Requests are checked as OpenAI checks them (a bad parameter is a 400 naming it). Exit codes: 2 a bad
    flag or --fit table (nothing starts); 0 when stopped.
    """
    with errors():
        from ..serve.config import FAULT_MODES, ServeConfig
        from ..serve.graders import PROFILES
        from ..serve.runner import serve_forever

        config = ServeConfig(
            model_names=tuple(model_name or PROFILES),
            api_key=api_key,
            latency_ms=latency_ms,
            fail_rate=fail_rate,
            fail_modes=tuple(fail_modes.split(",")) if fail_modes else FAULT_MODES,
            seed=seed,
            hang_s=hang_s,
            gullible=gullible,
            batch_fault=batch_fault,
            answer_as=answer_as,
            prefix_reuse=not no_prefix_reuse,
            refuse_json_schema=refuse_json_schema,
        )
        def listening() -> None:  # printed once the socket accepts connections
            typer.echo(f"harness serve: http://{host}:{port}/v1 (models: {', '.join(config.model_names)}; "
                       "fitting in the background, GET /health says when ready)", err=True)

        serve_forever(str(fit) if fit else None, config, host=host, port=port, on_listening=listening)


@with_layers(EndpointSettings, JobSettings)
def grade(
    data: Annotated[Path, typer.Argument(help="Pairs table to grade.")],
    given: dict[str, Any],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help=(
        "A folder: the run folder (default runs/<model>-<data>-<hash>)."))] = None,
    run_dir: Annotated[Optional[Path], typer.Option(hidden=True, help="Deprecated spelling of --out.")] = None,
    no_json_mode: Annotated[bool, typer.Option(
        "--no-json-mode", hidden=True, help="Deprecated: --response-format none.")] = False,
    retry: Annotated[Optional[str], typer.Option(help="Statuses to grade again, e.g. failed,unparsed.")] = None,
    mapping: MapOpt = None,
    config: ConfigOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    limit: LimitOpt = None,
    sample: SampleOpt = None,
    sample_seed: SampleSeedOpt = 0,
    same_grader: Annotated[bool, typer.Option("--same-grader", help=(
        "Resume a run folder graded at another endpoint that serves the same grader (replicas)."))] = False,
    allow_failed: Annotated[bool, typer.Option("--allow-failed", help=(
        "Exit 0 even when items ended 'failed' (default: exit 3)."))] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help=(
        "Render every request and estimate tokens and price; send nothing."))] = False,
    batch: Annotated[bool, typer.Option("--batch", help=(
        "Grade through the provider's Batch API (batch ids kept in the run folder; a rerun polls them)."))] = False,
    batch_max_requests: Annotated[Optional[int], typer.Option(
        help="Requests per batch file at most (default 50,000).")] = None,
    price_input: Annotated[Optional[float], typer.Option(
        help="Price per million prompt tokens (or [prices] in harness.toml).")] = None,
    price_output: Annotated[Optional[float], typer.Option(help="Price per million completion tokens.")] = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the manifest as JSON instead of the summary.")] = False,
) -> None:
    """Grade prompts and/or responses into a resumable run folder.

    Settings come from flags, then HARNESS_* variables, then harness.toml, then the defaults. Exit codes: 0 done; 3
    done but some items ended 'failed' (see the reasons; fix and re-run with --retry failed); 2 bad input; 1 the job
    stopped (endpoint unreachable, 401/404); 130 interrupted (re-run to resume).
    """
    with errors():
        from ..grading.grade import grade as run_grade
        from ..grading.jobs import spec_of
        from ..grading.settings import resolve
        from ..workflows.embedded import for_model, job_endpoint
        from .console import GradeProgress

        if no_json_mode:
            given.setdefault("response_format", deprecated("none", "--no-json-mode", "--response-format none"))
        settings = resolve(given, config=config)
        spec, job = spec_of(settings.job), settings.job
        run_dir = out or deprecated(run_dir, "--run-dir", "--out")
        folder = _claimed(run_dir or _default_run_dir(spec, data), data, spec, job.repeats,
                          dry_run=dry_run)
        price = _price(spec.model, price_input, price_output, config)
        source = _rows(data, mapping, limit, sample, sample_seed)
        cache_dir = None if settings.endpoint.no_cache else settings.endpoint.cache_dir
        if dry_run:
            return _dry_run(source, spec, mapping, price, batch=batch, no_cache=cache_dir is None,
                            as_json=as_json)
        with ExitStack() as stack:
            # an embedded server starts once the inputs are read; its identity is the same on every port it gets
            endpoint = for_model(job_endpoint(stack, settings, [spec.model]), settings, spec.model)
            _announce(settings, endpoint, folder)
            if job.repeats > 1:
                _repeats(source, spec, endpoint, folder, job.repeats, quiet=quiet, as_json=as_json,
                         allow_failed=allow_failed, mapping=mapping, retry=retry, cache_dir=cache_dir)
                return
            fresh = run_dir is None and _made(folder)
            with GradeProgress(enabled=not quiet) as progress, _dropped_if_empty(folder, fresh):
                result = run_grade(source, spec, endpoint, run_dir=folder, cache_dir=cache_dir,
                                   retry_statuses=split(retry), mapping=mapping_of(mapping),
                                   on_progress=progress.update, same_grader=same_grader, price=price,
                                   batch=_batch_options(batch, batch_max_requests))
        _finish(result, as_json=as_json, allow_failed=allow_failed)


@with_layers(EndpointSettings)
@with_settings(ProbeSettings)
def probe(
    run_dir: Annotated[Path, typer.Argument(help=(
        "The run folder to probe (its model, template, shots and sampling are reused)."))],
    settings: ProbeSettings,
    given: dict[str, Any],
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help=(
        "A folder: the probe's files and its run (default RUN/probe-<kind>)."))] = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Is the grader swayed by what should not matter? Grade the run again with one perturbation; flip rate and
    shift with CIs.

    The endpoint defaults to the one the run was graded at."""
    with errors():
        from ..grading.identity import graded_url
        from ..grading.settings import resolve
        from ..io.runs import read_manifest
        from ..workflows.embedded import for_model, job_endpoint
        from ..workflows.probe import run_probe
        from .analysis_commands import show
        from .console import GradeProgress

        manifest = read_manifest(run_dir)
        fallback = {"base_url": graded_url(manifest), "model": manifest.model}
        found = resolve(given, config=config, fallback=fallback)
        with ExitStack() as stack, GradeProgress(enabled=not quiet) as progress:
            endpoint = for_model(job_endpoint(stack, found, [manifest.model]), found, manifest.model)
            result = run_probe(run_dir, settings, endpoint, out=out, on_progress=progress.update,
                               cache_dir=None if found.endpoint.no_cache else found.endpoint.cache_dir)
        show(result, as_json)
        typer.echo(f"wrote {Path(result.probe_run).parent / 'probe.json'}", err=True)


def _claimed(folder: Path, data: Path, spec: Any, repeats: int, *, dry_run: bool) -> Path:
    """The run folder (each repeat's), checked before anything is read or started: harness's to fill, not the input."""
    from ..grading.grade import claim_run_folder

    for part in ([folder / f"repeat-{k}" for k in range(1, repeats + 1)] if repeats > 1 else [folder]):
        if not dry_run:
            claim_run_folder(part, data, spec, param="`out`")
    return folder


def _dry_run(source: Any, spec: Any, mapping: str | None, price: Any, *,
             batch: bool, no_cache: bool, as_json: bool) -> None:
    """``grade --dry-run``: every request rendered and counted, the estimate printed; nothing sent."""
    from ..grading.costs import dry_run as estimate
    from .console import print_dry_run, print_json

    found = estimate(source, spec, mapping=mapping_of(mapping), price=price, batch=batch,
                     dedupe=batch or not no_cache)
    print_json(found) if as_json else print_dry_run(found)


@contextmanager
def _dropped_if_empty(folder: Path, fresh: bool) -> Iterator[None]:
    """A run folder this grade made is removed again when the grade fails before writing a label; never one that
    another grade holds (two grades of one default folder started together: the refused one leaves it alone)."""
    from ..core.errors import FolderBusyError

    try:
        yield
    except FolderBusyError:
        raise
    except Exception:
        _drop_if_empty(folder, fresh)
        raise


def _made(folder: Path) -> bool:
    """Make the default run folder; whether this process made it (of two grades started together, one did)."""
    if folder.exists():
        return False
    try:
        folder.mkdir(parents=True)
    except OSError:  # made by another grade just now, or not makeable: the grade names the folder and the reason
        return False
    return True


def _repeats(source: Any, spec: Any, endpoint: Any, folder: Path, repeats: int, *, quiet: bool, as_json: bool,
             allow_failed: bool, mapping: str | None, retry: str | None, cache_dir: str | None) -> None:
    """``grade --repeats K``: the job K times into FOLDER/repeat-1 … repeat-K; exit 3 when any left items failed."""
    from ..grading.grade import grade_repeats
    from .console import GradeProgress, print_json

    with GradeProgress(enabled=not quiet) as progress:
        results = grade_repeats(source, spec, endpoint, run_dir=folder, repeats=repeats,
                                cache_dir=cache_dir, mapping=mapping_of(mapping),
                                on_progress=progress.update, retry_statuses=split(retry))
    if as_json:
        print_json([r.manifest.to_json() for r in results])
    else:
        for k, result in enumerate(results, start=1):
            counts = ", ".join(f"{n} {s}" for s, n in sorted(result.manifest.counts.items()))
            typer.echo(f"repeat {k} (seed {result.manifest.params.get('seed')}): {result.run_dir}: {counts}")
        typer.echo(f"next: harness stability {folder}", err=True)
    failed = sum(r.manifest.counts.get("failed", 0) for r in results)
    if failed and not allow_failed:
        typer.echo(f"error: {failed} items failed over the repeats; fix the cause and re-run with --retry failed, "
                   "or pass --allow-failed", err=True)
        raise typer.Exit(3)


def _finish(result: Any, *, as_json: bool, allow_failed: bool) -> None:
    """The grade's summary (or manifest), and exit 3 when items ended failed (unless allowed)."""
    from .console import print_grade_summary, print_json

    print_json(result.manifest) if as_json else print_grade_summary(result)
    failed = result.manifest.counts.get("failed", 0)
    if failed and not allow_failed:
        typer.echo(f"error: {failed} of {result.manifest.items} items failed (reasons above); the run "
                   "folder is kept: fix the cause and re-run with --retry failed, or pass --allow-failed", err=True)
        raise typer.Exit(3)


def _drop_if_empty(folder: Path, fresh: bool) -> None:
    """A default-named run folder this command made, that failed before grading anything, is removed (the
    corrected command names another folder; a failed start must not litter runs/)."""
    from ..core.ownership import remove_run_folder

    labels = folder / "labels.jsonl"
    unlabelled = not labels.exists() or labels.stat().st_size == 0
    if fresh and folder.is_dir() and not (folder / "batches.json").exists() and unlabelled:
        remove_run_folder(folder)
        if not folder.exists():
            typer.echo(f"removed {folder}: the run graded nothing", err=True)


@with_layers(EndpointSettings, JobSettings, exclude=("targets", "shots", "seed", "repeats", "samples", "logprobs"))
@with_settings(ShotSearchSettings)
def calibrate_shots(
    pool: Annotated[Path, typer.Option(help="Labeled pairs table: exemplar pool, dev and test come from it.")],
    settings: ShotSearchSettings,
    given: dict[str, Any],
    out: Annotated[Path, typer.Option(
        "--out", "-o", help="A file: the chosen shots (JSONL).")] = Path("runs/chosen_shots.jsonl"),
    run_root: Annotated[Path, typer.Option(
        help="Folder for the candidate runs (and shot_search.json).")] = Path("runs/shot-search"),
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Choose few-shot exemplars on a dev split; compare zero-shot, default and chosen on test (both sides, one answer
    per request; the search's --seed splits the pool)."""
    with errors():
        from ..grading.jobs import spec_of
        from ..grading.settings import resolve
        from ..grading.templates import default_shots_path
        from ..io.pairs import load_pairs, select_rows
        from ..io.provenance import provenance_of, stamped
        from ..steps.settings import mapping_of
        from ..workflows.embedded import for_model, job_endpoint
        from ..workflows.shot_search import calibrate_shots as run_search
        from ..workflows.shot_search import claim_search
        from .analysis_commands import show

        claim_search(run_root, out, inputs=[("`pool`", pool)])
        found = resolve({**given, "targets": ["prompt", "response"]}, config=config)
        spec = spec_of(found.job, shots_path=None)
        frame = select_rows(load_pairs(pool, mapping=mapping_of(settings.map)), limit=settings.limit,
                            sample=settings.sample, seed=settings.sample_seed)
        cache_dir = None if found.endpoint.no_cache else found.endpoint.cache_dir
        with ExitStack() as stack:
            endpoint = for_model(job_endpoint(stack, found, [spec.model]), found, spec.model)
            result = run_search(frame, spec, endpoint, run_root=run_root, out=out,
                                settings=settings, cache_dir=cache_dir)
        inputs: list[tuple[str, str | Path | None]] = [("pool", pool), ("default shots", default_shots_path())]
        result = stamped(result, provenance_of("shot-search", "grader vs human", inputs))
        result.write(run_root / "shot_search.json")
        show(result, as_json)


def _rows(data: Path, mapping: str | None, limit: int | None, sample: int | None, seed: int) -> Any:
    """The table to grade: the file itself (streamed), or the rows ``--limit``/``--sample`` pick from it."""
    if limit is None and sample is None:
        return data
    from ..io.pairs import load_pairs, select_rows

    if limit is not None and sample is None and limit >= 1:  # the first rows, streamed: a 1 GB file is not read whole
        import json

        import pandas as pd

        from ..io.records import table_chunks

        lines: list[str] = []
        for chunk in table_chunks(data, mapping=mapping_of(mapping)):
            lines.extend(chunk.lines[: limit - len(lines)])
            if len(lines) >= limit:
                break
        frame = pd.DataFrame([json.loads(line) for line in lines])
        frame.attrs["source"] = str(data)
        return frame
    return select_rows(load_pairs(data, mapping=mapping_of(mapping)), limit=limit, sample=sample, seed=seed)


def _batch_options(batch: bool, max_requests: int | None) -> Any:
    if not batch:
        return None
    from ..core.errors import ConfigError
    from ..grading.batch_api import options_from_environment

    if max_requests is not None and max_requests < 1:
        raise ConfigError(f"--batch-max-requests {max_requests}: expected an integer >= 1")
    return options_from_environment(max_requests=max_requests)


def _price(model: str, price_input: float | None, price_output: float | None, config: Path | None) -> Any:
    """The grader's price: both flags, else ``[prices.<model>]`` of harness.toml, else None."""
    from ..core.errors import ConfigError
    from ..grading.costs import Price, load_prices

    if (price_input is None) != (price_output is None):
        raise ConfigError("--price-input and --price-output go together (per million tokens)")
    if price_input is not None and price_output is not None:
        return Price(price_input, price_output)
    return load_prices(config).get(model)


def _announce(settings: Any, endpoint: Any, folder: Path) -> None:
    """Say, before anything is sent, which grader at which endpoint, and where each came from."""
    from ..core.display import printable
    from ..grading.cache import public_base_url

    where = settings.sources
    urls = [public_base_url(u) for u in endpoint.urls]  # never a key in a query string or user:password
    at = urls[0] if not endpoint.replicas else f"{len(urls)} replicas ({', '.join(urls)})"
    served = "harness serve, started for this grade" if settings.endpoint.embedded else where["base_url"]
    job = settings.job
    line = (f"grading with model {job.model} ({where['model']}) at {at} ({served}) into {folder}; shots: "
            f"{'none (zero-shot)' if job.shots == 'none' else job.shots}; response format {job.response_format}")
    if where["model"] == "default" or where["base_url"] == "default":
        line += "; defaults are the embedded grader (`harness serve`): pass --model and --base-url for a real one"
    typer.echo(printable(line), err=True)


def _default_run_dir(spec: GradeSpec, data: Path) -> Path:
    from ..grading.grade import spec_digest

    safe_model = "".join(ch if ch.isalnum() or ch in "-._" else "_" for ch in spec.model)
    return Path("runs") / f"{safe_model}-{data.stem}-{spec_digest(spec, str(data))}"


def register(app: typer.Typer) -> None:
    """Add the grading commands to ``app``."""
    app.command()(serve)
    app.command()(grade)
    app.command("calibrate-shots")(calibrate_shots)
    app.command()(probe)
