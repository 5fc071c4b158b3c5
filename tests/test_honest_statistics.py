"""Honest planning and calibration statistics (issue 30): plan sizes monotone and never below where the metric is
defined; per-category corrected shares warn by name."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from harness.cli.app import app
from tests.helpers import SAMPLE


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


def test_plan_sizes_are_monotone_in_the_target_and_never_below_the_defined_floor(cli: CliRunner, tmp_path: Path) -> None:
    pilot = _rare_positives(tmp_path)
    recommended = []
    for width in (0.6, 0.4, 0.3):
        result = cli.invoke(app, ["plan", str(pilot), "--gold", "gold", "--pred", "pred", "--metric", "recall",
                                     "--target-width", str(width), "--studies", "60", "--n-boot", "100", "--json",
                                     "-o", str(tmp_path / f"plan-{width}.json")])
        assert result.exit_code == 0, result.output
        plan = json.loads(result.stdout)
        sizes = {s["n_clusters"]: s for s in plan["sizes"]}
        assert plan["n_clusters"] is not None and plan["n_clusters_conservative"] >= plan["n_clusters"]
        for key in ("n_clusters", "n_clusters_conservative"):
            chosen = sizes[plan[key]]
            assert chosen["undefined"] <= 0.05, (key, chosen)  # defined in nearly every simulated study
            assert plan[key] >= plan["defined_floor"]
        widths = [s["width"] for s in sorted(plan["sizes"], key=lambda s: s["n_clusters"]) if s["width"] is not None]
        assert widths == sorted(widths, reverse=True)  # the envelope never widens with more labels
        recommended.append(plan["n_clusters_conservative"])
        small = min(sizes)
        assert sizes[small]["undefined_studies"] > 0  # the undefined studies are counted, not dropped
        assert any("(no interval: counted as missing the target)" in w for w in plan["warnings"])
    assert recommended == sorted(recommended)  # a tighter target never gets a smaller size


def test_plan_refuses_an_assurance_outside_its_bounds(cli: CliRunner, tmp_path: Path) -> None:
    result = cli.invoke(app, ["plan", str(_rare_positives(tmp_path)), "--gold", "gold", "--pred", "pred",
                                 "--target-width", "0.3", "--assurance", "1.5"])
    assert result.exit_code == 2 and "--assurance 1.5: expected at most 0.99" in result.output


def test_per_category_corrected_shares_from_few_clusters_warn_by_name(cli: CliRunner, tmp_path: Path) -> None:
    rows = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines()]
    keep = {f"s{k:02d}" for k in range(1, 41)}  # 40 labelled prompt clusters: enough overall, thin per category
    human = tmp_path / "human.jsonl"
    human.write_text("".join(json.dumps(r) + "\n" for r in rows if r["prompt_id"] in keep), encoding="utf-8")
    result = cli.invoke(app, ["analyze", str(SAMPLE), "--human", str(human), "--by", "model", "--n-boot", "100", "--json",
                                 "-o", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    warnings = json.loads(result.stdout)["corrected"]["warnings"]
    thin = [w for w in warnings if "fewer than 30 labelled clusters in the denominator" in w]
    assert any(w.startswith("all pairs:") and "hate.persistence (" in w for w in thin), warnings
    models = {r["model"] for r in rows}
    assert {w.split(":")[0] for w in thin} >= models  # per group too
    assert any("classic PPI (lambda 1) for" in w and "self_harm." in w for w in warnings)
