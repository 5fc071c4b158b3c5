"""The corrected transition shares add up: reduction, preservation and escalation share one λ."""

from __future__ import annotations

import numpy as np
import pytest

from harness.analysis.ppi import Design, ShareData, cluster_sums, draws, estimate, ratio, tuned_lambdas
from harness.analysis.shares import share_columns
from harness.analysis.transitions import analyze
from validation.studies import Setting, study

PARTITION = ("reduction", "preservation", "escalation")


def test_the_three_corrected_shares_add_up_to_one_pooled_and_per_group() -> None:
    graded, human = study(Setting(rho=0.4), 3, labelled_clusters=100)
    corrected = analyze(graded, human=human, by="model", n_boot=200, seed=3).corrected
    assert corrected is not None
    assert sum(corrected.corrected[s] for s in PARTITION) == pytest.approx(1.0, abs=1e-12)
    assert len({corrected.lambdas[s] for s in PARTITION}) == 1
    for group in corrected.groups.values():
        assert sum(group.corrected[s] for s in PARTITION) == pytest.approx(1.0, abs=1e-12)
    assert "one lambda for reduction, preservation and escalation" in corrected.method


def test_the_shared_lambda_is_the_one_that_minimises_the_summed_variance() -> None:
    """By hand: each share tuned alone gives its own λ and the three no longer add up; the shared λ lies between."""
    graded, human = study(Setting(rho=0.4), 5, labelled_clusters=100)
    columns = [f"{side}_{c}" for side in ("prompt", "response") for c in ("hate", "sexual", "violence", "self_harm")]
    labelled = graded["id"].isin(set(human["id"])).to_numpy()
    codes = graded["prompt_id"].astype("category").cat.codes.to_numpy()
    design = Design.of(labelled, codes)
    truth = human.set_index("id").reindex(graded["id"])[columns].fillna(0).to_numpy(dtype=int)
    grader = graded[columns].to_numpy(dtype=int)
    made, real = share_columns(grader[:, :4], grader[:, 4:]), share_columns(truth[:, :4], truth[:, 4:])
    sums = {s: cluster_sums(ShareData(made[s][0], made[s][1], real[s][0], real[s][1]), design) for s in PARTITION}
    ones = np.ones((1, design.n_clusters))
    alone = {s: float(tuned_lambdas(sums[s], ones)[0]) for s in PARTITION}
    assert max(alone.values()) - min(alone.values()) > 0.01  # tuned apart, they would not add up
    assert sum(float(ratio(sums[s].sum(axis=0), alone[s])) for s in PARTITION) != pytest.approx(1.0, abs=1e-4)
    counts = draws(design.n_clusters, n_boot=0, seed=1)
    together = [estimate(sums[s], counts, together=[sums[o] for o in PARTITION if o != s]) for s in PARTITION]
    assert min(alone.values()) <= together[0].lam <= max(alone.values())
    assert sum(e.value or 0.0 for e in together) == pytest.approx(1.0, abs=1e-12)
