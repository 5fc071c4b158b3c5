"""A plan never reads a degenerate simulated study as narrow, and never recommends fewer than 10 clusters."""

from __future__ import annotations

import numpy as np

from harness.analysis.pilots import pilot_from_labels
from harness.analysis.planning import MIN_CLUSTERS, plan, simulate


def _pilot(errors: int, clusters: int = 60) -> object:
    """A κ pilot of ``clusters`` clusters of two items, the grader wrong on one item of the first ``errors`` clusters."""
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
