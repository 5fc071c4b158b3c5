"""The bundled sample: 153 mild, hand-written pairs with human labels (see scripts/make_sample.py)."""

from __future__ import annotations

from pathlib import Path


def sample_path() -> str:
    """Path of the bundled sample pairs table (JSONL)."""
    return str(Path(__file__).resolve().parents[1] / "data" / "sample_pairs.jsonl")
