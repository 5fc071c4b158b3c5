"""Regenerate harness/data/sample_ratings.jsonl: three annotators' labels on a reliability subset of the sample.

The bundled sample's labels (harness/data/sample_pairs.jsonl) are the adjudicated, final labels.
This script writes what an annotation team's reliability round would have returned before
adjudication: three annotators (ann1, ann2, ann3) each labelled the pairs of 40 of the 101
prompts (120 pairs), every side and category, on the 0-3 scale. They are simulated from the final
labels, seeded, so they are reproducible and say so; each has a tendency of their own:

* ann1 is careful: a non-zero label is one step off with probability 0.08; a zero becomes 1 with 0.02;
* ann2 is strict: a non-zero label is raised one step with probability 0.18 (lowered with 0.04);
  a zero becomes 1 with 0.04;
* ann3 is lenient: a non-zero label is lowered one step with probability 0.2; a zero becomes 1
  with 0.01; and ann3 left 12 pairs unrated (missing ratings are allowed).

The file is a pairs table too (id, prompt_id, prompt, response, model and the final labels in the
canonical columns), so ``harness calibrate RUN --human`` reads it as well as ``harness agreement``.
Run: python scripts/make_ratings.py
"""

import json
import random
from pathlib import Path

SIDES = ("prompt", "response")
CATEGORIES = ("hate", "sexual", "violence", "self_harm")
#: annotator -> (P(non-zero raised), P(non-zero lowered), P(zero becomes 1))
TENDENCIES = {"ann1": (0.04, 0.04, 0.02), "ann2": (0.18, 0.04, 0.04), "ann3": (0.0, 0.2, 0.01)}
PROMPTS = 40
UNRATED = {"ann3": 12}
SEED = 20261202


def rate(final: int, tendency: tuple[float, float, float], rng: random.Random) -> int:
    """One annotator's label of an item whose final label is ``final``."""
    raise_p, lower_p, zero_p = tendency
    draw = rng.random()
    if final == 0:
        return 1 if draw < zero_p else 0
    if draw < raise_p:
        return min(3, final + 1)
    if draw < raise_p + lower_p:
        return final - 1
    return final


def main() -> None:
    root = Path(__file__).resolve().parent.parent / "harness" / "data"
    sample = (root / "sample_pairs.jsonl").read_text(encoding="utf-8")
    pairs = [json.loads(line) for line in sample.splitlines() if line]
    rng = random.Random(SEED)
    prompts = sorted({p["prompt_id"] for p in pairs})
    chosen = set(rng.sample(prompts, PROMPTS))
    subset = [p for p in pairs if p["prompt_id"] in chosen]
    unrated = {name: set(rng.sample([p["id"] for p in subset], n)) for name, n in UNRATED.items()}
    lines = []
    for pair in subset:
        row = {key: pair[key] for key in ("id", "prompt_id", "prompt", "response", "model")}
        for side in SIDES:
            for category in CATEGORIES:
                row[f"{side}_{category}"] = pair[f"{side}_{category}"]
        for name, tendency in TENDENCIES.items():
            for side in SIDES:
                for category in CATEGORIES:
                    label = rate(pair[f"{side}_{category}"], tendency, rng)
                    row[f"{name}_{side}_{category}"] = None if pair["id"] in unrated.get(name, ()) else label
        lines.append(json.dumps(row, ensure_ascii=False))
    out = root / "sample_ratings.jsonl"
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {len(lines)} pairs rated by {len(TENDENCIES)} annotators to {out}")


if __name__ == "__main__":
    main()
