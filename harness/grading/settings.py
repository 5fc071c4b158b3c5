"""Every grading setting, declared once: where and how requests go (:class:`EndpointSettings`) and what fixes the
labels (:class:`JobSettings`).

One declaration, five readers. Each field holds its name, default, bounds and help:

* **the command line**: every command that grades (``grade``, ``probe``, ``calibrate-shots``) gets one flag per field
  (:func:`harness.cli.options.with_layers`); ``json_schema_extra={"flag": ...}`` spells a flag another way
  (``timeout_s`` is ``--timeout``), ``{"cli": False}`` keeps a field off the command line;
* **the environment**: ``HARNESS_<FIELD>`` (and OpenAI's own ``OPENAI_BASE_URL``, ``OPENAI_API_KEY``,
  ``AZURE_OPENAI_API_KEY``, ``OPENAI_API_VERSION``), read by pydantic-settings (:func:`from_env`);
* **a settings file**: ``harness.toml`` for a grade, the study file's ``[endpoint]`` and ``[[grader]]`` tables for a
  study (:mod:`harness.workflows.study.file`: the tables are these models);
* ``harness schema study`` publishes their JSON Schema;
* **the Python API**: :func:`harness.grade` takes the models, and the library's own objects (:class:`GradeSpec`,
  :class:`EndpointConfig`) are checked against the same bounds (:func:`check_against`).

One precedence, everywhere: **flag > environment > settings file (the study file, or harness.toml) > default**
(:func:`resolve`, which also says where each value came from).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..core.bounds import MAX_SEED, SEED
from ..core.constants import (
    BACKOFF_INITIAL_S,
    BACKOFF_MAX_S,
    DEFAULT_BASE_URL,
    DEFAULT_CACHE_DIR,
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_TOKENS,
    DEFAULT_MODEL,
    DEFAULT_TIMEOUT_S,
    RETRY_AFTER_CAP_S,
)
from ..core.errors import ConfigError, expected

#: Bounds that keep a typo from becoming a runaway job (checked before any request).
MAX_CONCURRENCY = 1024
MAX_TIMEOUT_S = 3600.0
MAX_ATTEMPTS_LIMIT = 100
MAX_ITEMS_PER_REQUEST = 1000
MAX_TOKENS_LIMIT = 1_000_000
MAX_SAMPLES = 100
MAX_REPEATS = 100
#: Where each value came from, as the grade's first line says it.
SOURCES = ("flag", "environment", "settings file", "the run", "default")
TRANSPORTS = ("aiohttp", "httpx")
RESPONSE_FORMATS = ("json-schema", "json-object", "none")
#: ``--target`` shorthands.
TARGET_SETS = {"both": ("prompt", "response"), "all": ("prompt", "response", "relevance")}

Target = Literal["prompt", "response", "relevance"]
Transport = Literal["aiohttp", "httpx"]
ResponseFormat = Literal["json-schema", "json-object", "none"]


def _both() -> list[Target]:
    return ["prompt", "response"]


class _Declared(BaseModel):
    """Strict ("100" is not 100 in a settings file; the environment's text is read by :func:`from_env`), unknown keys
    refused, frozen once made."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class EndpointSettings(_Declared):
    """Where and how a grade's requests go: the endpoint, its key, and the limits of each request."""

    base_url: str = Field(default=DEFAULT_BASE_URL, min_length=1, json_schema_extra={
        "env": ["HARNESS_BASE_URL", "OPENAI_BASE_URL"]}, description=(
        f"OpenAI-compatible endpoint (default {DEFAULT_BASE_URL}, where `harness serve` listens); 'embedded' starts "
        "harness serve for this job (with a local model such as smollm2-135m: make install-local); several "
        "comma-separated URLs are replicas of one grader."))
    api_key: str | None = Field(default=None, repr=False, json_schema_extra={
        "env": ["HARNESS_API_KEY", "OPENAI_API_KEY", "AZURE_OPENAI_API_KEY"], "study": False, "secret": True},
        description="API key (prefer the OPENAI_API_KEY environment variable; never written anywhere).")
    azure_api_version: str | None = Field(
        default=None,
        json_schema_extra={"env": ["HARNESS_AZURE_API_VERSION", "OPENAI_API_VERSION"]},
        description="Use Azure OpenAI with this API version.",
    )
    concurrency: int = Field(default=DEFAULT_CONCURRENCY, ge=1, le=MAX_CONCURRENCY, description=(
        f"Requests in flight at most (1 to {MAX_CONCURRENCY}; halved on 429s and crept back)."))
    timeout_s: float = Field(default=DEFAULT_TIMEOUT_S, gt=0, le=MAX_TIMEOUT_S, json_schema_extra={"flag": "--timeout"},
                             description=f"Bound on each whole request, in seconds (at most {MAX_TIMEOUT_S:g}).")
    deadline_s: float | None = Field(default=None, gt=0, le=7 * 86400, json_schema_extra={"flag": "--deadline"},
                                     description="Bound on one item over all its attempts, in seconds (default none).")
    max_attempts: int = Field(default=DEFAULT_MAX_ATTEMPTS, ge=1, le=MAX_ATTEMPTS_LIMIT, description=(
        f"Attempts per request, retries included (1 to {MAX_ATTEMPTS_LIMIT})."))
    transport: Transport = Field(default="aiohttp", description="aiohttp (faster here) or httpx.")
    cache_dir: str = Field(default=DEFAULT_CACHE_DIR, min_length=1, json_schema_extra={"path": True}, description=(
        "Completion cache folder (answers keyed by everything that fixes them)."))
    no_cache: bool = Field(default=False, description="Neither read nor write the completion cache.")
    backoff_initial_s: float = Field(default=BACKOFF_INITIAL_S, ge=0, le=60, json_schema_extra={"cli": False},
                                     description="First retry wait, in seconds (doubled each retry, with jitter).")
    backoff_max_s: float = Field(default=BACKOFF_MAX_S, ge=0, le=600, json_schema_extra={"cli": False},
                                 description="Longest retry wait, in seconds.")
    retry_after_cap_s: float = Field(default=RETRY_AFTER_CAP_S, ge=0, le=3600, json_schema_extra={"cli": False},
                                     description="Longest wait a server's Retry-After is obeyed for, in seconds.")

    @property
    def embedded(self) -> bool:
        """``base_url = "embedded"``: harness serve, started for the job."""
        return self.base_url == "embedded"


class JobSettings(_Declared):
    """What fixes a grade's labels: the grader, its templates and exemplars, and how it is asked."""

    model: str = Field(default=DEFAULT_MODEL, min_length=1, description=(
        f"Grader model name (default {DEFAULT_MODEL}, the embedded grader)."))
    targets: list[Target] = Field(default_factory=lambda: _both(), min_length=1, json_schema_extra={
        "flag": "--target"}, description=(
        "What to grade: prompt, response, relevance; both (prompt,response) or all; comma-separated."))
    template: str = Field(default="default", min_length=1, json_schema_extra={"path": True}, description=(
        "Template set folder, or 'default' (prompts/default; 'compact' is prompts/compact)."))
    shots: str = Field(default="none", min_length=1, json_schema_extra={"path": True}, description=(
        "Few-shot exemplars: none (zero-shot), default (the bundled exemplars) or a JSONL file; in a study also "
        "chosen (the exemplar search's pick)."))
    items_per_request: int = Field(default=1, ge=1, le=MAX_ITEMS_PER_REQUEST, description=(
        f"Items graded per request (the batch template; 1 to {MAX_ITEMS_PER_REQUEST})."))
    temperature: float = Field(default=0.0, ge=0, le=2, description="Sampling temperature (0 to 2).")
    seed: int = Field(**SEED.field_args(f"Sampling seed (0 to {MAX_SEED})."))
    max_tokens: int = Field(default=DEFAULT_MAX_TOKENS, ge=1, le=MAX_TOKENS_LIMIT, description=(
        f"Completion token budget per item (1 to {MAX_TOKENS_LIMIT:,})."))
    response_format: ResponseFormat = Field(default="json-schema", description=(
        "json-schema (the template set's verdict schema, strict: the endpoint must answer with it; an endpoint that "
        "refuses it is asked with json-object instead), json-object or none."))
    logprobs: bool = Field(default=False, description=(
        "Ask for token log-probabilities: each label keeps P(severity) per category (select --strategy active, "
        "calibrate's reliability)."))
    samples: int = Field(default=1, ge=1, le=MAX_SAMPLES, description=(
        "Answers per request (needs a temperature above 0): each category's most frequent severity, with the "
        "samples' agreement."))
    repeats: int = Field(default=1, ge=1, le=MAX_REPEATS, description=(
        "Grade the whole job this many times (at a temperature above 0 each with its own seed: seed + k), for "
        "harness stability."))

    @field_validator("targets", mode="before")
    @classmethod
    def _shorthands(cls, value: Any) -> Any:
        """``both`` and ``all`` as the lists they stand for; a target named twice graded once."""
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list | tuple):
            expanded = [t for v in value for t in (TARGET_SETS.get(v, (v,)) if isinstance(v, str) else (v,))]
            return list(dict.fromkeys(expanded))
        return value

    @model_validator(mode="after")
    def _together(self) -> JobSettings:
        if self.samples > 1 and self.temperature <= 0:
            raise ValueError(f"`samples` {self.samples} at `temperature` {self.temperature}: the samples would all be "
                             "the same answer; give a temperature above 0 (e.g. 0.7)")
        if (self.logprobs or self.samples > 1) and self.items_per_request > 1:
            raise ValueError("`logprobs` and `samples` need one item per request (`items_per_request` 1): a batched "
                             "answer has no per-item probabilities")
        return self


