"""The OpenAI Batch API inside ``harness serve``: files and batches, run in the background.

``POST /v1/files`` (multipart upload), ``GET /v1/files/{id}`` and ``/content``; ``POST
/v1/batches``, ``GET /v1/batches/{id}``, ``GET /v1/batches``, ``POST /v1/batches/{id}/cancel``.
A batch moves validating → in_progress → finalizing → completed, answering each line through
the same graders as ``/v1/chat/completions`` and writing an output and an error file. Seeded
faults (``ServeConfig.batch_fault``) for tests: ``fail_validation``, ``expire`` (half the output,
then expired), ``error_lines`` (every fifth line an error, from the second on), ``slow`` (0.2 s per line),
``bad_lines`` (the first output line garbled, plus a JSON list, a list ``custom_id`` and a line for a
request of no batch).
``/stats`` counts the batches and files created, so a test can prove nothing was resubmitted.

Their parameters are checked as OpenAI checks them (400s in its error shape, naming the parameter):
an upload is multipart with a ``file`` of at most :data:`MAX_FILE_BYTES` and a known ``purpose``; a
batch names an uploaded ``purpose="batch"`` file, the chat endpoint and the 24h window. While a
batch is validating, every line must be a JSON request object (``custom_id`` unique, ``POST`` to the
batch's endpoint, a ``body``), else the batch fails naming the lines; each body then passes the same
rules as the chat route (:mod:`harness.serve.params`), and a refused one is a 400 in the error file.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from .local_model import RequestError
from .params import choice, fields, integer, metadata, obj, text
from .wire import InvalidRequest, error_body, error_response, read_body, read_bytes, refusal, refused, too_large

BATCH_FAULTS = ("fail_validation", "expire", "error_lines", "slow", "bad_lines")
#: Largest file an upload may carry (OpenAI takes 200 MB batch files; this server keeps its files in memory).
MAX_FILE_BYTES = 64 * 2**20
PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
#: A batch's parameters (a chat-completions batch only: the one endpoint this server answers).
CHECK_BATCH = fields(
    {"input_file_id": text, "endpoint": choice("/v1/chat/completions"), "completion_window": choice("24h")},
    {"metadata": metadata, "output_expires_after": obj},
)
#: One line of a batch's input file.
CHECK_LINE = fields(
    {"custom_id": text, "method": choice("POST"), "url": choice("/v1/chat/completions"), "body": obj}, {}
)


@dataclass
class BatchStore:
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    contents: dict[str, bytes] = field(default_factory=dict)
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    files_created: int = 0
    batches_created: int = 0


class BatchHost(Protocol):
    """What the batch routes need of the server that mounts them (the chat endpoint answers the lines)."""

    batch_store: BatchStore

    @property
    def batch_fault(self) -> str | None: ...

    def check_auth(self, request: Any, *, azure: bool = False) -> Any: ...

    async def ready_for_requests(self) -> None: ...

    def check_request(self, body: dict[str, Any]) -> None: ...

    async def answer(self, body: dict[str, Any], raw: bytes, fault: str | None = None) -> dict[str, Any]: ...


def _new_id(prefix: str, store: BatchStore, payload: bytes) -> str:
    return f"{prefix}-" + hashlib.sha256(payload + str(len(store.files) + len(store.batches)).encode()).hexdigest()[:20]


def _error_line(number: int, custom_id: Any, status: int, body: Any) -> dict[str, Any]:
    """One line of a batch's error file: the request on input line ``number`` answered with an error."""
    response = {"status_code": status, "request_id": f"r{number}", "body": body}
    return {"id": f"req-{number}", "custom_id": custom_id, "response": response, "error": None}


def _file_object(file_id: str, size: int, name: str, purpose: str) -> dict[str, Any]:
    return {"id": file_id, "object": "file", "bytes": size, "created_at": int(time.time()), "filename": name,
            "purpose": purpose, "status": "processed"}


