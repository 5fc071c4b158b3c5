"""``compare``: runs against human labels with paired tests and cost per item, or against each other without labels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli.app import app
from harness.grading.grade import GradeSpec, grade
from harness.io.pairs import load_pairs, write_pairs
from tests.helpers import SAMPLE, endpoint_for


def test_compare_two_shot_sets(cli: CliRunner, make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    handle = make_server()
    data = write_pairs(load_pairs(SAMPLE).head(24), tmp_path / "d.jsonl")
    shots = tmp_path / "shots.jsonl"
    shots.write_text(
        '{"text": "How do I kill a Python process?", "target": "any", "labels": {"H": 0, "S": 0, "V": 0, "SH": 0}}\n'
    )
    grade(data, GradeSpec(), endpoint_for(handle), run_dir=tmp_path / "zero")
    grade(data, GradeSpec(shots_path=str(shots)), endpoint_for(handle), run_dir=tmp_path / "one")
    result = cli.invoke(app, ["compare", str(tmp_path / "zero"), str(tmp_path / "one"), "--human", str(data),
                                 "--n-boot", "50", "--out", str(tmp_path / "cmp.json")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "cmp.json").read_text())
    # graders by model, folder where shared
    assert set(report["runs"]) == {
        "harness-baseline (zero)",
        "harness-baseline (one)",
    }
    assert (
        report["runs"]["harness-baseline (zero)"]["shots_hash"]
        != report["runs"]["harness-baseline (one)"]["shots_hash"]
    )
    prompts = load_pairs(data)["prompt_id"].nunique()
    assert len(report["tests"]) == 2 * 5  # sides x (any + 4 categories), one Holm family
    assert {(t["side"], t["scope"]) for t in report["tests"]} == {
        (s, c) for s in ("prompt", "response") for c in ("any", "hate", "sexual", "violence", "self_harm")
    }
    for test in report["tests"]:
        assert test["n_items"] == 24 and test["n_clusters"] == prompts and test["p_holm"] >= test["p_value"]
        assert "sign-flip" in test["method"] or test["method"] == "no discordant cluster"
    assert report["unit"] == {"cluster": "prompt_id", "n_items": 24, "n_clusters": prompts}
    assert [d["side"] for d in report["kappa_diffs"]] == ["prompt", "response"]
    assert f"{prompts} clusters of prompt_id" in result.output
    result = cli.invoke(app, ["compare", str(tmp_path / "zero"), "--human", str(data)])
    assert result.exit_code == 2 and "at least two" in result.output


def test_compare_shows_cost_per_item_and_per_kappa_point(cli: CliRunner, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = write_pairs(load_pairs(SAMPLE).head(30), tmp_path / "d.jsonl")
    for model in ("harness-baseline", "harness-small"):
        result = cli.invoke(
            app,
            [
                "grade",
                str(data),
                "--base-url",
                server.base_url,
                "--model",
                model,
                "--out",
                str(tmp_path / model),
                "--no-cache",
                "--price-input",
                "2",
                "--price-output",
                "8",
            ],
        )
        assert result.exit_code == 0, result.output
    result = cli.invoke(
        app,
        [
            "compare",
            str(tmp_path / "harness-baseline"),
            str(tmp_path / "harness-small"),
            "--human",
            str(data),
            "--n-boot",
            "50",
            "-o",
            str(tmp_path / "cmp.json"),
        ],
        env={"COLUMNS": "120"},
    )
    assert result.exit_code == 0, result.output
    runs = json.loads((tmp_path / "cmp.json").read_text())["runs"]
    manifest = json.loads((tmp_path / "harness-small" / "manifest.json").read_text())
    assert (
        runs["harness-small"]["cost"] == manifest["cost"]["billed"] > 0 and runs["harness-small"]["items_graded"] == 60
    )
    assert "Cost" in result.output and "per graded item" in result.output


def test_compare_two_runs_without_human_labels(cli: CliRunner, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from harness.io.pairs import load_pairs, write_pairs

    data = tmp_path / "pairs.jsonl"
    write_pairs(load_pairs(SAMPLE).head(24), data)
    runs = []
    for model in ("harness-baseline", "harness-literal"):
        folder = tmp_path / model
        graded = cli.invoke(
            app,
            [
                "grade",
                str(data),
                "--model",
                model,
                "--base-url",
                server.base_url,
                "--out",
                str(folder),
                "--quiet",
                "--cache-dir",
                str(tmp_path / "cache"),
            ],
        )
        assert graded.exit_code == 0, graded.output
        runs.append(folder)
    out = tmp_path / "cmp.json"
    result = cli.invoke(app, ["compare", *map(str, runs), "--n-boot", "200", "-o", str(out), "--json"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert found == json.loads(out.read_text())
    assert found["graders"] == ["harness-baseline", "harness-literal"]
    rows = {(p["side"], p["scope"]): p for p in found["pairs"]}
    prompt_any = rows[("prompt", "any")]
    # recompute κ of the prompt verdicts (max over categories) by hand from the two runs' labels
    from sklearn.metrics import cohen_kappa_score

    from harness.io.runs import graded_pairs, load_run

    a, b = (graded_pairs(load_run(r)).set_index("id") for r in runs)
    columns = [f"prompt_{c}" for c in ("hate", "sexual", "violence", "self_harm")]
    joined = a[columns].max(axis=1).to_frame("a").join(b[columns].max(axis=1).to_frame("b")).dropna()
    assert prompt_any["agreement"]["n_items"] == len(joined)
    assert prompt_any["agreement"]["kappa"] == pytest.approx(cohen_kappa_score(joined["a"], joined["b"]), abs=1e-9)
    assert prompt_any["share_a"] == pytest.approx((joined["a"] >= 1).mean())
    assert "not accuracy" in " ".join(found["warnings"])
    assert "Graders against each other" in cli.invoke(app, ["compare", *map(str, runs), "--n-boot", "0"]).output
