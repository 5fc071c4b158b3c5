"""``report``: the documents and figures it writes, and what a killed report left behind."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli.app import app
from tests.helpers import SAMPLE


@pytest.mark.slow
def test_a_killed_reports_staging_folders_are_swept_and_a_live_ones_kept(cli: CliRunner, tmp_path: Path) -> None:
    done = cli.invoke(app, ["analyze", str(SAMPLE), "--n-boot", "0", "-o", str(tmp_path / "a")])
    assert done.exit_code == 0, done.output
    out = tmp_path / "report"
    dead, live, old, young = (out / ".figures-999999999-x1", out / f".figures-{os.getpid()}-x2", out / ".figures-abc123",
                              out / ".figures-def456")
    for folder in (dead, live, old, young):
        folder.mkdir(parents=True)
        (folder / "01-a.svg").write_text("<svg/>")
    os.utime(old, (time.time() - 7200, time.time() - 7200))  # an earlier harness's, untouched for two hours
    (out / ".figures-mine").mkdir()
    (out / ".figures-mine" / "notes.txt").write_text("a user's folder that only looks like one")
    result = cli.invoke(app, ["report", "--analysis", str(tmp_path / "a" / "analysis.json"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    left = sorted(p.name for p in out.iterdir() if p.name.startswith(".figures"))
    assert left == sorted([live.name, young.name, ".figures-mine"])
    assert (out / "report.html").exists() and any((out / "figures").glob("*.svg"))
