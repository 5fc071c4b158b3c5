"""``data describe``: coverage and distribution of a pairs table."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from harness.cli.app import app
from tests.helpers import write_jsonl


def test_describe_reports_coverage_and_distribution(cli: CliRunner, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "p.jsonl", [
        {"id": "a", "prompt": "x", "prompt_hate": 1, "model": "m"},
        {"id": "b", "prompt": "y", "prompt_hate": None, "model": "m"},
        {"id": "c", "prompt": "z", "prompt_hate": 1, "model": "n"},
    ])
    result = cli.invoke(app, ["data", "describe", str(path), "--json"])
    assert result.exit_code == 0
    summary = json.loads(result.output)
    assert summary["rows"] == 3
    assert summary["labels"]["prompt_hate"] == {
        "known": 2,
        "coverage": 2 / 3,
        "distribution": {"0": 0, "1": 2, "2": 0, "3": 0},
    }
    assert summary["metadata"]["model"]["unique"] == 2
