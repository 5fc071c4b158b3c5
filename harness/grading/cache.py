"""The persistent completion cache (diskcache), keyed by everything that fixes a completion.

The key hashes the endpoint's base URL (without credentials or query), the model, the
rendered messages and the sampling parameters (temperature, seed, max_tokens, top_p,
response_format). Retries, timeouts and concurrency are left out: they do not change the
answer; ``n``, ``logprobs``, ``top_logprobs`` and ``stop`` are keyed when a request carries
them. The cache holds what the endpoint answered, not what harness made of it: every
finished, non-empty completion (``finish_reason`` ``stop``, or ``length`` — a truncation is fixed
by ``max_tokens``, which the key holds) is stored whatever it parses to, and a cached answer is
judged again when it is read, so an unparsed answer stays ``unparsed`` (never a verdict) and a
better parser reads old answers anew. Transport failures, content-filter stops and empty
answers are never stored. ``grade --retry unparsed`` forgets the cached answers of the items it
grades again, and the several-item answer that left an item to be graded singly
(:meth:`CompletionCache.forget`), so a retry always reaches the endpoint. No API key ever
reaches the key or the value.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..core.errors import ConfigError

#: Request fields that determine the completion (everything else is transport detail).
KEY_FIELDS = ("model", "messages", "temperature", "seed", "max_tokens", "top_p", "response_format")

#: Fields that change the answer only when a request carries them (samples, logprobs): keyed when present, so the keys
#: of requests without them are what they always were.
KEY_FIELDS_IF_PRESENT = ("n", "logprobs", "top_logprobs", "stop")

#: The finish reasons of a completion the cache keeps (a content-filter stop is the provider's, not the model's).
CACHED_FINISHES = ("stop", "length")


@lru_cache(maxsize=64)
def public_base_url(base_url: str) -> str:
    """The base URL with any user:password and query string removed."""
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


def cache_endpoint(base_url: str) -> str:
    """The endpoint as the cache key names it: the public base URL, but a loopback endpoint without its port.

    A loopback endpoint is one of this machine's own servers (``harness serve``, a local vLLM or Ollama), reached on
    whichever port it was given today; what fixes its answer is the model, the messages and the parameters, which
    the key holds. So a study's embedded endpoint, ``harness serve`` and the demo share cached answers.
    """
    public = public_base_url(base_url)
    if is_loopback(public):
        parts = urlsplit(public)
        return urlunsplit((parts.scheme, "loopback", parts.path, "", ""))
    return public


def is_loopback(base_url: str) -> bool:
    """Whether the endpoint is one of this machine's own servers (localhost, 127.x, ::1)."""
    host = urlsplit(base_url).hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")


def request_key(base_url: str, request: dict[str, Any]) -> str:
    """Stable hash of a chat request at an endpoint (see :func:`cache_endpoint`)."""
    material: dict[str, Any] = {"base_url": cache_endpoint(base_url)}
    material.update({k: request.get(k) for k in KEY_FIELDS})
    material.update({k: request[k] for k in KEY_FIELDS_IF_PRESENT if k in request})
    canonical = json.dumps(material, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class CompletionCache:
    """A thin, typed wrapper over ``diskcache.Cache`` that survives a damaged cache.

    A cache that cannot be opened (a truncated or garbage ``cache.db``) is moved aside to
    ``<dir>.broken-<time>`` and a fresh one is started; an entry that cannot be read (a
    truncated value file) is a miss and is dropped. Either way grading goes on, every
    completion is still checked, and ``notes`` says what happened (the run's manifest and the
    summary show it). A cache is an optimisation: losing it costs requests, never labels.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.notes: list[str] = []
        self.unreadable = 0
        try:
            self._cache = self._open()
        except OSError as exc:
            raise ConfigError(f"`cache_dir` {directory}: cannot open the cache: {exc}") from None
        except Exception as exc:  # sqlite3.DatabaseError and friends: the files are damaged
            aside = self.directory.with_name(f"{self.directory.name}.broken-{int(time.time())}")
            try:
                self.directory.rename(aside)
                self._cache = self._open()
            except Exception as again:
                raise ConfigError(
                    f"`cache_dir` {directory}: the cache is damaged ({exc}) and could not be moved aside "
                    f"({again}); delete the folder or pass `no_cache`"
                ) from None
            self.notes.append(f"the cache at {directory} was unreadable ({type(exc).__name__}: {exc}); "
                              f"moved it to {aside} and started a new one")

    def _open(self) -> Any:
        import diskcache

        self.directory.mkdir(parents=True, exist_ok=True)
        cache = diskcache.Cache(str(self.directory), size_limit=2**34)
        len(cache)  # touches the database: a damaged one fails here, not mid-run
        return cache

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            value = self._cache.get(key)
        except Exception as exc:  # a truncated value file, a damaged row: a miss, never a crash
            self.unreadable += 1
            if self.unreadable == 1:
                self.notes.append(f"unreadable cache entries were treated as misses and regraded (first: {type(exc).__name__})")
            with contextlib.suppress(Exception):
                self._cache.delete(key)
            return None
        return value if isinstance(value, dict) else None

    def put(self, key: str, completion: dict[str, Any]) -> None:
        content = completion.get("content")
        if completion.get("finish_reason") not in CACHED_FINISHES or not isinstance(content, str) or not content.strip():
            return  # an empty answer is more likely a fault on the way than the model's: asked again next time
        try:
            self._cache.set(key, completion)
        except Exception as exc:
            if not any(n.startswith("could not write") for n in self.notes):
                self.notes.append(f"could not write to the cache ({type(exc).__name__}: {exc}); grading went on without it")

    def forget(self, keys: Iterable[str]) -> int:
        """Drop these entries (answers about to be asked again); how many were there."""
        dropped = 0
        for key in keys:
            with contextlib.suppress(Exception):
                dropped += bool(self._cache.delete(key))
        return dropped

    def __len__(self) -> int:
        return len(self._cache)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._cache.close()


@contextlib.contextmanager
def completion_lookup(folder: Path | None) -> Iterator[Callable[[str], str | None] | None]:
    """The raw completion (its text) by request hash from an existing cache folder, closed afterwards; ``None`` when
    there is no folder (the viewer then says the completion was not kept)."""
    if folder is None or not folder.is_dir():
        yield None
        return
    cache = CompletionCache(folder)
    try:
        yield lambda key: (cache.get(key) or {}).get("content")
    finally:
        cache.close()
