"""A probe's flips are read against the null: unprobed repeats at the run's settings, the excess paired item by item."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from harness.analysis.probes import probe_scopes
from harness.cli.app import app
from harness.io.pairs import load_pairs, write_pairs
from harness.io.runs import load_run
from harness.serve.runner import ServerHandle
from tests.helpers import SAMPLE, write_run


def test_the_excess_is_the_flip_rate_minus_the_null_item_by_item(tmp_path: Path) -> None:
    original = [0, 1, 2, 0, 1, 0, 3, 0, 0, 1] * 4
    probed = [1, 1, 2, 0, 2, 0, 3, 1, 0, 1] * 4  # 3 of 10 changed
    repeat = [0, 1, 2, 1, 1, 0, 3, 0, 0, 1] * 4  # 1 of 10 changed
    runs = [load_run(write_run(tmp_path / name, v, clusters=20)) for name, v in
            (("a", original), ("probe", probed), ("null", repeat))]
    scope = next(s for s in probe_scopes(runs[0], runs[1], null=runs[2], n_boot=500) if s.scope == "hate")
    assert scope.flip_rate == pytest.approx(0.3) and scope.null_rate == pytest.approx(0.1)
    assert scope.excess == pytest.approx(0.2) and scope.null_items == 40
    lo, hi = scope.excess_ci
    assert lo is not None and hi is not None and lo < 0.2 < hi
    at_zero = next(s for s in probe_scopes(runs[0], runs[1], n_boot=500) if s.scope == "hate")  # nothing sampled
    assert at_zero.null_rate == 0.0 and at_zero.null_rate_ci == [None, None]
    assert at_zero.excess == pytest.approx(0.3) and at_zero.excess_ci == pytest.approx(at_zero.flip_rate_ci)


def test_the_paired_interval_is_narrower_than_two_unpaired_ones(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    shaky = np.repeat(rng.random(30) < 0.5, 4)  # half the clusters flip often, whatever is asked
    base = rng.integers(0, 4, 120)
    flip = lambda p: np.where(shaky & (rng.random(120) < p), (base + 1) % 4, base)
    runs = [load_run(write_run(tmp_path / n, list(map(int, v)), clusters=30)) for n, v in
            (("a", base), ("probe", flip(0.6)), ("null", flip(0.5)))]
    scope = next(s for s in probe_scopes(runs[0], runs[1], null=runs[2], n_boot=1000) if s.scope == "hate")
    paired = scope.excess_ci[1] - scope.excess_ci[0]  # type: ignore[operator]
    unpaired = 2 * 1.96 * np.hypot(*(np.diff(ci)[0] / 3.92 for ci in (scope.flip_rate_ci, scope.null_rate_ci)))
    assert paired < unpaired


@pytest.mark.slow
def test_a_probe_above_temperature_zero_grades_a_null_repeat(
    cli: CliRunner, server: ServerHandle, tmp_path: Path
) -> None:
    data = write_pairs(load_pairs(SAMPLE).head(30), tmp_path / "pairs.jsonl")
    run = tmp_path / "run"
    cache = ["--quiet", "--cache-dir", str(tmp_path / "cache")]
    graded = cli.invoke(app, ["grade", str(data), "--base-url", server.base_url, "--temperature", "0.7", "--seed",
                                 "5", "-o", str(run), *cache])
    assert graded.exit_code == 0, graded.output
    probe = ["probe", str(run), "--kind", "verbosity", "--base-url", server.base_url, "--n-boot", "200", *cache]
    result = cli.invoke(app, [*probe, "--json"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    null = run / "probe-verbosity" / "null"
    assert found["null"] == str(null)
    manifest = json.loads((null / "manifest.json").read_text())
    assert manifest["params"]["seed"] == 6 and manifest["params"]["temperature"] == 0.7
    assert manifest["targets"] == ["response"]
    probe_manifest = json.loads((run / "probe-verbosity" / "run" / "manifest.json").read_text())
    assert probe_manifest["params"]["seed"] == 6  # the probe is another draw too, with the null's seed
    top = next(s for s in found["scopes"] if s["side"] == "response" and s["scope"] == "any")
    verdicts = {}
    for name, folder in (("a", run), ("probe", run / "probe-verbosity" / "run"), ("null", null)):
        records = map(json.loads, (folder / "labels.jsonl").read_text().splitlines())
        verdicts[name] = {r["id"]: max(r["severity"].values()) for r in records
                          if r["target"] == "response" and r["status"] == "ok"}
    a, probed, repeat = verdicts["a"], verdicts["probe"], verdicts["null"]
    shared = set(a) & set(probed) & set(repeat)
    by_hand = sum((a[i] != probed[i]) - (a[i] != repeat[i]) for i in shared)
    assert top["excess"] == pytest.approx(by_hand / len(shared)) and top["null_items"] == len(shared)
    assert 0 < top["null_rate"] < 1  # sampling alone moves verdicts at 0.7
    text = cli.invoke(app, probe).output
    assert "unprobed repeats change" in " ".join(text.split()) and "excess" in text
