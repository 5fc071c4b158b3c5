"""The machinery of a study run: steps fingerprinted and recorded in ``study.json``, the endpoint started on first
use."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ...core.atomic import write_json_atomic
from ...core.constants import VERSION
from ...core.errors import GraderError, ItemsFailedError
from ...io.provenance import file_sha256
from ...results.base import Result
from .file import GraderTable, Study

STATE = "study.json"


@dataclass
class StepOutcome:
    name: str
    status: str  # "ran" or "skipped" (unchanged)
    outputs: list[Path]
    seconds: float
    result: Result | None = None
    note: str = ""


@dataclass
class PlannedStep:
    """A step as the whole-study check sees it before anything runs: what it reads and what it writes."""

    name: str
    inputs: list[Path]
    claims: list[Any]


def claims_of(name: str, outputs: list[Path]) -> list[Any]:
    """What a step's outputs are, by their names (a step that writes more passes its own claims)."""
    from ...core.claims import Output

    param = f"the study's `out` ({name})"
    kinds = {".md": "document", ".html": "document", ".tex": "document", ".json": "result"}
    named = {
        "picks.jsonl": "pairs",
        "human_subset.jsonl": "pairs",
        "chosen_shots.jsonl": "shots",
        "study.json": "study",
    }
    claims = []
    for path in outputs:
        if path.name == "labels.jsonl":
            claims.append(Output(path.parent, param=param, run=True))
        else:
            claims.append(Output(path, param=param, kind=named.get(path.name) or kinds.get(path.suffix, "file")))
    return claims


@dataclass
class StudyResult:
    out: Path
    steps: list[StepOutcome] = field(default_factory=list)

    def result(self, name: str) -> Result | None:
        return next((s.result for s in self.steps if s.name == name), None)


def _hash_inputs(paths: list[Path]) -> list[tuple[str, str | None]]:
    """Each input's bytes hashed; a folder (a template folder, a run folder) by its files."""
    out: list[tuple[str, str | None]] = []
    for path in paths:
        if path.is_dir():
            files = (
                [path / "labels.jsonl"]
                if (path / "labels.jsonl").exists()
                else sorted(p for p in path.rglob("*") if p.is_file())
            )
            digest = hashlib.sha256("".join(f"{f.name}:{file_sha256(f)}" for f in files).encode()).hexdigest()
            out.append((str(path), digest))
        else:
            out.append((str(path), file_sha256(path)))
    return out


def fingerprint(table: Any, inputs: list[Path]) -> str:
    """What a step's result depends on: its settings and the bytes of its inputs (and harness's version)."""
    material = json.dumps(
        {"settings": _plain(table), "inputs": _hash_inputs(inputs), "version": VERSION}, sort_keys=True, default=str
    )
    return hashlib.sha256(material.encode()).hexdigest()


def _plain(value: Any) -> Any:
    """Settings as plain JSON values (pydantic tables dumped, nested dicts and lists walked)."""
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


class _State:
    """``study.json``: per finished step, its fingerprint and outputs (rewritten atomically after each step)."""

    def __init__(self, out: Path) -> None:
        self.path = out / STATE
        self.steps: dict[str, Any] = {}
        #: Steps begun and not finished (a kill, a failure), by the fingerprint they began with.
        self.started: dict[str, str] = {}
        if self.path.exists():
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                self.steps = dict(data.get("steps", {}))
                self.started = {str(k): str(v) for k, v in dict(data.get("started", {})).items()}
            except (OSError, ValueError, AttributeError, TypeError):
                self.steps, self.started = {}, {}  # a damaged state only costs re-running steps

    def unchanged(self, name: str, print_: str) -> bool:
        entry = self.steps.get(name)
        return bool(
            entry and entry.get("fingerprint") == print_ and all(Path(p).exists() for p in entry.get("outputs", []))
        )

    def begin(self, name: str, print_: str) -> str | None:
        """Note that a step begins; the fingerprint an unfinished earlier attempt began with, when it differs."""
        before = self.started.get(name)
        self.started[name] = print_
        self._write()
        return before if before != print_ else None

    def record(self, name: str, print_: str, outputs: list[Path]) -> None:
        self.steps[name] = {"fingerprint": print_, "outputs": [str(p) for p in outputs],
                            "finished": datetime.now(UTC).isoformat(timespec="seconds")}
        self.started.pop(name, None)
        self._write()

    def _write(self) -> None:
        write_json_atomic(
            self.path, {"harness_version": VERSION, "steps": self.steps, "started": self.started}, kind="study"
        )


