"""Stability and probe intervals in simulation: repeats of a grader whose per-item flip probabilities are known.

A study draws prompt clusters; each cluster a sampling flip probability ``f`` (items of a prompt are alike) and, for a
probe, a probe flip probability ``g``. A repeat gives an item's base severity with probability 1 − f, else one of the
other three at random; the probed run is such a repeat moved to another level with probability ``g`` more. So the
truths are known in closed form: the share of items whose verdict is not the same in every one of K repeats, and the
probe's excess, P(original ≠ probed) − P(original ≠ unprobed repeat), each averaged over items. Each study runs the
functions the commands call on the simulated run folders: :func:`harness.analysis.stability.stability`
(``harness stability``) and :func:`harness.analysis.probes.probe_scopes` (``harness probe``, after its grading), on the
response side. Regimes where the interval's assumptions hold (many clusters) sit beside ones that break them: cluster
sizes from 1 to 12 with the flips leaning on size, temperature 0 with rare flips (the exact edge bound), and 6
clusters, where every command warns that the interval rests on fewer than 10.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.analysis.probes import probe_scopes
from harness.analysis.stability import stability
from harness.io.runs import Run
from harness.results.common import few_cluster_warnings
from harness.results.manifest import Manifest

LEVELS = 4


@dataclass(frozen=True)
class Regime:
    """One row of the table: what is measured, on how many clusters of which sizes, with which flip probabilities."""

    name: str
    instrument: str  # "stability" or "probe"
    clusters: int = 100
    sizes: tuple[int, ...] = (3,)  # items per cluster, drawn uniformly from these
    sampling: tuple[float, ...] = (0.0, 0.1, 0.3)  # f per cluster, drawn uniformly (0 everywhere: temperature 0)
    probing: tuple[float, ...] = (0.0, 0.1, 0.2)  # g per cluster, drawn uniformly
    repeats: int = 3
    lean: bool = False  # the flips lean on cluster size: the largest clusters draw the highest f and g

    @property
    def temperature(self) -> float:
        return 0.7 if any(self.sampling) else 0.0


REGIMES = (
    Regime("100 clusters of 3, K = 3", "stability"),
    Regime("100 clusters of 3, K = 2", "stability", repeats=2),
    Regime("80 clusters of 1 to 12 items, flips leaning on size", "stability", clusters=80, sizes=tuple(range(1, 13)),
           lean=True),
    Regime("6 clusters of 3 (warned: fewer than 10)", "stability", clusters=6),
    Regime("temperature 0.7, 100 clusters of 3", "probe"),
    Regime("temperature 0.7, 80 clusters of 1 to 12 items, flips leaning on size", "probe", clusters=80,
           sizes=tuple(range(1, 13)), lean=True),
    Regime("temperature 0, 100 clusters of 3, rare flips", "probe", sampling=(0.0,), probing=(0.0,) * 9 + (0.3,)),
    Regime("temperature 0.7, 6 clusters of 3 (warned: fewer than 10)", "probe", clusters=6),
)


def _one_repeat(f: np.ndarray) -> np.ndarray:
    """P(verdict = level) per item for one repeat, as offsets from its base: column 0 the base, 1-3 the others."""
    return np.column_stack([1 - f, f / 3, f / 3, f / 3])


def _item_truth(regime: Regime, f: np.ndarray, g: np.ndarray) -> np.ndarray:
    if regime.instrument == "stability":
        k = regime.repeats
        return 1 - (1 - f) ** k - 3 * (f / 3) ** k
    x = _one_repeat(f)
    moved = (1 - x) / 3  # a move to another level lands on each of the other three alike
    y = (1 - g)[:, None] * x + g[:, None] * moved
    return (x * x).sum(axis=1) - (x * y).sum(axis=1)  # P(x ≠ y) − P(x ≠ z), z an unprobed repeat


def truth(regime: Regime) -> float:
    """The item-weighted population value the interval aims at (closed form, every combination enumerated)."""
    sizes = np.array(regime.sizes, dtype=float)
    total = weight = 0.0
    for i, size in enumerate(sizes):
        fs, gs = _leaning(regime, i) if regime.lean else (np.array(regime.sampling), np.array(regime.probing))
        grid_f, grid_g = (a.ravel() for a in np.meshgrid(fs, gs))
        total += size * float(_item_truth(regime, grid_f, grid_g).mean())
        weight += size
    return float(total / weight)


def _leaning(regime: Regime, size_index: int) -> tuple[np.ndarray, np.ndarray]:
    """Clusters in the upper half of sizes draw from the upper half of the flip probabilities."""
    upper = size_index >= len(regime.sizes) // 2

    def half(values: tuple[float, ...]) -> np.ndarray:
        ordered = sorted(values)
        return np.array(ordered[len(ordered) // 2:] if upper else ordered[: (len(ordered) + 1) // 2])

    return half(regime.sampling), half(regime.probing)


def _draw(regime: Regime, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per item: its cluster, f and g."""
    size_index = rng.integers(0, len(regime.sizes), regime.clusters)
    sizes = np.array(regime.sizes)[size_index]
    f, g = np.empty(regime.clusters), np.empty(regime.clusters)
    for c in range(regime.clusters):
        fs, gs = (_leaning(regime, int(size_index[c])) if regime.lean
                  else (np.array(regime.sampling), np.array(regime.probing)))
        f[c], g[c] = rng.choice(fs), rng.choice(gs)
    return np.repeat(np.arange(regime.clusters), sizes), np.repeat(f, sizes), np.repeat(g, sizes)


