"""``harness probe``: a flip rate with its interval, against a null of unprobed repeats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli.app import app
from tests.helpers import head_pairs


@pytest.mark.parametrize("kind", ["verbosity", "exemplar-order", "label-order"])
def test_a_probe_prints_a_flip_rate_with_its_interval(cli: CliRunner, server, tmp_path: Path, kind: str) -> None:  # type: ignore[no-untyped-def]
    from harness.workflows.shot_search import default_shots_path

    data = head_pairs(tmp_path, 30)
    run = tmp_path / "run"
    graded = cli.invoke(
        app,
        [
            "grade",
            str(data),
            "--base-url",
            server.base_url,
            "--shots",
            default_shots_path(),
            "-o",
            str(run),
            "--quiet",
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
    )
    assert graded.exit_code == 0, graded.output
    result = cli.invoke(
        app,
        [
            "probe",
            str(run),
            "--kind",
            kind,
            "--base-url",
            server.base_url,
            "--n-boot",
            "200",
            "--json",
            "--quiet",
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
    )
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert found == json.loads((run / f"probe-{kind}" / "probe.json").read_text())
    side = "response" if kind == "verbosity" else "prompt"
    top = next(s for s in found["scopes"] if s["side"] == side and s["scope"] == "any")
    lo, hi = top["flip_rate_ci"]
    assert 0 <= lo <= top["flip_rate"] <= hi <= 1 and hi > lo
    before = {
        r["id"]: max(r["severity"].values())
        for r in map(json.loads, (run / "labels.jsonl").read_text().splitlines())
        if r["target"] == side and r["status"] == "ok"
    }
    after = {r["id"]: max(r["severity"].values()) for r in
             map(json.loads, (run / f"probe-{kind}" / "run" / "labels.jsonl").read_text().splitlines())
             if r["target"] == side and r["status"] == "ok"}
    shared = set(before) & set(after)
    assert top["flip_rate"] == pytest.approx(sum(before[i] != after[i] for i in shared) / len(shared))
    if kind == "verbosity":
        padded = [json.loads(line) for line in (run / "probe-verbosity" / "padded.jsonl").read_text().splitlines()]
        assert all("formatted for easy reading" in r["response"] for r in padded if r.get("response"))
    text = cli.invoke(app, ["report", str(run)])
    assert text.exit_code == 0 and f"Probe: {kind}" in (run / "report.md").read_text()
