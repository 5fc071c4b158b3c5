"""A plan's size reaches its target on held-back populations, grows with the target, never reads a degenerate
simulated study as narrow, and never recommends fewer than 10 clusters."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from harness.analysis.pilots import pilot_from_labels
from harness.analysis.planning import MIN_CLUSTERS, plan, simulate
from harness.cli.app import app
from harness.io.pairs import write_pairs
from tests.helpers import cli_stdout, kappa_table, rare_positives
from validation.studies import Setting, draw, frames


def _pilot(errors: int, clusters: int = 60) -> object:
    """A κ pilot of ``clusters`` clusters of two items, the grader wrong on one item of the first ``errors``
    clusters."""
    gold = np.repeat(np.arange(clusters) % 4, 2).astype(float)
    pred = gold.copy()
    pred[: 2 * errors : 2] = (gold[: 2 * errors : 2] + 1) % 4
    return pilot_from_labels(gold, pred, np.repeat(np.arange(clusters), 2), metric="kappa", labels=[0, 1, 2, 3],
                             threshold=None, source="test", cluster="prompt_id")


def test_a_study_whose_resamples_all_agree_has_no_width() -> None:
    widths, _ = simulate(_pilot(errors=3), 3, studies=40, n_boot=50, seed=1)
    # at three clusters most studies hold no disagreement: κ 1 in every resample, no interval (was a width of 0)
    assert np.isnan(widths).sum() >= 20 and not (widths == 0).any()


def test_a_near_perfect_pilot_is_never_planned_below_ten_clusters() -> None:
    found = plan(_pilot(errors=8), target_width=0.6, studies=60, n_boot=100, seed=2)
    assert found.n_clusters is not None and found.n_clusters >= MIN_CLUSTERS  # zero widths read as narrow gave 3
    assert found.n_clusters_conservative is not None and found.n_clusters_conservative >= found.n_clusters
    assert min(s.n_clusters for s in found.sizes) >= MIN_CLUSTERS


def test_a_pilot_without_a_disagreement_gets_no_size_and_says_why_at_once() -> None:
    found = plan(_pilot(errors=0), target_width=0.1, studies=100, n_boot=100, seed=3)
    assert found.n_clusters is None and found.n_clusters_conservative is None
    assert any("in 100% of the populations the pilot allows, no resample moves the metric" in w for w in found.warnings)
    assert not any("no size tried reaches" in w for w in found.warnings)
    assert len(found.sizes) == 1  # one size tried, not a search to 24,000 clusters
    assert found.pilot_ci == [None, None] and found.pilot_width is None  # κ 1 in every resample: no interval


@pytest.mark.parametrize("seed", [2001, 2002, 2003])
@pytest.mark.slow
def test_plan_from_an_80_item_pilot_names_a_size_that_reaches_the_target(tmp_path: Path, seed: int) -> None:
    """Held-back populations: the realised κ interval at the planned size is within 30 % of the 0.10 target."""
    setting = Setting(per=2, rho=0.4)
    kappa_table(seed, 40, tmp_path / "pilot.jsonl", setting)
    output = cli_stdout(
        "plan",
        str(tmp_path / "pilot.jsonl"),
        "--gold",
        "human",
        "--pred",
        "grader",
        "--metric",
        "kappa",
        "--target-width",
        "0.10",
        "--studies",
        "100",
        "--json",
        "-o",
        str(tmp_path / "plan.json"),
    )
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert json.loads(output)["n_items"] == plan["n_items"]
    assert plan["pilot"] == {"cluster": "prompt_id", "n_items": 80, "n_clusters": 40}
    assert plan["n_items_conservative"] >= plan["n_items"] > 80
    widths = []
    for k in range(3):
        kappa_table(10 * seed + k, plan["n_items"] // 2, tmp_path / "real.jsonl", setting)
        cli_stdout("calibrate", str(tmp_path / "real.jsonl"), "--gold", "human", "--pred", "grader", "--n-boot", "1000",
             "-o", str(tmp_path / "cal"))
        found = json.loads((tmp_path / "cal" / "calibration_human_vs_grader.json").read_text())
        widths.append(found["ci"]["kappa"][1] - found["ci"]["kappa"][0])
    assert 0.07 <= float(np.mean(widths)) <= 0.13, widths


def test_plan_for_the_corrected_escalation_share(tmp_path: Path) -> None:
    setting = Setting(n_prompts=200)
    p, r, gp, gr, clusters = draw(setting, np.random.default_rng(5))
    graded, human = frames(p, r, gp, gr, clusters, setting.per)
    from validation.simulate import write_run_folder

    write_run_folder(tmp_path / "run", graded, human)
    subset = human[np.isin(clusters, np.arange(30))]
    write_pairs(subset, tmp_path / "subset.jsonl")
    cli_stdout(
        "plan",
        str(tmp_path / "run"),
        "--human",
        str(tmp_path / "subset.jsonl"),
        "--metric",
        "escalation",
        "--sizes",
        "120,600",
        "--studies",
        "40",
        "-o",
        str(tmp_path / "plan.json"),
    )
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert plan["graded_clusters"] == 200 and plan["pilot"]["n_clusters"] == 30
    small, large = plan["sizes"]
    assert (small["n_clusters"], large["n_clusters"]) == (20, 100)
    assert large["width"] < small["width"]


def test_plan_sizes_are_monotone_in_the_target_and_never_below_the_defined_floor(
    cli: CliRunner, tmp_path: Path
) -> None:
    pilot = rare_positives(tmp_path)
    recommended = []
    for width in (0.6, 0.4, 0.3):
        result = cli.invoke(app, ["plan", str(pilot), "--gold", "gold", "--pred", "pred", "--metric", "recall",
                                     "--target-width", str(width), "--studies", "60", "--n-boot", "100", "--json",
                                     "-o", str(tmp_path / f"plan-{width}.json")])
        assert result.exit_code == 0, result.output
        plan = json.loads(result.stdout)
        sizes = {s["n_clusters"]: s for s in plan["sizes"]}
        assert plan["n_clusters"] is not None and plan["n_clusters_conservative"] >= plan["n_clusters"]
        for key in ("n_clusters", "n_clusters_conservative"):
            chosen = sizes[plan[key]]
            assert chosen["undefined"] <= 0.05, (key, chosen)  # defined in nearly every simulated study
            assert plan[key] >= plan["defined_floor"]
        widths = [s["width"] for s in sorted(plan["sizes"], key=lambda s: s["n_clusters"]) if s["width"] is not None]
        assert widths == sorted(widths, reverse=True)  # the envelope never widens with more labels
        recommended.append(plan["n_clusters_conservative"])
        small = min(sizes)
        assert sizes[small]["undefined_studies"] > 0  # the undefined studies are counted, not dropped
        assert any("(no interval: counted as missing the target)" in w for w in plan["warnings"])
    assert recommended == sorted(recommended)  # a tighter target never gets a smaller size
