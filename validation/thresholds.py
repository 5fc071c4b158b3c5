"""``make validate-thresholds``: do cut points chosen on dev earn their place on held-out pairs, and do the held-out
intervals cover?

Each study draws prompt clusters with human labels (:func:`validation.studies.draw`: prompts answered by several
models, one harmful category per prompt) and a grader that records P(severity) for every label, then runs the function
``harness calibrate-thresholds`` calls (:func:`harness.analysis.thresholds.calibrate_thresholds`) on the simulated
run. Three graders:

* **signal**: its most likely answer is always 0 (P(0) ≥ 0.55), but the mass it puts above 0 leans towards the true
  severity (and moves with a prompt-level effect, so labels of one prompt are alike): the case of a small model whose
  argmax is useless while its probabilities are not;
* **no signal**: the same constant argmax, its mass above 0 drawn at random, whatever the truth;
* **informative argmax**: a grader whose most likely answer follows the truth with noise, and whose probabilities say
  nothing more than that answer (0.7 on it, 0.1 on each other level).

The truth a held-out interval aims at is the rule's quadratic κ in the population the study is drawn from (a draw of
100,000 prompts), for thresholds at the cut points that study chose: dev is a selection, held-out is not. Written to
``validation/thresholds.md`` and ``thresholds.json``, and pasted into docs/statistics.md.

    python validation/thresholds.py --replicates 400 --workers 2
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from validation.readme import paste  # noqa: E402
from validation.studies import CATEGORIES, Setting, draw, frames  # noqa: E402

LEVELS = np.arange(4)
RULES = ("argmax", "expected", "thresholds")
N_BOOT = 2000  # the command's default: what a user's interval rests on


@dataclass(frozen=True)
class Regime:
    """One row of the table: a grader, and how many prompt clusters the study labels."""

    name: str
    grader: str  # "signal", "none" or "argmax"
    n_prompts: int = 200
    per: int = 3


REGIMES = (
    Regime("argmax constant, probabilities carry signal", "signal"),
    Regime("argmax constant, probabilities carry none", "none"),
    Regime("verdict follows the truth, probabilities add nothing", "argmax"),
    Regime("argmax constant, probabilities carry signal, 60 clusters", "signal", n_prompts=60),
)


def probabilities(gold: np.ndarray, clusters: np.ndarray, grader: str, rng: np.random.Generator) -> np.ndarray:
    """P(severity 0..3) per label (rows x 4 categories x 4 levels) of a simulated grader, rounded as runs record it."""
    n = gold.shape[0]
    effect = rng.normal(0, 1, int(clusters.max()) + 1)[clusters][:, None]  # labels of one prompt are alike
    if grader == "argmax":  # the verdict follows the truth; the probabilities say nothing more than the verdict
        verdict = np.clip(np.rint(gold + 0.3 * effect + rng.normal(0, 0.5, gold.shape)), 0, 3).astype(int)
        p = np.full((*gold.shape, 4), 0.1)
        np.put_along_axis(p, verdict[..., None], 0.7, axis=-1)
    else:
        share = np.clip(0.2 + 0.07 * effect + 0.12 * rng.normal(0, 1, gold.shape), 0.02, 0.45)  # P(0) ≥ 0.55
        if grader == "signal":
            lean = np.exp(-((LEVELS - gold[..., None]) ** 2) / 2.0)
        else:
            lean = rng.dirichlet(np.ones(4), size=gold.shape)
        lean = lean / lean.sum(axis=-1, keepdims=True)
        p = share[..., None] * lean
        p[..., 0] += 1 - share
    p = p / p.sum(axis=-1, keepdims=True)
    assert p.shape == (n, len(CATEGORIES), 4)
    return np.round(p, 4)


def simulated_run(regime: Regime, seed: int) -> tuple[Any, Any]:
    """A run folder in memory (records with P(severity), verdict = its argmax) and the human labels of its pairs."""
    from harness.io.runs import Run
    from harness.results.manifest import Manifest

    rng = np.random.default_rng([42, seed])
    setting = Setting(n_prompts=regime.n_prompts, per=regime.per)
    prompt, response, grader_p, grader_r, clusters = draw(setting, rng)
    _, human = frames(prompt, response, grader_p, grader_r, clusters, setting.per)
    records = []
    for side, gold in (("prompt", prompt), ("response", response)):
        p = probabilities(gold, clusters, regime.grader, rng)
        for i, ident in enumerate(human["id"]):
            records.append({"id": ident, "target": side, "status": "ok",
                            "severity": {c: int(np.argmax(p[i, j])) for j, c in enumerate(CATEGORIES)},
                            "probabilities": {c: p[i, j].tolist() for j, c in enumerate(CATEGORIES)}})
    manifest = Manifest(model=f"sim-{regime.grader}", template_hash="t", shots_hash="s", status="complete")
    return Run(Path("sim"), manifest, records, human), human


#: Prompts in the population a study's truth is computed on (its own sampling error on κ is about 0.001).
POPULATION = 100_000


@cache
def population(grader: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Human severity, expected severity and argmax per label of a large draw (:data:`POPULATION` prompts, in parts)."""
    from harness.analysis.verdicts import expected_severity

    rng = np.random.default_rng(20260709)
    parts = []
    for _ in range(POPULATION // 20_000):
        prompt, response, _, _, clusters = draw(Setting(n_prompts=20_000, per=3), rng)
        gold = np.vstack([prompt, response]).astype(np.int8)
        p = np.vstack([probabilities(prompt, clusters, grader, rng), probabilities(response, clusters, grader, rng)])
        expected = np.round((LEVELS * p).sum(axis=-1) / p.sum(axis=-1), 6)  # as a run's record is read: 1.8 is 1.8
        assert np.allclose(expected[0, 0], expected_severity(p[0, 0].tolist()), atol=1e-6)
        parts.append((gold, expected, p.argmax(axis=-1).astype(np.int8)))
    return tuple(np.vstack(part) for part in zip(*parts, strict=True))  # type: ignore[return-value]


def population_kappa(grader: str, rule: str, cuts: dict[str, list[float | None]] | None = None) -> float:
    """A rule's pooled quadratic κ (both sides, four categories) in the population."""
    from harness.analysis.stats import kappa_from_confusion
    from harness.analysis.verdicts import EXPECTED_CUTS, cut

    gold, expected, argmax = population(grader)
    if rule == "argmax":
        verdict = argmax
    else:
        chosen = [EXPECTED_CUTS] * 4 if rule == "expected" else [(cuts or {})[c] for c in CATEGORIES]
        verdict = np.column_stack([cut(expected[:, j], chosen[j]) for j in range(4)])
    confusion = np.bincount((gold.astype(np.int64) * 4 + verdict).ravel(), minlength=16).reshape(4, 4)
    return float(kappa_from_confusion(confusion, weights="quadratic"))


def study(regime: Regime, seed: int, n_boot: int = N_BOOT) -> dict[str, Any]:
    """One simulated study through the command's own function: each rule's held-out κ, interval and the truth."""
    from harness.analysis.thresholds import calibrate_thresholds

    run, human = simulated_run(regime, seed)
    found = calibrate_thresholds(run, human, n_boot=n_boot, seed=seed)
    cuts = {c.category: c.cuts for c in found.cut_points}
    out: dict[str, Any] = {}
    for rule in RULES:
        held = next(s for s in found.held_out if s.rule == rule and s.scope == "both")
        dev = next(s for s in found.dev if s.rule == rule and s.scope == "both")
        low, high = held.kappa_quadratic_ci
        out[rule] = {"held_out": held.kappa_quadratic, "low": low, "high": high,
                     "dev": dev.kappa_quadratic, "truth": population_kappa(regime.grader, rule, cuts)}
    diff = next(d for d in found.differences if d.a == "thresholds" and d.b == "argmax")
    out["beats_argmax"] = diff.ci[0] is not None and diff.ci[0] > 0
    out["recommended"] = found.recommended
    return out


def _task(args: tuple[int, int]) -> dict[str, Any]:
    index, seed = args
    return study(REGIMES[index], seed)


def _covered(row: dict[str, Any]) -> bool | None:
    if row["low"] is None or row["high"] is None:
        return None
    return bool(row["low"] <= row["truth"] <= row["high"])


def measure(replicates: int, workers: int) -> list[dict[str, Any]]:
    """Per regime and rule: the truth, the held-out interval's coverage, the dev and held-out bias, how often the
    cut points beat argmax."""
    out = []
    with ProcessPoolExecutor(workers) as pool:
        for index, regime in enumerate(REGIMES):
            rows = list(pool.map(_task, [(index, seed) for seed in range(replicates)], chunksize=4))
            summary: dict[str, Any] = {"regime": regime.name, "grader": regime.grader, "clusters": regime.n_prompts,
                                       "replicates": replicates, "mc_error": float(np.sqrt(0.95 * 0.05 / replicates)),
                                       "beats_argmax": float(np.mean([r["beats_argmax"] for r in rows])),
                                       "recommended": {rule: float(np.mean([r["recommended"] == rule for r in rows]))
                                                       for rule in RULES}}
            for rule in RULES:
                covered = [c for c in (_covered(r[rule]) for r in rows) if c is not None]
                truths = np.array([r[rule]["truth"] for r in rows])
                held = np.array([np.nan if r[rule]["held_out"] is None else r[rule]["held_out"] for r in rows])
                dev = np.array([np.nan if r[rule]["dev"] is None else r[rule]["dev"] for r in rows])
                summary[rule] = {"truth": float(truths.mean()),
                                 "coverage": float(np.mean(covered)) if covered else None,
                                 "no_interval": 1 - len(covered) / len(rows),
                                 "held_out_bias": float(np.nanmean(held - truths)),
                                 "dev_bias": float(np.nanmean(dev - truths))}
            out.append(summary)
            print(json.dumps(summary), flush=True)
    return out


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"


def table(rows: list[dict[str, Any]], seconds: float) -> str:
    """The Markdown table pasted into docs/statistics.md."""
    lines = [f"Verdict rules through `calibrate-thresholds`' own function: {rows[0]['replicates']} simulated studies "
             f"per regime (prompt clusters of 3 pairs, half dev, half held-out; {N_BOOT} resamples; {seconds:.0f} s). "
             "Truth: the rule's pooled quadratic κ in the population, for thresholds at the cut points each study "
             "chose; ± is the Monte-Carlo error of a 95 % coverage.", "",
             "| grader | labelled clusters | rule | truth κ | held-out coverage | held-out bias "
             "| dev (in-sample) bias | thresholds beat argmax |",
             "|---|---:|---|---:|---:|---:|---:|---:|"]
    for row in rows:
        for rule in RULES:
            r = row[rule]
            coverage = "no interval (κ constant)" if r["coverage"] is None else (
                f"{_pct(r['coverage'])} ± {100 * row['mc_error']:.1f}")
            lines.append(f"| {row['regime']} | {row['clusters']} | {rule} | {r['truth']:.3f} | {coverage} | "
                         f"{r['held_out_bias']:+.3f} | {r['dev_bias']:+.3f} | "
                         f"{_pct(row['beats_argmax']) if rule == 'thresholds' else ''} |")
    lines += ["", "Targets: held-out coverage 93–97 % where clusters are many; thresholds beat argmax (paired "
              "interval above 0) where the probabilities carry signal and about never where they carry none; dev κ "
              "above the truth for thresholds (the selection's optimism), which is why it is shown as such and never "
              "as the result."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--replicates", type=int, default=400)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    start = time.perf_counter()
    rows = measure(args.replicates, args.workers)
    text = table(rows, time.perf_counter() - start)
    (HERE / "thresholds.md").write_text(text, encoding="utf-8")
    (HERE / "thresholds.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    paste("validate-thresholds", text)
    print(text)


if __name__ == "__main__":
    main()