class _Endpoint:
    """The study's endpoint: its settings resolved once (flag > environment > study file > default: the ``[endpoint]``
    table is :class:`~harness.grading.settings.EndpointSettings`), and ``harness serve`` started on first use and
    stopped at the end when the study names none."""

    def __init__(self, study: Study, flags: dict[str, Any] | None = None) -> None:
        from ...grading.settings import resolve

        self.study = study
        self.stack = contextlib.ExitStack()
        self.config: Any = None
        table = study.endpoint.model_dump(exclude_unset=True)
        table.setdefault("base_url", study.endpoint.base_url)  # the study's default: its own harness serve
        self.settings = resolve(flags or {}, file=table, job_env=False)
        self.embedded = self.settings.endpoint.embedded

    def get(self) -> Any:
        if self.config is not None:
            return self.config
        from ...serve.local_model import LOCAL_MODELS
        from ..embedded import job_endpoint

        # loading while the study starts; a grade waits for it only before its first request (a local language model
        # loads in about 20 s), so a study answered wholly from the cache never waits for one
        self.config = job_endpoint(
            self.stack, self.settings, [g.model for g in self.study.grader if g.model in LOCAL_MODELS]
        )
        if self.config.identity is None:  # asked once for the whole study (a loopback endpoint says what it serves)
            from ...grading.identity import endpoint_identity

            self.config = dataclasses.replace(self.config, identity=endpoint_identity(self.config).value)
        return self.config

    def for_model(self, model: str) -> Any:
        """The endpoint for one grader (:func:`harness.workflows.embedded.for_model`: the one local-model rule)."""
        from ..embedded import for_model

        return for_model(self.get(), self.settings, model)

    def close(self) -> None:
        self.stack.close()


class StudyRunner:
    """Runs the steps in order, skipping the unchanged ones."""

    def __init__(self, study: Study, out: Path, on_step: Callable[[StepOutcome], None] | None,
                 on_progress: Callable[[Any], None] | None, *, planning: bool = False,
                 flags: dict[str, Any] | None = None) -> None:
        self.study, self.out, self.on_step, self.on_progress = study, out, on_step, on_progress
        #: Planning: the steps are listed (:attr:`planned`), none runs (the whole study is checked first).
        self.planning = planning
        self.planned: list[PlannedStep] = []
        self.state = _State(out)
        self.endpoint = _Endpoint(study, flags)
        self.result = StudyResult(out)
        found = self.endpoint.settings  # a study keeps its cache beside its outputs unless told otherwise
        self.cache: Path | None = None if found.endpoint.no_cache else Path(found.endpoint.cache_dir) \
            if found.sources["cache_dir"] != "default" else out / ".cache"
        self.notes: list[str] = []

    def step(self, name: str, table: Any, inputs: list[Path], outputs: list[Path], run: Callable[[], Result | None],
             load: Callable[[], Result | None] = lambda: None, *, study_wide: bool = True,
             on_changed: Callable[[], None] | None = None, claims: list[Any] | None = None) -> None:
        """Run a step unless its fingerprint (its table, the study-wide settings when it reads them, its inputs' bytes)
        matches the one recorded when it last finished and its outputs exist. ``on_changed`` runs first when an
        unfinished earlier attempt (killed, failed) began with other settings or inputs: its half-made output is
        another job's and is set aside, not resumed. ``claims``: every file the step writes (default: its outputs, by
        their names), checked with the whole study's before any step runs."""
        if self.planning:  # a step's own claims name the study's `out`, and the step
            own = [dataclasses.replace(c, param=f"the study's `out` ({name})") for c in claims or []]
            self.planned.append(PlannedStep(name, inputs, [*claims_of(name, outputs), *own]))
            return
        info = self.study.study  # n_boot, seed, cluster and raters: every analysis reads them, no grade does
        wide = (
            {"n_boot": info.n_boot, "seed": info.seed, "cluster": info.cluster, "raters": info.raters}
            if study_wide
            else {}
        )
        print_ = fingerprint({"step": table, "study": wide}, inputs)
        started = time.perf_counter()
        if self.state.unchanged(name, print_):
            outcome = StepOutcome(name, "skipped", outputs, 0.0, load(), "inputs unchanged")
        else:
            before = len(self.notes)
            if self.state.begin(name, print_) is not None and on_changed is not None:
                on_changed()
            result = run()
            self.state.record(name, print_, outputs)
            outcome = StepOutcome(
                name, "ran", outputs, round(time.perf_counter() - started, 2), result, "; ".join(self.notes[before:])
            )
        self.result.steps.append(outcome)
        if self.on_step is not None:
            self.on_step(outcome)

    def run_dir(self, grader: GraderTable) -> Path:
        return self.out / grader.name

    def folder(self, name: str, *, key: str) -> Path:
        """The run folder of a study grader, of the study's jury, or of its derived run ([thresholds])."""
        if self.study.jury is not None and name == self.study.jury.name:
            return self.out / name
        if self.study.thresholds is not None and name == self.study.thresholds.name:
            return self.out / name
        return self.run_dir(self.study.grader_named(name, key=key))


def study_provenance(runner: StudyRunner, step: str, label_source: str, inputs: list[tuple[str, Any]]) -> Any:
    """A study step's provenance: its inputs and the study file itself (path and hash)."""
    from ...io.provenance import provenance_of

    return provenance_of(step, label_source, [*inputs, ("study", runner.study.file)])


def check_graded(result: Any, name: str) -> None:
    """A grade step that left failed items is not done: the study stops, naming the run folder and the fix."""
    failed = result.manifest.counts.get("failed", 0)
    if failed:
        raise ItemsFailedError(
            f"grader {name}: {failed} of {result.manifest.items} items failed ({result.run_dir}); fix the cause and "
            "run the study again (the failed items are graded again, the rest resumed)"
        )
    if result.manifest.status != "complete":
        raise GraderError(f"grader {name}: the run ended {result.manifest.status} ({result.run_dir})")
