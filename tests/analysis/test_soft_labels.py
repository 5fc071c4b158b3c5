"""Soft labels by proper scoring rules: the raters' true distribution scores best, the verdict is compared like for
like."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss, log_loss
from typer.testing import CliRunner

from harness.analysis.soft_labels import item_scores
from harness.cli.app import app
from tests.helpers import SAMPLE

RATERS = [0] * 9 + [1]  # ten raters, their labels in the proportion of a true (0.9, 0.1) distribution


def test_the_true_distribution_beats_its_own_verdict_and_a_sharper_forecast() -> None:
    truth = item_scores(np.array([0.9, 0.1, 0.0, 0.0]), 0, RATERS)
    sharp = item_scores(np.array([0.999, 0.001, 0.0, 0.0]), 0, RATERS)  # where the Jensen–Shannon distance was smallest
    assert truth[:2] == pytest.approx([0.9 * -np.log(0.9) + 0.1 * -np.log(0.1), 0.9 * 0.02 + 0.1 * 1.62])
    assert truth[2:4] == pytest.approx([0.1 * -np.log(1e-6), 0.1 * 2])  # the verdict: certain, wrong once in ten
    assert truth[0] < sharp[0] < truth[2] and truth[1] < sharp[1] < truth[3]


def test_an_annotator_is_scored_as_a_forecast_of_another_annotator() -> None:
    scores = item_scores(np.full(4, 0.25), 1, [0, 0, 1])
    # ordered pairs (s, r): (0,0) right, (0,1)/(1,0) right, the four pairs with the third rater wrong: 4 of 6 wrong
    assert scores[4:] == pytest.approx([4 / 6 * -np.log(1e-6), 4 / 6 * 2])
    assert scores[2:4] == pytest.approx([2 / 3 * -np.log(1e-6), 2 / 3 * 2])  # verdict 1 against 0, 0, 1


def test_the_scores_equal_scikit_learns_on_every_held_out_label() -> None:
    rng = np.random.default_rng(3)
    rows, truth, forecast, weight = [], [], [], []
    for _ in range(50):
        p = rng.dirichlet(np.ones(4))
        labels = list(rng.integers(0, 4, int(rng.integers(2, 6))))
        rows.append(item_scores(p, int(np.argmax(p)), labels))
        truth += labels
        forecast += [p] * len(labels)
        weight += [1 / len(labels)] * len(labels)
    means = np.mean(rows, axis=0)
    assert means[0] == pytest.approx(log_loss(truth, forecast, labels=[0, 1, 2, 3], sample_weight=weight))
    assert means[1] == pytest.approx(
        brier_score_loss(truth, np.asarray(forecast), labels=[0, 1, 2, 3], sample_weight=weight)
    )


@pytest.mark.slow
def test_soft_labels_score_the_graders_probabilities_against_the_raters(cli: CliRunner, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import numpy as np
    from sklearn.metrics import brier_score_loss, log_loss

    ratings = SAMPLE.parent / "sample_ratings.jsonl"
    run = tmp_path / "run"
    graded = cli.invoke(
        app,
        [
            "grade",
            str(SAMPLE),
            "--base-url",
            server.base_url,
            "--logprobs",
            "-o",
            str(run),
            "--quiet",
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
    )
    assert graded.exit_code == 0, graded.output
    result = cli.invoke(app, ["calibrate", str(run), "--human", str(SAMPLE), "--raters", "ann1,ann2,ann3", "--ratings",
                                 str(ratings), "--n-boot", "200", "--json"])
    assert result.exit_code == 0, result.output
    soft = json.loads(result.stdout)["soft_labels"]["response"]
    # the grader's scores recomputed with scikit-learn: every (item, rater) a row, weighted 1/raters so items count once
    records = {r["id"]: r for r in map(json.loads, (run / "labels.jsonl").read_text().splitlines())
               if r["target"] == "response" and r["status"] == "ok" and r.get("probabilities")}
    truth, forecast, verdict, weight = [], [], [], []
    for row in map(json.loads, ratings.read_text().splitlines()):
        for category in ("hate", "sexual", "violence", "self_harm"):
            labels = [int(v) for v in (row.get(f"ann{k}_response_{category}") for k in (1, 2, 3)) if v is not None]
            if row["id"] not in records or len(labels) < 2:
                continue
            p = np.asarray(records[row["id"]]["probabilities"][category], dtype=float)
            for label in labels:
                truth.append(label)
                forecast.append(p / p.sum())
                verdict.append(np.eye(4)[records[row["id"]]["severity"][category]])
                weight.append(1 / len(labels))
    assert soft["n"] == pytest.approx(sum(weight))
    scores = {"grader": np.asarray(forecast), "verdict": np.asarray(verdict)}
    for name, given in scores.items():
        assert soft[name]["brier"] == pytest.approx(
            brier_score_loss(truth, given, labels=[0, 1, 2, 3], sample_weight=weight)
        )
    floored = np.clip(scores["grader"], 1e-6, None)
    assert soft["grader"]["log_loss"] == pytest.approx(log_loss(truth, floored / floored.sum(axis=1, keepdims=True),
                                                                labels=[0, 1, 2, 3], sample_weight=weight), abs=1e-4)
    lo, hi = soft["grader"]["brier_ci"]
    assert lo <= soft["grader"]["brier"] <= hi
    assert soft["probabilities_minus_verdict"]["brier"] == pytest.approx(
        soft["grader"]["brier"] - soft["verdict"]["brier"]
    )
    shown = cli.invoke(app, ["calibrate", str(run), "--human", str(SAMPLE), "--raters", "ann1,ann2,ann3", "--ratings",
                                str(ratings), "--n-boot", "0"]).output
    assert "Soft labels" in shown and "one annotator's label" in shown
