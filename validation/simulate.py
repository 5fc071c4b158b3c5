"""Proof by simulation: do harness's intervals cover, and does its paired test hold its size?

Draws synthetic clustered data with a known truth (prompts answered by several models, a
grader with known per-side confusion matrices and a prompt/response asymmetry), runs the
library's own functions on each replicate, and tabulates

* coverage of the nominal 95 % CIs (quadratic kappa, detection recall, the asymmetry gap, the
  raw transition shares, the bias-corrected transition shares), with the coverage that
  resampling rows instead of prompt clusters would give beside it;
* the type-I error of the paired grader test at alpha = 0.05 under a null with
  prompt-correlated errors, clustered (harness) and row-wise.

Run with ``make validate`` (``python validation/simulate.py --replicates 500``); writes
``validation/results.md`` and ``validation/results.json``. Not a test: it takes minutes.
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from harness.analysis.agreement import agreement
from harness.analysis.calibration import asymmetry
from harness.analysis.correction_em import SHARES, corrected_transitions
from harness.analysis.stats import kappa_from_confusion, mcnemar_test, ratio_bootstrap_ci

HERE = Path(__file__).resolve().parent
K = 4
PROMPTS, RESPONSES = 300, 6
CALIBRATION_PROMPTS = 150
PROMPT_SEVERITY = np.array([0.45, 0.2, 0.2, 0.15])
# P(grader = a | truth = i): the prompt side is read well, the response side misses harm.
M_PROMPT = np.array([[0.90, 0.08, 0.02, 0.00], [0.12, 0.73, 0.12, 0.03], [0.03, 0.12, 0.75, 0.10], [0.00, 0.04, 0.16, 0.80]])
M_RESPONSE = np.array([[0.94, 0.05, 0.01, 0.00], [0.35, 0.55, 0.08, 0.02], [0.15, 0.20, 0.55, 0.10], [0.05, 0.10, 0.20, 0.65]])
THRESHOLD = 1
N_BOOT = 400
N_BOOT_CORRECTION = 300


def _responses(prompt_severity: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """True response severity per (prompt, model): prompt severity and a prompt effect shared by its answers."""
    effect = rng.normal(0.0, 0.8, prompt_severity.size)
    latent = 0.55 * prompt_severity[:, None] - 0.6 + effect[:, None] + rng.normal(0.0, 0.6, (prompt_severity.size, RESPONSES))
    return np.digitize(latent, [0.0, 0.9, 1.8])


def _grade(truth: np.ndarray, matrix: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    cumulative = matrix.cumsum(axis=1)[truth]
    return (rng.random(truth.shape)[..., None] > cumulative).sum(axis=-1).clip(0, K - 1)


def _draw(n_prompts: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    prompt = rng.choice(K, size=n_prompts, p=PROMPT_SEVERITY)
    response = _responses(prompt, rng)
    graded_prompt = _grade(prompt, M_PROMPT, rng)  # one verdict per prompt text, repeated for its answers
    return {
        "cluster": np.repeat(np.arange(n_prompts), RESPONSES),
        "prompt": np.repeat(prompt, RESPONSES),
        "response": response.ravel(),
        "pred_prompt": np.repeat(graded_prompt, RESPONSES),
        "pred_response": _grade(response.ravel(), M_RESPONSE, rng),
    }


def _kappa(marginal: np.ndarray, matrix: np.ndarray) -> float:
    return float(kappa_from_confusion(marginal[:, None] * matrix, weights="quadratic"))


def _recall(marginal: np.ndarray, matrix: np.ndarray) -> float:
    joint = marginal[:, None] * matrix
    return float(joint[THRESHOLD:, THRESHOLD:].sum() / joint[THRESHOLD:].sum())


def _shares(joint: np.ndarray) -> dict[str, float]:
    i, j = np.indices((K, K))
    return {"reduction": float(joint[j < i].sum()), "preservation": float(joint[j == i].sum()),
            "escalation": float(joint[j > i].sum()), "prompt_harm": float(joint[i >= 1].sum()),
            "response_harm": float(joint[j >= 1].sum())}


def truth(seed: int = 12345, n_prompts: int = 400_000) -> dict[str, Any]:
    """Population values, from the model's own matrices and one very large draw of the truth."""
    rng = np.random.default_rng(seed)
    prompt = rng.choice(K, size=n_prompts, p=PROMPT_SEVERITY)
    response = _responses(prompt, rng)
    joint = np.zeros((K, K))
    np.add.at(joint, (np.repeat(prompt, RESPONSES), response.ravel()), 1.0)
    joint /= joint.sum()
    marginal_p, marginal_r = joint.sum(axis=1), joint.sum(axis=0)
    observed = M_PROMPT.T @ joint @ M_RESPONSE  # the grader-label joint the raw analysis estimates
    return {
        "kappa_prompt": _kappa(marginal_p, M_PROMPT), "kappa_response": _kappa(marginal_r, M_RESPONSE),
        "recall_prompt": _recall(marginal_p, M_PROMPT), "recall_response": _recall(marginal_r, M_RESPONSE),
        "recall_gap": _recall(marginal_p, M_PROMPT) - _recall(marginal_r, M_RESPONSE),
        "raw": _shares(observed), "true": _shares(joint),
    }