# ---------------------------------------------------------------------------------------------------------- layers
def env_names(name: str, field: Any) -> list[str]:
    """The environment variables that set a field, first the one that wins."""
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    return list(extra.get("env") or [f"HARNESS_{name.upper()}"])


def from_env(model: type[BaseModel], environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The fields of ``model`` the environment sets, parsed as their types (pydantic-settings reads the variables; the
    model's own bounds are checked when the layers are merged)."""
    from pydantic import AliasChoices, create_model
    from pydantic_settings import BaseSettings, SettingsConfigDict

    fields: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        fields[name] = (Any, Field(default=None, validation_alias=AliasChoices(*env_names(name, field))))
    reader = create_model(f"{model.__name__}FromEnvironment", __base__=BaseSettings, **fields)
    reader.model_config = SettingsConfigDict(extra="ignore", case_sensitive=True, env_ignore_empty=True)
    env = os.environ if environ is None else environ
    if environ is None:
        found = reader().model_dump()
    else:  # a mapping of its own (tests): the same names, read the same way
        found = {name: next((environ[n] for n in env_names(name, field) if environ.get(n)), None)
                 for name, field in model.model_fields.items()}
    values = {name: value for name, value in found.items() if value is not None}
    return {name: _typed(model, name, value, source=_env_name(model, name, env)) for name, value in values.items()}


def _env_name(model: type[BaseModel], name: str, env: Mapping[str, str]) -> str:
    return next((n for n in env_names(name, model.model_fields[name]) if env.get(n)), f"HARNESS_{name.upper()}")


def _typed(model: type[BaseModel], name: str, value: Any, *, source: str) -> Any:
    """An environment variable's text as the field's type ("4" -> 4, "false" -> False, "a,b" -> [a, b])."""
    if not isinstance(value, str):
        return value
    annotation = str(model.model_fields[name].annotation)
    try:
        if "list" in annotation:
            return [v.strip() for v in value.split(",") if v.strip()]
        if annotation in ("<class 'int'>", "int"):
            return int(value)
        if "float" in annotation:
            return float(value)
        if "bool" in annotation:
            lowered = value.strip().lower()
            if lowered not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError(value)
            return lowered in ("1", "true", "yes")
    except ValueError:
        type_name = annotation.replace("<class ", "").strip(">").strip(chr(39))
        raise ConfigError(f"{source}={value!r}: expected {type_name}") from None
    return value


def read_settings_file(path: str | Path | None = None) -> tuple[Path, dict[str, Any]]:
    """The settings file (``path``, else ``HARNESS_CONFIG``, else ``harness.toml``) and its parsed TOML; an absent
    default file reads as empty, an absent named one is an error."""
    file = Path(path or os.environ.get("HARNESS_CONFIG") or "harness.toml")
    if not file.exists():
        if path is not None:
            raise ConfigError(f"`config` {file}: file not found")
        return file, {}
    try:
        return file, tomllib.loads(file.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{file}: invalid TOML: {exc}") from None


def from_file(models: tuple[type[BaseModel], ...], path: str | Path | None = None) -> dict[str, Any]:
    """The grading settings of ``harness.toml`` (its ``[prices]`` table is :func:`harness.grading.costs.load_prices`'s);
    an unknown key is refused naming the valid ones."""
    file, data = read_settings_file(path)
    data = {k: v for k, v in data.items() if k != "prices"}
    if isinstance(data.get("base_url"), list):  # replicas: a list in harness.toml
        data["base_url"] = ",".join(map(str, data["base_url"]))
    known = [name for model in models for name in model.model_fields]
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"{file}: unknown key {unknown[0]!r}; expected some of {sorted(known)}")
    return data


class Resolved(BaseModel):
    """The grading settings of one job, and where each value came from (:data:`SOURCES`)."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    endpoint: EndpointSettings
    job: JobSettings
    sources: dict[str, str]


def resolve(flags: Mapping[str, Any] = {}, *, file: Mapping[str, Any] | None = None,
            config: str | Path | None = None, environ: Mapping[str, str] | None = None,
            names: Mapping[str, str] | None = None, fallback: Mapping[str, Any] | None = None,
            job_env: bool = True) -> Resolved:
    """Both models from their layers: flag > environment > settings file > default.

    ``flags`` and ``file`` hold only what was set (a study passes its tables as ``file``; a grade reads
    ``harness.toml``, or ``config``); ``job_env`` False: the environment sets the endpoint only (a study's graders are
    its own declarations). ``fallback`` stands in for a default where the job has a better one (a probe:
    the endpoint its run was graded at). ``names`` says how the user spelled each field (a flag, a study key) for the
    message that refuses a value.
    """
    layers: list[tuple[str, Mapping[str, Any]]] = [
        ("flag", {k: v for k, v in flags.items() if v is not None}),
        ("environment", {**from_env(EndpointSettings, environ), **(from_env(JobSettings, environ) if job_env else {})}),
        ("settings file", dict(file) if file is not None else from_file((EndpointSettings, JobSettings), config)),
        ("the run", dict(fallback or {})),
    ]
    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for source, values in reversed(layers):
        merged.update(values)
        sources.update(dict.fromkeys(values, source))
    built = {}
    for model in (EndpointSettings, JobSettings):
        given = {k: v for k, v in merged.items() if k in model.model_fields}
        built[model] = validated(model, given, lambda k: _shown(k, sources, names))
    every = [*EndpointSettings.model_fields, *JobSettings.model_fields]
    return Resolved(endpoint=built[EndpointSettings], job=built[JobSettings],
                    sources={name: sources.get(name, "default") for name in every})


def _shown(name: str, sources: Mapping[str, str], names: Mapping[str, str] | None) -> str:
    """A field as the user set it: its flag, its environment variable, its key."""
    if names and name in names:
        return names[name]
    if sources.get(name) == "environment":
        model = EndpointSettings if name in EndpointSettings.model_fields else JobSettings
        return _env_name(model, name, os.environ)
    return f"`{name}`"


def validated(model: type[Any], values: Mapping[str, Any], shown: Any = lambda k: f"`{k}`") -> Any:
    """``model`` built from ``values``; the first refusal names the field as ``shown(name)`` says and what was
    expected."""
    try:
        return model.model_validate(dict(values))
    except ValidationError as exc:
        error = exc.errors()[0]
        if not error["loc"]:
            raise ConfigError(expected(error)) from None
        name = str(error["loc"][0])
        raise ConfigError(f"{shown(name)} {values.get(name)!r}: {expected(error)}") from None


def check_against(model: type[BaseModel], values: Mapping[str, Any]) -> None:
    """The library's own objects checked against the declared bounds: each value alone, as its field (a
    ``ConfigError`` naming the parameter, ``concurrency=0: expected at least 1``)."""
    from typing import Annotated

    from pydantic import TypeAdapter

    for name, value in values.items():
        field = model.model_fields[name]
        try:
            kind: Any = Annotated[field.annotation, field]
            TypeAdapter(kind, config=ConfigDict(allow_inf_nan=False)).validate_python(value)
        except ValidationError as exc:
            raise ConfigError(f"{name}={value!r}: {expected(exc.errors()[0])}", param=name) from None


__all__ = ["EndpointSettings", "JobSettings", "Resolved", "check_against", "from_env", "resolve", "validated"]
