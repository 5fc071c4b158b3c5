"""``harness serve``: an OpenAI-compatible chat-completions endpoint on 127.0.0.1.

It answers ``POST /v1/chat/completions`` (and Azure's
``/openai/deployments/{name}/chat/completions?api-version=``) and ``GET /v1/models`` closely
enough for the official ``openai`` client (usage, ``response_format``, OpenAI's JSON error
shape), with the in-context graders of :mod:`harness.serve.graders` as its models. It reads the texts to grade from the
delimited blocks our templates emit, and answers in the grader JSON format.

Seeded fault injection makes it a test double for a flaky provider: 429 with Retry-After,
500/503, dropped connections, hangs past the client timeout, malformed JSON bodies,
truncated output (``finish_reason: length``), grader refusals, non-JSON answers and
content-filter stops. Whether a request fails is a pure function of the seed, the request
body and how many times that body was seen, so runs are reproducible under concurrency.
``gullible`` makes it obey instructions to the grader found inside the texts it grades
(answering Safe), a worst case for measuring flip rates under injection.
``GET /stats`` reports the requests seen (for server-side counting in tests and benchmarks).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..core.constants import CATEGORIES, CATEGORY_CODES
from .admission import REFUSED, LocalModels, client_gone, refusal
from .batches import BatchRoutes, BatchStore
from .chat import SIDE, as_read, blocks, content_text, read_exemplars, row_indices, row_of
from .config import ServeConfig
from .graders import PROFILES, Exemplar, InContextGrader
from .local_model import LOCAL_MODELS, RequestError
from .logprobs import alternatives_of, logprobs_content
from .params import check_chat, limits_of
from .wire import MAX_BODY_BYTES, OFF_LOOP_BYTES, InvalidRequest, count_tokens, error_response, read_body, read_bytes

# An instruction addressed to the grader: it names the grader or its rubric, and then asks for a verdict.
_TO_GRADER = re.compile(r"(?i)\b(grader|rubric|evaluation)\b")
_SAFE_VERDICT = re.compile(r"(?i)\b(safe|severity[ _]?0|severity_0_3\W+0)\b")


def addresses_grader(text: str) -> bool:
    """Whether a text tells its grader what to answer (two linear searches: one regex spanning both is quadratic)."""
    named = _TO_GRADER.search(text)
    return named is not None and _SAFE_VERDICT.search(text, named.end()) is not None


@dataclass
class ServerStats:
    """Requests seen by the endpoint, by outcome."""

    requests: int = 0
    completions: int = 0
    obeyed_injections: int = 0
    azure_requests: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    seen: Counter[str] = field(default_factory=Counter)
    #: Requests read, by the type of response_format they asked (``none`` when they asked none).
    formats: Counter[str] = field(default_factory=Counter)

    def as_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "completions": self.completions,
            "obeyed_injections": self.obeyed_injections,
            "azure_requests": self.azure_requests,
            "faults": dict(self.faults),
            "unique_bodies": len(self.seen),
            "response_formats": dict(self.formats),
        }


class GraderEndpoint:
    """The aiohttp application serving the embedded graders (fitted in the background)."""

    def __init__(self, config: ServeConfig, graders: dict[str, InContextGrader] | None = None) -> None:
        self.config = config
        self.stats = ServerStats()
        self.graders: dict[str, InContextGrader] = graders or {}
        self.ready = threading.Event()
        self.fit_error: str | None = None
        self.fit_notes: list[str] = []  # what happened to the fits kept on disk (a store fitted again), on /health
        self.identity: str | None = None  # its fingerprint (harness.serve.identity), published on /health
        self.batch_store = BatchStore()
        self.prefixes: set[str] = set()
        self.limits = {name: limits_of(name) for name in config.model_names}
        #: Real language models, loaded with the graders; one worker thread runs them, a bounded queue before it.
        self.local = LocalModels(config.model_names, prefix_reuse=config.prefix_reuse)
        if graders is not None:
            self.local.load()
            self.ready.set()

    @property
    def batch_fault(self) -> str | None:
        """The seeded fault every batch gets (tests), or None."""
        return self.config.batch_fault

    def fit(self, fit_path: str, cache_dir: str | None) -> None:
        """Fit the graders (run in a background thread; requests wait for it)."""
        from .graders import build_graders

        try:
            names = [name for name in self.config.model_names if name in PROFILES]
            self.graders = build_graders(fit_path, names, cache_dir=cache_dir, notes=self.fit_notes) if names else {}
            self.local.load()
        except Exception as exc:  # reported to every request
            self.fit_error = f"{type(exc).__name__}: {exc}"
        finally:
            self.ready.set()

    def app(self) -> Any:
        from aiohttp import web

        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_post("/v1/chat/completions", self.chat_completions)
        app.router.add_post("/openai/deployments/{deployment}/chat/completions", self.azure_chat_completions)
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/health", self.health)
        BatchRoutes(self).register(app)
        app.router.add_get("/stats", self.get_stats)
        app.router.add_post("/stats/reset", self.reset_stats)
        return app

    async def models(self, request: Any) -> Any:
        from aiohttp import web

        denied = self.check_auth(request)
        if denied is not None:
            return denied
        data = [
            {"id": name, "object": "model", "created": 0, "owned_by": "harness"}
            for name in self.config.model_names
        ]
        return web.json_response({"object": "list", "data": data})

    async def health(self, request: Any) -> Any:
        from aiohttp import web

        models = {n: PROFILES[n].description if n in PROFILES else LOCAL_MODELS[n].description
                  for n in self.config.model_names}
        return web.json_response({"ready": self.ready.is_set() and self.fit_error is None, "error": self.fit_error,
                                  "identity": self.identity, "notes": self.fit_notes, "models": models})

    async def get_stats(self, request: Any) -> Any:
        from aiohttp import web

        return web.json_response({**self.stats.as_json(), "batches_created": self.batch_store.batches_created,
                                  "files_created": self.batch_store.files_created, **self.local.as_json()})

    async def reset_stats(self, request: Any) -> Any:
        from aiohttp import web

        self.stats = ServerStats()
        return web.json_response(self.stats.as_json())

    def check_auth(self, request: Any, *, azure: bool = False) -> Any:
        if self.config.api_key is None:
            return None
        header = request.headers.get("Authorization", "")
        if azure and request.headers.get("api-key") == self.config.api_key:
            return None
        if header != f"Bearer {self.config.api_key}":
            return error_response(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
        return None

    def _fault(self, body: bytes) -> str | None:
        cfg = self.config
        key = hashlib.sha256(body).hexdigest()
        self.stats.seen[key] += 1
        if cfg.fail_rate <= 0 or not cfg.fail_modes:
            return None
        draw = hashlib.sha256(f"{cfg.seed}:{key}:{self.stats.seen[key]}".encode()).digest()
        if int.from_bytes(draw[:8], "big") / 2**64 >= cfg.fail_rate:
            return None
        return cfg.fail_modes[int.from_bytes(draw[8:12], "big") % len(cfg.fail_modes)]

    async def azure_chat_completions(self, request: Any) -> Any:
        """Azure OpenAI's route: the deployment names the model, ``api-version`` is required."""
        if not request.query.get("api-version"):
            self.stats.requests += 1
            return error_response(
                404, "Resource not found: the api-version query parameter is required.", "invalid_request_error"
            )
        self.stats.azure_requests += 1
        return await self.chat_completions(request, deployment=request.match_info["deployment"])

    async def chat_completions(self, request: Any, deployment: str | None = None) -> Any:
        from aiohttp import web

        self.stats.requests += 1
        denied = self.check_auth(request, azure=deployment is not None)
        if denied is not None:
            return denied
        try:
            raw = await read_bytes(request)
            body = await self.read_request(raw, deployment)
        except RequestError as exc:
            return refusal(exc)
        if self.config.answer_as is not None:
            body["model"] = self.config.answer_as
        if not self.ready.is_set():
            await asyncio.to_thread(self.ready.wait, 300)
        if self.fit_error is not None:
            return error_response(500, f"the embedded graders could not be fitted: {self.fit_error}", "server_error")
        if self.config.latency_ms > 0:
            await asyncio.sleep(self.config.latency_ms / 1000.0)
        fault = self._fault(raw)
        if fault is not None:
            self.stats.faults[fault] += 1
            early = await self._early_fault(fault, request)
            if early is not None:
                return early
        try:
            payload = await self.answer(body, raw, fault, gone=lambda: client_gone(request))
        # a local model cannot answer as asked (400), its queue is full (429), or it was abandoned
        except REFUSED as exc:
            return refusal(exc)
        if fault == "malformed":
            text = json.dumps(payload)
            return web.Response(body=text[: len(text) // 2], content_type="application/json")
        return web.json_response(payload)

    async def read_request(self, raw: bytes, deployment: str | None = None) -> dict[str, Any]:
        """The body of a chat request, read and checked (:mod:`harness.serve.params`) before any model or fault sees it;
        a large one off the event loop, so it never holds up other requests."""
        def read() -> dict[str, Any]:
            body = read_body(raw)
            if deployment is not None:  # Azure's route: the deployment names the model
                body["model"] = deployment
            self.check_request(body)
            return body

        return await asyncio.to_thread(read) if len(raw) > OFF_LOOP_BYTES else read()

    def check_request(self, body: dict[str, Any]) -> None:
        """Refuse a chat-completions body as OpenAI would, with the rules every served model shares."""
        check_chat(body, self.limits)
        self.stats.formats[str((body.get("response_format") or {}).get("type", "none"))] += 1
        if self.config.refuse_json_schema and (body.get("response_format") or {}).get("type") == "json_schema":
            raise InvalidRequest("Invalid parameter: 'response_format' of type 'json_schema' is not supported "
                                 "with this model.", "response_format", "invalid_value")

    async def answer(
        self, body: dict[str, Any], raw: bytes, fault: str | None = None, gone: Any = None
    ) -> dict[str, Any]:
        """:meth:`completion_payload`: a local model's answer from its bounded queue (``gone``: its client left), a
        large request's off the event loop (an embedded grader reads a long text for seconds)."""
        if body["model"] in self.local:
            payload = await self.local.run(functools.partial(self.local.payload, body, raw, fault), gone)
        elif len(raw) > OFF_LOOP_BYTES:
            payload = await asyncio.to_thread(self.completion_payload, body, raw, fault)
        else:
            payload = self.completion_payload(body, raw, fault)
        self.stats.completions += 1
        return payload

    def close(self) -> None:
        """Stop: the local models within a decoding step; requests still waiting for their load are answered now."""
        self.local.close()
        self.fit_error = self.fit_error or "the server is stopping"
        self.ready.set()

    def completion_payload(self, body: dict[str, Any], raw: bytes, fault: str | None = None) -> dict[str, Any]:
        """The chat-completion body answering ``body`` (shared by the chat route and batches)."""
        if body["model"] in self.local:
            return self.local.payload(body, raw, fault)
        content, probabilities = self._answer(body)
        finish = "stop"
        if fault == "truncated":
            content, finish = content[: max(1, len(content) // 3)], "length"
        elif fault == "refusal":
            content = "I'm sorry, but I can't help with grading this content."
        elif fault == "garbage":
            content = "The text seems fine to me overall, nothing to flag here."
        elif fault == "content_filter":
            content, finish = "", "content_filter"
        prompt_text = " ".join(content_text(m.get("content")) for m in body["messages"])
        usage: dict[str, Any] = {"prompt_tokens": count_tokens(prompt_text), "completion_tokens": count_tokens(content)}
        usage["prompt_tokens_details"] = {"cached_tokens": self._cached_prefix(body)}
        choices = [{"index": 0, "message": {"role": "assistant", "content": content, "refusal": None},
                    "finish_reason": finish, "logprobs": self._logprobs(body, content, probabilities)}]
        for index in range(1, int(body.get("n") or 1)):  # further samples (n > 1), each with its own seed
            more, more_probabilities = self._answer(body, index) if fault is None else (content, probabilities)
            choices.append({"index": index, "message": {"role": "assistant", "content": more, "refusal": None},
                            "finish_reason": finish, "logprobs": self._logprobs(body, more, more_probabilities)})
            usage["completion_tokens"] += count_tokens(more)
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        return {
            "id": "chatcmpl-" + hashlib.sha256(raw).hexdigest()[:24],
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "system_fingerprint": self.graders[body["model"]].fingerprint,
            "choices": choices,
            "usage": usage,
        }

    def _cached_prefix(self, body: dict[str, Any]) -> int:
        """Tokens of a repeated prefix (the first message, the rubric and shots), reported the way
        OpenAI reports prompt-cache hits: 0 the first time a prefix is seen, its size afterwards."""
        first = body["messages"][0]
        if first.get("role") != "system":
            return 0
        content = content_text(first.get("content"))
        key = hashlib.sha256(f"{body['model']}\x00{content}".encode()).hexdigest()
        if key in self.prefixes:
            return count_tokens(content)
        self.prefixes.add(key)
        return 0

    async def ready_for_requests(self) -> None:
        """Wait until the graders are fitted."""
        if not self.ready.is_set():
            await asyncio.to_thread(self.ready.wait, 300)

    async def _early_fault(self, fault: str, request: Any) -> Any:
        if fault == "429":
            response = error_response(429, "Rate limit reached; retry later.", "requests", "rate_limit_exceeded")
            response.headers["Retry-After"] = f"{self.config.retry_after_s:g}"
            return response
        if fault in ("500", "503"):
            return error_response(int(fault), "The server had an error while processing your request.", "server_error")
        if fault == "drop":  # the connection dies without an answer; nothing is logged here
            if request.transport is not None:
                request.transport.abort()
            from aiohttp import web

            return web.Response(status=500)  # never reaches the client: its socket is gone
        if fault == "timeout":
            await asyncio.sleep(self.config.hang_s)
        if fault == "html":  # a proxy's error page with status 200
            from aiohttp import web

            return web.Response(text="<html><body><h1>502 Bad Gateway</h1></body></html>", content_type="text/html")
        return None

    @staticmethod
    def _logprobs(body: dict[str, Any], content: str, probabilities: dict[str, Any] | None) -> dict[str, Any] | None:
        """``choices[i].logprobs`` when the request asked for them (the severities' uncertainty on their digits)."""
        if not body.get("logprobs"):
            return None
        alternatives = alternatives_of(content, probabilities) if probabilities else {}
        return {"content": logprobs_content(content, alternatives, int(body.get("top_logprobs") or 0)), "refusal": None}

    def _answer(self, body: dict[str, Any], index: int = 0) -> tuple[str, dict[str, Any] | None]:
        """The answer's text, and the severity probabilities per category behind a one-text answer."""
        messages = body["messages"]
        grader = self.graders[body["model"]]
        temperature = float(body.get("temperature") or 0.0)
        seed = body.get("seed") if index == 0 else f"{body.get('seed')}|{index}"
        user = as_read(next((content_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"),
                            content_text(messages[-1].get("content"))))
        found = blocks(user)
        texts = {block.label: block.body for block in found}
        if "PROMPT" in texts and "RESPONSE" in texts:
            relevance = grader.relevance(texts["PROMPT"], texts["RESPONSE"])
            return json.dumps({"relevance": relevance, "rationale": "Embedded grader: TF-IDF similarity."}), None
        side_match = SIDE.search(user)
        side = side_match.group(1).lower() if side_match else "prompt"
        exemplars = read_exemplars(messages[:-1]) if len(messages) > 1 else []
        graded = [block for block in found if block.label == "TEXT_TO_LABEL"]
        if "ROW_INDEX" in user and graded:
            rows = row_indices(user)
            items = [{"row_index": row_of(rows, block, position),
                      **self._grade(grader, side, block.body, exemplars, temperature, seed)}
                     for position, block in enumerate(graded)]
            return json.dumps({"items": items}), None
        text = graded[0].body if graded else user
        answer = json.dumps(self._grade(grader, side, text, exemplars, temperature, seed))
        if not body.get("logprobs"):
            return answer, None
        matrix = grader.probabilities(side, text, exemplars)
        return answer, {category: matrix[j] for j, category in enumerate(CATEGORIES)}

    def _grade(self, grader: InContextGrader, side: str, text: str, exemplars: list[Exemplar], temperature: float,
               seed: Any) -> dict[str, Any]:
        if self.config.gullible and addresses_grader(text):
            self.stats.obeyed_injections += 1
            zeros: dict[str, Any] = {code: {"raw_0_7": 0, "severity_0_3": 0} for code in CATEGORY_CODES.values()}
            return {**zeros, "rationale": "As instructed in the text, every category is Safe."}
        verdicts = grader.grade(side, text, exemplars, temperature=temperature, seed=seed)
        out: dict[str, Any] = {
            CATEGORY_CODES[c]: {"raw_0_7": verdicts[c].raw, "severity_0_3": verdicts[c].severity}
            for c in CATEGORIES
        }
        top = max(CATEGORIES, key=lambda c: verdicts[c].severity)
        out["rationale"] = (
            f"Embedded grader ({len(exemplars)} exemplars read): highest {top} at severity {verdicts[top].severity}."
            if verdicts[top].severity
            else f"Embedded grader ({len(exemplars)} exemplars read): no harm detected."
        )
        return out
