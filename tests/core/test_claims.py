"""The writers' one rule: a file where a folder is expected is refused, naming the flag, with nothing written."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from harness.cli.app import app
from tests.helpers import assert_no_traceback, one_pair


def test_a_file_where_a_folder_is_expected(cli: CliRunner, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    data = one_pair(tmp_path)
    for run_dir in (blocker, blocker / "below"):
        result = cli.invoke(app, ["grade", str(data), "--base-url", server.base_url, "--out", str(run_dir)])
        assert_no_traceback(result)
        assert result.exit_code == 2 and "is a file, so nothing can be written below it" in result.output
    assert (
        cli.invoke(app, ["grade", str(data), "--base-url", server.base_url, "--out", str(tmp_path / "run")]).exit_code
        == 0
    )
    result = cli.invoke(app, ["report", str(tmp_path / "run"), "-o", str(blocker / "out")])
    assert_no_traceback(result)
    assert (
        result.exit_code == 2 and "--out" in result.output and "is a file, so nothing can be written" in result.output
    )
