"""The bundled sample: 303 mild, hand-written pairs (101 prompts, three fictional models) with human labels
(see scripts/make_sample.py)."""

from __future__ import annotations

from pathlib import Path


def ratings_path() -> str:
    """Path of the sample's reliability subset: three annotators' labels of 120 of its pairs
    (see scripts/make_ratings.py)."""
    return str(Path(__file__).resolve().parents[1] / "data" / "sample_ratings.jsonl")


#: The annotators of :func:`ratings_path` (column prefixes ``ann1_prompt_hate`` …).
SAMPLE_RATERS = ("ann1", "ann2", "ann3")


def sample_path() -> str:
    """Path of the bundled sample pairs table (JSONL)."""
    return str(Path(__file__).resolve().parents[1] / "data" / "sample_pairs.jsonl")
