"""The grader client: ``openai.AsyncOpenAI`` with an explicit retry policy and a cache.

Retries (tenacity): 408, 409, 429 and 5xx answers, connection errors, timeouts and
unreadable response bodies, with exponential backoff and full jitter, honouring
``Retry-After``/``retry-after-ms`` up to a cap. 400/422 fail the item at once; 401, 403 and
404 stop the whole job (every further request would fail the same way). Concurrency is
bounded and halves on every 429, then grows back one slot per success (AIMD).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from ..core.constants import (
    BACKOFF_INITIAL_S,
    BACKOFF_MAX_S,
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_TIMEOUT_S,
    MAX_RESPONSE_BYTES,
    RETRY_AFTER_CAP_S,
)
from ..core.errors import ConfigError, GraderError
from ..core.redaction import Redactor
from .cache import CompletionCache, public_base_url, request_key
from .replicas import Replicas

TRANSPORTS = ("aiohttp", "httpx")


@dataclass(frozen=True)
class RetryPolicy:
    """How many attempts and how long to wait between them."""

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    initial_s: float = BACKOFF_INITIAL_S
    max_s: float = BACKOFF_MAX_S
    retry_after_cap_s: float = RETRY_AFTER_CAP_S


@dataclass(frozen=True)
class EndpointConfig:
    """Where and how to call the grader. ``api_key`` is never written anywhere."""

    base_url: str
    api_key: str | None = field(default=None, repr=False)
    azure_api_version: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    concurrency: int = DEFAULT_CONCURRENCY
    transport: str = "aiohttp"
    retry: RetryPolicy = RetryPolicy()
    #: Wall-clock bound on one item, all attempts and waits included (None: no bound beyond
    #: ``timeout_s`` per attempt).
    deadline_s: float | None = None
    #: Largest decoded response body accepted; a larger one fails the item (a gzip bomb or a
    #: runaway completion never reaches memory, the cache or labels.jsonl).
    max_response_bytes: int = MAX_RESPONSE_BYTES
    #: Further base URLs serving the same grader (self-hosted replicas); see harness.replicas.
    replicas: tuple[str, ...] = ()

    @property
    def urls(self) -> tuple[str, ...]:
        """Every replica's base URL, ``base_url`` first."""
        return (self.base_url, *self.replicas)

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ConfigError(f"concurrency={self.concurrency}: expected an integer >= 1", param="concurrency")
        if self.timeout_s <= 0:
            raise ConfigError(f"timeout_s={self.timeout_s}: expected a positive number of seconds", param="timeout_s")
        if self.transport not in TRANSPORTS:
            raise ConfigError(f"transport={self.transport!r}: expected one of {list(TRANSPORTS)}", param="transport")
        if self.retry.max_attempts < 1:
            raise ConfigError(f"max_attempts={self.retry.max_attempts}: expected an integer >= 1", param="max_attempts")
        if self.deadline_s is not None and self.deadline_s <= 0:
            raise ConfigError(f"deadline_s={self.deadline_s}: expected a positive number of seconds", param="deadline_s")
        if self.max_response_bytes < 1024:
            raise ConfigError(f"max_response_bytes={self.max_response_bytes}: expected at least 1024", param="max_response_bytes")
        for url in self.replicas:
            if not url.startswith(("http://", "https://")):
                raise ConfigError(f"base_url={url!r}: expected an http:// or https:// URL for every replica", param="base_url")
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"base_url={self.base_url!r}: expected an http:// or https:// URL, e.g. "
                "http://127.0.0.1:8000/v1", param="base_url",
            )
        from urllib.parse import urlsplit

        if urlsplit(self.base_url).username is not None or urlsplit(self.base_url).password is not None:
            raise ConfigError(
                "--base-url carries credentials (user:key@host); pass the key with --api-key or "
                "OPENAI_API_KEY and give the URL without them"
            )


@dataclass
class Outcome:
    """What one request came to: a completion, or an error after ``attempts`` tries."""

    completion: dict[str, Any] | None
    error: str | None
    attempts: int
    latency_ms: float
    cached: bool
    request_hash: str


