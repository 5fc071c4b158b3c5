"""``harness plan`` and ``harness select`` through the CLI: the pilot's interval quoted as calibrate reports it (one
bootstrap per figure), errors naming the flag, whole clusters picked with their design written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from harness.cli.app import app
from harness.io.pairs import write_pairs
from harness.report.planning import plan_section
from harness.results.planning import Plan
from tests.helpers import RUNNER, kappa_table, rare_positives
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
    planned = cli.invoke(
        app,
        [
            "plan",
            str(tmp_path / "run" / "calibration.json"),
            "--metric",
            "kappa-quadratic",
            "--side",
            "prompt",
            "--target-width",
            "0.3",
            "--studies",
            "20",
            "--n-boot",
            "50",
            "--json",
            "-o",
            str(tmp_path / "plan.json"),
        ],
    )
    assert planned.exit_code == 0, planned.output
    plan = json.loads(planned.stdout)
    shown = calibration["targets"]["prompt"]["max"]
    assert plan["pilot_ci"] == shown["ci"]["kappa_quadratic"] and plan["pilot_value"] == shown["kappa_quadratic"]
    assert "calibration.json's own interval (500 cluster resamples, seed 4)" in plan["pilot_interval"]


def test_a_plan_from_a_table_gives_calibrates_interval_at_its_defaults(cli: CliRunner, tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    gold = rng.integers(0, 3, 120)
    table = [
        {
            "id": f"i{i}",
            "prompt_id": f"q{i // 3}",
            "gold": int(g),
            "pred": int(g if rng.random() < 0.7 else (g + 1) % 3),
        }
        for i, g in enumerate(gold)
    ]
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(row) + "\n" for row in table), encoding="utf-8")
    calibrated = cli.invoke(app, ["calibrate", str(tmp_path / "t.jsonl"), "--gold", "gold", "--pred", "pred", "-o",
                                     str(tmp_path)])
    assert calibrated.exit_code == 0, calibrated.output
    reported = json.loads((tmp_path / "calibration_gold_vs_pred.json").read_text())["ci"]["kappa"]
    planned = cli.invoke(
        app,
        [
            "plan",
            str(tmp_path / "t.jsonl"),
            "--gold",
            "gold",
            "--pred",
            "pred",
            "--metric",
            "kappa",
            "--target-width",
            "0.4",
            "--studies",
            "20",
            "--n-boot",
            "50",
            "--json",
            "-o",
            str(tmp_path / "plan.json"),
        ],
    )
    assert planned.exit_code == 0, planned.output
    plan = json.loads(planned.stdout)
    assert plan["pilot_ci"] == reported and plan["pilot_width"] == reported[1] - reported[0]
    section = plan_section(Plan.from_json(plan))
    assert (
        f"{reported[0]:.2f}–{reported[1]:.2f}: calibrate's cluster bootstrap (2,000 resamples" in section.paragraphs[0]
    )


def cli_stdout(*args: str) -> str:
    result = RUNNER.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_select_picks_whole_clusters_and_writes_its_design(cli: CliRunner, tmp_path: Path) -> None:
    setting = Setting(n_prompts=60)
    p, r, gp, gr, clusters = draw(setting, np.random.default_rng(1))
    graded, _ = frames(p, r, gp, gr, clusters, setting.per)
    write_pairs(graded, tmp_path / "graded.jsonl")
    cli_stdout(
        "select",
        str(tmp_path / "graded.jsonl"),
        "--budget",
        "12",
        "--strategy",
        "stratified",
        "-o",
        str(tmp_path / "picks.csv"),
    )
    picks = pd.read_csv(tmp_path / "picks.csv")
    assert picks["prompt_id"].nunique() == 12 and len(picks) == 12 * setting.per  # never half a cluster
    assert picks.groupby("prompt_id")["inclusion_probability"].nunique().max() == 1
    design = json.loads((tmp_path / "picks.design.json").read_text())
    assert design["strategy"] == "stratified" and design["n_picked_clusters"] == 12
    flagged, quiet = design["strata"]["flagged"], design["strata"]["quiet"]
    assert flagged[0] + quiet[0] == 12 and flagged[1] + quiet[1] == 60
    assert design["inclusion_max"] == pytest.approx(2 * design["inclusion_min"])
    # active without the grader's uncertainty falls back, and says so
    output = cli_stdout("select", str(tmp_path / "graded.jsonl"), "--budget", "12", "--strategy", "active", "--json",
                  "-o", str(tmp_path / "active.jsonl"))
    assert json.loads(output)["strategy"] == "stratified" and json.loads(output)["requested"] == "active"
    result = cli.invoke(
        app, ["select", str(tmp_path / "graded.jsonl"), "--budget", "61", "-o", str(tmp_path / "x.jsonl")]
    )
    assert result.exit_code == 2 and "--budget 61" in result.output and not (tmp_path / "x.jsonl").exists()


def test_plan_errors_name_the_flag(cli: CliRunner, tmp_path: Path) -> None:
    kappa_table(3, 20, tmp_path / "pilot.jsonl", Setting(per=2))
    both = ["--gold", "human", "--pred", "grader"]
    for args, message in (
        (both, "give --target-width"),
        ([*both, "--metric", "escalation", "--sizes", "100"], "both sides"),
        (["--gold", "human", "--sizes", "100"], "--gold and --pred go together"),
        ([*both, "--sizes", "ten"], "--sizes 'ten'"),
    ):
        result = cli.invoke(app, ["plan", str(tmp_path / "pilot.jsonl"), *args, "-o", str(tmp_path / "plan.json")])
        assert result.exit_code == 2, result.output
        assert message in " ".join(result.output.split())
        assert not (tmp_path / "plan.json").exists()


@pytest.mark.slow
def test_a_plan_reads_only_the_labelled_pairs_and_plans_the_same(cli: CliRunner, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Agreement metrics need only the labelled pairs: the run is read for those (ids read off each line, the rest not
    parsed), and the calibration behind the plan is the one the whole run gives."""
    from harness.analysis.calibration import calibrate_run
    from harness.io.pairs import load_pairs
    from harness.io.runs import load_run
    from tests.helpers import SAMPLE

    frame = load_pairs(SAMPLE)
    frame.loc[0, "id"] = 'odd "quoted" id'  # an id with escapes: its line is parsed to be read
    data = write_pairs(frame, tmp_path / "pairs.jsonl")
    done = cli.invoke(app, ["grade", str(data), "--base-url", server.base_url, "--out", str(tmp_path / "run"),
                            "--cache-dir", str(tmp_path / "cache")])
    assert done.exit_code == 0, done.output
    labelled = frame[frame["prompt_id"].isin(frame["prompt_id"].unique()[::3])]
    human = write_pairs(labelled, tmp_path / "human.jsonl")
    ids = set(labelled["id"])
    assert 'odd "quoted" id' in ids
    subset = load_run(tmp_path / "run", ids=ids)
    assert {r["id"] for r in subset.records} == ids and set(subset.input["id"]) == ids
    whole = calibrate_run(load_run(tmp_path / "run"), labelled, n_boot=0)
    part = calibrate_run(subset, labelled, n_boot=0)
    assert part.max_severity_pairs == whole.max_severity_pairs
    assert part.targets["prompt"].max.kappa_quadratic == whole.targets["prompt"].max.kappa_quadratic
    out = tmp_path / "plan.json"
    planned = cli.invoke(app, ["plan", str(tmp_path / "run"), "--human", str(human), "--side", "prompt", "--metric",
                               "kappa-quadratic", "--target-width", "0.2", "--studies", "20", "--n-boot", "50",
                               "--out", str(out)])
    assert planned.exit_code == 0, planned.output
    assert json.loads(out.read_text())["pilot"]["n_items"] == len(labelled)


