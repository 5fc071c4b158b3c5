"""The exemplar search: splits by prompt, candidates judged on dev, the choice judged on held-out test."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from harness.cli.app import app
from harness.grading.grade import GradeSpec, grade
from harness.io.pairs import load_pairs, write_pairs
from tests.helpers import SAMPLE, endpoint_for


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
    graded = grade(
        write_pairs(frame.head(4), tmp_path / "d.jsonl"),
        GradeSpec(shots_path=str(out)),
        endpoint_for(handle),
        run_dir=tmp_path / "g",
    )
    assert graded.manifest["shots_count"] == len(chosen)


def test_the_shot_search_splits_by_prompt_even_without_prompt_id() -> None:
    from harness.workflows.shot_search import exemplar_candidates, pool_texts, split_pool

    frame = load_pairs(SAMPLE).drop(columns=["prompt_id"])  # clusters fall back to the prompt text, not the id
    splits = split_pool(frame, dev_frac=0.3, test_frac=0.3, seed=20260709)
    prompts = {name: set(part["prompt"]) for name, part in splits.items()}
    assert not prompts["pool"] & prompts["test"] and not prompts["dev"] & prompts["test"]  # were 48 and 37 shared texts
    held_out = pool_texts(splits["dev"]) | pool_texts(splits["test"])
    assert not {s.text for shots in exemplar_candidates(splits["pool"], held_out).values() for s in shots} & held_out


def test_the_selection_is_recommended_only_when_held_out_test_says_better() -> None:
    from harness.results.common import Difference
    from harness.results.shots import TestSet
    from harness.workflows.shot_search import recommend

    def row(name: str, low: float, high: float) -> TestSet:
        return TestSet(set=name, shots=0, score=0.4, chosen_minus_this=Difference(diff=(low + high) / 2, ci=[low, high],
                                                                                 n_items=90, n_clusters=30))

    better = [row("zero_shot", 0.01, 0.1), row("default", 0.02, 0.2), TestSet(set="chosen", shots=6, score=0.5)]
    assert recommend("random1", better)[0] == "chosen"
    worse = [row("zero_shot", -0.04, 0.002), row("default", -0.1, -0.01), TestSet(set="chosen", shots=6, score=0.3)]
    recommended, sentence = recommend("random1", worse)
    assert recommended == "default" and "worse than default" in sentence
    even = [row("zero_shot", -0.02, 0.05), row("default", -0.03, 0.04), TestSet(set="chosen", shots=6, score=0.3)]
    assert recommend("random1", even)[1].startswith("not recommended")
