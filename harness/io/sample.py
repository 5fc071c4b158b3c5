"""The bundled sample: 303 mild, hand-written pairs (101 prompts, three fictional models) with human labels (see scripts/make_sample.py)."""

from __future__ import annotations

from pathlib import Path


def sample_path() -> str:
    """Path of the bundled sample pairs table (JSONL)."""
    return str(Path(__file__).resolve().parents[1] / "data" / "sample_pairs.jsonl")
