"""Where and how to call a grader: the endpoint's URL(s), key, timeouts, concurrency and retry policy.

``EndpointConfig`` is checked when it is made, naming the parameter (``concurrency=0: …``), so a
bad value fails before anything is sent; the CLI shows the flag that sets it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..core.constants import (
    BACKOFF_INITIAL_S,
    BACKOFF_MAX_S,
    DEFAULT_BASE_URL,
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_TIMEOUT_S,
    MAX_RESPONSE_BYTES,
    RETRY_AFTER_CAP_S,
)
from ..core.errors import ConfigError

if TYPE_CHECKING:
    from .settings import EndpointSettings


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
    #: Further base URLs serving the same grader (self-hosted replicas); see harness.grading.replicas.
    replicas: tuple[str, ...] = ()
    #: Called once, in a thread, before the first request is sent, and raising a GraderError when the endpoint cannot
    #: serve: an embedded server still fitting its graders or loading a model. A grade answered wholly from the cache
    #: never calls it, so it never waits for a model it does not ask.
    ready: Callable[[], None] | None = field(default=None, repr=False, compare=False)
    #: Which grader this is, when known without asking (an embedded server's fingerprint, computed by the process that
    #: starts it): the cache key and the run folder name it. ``None``: learned once per grade
    #: (harness.grading.identity).
    identity: str | None = None

    @property
    def urls(self) -> tuple[str, ...]:
        """Every replica's base URL, ``base_url`` first."""
        return (self.base_url, *self.replicas)

    def __post_init__(self) -> None:
        from .settings import EndpointSettings, check_against

        check_against(EndpointSettings, {  # the bounds the settings declare, named as the library's parameters
            "concurrency": self.concurrency, "timeout_s": self.timeout_s, "transport": self.transport,
            "max_attempts": self.retry.max_attempts, "deadline_s": self.deadline_s,
            "backoff_initial_s": self.retry.initial_s, "backoff_max_s": self.retry.max_s,
            "retry_after_cap_s": self.retry.retry_after_cap_s})
        if self.max_response_bytes < 1024:
            raise ConfigError(
                f"max_response_bytes={self.max_response_bytes}: expected at least 1024", param="max_response_bytes"
            )
        for url in self.replicas:
            if not url.startswith(("http://", "https://")):
                raise ConfigError(
                    f"base_url={url!r}: expected an http:// or https:// URL for every replica", param="base_url"
                )
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"base_url={self.base_url!r}: expected an http:// or https:// URL, e.g. "
                f"{DEFAULT_BASE_URL}", param="base_url",
            )
        from urllib.parse import urlsplit

        if urlsplit(self.base_url).username is not None or urlsplit(self.base_url).password is not None:
            raise ConfigError(
                "`base_url` carries credentials (user:key@host); pass the key with `api_key` or "
                "OPENAI_API_KEY and give the URL without them"
            )


def endpoint_of(settings: EndpointSettings, **overrides: Any) -> EndpointConfig:
    """The library's endpoint from its settings (the one builder; ``overrides``: fields of :class:`EndpointConfig`,
    such as the embedded server's URL and readiness hook)."""
    from .endpoint import EndpointConfig, RetryPolicy

    urls = [u.strip() for u in settings.base_url.split(",") if u.strip()]
    if not urls:
        raise ConfigError(
            f"base_url={settings.base_url!r}: expected an http:// or https:// URL, e.g. {DEFAULT_BASE_URL}",
            param="base_url",
        )
    return EndpointConfig(**{
        "base_url": urls[0], "replicas": tuple(urls[1:]), "api_key": settings.api_key,
        "azure_api_version": settings.azure_api_version,
        "timeout_s": settings.timeout_s,
        "concurrency": settings.concurrency,
        "transport": settings.transport, "deadline_s": settings.deadline_s,
        "retry": RetryPolicy(max_attempts=settings.max_attempts, initial_s=settings.backoff_initial_s,
                             max_s=settings.backoff_max_s, retry_after_cap_s=settings.retry_after_cap_s),
        **overrides})
