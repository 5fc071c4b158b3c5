"""The human ceiling that calibrate and compare carry beside their agreement."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli.app import app
from harness.grading.grade import GradeSpec, grade
from harness.io.sample import ratings_path
from tests.helpers import RUNNER, endpoint_for


def exit_and_output(*args: str) -> tuple[int, str]:
    result = RUNNER.invoke(app, list(args))
    return result.exit_code, result.output


@pytest.mark.slow
def test_calibrate_and_compare_carry_the_human_ceiling(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    table = ratings_path()
    runs = [tmp_path / "baseline", tmp_path / "small"]
    for run, model in zip(runs, ("harness-baseline", "harness-small"), strict=True):
        grade(table, GradeSpec(model=model, targets=("prompt", "response")), endpoint_for(server), run_dir=run)
    code, output = exit_and_output(
        "calibrate", str(runs[0]), "--human", table, "--raters", "ann1,ann2,ann3", "--n-boot", "50"
    )
    assert code == 0, output
    calibration = json.loads((runs[0] / "calibration.json").read_text())
    agreement = calibration["human_agreement"]
    assert agreement["graders"] == ["harness-baseline"] and agreement["raters"] == ["ann1", "ann2", "ann3"]
    ceiling = agreement["scopes"]["response.max"]["human_ceiling"]
    assert "Beside the human ceiling (3 raters, 120 items in 40 clusters)" in output and f"{ceiling:.2f}" in output
    out = tmp_path / "cmp.json"
    code, output = exit_and_output(
        "compare", *map(str, runs), "--human", table, "--raters", "ann1,ann2,ann3", "--n-boot", "50", "-o", str(out)
    )
    assert code == 0, output
    verdicts = json.loads(out.read_text())["human_agreement"]["passed"]
    assert set(verdicts) == {"harness-baseline", "harness-small"}
    assert all(v in (True, False) for v in verdicts.values())
    code, output = exit_and_output(
        "agreement",
        table,
        "--raters",
        "ann1,ann2,ann3",
        "--final",
        "canonical",
        "--grader",
        str(runs[0]),
        "--n-boot",
        "50",
        "-o",
        str(runs[0] / "agreement.json"),
    )
    assert code == 0, output
    code, output = exit_and_output("report", str(runs[0]))
    assert code == 0, output
    report = (runs[0] / "report.md").read_text()
    assert "## Human agreement" in report and "harness-baseline: alternative annotator test" in report