def _covers(ci: list[float | None], value: float) -> bool:
    return ci[0] is not None and ci[1] is not None and ci[0] <= value <= ci[1]


def replicate(seed: int, target: dict[str, Any]) -> dict[str, bool]:
    """One synthetic study: which intervals cover, and does the null paired test reject?"""
    rng = np.random.default_rng(seed)
    data = _draw(PROMPTS, rng)
    out: dict[str, bool] = {}
    for label, clusters in (("cluster", data["cluster"]), ("row", None)):
        for side in ("prompt", "response"):
            result = agreement(data[side], data[f"pred_{side}"], clusters=clusters, n_boot=N_BOOT, seed=seed)
            out[f"kappa_{side}.{label}"] = _covers(result["ci"]["kappa_quadratic"], target[f"kappa_{side}"])
            out[f"recall_{side}.{label}"] = _covers(result["ci"]["recall"], target[f"recall_{side}"])
        pad = np.zeros((data["prompt"].size, 3))
        columns = [np.column_stack([data[k].astype(float), pad]) for k in ("prompt", "pred_prompt", "response", "pred_response")]
        gap = asymmetry(*columns, clusters=clusters, threshold=THRESHOLD, n_boot=N_BOOT, seed=seed)["max"]
        out[f"recall_gap.{label}"] = _covers(gap["recall_gap_ci"], target["recall_gap"])
        kinds = {"reduction": data["pred_response"] < data["pred_prompt"], "preservation": data["pred_response"] == data["pred_prompt"],
                 "escalation": data["pred_response"] > data["pred_prompt"]}
        cis = ratio_bootstrap_ci({k: v.astype(float) for k, v in kinds.items()}, np.ones(data["prompt"].size),
                                 clusters=clusters, n_boot=N_BOOT, seed=seed)
        for kind, ci in cis.items():
            out[f"raw_{kind}.{label}"] = _covers(ci, target["raw"][kind])
    calibration = _draw(CALIBRATION_PROMPTS, rng)
    cal = {"model": "simulated", "max_severity_pairs": {
        "cluster": calibration["cluster"].tolist(), "prompt_human": calibration["prompt"].tolist(),
        "prompt_grader": calibration["pred_prompt"].tolist(), "response_human": calibration["response"].tolist(),
        "response_grader": calibration["pred_response"].tolist()}}
    corrected = corrected_transitions(data["pred_prompt"], data["pred_response"], data["cluster"], cal,
                                      n_boot=N_BOOT_CORRECTION, seed=seed)
    for kind in SHARES:
        out[f"corrected_{kind}.cluster"] = _covers(corrected["corrected_ci"][kind], target["true"][kind])
        out[f"uncorrected_{kind}.cluster"] = _covers(corrected["raw_ci"][kind], target["true"][kind])
    out.update(_null_test(rng))
    return out


