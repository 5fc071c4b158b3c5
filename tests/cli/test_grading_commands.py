"""The grading commands as a user meets them: ``grade`` says its defaults, where non-verdicts came from, failed items
by reason, and never writes a secret; bad flags are exit 2 naming them; ``harness serve`` refuses a bad flag or
``--fit`` table with exit 2 naming it, before anything listens."""

from __future__ import annotations

import inspect
import json
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli.app import app
from harness.cli.grading_commands import serve
from harness.io.pairs import load_pairs, write_pairs
from harness.serve.config import ServeConfig
from tests.helpers import SAMPLE, closed_port, stats


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(("flags", "said"), [
    (["--port", "70000"], "--port 70000: expected a port number from 1 to 65535"),
    (["--port", "-1"], "--port -1: expected a port number from 1 to 65535"),
    (["--port", "0"], "--port 0: expected a port number from 1 to 65535"),
    (["--latency-ms", "nan"], "--latency-ms nan: expected a number from 0 to 3,600,000"),
    (["--latency-ms", "inf"], "--latency-ms inf: expected a number from 0 to 3,600,000"),
    (["--hang-s", "-1"], "--hang-s -1.0: expected a number from 0 to 3,600"),
    (["--fail-rate", "1.5"], "--fail-rate 1.5: expected a number from 0 to 1"),
    (["--seed", "-3"], "--seed -3: expected a whole number from 0 to 4,294,967,295"),
    (["--fail-modes", "429,bogus"], "--fail-modes: unknown mode 'bogus'"),
    (["--host", "999.999.1.1"], "--host '999.999.1.1': cannot listen on 999.999.1.1"),
])
def test_a_bad_serve_flag_is_exit_2_naming_it(cli: CliRunner, flags: list[str], said: str) -> None:
    result = cli.invoke(app, ["serve", *flags] + ([] if "--port" in flags else ["--port", str(_free_port())]))
    assert result.exit_code == 2, result.output
    assert said in result.output and "Traceback" not in result.output
    assert "harness serve: http://" not in result.output  # never listened


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (None, "no such file"),
        ("hello\n", "line 1: malformed JSON"),
        ('{"id": "a", "prompt": "hi"}\n', "no prompt or response text with all four labels known"),
    ],
)
def test_a_fit_table_the_graders_cannot_learn_from_is_exit_2_before_listening(
    cli: CliRunner, tmp_path: Path, content: str | None, said: str
) -> None:
    table = tmp_path / "fit.jsonl"
    if content is not None:
        table.write_text(content)
    port = _free_port()
    result = cli.invoke(app, ["serve", "--fit", str(table), "--port", str(port)])
    assert result.exit_code == 2, result.output
    assert f"--fit {table}" in result.output and said in result.output and "Traceback" not in result.output
    assert "harness serve: http://" not in result.output
    with socket.socket() as sock:  # the port was never taken
        sock.bind(("127.0.0.1", port))


def test_serve_flag_defaults_are_the_library_defaults() -> None:
    """The flags and ``ServeConfig`` declare each default once each: they must agree."""
    flags = {name: parameter.default for name, parameter in inspect.signature(serve).parameters.items()}
    config = ServeConfig()
    for name in ("latency_ms", "fail_rate", "seed", "hang_s", "gullible", "batch_fault", "answer_as", "api_key"):
        assert flags[name] == getattr(config, name), name
    assert flags["no_prefix_reuse"] is not config.prefix_reuse


def small_pairs(tmp_path: Path, n: int = 20) -> Path:
    frame = load_pairs(SAMPLE).head(n)
    return write_pairs(frame, tmp_path / "small.jsonl")


def test_cli_grade_and_secret_never_written(
    cli: CliRunner, make_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    secret = "sk-test-SECRET-0123456789"
    handle = make_server(api_key=secret)
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    data = small_pairs(tmp_path, 8)
    result = cli.invoke(app, ["grade", str(data), "--base-url", handle.base_url, "--out", str(tmp_path / "run"),
                                 "--cache-dir", str(tmp_path / "cache"), "-q"])
    assert result.exit_code == 0, result.output
    assert "graded now 16 items" in result.output.replace("\n", " ")
    for path in [*tmp_path.rglob("*")]:
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    assert secret not in result.output


def test_cli_says_when_non_verdicts_came_from_the_cache_and_how_to_ask_again(
    cli: CliRunner, make_server, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    handle = make_server(fail_rate=1.0, fail_modes=("garbage",))
    data = write_pairs(load_pairs(SAMPLE).drop_duplicates("prompt").head(3), tmp_path / "d.jsonl")
    args = [
        "grade",
        str(data),
        "--base-url",
        handle.base_url,
        "--target",
        "prompt",
        "--cache-dir",
        str(tmp_path / "cache"),
        "-q",
    ]
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
    data = small_pairs(tmp_path, 2)
    for args, message in (
        (["--concurrency", "0"], "--concurrency 0"),
        (["--target", "title"], "--target"),
        (["--base-url", "ftp://x"], "--base-url"),
        (["--shots", "nope.jsonl"], "shot file not found"),
    ):
        result = cli.invoke(app, ["grade", str(data), "--out", str(tmp_path / "r"), *args])
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output


def test_defaults_are_said_before_grading(cli: CliRunner, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1"
    result = cli.invoke(app, ["grade", str(SAMPLE), "--out", str(tmp_path / "run")], env={"OPENAI_BASE_URL": url})
    first = result.output.splitlines()[0]
    assert first.startswith("grading with model harness-baseline (default) at " + url + " (environment)")
    assert "pass --model and --base-url for a real one" in first


def test_failed_items_exit_3_with_grouped_reasons(cli: CliRunner, make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    handle = make_server(fail_rate=0.5, fail_modes=("500",), seed=2)
    data = write_pairs(load_pairs(SAMPLE).head(20), tmp_path / "d.jsonl")
    args = ["grade", str(data), "--base-url", handle.base_url, "--max-attempts", "1", "--target", "prompt"]
    result = cli.invoke(app, [*args, "--out", str(tmp_path / "run")], env={"COLUMNS": "120"})
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    failed = manifest["counts"]["failed"]
    assert 0 < failed < 20 and result.exit_code == 3
    assert f"{failed} failed" in result.output and f"{failed:>6}  500: The server had an error" in result.output
    assert f"error: {failed} of 20 items failed" in result.output and "--retry failed" in result.output
    assert manifest["reasons"]["failed"] == {"500: The server had an error while processing your request.": failed}
    allowed = cli.invoke(app, [*args, "--out", str(tmp_path / "run2"), "--allow-failed", "--json"])
    assert allowed.exit_code == 0