class BatchRoutes:
    """The files and batches routes of one host, and the background work of its batches."""

    def __init__(self, host: BatchHost) -> None:
        self.host = host
        self.store = host.batch_store

    def register(self, app: Any) -> None:
        """Add the routes to an aiohttp application."""
        app.router.add_post("/v1/files", self.upload)
        app.router.add_get("/v1/files/{file_id}", self.get_file)
        app.router.add_get("/v1/files/{file_id}/content", self.file_content)
        app.router.add_post("/v1/batches", self.create_batch)
        app.router.add_get("/v1/batches", self.list_batches)
        app.router.add_get("/v1/batches/{batch_id}", self.get_batch)
        app.router.add_post("/v1/batches/{batch_id}/cancel", self.cancel_batch)

    def store_file(self, data: bytes, name: str, purpose: str) -> dict[str, Any]:
        store = self.store
        file_id = _new_id("file", store, data)
        store.contents[file_id] = data
        store.files[file_id] = _file_object(file_id, len(data), name, purpose)
        store.files_created += 1
        return store.files[file_id]

    async def upload(self, request: Any) -> Any:
        from aiohttp import web

        denied = self.host.check_auth(request)
        if denied is not None:
            return denied
        try:
            data, name, purpose = await _multipart_file(request)
        except RequestError as exc:
            return refusal(exc)
        return web.json_response(self.store_file(data, name, purpose))

    async def get_file(self, request: Any) -> Any:
        from aiohttp import web

        file_id = request.match_info["file_id"]
        if file_id not in self.store.files:
            return error_response(404, f"No such File object: {file_id}")
        return web.json_response(self.store.files[file_id])

    async def file_content(self, request: Any) -> Any:
        from aiohttp import web

        file_id = request.match_info["file_id"]
        if file_id not in self.store.contents:
            return error_response(404, f"No such File object: {file_id}")
        return web.Response(body=self.store.contents[file_id], content_type="application/octet-stream")

    async def create_batch(self, request: Any) -> Any:
        from aiohttp import web

        denied = self.host.check_auth(request)
        if denied is not None:
            return denied
        store = self.store
        try:
            body = read_body(await read_bytes(request))
            CHECK_BATCH(body, "")
            input_id = body["input_file_id"]
            if store.files.get(input_id, {}).get("purpose") != "batch":
                raise InvalidRequest(f"Invalid 'input_file_id': {input_id[:64]!r} is not an uploaded file of purpose "
                                     "'batch'.", "input_file_id", "invalid_value")
        except RequestError as exc:
            return refusal(exc)
        batch_id = _new_id("batch", store, input_id.encode())
        batch = {"id": batch_id, "object": "batch", "endpoint": body["endpoint"], "input_file_id": input_id,
                 "completion_window": body["completion_window"], "status": "validating", "created_at": int(time.time()),
                 "output_file_id": None, "error_file_id": None, "errors": None,
                 "request_counts": {"total": 0, "completed": 0, "failed": 0}, "metadata": body.get("metadata")}
        store.batches[batch_id] = batch
        store.batches_created += 1
        task = asyncio.get_running_loop().create_task(self.run(batch))
        store.tasks.add(task)
        task.add_done_callback(store.tasks.discard)
        return web.json_response(batch)

    async def run(self, batch: dict[str, Any]) -> None:
        """Validate a batch's lines, answer them in the background, then write its output and error files."""
        fault = self.host.batch_fault
        await asyncio.sleep(0.05)
        lines, problems = await asyncio.to_thread(read_lines, self.store.contents[batch["input_file_id"]],
                                                  self.host.check_request)
        batch["request_counts"]["total"] = len(lines)
        if fault == "fail_validation":
            problems = [{"code": "invalid_request", "message": "injected: the batch failed validation", "line": 1,
                         "param": None}]
        if problems:
            batch["status"] = "failed"
            batch["errors"] = {"object": "list", "data": problems}
            return
        batch["status"] = "in_progress"
        out, errors = await self._answer_lines(batch, lines, fault)
        batch["status"] = "finalizing"
        if out:
            text = [json.dumps(o) for o in out]
            if fault == "bad_lines":
                text[0] = '{"custom_id": "garbled'
                listed_id = json.dumps({**out[-1], "custom_id": ["a", "b"]})
                unknown_id = json.dumps({**out[-1], "custom_id": "not-a-request"})
                text += ["[1, 2]", listed_id, unknown_id]
            output = "".join(line + "\n" for line in text).encode()
            batch["output_file_id"] = self.store_file(output, "output.jsonl", "batch_output")["id"]
        if errors:
            error_file = "".join(json.dumps(e) + "\n" for e in errors).encode()
            batch["error_file_id"] = self.store_file(error_file, "errors.jsonl", "batch_output")["id"]
        cancelled = batch["status"] == "cancelling"
        batch["status"] = "cancelled" if cancelled else "expired" if fault == "expire" else "completed"

    async def _answer_lines(
        self, batch: dict[str, Any], lines: list[Line], fault: str | None
    ) -> tuple[list[Any], list[Any]]:
        out, errors = [], []
        for number, line in enumerate(lines):
            if batch["status"] == "cancelling":
                break
            if fault == "expire" and number >= len(lines) // 2:
                break
            if fault == "slow":
                await asyncio.sleep(0.2)
            custom_id = line.request["custom_id"]
            if fault == "error_lines" and number % 5 == 1:
                injected = error_body("injected: the line failed", "server_error")
                errors.append(_error_line(number, custom_id, 500, injected))
                batch["request_counts"]["failed"] += 1
                continue
            try:
                if line.refused is not None:
                    raise line.refused
                await self.host.ready_for_requests()
                payload = await self.host.answer(line.request["body"], line.raw)
            except RequestError as exc:  # refused as the chat route refuses it, or by a local model as asked
                status, body = refused(exc)
                errors.append(_error_line(number, custom_id, status, body))
                batch["request_counts"]["failed"] += 1
                continue
            out.append({"id": f"req-{number}", "custom_id": custom_id,
                        "response": {"status_code": 200, "request_id": f"r{number}", "body": payload}, "error": None})
            batch["request_counts"]["completed"] += 1
            await asyncio.sleep(0)
        return out, errors

    async def get_batch(self, request: Any) -> Any:
        from aiohttp import web

        batch_id = request.match_info["batch_id"]
        if batch_id not in self.store.batches:
            return error_response(404, f"No such Batch object: {batch_id}")
        return web.json_response(self.store.batches[batch_id])

    async def list_batches(self, request: Any) -> Any:
        from aiohttp import web

        data = list(self.store.batches.values())
        try:
            limit = _query_integer(request.query.get("limit"), "limit", 1, 100)
        except RequestError as exc:
            return refusal(exc)
        after = request.query.get("after")
        if after is not None:
            data = data[[b["id"] for b in data].index(after) + 1:] if after in self.store.batches else []
        page = data[: limit or 20]
        return web.json_response({"object": "list", "data": page, "has_more": len(data) > len(page),
                                  "first_id": page[0]["id"] if page else None,
                                  "last_id": page[-1]["id"] if page else None})

    async def cancel_batch(self, request: Any) -> Any:
        from aiohttp import web

        batch_id = request.match_info["batch_id"]
        if batch_id not in self.store.batches:
            return error_response(404, f"No such Batch object: {batch_id}")
        batch = self.store.batches[batch_id]
        if batch["status"] in ("validating", "in_progress"):
            batch["status"] = "cancelling"
        return web.json_response(batch)


