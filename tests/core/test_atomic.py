"""Written files: spreadsheet-safe CSVs, Markdown tables that escape pipes, modes that follow the umask."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from harness.cli.app import app
from harness.io.pairs import write_pairs
from tests.helpers import sample_analysis


@pytest.mark.slow
def test_exported_csvs_neutralise_formulas_and_markdown_escapes_pipes(cli: CliRunner, tmp_path: Path) -> None:
    from harness.core.constants import CATEGORIES

    rows = []
    for i, group in enumerate(["=cmd|' /C calc'!A0", "+HYPERLINK(\"x\")", "a|b\nc"]):
        row: dict[str, Any] = {"id": f"r{i}", "prompt": "p", "model": group}
        row.update({f"prompt_{c}": 1 for c in CATEGORIES})
        row.update({f"response_{c}": 2 for c in CATEGORIES})
        rows.append(row)
    data = write_pairs(pd.DataFrame(rows), tmp_path / "t.jsonl")
    out = tmp_path / "out"
    assert cli.invoke(app, ["analyze", str(data), "--by", "model", "--n-boot", "0", "-o", str(out)]).exit_code == 0
    table = pd.read_csv(out / "analysis_transitions.csv", dtype=str)
    assert "'=cmd|' /C calc'!A0" in set(table["group"]) and "'+HYPERLINK(\"x\")" in set(table["group"])
    assert all(not str(v).startswith(("=", "+", "-", "@")) for v in table.to_numpy().ravel())
    numbers = pd.read_csv(out / "analysis_transitions.csv")
    assert numbers["escalation"].dtype.kind == "f"  # numbers stay numbers
    assert cli.invoke(app, ["report", "--analysis", str(out / "analysis.json"), "-o", str(out)]).exit_code == 0
    assert "| a\\|b c |" in (out / "report.md").read_text()


@pytest.mark.slow
def test_written_files_follow_the_umask(cli: CliRunner, tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        analysis = sample_analysis(tmp_path)
        out = tmp_path / "report"
        assert cli.invoke(app, ["report", "--analysis", str(analysis), "-o", str(out)]).exit_code == 0
    finally:
        os.umask(old)
    for path in [analysis, out / "report.html", out / "report.md", *(out / "figures").iterdir()]:
        assert path.stat().st_mode & 0o777 == 0o644, (path, oct(path.stat().st_mode))
    assert (out / "figures").stat().st_mode & 0o777 == 0o755
