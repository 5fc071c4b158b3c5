"""``harness serve`` refuses a bad flag or ``--fit`` table with exit 2 naming it, before anything listens."""

from __future__ import annotations

import inspect
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli.app import app
from harness.cli.grading_commands import serve
from harness.serve.config import ServeConfig


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


@pytest.mark.parametrize(("content", "said"), [
    (None, "no such file"),
    ("hello\n", "line 1: malformed JSON"),
    ('{"id": "a", "prompt": "hi"}\n', "no prompt or response text with all four labels known"),
])
def test_a_fit_table_the_graders_cannot_learn_from_is_exit_2_before_listening(cli: CliRunner, tmp_path: Path, content: str | None,
                                                                              said: str) -> None:
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
