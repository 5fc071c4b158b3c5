"""Soft labels scored by proper rules: does a grader whose probabilities are the raters' true distribution beat its own
verdict, through ``harness calibrate RUN --human H --raters ann1,ann2,ann3 --ratings R``?

Each study: 100 prompt clusters of two pairs; per pair, response side and category, a true severity distribution P
(Dirichlet(0.5) over 0–3: often lopsided, sometimes spread), three annotators each drawing a label from P. Graders:
P itself ("knows the truth"), P sharpened (P² renormalised: over-confident) and P flattened (√P: under-confident),
each writing its most probable severity as its verdict. The figures: mean log loss and Brier of the probabilities and
of the verdict, the share of studies whose probabilities scored better than the verdict, and of studies where the
difference's 95 % interval lay below 0; and the verdict like for like against one annotator's label.
"""

from __future__ import annotations

import json
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

CATEGORIES = ("hate", "sexual", "violence", "self_harm")
CLUSTERS, PER, RATERS = 100, 2, 3
GRADERS = (("knows the raters' true distribution", 1.0), ("over-confident (P squared)", 2.0),
           ("under-confident (square root of P)", 0.5))


def _study(args: tuple[int, float]) -> dict[str, Any]:
    import pandas as pd
    from typer.testing import CliRunner

    from harness.cli.app import app

    seed, power = args
    rng = np.random.default_rng([53, seed])
    n = CLUSTERS * PER
    truth = rng.dirichlet(np.full(4, 0.5), size=(n, 4))  # pair x category x severity
    forecast = truth**power
    forecast /= forecast.sum(axis=2, keepdims=True)
    labels = np.array([[[rng.choice(4, p=truth[i, j]) for j in range(4)] for i in range(n)] for _ in range(RATERS)])
    table = pd.DataFrame({"id": [f"i{i}" for i in range(n)], "prompt_id": [f"q{i // PER}" for i in range(n)],
                          "prompt": [f"prompt {i // PER}" for i in range(n)],
                          "response": [f"answer {i}" for i in range(n)]})
    for j, c in enumerate(CATEGORIES):
        table[f"prompt_{c}"] = 0
        table[f"response_{c}"] = labels[0, :, j]
        for k in range(RATERS):
            table[f"ann{k + 1}_prompt_{c}"] = 0
            table[f"ann{k + 1}_response_{c}"] = labels[k, :, j]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        run = folder / "run"
        run.mkdir()
        table.to_json(folder / "ratings.jsonl", orient="records", lines=True)
        table.to_json(run / "input.jsonl", orient="records", lines=True)
        with (run / "labels.jsonl").open("w", encoding="utf-8") as out:
            for i in range(n):
                verdict = {c: int(np.argmax(forecast[i, j])) for j, c in enumerate(CATEGORIES)}
                probabilities = {c: forecast[i, j].round(6).tolist() for j, c in enumerate(CATEGORIES)}
                out.write(json.dumps({"id": f"i{i}", "target": "response", "status": "ok", "severity": verdict,
                                      "probabilities": probabilities})
                          + "\n")
        (run / "manifest.json").write_text(json.dumps({"model": "simulated", "template_hash": "t", "shots_hash": "none",
                                                       "status": "complete", "schema_version": 1}))
        done = CliRunner().invoke(app, ["calibrate", str(run), "--human", str(folder / "ratings.jsonl"), "--raters",
                                        "ann1,ann2,ann3", "--ratings", str(folder / "ratings.jsonl"), "--n-boot", "300",
                                        "--seed", str(seed), "--json"])
        if done.exit_code != 0:
            raise RuntimeError(done.output[-500:])
        found = json.loads((run / "calibration.json").read_text())["soft_labels"]["response"]
    return {**found, "js": _jensen_shannon(forecast, labels)}


