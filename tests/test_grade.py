"""Grading end to end over real HTTP against harness serve."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli.app import app
from harness.io.pairs import load_pairs, write_pairs
from tests.helpers import SAMPLE, stats


def _small(tmp_path: Path, n: int = 20) -> Path:
    frame = load_pairs(SAMPLE).head(n)
    return write_pairs(frame, tmp_path / "small.jsonl")


def test_cli_grade_and_secret_never_written(cli: CliRunner, make_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    secret = "sk-test-SECRET-0123456789"
    handle = make_server(api_key=secret)
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    data = _small(tmp_path, 8)
    result = cli.invoke(app, ["grade", str(data), "--base-url", handle.base_url, "--out", str(tmp_path / "run"),
                                 "--cache-dir", str(tmp_path / "cache"), "-q"])
    assert result.exit_code == 0, result.output
    assert "graded now 16 items" in result.output.replace("\n", " ")
    for path in [*tmp_path.rglob("*")]:
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    assert secret not in result.output


def test_cli_says_when_non_verdicts_came_from_the_cache_and_how_to_ask_again(cli: CliRunner, make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    handle = make_server(fail_rate=1.0, fail_modes=("garbage",))
    data = write_pairs(load_pairs(SAMPLE).drop_duplicates("prompt").head(3), tmp_path / "d.jsonl")
    args = ["grade", str(data), "--base-url", handle.base_url, "--target", "prompt", "--cache-dir", str(tmp_path / "cache"), "-q"]
    first = cli.invoke(app, [*args, "--out", str(tmp_path / "run")], env={"COLUMNS": "200"})
    assert first.exit_code == 0, first.output
    assert "not asked afresh" not in first.output and "tokens sent to a local endpoint" in first.output
    second = cli.invoke(app, [*args, "--out", str(tmp_path / "run2")], env={"COLUMNS": "200"})
    assert second.exit_code == 0, second.output
    assert "0 requests, 3 cache hits" in second.output
    assert ("3 unparsed or refused answers were not asked afresh (read from the cache, or shared with an identical "
            "request of this run); --retry unparsed,refused forgets them and asks again") in second.output
    sent = stats(handle)["requests"]
    again = cli.invoke(app, [*args, "--out", str(tmp_path / "run2"), "--retry", "unparsed"], env={"COLUMNS": "200"})
    assert again.exit_code == 0, again.output
    assert stats(handle)["requests"] == sent + 3 and "not asked afresh" not in again.output
    assert not (tmp_path / "run2" / ".lock").exists()  # a finished folder keeps no lock file


def test_cli_bad_flags_exit_2(cli: CliRunner, tmp_path: Path) -> None:
    data = _small(tmp_path, 2)
    for args, message in ((["--concurrency", "0"], "--concurrency 0"), (["--target", "title"], "--target"),
                          (["--base-url", "ftp://x"], "--base-url"), (["--shots", "nope.jsonl"], "shot file not found")):
        result = cli.invoke(app, ["grade", str(data), "--out", str(tmp_path / "r"), *args])
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output
