"""Never lose a user's file; refuse what cannot be done before doing any of it (issue 29)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli.app import app
from tests.helpers import REPO, SAMPLE


@pytest.mark.parametrize("name", ["figures", "study.json", "report.html", "shot-search"])
def test_a_grader_named_like_an_output_is_refused(cli: CliRunner, tmp_path: Path, name: str) -> None:
    (tmp_path / "pairs.jsonl").write_text(SAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    study = tmp_path / "s.toml"
    study.write_text(f'[study]\nout = "{tmp_path / "out"}"\ndata = "pairs.jsonl"\n[[grader]]\nname = "{name}"\n'
                     'model = "harness-baseline"\n', encoding="utf-8")
    result = cli.invoke(app, ["run", str(study)])
    assert result.exit_code == 2, result.output
    assert f"grader[1].name {name!r}: the study writes a file or folder of that name" in result.output
    assert not (tmp_path / "out").exists()


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_kill_9_of_a_study_leaves_no_embedded_server(tmp_path: Path) -> None:
    (tmp_path / "pairs.jsonl").write_text(SAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    study = tmp_path / "s.toml"
    study.write_text(f'[study]\nout = "{tmp_path / "out"}"\ndata = "pairs.jsonl"\n[endpoint]\nbase_url = "embedded"\n'
                     '[[grader]]\nname = "g"\nmodel = "harness-baseline"\n', encoding="utf-8")
    parent = subprocess.Popen([sys.executable, "-m", "harness", "run", str(study), "--quiet"], cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        children: list[int] = []
        while not children and time.monotonic() < deadline and parent.poll() is None:
            children = [c for c in _children(parent.pid) if "serve" in Path(f"/proc/{c}/cmdline").read_text(errors="replace")]
            time.sleep(0.05)
        assert children, "the study never started its embedded server"
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 30
        while any(_alive(c) for c in children) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_alive(c) for c in children)
    finally:
        if parent.poll() is None:
            parent.kill()


def test_a_stopped_grade_whose_model_then_changed_is_set_aside_not_stuck(cli: CliRunner, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from harness.io.pairs import load_pairs, write_pairs

    write_pairs(load_pairs(SAMPLE).head(6), tmp_path / "pairs.jsonl")
    study = tmp_path / "s.toml"

    def write(url: str, model: str) -> None:
        study.write_text(f'[study]\nout = "{tmp_path / "out"}"\ndata = "pairs.jsonl"\n[endpoint]\nbase_url = "{url}"\n'
                         f'max_attempts = 1\n[[grader]]\nname = "g"\nmodel = "{model}"\n', encoding="utf-8")

    write("http://127.0.0.1:9/v1", "harness-baseline")  # nothing listens there: the grade stops unfinished
    stopped = cli.invoke(app, ["run", str(study), "--quiet"])
    assert stopped.exit_code == 1, stopped.output
    write(server.base_url, "harness-small")
    fixed = cli.invoke(app, ["run", str(study), "--quiet"])
    assert fixed.exit_code == 0, fixed.output
    assert "--run-dir" not in fixed.output + stopped.output and "--base-url" not in stopped.output
    manifest = json.loads((tmp_path / "out" / "g" / "manifest.json").read_text())
    assert manifest["model"] == "harness-small" and manifest["counts"]["ok"] == 12
    aside = list((tmp_path / "out").glob("g.superseded-*"))
    assert len(aside) == 1 and (aside[0] / "input.jsonl").exists()  # the half-made folder set aside, never deleted
