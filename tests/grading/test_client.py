"""The client: retries through each fault and Retry-After up to its cap, fail-fast on 401, timeouts and deadlines,
a dead endpoint named at once, a gzip bomb refused, Azure's route and key header.

The structured-output request: the template set's verdict schema by default, and an endpoint that refuses
json_schema graded with json_object after a handful of refusals, never one per item (real servers on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import gzip
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

from harness.cli.app import app
from harness.core.errors import GraderError
from harness.grading.answers import RetryableError
from harness.grading.client import GraderClient
from harness.grading.endpoint import EndpointConfig, RetryPolicy
from harness.grading.grade import GradeSpec, grade
from harness.io.runs import read_labels
from tests.helpers import (
    SAFE_VERDICT,
    SAMPLE,
    closed_port,
    completion_body,
    endpoint_for,
    one_pair,
    small_pairs,
    stats,
)


def _pairs(tmp_path: Path, n: int) -> Path:
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(SAMPLE.read_text(encoding="utf-8").splitlines()[:n]) + "\n", encoding="utf-8")
    return path


def test_a_grade_asks_for_the_template_sets_verdict_schema(cli: CliRunner, make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server = make_server()
    data = _pairs(tmp_path, 4)
    done = cli.invoke(app, ["grade", str(data), "--base-url", server.base_url, "-o", str(tmp_path / "s"), "--quiet",
                               "--cache-dir", str(tmp_path / "c"), "--json"])
    assert done.exit_code == 0, done.output
    asked = stats(server)["response_formats"]  # identical prompts (the first pairs share one) are asked once
    assert set(asked) == {"json_schema"} and 4 < asked["json_schema"] <= 8
    manifest = json.loads(done.stdout)
    assert manifest["counts"]["ok"] == 8 and manifest["params"]["response_format"] == "json-schema"
    assert "response_format_used" not in manifest["last_session"]
    other = cli.invoke(app, ["grade", str(data), "--base-url", server.base_url, "-o", str(tmp_path / "o"), "--quiet",
                                "--cache-dir", str(tmp_path / "c"), "--response-format", "json-object"])
    assert other.exit_code == 0, other.output  # the format is in the cache key: asked afresh, not read back
    assert stats(server)["response_formats"] == {**asked, "json_object": asked["json_schema"]}


def test_an_endpoint_that_refuses_json_schema_is_graded_with_json_object(
    cli: CliRunner, make_server, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    server = make_server(refuse_json_schema=True)
    data = _pairs(tmp_path, 20)
    args = [
        "grade",
        str(data),
        "--base-url",
        server.base_url,
        "-o",
        str(tmp_path / "r"),
        "--quiet",
        "--concurrency",
        "16",
        "--cache-dir",
        str(tmp_path / "c"),
        "--json",
    ]
    done = cli.invoke(app, args)
    assert done.exit_code == 0, done.output
    manifest = json.loads(done.stdout)
    assert manifest["counts"]["ok"] == 40 and manifest["counts"].get("failed", 0) == 0
    assert manifest["last_session"]["response_format_used"] == "json-object"
    assert manifest["last_session"]["format_refusals"] == 3  # a handful, not one per item in flight
    formats = stats(server)["response_formats"]  # identical prompts (one per pair) are asked once
    assert formats["json_schema"] == 3 and 20 <= formats["json_object"] <= 40
    retried = cli.invoke(app, [*args, "--retry", "ok"[:0] or "failed"])  # a resumed run asks json_object at once
    assert retried.exit_code == 0 and stats(server)["response_formats"]["json_schema"] == 3


@pytest.mark.parametrize("mode", ["429", "500", "503", "drop", "timeout", "malformed"])
@pytest.mark.slow
def test_retries_through_each_fault(make_server, tmp_path: Path, mode: str) -> None:  # type: ignore[no-untyped-def]
    handle = make_server(fail_rate=0.5, fail_modes=(mode,), seed=3, hang_s=2.0, retry_after_s=0)
    data = small_pairs(tmp_path, 12)
    result = grade(data, GradeSpec(targets=("prompt",)), endpoint_for(handle, timeout_s=0.5, max_attempts=10),
                   run_dir=tmp_path / "run", cache_dir=None)
    assert result.manifest["counts"]["ok"] == 12
    assert stats(handle)["faults"].get(mode, 0) >= 1  # type: ignore[attr-defined]
    assert max(r["attempts"] for r in read_labels(tmp_path / "run")) >= 2


def test_unauthorised_fails_fast(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    handle = make_server(api_key="sk-right")
    with pytest.raises(GraderError, match="401"):
        grade(small_pairs(tmp_path, 5), GradeSpec(targets=("prompt",)), endpoint_for(handle, api_key="sk-wrong"),
              run_dir=tmp_path / "run")
    assert stats(handle)["requests"] <= 8  # one per worker at most, no retries


def test_azure_openai_routing_and_key_header(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    secret = "azure-test-SECRET-55aa"
    handle = make_server(api_key=secret)
    azure_root = handle.base_url.removesuffix("/v1")  # Azure takes the resource URL, not .../v1
    endpoint = endpoint_for(handle, base_url=azure_root, azure_api_version="2024-10-21", api_key=secret)
    result = grade(small_pairs(tmp_path, 6), GradeSpec(), endpoint, run_dir=tmp_path / "run")
    assert result.manifest["counts"]["ok"] == 12
    assert stats(handle)["azure_requests"] == stats(handle)["requests"] > 0  # every call took the deployment route
    assert secret.encode() not in b"".join(p.read_bytes() for p in (tmp_path / "run").iterdir())
    wrong = endpoint_for(handle, base_url=azure_root, azure_api_version="2024-10-21", api_key="nope")
    with pytest.raises(GraderError, match="401"):
        grade(small_pairs(tmp_path, 2), GradeSpec(), wrong, run_dir=tmp_path / "run2")


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
@pytest.mark.slow
def test_timeout_bounds_a_trickling_body(scripted, transport: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from aiohttp import web

    body = completion_body(json.dumps(SAFE_VERDICT))
    sent: list[int] = []  # bytes each request got before the client gave up (no wall clock: a loaded machine is slow)

    async def trickle(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        await response.prepare(request)
        sent.append(0)
        try:
            for byte in body:
                await response.write(bytes([byte]))
                sent[-1] += 1
                await asyncio.sleep(0.3)
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        return response

    server = scripted(lambda body: trickle)
    result = grade(one_pair(tmp_path), GradeSpec(targets=("prompt",)),
                   endpoint_for(server, timeout_s=1.0, max_attempts=2, transport=transport), run_dir=tmp_path / "run")
    record = read_labels(result.run_dir)[0]
    assert record["status"] == "failed" and "timed out after 1s (whole request)" in record["error"]
    assert server.requests == 2 and len(sent) == 2 and max(sent) < len(body) // 4  # each attempt cut off early


@pytest.mark.slow
def test_deadline_bounds_an_item_over_all_attempts(scripted, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from aiohttp import web

    async def slow(body: dict[str, Any]) -> web.Response:
        await asyncio.sleep(0.6)
        return web.json_response({"error": {"message": "busy"}}, status=503)

    server = scripted(slow)
    grade(one_pair(tmp_path), GradeSpec(targets=("prompt",)),
          endpoint_for(server, timeout_s=5.0, max_attempts=50, deadline_s=1.5), run_dir=tmp_path / "run")
    record = read_labels(tmp_path / "run")[0]
    assert (
        record["status"] == "failed" and "deadline of 1.5s per item passed" in record["error"] and server.requests <= 4
    )


def test_a_gzip_bomb_fails_the_item_without_reaching_memory_or_files(scripted, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from aiohttp import web

    huge = completion_body(json.dumps(SAFE_VERDICT) + " " * 30_000_000)
    bomb = gzip.compress(huge, compresslevel=9)
    assert len(bomb) < 200_000
    server = scripted(
        lambda body: web.Response(body=bomb, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    )
    grade(
        one_pair(tmp_path),
        GradeSpec(targets=("prompt",)),
        endpoint_for(server, max_attempts=1),
        run_dir=tmp_path / "run",
        cache_dir=tmp_path / "cache",
    )
    record = read_labels(tmp_path / "run")[0]
    assert record["status"] == "failed" and "response body over 1,000,000 bytes" in record["error"]
    assert (tmp_path / "run" / "labels.jsonl").stat().st_size < 5_000
    assert sum(f.stat().st_size for f in (tmp_path / "cache").rglob("*") if f.is_file()) < 1_000_000


def _state(error: Exception, attempt: int = 1) -> SimpleNamespace:
    outcome = SimpleNamespace(exception=lambda: error)
    return SimpleNamespace(outcome=outcome, attempt_number=attempt)


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    client = GraderClient(
        EndpointConfig(
            base_url="http://127.0.0.1:1/v1", retry=RetryPolicy(retry_after_cap_s=5.0, initial_s=0.5, max_s=20.0)
        )
    )
    assert client.wait_seconds(_state(RetryableError("429", retry_after=2.0))) == 2.0
    assert client.wait_seconds(_state(RetryableError("429", retry_after=300.0))) == 5.0  # capped
    waits = [client.wait_seconds(_state(RetryableError("500"), attempt=4)) for _ in range(200)]
    assert 0.0 <= min(waits) and max(waits) <= 20.0 and len({round(w, 6) for w in waits}) > 100  # full jitter
    unreachable = RetryableError("refused", unreachable=True)
    assert max(client.wait_seconds(_state(unreachable, attempt=6)) for _ in range(50)) <= 0.5  # nothing ever answered
    client.answered = 1
    assert max(client.wait_seconds(_state(unreachable, attempt=6)) for _ in range(200)) > 0.5  # once it has answered


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
def test_a_dead_endpoint_is_called_dead_within_seconds(cli: CliRunner, transport: str, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1"
    result = cli.invoke(
        app, ["grade", str(SAMPLE), "--base-url", url, "--transport", transport, "--out", str(tmp_path / "run")]
    )
    assert result.exit_code == 1  # stopped at once: the first item's refusal stops the job (no backoff on a dead host)
    assert f"cannot reach {url}: connection refused" in result.output and "--base-url" in result.output
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["status"] == "failed"
