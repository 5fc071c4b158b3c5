"""Soft labels by proper scoring rules: the raters' true distribution scores best, the verdict is compared like for like."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss, log_loss

from harness.analysis.soft_labels import item_scores

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
    assert means[1] == pytest.approx(brier_score_loss(truth, np.asarray(forecast), labels=[0, 1, 2, 3], sample_weight=weight))
