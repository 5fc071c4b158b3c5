"""The persistent completion cache (diskcache), keyed by everything that fixes a completion.

The key hashes the endpoint's base URL (without credentials or query), the model, the
rendered messages and the sampling parameters (temperature, seed, max_tokens, top_p,
response_format). Retries, timeouts and concurrency are left out: they do not change the
answer. The grader stores a completion only once it has parsed into a verdict, and ``put``
itself refuses anything but a ``finish_reason == "stop"`` answer, so errors, content-filter
stops, truncations, refusals and unparsed answers are never cached. No API key ever reaches
the key or the value.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .errors import ConfigError

#: Request fields that determine the completion (everything else is transport detail).
KEY_FIELDS = ("model", "messages", "temperature", "seed", "max_tokens", "top_p", "response_format")


@lru_cache(maxsize=64)
def public_base_url(base_url: str) -> str:
    """The base URL with any user:password and query string removed."""
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


def request_key(base_url: str, request: dict[str, Any]) -> str:
    """Stable hash of a chat request at an endpoint."""
    material: dict[str, Any] = {"base_url": public_base_url(base_url)}
    material.update({k: request.get(k) for k in KEY_FIELDS})
    canonical = json.dumps(material, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class CompletionCache:
    """A thin, typed wrapper over ``diskcache.Cache``."""

    def __init__(self, directory: str | Path) -> None:
        import diskcache

        try:
            Path(directory).mkdir(parents=True, exist_ok=True)
            self._cache = diskcache.Cache(str(directory), size_limit=2**34)
        except OSError as exc:
            raise ConfigError(f"--cache-dir {directory}: cannot open the cache: {exc}") from None
        self.directory = Path(directory)

    def get(self, key: str) -> dict[str, Any] | None:
        value = self._cache.get(key)
        return value if isinstance(value, dict) else None

    def put(self, key: str, completion: dict[str, Any]) -> None:
        if completion.get("finish_reason") != "stop" or completion.get("content") is None:
            return
        self._cache.set(key, completion)

    def __len__(self) -> int:
        return len(self._cache)

    def close(self) -> None:
        self._cache.close()
