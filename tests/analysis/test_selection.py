"""Picks of whole prompt clusters: the stated inclusion probabilities, stratified and active picks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.analysis.selection import capped, systematic
from harness.io.pairs import write_pairs
from tests.helpers import cli_stdout
from validation.studies import Setting, draw, frames, population_truth


def _pick_and_label(graded: pd.DataFrame, human: pd.DataFrame, folder: Path, strategy: str, seed: int) -> Path:
    write_pairs(graded, folder / "graded.jsonl")
    cli_stdout("select", str(folder / "graded.jsonl"), "--budget", "100", "--strategy", strategy, "--seed", str(seed),
         "-o", str(folder / "picks.jsonl"))
    picks = pd.read_json(folder / "picks.jsonl", lines=True)
    truth = human.set_index("id")
    for column in [c for c in picks.columns if c.startswith(("prompt_", "response_")) and c != "prompt_id"]:
        assert picks[column].isna().all()  # annotators label blind
        picks[column] = picks["id"].map(truth[column])
    return write_pairs(picks, folder / "labelled.jsonl")


@pytest.mark.slow  # a simulation (20 studies through the CLI): make test runs it, make test-fast does not
def test_a_stratified_pick_covers_the_escalation_share_as_a_uniform_one(tmp_path: Path) -> None:
    """20 held-back studies, 100 prompt clusters labelled each: covered in at least 17, mean width within 1.1×
    uniform's."""
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
            cli_stdout(
                "analyze",
                str(folder / "graded.jsonl"),
                "--human",
                str(labelled),
                "--n-boot",
                "500",
                "-o",
                str(folder / "out"),
            )
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


def test_active_pick_follows_the_recorded_uncertainty(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from harness.grading.grade import GradeSpec, grade
    from harness.io.pairs import load_pairs
    from tests.helpers import SAMPLE, endpoint_for

    data = write_pairs(load_pairs(SAMPLE).head(60), tmp_path / "d.jsonl")
    grade(data, GradeSpec(logprobs=True), endpoint_for(server), run_dir=tmp_path / "run")
    output = cli_stdout(
        "select",
        str(tmp_path / "run"),
        "--budget",
        "8",
        "--strategy",
        "active",
        "--json",
        "-o",
        str(tmp_path / "p.jsonl"),
    )
    design = json.loads(output)
    assert design["strategy"] == "active" and "requested" not in design
    assert design["inclusion_max"] > design["inclusion_min"]
