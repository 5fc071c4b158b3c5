"""A jury of independent graders, through ``harness jury``: does the majority of three beat each member?

Each study: 100 prompt clusters of two pairs; per pair a true response severity per category (harmful in one random
category at severity 1–3 with probability 0.4, else safe). Three members err independently: with probability 0.25 a
member gets the item wrong (a harmful item read safe, or a safe one flagged at severity 1 in a random category), and
otherwise, on a harmful item, it names the right category with probability 0.8 (else another one) at a severity off by
at most one. Each member is written as a run folder and combined by ``harness jury A B C --rule R``; every verdict is
scored against the truth: the item's verdict (harmful at all) and each category's (harmful in it or not).
"""

from __future__ import annotations

import json
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

CATEGORIES = ("hate", "sexual", "violence", "self_harm")
CLUSTERS, PER, MEMBERS, WRONG = 100, 2, 3, 0.25
RULES = ("majority", "median", "mean-probability")


def _member(truth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n = truth.shape[0]
    out = np.zeros_like(truth)
    harmful = truth.max(axis=1) >= 1
    wrong = rng.random(n) < WRONG
    for i in range(n):
        if harmful[i] and not wrong[i]:
            category = int(np.argmax(truth[i])) if rng.random() < 0.8 else int(rng.integers(0, 4))
            out[i, category] = int(np.clip(truth[i].max() + rng.integers(-1, 2), 1, 3))
        elif not harmful[i] and wrong[i]:
            out[i, rng.integers(0, 4)] = 1
    return out


def _write(folder: Path, table: Any, severity: np.ndarray) -> None:
    folder.mkdir()
    table.to_json(folder / "input.jsonl", orient="records", lines=True)
    with (folder / "labels.jsonl").open("w", encoding="utf-8") as out:
        for i in range(severity.shape[0]):
            chosen = {c: int(severity[i, j]) for j, c in enumerate(CATEGORIES)}
            probabilities = {c: [0.9 if k == chosen[c] else 0.1 / 3 for k in range(4)] for c in CATEGORIES}
            out.write(json.dumps({"id": f"i{i}", "target": "response", "status": "ok", "severity": chosen,
                                  "probabilities": probabilities}) + "\n")
    (folder / "manifest.json").write_text(json.dumps({"model": folder.name, "template_hash": "t", "shots_hash": "none",
                                                      "status": "complete", "schema_version": 1,
                                                      "targets": ["response"]}))


def _study(seed: int) -> dict[str, Any]:
    import pandas as pd
    from typer.testing import CliRunner

    from harness.cli.app import app

    rng = np.random.default_rng([61, seed])
    n = CLUSTERS * PER
    truth = np.zeros((n, 4), dtype=int)
    harmful = rng.random(n) < 0.4
    truth[np.flatnonzero(harmful), rng.integers(0, 4, int(harmful.sum()))] = rng.integers(1, 4, int(harmful.sum()))
    table = pd.DataFrame({"id": [f"i{i}" for i in range(n)], "prompt_id": [f"q{i // PER}" for i in range(n)],
                          "prompt": [f"prompt {i // PER}" for i in range(n)],
                          "response": [f"answer {i}" for i in range(n)]})
    members = [_member(truth, rng) for _ in range(MEMBERS)]
    score = lambda s: (float(np.mean((s.max(axis=1) >= 1) == (truth.max(axis=1) >= 1))),  # the item's verdict
                       float(np.mean((s >= 1) == (truth >= 1))))  # each category's
    out: dict[str, Any] = {"members": [score(m) for m in members]}
    with tempfile.TemporaryDirectory() as tmp:
        folders = [Path(tmp) / f"member-{k + 1}" for k in range(MEMBERS)]
        for folder, severity in zip(folders, members, strict=True):
            _write(folder, table, severity)
        for rule in RULES:
            jury = Path(tmp) / f"jury-{rule}"
            done = CliRunner().invoke(app, ["jury", *map(str, folders), "--rule", rule, "-o", str(jury)])
            if done.exit_code != 0:
                raise RuntimeError(done.output[-500:])
            records = {r["id"]: r for r in map(json.loads, (jury / "labels.jsonl").read_text().splitlines())}
            verdict = np.array([[records[f"i{i}"]["severity"][c] for c in CATEGORIES] for i in range(n)])
            out[rule] = score(verdict)
    return out


def jury_checks(replicates: int, workers: int = 2) -> dict[str, Any]:
    with ProcessPoolExecutor(workers) as pool:
        rows = list(pool.map(_study, range(replicates)))
    best = lambda k: np.array([max(m[k] for m in r["members"]) for r in rows])
    out: dict[str, Any] = {"replicates": replicates, "wrong": WRONG,
                           "member_item": float(np.mean([m[0] for r in rows for m in r["members"]])),
                           "member_category": float(np.mean([m[1] for r in rows for m in r["members"]]))}
    for rule in RULES:
        item = np.array([r[rule][0] for r in rows])
        category = np.array([r[rule][1] for r in rows])
        out[rule] = {"item": float(item.mean()), "category": float(category.mean()),
                     "beats_every_member_item": float(np.mean(item > best(0))),
                     "beats_every_member_category": float(np.mean(category > best(1)))}
    print(f"jury: {out}", flush=True)
    return out


def jury_table(row: dict[str, Any] | None) -> str:
    if not row:
        return ""
    pct = lambda v: f"{100 * v:.1f} %"
    lines = ["", f"Juries of three independent members (`harness jury`; {row['replicates']} studies of "
             f"{CLUSTERS * PER} pairs, each member wrong about an item's harm {pct(row['wrong'])} of the time, "
             "and naming the category and severity only roughly):", "",
             "| verdict of | item right (harmful at all) | studies where it beats every member "
             "| categories right (harmful in it or not) | studies where it beats every member |",
             "|---|---:|---:|---:|---:|",
             f"| one member (mean) | {pct(row['member_item'])} | | {pct(row['member_category'])} | |"]
    lines += [f"| jury, {rule} | {pct(row[rule]['item'])} | {pct(row[rule]['beats_every_member_item'])} | "
              f"{pct(row[rule]['category'])} | {pct(row[rule]['beats_every_member_category'])} |" for rule in RULES]
    lines += ["", "The item's verdict is the members' majority of item-level verdicts "
              "(expected 84.4 % right from three members each 75 % right), "
              "never pieced together from per-category votes."]
    return "\n".join(lines) + "\n"
