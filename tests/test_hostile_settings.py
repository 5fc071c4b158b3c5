"""Never lose a user's file; refuse what cannot be done before doing any of it (issue 29)."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from harness.cli.app import app
from harness.steps.settings import COMMAND_SETTINGS
from tests.helpers import REPO, RUNNER, SAMPLE


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


def _values(field: Any) -> st.SearchStrategy[Any]:
    """Values for one setting: inside its bounds, at and past them, of the wrong kind, and hostile text."""
    text = st.sampled_from(["", "none", "prompt_hate", "../../etc", "x" * 300, "a,b", "\u202e", "1e9", "nan"])
    numbers = st.sampled_from([-5, 0, 1, 2, 3, 50, 10**6, 10**12, 2**40])
    floats = st.sampled_from([-1.0, 0.0, 0.05, 0.3, 0.999, 1.0, 1.5, math.inf, math.nan])
    return st.one_of(text, numbers, floats, st.booleans())


def _argv(name: str, values: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for key, value in values.items():
        flag = "--" + key.replace("_", "-")
        field = COMMAND_SETTINGS[name].model_fields[key]
        if field.annotation is bool:
            out += [flag] if value is True else []
        else:
            out += [flag, str(value)]
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
@pytest.mark.slow
def test_no_setting_of_any_command_gives_a_traceback_or_writes_outside_its_folder(tmp_path: Path, data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(["calibrate", "agreement", "analyze", "plan", "select"]))
    model = COMMAND_SETTINGS[name]
    keys = data.draw(st.lists(st.sampled_from(sorted(model.model_fields)), max_size=4, unique=True))
    values = {k: data.draw(_values(model.model_fields[k])) for k in keys}
    values.setdefault("n_boot", 20) if "n_boot" in model.model_fields and name != "plan" else None
    if name == "plan":
        values.update(studies=10, n_boot=50)
    import tempfile

    work = Path(tempfile.mkdtemp(dir=tmp_path))
    out = work / "out"
    extra = ["--budget", "3"] if name == "select" and "budget" not in values else []
    argv = [name, str(SAMPLE), *_argv(name, values), *extra, "-o", str(out / "picks.jsonl" if name == "select" else out)]
    before = sorted(p.name for p in tmp_path.iterdir())
    result = RUNNER.invoke(app, argv)
    assert result.exit_code in (0, 1, 2), (argv, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), (argv, repr(result.exception))
    assert "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing beside the work folder
    assert all(p == work or work in p.parents for p in work.rglob("*"))


def test_a_plan_that_would_run_for_hours_is_refused_at_once(cli: CliRunner, tmp_path: Path) -> None:
    table = tmp_path / "t.jsonl"
    table.write_text("".join(json.dumps({"id": f"i{k}", "prompt_id": f"p{k}", "g": k % 2, "p": (k // 3) % 2}) + "\n"
                             for k in range(200)), encoding="utf-8")
    result = cli.invoke(app, ["plan", str(table), "--gold", "g", "--pred", "p", "--target-width", "0.01", "--studies", "20000",
                                 "--n-boot", "10000", "-o", str(tmp_path / "plan.json")])
    assert result.exit_code == 2 and "resampled draws (limits 1 GB, 1e+09); lower --studies or --n-boot" in result.output
    assert not (tmp_path / "plan.json").exists()


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