@dataclass
class Line:
    """One request of a batch file: the parsed request, its bytes, and why the chat route would refuse its body."""

    request: dict[str, Any]
    raw: bytes
    refused: RequestError | None


#: A failed validation names at most this many lines.
MAX_PROBLEMS = 20


def read_lines(data: bytes, check: Any) -> tuple[list[Line], list[dict[str, Any]]]:
    """A batch file's requests, each body checked by ``check`` (the chat route's rules), and the problems that fail the
    batch's validation: a line that is not a request object (``custom_id`` unique, ``POST`` to the chat endpoint, a
    ``body``), or a file without requests."""
    lines: list[Line] = []
    problems: list[dict[str, Any]] = []
    seen: set[str] = set()
    for number, raw in enumerate(data.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            request = read_body(raw)
            CHECK_LINE(request, "")
            if request["custom_id"] in seen:
                raise InvalidRequest(f"The custom_id {request['custom_id'][:64]!r} is used by an earlier line; each "
                                     "request needs its own.", "custom_id", "duplicate_custom_id")
        except InvalidRequest as exc:
            problems.append({"code": exc.code or "invalid_request", "message": str(exc), "line": number,
                             "param": exc.param})
            continue
        seen.add(request["custom_id"])
        try:
            check(request["body"])
            lines.append(Line(request, raw, None))
        except RequestError as exc:
            lines.append(Line(request, raw, exc))
    if not lines and not problems:
        problems.append({"code": "empty_file", "message": "The batch's input file holds no requests.", "line": None,
                         "param": "input_file_id"})
    return lines, problems[:MAX_PROBLEMS]


def _query_integer(value: str | None, param: str, low: int, high: int) -> int | None:
    """A query parameter's whole number within ``[low, high]`` (None when absent)."""
    if value is None:
        return None
    if re.fullmatch(r"-?[0-9]{1,18}", value) is None:
        raise InvalidRequest(f"Invalid '{param}': expected an integer, but got {value[:20]!r}.", param, "invalid_type")
    number = int(value)
    integer(low, high)(number, param)
    return number


async def _read_part(part: Any, limit: int) -> bytes:
    """A multipart part's bytes, at most ``limit`` (a 413 past it)."""
    chunks, size = [], 0
    while chunk := await part.read_chunk(2**16):
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def _multipart_file(request: Any) -> tuple[bytes, str, str]:
    """An upload's file, its name and its purpose, as OpenAI's files route takes them: multipart/form-data with a
    ``file`` part (at most :data:`MAX_FILE_BYTES`) and a ``purpose`` field of :data:`PURPOSES`."""
    from aiohttp import BodyPartReader

    if not request.content_type.startswith("multipart/"):
        raise InvalidRequest("An upload is multipart/form-data with a 'file' part and a 'purpose' field.", "file",
                             "invalid_content_type")
    data, name, purpose = None, "upload.jsonl", None
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if isinstance(part, BodyPartReader) and part.name == "file":
                name, data = part.filename or name, await _read_part(part, MAX_FILE_BYTES)
            elif isinstance(part, BodyPartReader) and part.name == "purpose":
                purpose = (await _read_part(part, 256)).decode("utf-8", "replace")
    except (ValueError, AssertionError, RuntimeError) as exc:  # what aiohttp raises for a body that is not multipart
        raise InvalidRequest(f"The multipart body could not be read ({exc}).", "file", "invalid_multipart") from None
    if data is None or purpose is None:
        missing = "file" if data is None else "purpose"
        raise InvalidRequest(f"Missing required parameter: '{missing}'.", missing, "missing_required_parameter")
    choice(*PURPOSES)(purpose, "purpose")
    return data, name, purpose
