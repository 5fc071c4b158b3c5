"""A study file (``STUDY.toml``): the data, the graders and the analyses of one study, read strictly.

Paths inside the file are relative to the file itself (so a study folder can move); the output
folder ``out`` is relative to the working directory, as every ``runs/…`` path is. An unknown key,
a wrong type or a missing file is a :class:`~harness.core.errors.ConfigError` naming the file and
the key (``study.toml: grader[2].tempalte: unknown key``); a TOML syntax error names its line and
column. API keys never go in a study file: ``[endpoint]`` takes the same keys as ``harness.toml``
except ``api_key``, which comes from the environment (``OPENAI_API_KEY``).

A minimal study::

    [study]
    out = "runs/my-study"
    data = "pairs.jsonl"
    human = "pairs.jsonl"

    [endpoint]
    base_url = "embedded"          # start harness serve for the study, or an OpenAI-compatible URL

    [[grader]]
    name = "baseline"
    model = "harness-baseline"

    [calibrate]
    [analyze]
    by = "model"
    [report]
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..core.constants import DEFAULT_N_BOOT, DEFAULT_SEED
from ..core.errors import ConfigError

EMBEDDED = "embedded"
Target = Literal["prompt", "response", "relevance"]
DEFAULT_TARGETS: tuple[Target, ...] = ("prompt", "response")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)  # "100" is not 100, "yes" not true


class StudyInfo(_Strict):
    name: str = "study"
    out: str
    data: str
    human: str | None = None
    #: Several annotators' labels (harness agreement's wide table) and their column prefixes.
    ratings: str | None = None
    raters: list[str] = Field(default_factory=list)
    n_boot: int = Field(default=DEFAULT_N_BOOT, ge=100)
    seed: int = DEFAULT_SEED
    cluster: str | None = None


class EndpointTable(_Strict):
    base_url: str = EMBEDDED
    azure_api_version: str | None = None
    concurrency: int = Field(default=16, ge=1)
    timeout_s: float | None = Field(default=None, gt=0)
    max_attempts: int | None = Field(default=None, ge=1)
    transport: str | None = None
    cache_dir: str | None = None


class GraderTable(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    model: str
    #: A template folder, or "default" for the bundled templates.
    template: str = "default"
    #: "none" (zero-shot, as harness grade without --shots), "default" (the bundled exemplars), "chosen" (the shot
    #: search's pick) or a file.
    shots: str = "none"
    targets: list[Target] = Field(default_factory=lambda: list(DEFAULT_TARGETS))
    logprobs: bool = False
    samples: int = Field(default=1, ge=1)
    temperature: float = 0.0
    items_per_request: int = Field(default=1, ge=1)


class ShotSearchTable(_Strict):
    grader: str
    k: int = Field(default=4, ge=1)
    n_random: int = Field(default=3, ge=0)
    greedy_steps: int = Field(default=2, ge=0)
    greedy_candidates: int = Field(default=3, ge=1)
    dev_frac: float = Field(default=0.3, gt=0, lt=1)
    test_frac: float = Field(default=0.3, gt=0, lt=1)


class CalibrateTable(_Strict):
    graders: list[str] | None = None
    threshold: int = Field(default=1, ge=1, le=3)
    by: str | None = None
    epsilon: float = Field(default=0.1, gt=0)


class CompareTable(_Strict):
    graders: list[str] | None = None
    threshold: int = Field(default=1, ge=1, le=3)


class AgreementTable(_Strict):
    epsilon: float = Field(default=0.1, gt=0)


class AnalyzeTable(_Strict):
    grader: str | None = None
    by: str | None = None
    #: A human-labelled random subset of the graded pairs (corrects every share by PPI)…
    human: str | None = None
    #: …or a share of the study's human file's prompt clusters drawn at random to play one (a simulated labelling round).
    human_share: float | None = Field(default=None, gt=0, le=1)


class PlanTable(_Strict):
    grader: str | None = None
    metric: Literal["kappa", "kappa-quadratic", "recall"] = "kappa-quadratic"
    side: Literal["prompt", "response"] = "prompt"
    target_width: float = Field(default=0.10, gt=0, lt=2)
    studies: int = Field(default=200, ge=10)
    n_boot: int = Field(default=200, ge=50)


class SelectTable(_Strict):
    grader: str | None = None
    budget: int = Field(ge=1)
    strategy: Literal["uniform", "stratified", "active"] = "uniform"


class ReportTable(_Strict):
    latex: bool = False
    view: bool = True


class Study(_Strict):
    study: StudyInfo
    endpoint: EndpointTable = EndpointTable()
    grader: list[GraderTable] = Field(min_length=1)
    shot_search: ShotSearchTable | None = None
    calibrate: CalibrateTable | None = None
    compare: CompareTable | None = None
    agreement: AgreementTable | None = None
    analyze: AnalyzeTable | None = None
    plan: PlanTable | None = None
    select: SelectTable | None = None
    report: ReportTable | None = None
    #: The study file's folder (set on reading): relative paths resolve against it.
    root: Path = Field(default=Path("."), exclude=True)
    #: The study file itself (set on reading), named in every result's provenance.
    file: Path | None = Field(default=None, exclude=True)

    def path(self, value: str) -> Path:
        """A path of the study file, resolved against its folder."""
        given = Path(value).expanduser()
        return given if given.is_absolute() else self.root / given

    @property
    def out(self) -> Path:
        return Path(self.study.out)

    def grader_named(self, name: str | None, *, key: str) -> GraderTable:
        if name is None:
            return self.grader[0]
        found = next((g for g in self.grader if g.name == name), None)
        if found is None:
            raise ConfigError(f"{key}: no grader named {name!r}; the study's graders are {[g.name for g in self.grader]}")
        return found


def _where(error: dict[str, Any]) -> str:
    parts: list[str] = []
    for step in error["loc"]:
        if isinstance(step, int):
            parts[-1] += f"[{step + 1}]"
        else:
            parts.append(str(step))
    return ".".join(parts)


def read_study(path: str | Path) -> Study:
    """Read and check a study file; every problem names the file and the key (or line and column)."""
    file = Path(path)
    if file.is_dir():
        raise ConfigError(f"{file} is a folder; expected a study file (TOML), e.g. harness/data/demo.toml")
    if not file.is_file():
        raise ConfigError(f"{file}: no such study file")
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: invalid TOML: {exc}") from None
    for reserved in ("root", "file"):  # set by this reader, not by the file
        if reserved in data:
            raise ConfigError(f"{file}: {reserved}: unknown key")
    for where, table in (("endpoint.", data.get("endpoint")), ("", data)):
        if isinstance(table, dict) and "api_key" in table:
            raise ConfigError(f"{file}: {where}api_key: keys never go in a study file; set OPENAI_API_KEY (or AZURE_OPENAI_API_KEY)")
    try:
        study = Study.model_validate({**data, "root": file.resolve().parent, "file": file.resolve()})
    except ValidationError as exc:
        error = exc.errors()[0]
        what = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
        raise ConfigError(f"{file}: {_where(dict(error))}: {what}") from None
    _check_files(study, file)
    _check_names(study, file)
    _check_tables(study, file)
    return study


def _check_tables(study: Study, file: Path) -> None:
    """Read the data and human files now, so a bad row or a missing column stops the study before any grading is paid for."""
    from ..core.constants import LABEL_COLUMNS
    from ..core.errors import DataError
    from ..io.pairs import load_pairs

    def read(key: str, value: str) -> Any:
        try:
            return load_pairs(study.path(value))
        except DataError as exc:
            raise ConfigError(f"{file}: {key}: {exc}") from None

    data = read("study.data", study.study.data)
    human = read("study.human", study.study.human) if study.study.human else None
    if human is not None and not any(c in human.columns for c in LABEL_COLUMNS):
        raise ConfigError(f"{file}: study.human: {study.path(study.study.human or '')} has no prompt_*/response_* label columns "
                          "to compare the graders with")
    for key, column in (("analyze.by", study.analyze.by if study.analyze else None),
                        ("calibrate.by", study.calibrate.by if study.calibrate else None), ("study.cluster", study.study.cluster)):
        if column is not None and column not in data.columns:
            raise ConfigError(f"{file}: {key}: {column!r} is not a column of {study.path(study.study.data)}; it has "
                              f"{sorted(map(str, data.columns))}")


def _check_files(study: Study, file: Path) -> None:
    given = [("study.data", study.study.data), ("study.human", study.study.human), ("study.ratings", study.study.ratings),
             ("analyze.human", study.analyze.human if study.analyze else None)]
    given += [(f"grader[{k + 1}].shots", g.shots) for k, g in enumerate(study.grader) if g.shots not in ("default", "none", "chosen")]
    given += [(f"grader[{k + 1}].template", g.template) for k, g in enumerate(study.grader) if g.template != "default"]
    for key, value in given:
        if value is not None and not study.path(value).exists():
            raise ConfigError(f"{file}: {key}: {study.path(value)}: no such file")


def _check_names(study: Study, file: Path) -> None:
    names = [g.name for g in study.grader]
    if len(set(names)) != len(names):
        raise ConfigError(f"{file}: grader: two graders share a name ({names}); each names its run folder")
    needs_human = [k for k, t in (("calibrate", study.calibrate), ("compare", study.compare), ("shot_search", study.shot_search),
                                  ("plan", study.plan)) if t is not None]
    if needs_human and study.study.human is None:
        raise ConfigError(f"{file}: study.human: [{needs_human[0]}] compares graders with human labels; name the human file")
    if study.agreement is not None and (study.study.ratings is None or len(study.study.raters) < 2):
        raise ConfigError(f"{file}: study.ratings/study.raters: [agreement] needs a ratings file and at least two raters")
    if study.analyze and study.analyze.human_share is not None and study.study.human is None:
        raise ConfigError(f"{file}: analyze.human_share draws from study.human; name the human file")
    refs = [("shot_search.grader", study.shot_search.grader if study.shot_search else None),
            ("analyze.grader", study.analyze.grader if study.analyze else None), ("plan.grader", study.plan.grader if study.plan else None),
            ("select.grader", study.select.grader if study.select else None)]
    refs += [(f"{key}.graders", name) for key, table in (("calibrate", study.calibrate), ("compare", study.compare))
             for name in ((table.graders or []) if table else [])]
    for key, name in refs:
        if name is not None and name not in names:
            raise ConfigError(f"{file}: {key}: no grader named {name!r}; the study's graders are {names}")
    if any(g.shots == "chosen" for g in study.grader) and study.shot_search is None:
        raise ConfigError(f"{file}: grader.shots = \"chosen\" needs a [shot_search] table")
