"""The client's structured-output request: the template set's verdict schema by default, and an endpoint that refuses
json_schema graded with json_object after a handful of refusals, never one per item (real servers on 127.0.0.1)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from harness.cli.app import app
from tests.helpers import SAMPLE, stats


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


def test_an_endpoint_that_refuses_json_schema_is_graded_with_json_object(cli: CliRunner, make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server = make_server(refuse_json_schema=True)
    data = _pairs(tmp_path, 20)
    args = ["grade", str(data), "--base-url", server.base_url, "-o", str(tmp_path / "r"), "--quiet", "--concurrency", "16",
            "--cache-dir", str(tmp_path / "c"), "--json"]
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