def _verdicts(base: np.ndarray, flip: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    moved = rng.random(base.size) < flip
    return np.where(moved, (base + rng.integers(1, LEVELS, base.size)) % LEVELS, base)


def _run(name: str, verdicts: np.ndarray, frame: pd.DataFrame, temperature: float, seed: int) -> Run:
    severity = lambda v: {"hate": int(v), "sexual": 0, "violence": 0, "self_harm": 0}
    labels = [{"id": f"i{i}", "target": "response", "status": "ok", "severity": severity(v)}
              for i, v in enumerate(verdicts)]
    manifest = Manifest(model="sim", template_hash="t", shots_hash="s", status="complete", input_sha256="x",
                        params={"temperature": temperature, "seed": seed})
    return Run(Path(name), manifest, labels, frame)


def study(regime: Regime, seed: int, n_boot: int = 300) -> dict[str, Any]:
    """One simulated study through the command's own function: the estimate, its interval, and whether it warned."""
    rng = np.random.default_rng([11, seed])
    clusters, f, g = _draw(regime, rng)
    n = clusters.size
    frame = pd.DataFrame({"id": [f"i{i}" for i in range(n)], "prompt_id": [f"p{c}" for c in clusters], "prompt": "p",
                          "response": "r"})
    base = rng.integers(0, LEVELS, n)
    if regime.instrument == "stability":
        runs = [_run(f"repeat-{k + 1}", _verdicts(base, f, rng), frame, regime.temperature, k)
                for k in range(regime.repeats)]
        found = stability(runs, n_boot=n_boot, seed=seed)
        scope = next(s for s in found.scopes if s.side == "response" and s.scope == "hate")
        value, (low, high) = scope.changed, scope.changed_ci
    else:
        original = _run("run", _verdicts(base, f, rng), frame, regime.temperature, 0)
        probed = _run("probe", _verdicts(_verdicts(base, f, rng), g, rng), frame, regime.temperature, 0)
        null = _run("null", _verdicts(base, f, rng), frame, regime.temperature, 1) if regime.temperature > 0 else None
        found = next(s for s in probe_scopes(original, probed, null=null, n_boot=n_boot, seed=seed)
                     if s.side == "response" and s.scope == "hate")
        value, (low, high), scope = found.excess, found.excess_ci, found
    return {"value": value, "low": low, "high": high, "warned": bool(few_cluster_warnings(scope))}


def _task(args: tuple[int, int]) -> dict[str, Any]:
    index, seed = args
    return study(REGIMES[index], seed)


def coverage(replicates: int, workers: int = 2) -> list[dict[str, Any]]:
    """Per regime: the truth, the intervals' coverage of it, the estimate's bias, and how often a warning was given."""
    out = []
    with ProcessPoolExecutor(workers) as pool:
        for index, regime in enumerate(REGIMES):
            rows = list(pool.map(_task, [(index, seed) for seed in range(replicates)], chunksize=8))
            true = truth(regime)
            covered = [r["low"] is not None and r["high"] is not None and r["low"] <= true <= r["high"] for r in rows]
            out.append({"instrument": regime.instrument, "regime": regime.name, "truth": true,
                        "coverage": float(np.mean(covered)), "bias": float(np.mean([r["value"] for r in rows]) - true),
                        "no_interval": float(np.mean([r["low"] is None for r in rows])),
                        "warned": float(np.mean([r["warned"] for r in rows])), "replicates": replicates,
                        "mc_error": float(np.sqrt(0.95 * 0.05 / replicates))})
            print(f"{regime.instrument} {regime.name}: {out[-1]}", flush=True)
    return out


def stability_coverage(replicates: int, workers: int = 2) -> list[dict[str, Any]]:
    """The ``stability`` part of ``make validate``: both instruments' regimes (kept under the part's old name)."""
    return coverage(replicates, workers)


def table(rows: list[dict[str, Any]] | dict[str, Any] | None) -> str:
    """The Markdown table ``make validate`` pastes into docs/statistics.md."""
    if not rows or isinstance(rows, dict):
        return ""
    lines = ["", f"Stability and probe intervals ({rows[0]['replicates']} simulated studies per regime; the function "
             "each command calls, on run folders whose per-item flip probabilities are known; ± is the Monte-Carlo "
             "error of a 95 % coverage):", "",
             "| command | regime | truth | coverage | bias | no interval | warned: fewer than 10 clusters |",
             "|---|---|---:|---:|---:|---:|---:|"]
    names = {"stability": "`stability`: verdicts changed across repeats", "probe": "`probe`: excess over the null"}
    lines += [f"| {names[r['instrument']]} | {r['regime']} | {100 * r['truth']:.1f} % | {100 * r['coverage']:.1f} % ± "
              f"{100 * r['mc_error']:.1f} | {100 * r['bias']:+.2f} pt | {100 * r['no_interval']:.1f} % | "
              f"{100 * r['warned']:.0f} % |" for r in rows]
    lines += ["", "Targets: 93–97 % where clusters are many. Shares take Korn and Graubard's interval "
              "(Clopper-Pearson on the clusters' effective sample size, fewer for C - 1 degrees of freedom), "
              "the excess Student's t with a jackknife standard error over clusters. "
              "On 6 clusters both widen and every command warns all the same: "
              "what covers here rests on the simulation's clusters being alike. At temperature 0 the null is 0 and the "
              "excess is the flip rate, its interval exact at 0 flips."]
    return "\n".join(lines) + "\n"
