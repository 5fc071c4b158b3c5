"""The study file's tables are the commands' settings: every setting a key of its table and of the schema."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from harness.cli.app import app
from harness.steps.settings import COMMAND_SETTINGS
from harness.workflows.study.file import ANALYSIS_TABLES, STUDY_ONLY_KEYS, StudyInfo

STUDY_TABLE = {"calibrate-shots": "shot_search", "calibrate-thresholds": "thresholds"}


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