def _jensen_shannon(forecast: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """The score used before (not proper), recomputed with scipy: the mean Jensen–Shannon distance of the probabilities
    and of the verdict to the other raters' label distribution, leaving each rater out in turn."""
    from scipy.spatial.distance import jensenshannon

    soft, hard = [], []
    for i in range(forecast.shape[0]):
        for j in range(4):
            p, verdict = forecast[i, j], np.eye(4)[int(np.argmax(forecast[i, j]))]
            others = [np.bincount(np.delete(labels[:, i, j], r), minlength=4) / (RATERS - 1) for r in range(RATERS)]
            soft.append(np.mean([jensenshannon(p, q, base=2) for q in others]))
            hard.append(np.mean([jensenshannon(verdict, q, base=2) for q in others]))
    return float(np.mean(soft)), float(np.mean(hard))


def _summary(name: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One grader's studies in figures: mean scores, and how often the probabilities beat the verdict."""
    mean = lambda part, rule: float(np.mean([r[part][rule] for r in rows]))
    below = lambda part, rule: float(np.mean([r[part][rule] < 0 for r in rows]))
    sure = lambda part, rule: float(np.mean([r[part][f"{rule}_ci"][1] is not None and r[part][f"{rule}_ci"][1] < 0
                                             for r in rows]))
    rules = ("log_loss", "brier")
    return {"grader": name, "replicates": len(rows),
            **{f"{part}_{rule}": mean(part, rule) for part in ("grader", "verdict", "annotator") for rule in rules},
            **{f"beats_verdict_{rule}": below("probabilities_minus_verdict", rule) for rule in rules},
            **{f"surely_beats_verdict_{rule}": sure("probabilities_minus_verdict", rule) for rule in rules},
            "verdict_beats_annotator_brier": below("verdict_minus_annotator", "brier"),
            "js_grader": float(np.mean([r["js"][0] for r in rows])),
            "js_verdict": float(np.mean([r["js"][1] for r in rows]))}


def soft_label_checks(replicates: int, workers: int = 2) -> list[dict[str, Any]]:
    out = []
    with ProcessPoolExecutor(workers) as pool:
        for name, power in GRADERS:
            out.append(_summary(name, list(pool.map(_study, [(seed, power) for seed in range(replicates)]))))
            print(f"soft labels {name}: {out[-1]}", flush=True)
    return out


def soft_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    pct = lambda v: f"{100 * v:.1f} %"
    lines = ["", f"Soft labels by proper scoring rules (`calibrate --raters`; {rows[0]['replicates']} studies per "
             f"grader of {CLUSTERS * PER} pairs in {CLUSTERS} prompt clusters, three annotators drawing each label "
             "from a true severity distribution P; every grader's verdict is its most probable severity):", "",
             "| grader | log loss: P(severity) | verdict | Brier: P(severity) | verdict | one annotator "
             "| P(severity) beats its verdict (log loss; Brier) | … with the CI below 0 "
             "| verdict beats an annotator (Brier) | Jensen–Shannon (before): P(severity); verdict |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['grader']} | {r['grader_log_loss']:.3f} | {r['verdict_log_loss']:.3f} | {r['grader_brier']:.3f} | "
              f"{r['verdict_brier']:.3f} | {r['annotator_brier']:.3f} | {pct(r['beats_verdict_log_loss'])}; "
              f"{pct(r['beats_verdict_brier'])} | "
              f"{pct(r['surely_beats_verdict_log_loss'])}; {pct(r['surely_beats_verdict_brier'])} | "
              f"{pct(r['verdict_beats_annotator_brier'])} | {r['js_grader']:.3f}; {r['js_verdict']:.3f} |"
              for r in rows]
    lines += ["", "Log loss and Brier are proper: the grader that knows P scores best and beats its own verdict in "
              "every study, while the Jensen–Shannon distance used before (last column, lower read as better) put "
              "its verdict closer to the raters; a wrong certain verdict costs 13.8 nats (forecasts floored at 1e-6). "
              "The verdict and one annotator's label are both one-hot forecasts of a held-out rater: "
              "the like-for-like comparison."]
    return "\n".join(lines) + "\n"
