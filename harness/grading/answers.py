"""What an endpoint's answer means: a completion's fields, a status code's verdict, a failure's cause.

The client (:mod:`harness.grading.client`) sends; this module only reads what came back (or
why nothing did), so the synchronous path and the Batch API path judge answers the same way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass
class Reply:
    """What one request came to: a completion, or an error after ``attempts`` tries."""

    completion: dict[str, Any] | None
    error: str | None
    attempts: int
    latency_ms: float
    cached: bool
    request_hash: str


def api_message(exc: Any) -> str:
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


class RetryableError(Exception):
    """A failure worth another attempt (429, 5xx, a timeout, an unreadable body)."""

    def __init__(
        self, message: str, retry_after: float | None = None, rate_limited: bool = False, unreachable: bool = False
    ):
        super().__init__(message)
        self.retry_after = retry_after
        self.rate_limited = rate_limited
        self.unreachable = unreachable


class FatalItemError(Exception):
    """An answer that fails this item without retrying (400, 422)."""


def retry_after(headers: Any) -> float | None:
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


def _digit_logprobs(logprobs: Any) -> dict[str, Any] | None:
    """What we keep of ``choices[0].logprobs``: every token's text (to find a digit's place in the
    content) and, for tokens that are a digit, the alternatives that are digits too."""
    if not isinstance(logprobs, dict) or not isinstance(logprobs.get("content"), list):
        return None
    texts: list[str] = []
    digits: dict[str, list[list[Any]]] = {}
    for index, entry in enumerate(logprobs["content"]):
        token = str(entry.get("token", "")) if isinstance(entry, dict) else ""
        texts.append(token)
        if token.strip().isdigit() and isinstance(entry.get("top_logprobs"), list):
            digits[str(index)] = [[str(alt.get("token", "")).strip(), float(alt.get("logprob", -1e9))]
                                  for alt in entry["top_logprobs"] if str(alt.get("token", "")).strip().isdigit()]
    return {"tokens": texts, "digits": digits}


def completion_fields(raw: bytes) -> dict[str, Any]:
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
        extra: dict[str, Any] = {}
        tokens = _digit_logprobs(choice.get("logprobs"))
        if tokens is not None:
            extra["logprobs"] = tokens
        if len(data["choices"]) > 1:  # n > 1: the further samples' texts
            extra["samples"] = [str((c.get("message") or {}).get("content") or "") for c in data["choices"][1:]]
        return {
            "content": content,
            "finish_reason": choice.get("finish_reason"),
            "prompt_tokens": int(usage.get("prompt_tokens") or 0),
            "cached_prompt_tokens": int(details.get("cached_tokens") or 0) if isinstance(details, dict) else 0,
            "completion_tokens": int(usage.get("completion_tokens") or 0),
            "model": data.get("model"),
            **extra,
        }
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        reason = "response without choices" if isinstance(exc, (KeyError, IndexError)) else str(exc)
        raise RetryableError(f"unreadable response body: {reason}") from None
