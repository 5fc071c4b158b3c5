"""The persistent completion cache (diskcache), keyed by everything that fixes a completion.

The key hashes the endpoint's identity (:mod:`harness.grading.identity`: a remote endpoint's public base URL, without
credentials or query; a local ``harness serve``'s fingerprint; another local server's full URL, port included), the
model, the rendered messages and the sampling parameters (temperature, seed, max_tokens, top_p, response_format).
Retries, timeouts and concurrency are left out: they do not change the answer; ``n``, ``logprobs``, ``top_logprobs``
and ``stop`` are keyed when a request carries them. The cache holds what the endpoint answered, not what harness made
of it: every finished, non-empty completion (``finish_reason`` ``stop``, or ``length`` — a truncation is fixed by
``max_tokens``, which the key holds) is stored whatever it parses to, and a cached answer is judged again when it is
read, so an unparsed answer stays ``unparsed`` (never a verdict) and a better parser reads old answers anew. Transport
failures, content-filter stops and empty answers are never stored. ``grade --retry unparsed`` forgets the cached
answers of the items it grades again, and the several-item answer that left an item to be graded singly
(:meth:`CompletionCache.forget`), so a retry always reaches the endpoint. Entries are JSON data, never pickles
(:mod:`harness.grading.cache_disk`). No API key ever reaches the key or the value.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from ..core.constants import SERVE_IDENTITY_PREFIX
from ..core.errors import ConfigError
from .cache_disk import (
    MAX_ENTRY_BYTES,
    Legacy,
    RefusedEntry,
    data_disk,
    decode_entry,
    encode_entry,
    read_only_rows,
    row_of,
)

if TYPE_CHECKING:
    import sqlite3

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


@lru_cache(maxsize=64)
def key_endpoint(endpoint: str) -> str:
    """The endpoint as the key names it: a ``harness serve``'s fingerprint as it is, a URL as its public base URL
    (port included; see :mod:`harness.grading.identity`, which says which of the two an endpoint is)."""
    return endpoint if endpoint.startswith(SERVE_IDENTITY_PREFIX) else public_base_url(endpoint)


def is_loopback(base_url: str) -> bool:
    """Whether the endpoint is one of this machine's own servers (localhost, 127.x, ::1, or a ``harness serve``'s
    fingerprint, which only a loopback endpoint is known by)."""
    if base_url.startswith(SERVE_IDENTITY_PREFIX):
        return True
    host = urlsplit(base_url).hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")


def request_key(endpoint: str, request: dict[str, Any]) -> str:
    """Stable hash of a chat request at an endpoint: its identity (:mod:`harness.grading.identity`) or its URL."""
    material: dict[str, Any] = {"base_url": key_endpoint(endpoint)}
    material.update({k: request.get(k) for k in KEY_FIELDS})
    material.update({k: request[k] for k in KEY_FIELDS_IF_PRESENT if k in request})
    canonical = json.dumps(material, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


#: Token counts a cached completion carries (non-negative integers).
_COUNTS = ("prompt_tokens", "cached_prompt_tokens", "completion_tokens")


def checked_completion(data: Any) -> dict[str, Any]:
    """A stored completion as the grader reads it, or RefusedEntry: a finished, non-empty answer with whole token
    counts (a row changed by hand to anything else is not served)."""
    if not isinstance(data, dict):
        raise RefusedEntry("an entry that is not a completion")
    content = data.get("content")
    if not isinstance(content, str) or not content.strip() or data.get("finish_reason") not in CACHED_FINISHES:
        raise RefusedEntry("a completion without a finished answer")
    if any(type(data.get(name, 0)) is not int or data.get(name, 0) < 0 for name in _COUNTS):
        raise RefusedEntry("a completion whose token counts are not whole numbers")
    if not isinstance(data.get("model"), (str, type(None))) or not isinstance(data.get("logprobs", {}), dict):
        raise RefusedEntry("a completion with fields of the wrong type")
    samples = data.get("samples", [])
    if not isinstance(samples, list) or not all(isinstance(text, str) for text in samples):
        raise RefusedEntry("a completion whose samples are not texts")
    return data


def _writable(directory: Path) -> bool:
    """Whether this process may write the cache: its folder, and the database files that exist (a folder yet to be
    made is tried, and a failure said)."""
    if not directory.exists():
        return True
    files = [directory / name for name in ("cache.db", "cache.db-wal", "cache.db-shm")]
    return os.access(directory, os.W_OK | os.X_OK) and all(os.access(f, os.W_OK) for f in files if f.exists())


class CompletionCache:
    """A thin, typed wrapper over ``diskcache.Cache`` that stores data (:mod:`harness.grading.cache_disk`) and survives
    a damaged or read-only cache.

    A cache that cannot be opened (a truncated or garbage ``cache.db``) is moved aside to ``<dir>.broken-<time>`` and
    a fresh one is started. A cache this process may not write (its folder or files read-only) is read without writing:
    its answers are served, new ones are not kept, and it is never taken for damaged. An entry that is not harness's
    data (a pickle, a row changed by hand, a value file that cannot be read) is a miss, never run, and is dropped when
    the cache is writable. Either way grading goes on, every completion is still checked, and ``notes`` says what
    happened (the run's manifest and the summary show it). A cache is an optimisation: losing it costs requests, never
    labels.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self._notes: list[str] = []
        self.refused = 0
        self._first_refusal = ""
        self._forgotten: set[str] = set()
        self._cache: Any = None
        self._rows: sqlite3.Connection | None = None
        import sqlite3

        if not _writable(self.directory):
            self._open_read_only()
            return
        try:
            self._cache = self._open()
        except OSError as exc:
            raise ConfigError(f"`cache_dir` {directory}: not writable, or cannot be made ({exc}); pass another "
                              "`cache_dir`, or `no_cache`") from None
        except sqlite3.OperationalError as exc:  # locked, read-only under us, an I/O error: the files are not damaged
            if "readonly" in str(exc) or "read-only" in str(exc):
                self._open_read_only()
                return
            raise ConfigError(f"`cache_dir` {directory}: cannot open the cache ({exc}); pass another `cache_dir`, "
                              "or `no_cache`") from None
        except Exception as exc:  # sqlite3.DatabaseError and friends: the files are damaged
            self._move_aside(exc)

    @property
    def read_only(self) -> bool:
        return self._cache is None

    @property
    def notes(self) -> list[str]:
        """What happened to the cache in this session, in sentences (the manifest's ``cache_notes``)."""
        if not self.refused:
            return list(self._notes)
        fate = "left in place (read only)" if self.read_only else "dropped"
        return [*self._notes, f"{self.refused} cache entries were read as misses and never run: not harness's data, "
                              f"or unreadable (first: {self._first_refusal}); those refused were {fate}"]

    def _open(self) -> Any:
        import diskcache

        self.directory.mkdir(parents=True, exist_ok=True)
        cache = diskcache.Cache(str(self.directory), size_limit=2**34, disk=data_disk())
        len(cache)  # touches the database: a damaged one fails here, not mid-run
        return cache

    def _open_read_only(self) -> None:
        import sqlite3

        try:
            self._rows = read_only_rows(self.directory)
        except sqlite3.OperationalError:  # no database to read: nothing cached
            pass
        except Exception as exc:  # damaged, and not ours to move aside
            self._notes.append(f"the cache at {self.directory} is unreadable ({type(exc).__name__}: {exc}) and not "
                               "writable; graded without it")
            return
        self._notes.append(f"cache not writable; read only ({self.directory}: its answers are used, new ones are "
                           "not kept)")

    def _move_aside(self, exc: Exception) -> None:
        aside = self.directory.with_name(f"{self.directory.name}.broken-{int(time.time())}")
        try:
            self.directory.rename(aside)
            self._cache = self._open()
        except Exception as again:
            raise ConfigError(
                f"`cache_dir` {self.directory}: the cache is damaged ({exc}) and could not be moved aside "
                f"({again}); delete the folder or pass `no_cache`"
            ) from None
        self._notes.append(f"the cache at {self.directory} was unreadable ({type(exc).__name__}: {exc}); "
                           f"moved it to {aside} and started a new one")

    def get(self, key: str) -> dict[str, Any] | None:
        """The completion cached for ``key``, or ``None``: not there, forgotten, or refused (see the class)."""
        if key in self._forgotten:
            return None
        try:
            if self._cache is not None:
                row = self._cache.get(key)
            else:
                row = row_of(self._rows, self.directory, key) if self._rows is not None else None
            if row is None:
                return None
            if isinstance(row, Legacy):  # an older harness's pickled answer, read as plain data: kept as JSON
                completion = checked_completion(row.data)
                self._store(key, encode_entry(key, completion))
                return completion
            return checked_completion(decode_entry(row, key))
        except Exception as exc:  # refused, a value file cut short, a damaged row: a miss, never a crash
            self._refuse(key, exc)
            return None

    def _refuse(self, key: str, exc: Exception) -> None:
        self.refused += 1
        if self.refused == 1:
            self._first_refusal = str(exc) if isinstance(exc, RefusedEntry) else f"unreadable, {type(exc).__name__}"
        if self._cache is not None and isinstance(exc, RefusedEntry):  # never a row a passing fault left unread
            with contextlib.suppress(Exception):
                self._cache.delete(key)

    def put(self, key: str, completion: dict[str, Any]) -> None:
        content = completion.get("content")
        finished = completion.get("finish_reason") in CACHED_FINISHES
        if not finished or not isinstance(content, str) or not content.strip():
            return  # an empty answer is more likely a fault on the way than the model's: asked again next time
        if self._cache is None:
            return  # read only
        try:
            blob = encode_entry(key, completion)
        except (TypeError, ValueError, RecursionError):
            return  # not data: never stored
        if len(blob) <= MAX_ENTRY_BYTES:
            self._store(key, blob)
            self._forgotten.discard(key)

    def _store(self, key: str, blob: bytes) -> None:
        if self._cache is None:
            return
        try:
            self._cache.set(key, blob)
        except Exception as exc:
            if not any(n.startswith("could not write") for n in self._notes):
                self._notes.append(f"could not write to the cache ({type(exc).__name__}: {exc}); grading went on "
                                   "without it")

    def forget(self, keys: Iterable[str]) -> int:
        """Drop these entries (answers about to be asked again); how many were there. A read-only cache keeps them
        on disk but serves none of them in this session."""
        dropped = 0
        for key in keys:
            self._forgotten.add(key)
            if self._cache is not None:
                with contextlib.suppress(Exception):
                    dropped += bool(self._cache.delete(key))
        return dropped

    def __len__(self) -> int:
        if self._cache is not None:
            return len(self._cache)
        if self._rows is None:
            return 0
        try:
            return int(self._rows.execute("SELECT COUNT(*) FROM Cache").fetchone()[0])
        except Exception:  # no Cache table: an empty cache
            return 0

    def close(self) -> None:
        for handle in (self._cache, self._rows):
            if handle is not None:
                with contextlib.suppress(Exception):
                    handle.close()


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
