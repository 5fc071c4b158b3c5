"""The analysis commands' settings: a command with two modes refuses a setting of the other mode, naming it, on the
command line, in the library and in a study (where a study-wide key of the other mode is simply not inherited)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from harness.cli.app import app
from harness.steps.settings import CalibrateSettings
from tests.helpers import SAMPLE


@pytest.mark.parametrize(("flags", "named"), [
    (["--labels", "0,1"], "--labels"), (["--unparsed", "disagree"], "--unparsed"), (["--nominal"], "--nominal")])
def test_a_setting_of_the_table_mode_is_refused_for_a_run(cli: CliRunner, tmp_path: Path, flags: list[str], named: str) -> None:
    (tmp_path / "run").mkdir()
    result = cli.invoke(app, ["calibrate", str(tmp_path / "run"), "--human", str(SAMPLE), *flags])
    assert result.exit_code == 2, result.output
    assert f"{named} applies to a plain table's two columns (--gold/--pred), not to a run folder" in result.output


def test_a_setting_of_the_run_mode_is_refused_for_a_table() -> None:
    with pytest.raises(ValidationError, match="`by` applies to a run folder"):
        CalibrateSettings.model_validate({"gold": "g", "pred": "p", "by": "model"})
    assert CalibrateSettings.model_validate({"gold": "g", "pred": "p", "unparsed": "disagree"}).unparsed == "disagree"
    assert CalibrateSettings.model_validate({"human": "h", "unparsed": "exclude"}).human == "h"  # the default is no choice


def test_a_study_wide_key_of_the_other_mode_is_not_inherited(tmp_path: Path) -> None:
    from harness.workflows.study_reading import read_study

    (tmp_path / "d.jsonl").write_text(SAMPLE.read_text(encoding="utf-8"))
    study = tmp_path / "s.toml"
    study.write_text('[study]\nout = "o"\ndata = "d.jsonl"\nhuman = "d.jsonl"\n'
                     '[calibrate]\ngold = "prompt_hate"\npred = "response_hate"\n')
    assert read_study(study).calibrate.human is None  # type: ignore[union-attr]
    study.write_text(study.read_text().replace('[calibrate]\n', '[calibrate]\nby = "model"\n'))
    with pytest.raises(Exception, match="calibrate: `by` applies to a run folder|calibrate: by applies to a run folder"):
        read_study(study)
