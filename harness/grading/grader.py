"""One grading session's worker: render a job's request, send it, judge the answer, record the label.

Prompts and responses are graded separately, each with only its own text; a job is one item, or
several items of one side in one request (``--items-per-request``).
"""

from __future__ import annotations

import functools
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..io.runs import LabelWriter
from .answers import Reply
from .client import GraderClient
from .jobs import GradeSpec, Item, build_request, response_format_of, user_message
from .parsing import ParsedGrade, parse_batch, parse_relevance, parse_severity
from .probabilities import consensus, uncertainty
from .shots import Shot
from .templates import TemplateSet


@dataclass
class Progress:
    """Counters reported to ``on_progress`` after every finished item."""

    total: int
    done: int = 0
    #: Items the run folder already held when this session started (a resumed run).
    already: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    cached: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    started: float = field(default_factory=time.perf_counter)

    @property
    def elapsed_s(self) -> float:
        return time.perf_counter() - self.started


class Grader:
    """Renders, sends, judges and records the jobs of one grading session.

    The Batch API path (:mod:`harness.grading.batch_api`) sends its own way but renders with
    :meth:`request`, judges with :meth:`judge` and records with :meth:`record`, so a label means
    the same whichever way it came.
    """

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

    def request(self, target: str, user: str, max_tokens: int, items: int = 1) -> dict[str, Any]:
        severity = target != "relevance"
        form = response_format_of(self.spec, self.templates, severity=severity, items=items)
        return build_request(self.spec, self.systems[target], user, max_tokens, severity=severity, response_format=form)

    def record(self, item: Item, parsed: ParsedGrade, outcome: Reply, share: int = 1, *, part: int = 0,
               via_batch: bool = False, after: str | None = None) -> None:
        """Write one label record; a request that carried ``share`` items gives item ``part`` its share of
        the tokens (split exactly: the shares add up to what the request billed)."""
        completion = outcome.completion or {}
        split = lambda total: total // share + int(part < total % share)
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
            "prompt_tokens": split(int(completion.get("prompt_tokens", 0))),
            "cached_prompt_tokens": split(int(completion.get("cached_prompt_tokens", 0))),
            "completion_tokens": split(int(completion.get("completion_tokens", 0))),
            "request_hash": outcome.request_hash,
            **({"after_request_hash": after} if after else {}),
            "batch_size": share,
            "batch_api": via_batch,
            **uncertainty(parsed, completion, self.spec, self.templates.verdict),
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
    def judge(outcome: Reply, parse: Callable[[str | None], ParsedGrade]) -> ParsedGrade:
        if outcome.completion is None:
            return ParsedGrade("failed", error=outcome.error)
        finish = outcome.completion.get("finish_reason")
        if finish == "content_filter":
            return ParsedGrade("refused", error="stopped by the endpoint's content filter")
        if finish == "length":
            return ParsedGrade("unparsed", error="truncated (finish_reason=length); raise --max-tokens")
        return parse(outcome.completion.get("content"))

    async def single(self, item: Item, *, after: str | None = None) -> None:
        """Grade one item; ``after`` is the hash of a several-item request whose answer left it out (recorded, so a
        ``--retry`` forgets that cached answer too)."""
        user = user_message(self.templates, [item])
        parse = self.parser(item.target)
        outcome = await self.client.complete(
            self.request(item.target, user, self.spec.max_tokens), use_cache=self.use_cache
        )
        parsed = self.judge(outcome, parse)
        self.client.remember(outcome)
        if parsed.status == "ok":
            parsed = self.settle(item, parsed, outcome)
        self.record(item, parsed, outcome, after=after)

    def parser(self, target: str) -> Callable[[str | None], ParsedGrade]:
        """How an answer for ``target`` is read: a relevance, or a verdict by the template set's declaration."""
        if target == "relevance":
            return parse_relevance
        return functools.partial(parse_severity, verdict=self.templates.verdict)

    def settle(self, item: Item, first: ParsedGrade, outcome: Reply) -> ParsedGrade:
        """An ok grade as recorded: with ``grade --samples``, the verdict of all the request's samples
        (each category's most frequent severity), their severities and agreement kept on it."""
        if item.target == "relevance" or self.spec.samples <= 1:
            return first
        samples = (outcome.completion or {}).get("samples", [])
        others = [parse_severity(text, self.templates.verdict) for text in samples]
        verdict, agreement = consensus([first, *others])
        verdict.sample_severities = [
            s.severity for s in (first, *others) if s.status == "ok" and s.severity is not None
        ]
        verdict.sample_agreement = agreement
        return verdict

    async def job(self, items: list[Item]) -> None:
        """Grade one job: a single item, or several of one side in one request (missing answers regraded singly)."""
        if len(items) == 1:
            await self.single(items[0])
            return
        target = items[0].target
        message = user_message(self.templates, items)
        request = self.request(target, message, self.spec.max_tokens * len(items), len(items))
        outcome = await self.client.complete(request, use_cache=self.use_cache)
        judged = self.judge(outcome, lambda c: ParsedGrade("ok"))
        if judged.status != "ok":
            rows = {i: judged for i in range(len(items))}
        else:
            rows = parse_batch((outcome.completion or {}).get("content"), len(items), self.templates.verdict)
        self.client.remember(outcome)  # a rerun reads the same answer, finds the same rows, regrades the same rest
        answered = [index for index in range(len(items)) if rows[index].status == "ok"]
        retry = [item for index, item in enumerate(items) if rows[index].status != "ok"]
        for part, index in enumerate(answered):  # the request's tokens are shared by the items it answered
            self.record(items[index], rows[index], outcome, share=len(answered), part=part)
        for item in retry:  # missing or malformed in the batch answer: regrade singly
            await self.single(item, after=outcome.request_hash)