#: With no answer yet, this many attempts that could not reach the server stop the job.
UNREACHABLE_LIMIT = 6
#: Longest wait between attempts while no attempt has ever reached the server.
UNREACHABLE_WAIT_S = 0.5
#: With no successful answer yet, this many 400/422 rejections stop the job.
REJECTED_LIMIT = 8


def _api_message(exc: Any) -> str:
    """The server's own error message (the SDK prefixes "Error code: 500 - " and may add a dict repr)."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        nested = body.get("error")
        inner: dict[str, Any] = nested if isinstance(nested, dict) else body
        text = inner.get("message")
        if isinstance(text, str) and text:
            return text
    return str(exc.message).split(" - ", 1)[-1] if str(exc.message).startswith("Error code:") else str(exc.message)


def network_reason(exc: BaseException) -> str | None:
    """What kept a request from reaching the server, told apart on every transport.

    Walks the exception's causes (the SDK wraps aiohttp's and httpx's errors differently, and
    aiohttp reports a refused connection as a timeout). ``None`` for a genuine timeout or an
    unknown cause.
    """
    import socket
    import ssl

    seen: BaseException | None = exc
    for _ in range(12):
        if seen is None:
            break
        if isinstance(seen, ConnectionRefusedError):
            return "connection refused"
        if isinstance(seen, socket.gaierror):
            return "DNS lookup failed (no such host)"
        if isinstance(seen, ssl.SSLError):
            return f"TLS error ({getattr(seen, 'reason', None) or seen})"
        if isinstance(seen, ConnectionResetError):
            return "connection reset by the server"
        seen = seen.__cause__ or seen.__context__
    return None


class _RetryableError(Exception):
    def __init__(self, message: str, retry_after: float | None = None, rate_limited: bool = False, unreachable: bool = False):
        super().__init__(message)
        self.retry_after = retry_after
        self.rate_limited = rate_limited
        self.unreachable = unreachable


class AdaptiveLimiter:
    """A concurrency limit that halves on rate limiting and creeps back up on success."""

    def __init__(self, maximum: int) -> None:
        self.maximum = maximum
        self.limit = float(maximum)
        self.active = 0
        self._condition = asyncio.Condition()

    async def acquire(self) -> None:
        async with self._condition:
            await self._condition.wait_for(lambda: self.active < max(1, int(self.limit)))
            self.active += 1

    async def release(self, *, rate_limited: bool) -> None:
        async with self._condition:
            self.active -= 1
            if rate_limited:
                self.limit = max(1.0, self.limit / 2)
            elif self.limit < self.maximum:
                self.limit = min(float(self.maximum), self.limit + 1.0 / max(1.0, self.limit))
            self._condition.notify_all()


def _retry_after(headers: Any) -> float | None:
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) / scale)
        except ValueError:
            continue
    return None


def _completion(raw: bytes) -> dict[str, Any]:
    """The fields we keep from a chat-completion body; an unreadable body is retryable."""
    try:
        data = json.loads(raw)
        choice = data["choices"][0]
        message = choice["message"]
        content = message.get("content")
        usage = data.get("usage") or {}
        if content is not None and not isinstance(content, str):
            raise TypeError("message content is not a string")
        details = usage.get("prompt_tokens_details") or {}
        return {
            "content": content,
            "finish_reason": choice.get("finish_reason"),
            "prompt_tokens": int(usage.get("prompt_tokens") or 0),
            "cached_prompt_tokens": int(details.get("cached_tokens") or 0) if isinstance(details, dict) else 0,
            "completion_tokens": int(usage.get("completion_tokens") or 0),
            "model": data.get("model"),
        }
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        reason = "response without choices" if isinstance(exc, (KeyError, IndexError)) else str(exc)
        raise _RetryableError(f"unreadable response body: {reason}") from None


class GraderClient:
    """Sends chat requests with caching, bounded concurrency and retries."""

    def __init__(self, config: EndpointConfig, cache: CompletionCache | None = None) -> None:
        self.config = config
        self.cache = cache
        self.limiter = AdaptiveLimiter(config.concurrency)
        self.rate_limited = 0
        self.requests_sent = 0
        self._clients: dict[str, Any] = {}
        self.replicas = Replicas(config.urls)
        self._in_flight: dict[str, asyncio.Future[Outcome]] = {}
        self.setup_s = 0.0  # time spent making the SDK client (imports included)
        self.redact = Redactor.of(config.api_key)  # an endpoint may echo the key back
        self.public_url = public_base_url(config.base_url)
        self.answered = 0  # HTTP answers of any status
        self.answered_ok = 0
        self.unreachable = 0  # attempts that never reached a server (refused, DNS, TLS)
        self.rejected = 0  # 400/422 answers

    async def __aenter__(self) -> GraderClient:
        if self.cache is None:  # every item will reach the endpoint: make the client now
            self._openai()
        return self

    def _openai(self, url: str | None = None) -> Any:
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

    def _wait_seconds(self, state: Any) -> float:
        """Tenacity wait: the server's Retry-After (capped), else full-jitter exponential."""
        from tenacity import wait_random_exponential

        policy = self.config.retry
        error = state.outcome.exception() if state.outcome is not None else None
        if isinstance(error, _RetryableError) and error.retry_after is not None:
            return min(error.retry_after, policy.retry_after_cap_s)
        jitter = wait_random_exponential(multiplier=policy.initial_s, max=policy.max_s)
        if isinstance(error, _RetryableError) and error.unreachable and self.answered == 0:
            # nothing has ever answered: retry briefly, so a dead endpoint is called dead in seconds
            return min(float(jitter(state)), UNREACHABLE_WAIT_S)
        return float(jitter(state))

    def _status_error(self, exc: Any) -> Exception:
        """What an HTTP error answer becomes: retry it, fail the item, or stop the job."""
        status = exc.status_code
        message = self.redact.text(_api_message(exc))
        if status == 429:
            return _RetryableError(f"429 rate limited: {message}", _retry_after(exc.response.headers), rate_limited=True)
        if status in (408, 409) or status >= 500:
            return _RetryableError(f"{status}: {message}", _retry_after(exc.response.headers))
        if status in (401, 403):
            return GraderError(
                f"the endpoint answered {status} ({message}); check the API key (--api-key or OPENAI_API_KEY) "
                "and its permissions"
            )
        if status == 404:
            return GraderError(f"the endpoint answered 404 ({message}); check --model and --base-url")
        self.rejected += 1
        if self.answered_ok == 0 and self.rejected >= REJECTED_LIMIT:
            return GraderError(
                f"the endpoint rejected the first {self.rejected} requests with {status} ({message}); "
                "check --model, the template and --max-tokens"
            )
        return _FatalItemError(f"{status}: {message}")

    def _network_error(self, exc: Any, timed_out: bool, url: str) -> Exception:
        """A request that got no HTTP answer: say why; stop the job if nothing ever answered."""
        reason = network_reason(exc)
        if reason is None:
            text = f"timed out after {self.config.timeout_s:g}s" if timed_out else f"connection error: {exc.__cause__ or exc}"
            return _RetryableError(self.redact.text(text))
        self.unreachable += 1
        if self.answered == 0 and self.unreachable >= UNREACHABLE_LIMIT:
            return GraderError(
                f"cannot reach {self.public_url}: {reason} ({self.unreachable} attempts, no answer yet); "
                "check that the server is running and that --base-url (or OPENAI_BASE_URL) is right"
            )
        return _RetryableError(f"{reason} ({public_base_url(url)})", unreachable=True)

    async def _send(self, request: dict[str, Any]) -> dict[str, Any]:
        import openai

        url = self.replicas.pick()
        reached = False
        try:
            # The request is already a plain JSON body; posting it skips the SDK's per-call
            # TypedDict transform and pydantic model building (most of its CPU cost), while
            # keeping its transport, auth, Azure routing and typed status errors.
            raw = await self._read_capped(request, url)
            reached = True
        except openai.APIStatusError as exc:
            reached = True
            self.answered += 1
            raise self._status_error(exc) from None
        except openai.APITimeoutError as exc:
            raise self._network_error(exc, timed_out=True, url=url) from None
        except openai.APIConnectionError as exc:
            raise self._network_error(exc, timed_out=False, url=url) from None
        except (openai.APIResponseValidationError, ValueError) as exc:
            reached = True
            self.answered += 1
            raise _RetryableError(self.redact.text(f"unreadable response body: {exc}")) from None
        finally:
            self.replicas.done(url, reached=reached)
        self.answered += 1
        self.answered_ok += 1
        return _completion(raw)

    async def _read_capped(self, request: dict[str, Any], url: str) -> bytes:
        """Post the request and read the decoded body, refusing more than ``max_response_bytes``."""
        from openai._base_client import httpx2

        response = await self._openai(url).post(
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
                    raise _FatalItemError(f"response body over {cap:,} bytes (decoded); refused")
                parts.append(chunk)
        finally:
            await response.aclose()
        body = b"".join(parts)
        if self.redact.secrets:
            body = self.redact.text(body.decode("utf-8", errors="replace")).encode("utf-8")
        return body

    def remember(self, outcome: Outcome) -> None:
        """Store a fresh completion that produced a verdict (never errors or non-verdicts)."""
        if self.cache is not None and outcome.completion is not None and not outcome.cached:
            self.cache.put(outcome.request_hash, outcome.completion)

    async def _attempt(self, request: dict[str, Any]) -> dict[str, Any]:
        await self.limiter.acquire()
        rate_limited = False
        try:
            self.requests_sent += 1
            try:
                # bounds the whole request (connect, headers, body): a server that trickles its
                # body cannot hold an item past the timeout
                return await asyncio.wait_for(self._send(request), timeout=self.config.timeout_s)
            except TimeoutError:
                raise _RetryableError(f"timed out after {self.config.timeout_s:g}s (whole request)") from None
        except _RetryableError as exc:
            rate_limited = exc.rate_limited
            self.rate_limited += int(rate_limited)
            raise
        finally:
            await self.limiter.release(rate_limited=rate_limited)

    async def complete(self, request: dict[str, Any], *, use_cache: bool = True) -> Outcome:
        """One chat completion, from the cache or the endpoint, with retries.

        With the cache on, identical requests in flight at the same time share one call: the
        later ones are answered as cache hits when the first completes. Nothing is written to
        the cache here: the caller stores a completion with :meth:`remember` once it has
        checked that it holds a verdict.
        """
        key = request_key(self.config.base_url, request)
        if use_cache and self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                return Outcome(hit, None, 0, 0.0, True, key)
            pending = self._in_flight.get(key)
            if pending is not None:
                shared = await asyncio.shield(pending)
                if shared.completion is not None:
                    return Outcome(shared.completion, None, 0, 0.0, True, key)
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._in_flight.setdefault(key, future)
        try:
            outcome = await self._complete_uncached(request, key, use_cache)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here, so an unawaited future logs nothing
            raise
        finally:
            if self._in_flight.get(key) is future:
                del self._in_flight[key]
        future.set_result(outcome)
        return outcome

    async def _complete_uncached(self, request: dict[str, Any], key: str, use_cache: bool) -> Outcome:
        from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt

        started = time.perf_counter()
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.config.retry.max_attempts),
            retry=retry_if_exception_type(_RetryableError),
            wait=self._wait_seconds,
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
            completion = await asyncio.wait_for(run_attempts(), timeout=self.config.deadline_s)
        except _RetryableError as exc:
            error = f"gave up after {retrying.statistics.get('attempt_number', 0)} attempts: {exc}"
        except _FatalItemError as exc:
            error = str(exc)
        except TimeoutError:
            error = f"deadline of {self.config.deadline_s:g}s per item passed after {retrying.statistics.get('attempt_number', 0)} attempts"
        attempts = int(retrying.statistics.get("attempt_number", 1))
        latency = (time.perf_counter() - started) * 1000
        return Outcome(completion, error, attempts, latency, False, key)


class _FatalItemError(Exception):
    """An answer that fails this item without retrying (400, 422)."""
