"""The grader client: ``openai.AsyncOpenAI`` with an explicit retry policy and a cache.

Retries (tenacity): 408, 409, 429 and 5xx answers, connection errors, timeouts and
unreadable response bodies, with exponential backoff and full jitter, honouring
``Retry-After``/``retry-after-ms`` up to a cap. 400/422 fail the item at once; 401, 403 and
404 stop the whole job (every further request would fail the same way). Concurrency is
bounded and halves on every 429, then grows back one slot per success (AIMD).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

from ..core.errors import GraderError
from ..core.redaction import Redactor
from .answers import (
    FatalItemError,
    Reply,
    RetryableError,
    api_message,
    completion_fields,
    network_reason,
    retry_after,
)
from .cache import CompletionCache, key_endpoint, public_base_url, request_key
from .endpoint import EndpointConfig
from .limiter import AdaptiveLimiter
from .replicas import Replicas, same_model

#: With no answer yet, this many attempts that could not reach the server stop the job.
UNREACHABLE_LIMIT = 6
#: Longest wait between attempts while no attempt has ever reached the server.
UNREACHABLE_WAIT_S = 0.5
#: With no successful answer yet, this many 400/422 rejections stop the job.
REJECTED_LIMIT = 8
#: An endpoint that refuses ``response_format`` json_schema this many times is asked with json_object from then on.
FORMAT_REFUSALS = 3


class GraderClient:
    """Sends chat requests with caching, bounded concurrency and retries."""

    def __init__(self, config: EndpointConfig, cache: CompletionCache | None = None, *,
                 on_answered: Callable[[], None] | None = None) -> None:
        self.config = config
        self.cache = cache
        #: What the cache key names the endpoint by (harness.grading.identity), worked out once, not per request.
        self.identity = key_endpoint(config.identity or config.base_url)
        #: Called once, when the endpoint first answers in this session (the run folder then records it).
        self.on_answered = on_answered
        self.has_answered = False
        self.limiter = AdaptiveLimiter(config.concurrency)
        self.rate_limited = 0
        self.requests_sent = 0
        self._clients: dict[str, Any] = {}
        self.replicas = Replicas(config.urls)
        self._in_flight: dict[str, asyncio.Future[Reply]] = {}
        self.setup_s = 0.0  # time spent making the SDK client (imports included) and waiting for the endpoint's `ready`
        self._ready: asyncio.Future[None] | None = None
        self.redact = Redactor.of(config.api_key)  # an endpoint may echo the key back
        self.public_url = public_base_url(config.base_url)
        self.answered = 0  # HTTP answers of any status
        self.answered_ok = 0
        self.unreachable = 0  # attempts that never reached a server (refused, DNS, TLS)
        self.rejected = 0  # 400/422 answers
        #: 400s refusing a json_schema response_format; past FORMAT_REFUSALS, json_object is asked instead.
        self.format_refusals = 0
        self.schema_refused = False
        self.schema_accepted = False  # an answer to a json_schema request came back: the endpoint takes them
        self._schema_probe = asyncio.Lock()

    async def __aenter__(self) -> GraderClient:
        if self.cache is None:  # every item will reach the endpoint: make the client now
            self.sdk()
        return self

    def sdk(self, url: str | None = None) -> Any:
        """The SDK client of a replica, made on its first request: a run answered wholly from the
        cache never imports the openai package (most of a cached re-run's start-up time)."""
        url = url or self.config.base_url
        if url in self._clients:
            return self._clients[url]
        started = time.perf_counter()
        import openai

        http_client = None
        if self.config.transport == "aiohttp":
            http_client = openai.DefaultAioHttpClient(timeout=self.config.timeout_s)
        common: dict[str, Any] = {
            "api_key": self.config.api_key or "not-needed",
            "timeout": self.config.timeout_s,
            "max_retries": 0,
            "http_client": http_client,
        }
        client: Any
        if self.config.azure_api_version:
            client = openai.AsyncAzureOpenAI(azure_endpoint=url, api_version=self.config.azure_api_version, **common)
        else:
            client = openai.AsyncOpenAI(base_url=url, **common)
        self._clients[url] = client
        self.setup_s += time.perf_counter() - started
        return client

    async def __aexit__(self, *exc: object) -> None:
        for client in self._clients.values():
            await client.close()

    def wait_seconds(self, state: Any) -> float:
        """Tenacity wait: the server's Retry-After (capped), else full-jitter exponential."""
        from tenacity import wait_random_exponential

        policy = self.config.retry
        error = state.outcome.exception() if state.outcome is not None else None
        if isinstance(error, RetryableError) and error.retry_after is not None:
            return min(error.retry_after, policy.retry_after_cap_s)
        jitter = wait_random_exponential(multiplier=policy.initial_s, max=policy.max_s)
        if isinstance(error, RetryableError) and error.unreachable and self.answered == 0:
            # nothing has ever answered: retry briefly, so a dead endpoint is called dead in seconds
            return min(float(jitter(state)), UNREACHABLE_WAIT_S)
        return float(jitter(state))

    def _status_error(self, exc: Any, url: str) -> tuple[Exception, bool]:
        """What an HTTP error answer becomes (retry it, fail the item, or stop the job), and whether the
        replica that gave it is healthy (a 5xx is the replica's fault; a 4xx is the request's)."""
        status = exc.status_code
        # endpoint text: its backticks are not our parameters
        message = self.redact.text(api_message(exc)).replace("`", "'")
        where = f" from {public_base_url(url)}" if self.replicas.several else ""
        if status == 429:
            wait = retry_after(exc.response.headers)
            return RetryableError(f"429 rate limited: {message}", wait, rate_limited=True), True
        if status in (408, 409) or status >= 500:
            wait = retry_after(exc.response.headers)
            return RetryableError(f"{status}{where}: {message}", wait), status in (408, 409)
        if status == 404 and len(self.replicas.live()) > 1:
            self.replicas.lose(url, f"answered 404 ({message})")
            return RetryableError(f"404{where}: {message}; that replica is set aside"), True
        if status in (401, 403):
            return GraderError(
                f"the endpoint{where} answered {status} ({message}); check the API key (`api_key` or OPENAI_API_KEY) "
                "and its permissions"
            ), True
        if status == 404:
            return GraderError(f"the endpoint{where} answered 404 ({message}); check `model` and `base_url`"), True
        if status == 400 and refuses_format(message):  # asked again with json_object: not the request's fault
            return FatalItemError(f"{status}: {message}"), True
        self.rejected += 1
        if self.answered_ok == 0 and self.rejected >= REJECTED_LIMIT:
            return GraderError(
                f"the endpoint rejected the first {self.rejected} requests with {status} ({message}); "
                "check `model`, the template and `max_tokens`"
            ), True
        return FatalItemError(f"{status}: {message}"), True

    def _network_error(self, exc: Any, timed_out: bool, url: str) -> Exception:
        """A request that got no HTTP answer: say why; stop the job when no replica was ever reached."""
        reason = network_reason(exc)
        if reason is None:
            text = f"connection error: {exc.__cause__ or exc}"
            if timed_out:
                text = f"timed out after {self.config.timeout_s:g}s"
            return RetryableError(self.redact.text(text))
        self.unreachable += 1
        self.replicas.unreachable[url] += 1
        if self.replicas.dead(UNREACHABLE_LIMIT):
            names = ", ".join(public_base_url(u) for u in self.replicas.live()) or self.public_url
            return GraderError(
                f"cannot reach {names}: {reason} ({self.unreachable} attempts over the first items, none answered); "
                "check that the server is running and that `base_url` (or OPENAI_BASE_URL) is right"
            )
        return RetryableError(f"{reason} ({public_base_url(url)})", unreachable=True)

    async def _not_found_hint(self, url: str, model: str) -> str:
        """What a 404 most likely means: the models the endpoint serves, or a base URL without ``/v1``."""
        try:
            served = [m.id async for m in self.sdk(url).models.list()]
        except Exception:
            served = None
        if served and model not in served:
            return f"; the endpoint serves {', '.join(sorted(served)[:20])}: pass one as `model`"
        if served is None and not public_base_url(url).rstrip("/").endswith("/v1"):
            return (f"; {public_base_url(url)} has no /v1 at its end: "
                    "most OpenAI-compatible servers need it (`base_url` …/v1)")
        return ""

    def _check_model(self, url: str, requested: str, fields: dict[str, Any]) -> None:
        """An answer from another model than the one asked for: set its replica aside (when another can
        serve) and retry the item elsewhere; with one endpoint, keep it and let the manifest say so."""
        answered = fields.get("model")
        if not isinstance(answered, str):
            return
        self.replicas.models[url].add(answered)
        if self.config.azure_api_version or same_model(requested, answered):
            return
        if url in self.replicas.lost or len(self.replicas.live()) > 1:
            self.replicas.lose(url, f"answered as model {answered!r}, not {requested!r}")
            raise RetryableError(f"{public_base_url(url)} answered as model {answered!r}, not {requested!r}; "
                                 "that replica is set aside and the item sent elsewhere")
        if self.replicas.several:  # the last replica standing lies too
            self.replicas.lose(url, f"answered as model {answered!r}, not {requested!r}")
            raise GraderError(f"every replica answers as another model than {requested!r}: "
                              + "; ".join(f"{public_base_url(u)} {r}" for u, r in self.replicas.lost.items()))

    async def _send(self, request: dict[str, Any]) -> dict[str, Any]:
        import openai

        url = self.replicas.pick()
        healthy = False
        try:
            # The request is already a plain JSON body; posting it skips the SDK's per-call
            # TypedDict transform and pydantic model building (most of its CPU cost), while
            # keeping its transport, auth, Azure routing and typed status errors.
            raw = await self._read_capped(request, url)
            fields = completion_fields(raw)
            healthy = True
        except openai.APIStatusError as exc:
            self.answered += 1
            error, healthy = self._status_error(exc, url)
            if isinstance(error, GraderError) and exc.status_code == 404:
                error = GraderError(f"{error}{await self._not_found_hint(url, str(request.get('model', '')))}")
            raise error from None
        except openai.APITimeoutError as exc:
            raise self._network_error(exc, timed_out=True, url=url) from None
        except openai.APIConnectionError as exc:
            raise self._network_error(exc, timed_out=False, url=url) from None
        except RetryableError:
            self.answered += 1  # an answer, but not a completion (HTML, garbage): the replica's fault
            raise
        except (openai.APIResponseValidationError, ValueError) as exc:
            self.answered += 1
            raise RetryableError(self.redact.text(f"unreadable response body: {exc}")) from None
        finally:
            self.replicas.done(url, ok=healthy)
        self.answered += 1
        self._check_model(url, str(request.get("model", "")), fields)
        self.answered_ok += 1
        return fields

    async def _read_capped(self, request: dict[str, Any], url: str) -> bytes:
        """Post the request and read the decoded body, refusing more than ``max_response_bytes``."""
        import httpx2

        response = await self.sdk(url).post(
            "/chat/completions", cast_to=httpx2.Response, body=request,
            options={"headers": {"X-Stainless-Raw-Response": "stream"}},  # hand us the unread body
        )
        cap = self.config.max_response_bytes
        parts: list[bytes] = []
        size = 0
        try:
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > cap:
                    raise FatalItemError(f"response body over {cap:,} bytes (decoded); refused")
                parts.append(chunk)
        finally:
            await response.aclose()
        body = b"".join(parts)
        if self.redact.secrets:
            body = self.redact.text(body.decode("utf-8", errors="replace")).encode("utf-8")
        return body

    def remember(self, outcome: Reply) -> None:
        """Store a fresh, finished completion whatever it parses to (never a transport failure); see
        :mod:`harness.grading.cache`."""
        if outcome.completion is None or outcome.cached:
            return
        self.note_answer()
        if self.cache is not None:
            self.cache.put(outcome.request_hash, outcome.completion)

    def note_answer(self) -> None:
        """The endpoint has answered (a completion, or a batch it accepted): say so once."""
        if not self.has_answered:
            self.has_answered = True
            if self.on_answered is not None:
                self.on_answered()

    async def wait_ready(self) -> None:
        """Wait (once, shared by every request) for the endpoint's ``ready`` hook; its time counts as set-up.

        The hook runs in a daemon thread of its own, not the event loop's executor: Ctrl-C during a model's load ends
        the grade at once (``asyncio.run`` would wait for an executor thread to finish the load)."""
        if self.config.ready is None:
            return
        if self._ready is None:
            loop = asyncio.get_running_loop()
            future: asyncio.Future[None] = loop.create_future()
            started = time.perf_counter()

            def settle(error: BaseException | None) -> None:
                self.setup_s += time.perf_counter() - started
                if not future.done():
                    future.set_exception(error) if error is not None else future.set_result(None)

            def run(hook: Callable[[], None]) -> None:
                error: BaseException | None = None
                try:
                    hook()
                except BaseException as exc:  # handed to the loop, raised in the grade (a GraderError stops the job)
                    error = exc
                with contextlib.suppress(RuntimeError):  # the loop has closed: the grade was interrupted
                    loop.call_soon_threadsafe(settle, error)

            threading.Thread(target=run, args=(self.config.ready,), name="harness-ready", daemon=True).start()
            self._ready = future
        await asyncio.shield(self._ready)

    async def _attempt(self, request: dict[str, Any]) -> dict[str, Any]:
        await self.wait_ready()
        await self.limiter.acquire()
        rate_limited = False
        try:
            self.requests_sent += 1
            try:
                # bounds the whole request (connect, headers, body): a server that trickles its
                # body cannot hold an item past the timeout. asyncio.timeout, not wait_for: on 3.11
                # wait_for can swallow a cancellation that arrives as the request finishes
                async with asyncio.timeout(self.config.timeout_s):
                    return await self._send(request)
            except TimeoutError:
                raise RetryableError(f"timed out after {self.config.timeout_s:g}s (whole request)") from None
        except RetryableError as exc:
            rate_limited = exc.rate_limited
            self.rate_limited += int(rate_limited)
            raise
        finally:
            await self.limiter.release(rate_limited=rate_limited)

    async def complete(self, request: dict[str, Any], *, use_cache: bool = True) -> Reply:
        """One chat completion, from the cache or the endpoint, with retries.

        With the cache on, identical requests in flight at the same time share one call: the
        later ones are answered as cache hits when the first completes. Nothing is written to
        the cache here: the caller stores the completion with :meth:`remember` once it has
        judged it.
        """
        if self.schema_refused and _schema_of(request):
            request = {**request, "response_format": {"type": "json_object"}}
        key = request_key(self.identity, request)
        if use_cache and self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                return Reply(hit, None, 0, 0.0, True, key)
            pending = self._in_flight.get(key)
            if pending is not None:
                shared = await asyncio.shield(pending)
                if shared.completion is not None:
                    return Reply(shared.completion, None, 0, 0.0, True, key)
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._in_flight.setdefault(key, future)
        try:
            outcome = await self._gated(request, key, use_cache)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here, so an unawaited future logs nothing
            raise
        finally:
            if self._in_flight.get(key) is future:
                del self._in_flight[key]
        future.set_result(outcome)
        if outcome.completion is None and _schema_of(request) and refuses_format(outcome.error or ""):
            if outcome.attempts:  # the endpoint said no (not a request held back after it had said so)
                self.format_refusals += 1  # this item asked again with json_object; past a handful, every item is
                self.schema_refused = self.schema_refused or self.format_refusals >= FORMAT_REFUSALS
            return await self.complete({**request, "response_format": {"type": "json_object"}}, use_cache=use_cache)
        return outcome

    async def _gated(self, request: dict[str, Any], key: str, use_cache: bool) -> Reply:
        """Send a request; a json_schema one only one at a time until the endpoint has answered one (it takes
        structured outputs) or refused a handful (it does not): so a refusing endpoint costs a handful of requests,
        not one per item in flight."""
        if not _schema_of(request) or self.schema_accepted:
            return await self._complete_uncached(request, key, use_cache)
        async with self._schema_probe:
            if not (self.schema_accepted or self.schema_refused):
                outcome = await self._complete_uncached(request, key, use_cache)
                self.schema_accepted = outcome.completion is not None
                return outcome
        if self.schema_refused:  # refused while this one waited: asked with json_object at once, nothing sent
            return Reply(None, "400: response_format json_schema refused by the endpoint", 0, 0.0, False, key)
        return await self._complete_uncached(request, key, use_cache)

    @property
    def response_format_used(self) -> str | None:
        """What this session's json_schema requests were answered with: json-object once the endpoint refused it."""
        return "json-object" if self.schema_refused or self.format_refusals else None

    async def _complete_uncached(self, request: dict[str, Any], key: str, use_cache: bool) -> Reply:
        from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt

        started = time.perf_counter()
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.config.retry.max_attempts),
            retry=retry_if_exception_type(RetryableError),
            wait=self.wait_seconds,
            reraise=True,
        )
        completion: dict[str, Any] | None = None
        error: str | None = None
        async def run_attempts() -> dict[str, Any] | None:
            result = None
            async for attempt in retrying:
                with attempt:
                    result = await self._attempt(request)
            return result

        try:
            async with asyncio.timeout(self.config.deadline_s):
                completion = await run_attempts()
        except RetryableError as exc:
            error = f"gave up after {retrying.statistics.get('attempt_number', 0)} attempts: {exc}"
        except FatalItemError as exc:
            error = str(exc)
        except TimeoutError:
            tried = retrying.statistics.get("attempt_number", 0)
            error = f"deadline of {self.config.deadline_s:g}s per item passed after {tried} attempts"
        attempts = int(retrying.statistics.get("attempt_number", 1))
        latency = (time.perf_counter() - started) * 1000
        return Reply(completion, error, attempts, latency, False, key)


def _schema_of(request: dict[str, Any]) -> bool:
    return (request.get("response_format") or {}).get("type") == "json_schema"


def refuses_format(message: str) -> bool:
    """Whether a 400's message refuses the request's structured-output format (``response_format``, json_schema)."""
    text = message.lower()
    return "response_format" in text or "json_schema" in text or "structured output" in text
