"""The bill, before and after: token estimates, prices, and what a run cost.

``dry_run`` renders every request a ``grade`` would send (same templates, shots, batching),
sends nothing, and counts requests, prompt tokens and the completion budget. No tokenizer is
available offline, so prompt tokens are *estimated* at one token per four characters of message
text plus four per message (OpenAI's rule of thumb for English; the error against an endpoint's
reported usage is measured in the tests and shown by ``grade`` after a real run).

Prices are per million tokens, in the currency you give them in, from flags or a ``[prices]``
table of ``harness.toml``::

    [prices.gpt-4.1]
    input = 2.0
    cached_input = 0.5
    output = 8.0
    batch_discount = 0.5
"""

from __future__ import annotations

import itertools
import json
import math
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.errors import ConfigError
from ..results.manifest import DryRun

if TYPE_CHECKING:
    import pandas as pd

    from ..io.records import Chunk
    from .jobs import GradeSpec, Item

CHARS_PER_TOKEN = 4
TOKENS_PER_MESSAGE = 4


@dataclass(frozen=True)
class Price:
    """Per million tokens: prompt (input), prompt served from the provider's cache, completion."""

    input: float
    output: float
    cached_input: float | None = None
    #: Multiplier for requests sent through the Batch API (OpenAI: 0.5).
    batch_discount: float = 1.0

    def __post_init__(self) -> None:
        for name in ("input", "output", "cached_input", "batch_discount"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool)
                                      or not math.isfinite(value) or value < 0):
                raise ConfigError(f"price_{name}={value!r}: expected a finite number >= 0 (per million tokens)",
                                  param=f"price_{name}")

    def of(self, prompt_tokens: int, completion_tokens: int, cached_prompt_tokens: int = 0) -> float:
        cached_rate = self.input if self.cached_input is None else self.cached_input
        return (max(0, prompt_tokens - cached_prompt_tokens) * self.input + cached_prompt_tokens * cached_rate
                + completion_tokens * self.output) / 1_000_000


def load_prices(config_path: str | Path | None = None) -> dict[str, Price]:
    """The ``[prices]`` table of ``harness.toml`` (or ``config_path``): model -> :class:`Price`."""
    from .settings import read_settings_file

    file, data = read_settings_file(config_path)
    table = data.get("prices", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{file}: [prices] must be a table of models, e.g. [prices.gpt-4.1] with input and output")
    prices = {}
    for model, entry in table.items():
        if not isinstance(entry, dict) or not {"input", "output"} <= set(entry):
            raise ConfigError(f"{file}: [prices.{model}] needs input and output (per million tokens)")
        unknown = set(entry) - {"input", "output", "cached_input", "batch_discount"}
        if unknown:
            raise ConfigError(f"{file}: [prices.{model}] has unknown key {sorted(unknown)[0]!r}; "
                              "expected input, output, cached_input, batch_discount")
        prices[model] = Price(float(entry["input"]), float(entry["output"]),
                              None if entry.get("cached_input") is None else float(entry["cached_input"]),
                              float(entry.get("batch_discount", 1.0)))
    return prices


def estimate_tokens(request: dict[str, Any]) -> int:
    """Estimated prompt tokens of a chat request (see the module docstring)."""
    return sum(
        math.ceil(len(str(m.get("content", ""))) / CHARS_PER_TOKEN) + TOKENS_PER_MESSAGE for m in request["messages"]
    )


def _items(chunks: Iterable[Chunk], target: str) -> Iterator[Item]:
    from .jobs import item_of

    for chunk in chunks:
        for line in chunk.lines:
            row = json.loads(line)
            if item := item_of(row["id"], target, row["prompt"], row.get("response")):
                yield item


def dry_run(data: str | Path | pd.DataFrame, spec: GradeSpec, *, mapping: dict[str, str] | None = None,
            price: Price | None = None, batch: bool = False, dedupe: bool = True) -> DryRun:
    """Render every request of a grade of ``data`` and count them; sends nothing, writes nothing.

    ``dedupe`` (a run with a cache, or ``batch``): identical requests are sent once and counted once
    in the tokens and costs; ``batch``: the costs carry the Batch API's discount.
    """
    import hashlib
    import json

    from ..io.pairs import validate_pairs
    from ..io.records import chunks_of_frame, table_chunks
    from .jobs import build_request, response_format_of, user_message
    from .shots import load_shots
    from .templates import load_template_set

    templates = load_template_set(spec.template_dir)
    shots = load_shots(spec.shots_path)
    counts: Counter[str] = Counter()
    seen: set[bytes] = set()
    for target in spec.targets:
        if isinstance(data, (str, Path)):
            chunks = table_chunks(data, mapping=mapping)
        else:
            chunks = chunks_of_frame(validate_pairs(data))
        system = templates.system(target, shots)
        size = 1 if target == "relevance" else spec.items_per_request
        job: list[Item] = []
        for item in itertools.chain(_items(chunks, target), [None]):  # streamed: a 1 GB table is never a list
            if item is not None:
                job.append(item)
            if job and (item is None or len(job) == size):
                form = response_format_of(spec, templates, severity=target != "relevance", items=len(job))
                request = build_request(spec, system, user_message(templates, job), spec.max_tokens * len(job),
                                        response_format=form)
                counts["items"] += len(job)
                counts[f"items_{target}"] += len(job)
                job = []
                digest = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).digest()
                if dedupe and digest in seen:
                    counts["duplicates"] += 1
                    continue
                seen.add(digest)
                counts["requests"] += 1
                counts["prompt_tokens"] += estimate_tokens(request)
                counts["completion_budget"] += request["max_tokens"]
    priced = price is not None
    discount = price.batch_discount if batch and price is not None and price.batch_discount is not None else 1.0
    return DryRun(
        model=spec.model, requests=counts["requests"], items=counts["items"],
        items_by_target={t: counts[f"items_{t}"] for t in spec.targets},
        prompt_tokens_estimate=counts["prompt_tokens"], completion_token_budget=counts["completion_budget"],
        estimate=f"{CHARS_PER_TOKEN} characters per token + {TOKENS_PER_MESSAGE} per message",
        price=None if price is None else {
            "input": price.input,
            "output": price.output,
            "cached_input": price.cached_input,
            "batch_discount": price.batch_discount,
        },
        cost_prompt=price.of(counts["prompt_tokens"], 0) * discount if priced and price else None,
        cost_upper_bound=(price.of(counts["prompt_tokens"], counts["completion_budget"]) * discount
                          if priced and price else None),
        duplicate_requests=counts["duplicates"], **({"batch": True} if batch else {}),
    )


def billed_cost(tokens: dict[str, int], price: Price) -> float:
    """What a run's billed tokens cost: tokens answered from harness's own cache cost nothing,
    prompt tokens the provider served from its prompt cache cost ``cached_input``, and the part
    answered through the Batch API (``batch_*``, a subset of ``billed_*``) costs ``batch_discount``
    times as much, so a run graded partly by batch and partly not is priced item by item."""
    def part(prefix: str) -> float:
        return price.of(int(tokens.get(f"{prefix}_prompt_tokens", 0)),
                        int(tokens.get(f"{prefix}_completion_tokens", 0)),
                        cached_prompt_tokens=int(tokens.get(f"{prefix}_prompt_tokens_prefix_cached", 0)))

    return part("billed") - (1 - price.batch_discount) * part("batch")
