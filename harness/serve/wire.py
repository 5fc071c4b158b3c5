"""OpenAI's wire shapes that every route of ``harness serve`` shares: error bodies and token counts."""

from __future__ import annotations

from typing import Any


def error_response(status: int, message: str, kind: str = "invalid_request_error", code: str | None = None) -> Any:
    """An error answer in OpenAI's JSON shape (``{"error": {"message", "type", "param", "code"}}``)."""
    from aiohttp import web

    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return web.json_response(body, status=status)


def count_tokens(text: str) -> int:
    """Tokens of a text as the embedded endpoint reports them (one per four characters, at least one)."""
    return max(1, len(text) // 4)
