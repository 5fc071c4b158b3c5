"""Secrets never leave the process: every text harness writes or prints passes a redactor.

An endpoint can echo the API key back (in an error body, or inside a completion); a URL can
carry credentials. The redactor knows every secret the process was given (the key from flags,
environment or config; any ``*_API_KEY``/``*_TOKEN``/``*_SECRET`` variable) and replaces each
occurrence with ``[redacted]`` in label records, cached completions, error messages and logs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

REDACTED = "[redacted]"
#: Shorter values are not treated as secrets (they would redact ordinary words).
MIN_SECRET_LENGTH = 8
_SECRET_SUFFIXES = ("_API_KEY", "_KEY", "_TOKEN", "_SECRET", "_PASSWORD")


@dataclass(frozen=True)
class Redactor:
    """Replaces known secrets in text; a no-op when it knows none."""

    secrets: tuple[str, ...] = ()

    @classmethod
    def of(cls, *values: str | None, environ: Mapping[str, str] | None = None) -> Redactor:
        """The given secrets plus every secret-looking variable of ``environ`` (default: os.environ)."""
        env = os.environ if environ is None else environ
        found = [v for v in values if v]
        found += [value for name, value in env.items() if name.upper().endswith(_SECRET_SUFFIXES) and value]
        unique = sorted({s for s in found if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)
        return cls(tuple(unique))

    def text(self, value: str) -> str:
        """``value`` with every secret replaced (longest first, so no secret survives in part).

        >>> Redactor(("sk-test-123456",)).text("bad key sk-test-123456 given")
        'bad key [redacted] given'
        """
        for secret in self.secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return value

    def __call__(self, value: Any) -> Any:
        """Redact a string, or every string inside a dict or list (records, completions)."""
        if not self.secrets:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self(v) for v in value]
        return value
