"""The label budget through the CLI: ``harness plan`` sizes a labelling round from a pilot, ``harness select``
picks whole prompt clusters with known inclusion probabilities, and ``analyze``/``calibrate`` weight them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score
from typer.testing import CliRunner

from harness.analysis.selection import capped, systematic
from harness.cli.app import app
from harness.io.pairs import write_pairs
from tests.helpers import RUNNER
from validation.studies import Setting, draw, frames, population_truth


def _cli(*args: str) -> str:
    result = RUNNER.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def _kappa_table(seed: int, prompts: int, path: Path, setting: Setting) -> None:
    _, r, _, gr, clusters = draw(setting, np.random.default_rng(seed), n_prompts=prompts)
    table = pd.DataFrame({"id": [f"i{i}" for i in range(clusters.size)], "prompt_id": [f"q{c}" for c in clusters], "prompt": "x",
                          "human": r.max(axis=1), "grader": gr.max(axis=1)})
    write_pairs(table, path)


@pytest.mark.parametrize("seed", [2001, 2002, 2003])
@pytest.mark.slow
def test_plan_from_an_80_item_pilot_names_a_size_that_reaches_the_target(tmp_path: Path, seed: int) -> None:
    """Held-back populations: the realised κ interval at the planned size is within 30 % of the 0.10 target."""
    setting = Setting(per=2, rho=0.4)
    _kappa_table(seed, 40, tmp_path / "pilot.jsonl", setting)
    output = _cli("plan", str(tmp_path / "pilot.jsonl"), "--gold", "human", "--pred", "grader", "--metric", "kappa",
                  "--target-width", "0.10", "--studies", "100", "--json", "-o", str(tmp_path / "plan.json"))
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert json.loads(output)["n_items"] == plan["n_items"]
    assert plan["pilot"] == {"cluster": "prompt_id", "n_items": 80, "n_clusters": 40}
    assert plan["n_items_conservative"] >= plan["n_items"] > 80
    widths = []
    for k in range(3):
        _kappa_table(10 * seed + k, plan["n_items"] // 2, tmp_path / "real.jsonl", setting)
        _cli("calibrate", str(tmp_path / "real.jsonl"), "--gold", "human", "--pred", "grader", "--n-boot", "1000",
             "-o", str(tmp_path / "cal"))
        found = json.loads((tmp_path / "cal" / "calibration_human_vs_grader.json").read_text())
        widths.append(found["ci"]["kappa"][1] - found["ci"]["kappa"][0])
    assert 0.07 <= float(np.mean(widths)) <= 0.13, widths


def _pick_and_label(graded: pd.DataFrame, human: pd.DataFrame, folder: Path, strategy: str, seed: int) -> Path:
    write_pairs(graded, folder / "graded.jsonl")
    _cli("select", str(folder / "graded.jsonl"), "--budget", "100", "--strategy", strategy, "--seed", str(seed),
         "-o", str(folder / "picks.jsonl"))
    picks = pd.read_json(folder / "picks.jsonl", lines=True)
    truth = human.set_index("id")
    for column in [c for c in picks.columns if c.startswith(("prompt_", "response_")) and c != "prompt_id"]:
        assert picks[column].isna().all()  # annotators label blind
        picks[column] = picks["id"].map(truth[column])
    return write_pairs(picks, folder / "labelled.jsonl")


@pytest.mark.slow  # a simulation (20 studies through the CLI): make test runs it, make test-fast does not
def test_a_stratified_pick_covers_the_escalation_share_as_a_uniform_one(tmp_path: Path) -> None:
    """20 held-back studies, 100 prompt clusters labelled each: covered in at least 17, mean width within 1.1× uniform's."""
    setting = Setting(rho=0.4)
    truth = population_truth(setting)["escalation"]
    results: dict[str, list[tuple[bool, float]]] = {"uniform": [], "stratified": []}
    for seed in range(500, 520):
        p, r, gp, gr, clusters = draw(setting, np.random.default_rng(seed))
        graded, human = frames(p, r, gp, gr, clusters, setting.per)
        for strategy, found in results.items():
            folder = tmp_path / f"{strategy}{seed}"
            folder.mkdir()
            labelled = _pick_and_label(graded, human, folder, strategy, seed)
            _cli("analyze", str(folder / "graded.jsonl"), "--human", str(labelled), "--n-boot", "500", "-o", str(folder / "out"))
            corrected = json.loads((folder / "out" / "analysis.json").read_text())["corrected"]
            assert corrected["design"].startswith("inclusion probabilities given")
            low, high = corrected["corrected_ci"]["escalation"]
            found.append((low <= truth <= high, high - low))
    covered = {s: sum(c for c, _ in rows) for s, rows in results.items()}
    width = {s: float(np.mean([w for _, w in rows])) for s, rows in results.items()}
    assert covered["stratified"] >= 17 and covered["uniform"] >= 17, covered
    assert width["stratified"] <= 1.1 * width["uniform"], width


