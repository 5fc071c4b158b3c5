"""One typed configuration, merged defaults -> config file -> environment -> flags.

``None`` means "not set" at every layer, so a later layer only overrides what it sets. The
config file is ``harness.toml`` in the working folder (or ``HARNESS_CONFIG``), with keys named
like the fields below. Environment variables are ``HARNESS_<FIELD>`` in upper case, plus the
OpenAI conventions ``OPENAI_BASE_URL`` and ``OPENAI_API_KEY``.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ..core.constants import (
    BACKOFF_INITIAL_S,
    BACKOFF_MAX_S,
    DEFAULT_BASE_URL,
    DEFAULT_CACHE_DIR,
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MODEL,
    DEFAULT_TIMEOUT_S,
    RETRY_AFTER_CAP_S,
)
from ..core.errors import ConfigError
from .endpoint import EndpointConfig, RetryPolicy


@dataclass(frozen=True)
class Settings:
    """Endpoint and execution settings; every field may be unset (None)."""

    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    azure_api_version: str | None = None
    model: str | None = None
    concurrency: int | None = None
    timeout_s: float | None = None
    max_attempts: int | None = None
    transport: str | None = None
    cache_dir: str | None = None
    backoff_initial_s: float | None = None
    backoff_max_s: float | None = None
    retry_after_cap_s: float | None = None
    deadline_s: float | None = None

    def merge(self, other: Settings) -> Settings:
        """``other``'s set fields override this one's."""
        updates = {f.name: getattr(other, f.name) for f in fields(other) if getattr(other, f.name) is not None}
        return replace(self, **updates)

    def endpoint(self) -> EndpointConfig:
        """The resolved endpoint configuration, defaults filled in."""
        if self.base_url is not None and not self.base_url.replace(",", "").strip():
            raise ConfigError(f"base_url={self.base_url!r}: expected an http:// or https:// URL, e.g. {DEFAULT_BASE_URL} "
                              "(an empty one is not the default)", param="base_url")
        urls = [u.strip() for u in (self.base_url or DEFAULT_BASE_URL).split(",") if u.strip()] or [DEFAULT_BASE_URL]
        return EndpointConfig(
            base_url=urls[0],
            replicas=tuple(urls[1:]),
            api_key=self.api_key,
            azure_api_version=self.azure_api_version,
            timeout_s=self.timeout_s if self.timeout_s is not None else DEFAULT_TIMEOUT_S,
            concurrency=self.concurrency if self.concurrency is not None else DEFAULT_CONCURRENCY,
            transport=self.transport or "aiohttp",
            deadline_s=self.deadline_s,
            retry=RetryPolicy(
                max_attempts=self.max_attempts if self.max_attempts is not None else DEFAULT_MAX_ATTEMPTS,
                initial_s=self.backoff_initial_s if self.backoff_initial_s is not None else BACKOFF_INITIAL_S,
                max_s=self.backoff_max_s if self.backoff_max_s is not None else BACKOFF_MAX_S,
                retry_after_cap_s=(
                    self.retry_after_cap_s if self.retry_after_cap_s is not None else RETRY_AFTER_CAP_S
                ),
            ),
        )

    @property
    def resolved_model(self) -> str:
        return self.model or DEFAULT_MODEL

    @property
    def resolved_cache_dir(self) -> str:
        return self.cache_dir or DEFAULT_CACHE_DIR


_TYPES: dict[str, type] = {
    "concurrency": int,
    "max_attempts": int,
    "timeout_s": float,
    "backoff_initial_s": float,
    "backoff_max_s": float,
    "retry_after_cap_s": float,
    "deadline_s": float,
}


def _coerce(name: str, value: Any, where: str) -> Any:
    if name == "base_url" and isinstance(value, list):  # replicas: a list in harness.toml
        value = ",".join(map(str, value))
    kind = _TYPES.get(name, str)
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {name}={value!r} is not a valid {kind.__name__}") from None


def read_config_file(path: str | Path | None = None) -> tuple[Path, dict[str, Any]]:
    """The settings file (``path``, else ``HARNESS_CONFIG``, else ``harness.toml``) and its parsed
    TOML; an absent default file reads as empty, an absent named one is an error."""
    file = Path(path or os.environ.get("HARNESS_CONFIG") or "harness.toml")
    if not file.exists():
        if path is not None:
            raise ConfigError(f"`config_path` {file}: file not found")
        return file, {}
    try:
        return file, tomllib.loads(file.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{file}: invalid TOML: {exc}") from None


def from_file(path: str | Path | None = None) -> Settings:
    """Settings from a TOML file (``harness.toml`` by default; absent means empty)."""
    file, data = read_config_file(path)
    data.pop("prices", None)  # the [prices] table: harness.grading.costs.load_prices
    known = {f.name for f in fields(Settings)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{file}: unknown key {unknown[0]!r}; expected some of {sorted(known)}")
    return Settings(**{k: _coerce(k, v, str(file)) for k, v in data.items()})


def from_env(environ: dict[str, str] | None = None) -> Settings:
    """Settings from ``HARNESS_*`` variables (and ``OPENAI_BASE_URL``/``OPENAI_API_KEY``)."""
    env = dict(os.environ if environ is None else environ)
    values: dict[str, Any] = {}
    if env.get("OPENAI_BASE_URL"):
        values["base_url"] = env["OPENAI_BASE_URL"]
    if env.get("OPENAI_API_KEY"):
        values["api_key"] = env["OPENAI_API_KEY"]
    if env.get("AZURE_OPENAI_API_KEY") and "api_key" not in values:
        values["api_key"] = env["AZURE_OPENAI_API_KEY"]
    if env.get("OPENAI_API_VERSION"):
        values["azure_api_version"] = env["OPENAI_API_VERSION"]
    for item in fields(Settings):
        name = f"HARNESS_{item.name.upper()}"
        if env.get(name):
            values[item.name] = _coerce(item.name, env[name], name)
    return Settings(**values)


def resolve(flags: Settings, *, config_path: str | Path | None = None) -> Settings:
    """Merge defaults <- config file <- environment <- flags."""
    return Settings().merge(from_file(config_path)).merge(from_env()).merge(flags)


def sources(flags: Settings, *, config_path: str | Path | None = None) -> dict[str, str]:
    """Where each setting's value comes from: ``flag``, ``environment``, ``config file`` or ``default``."""
    layers = (("flag", flags), ("environment", from_env()), ("config file", from_file(config_path)))
    out = {}
    for item in fields(Settings):
        out[item.name] = next((name for name, layer in layers if getattr(layer, item.name) is not None), "default")
    return out
