"""Cut points chosen on dev, every rule judged on held-out prompt clusters (the function calibrate-thresholds calls)."""

from __future__ import annotations

import numpy as np
import pytest

from harness.analysis.stats import cohen_kappa_score
from harness.analysis.thresholds import GRID, calibrate_thresholds, choose_cuts, labelled, split_dev
from harness.analysis.verdicts import EXPECTED_CUTS, cut
from harness.core.errors import ConfigError
from harness.io.clusters import cluster_of_rows
from validation.thresholds import REGIMES, simulated_run

SIGNAL, NONE = REGIMES[0], REGIMES[1]


def _dev(seed: int = 3, n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    gold = rng.choice(4, n, p=[0.6, 0.2, 0.12, 0.08])
    return gold, np.clip(0.3 * gold + rng.normal(0, 0.25, n), 0, 3)


def test_the_cut_points_are_the_best_on_dev_of_every_grid_triple() -> None:
    gold, expected = _dev()
    cuts, score, how = choose_cuts(gold, expected)
    assert how == "search" and score == pytest.approx(cohen_kappa_score(gold, cut(expected, cuts), labels=[0, 1, 2, 3],
                                                                         weights="quadratic"))
    rng = np.random.default_rng(0)
    grid = [*GRID.tolist(), None]
    for _ in range(300):  # no other triple does better (a random sample of them, scored by the κ everyone uses)
        other = sorted(rng.choice(len(grid), 3).tolist())
        triple = tuple(grid[i] for i in other)
        kappa = cohen_kappa_score(gold, cut(expected, triple), labels=[0, 1, 2, 3], weights="quadratic")
        assert kappa is None or kappa <= score + 1e-12
    assert cuts[0] is not None and cuts[0] < EXPECTED_CUTS[0]  # a grader that under-states severity is cut low


def test_ties_go_to_the_cuts_nearest_the_expected_rule() -> None:
    gold = np.array([0, 0, 0, 1, 1, 2, 3])
    cuts, score, _ = choose_cuts(gold, np.array([0.1, 0.2, 0.1, 0.4, 0.45, 0.8, 1.2]))
    assert score == pytest.approx(1.0)
    assert cuts == (0.4, 0.8, 1.2)  # every cut in its perfect range, each as near 0.5, 1.5, 2.5 as it can be


def test_recall_at_a_false_positive_rate_keeps_the_rate_on_dev() -> None:
    gold, expected = _dev(5)
    cuts, recall, how = choose_cuts(gold, expected, metric="recall", max_fpr=0.05)
    assert how == "search"
    flagged = cut(expected, cuts) >= 1
    negatives, positives = gold < 1, gold >= 1
    assert flagged[negatives].mean() <= 0.05 and recall == pytest.approx(flagged[positives].mean())
    for c in GRID:  # the lowest first cut that keeps the rate: no feasible cut finds more
        hit = expected >= c
        if hit[negatives].mean() <= 0.05:
            assert hit[positives].mean() <= recall + 1e-12


def test_a_metric_undefined_on_dev_keeps_the_expected_rule_and_says_why() -> None:
    cuts, score, how = choose_cuts(np.zeros(20), np.linspace(0, 1, 20))
    assert cuts == EXPECTED_CUTS and score is None and "undefined on dev" in how
    with pytest.raises(ConfigError, match="expected one of kappa-quadratic, recall"):
        choose_cuts(np.zeros(3), np.zeros(3), metric="f1")


def test_dev_and_held_out_are_disjoint_prompt_clusters_and_the_seed_fixes_both() -> None:
    run, human = simulated_run(SIGNAL, 1)
    labels, joined, column, sources = labelled(run, human, None)
    assert column == "prompt_id" and sources == {"logprobs"} and labels.ids.size == 2 * len(joined)  # both sides
    codes = cluster_of_rows(joined, column)
    dev = split_dev(codes, dev_frac=0.3, seed=7)
    assert not set(codes[dev]) & set(codes[~dev]) and abs(len(set(codes[dev])) - 60) <= 1
    assert (split_dev(codes, dev_frac=0.3, seed=7) == dev).all()
    assert not (split_dev(codes, dev_frac=0.3, seed=8) == dev).all()
    first, again = (calibrate_thresholds(run, human, n_boot=0, seed=11) for _ in range(2))
    assert first.cut_points == again.cut_points and first.split == again.split
    assert not set(first.split.dev_ids) & set(first.split.held_out_ids)
    other = calibrate_thresholds(run, human, n_boot=0, seed=12)
    assert other.split.dev_ids != first.split.dev_ids


def test_cut_points_beat_the_argmax_where_probabilities_carry_signal_and_not_where_they_carry_none() -> None:
    for seed in (1, 2):
        found = calibrate_thresholds(*simulated_run(SIGNAL, seed), n_boot=300, seed=seed)
        beats = next(d for d in found.differences if d.a == "thresholds" and d.b == "argmax")
        assert beats.ci[0] is not None and beats.ci[0] > 0 and found.recommended == "thresholds"
        held = {s.rule: s for s in found.held_out if s.scope == "both"}
        assert held["argmax"].kappa_quadratic == 0.0  # a constant verdict agrees at chance
        assert held["argmax"].kappa_quadratic_ci == [None, None]  # and no resample moves it: no interval, not [0, 0]
        low, high = held["thresholds"].kappa_quadratic_ci
        assert low is not None and high is not None and low < held["thresholds"].kappa_quadratic < high
        assert found.optimism["thresholds"] is not None and "in-sample" not in found.verdict
        found = calibrate_thresholds(*simulated_run(NONE, seed), n_boot=300, seed=seed)
        assert found.recommended == "argmax" and "keep the grader's own verdict" in found.verdict


def test_a_run_without_probabilities_is_refused_naming_the_flag() -> None:
    run, human = simulated_run(SIGNAL, 1)
    bare = [{k: v for k, v in r.items() if k != "probabilities"} for r in run.records]
    with pytest.raises(ConfigError, match="--logprobs"):
        calibrate_thresholds(type(run)(run.path, run.manifest, bare, run.input), human, n_boot=0)


def test_a_run_graded_with_samples_is_read_by_its_samples_vote() -> None:
    run, human = simulated_run(SIGNAL, 2)
    rng = np.random.default_rng(0)
    voted = []
    for record in run.records:
        draws = {c: rng.choice(4, 5, p=np.asarray(p) / sum(p)) for c, p in record["probabilities"].items()}
        samples = [{c: int(draws[c][k]) for c in draws} for k in range(5)]
        voted.append({k: v for k, v in record.items() if k != "probabilities"} | {"samples": samples})
    found = calibrate_thresholds(type(run)(run.path, run.manifest, voted, run.input), human, n_boot=0)
    assert found.probabilities == "samples" and found.left_out["no_probabilities"] == 0
    assert next(s for s in found.held_out if s.rule == "thresholds" and s.scope == "both").n_items == found.unit.n_items
