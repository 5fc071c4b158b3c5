"""The reliability of a grader's probabilities on clustered data: a prompt's copies in several pairs count once."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from harness.analysis.reliability import reliability, side_reliability
from harness.cli.app import app
from harness.grading.grade import GradeSpec, grade
from harness.io.pairs import load_pairs, write_pairs
from harness.io.runs import read_labels
from tests.helpers import SAMPLE, endpoint_for

CATEGORIES = ("hate", "sexual", "violence", "self_harm")


def _joined(
    prompts: int, per: int, seed: int = 0
) -> tuple[pd.DataFrame, dict[tuple[str, str], dict[str, list[float]]]]:
    """Pairs whose prompt side repeats its prompt's forecast and label ``per`` times; the response side is each
    pair's."""
    rng = np.random.default_rng(seed)
    n = prompts * per
    frame = pd.DataFrame({"id": [f"i{i}" for i in range(n)], "prompt": [f"p{i // per}" for i in range(n)],
                          "prompt_id": [f"q{i // per}" for i in range(n)]})
    prompt_p = np.repeat(rng.random((prompts, 4)), per, axis=0)
    prompt_y = np.repeat(rng.integers(0, 2, (prompts, 4)), per, axis=0)
    response_p, response_y = rng.random((n, 4)), rng.integers(0, 2, (n, 4))
    forecasts = {}
    for j, c in enumerate(CATEGORIES):
        frame[f"prompt_{c}"], frame[f"response_{c}"] = prompt_y[:, j], response_y[:, j]
    for i in range(n):
        for side, p in (("prompt", prompt_p), ("response", response_p)):
            forecasts[(f"i{i}", side)] = {c: [1 - p[i, j], p[i, j], 0.0, 0.0] for j, c in enumerate(CATEGORIES)}
    return frame, forecasts


def test_a_prompts_copies_count_once_on_the_prompt_side_only() -> None:
    frame, forecasts = _joined(prompts=40, per=3)
    codes = np.repeat(np.arange(40), 3)
    found = reliability(frame, forecasts, codes, threshold=1, n_boot=100, seed=1)
    assert found["prompt"].n == 40 * 4 and found["prompt"].copies_merged == 40 * 4 * 2
    assert found["response"].n == 120 * 4 and found["response"].copies_merged is None
    # the prompt side is exactly the reliability of one forecast per prompt and category
    first = frame.iloc[::3]
    forecast = np.array([forecasts[(i, "prompt")][c][1] for i in first["id"] for c in CATEGORIES])
    outcome = np.array([float(first.set_index("id").loc[i, f"prompt_{c}"]) for i in first["id"] for c in CATEGORIES])
    alone = side_reliability(forecast, outcome, np.repeat(np.arange(40), 4), n_boot=100, seed=1)
    assert found["prompt"].ece == pytest.approx(alone.ece) and found["prompt"].calibration_p == alone.calibration_p
    assert found["prompt"].ece_debiased == pytest.approx(alone.ece_debiased)
    assert "count once" in (found["prompt"].calibration_test or "")


def test_copies_that_differ_in_label_are_both_kept() -> None:
    frame, forecasts = _joined(prompts=10, per=2)
    frame.loc[1, "prompt_hate"] = 1 - frame.loc[0, "prompt_hate"]  # the second pair's human disagrees on one category
    found = reliability(frame, forecasts, np.repeat(np.arange(10), 2), threshold=1, n_boot=0, seed=1)
    assert found["prompt"].n == 10 * 4 + 1 and found["prompt"].copies_merged == 10 * 4 - 1


def test_a_calibrated_grader_is_rejected_near_the_tests_size_with_three_pairs_a_prompt() -> None:
    """40 studies of 100 prompts x 3 pairs, the forecasts the truth: before copies counted once, about 30 rejected."""
    rejected = 0
    for seed in range(40):
        rng = np.random.default_rng([99, seed])
        frame, forecasts = _joined(prompts=100, per=3, seed=seed)
        p = np.array([[forecasts[(f"i{3 * k}", "prompt")][c][1] for c in CATEGORIES] for k in range(100)])
        truth = np.repeat((rng.random((100, 4)) < p).astype(int), 3, axis=0)
        for j, c in enumerate(CATEGORIES):
            frame[f"prompt_{c}"] = truth[:, j]
        found = reliability(frame, forecasts, np.repeat(np.arange(100), 3), threshold=1, n_boot=1, seed=seed)
        rejected += (found["prompt"].calibration_p or 1) < 0.05
    assert rejected <= 6


def few_pairs(tmp_path: Path, n: int = 12) -> Path:
    return write_pairs(load_pairs(SAMPLE).head(n), tmp_path / "small.jsonl")


def test_calibrate_shows_the_reliability_of_the_probabilities(cli: CliRunner, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = few_pairs(tmp_path, 30)
    grade(data, GradeSpec(logprobs=True), endpoint_for(server), run_dir=tmp_path / "run")
    result = cli.invoke(app, ["calibrate", str(tmp_path / "run"), "--human", str(data), "--n-boot", "100"])
    assert result.exit_code == 0, result.output
    assert "Reliability of the grader's probabilities" in result.output
    found = json.loads((tmp_path / "run" / "calibration.json").read_text())["reliability"]["response"]
    human = load_pairs(data).set_index("id")
    forecasts, outcomes = [], []
    for record in read_labels(tmp_path / "run"):
        if record["target"] == "response" and record["status"] == "ok":
            for category in CATEGORIES:
                forecasts.append(sum(record["probabilities"][category][1:]))
                outcomes.append(float(human.loc[record["id"], f"response_{category}"] >= 1))
    assert found["n"] == len(forecasts) == 120
    gaps = Counter()  # per bin: forecast sum minus outcome sum
    for f, o in zip(forecasts, outcomes, strict=True):
        gaps[min(int(f * 10), 9)] += f - o
    assert found["ece"] == pytest.approx(sum(abs(g) for g in gaps.values()) / len(forecasts))
    assert found["brier"] == pytest.approx(
        sum((f - o) ** 2 for f, o in zip(forecasts, outcomes, strict=True)) / len(forecasts)
    )
