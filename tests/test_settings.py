"""One declaration per setting: every command's options are its settings model, and the study file's table is too."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from harness.cli.app import app
from harness.grading.settings import EndpointSettings, JobSettings
from harness.steps.settings import COMMAND_SETTINGS
from harness.workflows.study_file import ANALYSIS_TABLES, STUDY_ONLY_KEYS, StudyInfo
from tests.helpers import SAMPLE

#: Options that are output plumbing, not settings (exempt in the study file).
PLUMBING = {"out", "as_json", "quiet", "help"}


#: The grading commands' own options: their input and folders, and the settings file; every other grading option is a
#: field of the grading settings (the study's [endpoint] and [[grader]] keys), made by with_layers.
GRADING = {"pool", "run_root", "config", *EndpointSettings.model_fields, *JobSettings.model_fields}


#: Commands that send requests: their endpoint options are the study's [endpoint] keys.
SENDS = {"calibrate-shots", "probe"}


STUDY_TABLE = {"calibrate-shots": "shot_search", "calibrate-thresholds": "thresholds"}


def _options(name: str) -> dict[str, Any]:
    """The command's options as typer builds them (name -> option with opts, help, default)."""
    group = typer.main.get_command(app)
    command = group.commands[name]  # type: ignore[attr-defined]
    return {p.name: p for p in command.params if p.param_type_name == "option"}


@pytest.mark.parametrize("name", sorted(COMMAND_SETTINGS))
def test_every_option_is_a_setting_and_every_setting_a_flag(name: str) -> None:
    model = COMMAND_SETTINGS[name]
    options = _options(name)
    missing_flags = sorted(set(model.model_fields) - set(options))
    undeclared = sorted(set(options) - set(model.model_fields) - PLUMBING - (GRADING if name in SENDS else set()))
    assert not missing_flags and not undeclared, (missing_flags, undeclared)
    for field_name, field in model.model_fields.items():
        option = options[field_name]
        assert option.help is not None and field.description is not None and option.help.startswith(field.description)
        assert f"--{field_name.replace('_', '-')}" in option.opts
        if not field.is_required() and not isinstance(field.get_default(call_default_factory=True), list):
            assert option.default == field.get_default(call_default_factory=True), field_name


@pytest.mark.parametrize("name", sorted(COMMAND_SETTINGS))
def test_every_setting_is_a_key_of_its_study_table_and_the_schema(cli: CliRunner, name: str) -> None:
    table = ANALYSIS_TABLES[STUDY_TABLE.get(name, name)]
    model = COMMAND_SETTINGS[name]
    assert set(model.model_fields) <= set(table.model_fields)
    assert set(table.model_fields) - set(model.model_fields) <= STUDY_ONLY_KEYS
    for key in model.study_wide():  # a study-wide key may be set once in [study]
        assert key in StudyInfo.model_fields, key
        assert table.model_fields[key].default == model.model_fields[key].default
    schema = json.loads(cli.invoke(app, ["schema", "study"]).stdout)
    table_schema = schema["$defs"][table.__name__]
    assert set(model.model_fields) <= set(table_schema["properties"])
    assert table_schema["additionalProperties"] is False


def test_out_of_bound_settings_exit_2_naming_the_flag(cli: CliRunner, tmp_path: Path) -> None:
    cases = [(["calibrate", str(SAMPLE), "--gold", "prompt_hate", "--pred", "prompt_hate", "--n-boot", "100000000"],
              "--n-boot 100000000: expected at most 100000"),
             (["plan", str(SAMPLE), "--studies", "1000000000"], "--studies 1000000000: expected at most 20000"),
             (["calibrate", str(SAMPLE), "--seed", "-5"], "--seed -5: expected at least 0"),
             (["plan", str(SAMPLE), "--metric", "kapa"], "--metric 'kapa': expected one of 'kappa'"),
             (["plan", str(SAMPLE), "--sizes", "100,x"], "--sizes 'x': expected whole numbers"),
             (["select", str(SAMPLE), "--budget", "0", "-o", str(tmp_path / "p.jsonl")], "--budget 0: expected at least 1")]
    for argv, message in cases:
        result = cli.invoke(app, argv)
        assert result.exit_code == 2, (argv, result.output)
        assert message in result.output, (argv, result.output)
    assert not list(tmp_path.iterdir())  # nothing written


def _xstest_like(folder: Path) -> Path:
    """Two annotators, a final label and a grader's verdict (with free text outside the label set) per item."""
    rows = []
    for i in range(40):
        final = "unsafe" if i % 4 == 0 else "safe"
        other = "safe" if final == "unsafe" else "unsafe"
        ann1 = final if i % 7 else other
        ann2 = final if i % 5 else other
        grader = "it depends" if i % 10 == 3 else (final if i % 3 else other)
        rows.append({"id": f"x{i}", "prompt_id": f"p{i // 2}", "ann1": ann1, "ann2": ann2, "final": final, "gpt4": grader})
    path = folder / "xs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_a_study_without_graders_reports_what_the_commands_report(cli: CliRunner, tmp_path: Path) -> None:
    table = _xstest_like(tmp_path)
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
    agreed = json.loads(cli.invoke(app, ["agreement", str(table), "--raters", "ann1,ann2", "--grader", "gpt4", "--final",
                                            "final", *common, "--json", "-o", str(tmp_path / "a.json")]).stdout)
    from_study = json.loads((tmp_path / "out" / "calibration_final_vs_gpt4.json").read_text())
    for key in ("accuracy", "kappa", "n_items", "left_out", "ci", "confusion"):
        assert from_study[key] == calibrated[key], key
    agreement_study = json.loads((tmp_path / "out" / "agreement.json").read_text())
    agreement_study.pop("provenance")
    agreed.pop("provenance")
    assert agreement_study == agreed
    assert (tmp_path / "out" / "report.html").exists()


def test_a_misspelt_key_is_refused_with_the_valid_keys_before_anything_runs(cli: CliRunner, tmp_path: Path) -> None:
    _xstest_like(tmp_path)
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
    assert "typo.toml: calibrate.treshold: unknown key (did you mean 'threshold'?); [calibrate] takes human, gold, pred" in result.output
    assert "held_out" in result.output and "graders" in result.output
    assert not (tmp_path / "out").exists()


def test_study_wide_keys_are_inherited_and_a_table_may_override_them(tmp_path: Path) -> None:
    from harness.workflows.study_reading import read_study

    _xstest_like(tmp_path)
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


def test_an_old_flag_spelling_still_works_for_one_release_and_says_so(cli: CliRunner, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from harness.io.pairs import load_pairs, write_pairs

    data = write_pairs(load_pairs(SAMPLE).head(3), tmp_path / "d.jsonl")
    result = cli.invoke(app, ["grade", str(data), "--base-url", server.base_url, "--run-dir", str(tmp_path / "r"), "--quiet",
                                 "--json"])
    assert result.exit_code == 0, result.output
    assert "warning: --run-dir is deprecated and will be removed in the next release; use --out" in result.stderr
    assert json.loads(result.stdout)["items"] == 6 and (tmp_path / "r" / "labels.jsonl").exists()
