"""Flags made from the settings models: every option a setting and every setting a flag, bounds refused naming the
flag, old spellings said."""

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
from tests.helpers import SAMPLE

#: Options that are output plumbing, not settings (exempt in the study file).
PLUMBING = {"out", "as_json", "quiet", "help"}


#: The grading commands' own options: their input and folders, and the settings file; every other grading option is a
#: field of the grading settings (the study's [endpoint] and [[grader]] keys), made by with_layers.
GRADING = {"pool", "run_root", "config", *EndpointSettings.model_fields, *JobSettings.model_fields}


#: Commands that send requests: their endpoint options are the study's [endpoint] keys.
SENDS = {"calibrate-shots", "probe"}


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


def test_out_of_bound_settings_exit_2_naming_the_flag(cli: CliRunner, tmp_path: Path) -> None:
    cases = [
        (
            ["calibrate", str(SAMPLE), "--gold", "prompt_hate", "--pred", "prompt_hate", "--n-boot", "100000000"],
            "--n-boot 100000000: expected at most 100000",
        ),
        (["plan", str(SAMPLE), "--studies", "1000000000"], "--studies 1000000000: expected at most 20000"),
        (["calibrate", str(SAMPLE), "--seed", "-5"], "--seed -5: expected at least 0"),
        (["plan", str(SAMPLE), "--metric", "kapa"], "--metric 'kapa': expected one of 'kappa'"),
        (["plan", str(SAMPLE), "--sizes", "100,x"], "--sizes 'x': expected whole numbers"),
        (["select", str(SAMPLE), "--budget", "0", "-o", str(tmp_path / "p.jsonl")], "--budget 0: expected at least 1"),
    ]
    for argv, message in cases:
        result = cli.invoke(app, argv)
        assert result.exit_code == 2, (argv, result.output)
        assert message in result.output, (argv, result.output)
    assert not list(tmp_path.iterdir())  # nothing written


def test_an_old_flag_spelling_still_works_for_one_release_and_says_so(cli: CliRunner, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from harness.io.pairs import load_pairs, write_pairs

    data = write_pairs(load_pairs(SAMPLE).head(3), tmp_path / "d.jsonl")
    result = cli.invoke(
        app, ["grade", str(data), "--base-url", server.base_url, "--run-dir", str(tmp_path / "r"), "--quiet", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert "warning: --run-dir is deprecated and will be removed in the next release; use --out" in result.stderr
    assert json.loads(result.stdout)["items"] == 6 and (tmp_path / "r" / "labels.jsonl").exists()
