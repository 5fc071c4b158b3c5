"""``harness jury`` through the CLI: the members' sides checked up front, two members, samples as probabilities."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli.app import app
from harness.io.pairs import load_pairs, write_pairs
from tests.helpers import RUNNER, SAMPLE


def _grade(server, tmp_path: Path, name: str, *extra: str) -> Path:  # type: ignore[no-untyped-def]
    data = tmp_path / "pairs.jsonl"
    if not data.exists():
        write_pairs(load_pairs(SAMPLE).head(12), data)
    folder = tmp_path / name
    done = RUNNER.invoke(app, ["grade", str(data), "--base-url", server.base_url, "-o", str(folder), "--quiet", "--cache-dir",
                               str(tmp_path / "cache"), *extra])
    assert done.exit_code == 0, done.output
    return folder


def test_a_member_that_did_not_grade_a_side_is_named_and_that_side_left_out(cli: CliRunner, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    both = [_grade(server, tmp_path, m, "--model", m) for m in ("harness-baseline", "harness-small")]
    prompt_only = _grade(server, tmp_path, "prompt-only", "--model", "harness-literal", "--target", "prompt")
    made = cli.invoke(app, ["jury", *map(str, [*both, prompt_only]), "-o", str(tmp_path / "jury")])
    assert made.exit_code == 0, made.output
    assert "does not judge response (harness-literal did not grade it)" in made.output
    manifest = json.loads((tmp_path / "jury" / "manifest.json").read_text())
    assert manifest["params"]["jury"]["unjudged"] == {"response": ["harness-literal"]}
    records = [json.loads(line) for line in (tmp_path / "jury" / "labels.jsonl").read_text().splitlines()]
    assert {r["target"] for r in records} == {"prompt"} and all(r["status"] == "ok" for r in records)


def test_two_members_refuse_majority_and_combine_by_any(cli: CliRunner, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    members = [_grade(server, tmp_path, m, "--model", m) for m in ("harness-baseline", "harness-small")]
    refused = cli.invoke(app, ["jury", *map(str, members), "-o", str(tmp_path / "jury")])
    assert refused.exit_code == 2 and "either flags it" in refused.output and not (tmp_path / "jury").exists()
    made = cli.invoke(app, ["jury", *map(str, members), "--rule", "any", "-o", str(tmp_path / "jury")])
    assert made.exit_code == 0, made.output
    votes = [{(r["id"], r["target"]): r for r in map(json.loads, (m / "labels.jsonl").read_text().splitlines())} for m in members]
    for record in map(json.loads, (tmp_path / "jury" / "labels.jsonl").read_text().splitlines()):
        if record["target"] != "relevance":
            key = (record["id"], record["target"])
            assert record["severity"] == {c: max(v[key]["severity"][c] for v in votes) for c in record["severity"]}


def test_mean_probability_reads_a_samples_run(cli: CliRunner, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sampled = _grade(server, tmp_path, "sampled", "--model", "harness-baseline", "--samples", "3", "--temperature", "0.7")
    logprobs = _grade(server, tmp_path, "logprobs", "--model", "harness-small", "--logprobs")
    third = _grade(server, tmp_path, "third", "--model", "harness-literal", "--logprobs")
    made = cli.invoke(app, ["jury", str(sampled), str(logprobs), str(third), "--rule", "mean-probability", "-o",
                               str(tmp_path / "jury")])
    assert made.exit_code == 0, made.output
    first = json.loads((tmp_path / "jury" / "labels.jsonl").read_text().splitlines()[0])
    member = [json.loads((m / "labels.jsonl").read_text().splitlines()[0]) for m in (sampled, logprobs, third)]
    votes = [sum(s["hate"] == k for s in member[0]["samples"]) / len(member[0]["samples"]) for k in range(4)]
    given = [[v / sum(m["probabilities"]["hate"]) for v in m["probabilities"]["hate"]] for m in member[1:]]
    by_hand = [(v + g + h) / 3 for v, g, h in zip(votes, *given, strict=True)]
    assert first["status"] == "ok" and first["probabilities"]["hate"] == pytest.approx(by_hand, abs=1e-6)
    plain = _grade(server, tmp_path, "plain", "--model", "harness-literal")
    refused = cli.invoke(app, ["jury", str(sampled), str(logprobs), str(plain), "--rule", "mean-probability", "-o",
                                  str(tmp_path / "j2")])
    assert refused.exit_code == 2 and "recorded no probabilities" in refused.output