def test_plan_refuses_an_assurance_outside_its_bounds(cli: CliRunner, tmp_path: Path) -> None:
    result = cli.invoke(app, ["plan", str(rare_positives(tmp_path)), "--gold", "gold", "--pred", "pred",
                                 "--target-width", "0.3", "--assurance", "1.5"])
    assert result.exit_code == 2 and "--assurance 1.5: expected at most 0.99" in result.output


def test_a_plan_that_would_run_for_hours_is_refused_at_once(cli: CliRunner, tmp_path: Path) -> None:
    table = tmp_path / "t.jsonl"
    table.write_text("".join(json.dumps({"id": f"i{k}", "prompt_id": f"p{k}", "g": k % 2, "p": (k // 3) % 2}) + "\n"
                             for k in range(200)), encoding="utf-8")
    result = cli.invoke(
        app,
        [
            "plan",
            str(table),
            "--gold",
            "g",
            "--pred",
            "p",
            "--target-width",
            "0.01",
            "--studies",
            "20000",
            "--n-boot",
            "10000",
            "-o",
            str(tmp_path / "plan.json"),
        ],
    )
    assert (
        result.exit_code == 2 and "resampled draws (limits 1 GB, 1e+09); lower --studies or --n-boot" in result.output
    )
    assert not (tmp_path / "plan.json").exists()
