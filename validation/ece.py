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


#: The prompt side as harness sees it: each prompt answered by PER_PROMPT models, so every pair repeats its prompt's
#: forecast and label (the response side's are the pair's own).
PROMPTS, PER_PROMPT = 100, 3


def _clustered_study(seed: int, folder: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """One study of a perfectly calibrated grader through ``harness calibrate RUN --human``: the JSON's reliability
    per side."""
    import json

    import pandas as pd
    from typer.testing import CliRunner

    from harness.cli.app import app

    categories = ("hate", "sexual", "violence", "self_harm")
    rng = np.random.default_rng([43, seed])
    n = PROMPTS * PER_PROMPT
    prompt_p = np.repeat(rng.random((PROMPTS, 4)), PER_PROMPT, axis=0)  # one forecast per prompt and category
    prompt_y = np.repeat(rng.random((PROMPTS, 4)), PER_PROMPT, axis=0) < prompt_p
    response_p = rng.random((n, 4))
    response_y = rng.random((n, 4)) < response_p
    severity = lambda harmful: np.where(harmful, rng.integers(1, 4, harmful.shape), 0)
    prompt_s, response_s = severity(prompt_y), severity(response_y)
    # a severity drawn once per prompt, so copies agree
    prompt_s = np.repeat(prompt_s[::PER_PROMPT], PER_PROMPT, axis=0)
    table = pd.DataFrame({"id": [f"i{i}" for i in range(n)],
                          "prompt_id": [f"q{i // PER_PROMPT}" for i in range(n)],
                          "prompt": [f"prompt {i // PER_PROMPT}" for i in range(n)],
                          "response": [f"answer {i}" for i in range(n)]})
    for j, c in enumerate(categories):
        table[f"prompt_{c}"], table[f"response_{c}"] = prompt_s[:, j], response_s[:, j]
    run = folder / "run"
    run.mkdir()
    table.to_json(run / "input.jsonl", orient="records", lines=True)
    table.to_json(folder / "human.jsonl", orient="records", lines=True)
    vector = lambda p: [round(1 - p, 6), round(p / 3, 6), round(p / 3, 6), round(p / 3, 6)]
    with (run / "labels.jsonl").open("w", encoding="utf-8") as out:
        for i in range(n):
            for side, p in (("prompt", prompt_p), ("response", response_p)):
                severity = {c: int(p[i, j] >= 0.5) for j, c in enumerate(categories)}
                probabilities = {c: vector(float(p[i, j])) for j, c in enumerate(categories)}
                out.write(json.dumps({"id": f"i{i}", "target": side, "status": "ok",
                                      "severity": severity, "probabilities": probabilities}) + "\n")
    (run / "manifest.json").write_text(json.dumps({"model": "simulated", "template_hash": "t", "shots_hash": "none",
                                                   "status": "complete", "schema_version": 1}))
    done = CliRunner().invoke(app, ["calibrate", str(run), "--human", str(folder / "human.jsonl"), "--n-boot", "200",
                                    "--seed", str(seed), "--json"])
    if done.exit_code != 0:
        raise RuntimeError(done.output[-500:])
    found = json.loads((run / "calibration.json").read_text())["reliability"]
    return found["prompt"], found["response"]


def _clustered_task(seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        return _clustered_study(seed, Path(tmp))


def clustered_size(replicates: int, workers: int = 2) -> dict[str, Any]:
    """The calibration test's size and the debiased error of a calibrated grader on each side, through the CLI, where
    every prompt is answered by PER_PROMPT models (the issue's 100 prompt clusters x 3 pairs)."""
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers) as pool:
        rows = list(pool.map(_clustered_task, range(replicates)))
    out: dict[str, Any] = {"replicates": replicates, "prompts": PROMPTS, "per_prompt": PER_PROMPT,
                           "mc_error": float(np.sqrt(0.05 * 0.95 / replicates))}
    for k, side in enumerate(("prompt", "response")):
        found = [r[k] for r in rows]
        out[side] = {"rejects": float(np.mean([f["calibration_p"] < 0.05 for f in found])),
                     "debiased": float(np.mean([f["ece_debiased"] for f in found])),
                     "covers_zero": float(np.mean([f["ece_debiased_ci"][0] is not None
                                                   and f["ece_debiased_ci"][0] <= 1e-12
                                                   for f in found])),
                     "n": float(np.mean([f["n"] for f in found]))}
    print(f"ece clustered: {out}", flush=True)
    return out
