"""The analysis commands' settings: a command with two modes refuses a setting of the other mode, naming it, on the
command line, in the library and in a study (where a study-wide key of the other mode is simply not inherited)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from typer.testing import CliRunner

from harness.cli.app import app
from harness.steps.settings import COMMAND_SETTINGS, CalibrateSettings
from tests.helpers import RUNNER, SAMPLE


@pytest.mark.parametrize(
    ("flags", "named"),
    [(["--labels", "0,1"], "--labels"), (["--unparsed", "disagree"], "--unparsed"), (["--nominal"], "--nominal")],
)
def test_a_setting_of_the_table_mode_is_refused_for_a_run(
    cli: CliRunner, tmp_path: Path, flags: list[str], named: str
) -> None:
    (tmp_path / "run").mkdir()
    result = cli.invoke(app, ["calibrate", str(tmp_path / "run"), "--human", str(SAMPLE), *flags])
    assert result.exit_code == 2, result.output
    assert f"{named} applies to a plain table's two columns (--gold/--pred), not to a run folder" in result.output


def test_a_setting_of_the_run_mode_is_refused_for_a_table() -> None:
    with pytest.raises(ValidationError, match="`by` applies to a run folder"):
        CalibrateSettings.model_validate({"gold": "g", "pred": "p", "by": "model"})
    assert CalibrateSettings.model_validate({"gold": "g", "pred": "p", "unparsed": "disagree"}).unparsed == "disagree"
    # the default is no choice
    assert CalibrateSettings.model_validate({"human": "h", "unparsed": "exclude"}).human == "h"


def test_a_study_wide_key_of_the_other_mode_is_not_inherited(tmp_path: Path) -> None:
    from harness.workflows.study.reading import read_study

    (tmp_path / "d.jsonl").write_text(SAMPLE.read_text(encoding="utf-8"))
    study = tmp_path / "s.toml"
    study.write_text('[study]\nout = "o"\ndata = "d.jsonl"\nhuman = "d.jsonl"\n'
                     '[calibrate]\ngold = "prompt_hate"\npred = "response_hate"\n')
    assert read_study(study).calibrate.human is None  # type: ignore[union-attr]
    study.write_text(study.read_text().replace('[calibrate]\n', '[calibrate]\nby = "model"\n'))
    with pytest.raises(
        Exception, match="calibrate: `by` applies to a run folder|calibrate: by applies to a run folder"
    ):
        read_study(study)


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
def test_no_setting_of_any_command_gives_a_traceback_or_writes_outside_its_folder(
    tmp_path: Path, data: st.DataObject
) -> None:
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
    argv = [
        name,
        str(SAMPLE),
        *_argv(name, values),
        *extra,
        "-o",
        str(out / "picks.jsonl" if name == "select" else out),
    ]
    before = sorted(p.name for p in tmp_path.iterdir())
    result = RUNNER.invoke(app, argv)
    assert result.exit_code in (0, 1, 2), (argv, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), (argv, repr(result.exception))
    assert "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing beside the work folder
    assert all(p == work or work in p.parents for p in work.rglob("*"))