def _null_test(rng: np.random.Generator) -> dict[str, bool]:
    """Two graders equally good on average, each worse on some prompts (tilts cancel): H0 holds."""
    truth_labels = rng.random(PROMPTS * RESPONSES) < 0.35
    tilt = np.repeat(rng.normal(0.0, 0.9, PROMPTS), RESPONSES)
    base = 0.18
    error_a = rng.random(truth_labels.size) < np.clip(base * np.exp(tilt), 0, 0.9)
    error_b = rng.random(truth_labels.size) < np.clip(base * np.exp(-tilt), 0, 0.9)
    clusters = np.repeat(np.arange(PROMPTS), RESPONSES)
    return {
        "type1.cluster": mcnemar_test(~error_a, ~error_b, clusters=clusters)["p_value"] < 0.05,
        "type1.row": mcnemar_test(~error_a, ~error_b)["p_value"] < 0.05,
    }


ROWS = [
    ("quadratic κ, prompt side", "kappa_prompt"), ("quadratic κ, response side", "kappa_response"),
    ("detection recall, prompt side", "recall_prompt"), ("detection recall, response side", "recall_response"),
    ("asymmetry: recall gap", "recall_gap"), ("raw transition share: reduction", "raw_reduction"),
    ("raw transition share: preservation", "raw_preservation"), ("raw transition share: escalation", "raw_escalation"),
]


def tabulate(results: list[dict[str, bool]], replicates: int, seconds: float) -> str:
    mean = lambda key: 100.0 * float(np.mean([r[key] for r in results]))
    lines = [
        f"Simulation: {replicates} replicates of {PROMPTS} prompts x {RESPONSES} responses (intra-prompt correlation), "
        f"grader with known confusion matrices (prompt recall {100 * TRUTH['recall_prompt']:.1f} %, response recall "
        f"{100 * TRUTH['recall_response']:.1f} %), {N_BOOT} bootstrap resamples; {seconds:.0f} s on this machine.",
        "",
        "| 95 % interval | coverage, clusters (harness) | coverage, rows |",
        "|---|---:|---:|",
    ]
    lines += [f"| {name} | {mean(key + '.cluster'):.1f} % | {mean(key + '.row'):.1f} % |" for name, key in ROWS]
    lines += [f"| bias-corrected share: {kind.replace('_', ' ')} (truth) | {mean(f'corrected_{kind}.cluster'):.1f} % | "
              f"uncorrected: {mean(f'uncorrected_{kind}.cluster'):.1f} % |" for kind in SHARES]
    lines += ["", "| paired grader test under the null, α = 0.05 | rejection rate |", "|---|---:|",
              f"| clustered exact McNemar (harness) | {mean('type1.cluster'):.1f} % |",
              f"| McNemar treating rows as independent | {mean('type1.row'):.1f} % |",
              "", "Targets: coverage 93–97 %, type-I error 3–7 %. The rows column and the uncorrected shares show what "
              "ignoring the clusters or the grader's errors would report."]
    return "\n".join(lines)


TRUTH: dict[str, Any] = {}


def _worker(args: tuple[int, dict[str, Any]]) -> dict[str, bool]:
    return replicate(*args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=20260709)
    args = parser.parse_args()
    started = time.perf_counter()
    TRUTH.update(truth())
    jobs = [(args.seed + i, TRUTH) for i in range(args.replicates)]
    with ProcessPoolExecutor(args.workers) as pool:
        results = list(pool.map(_worker, jobs, chunksize=8))
    seconds = time.perf_counter() - started
    table = tabulate(results, args.replicates, seconds)
    (HERE / "results.md").write_text(table + "\n", encoding="utf-8")
    summary = {key: float(np.mean([r[key] for r in results])) for key in results[0]}
    (HERE / "results.json").write_text(json.dumps({"replicates": args.replicates, "seconds": seconds, "truth": TRUTH,
                                                   "rates": summary}, indent=2) + "\n", encoding="utf-8")
    print(table)


if __name__ == "__main__":
    main()
