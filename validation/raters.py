"""``make validate-raters``: Krippendorff's α against an independent implementation, and the
alternative annotator test's error rates on simulated annotators, through the CLI.

1. α: random tables (2-6 raters, 2-6 values, 30 % of ratings missing) at each level of
   measurement, ours against the ``krippendorff`` package: the largest difference.
2. The alt-test: studies of 200 items (100 prompt clusters of two) labelled by three annotators
   who are each right 80 % of the time, and a grader right a given share of the time, each written
   to a CSV and run through ``harness agreement TABLE --raters a1,a2,a3 --grader g --epsilon E
   --json``. The pass rate per grader accuracy and ε, beside the population's advantage
   ``ρ_grader − ρ_human`` (estimated on a million items): where that advantage is at or below
   ``−ε`` the grader should pass at most about 5 % of the time (the test's type-I error, BY over
   annotators and ω ≥ 0.5 make it conservative); above it, the pass rate is the test's power.

    python validation/raters.py --replicates 200
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from validation.readme import paste  # noqa: E402

ITEMS, K, HUMAN = 200, 3, 0.8
ACCURACIES = (0.55, 0.65, 0.72, 0.8, 0.93)
EPSILONS = (0.0, 0.1, 0.2)


def alpha_cross_check(tables: int = 200) -> dict[str, float]:
    """The largest |α ours − α krippendorff| per level over random tables with missing ratings."""
    import krippendorff

    from harness.analysis.krippendorff import alpha_from_coincidences, coincidences

    rng = np.random.default_rng(0)
    worst = {}
    for level in ("nominal", "ordinal", "interval"):
        gaps = []
        while len(gaps) < tables:
            items, raters, k = int(rng.integers(5, 80)), int(rng.integers(2, 7)), int(rng.integers(2, 7))
            table = rng.integers(0, k, size=(items, raters)).astype(float)
            table[rng.random(table.shape) < 0.3] = np.nan
            if (np.sum(~np.isnan(table), axis=1) >= 2).sum() < 2 or np.unique(table[~np.isnan(table)]).size < 2:
                continue
            values = np.arange(k, dtype=float) if level == "interval" else None
            ours = float(alpha_from_coincidences(coincidences(table, k).sum(axis=0), k, level, values))
            reference = krippendorff.alpha(reliability_data=table.T, level_of_measurement=level,
                                           value_domain=list(range(k)))
            gaps.append(abs(ours - reference))
        worst[level] = float(max(gaps))
    return worst


def _labels(truth: np.ndarray, accuracy: float, rng: np.random.Generator) -> np.ndarray:
    wrong = (truth + rng.integers(1, K, truth.size)) % K
    return np.where(rng.random(truth.size) < accuracy, truth, wrong)


def advantage(accuracy: float, items: int = 1_000_000) -> float:
    """Population ρ_grader − ρ_human for one left-out annotator (all three alike); exactly 0 for a grader as often right
    as the annotators (it is exchangeable with them; a simulated estimate would put the ε 0 row a hair off the
    boundary)."""
    from harness.analysis.raters import alignment

    if accuracy == HUMAN:
        return 0.0
    rng = np.random.default_rng(5)
    truth = rng.integers(0, K, items)
    humans = np.column_stack([_labels(truth, HUMAN, rng) for _ in range(3)]).astype(float)
    grader = _labels(truth, accuracy, rng).astype(float)
    others = humans[:, 1:]
    g = alignment(grader, others, level="nominal", values=None)
    h = alignment(humans[:, 0], others, level="nominal", values=None)
    return float(np.mean(g >= h) - np.mean(h >= g))


def _replicate(args: tuple[float, float, int]) -> bool:
    import pandas as pd
    from typer.testing import CliRunner

    from harness.cli.app import app

    accuracy, epsilon, seed = args
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, K, ITEMS)
    frame = pd.DataFrame({"id": [f"i{i}" for i in range(ITEMS)], "prompt_id": [f"p{i // 2}" for i in range(ITEMS)]})
    for j in (1, 2, 3):
        frame[f"a{j}"] = [f"c{v}" for v in _labels(truth, HUMAN, rng)]
    frame["g"] = [f"c{v}" for v in _labels(truth, accuracy, rng)]
    with tempfile.TemporaryDirectory() as tmp:
        frame.to_csv(Path(tmp) / "t.csv", index=False)
        out = Path(tmp) / "a.json"
        result = CliRunner().invoke(app, ["agreement", str(Path(tmp) / "t.csv"), "--raters", "a1,a2,a3",
                                          "--grader", "g", "--epsilon", str(epsilon), "--n-boot", "0", "--json",
                                          "-o", str(out)])
        if result.exit_code != 0:
            raise RuntimeError(result.output[-500:])
        return bool(json.loads(out.read_text())["passed"]["g"])


def alt_test_rates(replicates: int, workers: int) -> list[dict[str, Any]]:
    rows = []
    with ProcessPoolExecutor(workers) as pool:
        for accuracy in ACCURACIES:
            gap = advantage(accuracy)
            for epsilon in EPSILONS:
                jobs = [(accuracy, epsilon, 7919 * i + int(100 * accuracy)) for i in range(replicates)]
                passed = list(pool.map(_replicate, jobs))
                rows.append({"accuracy": accuracy, "epsilon": epsilon, "advantage": gap,
                             "pass_rate": float(np.mean(passed)),
                             "null_true": gap <= -epsilon + 1e-9})  # on the boundary (advantage exactly -ε) H0 holds
                print(f"grader {accuracy:.2f} right, ε {epsilon}: advantage {gap:+.3f}, "
                      f"passes {rows[-1]['pass_rate']:.3f}",
                      flush=True)
    return rows


def write_results(alpha: dict[str, float], rates: list[dict[str, Any]], replicates: int, seconds: float) -> str:
    differences = ", ".join(f"{level} largest difference {gap:.1e}" for level, gap in alpha.items())
    lines = ["Krippendorff's α against the `krippendorff` package on 200 random tables per level (30 % missing): "
             + differences + ".", "",
             f"Alternative annotator test through `harness agreement`: {replicates} studies per row, {ITEMS} items in "
             f"{ITEMS // 2} clusters, three annotators each {100 * HUMAN:.0f} % right on {K} classes; "
             f"{seconds:.0f} s.", "",
             "| grader right | ε | population ρ_grader − ρ_human | H0 (advantage ≤ −ε) true | pass rate |",
             "|---:|---:|---:|:---:|---:|"]
    for row in rates:
        boundary = abs(row["advantage"] + row["epsilon"]) < 1e-9
        null_true = "yes (boundary)" if boundary else "yes" if row["null_true"] else "no"
        lines.append(f"| {100 * row['accuracy']:.0f} % | {row['epsilon']} | {row['advantage']:+.3f} | "
                     f"{null_true} | {100 * row['pass_rate']:.1f} % |")
    lines += ["", "Targets: a pass rate of at most about 5 % where H0 is true "
              "(the grader is worse than a human by ε or more); power growing with the advantage where it is false."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--replicates", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    start = time.perf_counter()
    alpha = alpha_cross_check()
    print(f"α cross-check: {alpha}", flush=True)
    rates = alt_test_rates(args.replicates, args.workers)
    text = write_results(alpha, rates, args.replicates, time.perf_counter() - start)
    (HERE / "raters.md").write_text(text, encoding="utf-8")
    paste("validate-raters", text)
    (HERE / "raters.json").write_text(json.dumps({"alpha_max_difference": alpha, "alt_test": rates}, indent=2) + "\n",
                                      encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
