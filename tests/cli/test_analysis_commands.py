"""The analysis commands as a user meets them: outputs land where -o says, missing inputs are errors."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from harness.cli.app import app
from harness.io.pairs import load_pairs, write_pairs
from tests.helpers import SAMPLE


def test_outputs_land_and_missing_inputs_are_errors(cli: CliRunner, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from harness.grading.grade import GradeSpec, grade
    from tests.helpers import endpoint_for

    table = write_pairs(
        pd.DataFrame({"id": ["a", "b", "c"], "prompt": ["x", "y", "z"], "g": ["1", "0", "1"], "p": ["1", "1", "1"]}),
        tmp_path / "t.csv",
    )
    result = cli.invoke(
        app, ["calibrate", str(table), "--gold", "g", "--pred", "p", "--n-boot", "0", "-o", str(tmp_path / "cal")]
    )
    assert result.exit_code == 0 and json.loads((tmp_path / "cal" / "calibration_g_vs_p.json").read_text())["n"] == 3
    assert (tmp_path / "cal" / "confusion_calibration_g_vs_p.csv").read_text().startswith(",pred_0,pred_1")
    bad = cli.invoke(app, ["calibrate", str(table), "--gold", "g", "--pred", "p", "--threshold", "5"])
    assert bad.exit_code == 2 and "--threshold 5: expected one of [1]" in bad.output

    data = write_pairs(load_pairs(SAMPLE).head(3), tmp_path / "d.jsonl")
    for name in ("a", "b", "c"):
        grade(data, GradeSpec(), endpoint_for(server), run_dir=tmp_path / name)
    first = cli.invoke(
        app, ["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--human", str(data), "--n-boot", "0"]
    )
    second = cli.invoke(
        app, ["compare", str(tmp_path / "a"), str(tmp_path / "c"), "--human", str(data), "--n-boot", "0"]
    )
    assert first.exit_code == second.exit_code == 0
    written = sorted(p.name for p in (Path("runs")).glob("comparison-*.json"))
    assert len(written) == 2 and written[0].startswith("comparison-a-vs-") and written[0] != written[1]

    missing = cli.invoke(app, ["report", str(tmp_path / "a"), "--analysis", str(tmp_path / "missing.json")])
    assert missing.exit_code == 2 and "--analysis" in missing.output and "no such file" in missing.output
    nowhere = cli.invoke(app, ["report", str(tmp_path / "nonexist")])
    assert nowhere.exit_code == 2 and "no such run folder" in nowhere.output
