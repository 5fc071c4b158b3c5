"""A grading job: what fixes the labels (:class:`GradeSpec`), the items, and the request that carries them.

Shared by grading (which sends the requests) and the cost estimate (which only counts them).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..core.constants import TARGETS
from ..core.errors import ConfigError

if TYPE_CHECKING:
    from .settings import JobSettings
    from .templates import TemplateSet


def _default(name: str) -> Any:
    """A job setting's one declared default (:class:`harness.grading.settings.JobSettings`)."""
    from .settings import JobSettings

    return JobSettings.model_fields[name].get_default(call_default_factory=True)


@dataclass(frozen=True)
class GradeSpec:
    """What determines the labels of a run (besides the grader endpoint): the job's settings
    (:class:`~harness.grading.settings.JobSettings`) with the template folder and exemplar file resolved.

    Every value is checked against the settings' declared bounds when the spec is made, naming the parameter.
    """

    model: str = _default("model")
    targets: tuple[str, ...] = tuple(_default("targets"))
    template_dir: str | None = None
    shots_path: str | None = None
    items_per_request: int = _default("items_per_request")
    temperature: float = _default("temperature")
    seed: int | None = _default("seed")
    max_tokens: int = _default("max_tokens")
    #: ``json-schema`` (the template set's verdict schema, strict), ``json-object`` or ``none``.
    response_format: str = _default("response_format")
    #: Ask for token log-probabilities: each label record keeps P(severity) per category.
    logprobs: bool = _default("logprobs")
    #: Answers per request (n); above 1 the label is each category's most frequent severity.
    samples: int = _default("samples")

    def __post_init__(self) -> None:
        from .settings import JobSettings, check_against

        object.__setattr__(self, "targets", tuple(dict.fromkeys(self.targets)))  # prompt,prompt grades the prompt once
        bad = [t for t in self.targets if t not in TARGETS]
        if bad or not self.targets:
            raise ConfigError(
                f"targets={bad[0] if bad else ''!r}: expected prompt, response, both, relevance or all", param="targets"
            )
        check_against(JobSettings, {"model": self.model, "items_per_request": self.items_per_request,
                                    "temperature": self.temperature, "max_tokens": self.max_tokens,
                                    "response_format": self.response_format, "logprobs": self.logprobs,
                                    "samples": self.samples, **({"seed": self.seed} if self.seed is not None else {})})
        if self.samples > 1 and self.temperature <= 0:
            raise ConfigError(f"samples={self.samples} at temperature {self.temperature}: "
                              "the samples would all be the same answer; pass a temperature above 0 (e.g. 0.7)",
                              param="samples")
        if (self.logprobs or self.samples > 1) and self.items_per_request > 1:
            raise ConfigError("logprobs and samples need one item per request (items_per_request 1): a batched answer "
                              "has no per-item probabilities", param="items_per_request")

    @property
    def json_mode(self) -> bool:
        """Whether a JSON answer is asked for at all."""
        return self.response_format != "none"

    def params(self) -> dict[str, Any]:
        return {
            "temperature": self.temperature,
            "seed": self.seed,
            "max_tokens": self.max_tokens,
            "response_format": self.response_format,
            "items_per_request": self.items_per_request,
            **({"logprobs": True} if self.logprobs else {}),
            **({"samples": self.samples} if self.samples > 1 else {}),
        }


@dataclass
class Item:
    id: str
    target: str
    text: str | None = None
    prompt: str | None = None
    response: str | None = None


def item_of(ident: Any, target: str, prompt: str, response: Any) -> Item | None:
    """The item one pair gives ``target``, or None (response and relevance need a non-blank response)."""
    if target == "prompt":
        return Item(ident, target, text=prompt)
    if not (isinstance(response, str) and response.strip()):
        return None
    if target == "response":
        return Item(ident, target, text=response)
    return Item(ident, target, prompt=prompt, response=response) if target == "relevance" else None


#: Alternatives asked for per token with ``logprobs``: every raw level 0-7.
TOP_LOGPROBS = 8


def build_request(spec: GradeSpec, system: str, user: str, max_tokens: int, *, severity: bool = True,
                  response_format: dict[str, Any] | None = None) -> dict[str, Any]:
    """The chat request for one job: the static system message (rubric, shots) first, so every
    request of a target shares its prefix (what providers' prompt caches reuse). ``response_format``: what
    :func:`response_format_of` chose for it."""
    request: dict[str, Any] = {
        "model": spec.model,
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
        "temperature": spec.temperature,
        "max_tokens": max_tokens,
    }
    if spec.seed is not None:
        request["seed"] = spec.seed
    if response_format is not None:
        request["response_format"] = response_format
    if severity and spec.logprobs:
        request["logprobs"], request["top_logprobs"] = True, TOP_LOGPROBS
    if severity and spec.samples > 1:
        request["n"] = spec.samples
    return request


def user_message(templates: TemplateSet, items: list[Item]) -> str:
    """The user message of a job: one text, a relevance pair, or a batch of texts of one side."""
    first = items[0]
    if first.target == "relevance":
        return templates.relevance(first.prompt or "", first.response or "")
    if len(items) == 1:
        return templates.user(first.target, first.text or "")
    return templates.batch(first.target, [i.text or "" for i in items])


def response_format_of(spec: GradeSpec, templates: TemplateSet, *, severity: bool, items: int,
                       refused: bool = False) -> dict[str, Any] | None:
    """What a request asks the answer to be: the template set's verdict schema (strict json_schema) for one item's
    severities when ``spec.response_format`` is ``json-schema`` and the set declares one (``refused``: the endpoint
    refused json_schema, so json_object instead), a JSON object otherwise, or nothing (``none``)."""
    if spec.response_format == "none":
        return None
    verdict = getattr(templates, "verdict", None)
    if spec.response_format == "json-schema" and verdict is not None and severity and items == 1 and not refused:
        return dict(verdict.response_format())
    return {"type": "json_object"}


def spec_of(
    job: JobSettings, *, shots_path: str | Literal["keep"] | None = "keep", root: Path | None = None
) -> GradeSpec:
    """The spec of a job's settings (:class:`~harness.grading.settings.JobSettings`): the one place a spec is built.

    ``root``: the folder relative template and shot paths are read from (a study file's); ``shots_path``: the
    exemplar file a study chose for ``shots = "chosen"``.
    """
    from .templates import default_shots_path, prompts_root

    def located(value: str) -> str:
        path = Path(value).expanduser()
        return str(path if path.is_absolute() or root is None else root / path)

    if shots_path == "keep":
        if job.shots == "chosen":
            raise ConfigError("`shots` chosen: only a study's exemplar search chooses exemplars; give none, default or "
                              "a file", param="shots")
        shots_path = None if job.shots == "none" else default_shots_path() if job.shots == "default" \
            else located(job.shots)
    bundled = prompts_root() / job.template  # a bundled set by its name ("compact"), unless a folder of that name is
    given = located(job.template)            # where the settings were read from
    template = None if job.template == "default" else given if Path(given).exists() or "/" in job.template \
        or not bundled.is_dir() else str(bundled)
    return GradeSpec(model=job.model, targets=tuple(job.targets), template_dir=template, shots_path=shots_path,
                     items_per_request=job.items_per_request, temperature=job.temperature, seed=job.seed,
                     max_tokens=job.max_tokens, response_format=job.response_format, logprobs=job.logprobs,
                     samples=job.samples)
