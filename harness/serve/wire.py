"""OpenAI's wire shapes that every route of ``harness serve`` shares: reading a body, error bodies and token counts.

:func:`read_body` reads a request's bytes the way a strict server does: at most :data:`MAX_DEPTH`
levels of arrays and objects (counted on the bytes, before the parser could recurse), strict JSON (no
``NaN``, no number that overflows to infinity, no lone surrogate), one object. Whatever it refuses is
an :class:`InvalidRequest`, which :func:`refusal` turns into OpenAI's error answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from .local_model import RequestError

#: Deepest nesting of arrays and objects a body may have (a strict response schema of OpenAI's ten levels fits).
MAX_DEPTH = 64
#: Largest JSON body a route reads (a bigger one is a 413).
MAX_BODY_BYTES = 32 * 2**20
#: Bodies larger than this are read, checked and (by the embedded graders) answered off the event loop (an embedded
#: grader reads about 0.4 MB of text a second: 64 KB holds the loop some 0.15 s; a grading request is a few KB).
OFF_LOOP_BYTES = 64 * 2**10


class InvalidRequest(RequestError):
    """A request OpenAI would refuse: the status, message, parameter and code of its error body."""

    def __init__(self, message: str, param: str | None = None, code: str | None = None, *, status: int = 400) -> None:
        super().__init__(message)
        self.param, self.code, self.status = param, code, status


def error_body(message: str, kind: str = "invalid_request_error", code: str | None = None, *,
               param: str | None = None) -> dict[str, Any]:
    """OpenAI's error shape: ``{"error": {"message", "type", "param", "code"}}``."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def error_response(status: int, message: str, kind: str = "invalid_request_error", code: str | None = None, *,
                   param: str | None = None) -> Any:
    """An error answer in OpenAI's JSON shape."""
    from aiohttp import web

    return web.json_response(error_body(message, kind, code, param=param), status=status)


def refused(exc: RequestError) -> tuple[int, dict[str, Any]]:
    """The status and error body of a refused request (a local model's own refusals name no parameter)."""
    if isinstance(exc, InvalidRequest):
        return exc.status, error_body(str(exc), code=exc.code, param=exc.param)
    return 400, error_body(str(exc))


def refusal(exc: RequestError) -> Any:
    """The error answer to a refused request."""
    from aiohttp import web

    status, body = refused(exc)
    return web.json_response(body, status=status)


def too_large(limit: int) -> InvalidRequest:
    """OpenAI's 413, for a body over ``limit`` bytes."""
    return InvalidRequest(f"The request body is too large: at most {limit:,} bytes are read.", None,
                          "request_too_large", status=413)


async def read_bytes(request: Any, limit: int = MAX_BODY_BYTES) -> bytes:
    """A request's body, at most ``limit`` bytes (:func:`too_large` past it, read no further)."""
    if request.content_length is not None and request.content_length > limit:
        raise too_large(limit)
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(2**16):
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


# A JSON string (its closing quote optional, so an unclosed one ends the scan rather than restarting it), possessive:
# one linear pass whatever the bytes.
_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"?', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_SURROGATE_HINT = re.compile(rb"\\u[dD][89a-fA-F]")  # a surrogate can only come from an escape in UTF-8


def depth_of(raw: bytes) -> int:
    """The deepest nesting of arrays and objects in a JSON text, counted on its bytes (no parsing, no recursion).

    >>> depth_of(b'{"a": [1, {"b": "]]]"}]}')
    3
    """
    import numpy as np

    skeleton = _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    depth = deepest = 0
    for start in range(0, len(skeleton), 2**20):
        chunk = np.frombuffer(skeleton[start:start + 2**20], dtype=np.uint8)
        running = depth + np.cumsum(np.where((chunk == ord("[")) | (chunk == ord("{")), 1, -1), dtype=np.int64)
        deepest, depth = max(deepest, int(running.max())), int(running[-1])
    return deepest


def _not_json(word: str) -> Any:
    raise ValueError(f"{word} is not a JSON number")


def _finite(digits: str) -> float:
    value = float(digits)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"{digits[:20]} overflows to infinity")
    return value


_DECODER = json.JSONDecoder(parse_constant=_not_json, parse_float=_finite)


def read_body(raw: bytes) -> dict[str, Any]:
    """A request's JSON object, read strictly (see the module docstring); anything else is an
    :class:`InvalidRequest`."""
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and (depth := depth_of(raw)) > MAX_DEPTH:  # few brackets: shallow
        raise InvalidRequest(f"The request body is nested too deeply: {depth:,} levels of arrays and objects; at most "
                             f"{MAX_DEPTH} are read.", None, "nested_too_deeply")
    try:
        body = _DECODER.decode(raw.decode("utf-8"))
        if _SURROGATE_HINT.search(raw):
            for text in _strings(body):
                text.encode("utf-8")
    except (ValueError, RecursionError) as exc:  # UnicodeError and JSONDecodeError are ValueErrors
        reason = ("not UTF-8" if isinstance(exc, UnicodeDecodeError) else "a string holds a lone surrogate"
                  if isinstance(exc, UnicodeEncodeError) else str(exc))
        raise InvalidRequest(f"We could not parse the JSON body of your request ({reason}). The body must be one "
                             "JSON object in UTF-8.") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    return body


def _strings(value: Any) -> Iterator[str]:
    """Every string of a parsed body, keys included (iteratively: no recursion)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())


def count_tokens(text: str) -> int:
    """Tokens of a text as the embedded endpoint reports them (one per four characters, at least one)."""
    return max(1, len(text) // 4)
