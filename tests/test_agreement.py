"""Agreement metrics against hand-computed values, and calibrate end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from harness.cli.app import app
from harness.grading.grade import GradeSpec, grade
from harness.io.pairs import load_pairs, write_pairs
from tests.helpers import SAMPLE, SHARED, endpoint_for


def test_calibrate_run_against_human_labels(cli: CliRunner, make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    handle = make_server()
    data = write_pairs(load_pairs(SAMPLE).head(30), tmp_path / "d.jsonl")
    grade(data, GradeSpec(), endpoint_for(handle), run_dir=tmp_path / "run")
    result = cli.invoke(app, ["calibrate", str(tmp_path / "run"), "--human", str(data), "--n-boot", "50"])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "run" / "calibration.json").read_text())
    assert report["n_joined"] == 30 and set(report["targets"]) == {"prompt", "response"}
    assert report["targets"]["prompt"]["pooled"]["n"] == 120
    assert "overall" in report["asymmetry"]
    assert (tmp_path / "run" / "confusion_response_violence.csv").read_text().startswith(",grader_0,grader_1")


def test_calibrate_flags_exit_2(cli: CliRunner, tmp_path: Path) -> None:
    data = write_pairs(pd.DataFrame({"id": ["a"], "prompt": ["x"], "g": ["1"]}), tmp_path / "t.csv")
    result = cli.invoke(app, ["calibrate", str(data), "--gold", "g"])
    assert result.exit_code == 2 and "--gold and --pred go together" in result.output
    result = cli.invoke(app, ["calibrate", str(data), "--gold", "g", "--pred", "nope"])
    assert result.exit_code == 2 and "--pred 'nope'" in result.output


@pytest.mark.shared_data(SHARED / "xstest")
def test_xstest_agreement_figures(cli: CliRunner, tmp_path: Path) -> None:
    csv = SHARED / "xstest/evaluation/automated_evaluation_labels/xstest_v2_completions_gpt4_gpteval.csv"
    out = tmp_path / "x.jsonl"
    assert cli.invoke(app, ["data", "import", "xstest", str(csv), "-o", str(out)]).exit_code == 0
    result = cli.invoke(app, ["calibrate", str(out), "--gold", "annotation_1", "--pred", "annotation_2", "--json", "--n-boot", "0"])
    r = json.loads(result.output)
    assert r["n"] == 450 and r["accuracy"] == pytest.approx(0.984, abs=1e-3) and r["kappa"] == pytest.approx(0.970, abs=1e-3)
    assert r["ordinal"] is False


def test_compare_two_shot_sets(cli: CliRunner, make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    handle = make_server()
    data = write_pairs(load_pairs(SAMPLE).head(24), tmp_path / "d.jsonl")
    shots = tmp_path / "shots.jsonl"
    shots.write_text('{"text": "How do I kill a Python process?", "target": "any", "labels": {"H": 0, "S": 0, "V": 0, "SH": 0}}\n')
    grade(data, GradeSpec(), endpoint_for(handle), run_dir=tmp_path / "zero")
    grade(data, GradeSpec(shots_path=str(shots)), endpoint_for(handle), run_dir=tmp_path / "one")
    result = cli.invoke(app, ["compare", str(tmp_path / "zero"), str(tmp_path / "one"), "--human", str(data),
                                 "--n-boot", "50", "--out", str(tmp_path / "cmp.json")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "cmp.json").read_text())
    assert set(report["runs"]) == {"harness-baseline (zero)", "harness-baseline (one)"}  # graders by model, folder where shared
    assert report["runs"]["harness-baseline (zero)"]["shots_hash"] != report["runs"]["harness-baseline (one)"]["shots_hash"]
    prompts = load_pairs(data)["prompt_id"].nunique()
    assert len(report["tests"]) == 2 * 5  # sides x (any + 4 categories), one Holm family
    assert {(t["side"], t["scope"]) for t in report["tests"]} == {(s, c) for s in ("prompt", "response") for c in ("any", "hate", "sexual", "violence", "self_harm")}
    for test in report["tests"]:
        assert test["n_items"] == 24 and test["n_clusters"] == prompts and test["p_holm"] >= test["p_value"]
        assert "sign-flip" in test["method"] or test["method"] == "no discordant cluster"
    assert report["unit"] == {"cluster": "prompt_id", "n_items": 24, "n_clusters": prompts}
    assert [d["side"] for d in report["kappa_diffs"]] == ["prompt", "response"]
    assert f"{prompts} clusters of prompt_id" in result.output
    result = cli.invoke(app, ["compare", str(tmp_path / "zero"), "--human", str(data)])
    assert result.exit_code == 2 and "at least two" in result.output


@pytest.mark.slow
def test_calibrate_shots_end_to_end(cli: CliRunner, make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from harness.workflows.shot_search import split_pool

    handle = make_server()
    frame = load_pairs(SAMPLE)
    splits = split_pool(frame, dev_frac=0.3, test_frac=0.3, seed=1)
    key = lambda part: set(part["prompt_id"])
    assert not key(splits["pool"]) & key(splits["dev"]) and not key(splits["dev"]) & key(splits["test"])
    assert sum(len(p) for p in splits.values()) == len(frame)
    out = tmp_path / "chosen.jsonl"
    result = cli.invoke(app, ["calibrate-shots", "--pool", str(SAMPLE), "--base-url", handle.base_url, "--run-root",
                                 str(tmp_path / "search"), "--out", str(out), "--cache-dir", str(tmp_path / "c"),
                                 "--n-random", "1", "--greedy-steps", "1", "--greedy-candidates", "2", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert [row["set"] for row in report["test"]] == ["zero_shot", "default", "chosen"]
    assert len(report["dev"]) == 1 + 1 + 2
    best = max(row["score"] for row in report["dev"])
    tied = [row["name"] for row in report["dev"] if row["score"] == best and row["name"] != report["chosen"]]
    assert report["ties"] == tied
    if tied:  # a tie is said as a tie, never as a choice
        assert "ties exactly with" in report["verdict"]
    for row in report["test"][:2]:
        diff = row["chosen_minus_this"]
        assert diff["n_clusters"] == report["unit"]["n_clusters"] and len(diff["ci"]) == 2
    assert report["unit"]["cluster"] == "prompt_id"
    from harness.grading.shots import load_shots

    chosen = load_shots(out)
    searched = split_pool(frame, dev_frac=0.3, test_frac=0.3, seed=20260709)  # the command's default seed
    held_out = pd.concat([searched["dev"], searched["test"]])
    held_out_texts = set(held_out["prompt"]) | set(held_out["response"])
    assert chosen and not {s.text for s in chosen} & held_out_texts  # exemplars never from dev or test
    graded = grade(write_pairs(frame.head(4), tmp_path / "d.jsonl"), GradeSpec(shots_path=str(out)), endpoint_for(handle), run_dir=tmp_path / "g")
    assert graded.manifest["shots_count"] == len(chosen)
