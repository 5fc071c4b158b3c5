"""Does a plan keep its promise? Pilots drawn from a known population, planned, then checked against fresh studies.

Each trial draws a pilot of 60 prompt clusters (two items each, sharing their human label) from a population where
a grader is right 70 % of the time on four severities; `harness plan`'s library call, at the CLI's defaults (its
studies and resamples per size), recommends the conservative size (assurance 0.9) for a κ interval 0.15 wide; then
fresh studies of that size are drawn from the population and their κ interval computed as `harness calibrate` does
(2,000 resamples). The pooled share of studies that reached the width is the plan's achieved assurance (stated 90 %).
A second population, a grader right 99 % of the time, checks that a near-perfect pilot is never planned on studies
whose bootstrap collapses to a zero width (its recommendation: at least 10 clusters).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.analysis.agreement import agreement
from harness.analysis.pilots import pilot_from_labels
from harness.analysis.planning import plan

TARGET, ASSURANCE, PER = 0.15, 0.9, 2
P_GOLD = np.array([0.6, 0.2, 0.12, 0.08])


def _draw(rng: np.random.Generator, clusters: int, right: float = 0.7) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    gold = np.repeat(rng.choice(4, size=clusters, p=P_GOLD), PER)
    wrong = rng.random(gold.size) >= right
    pred = np.where(wrong, (gold + rng.integers(1, 4, gold.size)) % 4, gold)
    return gold, pred, np.repeat(np.arange(clusters), PER)


def _pilot(args: tuple[int, int, float]) -> tuple[int | None, int, float | None]:
    """One pilot planned at the CLI's defaults, and how many of ``studies`` fresh studies of its size reached the width
    (with the smallest size the plan tried, to show the floor)."""
    from harness.core.constants import DEFAULT_N_BOOT
    from harness.steps.settings import PlanSettings

    trial, studies, right = args
    defaults = PlanSettings()
    gold, pred, codes = _draw(np.random.default_rng([29, trial]), 60, right)
    pilot = pilot_from_labels(gold.astype(float), pred.astype(float), codes, metric="kappa", labels=[0, 1, 2, 3],
                              threshold=None, source="simulated", cluster="prompt_id")
    found = plan(pilot, target_width=TARGET, studies=defaults.studies, n_boot=defaults.n_boot, seed=trial,
                 assurance=ASSURANCE)
    size = found.n_clusters_conservative
    if size is None:
        return None, 0, None
    reached = 0
    for study in range(studies):
        g, p, c = _draw(np.random.default_rng([31, trial, study]), size, right)
        low, high = agreement(g, p, ordinal=False, clusters=c, n_boot=DEFAULT_N_BOOT, seed=study).ci["kappa"]
        reached += low is not None and high is not None and high - low <= TARGET
    return size, reached, found.pilot_width


def plan_assurance(pilots: int = 60, studies: int = 30, *, right: float = 0.7, workers: int = 2) -> dict[str, Any]:
    """The share of fresh studies of the recommended size whose κ interval reaches the width (``right``: how often the
    population's grader is right)."""
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers) as pool:
        rows = list(pool.map(_pilot, [(trial, studies, right) for trial in range(pilots)]))
    planned = [(size, reached) for size, reached, _ in rows if size is not None]
    sizes = [size for size, _ in planned]
    shares = [reached / studies for _, reached in planned]
    out = {"pilots": pilots, "studies_per_pilot": studies, "right": right,
           "achieved": float(np.mean(shares)) if shares else None, "stated": ASSURANCE,
           "median_clusters": float(np.median(sizes)) if sizes else None,
           "smallest_clusters": min(sizes) if sizes else None,
           "planned": len(planned), "per_pilot_range": [min(shares), max(shares)] if shares else None,
           # the pilots, not the studies, are the independent draws: the standard error of the mean over pilots
           "mc_error": float(np.std(shares, ddof=1) / np.sqrt(len(shares))) if len(shares) > 1 else None}
    print(f"plan: {out}", flush=True)
    return out
