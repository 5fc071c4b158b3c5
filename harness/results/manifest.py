"""A run folder's ``manifest.json`` (how its labels were made) and ``grade --dry-run``'s estimate."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from .base import Result


class SessionFigures(Result):
    """The last grading session's counts and timings.

    ``setup_s`` is everything before grading: reading, validating and storing the input, the
    templates, the run folder, the cache and the SDK client; ``sdk_setup_s`` is the part spent
    importing the openai SDK and making its client (the floor any tool built on it pays).
    """

    graded: int
    requests_sent: int
    setup_s: float
    sdk_setup_s: float | None = None
    elapsed_s: float
    items_per_s: float | None
    requests_by_replica: dict[str, int] | None = None
    #: Replicas set aside for the rest of the session, with why (another model, a 404).
    replicas_set_aside: dict[str, str] | None = None
    #: Per endpoint, the model names it answered as, where they are not the requested model.
    answered_models: dict[str, list[str]] | None = None
    #: ``json-object`` when the endpoint refused the json_schema response format (``format_refusals`` times) and was
    #: asked with json_object instead.
    response_format_used: str | None = None
    format_refusals: int | None = None


class Cost(Result):
    """What the run's billed tokens cost at the given prices (per million tokens)."""

    billed: float
    price_per_million: dict[str, float | None]
    batch_discount: float | None = None


class Manifest(Result):
    """``manifest.json``: the job's identity (what must match to resume), its progress and its bill.

    Written when a session starts (``status: running``) and again whatever way it ends
    (``complete``, ``interrupted`` or ``failed`` with the redacted ``error``).
    """

    file_kind: ClassVar[str] = "manifest"

    model: str
    template_hash: str
    shots_hash: str
    params: dict[str, Any] = Field(default_factory=dict)
    endpoint: str | None = None
    input_sha256: str | None = None
    harness_version: str | None = None
    schema_version: int = 0
    status: str
    created: str | None = None
    updated: str | None = None
    endpoints: list[str] = Field(default_factory=list)
    targets: list[str] = Field(default_factory=list)
    template_dir: str | None = None
    shots_path: str | None = None
    shots_count: int = 0
    #: Graded items whose id or text is one of the exemplars (they were graded with their own
    #: answer shown: never score the grader on them).
    shots_overlap: int | None = None
    replicas: list[str] = Field(default_factory=list)
    batch: bool = False
    input_path: str | None = None
    input_rows: int = 0
    sessions: int = 0
    error: str | None = None
    counts: dict[str, int] = Field(default_factory=dict)
    counts_by_target: dict[str, dict[str, int]] = Field(default_factory=dict)
    items: int = 0
    cache_hits: int = 0
    #: Unparsed or refused items whose answer was not asked afresh (read from the cache, or shared with an
    #: identical request in flight); ``grade --retry unparsed,refused`` forgets those answers and asks again.
    cached_non_verdicts: int = 0
    disagreements: int = 0
    #: Label records a ``--retry`` replaced (kept in superseded.jsonl; their billed tokens count in ``tokens``).
    superseded: int | None = None
    tokens: dict[str, int] = Field(default_factory=dict)
    reasons: dict[str, dict[str, int]] = Field(default_factory=dict)
    prompt_tokens_per_billed_item: float | None = None
    cost: Cost | None = None
    last_session: SessionFigures | None = None
    cache_notes: list[str] = Field(default_factory=list)


class DryRun(Result):
    """``grade --dry-run``: every request rendered and counted, nothing sent."""

    model: str
    requests: int
    items: int
    items_by_target: dict[str, int]
    prompt_tokens_estimate: int
    completion_token_budget: int
    estimate: str
    price: dict[str, float | None] | None
    cost_prompt: float | None
    cost_upper_bound: float | None
    #: Requests identical to an earlier one: sent once (the cache or one batch line answers them all), not billed.
    duplicate_requests: int | None = None
    #: The Batch API's discount was applied to the costs (``grade --batch --dry-run``).
    batch: bool | None = None
