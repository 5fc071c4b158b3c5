"""The label budget through the CLI: ``harness plan`` sizes a labelling round from a pilot, ``harness select``
picks whole prompt clusters with known inclusion probabilities, and ``analyze``/``calibrate`` weight them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from harness.cli.app import app
from harness.io.pairs import write_pairs
from tests.helpers import RUNNER
from validation.studies import Setting, draw, frames


def _cli(*args: str) -> str:
    result = RUNNER.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def _kappa_table(seed: int, prompts: int, path: Path, setting: Setting) -> None:
    _, r, _, gr, clusters = draw(setting, np.random.default_rng(seed), n_prompts=prompts)
    table = pd.DataFrame({"id": [f"i{i}" for i in range(clusters.size)], "prompt_id": [f"q{c}" for c in clusters], "prompt": "x",
                          "human": r.max(axis=1), "grader": gr.max(axis=1)})
    write_pairs(table, path)


def test_select_picks_whole_clusters_and_writes_its_design(cli: CliRunner, tmp_path: Path) -> None:
    setting = Setting(n_prompts=60)
    p, r, gp, gr, clusters = draw(setting, np.random.default_rng(1))
    graded, _ = frames(p, r, gp, gr, clusters, setting.per)
    write_pairs(graded, tmp_path / "graded.jsonl")
    _cli("select", str(tmp_path / "graded.jsonl"), "--budget", "12", "--strategy", "stratified", "-o", str(tmp_path / "picks.csv"))
    picks = pd.read_csv(tmp_path / "picks.csv")
    assert picks["prompt_id"].nunique() == 12 and len(picks) == 12 * setting.per  # never half a cluster
    assert picks.groupby("prompt_id")["inclusion_probability"].nunique().max() == 1
    design = json.loads((tmp_path / "picks.design.json").read_text())
    assert design["strategy"] == "stratified" and design["n_picked_clusters"] == 12
    flagged, quiet = design["strata"]["flagged"], design["strata"]["quiet"]
    assert flagged[0] + quiet[0] == 12 and flagged[1] + quiet[1] == 60
    assert design["inclusion_max"] == pytest.approx(2 * design["inclusion_min"])
    # active without the grader's uncertainty falls back, and says so
    output = _cli("select", str(tmp_path / "graded.jsonl"), "--budget", "12", "--strategy", "active", "--json",
                  "-o", str(tmp_path / "active.jsonl"))
    assert json.loads(output)["strategy"] == "stratified" and json.loads(output)["requested"] == "active"
    result = cli.invoke(app, ["select", str(tmp_path / "graded.jsonl"), "--budget", "61", "-o", str(tmp_path / "x.jsonl")])
    assert result.exit_code == 2 and "--budget 61" in result.output and not (tmp_path / "x.jsonl").exists()


def test_plan_errors_name_the_flag(cli: CliRunner, tmp_path: Path) -> None:
    _kappa_table(3, 20, tmp_path / "pilot.jsonl", Setting(per=2))
    for args, message in ((["--gold", "human", "--pred", "grader"], "give --target-width"),
                          (["--gold", "human", "--pred", "grader", "--metric", "escalation", "--sizes", "100"], "both sides"),
                          (["--gold", "human", "--sizes", "100"], "--gold and --pred go together"),
                          (["--gold", "human", "--pred", "grader", "--sizes", "ten"], "--sizes 'ten'")):
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
