"""``analyze --correct``: shares corrected by a transported calibration (EM), recovering known transitions, and the
checks it says it makes or cannot make."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from harness.analysis.correction_em import corrected_transitions, shares
from harness.analysis.transitions import analyze
from harness.cli.app import app
from harness.grading.grade import GradeSpec, grade
from tests.helpers import endpoint_for
from validation.studies import Setting, study


@pytest.mark.slow
def test_a_calibration_of_another_grader_is_refused_unless_forced(
    cli: CliRunner,
    server,
    run_and_calibration: tuple[Path, Path],  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    _, calibration = run_and_calibration
    grade(tmp_path / "d.jsonl", GradeSpec(model="harness-small"), endpoint_for(server), run_dir=tmp_path / "small")
    refused = cli.invoke(app, ["analyze", str(tmp_path / "small"), "--correct", str(calibration), "--n-boot", "0"])
    assert refused.exit_code == 2 and "measured another grader" in refused.output and "--human" in refused.output
    forced = cli.invoke(
        app, ["analyze", str(tmp_path / "small"), "--correct", str(calibration), "--force", "--n-boot", "0", "--json"]
    )
    assert forced.exit_code == 0
    warnings = json.loads((tmp_path / "small" / "analysis.json").read_text())["corrected"]["warnings"]
    assert any("transported from another grader" in w for w in warnings)


def test_the_calibration_pairs_inside_the_graded_set_are_counted(
    cli: CliRunner, run_and_calibration: tuple[Path, Path]
) -> None:
    run, calibration = run_and_calibration
    stored = json.loads(calibration.read_text())
    assert len(stored["id_hashes"]) == stored["n_joined"] and "s01-aurora-mini" not in json.dumps(stored["id_hashes"])
    result = cli.invoke(app, ["analyze", str(run), "--correct", str(calibration), "--n-boot", "0"])
    assert result.exit_code == 0, result.output
    corrected = json.loads((run / "analysis.json").read_text())["corrected"]
    assert corrected["calibration_overlap"] == stored["n_joined"]  # the demo corrected the very pairs it calibrated on
    assert any("judged on pairs it was fit on" in w for w in corrected["warnings"])


def test_em_says_when_prompt_and_response_errors_are_dependent() -> None:
    from harness.analysis.correction_em import error_dependence
    from harness.results.calibration import Calibration

    def calibration(setting: Setting) -> Calibration:
        graded, human = study(setting, 6, labelled_clusters=setting.n_prompts)
        pairs = {"cluster": [int(c[2:]) for c in human["prompt_id"]]}
        for side in ("prompt", "response"):
            columns = [f"{side}_{c}" for c in ("hate", "sexual", "violence", "self_harm")]
            pairs[f"{side}_human"] = human[columns].max(axis=1).astype(int).tolist()
            pairs[f"{side}_grader"] = graded[columns].max(axis=1).astype(int).tolist()
        n = len(human)
        return Calibration.from_json({"run": "r", "model": "m", "n_joined": n, "threshold": 1, "n_boot": 0, "seed": 0,
                                      "unit": {"cluster": None, "n_items": n, "n_clusters": n}, "targets": {},
                                      "schema_version": 1, "max_severity_pairs": pairs})

    dependent = error_dependence(calibration(Setting(n_prompts=400, rho=0.8, miss_prompt=0.3)), "c", n_boot=500, seed=1)
    independent = error_dependence(
        calibration(Setting(n_prompts=400, rho=0.0, miss_prompt=0.3)), "c", n_boot=500, seed=1
    )
    assert dependent.verdict.startswith("dependent") and dependent.difference is not None and dependent.difference > 0.1
    assert independent.verdict.startswith("independence not rejected")


def test_a_pairs_table_names_no_grader_so_em_says_it_cannot_check(tmp_path: Path) -> None:
    graded, _ = study(Setting(n_prompts=60), 7, labelled_clusters=60)
    frame = pd.DataFrame(graded)
    cal = {
        "run": "r",
        "model": "m",
        "n_joined": 1,
        "threshold": 1,
        "n_boot": 0,
        "seed": 0,
        "targets": {},
        "schema_version": 1,
        "unit": {"cluster": None, "n_items": 1, "n_clusters": 1},
        "max_severity_pairs": {
            "cluster": [0],
            "prompt_human": [1],
            "prompt_grader": [1],
            "response_human": [0],
            "response_grader": [0],
        },
    }
    warnings = analyze(frame, correct=cal, n_boot=0).corrected.warnings
    assert any("does not name its grader" in w for w in warnings)


def _calibration(pairs: dict[str, list[int]]) -> dict[str, object]:
    """A minimal calibration.json of model "m" around per-pair max severities."""
    n = len(pairs["cluster"])
    return {
        "run": "r",
        "model": "m",
        "n_joined": n,
        "threshold": 1,
        "unit": {"cluster": None, "n_items": n, "n_clusters": n},
        "n_boot": 0,
        "seed": 0,
        "targets": {},
        "schema_version": 1,
        "max_severity_pairs": pairs,
    }


def test_correction_recovers_known_transitions() -> None:
    rng = np.random.default_rng(7)
    true_joint = np.array(
        [[0.40, 0.05, 0.02, 0.01], [0.10, 0.08, 0.02, 0.01], [0.08, 0.04, 0.06, 0.01], [0.04, 0.02, 0.02, 0.04]]
    )
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
