"""A study's [thresholds] table: checked when the study is read, run as calibrate-thresholds, its derived run read by
[calibrate] and [compare] beside the graders."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli.app import app
from harness.core.errors import ConfigError
from harness.io.pairs import load_pairs, write_pairs
from harness.workflows.study.reading import read_study
from tests.helpers import SAMPLE, xstest_like

BASE = """[study]
out = "out"
data = "pairs.jsonl"
human = "pairs.jsonl"
n_boot = 100

[endpoint]
base_url = "{url}"

[[grader]]
name = "small"
model = "harness-small"
{probabilities}
"""


def _study(tmp_path: Path, tables: str, *, probabilities: str = "logprobs = true", url: str = "embedded") -> Path:
    shutil.copy(SAMPLE, tmp_path / "pairs.jsonl")
    path = tmp_path / "study.toml"
    path.write_text(BASE.format(url=url, probabilities=probabilities) + tables, encoding="utf-8")
    return path


@pytest.mark.parametrize(("tables", "probabilities", "message"), [
    ("[thresholds]\n", "", "thresholds.grader: grader small records no probabilities; set logprobs = true"),
    ('[thresholds]\ngrader = "big"\n', "logprobs = true", "thresholds.grader: no grader named 'big'"),
    ('[thresholds]\nname = "small"\n', "logprobs = true", "thresholds.name 'small': a grader"),
    ('[thresholds]\nmetric = "f1"\n', "logprobs = true", "thresholds.metric"),
])
def test_a_thresholds_table_is_checked_when_the_study_is_read(tmp_path: Path, tables: str, probabilities: str,
                                                              message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        read_study(_study(tmp_path, tables, probabilities=probabilities))


def test_a_thresholds_table_inherits_the_study_wide_keys(tmp_path: Path) -> None:
    study = read_study(_study(tmp_path, '[thresholds]\nmetric = "recall"\nmax_fpr = 0.05\n'))
    assert study.thresholds is not None and study.thresholds.n_boot == 100 and study.thresholds.metric == "recall"
    assert study.thresholds.human == str(tmp_path / "pairs.jsonl") and study.judged() == ["small", "thresholds"]


@pytest.mark.slow
def test_a_study_calibrates_its_derived_run(cli: CliRunner, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    study = _study(tmp_path, "[thresholds]\n[calibrate]\n[compare]\n[report]\nview = false\n", url=server.base_url)
    (tmp_path / "pairs.jsonl").unlink()
    write_pairs(load_pairs(SAMPLE).head(120), tmp_path / "pairs.jsonl")  # 40 prompt clusters
    done = cli.invoke(app, ["run", str(study)])
    assert done.exit_code == 0, done.output
    out = tmp_path / "out"
    found = json.loads((out / "thresholds" / "thresholds.json").read_text())
    assert found["run"] == "out/small" and found["split"]["dev_clusters"] == 20
    calibrated = json.loads((out / "thresholds" / "calibration.json").read_text())
    assert calibrated["n_joined"] == found["split"]["held_out_pairs"]
    compared = json.loads((out / "comparison.json").read_text())
    assert compared["unit"]["n_items"] == found["split"]["held_out_pairs"]  # the grader too, on held-out pairs only
    assert "Verdicts from probabilities: harness-small" in (out / "report.md").read_text()
    again = cli.invoke(app, ["run", str(study)])
    assert again.exit_code == 0 and "0 ran" in again.output


def test_a_study_without_graders_reports_what_the_commands_report(cli: CliRunner, tmp_path: Path) -> None:
    table = xstest_like(tmp_path)
    study = tmp_path / "plain.toml"
    study.write_text(f'''
[study]
out = "{tmp_path / 'out'}"
data = "xs.jsonl"
n_boot = 200
seed = 7

[calibrate]
gold = "final"
pred = "gpt4"
labels = ["safe", "unsafe"]

[agreement]
raters = ["ann1", "ann2"]
grader = ["gpt4"]
final = "final"

[report]
''', encoding="utf-8")
    ran = cli.invoke(app, ["run", str(study), "--quiet"])
    assert ran.exit_code == 0, ran.output
    common = ["--n-boot", "200", "--seed", "7"]
    calibrated = json.loads(cli.invoke(app, ["calibrate", str(table), "--gold", "final", "--pred", "gpt4", "--labels",
                                                "safe,unsafe", *common, "--json"]).stdout)
    agreed = json.loads(
        cli.invoke(
            app,
            [
                "agreement",
                str(table),
                "--raters",
                "ann1,ann2",
                "--grader",
                "gpt4",
                "--final",
                "final",
                *common,
                "--json",
                "-o",
                str(tmp_path / "a.json"),
            ],
        ).stdout
    )
    from_study = json.loads((tmp_path / "out" / "calibration_final_vs_gpt4.json").read_text())
    for key in ("accuracy", "kappa", "n_items", "left_out", "ci", "confusion"):
        assert from_study[key] == calibrated[key], key
    agreement_study = json.loads((tmp_path / "out" / "agreement.json").read_text())
    agreement_study.pop("provenance")
    agreed.pop("provenance")
    assert agreement_study == agreed
    assert (tmp_path / "out" / "report.html").exists()
