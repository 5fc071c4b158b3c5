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
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from .local_model import RequestError
from .wire import error_response

BATCH_FAULTS = ("fail_validation", "expire", "error_lines", "slow", "bad_lines")


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

    async def answer(self, body: dict[str, Any], raw: bytes, fault: str | None = None) -> dict[str, Any]: ...


def _new_id(prefix: str, store: BatchStore, payload: bytes) -> str:
    return f"{prefix}-" + hashlib.sha256(payload + str(len(store.files) + len(store.batches)).encode()).hexdigest()[:20]


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
        from aiohttp import BodyPartReader, web

        denied = self.host.check_auth(request)
        if denied is not None:
            return denied
        reader = await request.multipart()
        data, name, purpose = b"", "upload.jsonl", "batch"
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                continue
            if part.name == "file":
                name = part.filename or name
                data = bytes(await part.read())
            elif part.name == "purpose":
                purpose = await part.text()
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
        body = await request.json()
        input_id = body.get("input_file_id")
        if input_id not in store.contents:
            return error_response(400, f"input_file_id {input_id!r} does not exist")
        batch_id = _new_id("batch", store, input_id.encode())
        batch = {"id": batch_id, "object": "batch", "endpoint": body.get("endpoint", "/v1/chat/completions"),
                 "input_file_id": input_id, "completion_window": body.get("completion_window", "24h"), "status": "validating",
                 "created_at": int(time.time()), "output_file_id": None, "error_file_id": None, "errors": None,
                 "request_counts": {"total": 0, "completed": 0, "failed": 0}, "metadata": body.get("metadata")}
        store.batches[batch_id] = batch
        store.batches_created += 1
        task = asyncio.get_running_loop().create_task(self.run(batch))
        store.tasks.add(task)
        task.add_done_callback(store.tasks.discard)
        return web.json_response(batch)

    async def run(self, batch: dict[str, Any]) -> None:
        """Answer a batch's lines in the background, then write its output and error files."""
        fault = self.host.batch_fault
        await asyncio.sleep(0.05)
        lines = [line for line in self.store.contents[batch["input_file_id"]].decode().splitlines() if line.strip()]
        batch["request_counts"]["total"] = len(lines)
        if fault == "fail_validation":
            batch["status"] = "failed"
            batch["errors"] = {"object": "list", "data": [{"code": "invalid_request", "message": "injected: the batch failed validation",
                                                          "line": 1, "param": None}]}
            return
        batch["status"] = "in_progress"
        out, errors = await self._answer_lines(batch, lines, fault)
        batch["status"] = "finalizing"
        if out:
            text = [json.dumps(o) for o in out]
            if fault == "bad_lines":
                text[0] = '{"custom_id": "garbled'
                text += ["[1, 2]", json.dumps({**out[-1], "custom_id": ["a", "b"]}), json.dumps({**out[-1], "custom_id": "not-a-request"})]
            batch["output_file_id"] = self.store_file("".join(line + "\n" for line in text).encode(), "output.jsonl", "batch_output")["id"]
        if errors:
            batch["error_file_id"] = self.store_file("".join(json.dumps(e) + "\n" for e in errors).encode(), "errors.jsonl", "batch_output")["id"]
        cancelled = batch["status"] == "cancelling"
        batch["status"] = "cancelled" if cancelled else "expired" if fault == "expire" else "completed"

    async def _answer_lines(self, batch: dict[str, Any], lines: list[str], fault: str | None) -> tuple[list[Any], list[Any]]:
        out, errors = [], []
        for number, line in enumerate(lines):
            if batch["status"] == "cancelling":
                break
            if fault == "expire" and number >= len(lines) // 2:
                break
            if fault == "slow":
                await asyncio.sleep(0.2)
            request = json.loads(line)
            custom_id = request["custom_id"]
            if fault == "error_lines" and number % 5 == 1:
                errors.append({"id": f"req-{number}", "custom_id": custom_id, "response": {"status_code": 500, "request_id": f"r{number}",
                               "body": {"error": {"message": "injected: the line failed", "type": "server_error"}}}, "error": None})
                batch["request_counts"]["failed"] += 1
                continue
            await self.host.ready_for_requests()
            try:
                payload = await self.host.answer(request["body"], line.encode())
            except RequestError as exc:  # a local model's refusal of the request as asked
                errors.append({"id": f"req-{number}", "custom_id": custom_id, "response": {"status_code": 400, "request_id": f"r{number}",
                               "body": {"error": {"message": str(exc), "type": "invalid_request_error"}}}, "error": None})
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
        return web.json_response({"object": "list", "data": data, "has_more": False,
                                  "first_id": data[0]["id"] if data else None, "last_id": data[-1]["id"] if data else None})

    async def cancel_batch(self, request: Any) -> Any:
        from aiohttp import web

        batch_id = request.match_info["batch_id"]
        if batch_id not in self.store.batches:
            return error_response(404, f"No such Batch object: {batch_id}")
        batch = self.store.batches[batch_id]
        if batch["status"] in ("validating", "in_progress"):
            batch["status"] = "cancelling"
        return web.json_response(batch)
