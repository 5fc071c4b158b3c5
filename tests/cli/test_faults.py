"""Faults are sentences: a full disk, a read-only file system, a name too long, a place that is not a disk. Each is
exit 2 naming the path and the cause, with no traceback, and nothing is left half-written (a run resumes)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli.app import app
from tests.helpers import SAMPLE


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """A small RAM disk of our own (tmpfs, 300 KiB), unmounted afterwards; skipped where mounting is not allowed."""
    point = tmp_path / "disk"
    point.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(point)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({made.stderr.decode().strip()}): needs root, as CI has")
    try:
        yield point
    finally:
        subprocess.run(["umount", "-l", str(point)], check=False)


@pytest.mark.slow
def test_a_full_disk_stops_the_grade_with_a_sentence_and_it_resumes(
    cli: CliRunner, server, disk: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    args = ["grade", str(SAMPLE), "--base-url", server.base_url, "-o", str(disk / "run"), "--quiet",
            "--cache-dir", str(tmp_path / "cache")]
    full = cli.invoke(app, args)
    assert full.exit_code == 2 and "Traceback" not in full.output, full.output
    assert "no space left on the device" in full.output and str(disk / "run") in full.output
    manifest = json.loads((disk / "run" / "manifest.json").read_text())
    assert manifest["status"] == "failed"  # never left "running"
    subprocess.run(["mount", "-o", "remount,size=4m", str(disk)], check=True)
    resumed = cli.invoke(app, args)
    assert resumed.exit_code == 0, resumed.output
    manifest = json.loads((disk / "run" / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["counts"]["ok"] == 606
    labels = (disk / "run" / "labels.jsonl").read_text().splitlines()
    assert len({(json.loads(line)["id"], json.loads(line)["target"]) for line in labels}) == 606


def test_a_read_only_file_system_is_refused_before_work(cli: CliRunner, server, disk: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
    for args in (["grade", str(SAMPLE), "--base-url", server.base_url, "-o", str(disk / "run")],
                 ["schema", "-o", str(disk / "schemas")]):
        result = cli.invoke(app, args)
        assert result.exit_code == 2 and "is not writable" in result.output and "Traceback" not in result.output, (
            result.output
        )
    assert list(disk.iterdir()) == []


@pytest.mark.parametrize("where", ["long", "proc"])
def test_a_name_too_long_or_a_pseudo_file_system_is_a_sentence(cli: CliRunner, tmp_path: Path, where: str) -> None:
    target = tmp_path / ("n" * 300) if where == "long" else Path("/proc/self/harness-out")
    for args in (["grade", str(SAMPLE), "-o", str(target)], ["schema", "-o", str(target)],
                 ["data", "inject", str(SAMPLE), "-o", str(target) + ".jsonl"]):
        result = cli.invoke(app, args)
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
        assert ("at most 255" if where == "long" else "not a place for files") in result.output
    assert list(tmp_path.iterdir()) == []
