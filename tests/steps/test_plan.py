"""``harness plan`` quotes the pilot's interval as calibrate reports it: one bootstrap per figure."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from harness.cli.app import app
from harness.io.pairs import write_pairs
from harness.report.planning import plan_section
from harness.results.planning import Plan
from validation.simulate import write_run_folder
from validation.studies import Setting, draw, frames


def test_a_plan_from_a_calibration_quotes_its_interval(cli: CliRunner, tmp_path: Path) -> None:
    p, r, gp, gr, clusters = draw(Setting(), np.random.default_rng(8), n_prompts=40)
    graded, human = frames(p, r, gp, gr, clusters, 6)
    write_run_folder(tmp_path / "run", graded, human)
    write_pairs(human, tmp_path / "human.jsonl")
    calibrated = cli.invoke(app, ["calibrate", str(tmp_path / "run"), "--human", str(tmp_path / "human.jsonl"),
                                     "--n-boot", "500", "--seed", "4"])
    assert calibrated.exit_code == 0, calibrated.output
    calibration = json.loads((tmp_path / "run" / "calibration.json").read_text())
    planned = cli.invoke(app, ["plan", str(tmp_path / "run" / "calibration.json"), "--metric", "kappa-quadratic", "--side",
                                  "prompt", "--target-width", "0.3", "--studies", "20", "--n-boot", "50", "--json",
                                  "-o", str(tmp_path / "plan.json")])
    assert planned.exit_code == 0, planned.output
    plan = json.loads(planned.stdout)
    shown = calibration["targets"]["prompt"]["max"]
    assert plan["pilot_ci"] == shown["ci"]["kappa_quadratic"] and plan["pilot_value"] == shown["kappa_quadratic"]
    assert "calibration.json's own interval (500 cluster resamples, seed 4)" in plan["pilot_interval"]


def test_a_plan_from_a_table_gives_calibrates_interval_at_its_defaults(cli: CliRunner, tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    gold = rng.integers(0, 3, 120)
    table = [{"id": f"i{i}", "prompt_id": f"q{i // 3}", "gold": int(g), "pred": int(g if rng.random() < 0.7 else (g + 1) % 3)}
             for i, g in enumerate(gold)]
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(row) + "\n" for row in table), encoding="utf-8")
    calibrated = cli.invoke(app, ["calibrate", str(tmp_path / "t.jsonl"), "--gold", "gold", "--pred", "pred", "-o",
                                     str(tmp_path)])
    assert calibrated.exit_code == 0, calibrated.output
    reported = json.loads((tmp_path / "calibration_gold_vs_pred.json").read_text())["ci"]["kappa"]
    planned = cli.invoke(app, ["plan", str(tmp_path / "t.jsonl"), "--gold", "gold", "--pred", "pred", "--metric", "kappa",
                                  "--target-width", "0.4", "--studies", "20", "--n-boot", "50", "--json", "-o",
                                  str(tmp_path / "plan.json")])
    assert planned.exit_code == 0, planned.output
    plan = json.loads(planned.stdout)
    assert plan["pilot_ci"] == reported and plan["pilot_width"] == reported[1] - reported[0]
    section = plan_section(Plan.from_json(plan))
    assert f"{reported[0]:.2f}–{reported[1]:.2f}: calibrate's cluster bootstrap (2,000 resamples" in section.paragraphs[0]
