"""``harness run``: a study with repeats, a jury and stability, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli.app import app
from tests.helpers import head_pairs


@pytest.mark.slow
def test_a_study_with_repeats_a_jury_and_stability(cli: CliRunner, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    head_pairs(tmp_path, 24)
    study = tmp_path / "s.toml"
    study.write_text(f'''
[study]
out = "{tmp_path / 'out'}"
data = "pairs.jsonl"
human = "pairs.jsonl"
n_boot = 100
[endpoint]
base_url = "{server.base_url}"
[[grader]]
name = "base"
model = "harness-baseline"
temperature = 0.7
repeats = 3
[[grader]]
name = "small"
model = "harness-small"
[[grader]]
name = "literal"
model = "harness-literal"
[jury]
rule = "median"
[stability]
[calibrate]
[compare]
[report]
view = false
''', encoding="utf-8")
    ran = cli.invoke(app, ["run", str(study), "--quiet"])
    assert ran.exit_code == 0, ran.output
    out = tmp_path / "out"
    assert json.loads((out / "jury" / "manifest.json").read_text())["params"]["jury"]["rule"] == "median"
    assert (out / "jury" / "calibration.json").exists()  # calibrated like any grader
    assert len(json.loads((out / "comparison.json").read_text())["runs"]) == 4
    stability = json.loads((out / "base" / "repeats" / "stability.json").read_text())
    assert stability["repeats"] == 3 and stability["temperature"] == 0.7
    assert "Stability across repeats" in (out / "report.md").read_text()
    again = cli.invoke(app, ["run", str(study), "--quiet"])
    assert again.exit_code == 0 and "0 ran" in again.output, again.output
