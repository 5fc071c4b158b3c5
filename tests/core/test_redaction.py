"""Secrets never stored or printed: an API key echoed by an endpoint, or given by the user, reaches no file, log or
report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from harness.cli.app import app
from harness.io.pairs import load_pairs, write_pairs
from harness.io.runs import read_labels
from tests.helpers import (
    SAMPLE,
    SECRET_KEY,
    assert_no_traceback,
    completion_body,
)


def test_secrets_echoed_by_the_endpoint_are_redacted(cli: CliRunner, scripted, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from aiohttp import web

    calls = {"n": 0}

    def echo(body: dict[str, Any]) -> web.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            return web.json_response({"error": {"message": f"bad request for key {SECRET_KEY}"}}, status=400)
        return web.Response(
            body=completion_body(f"I refuse; your key is {SECRET_KEY}"), content_type="application/json"
        )

    server = scripted(echo)
    data = write_pairs(
        pd.DataFrame([{"id": "a", "prompt": "first"}, {"id": "b", "prompt": "second"}]), tmp_path / "d.jsonl"
    )
    result = cli.invoke(
        app,
        [
            "grade",
            str(data),
            "--target",
            "prompt",
            "--base-url",
            server.base_url,
            "--api-key",
            SECRET_KEY,
            "--out",
            str(tmp_path / "run"),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--concurrency",
            "1",
        ],
    )
    assert SECRET_KEY not in result.output
    records = read_labels(tmp_path / "run")
    assert {r["status"] for r in records} == {"failed", "refused"} or {r["status"] for r in records} == {
        "failed",
        "unparsed",
    }
    for path in [*(tmp_path / "run").rglob("*"), *(tmp_path / "cache").rglob("*")]:
        if path.is_file():
            assert SECRET_KEY.encode() not in path.read_bytes(), path
    assert any("[redacted]" in (r.get("error") or "") + (r.get("completion") or "") for r in records)

    unauthorised = scripted(
        lambda body: web.json_response({"error": {"message": f"invalid key {SECRET_KEY}"}}, status=401)
    )
    result = cli.invoke(
        app,
        [
            "grade",
            str(data),
            "--base-url",
            unauthorised.base_url,
            "--api-key",
            SECRET_KEY,
            "--out",
            str(tmp_path / "r401"),
        ],
    )
    assert_no_traceback(result)
    assert result.exit_code == 1 and "401" in result.output and SECRET_KEY not in result.output
    assert SECRET_KEY not in (tmp_path / "r401" / "manifest.json").read_text()


@pytest.mark.slow
def test_api_key_reaches_no_file_log_or_report(
    cli: CliRunner, make_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    secret = "sk-test-SECRET-9f8e7d6c5b4a"
    handle = make_server(api_key=secret, fail_rate=0.2, fail_modes=("429", "500", "garbage"), seed=2, retry_after_s=0)
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    data = write_pairs(load_pairs(SAMPLE), tmp_path / "pairs.jsonl")
    run, cache = tmp_path / "run", tmp_path / "cache"
    outputs = []
    for args in (["grade", str(data), "--base-url", handle.base_url, "--out", str(run), "--cache-dir", str(cache),
                  "--target", "all"],
                 ["grade", str(data), "--base-url", handle.base_url, "--out", str(run), "--cache-dir", str(cache),
                  "--retry", "unparsed,failed"],
                 ["calibrate", str(run), "--human", str(data), "--n-boot", "50"],
                 ["analyze", str(run), "--by", "model", "--n-boot", "50"],
                 ["report", str(run)]):
        result = cli.invoke(app, args)
        assert result.exit_code == 0, (args, result.output)
        outputs.append(result.output)
    # a wrong key: the error message must not echo either key
    wrong = cli.invoke(app, ["grade", str(data), "--base-url", handle.base_url, "--out", str(tmp_path / "w"),
                                "--api-key", "sk-test-WRONG-123456"])
    assert wrong.exit_code == 1 and "401" in wrong.output
    outputs.append(wrong.output)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.suffix == ".html" for p in files) and any(p.parent.name == "cache" for p in files)
    for path in files:
        body = path.read_bytes()
        assert secret.encode() not in body and b"sk-test-WRONG" not in body, path
    for text in outputs:
        assert secret not in text and "sk-test-WRONG" not in text
