"""Stability intervals in simulation: repeats of a grader whose per-item flip probability is known.

Each study: 100 prompt clusters of 3 items; a cluster draws a flip probability f from {0, 0.1, 0.3} (items of a
prompt are alike); each of K = 3 repeats gives the item's base severity with probability 1 − f, else one of the other
three at random. The true share of items whose verdict is not the same in every repeat is
E[1 − (1 − f)^K − 3 (f/3)^K]. Each study runs harness.analysis.stability.stability, the function `harness stability`
calls, on the three repeats (response side only).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.analysis.stability import stability
from harness.io.runs import Run
from harness.results.manifest import Manifest

K, CLUSTERS, PER = 3, 100, 3
FLIPS = np.array([0.0, 0.1, 0.3])


def truth() -> float:
    f = FLIPS
    return float(np.mean(1 - (1 - f) ** K - 3 * (f / 3) ** K))


def _study(seed: int) -> tuple[float | None, list[Any]]:
    rng = np.random.default_rng([11, seed])
    n = CLUSTERS * PER
    f = np.repeat(rng.choice(FLIPS, size=CLUSTERS), PER)
    base = rng.integers(0, 4, n)
    frame = pd.DataFrame({"id": [f"i{i}" for i in range(n)], "prompt_id": [f"p{i // PER}" for i in range(n)],
                          "prompt": "p", "response": "r"})
    runs = []
    for k in range(K):
        flip = rng.random(n) < f
        other = (base + rng.integers(1, 4, n)) % 4
        verdict = np.where(flip, other, base)
        labels = [{"id": f"i{i}", "target": "response", "status": "ok",
                   "severity": {"hate": int(verdict[i]), "sexual": 0, "violence": 0, "self_harm": 0}} for i in range(n)]
        manifest = Manifest(model="sim", template_hash="t", shots_hash="s", status="complete", input_sha256="x",
                            params={"temperature": 0.7, "seed": k})
        runs.append(Run(Path(f"repeat-{k + 1}"), manifest, labels, frame))
    found = stability(runs, n_boot=300, seed=seed)
    scope = next(s for s in found.scopes if s.side == "response" and s.scope == "hate")
    return scope.changed, scope.changed_ci


def stability_coverage(replicates: int) -> dict[str, Any]:
    true = truth()
    covered = 0
    estimates = []
    for seed in range(replicates):
        value, (lo, hi) = _study(seed)
        estimates.append(value)
        covered += lo is not None and hi is not None and lo <= true <= hi
    out = {"truth": true, "coverage": covered / replicates, "bias": float(np.mean(estimates) - true), "replicates": replicates,
           "mc_error": float(np.sqrt(0.95 * 0.05 / replicates))}
    print(f"stability: {out}", flush=True)
    return out
