"""``stability``: a folder without repeats is refused."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from harness.cli.app import app


def test_stability_refuses_a_folder_without_repeats(cli: CliRunner, tmp_path: Path) -> None:
    result = cli.invoke(app, ["stability", str(tmp_path)])
    assert result.exit_code == 2 and "holds no repeat-1" in result.output
