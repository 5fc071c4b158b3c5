"""The unit of analysis: duplicated rows add no evidence, every command counts alike, corrections correct."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from harness.analysis.correction_em import corrected_transitions, shares
from harness.cli.app import app
from harness.grading.grade import GradeSpec, grade
from harness.io.pairs import load_pairs, write_pairs
from tests.helpers import SAMPLE, endpoint_for


def test_correction_recovers_known_transitions() -> None:
    rng = np.random.default_rng(7)
    true_joint = np.array([[0.40, 0.05, 0.02, 0.01], [0.10, 0.08, 0.02, 0.01], [0.08, 0.04, 0.06, 0.01], [0.04, 0.02, 0.02, 0.04]])
    true_joint /= true_joint.sum()
    m_prompt = np.array([[0.9, 0.08, 0.02, 0], [0.15, 0.7, 0.1, 0.05], [0.05, 0.15, 0.7, 0.1], [0, 0.05, 0.15, 0.8]])
    m_response = np.array([[0.95, 0.05, 0, 0], [0.4, 0.5, 0.1, 0], [0.2, 0.2, 0.5, 0.1], [0.1, 0.1, 0.2, 0.6]])

    def draw(n: int) -> tuple[np.ndarray, ...]:
        cells = rng.choice(16, size=n, p=true_joint.ravel())
        p, r = cells // 4, cells % 4
        grade_p = (rng.random(n)[:, None] > m_prompt.cumsum(axis=1)[p]).sum(axis=1).clip(0, 3)
        grade_r = (rng.random(n)[:, None] > m_response.cumsum(axis=1)[r]).sum(axis=1).clip(0, 3)
        return p, r, grade_p, grade_r

    hp, hr, gp, gr = draw(4000)
    calibration = _calibration({"cluster": list(range(4000)), "prompt_human": hp.tolist(), "prompt_grader": gp.tolist(),
                                "response_human": hr.tolist(), "response_grader": gr.tolist()})
    _, _, op, orr = draw(30000)
    grader = {"model": "m"}
    result = corrected_transitions(op, orr, np.arange(30000), calibration, n_boot=0, grader=grader)
    truth = shares(true_joint)
    for key in ("reduction", "preservation", "response_harm"):
        raw_error = abs(result["raw"][key] - truth[key])
        corrected_error = abs(result["corrected"][key] - truth[key])
        assert raw_error > 0.05 and corrected_error < raw_error / 3, key
    assert result["warnings"] == []
    thin = _calibration({k: v[:40] for k, v in calibration["max_severity_pairs"].items()})
    assert any("few calibration pairs" in w
               for w in corrected_transitions(op, orr, np.arange(30000), thin, n_boot=0, grader=grader)["warnings"])


def _calibration(pairs: dict[str, list[int]]) -> dict[str, object]:
    """A minimal calibration.json of model "m" around per-pair max severities."""
    n = len(pairs["cluster"])
    return {"run": "r", "model": "m", "n_joined": n, "threshold": 1, "unit": {"cluster": None, "n_items": n, "n_clusters": n},
            "n_boot": 0, "seed": 0, "targets": {}, "schema_version": 1, "max_severity_pairs": pairs}


@pytest.mark.slow
def test_analyze_correct_prints_raw_and_corrected(cli: CliRunner, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = write_pairs(load_pairs(SAMPLE), tmp_path / "d.jsonl")
    grade(data, GradeSpec(), endpoint_for(server), run_dir=tmp_path / "run")
    assert cli.invoke(app, ["calibrate", str(tmp_path / "run"), "--human", str(data), "--n-boot", "0"]).exit_code == 0
    result = cli.invoke(app, ["analyze", str(tmp_path / "run"), "--correct", str(tmp_path / "run" / "calibration.json"),
                                 "--n-boot", "200"], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    assert "Bias-corrected shares" in result.output and "calibration pairs" in result.output
    corrected = json.loads((tmp_path / "run" / "analysis.json").read_text())["corrected"]
    assert corrected["n_calibration"] == len(load_pairs(SAMPLE)) and corrected["corrected_ci"]["escalation"][0] is not None
    missing = cli.invoke(app, ["analyze", str(tmp_path / "run"), "--correct", str(tmp_path / "nope.json")])
    assert missing.exit_code == 2 and "--correct" in missing.output and "no such file" in missing.output
    (tmp_path / "bad.json").write_text('{"model": "x"}')
    bad = cli.invoke(app, ["analyze", str(tmp_path / "run"), "--correct", str(tmp_path / "bad.json")])
    assert bad.exit_code == 2 and "bad.json.run: missing" in bad.output  # read strictly, located
