"""Calibration error of a grader's probabilities: coverage of its intervals and the size of the calibration test.

Each study draws 400 (pair, category) forecasts in 100 prompt clusters; the truth is each forecast's real probability
p (uniform), the forecast is p itself (calibrated) or p pushed to the extremes on the logit scale (over-confident).
The true RMS calibration error of the ten-bin diagram is computed on 2 million draws. Each study runs
harness.analysis.reliability.side_reliability, the function `harness calibrate` calls on a run graded with --logprobs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.analysis.reliability import BINS, side_reliability

REGIMES = (("calibrated", 1.0), ("mildly over-confident (logit x 1.3)", 1.3), ("over-confident (logit x 2)", 2.0))
ITEMS, CLUSTERS, N_BOOT = 400, 100, 300


def _forecast(p: np.ndarray, stretch: float) -> np.ndarray:
    return p if stretch == 1.0 else 1 / (1 + np.exp(-stretch * np.log(p / (1 - p))))


def _truth(stretch: float) -> tuple[float, float]:
    """The true RMS and mean-absolute calibration error of the ten-bin diagram."""
    rng = np.random.default_rng(0)
    p = rng.random(2_000_000)
    f = _forecast(p, stretch)
    which = np.minimum((f * BINS).astype(int), BINS - 1)
    squared = absolute = 0.0
    for b in range(BINS):
        member = which == b
        if member.any():
            gap = f[member].mean() - p[member].mean()
            squared += member.mean() * gap**2
            absolute += member.mean() * abs(gap)
    return float(np.sqrt(squared)), absolute


def ece_coverage(replicates: int) -> list[dict[str, Any]]:
    out = []
    for name, stretch in REGIMES:
        rms, absolute = _truth(stretch)
        covered = plug_covered = rejected = 0
        for r in range(replicates):
            rng = np.random.default_rng([7, r])
            p = rng.random(ITEMS)
            outcome = (rng.random(ITEMS) < p).astype(float)
            found = side_reliability(_forecast(p, stretch), outcome, np.repeat(np.arange(CLUSTERS), ITEMS // CLUSTERS),
                                     n_boot=N_BOOT, seed=r)
            lo, hi = found.ece_debiased_ci
            covered += lo is not None and hi is not None and lo <= rms + 1e-12 <= hi
            plo, phi = found.ece_ci
            plug_covered += plo is not None and phi is not None and plo <= absolute + 1e-12 <= phi
            rejected += found.calibration_p is not None and found.calibration_p < 0.05
        share = lambda k: k / replicates
        out.append({"regime": name, "truth_rms": rms, "truth_ece": absolute, "coverage": share(covered),
                    "plug_in_coverage": share(plug_covered), "rejects_calibrated": share(rejected),
                    "mc_error": float(np.sqrt(0.95 * 0.05 / replicates)), "replicates": replicates})
        print(f"ece {name}: coverage {out[-1]['coverage']:.3f}, plug-in {out[-1]['plug_in_coverage']:.3f}, "
              f"rejects {out[-1]['rejects_calibrated']:.3f}", flush=True)
    return out
