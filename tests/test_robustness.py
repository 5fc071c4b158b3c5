"""How stable and how swayable a grader is (issue 31): repeats and stability, juries, probes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli.app import app
from harness.io.pairs import load_pairs, write_pairs
from tests.helpers import SAMPLE

runner = CliRunner()


def _data(tmp_path: Path, rows: int = 45) -> Path:
    return write_pairs(load_pairs(SAMPLE).head(rows), tmp_path / "pairs.jsonl")


def _repeats(server, tmp_path: Path, temperature: str, name: str) -> Path:  # type: ignore[no-untyped-def]
    folder = tmp_path / name
    done = runner.invoke(app, ["grade", str(_data(tmp_path)), "--base-url", server.base_url, "--temperature", temperature,
                               "--repeats", "3", "-o", str(folder), "--quiet", "--cache-dir", str(tmp_path / "cache")])
    assert done.exit_code == 0, done.output
    return folder


def test_repeats_at_temperature_move_some_verdicts_and_at_zero_none(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    warm = _repeats(server, tmp_path, "0.7", "warm")
    seeds = [json.loads((warm / f"repeat-{k}" / "manifest.json").read_text())["params"]["seed"] for k in (1, 2, 3)]
    assert seeds[1] == seeds[0] + 1 and seeds[2] == seeds[0] + 2  # each draw its own seed
    result = runner.invoke(app, ["stability", str(warm), "--n-boot", "300", "--json"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert found == json.loads((warm / "stability.json").read_text())
    response = next(s for s in found["scopes"] if s["side"] == "response" and s["scope"] == "any")
    assert 0 < response["changed"] < 1
    lo, hi = response["changed_ci"]
    assert 0 <= lo < response["changed"] < hi <= 1
    # the changed share recomputed by hand from the three label files
    verdicts = []
    for k in (1, 2, 3):
        records = [json.loads(line) for line in (warm / f"repeat-{k}" / "labels.jsonl").read_text().splitlines()]
        verdicts.append({r["id"]: max(r["severity"].values()) for r in records if r["target"] == "response" and r["status"] == "ok"})
    shared = set(verdicts[0]) & set(verdicts[1]) & set(verdicts[2])
    changed = sum(len({v[i] for v in verdicts}) > 1 for i in shared) / len(shared)
    assert response["changed"] == pytest.approx(changed) and response["n_items"] == len(shared)
    assert len(found["asymmetry"]) == 3
    cold = _repeats(server, tmp_path, "0", "cold")
    still = json.loads(runner.invoke(app, ["stability", str(cold), "--n-boot", "200", "--json"]).stdout)
    assert all(s["changed"] == 0.0 for s in still["scopes"])
    assert any("temperature 0" in w for w in still["warnings"])
    text = runner.invoke(app, ["stability", str(warm), "--n-boot", "0"]).output
    assert "of verdicts" in text and "Verdicts across repeats" in text


def test_stability_refuses_a_folder_without_repeats(tmp_path: Path) -> None:
    result = runner.invoke(app, ["stability", str(tmp_path)])
    assert result.exit_code == 2 and "holds no repeat-1" in result.output