def test_systematic_pick_has_the_stated_inclusion_probabilities() -> None:
    rng = np.random.default_rng(4)
    pi = capped(rng.random(40) + 0.05, 8)
    assert pi.sum() == pytest.approx(8) and pi.max() <= 1
    hits = sum(systematic(pi, np.random.default_rng(s)).astype(float) for s in range(8000))
    assert np.abs(hits / 8000 - pi).max() < 0.02
    assert all(systematic(pi, np.random.default_rng(s)).sum() == 8 for s in range(50))


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


def test_active_pick_follows_the_recorded_uncertainty(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from harness.grading.grade import GradeSpec, grade
    from harness.io.pairs import load_pairs
    from tests.helpers import SAMPLE, endpoint_for

    data = write_pairs(load_pairs(SAMPLE).head(60), tmp_path / "d.jsonl")
    grade(data, GradeSpec(logprobs=True), endpoint_for(server), run_dir=tmp_path / "run")
    output = _cli("select", str(tmp_path / "run"), "--budget", "8", "--strategy", "active", "--json", "-o", str(tmp_path / "p.jsonl"))
    design = json.loads(output)
    assert design["strategy"] == "active" and "requested" not in design
    assert design["inclusion_max"] > design["inclusion_min"]


def test_calibrate_weights_by_inclusion_probability_as_scikit_learn(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    n = 120
    human = rng.integers(0, 3, n)
    grader = np.where(rng.random(n) < 0.7, human, rng.integers(0, 3, n))
    pi = rng.choice([0.2, 0.5, 1.0], n)
    table = pd.DataFrame({"id": [f"i{i}" for i in range(n)], "prompt": [f"p{i}" for i in range(n)], "human": human, "grader": grader})
    from harness.analysis.agreement import agreement

    found = agreement(human, grader, labels=[0, 1, 2], threshold=1, weights=1 / pi, n_boot=200)
    assert found.kappa == pytest.approx(cohen_kappa_score(human, grader, sample_weight=1 / pi))
    assert found.kappa_quadratic == pytest.approx(cohen_kappa_score(human, grader, weights="quadratic", sample_weight=1 / pi))
    assert found.confusion == pd.crosstab(table["human"], table["grader"]).to_numpy().tolist()  # counts stay the labelled ones
    unweighted = agreement(human, grader, labels=[0, 1, 2], threshold=1, n_boot=0)
    assert unweighted.kappa != found.kappa


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


def test_plan_for_the_corrected_escalation_share(tmp_path: Path) -> None:
    setting = Setting(n_prompts=200)
    p, r, gp, gr, clusters = draw(setting, np.random.default_rng(5))
    graded, human = frames(p, r, gp, gr, clusters, setting.per)
    from validation.simulate import write_run_folder

    write_run_folder(tmp_path / "run", graded, human)
    subset = human[np.isin(clusters, np.arange(30))]
    write_pairs(subset, tmp_path / "subset.jsonl")
    _cli("plan", str(tmp_path / "run"), "--human", str(tmp_path / "subset.jsonl"), "--metric", "escalation", "--sizes", "120,600",
         "--studies", "40", "-o", str(tmp_path / "plan.json"))
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert plan["graded_clusters"] == 200 and plan["pilot"]["n_clusters"] == 30
    small, large = plan["sizes"]
    assert (small["n_clusters"], large["n_clusters"]) == (20, 100)
    assert large["width"] < small["width"]


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

