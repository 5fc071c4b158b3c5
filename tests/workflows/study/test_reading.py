"""Reading a study file strictly: misspelt keys, bad files and what it cannot support are refused before anything
runs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli.app import app
from harness.io.pairs import load_pairs, write_pairs
from tests.helpers import SAMPLE, study_file, xstest_like


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


def test_a_misspelt_key_is_refused_with_the_valid_keys_before_anything_runs(cli: CliRunner, tmp_path: Path) -> None:
    xstest_like(tmp_path)
    study = tmp_path / "typo.toml"
    study.write_text(f'''
[study]
out = "{tmp_path / 'out'}"
data = "xs.jsonl"

[calibrate]
gold = "final"
pred = "gpt4"
treshold = 2
''', encoding="utf-8")
    result = cli.invoke(app, ["run", str(study)])
    assert result.exit_code == 2
    assert (
        "typo.toml: calibrate.treshold: unknown key (did you mean 'threshold'?); [calibrate] takes human, gold, pred"
        in result.output
    )
    assert "held_out" in result.output and "graders" in result.output
    assert not (tmp_path / "out").exists()


def test_study_wide_keys_are_inherited_and_a_table_may_override_them(tmp_path: Path) -> None:
    from harness.workflows.study.reading import read_study

    xstest_like(tmp_path)
    study = tmp_path / "wide.toml"
    study.write_text(f'''
[study]
out = "{tmp_path / 'out'}"
data = "xs.jsonl"
n_boot = 300
seed = 11

[calibrate]
gold = "final"
pred = "gpt4"
n_boot = 500

[agreement]
raters = ["ann1", "ann2"]
''', encoding="utf-8")
    read = read_study(study)
    assert read.calibrate is not None and read.agreement is not None
    assert (read.calibrate.n_boot, read.calibrate.seed) == (500, 11)
    assert (read.agreement.n_boot, read.agreement.seed) == (300, 11)


def test_a_bad_study_file_names_the_file_and_the_key(cli: CliRunner, tmp_path: Path) -> None:
    study = study_file(tmp_path / "s", "embedded")
    text = study.read_text()
    cases = {
        text.replace(
            'model = "harness-small"', 'model = "harness-small"\ntempalte = "x"'
        ): "grader[2].tempalte: unknown key",
        text.replace("n_boot = 100", "n_boot = 1000000"): "study.n_boot: expected at most 100000",
        text.replace('data = "pairs.jsonl"', 'data = "nope.jsonl"'): "study.data:",
        text.replace(
            "[endpoint]", '[endpoint]\napi_key = "sk-secret"'
        ): "endpoint.api_key: keys never go in a study file",
        text.replace(
            '[analyze]\nby = "model"', '[analyze]\ngrader = "large"'
        ): "analyze.grader: no grader named 'large'",
        text.replace("[calibrate]", "[calibrate\n"): "invalid TOML",
    }
    for content, message in cases.items():
        study.write_text(content)
        result = cli.invoke(app, ["run", str(study)])
        assert result.exit_code == 2 and message in result.output and str(study) in result.output, (
            message,
            result.output,
        )
        assert "sk-secret" not in result.output
        assert not (tmp_path / "s" / "out").exists()  # nothing half-written
    shutil.rmtree(tmp_path / "s")
    missing = cli.invoke(app, ["run", str(tmp_path / "none.toml")])
    assert (
        missing.exit_code == 2 and "none.toml: no such study file" in missing.output and "--study" not in missing.output
    )


def test_what_the_study_file_cannot_support_is_refused_before_grading(cli: CliRunner, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    study = study_file(tmp_path / "s", server.base_url)
    text = study.read_text()
    write_pairs(load_pairs(SAMPLE).head(5)[["id", "prompt", "response"]], tmp_path / "s" / "unlabelled.jsonl")
    cases = {
        text.replace("n_boot = 100", 'n_boot = "100"'): "study.n_boot: expected a whole number",
        text.replace('human = "human.jsonl"', 'human = "unlabelled.jsonl"'): "study.human:",
        text.replace('[analyze]\nby = "model"', '[analyze]\nby = "modle"'): "analyze.by: 'modle' is not a column",
        'api_key = "sk-secret"\n' + text: "api_key: keys never go in a study file",
    }
    for content, message in cases.items():
        study.write_text(content)
        result = cli.invoke(app, ["run", str(study)])
        assert result.exit_code == 2 and message in result.output, (message, result.output)
        assert not (tmp_path / "s" / "out").exists() and "sk-secret" not in result.output
    folder = cli.invoke(app, ["run", str(tmp_path / "s")])
    assert (
        folder.exit_code == 2
        and "is a folder; expected a study file" in folder.output
        and "--study" not in folder.output
    )
