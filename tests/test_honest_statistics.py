"""Honest planning and calibration statistics (issue 30): plan sizes monotone and never below where the metric is
defined; per-category corrected shares warn by name."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from harness.cli.app import app


def _rare_positives(folder: Path) -> Path:
    """60 prompt clusters of two items; human positives in 5 clusters only, so recall is undefined in small studies
    (their recall differs, 1/2, 0 or 1, so few simulated studies are degenerate: every resample the same)."""
    rows = []
    for c in range(60):
        for j in range(2):
            gold = 1 if c % 12 == 0 else 0
            pred = 0 if c == 24 else gold if (c + j) % 5 else 1 - gold
            rows.append({"id": f"c{c}-{j}", "prompt_id": f"c{c}", "gold": gold, "pred": pred})
    path = folder / "pilot.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_plan_refuses_an_assurance_outside_its_bounds(cli: CliRunner, tmp_path: Path) -> None:
    result = cli.invoke(app, ["plan", str(_rare_positives(tmp_path)), "--gold", "gold", "--pred", "pred",
                                 "--target-width", "0.3", "--assurance", "1.5"])
    assert result.exit_code == 2 and "--assurance 1.5: expected at most 0.99" in result.output
