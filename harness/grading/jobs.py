"""A grading job: what fixes the labels (:class:`GradeSpec`), the items, and the request that carries them.

Shared by grading (which sends the requests) and the cost estimate (which only counts them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..core.constants import DEFAULT_MAX_TOKENS, DEFAULT_MODEL, DEFAULT_SEED, TARGETS
from ..core.errors import ConfigError

if TYPE_CHECKING:
    from .templates import TemplateSet


#: Bounds that keep a typo from becoming a runaway job (checked when the spec is made, before any request).
MAX_ITEMS_PER_REQUEST = 1000
MAX_TOKENS_LIMIT = 1_000_000
MAX_SAMPLES = 100


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
    #: Ask for token log-probabilities: each label record keeps P(severity) per category.
    logprobs: bool = False
    #: Answers per request (n); above 1 the label is each category's most frequent severity.
    samples: int = 1

    def __post_init__(self) -> None:
        import math

        object.__setattr__(self, "targets", tuple(dict.fromkeys(self.targets)))  # prompt,prompt grades the prompt once
        bad = [t for t in self.targets if t not in TARGETS]
        if bad or not self.targets:
            raise ConfigError(f"targets={bad[0] if bad else ''!r}: expected prompt, response, both, relevance or all", param="targets")
        if self.items_per_request < 1:
            raise ConfigError(f"items_per_request={self.items_per_request}: expected an integer >= 1", param="items_per_request")
        if self.max_tokens < 1:
            raise ConfigError(f"max_tokens={self.max_tokens}: expected an integer >= 1", param="max_tokens")
        if self.items_per_request > MAX_ITEMS_PER_REQUEST:
            raise ConfigError(f"items_per_request={self.items_per_request}: expected at most {MAX_ITEMS_PER_REQUEST}",
                              param="items_per_request")
        if self.max_tokens > MAX_TOKENS_LIMIT:
            raise ConfigError(f"max_tokens={self.max_tokens}: expected at most {MAX_TOKENS_LIMIT:,}", param="max_tokens")
        if not (1 <= self.samples <= MAX_SAMPLES):
            raise ConfigError(f"samples={self.samples}: expected an integer from 1 to {MAX_SAMPLES}", param="samples")
        if not (isinstance(self.temperature, int | float) and math.isfinite(self.temperature) and 0 <= self.temperature <= 2):
            raise ConfigError(f"temperature={self.temperature}: expected a number from 0 to 2", param="temperature")
        if self.seed is not None and not (0 <= self.seed <= 2**32 - 1):
            raise ConfigError(f"seed={self.seed}: expected an integer from 0 to {2**32 - 1}", param="seed")
        if self.samples > 1 and self.temperature <= 0:
            raise ConfigError(f"samples={self.samples} at temperature {self.temperature}: the samples would all be the same "
                              "answer; pass a temperature above 0 (e.g. 0.7)", param="samples")
        if (self.logprobs or self.samples > 1) and self.items_per_request > 1:
            raise ConfigError("logprobs and samples need one item per request (items_per_request 1): a batched answer "
                              "has no per-item probabilities", param="items_per_request")

    def params(self) -> dict[str, Any]:
        return {
            "temperature": self.temperature,
            "seed": self.seed,
            "max_tokens": self.max_tokens,
            "json_mode": self.json_mode,
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


def build_request(spec: GradeSpec, system: str, user: str, max_tokens: int, *, severity: bool = True) -> dict[str, Any]:
    """The chat request for one job: the static system message (rubric, shots) first, so every
    request of a target shares its prefix (what providers' prompt caches reuse)."""
    request: dict[str, Any] = {
        "model": spec.model,
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
        "temperature": spec.temperature,
        "max_tokens": max_tokens,
    }
    if spec.seed is not None:
        request["seed"] = spec.seed
    if spec.json_mode:
        request["response_format"] = {"type": "json_object"}
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
