"""``harness jury`` through the CLI: a jury is a run folder calibrated like any grader; the members' sides checked
up front, two members, samples as probabilities."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli.app import app
from harness.io.pairs import load_pairs, write_pairs
from tests.helpers import RUNNER, SAMPLE, head_pairs


def _grade(server, tmp_path: Path, name: str, *extra: str) -> Path:  # type: ignore[no-untyped-def]
    data = tmp_path / "pairs.jsonl"
    if not data.exists():
        write_pairs(load_pairs(SAMPLE).head(12), data)
    folder = tmp_path / name
    done = RUNNER.invoke(
        app,
        [
            "grade",
            str(data),
            "--base-url",
            server.base_url,
            "-o",
            str(folder),
            "--quiet",
            "--cache-dir",
            str(tmp_path / "cache"),
            *extra,
        ],
    )
    assert done.exit_code == 0, done.output
    return folder


def test_a_member_that_did_not_grade_a_side_is_named_and_that_side_left_out(
    cli: CliRunner, server, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
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
    votes = [
        {(r["id"], r["target"]): r for r in map(json.loads, (m / "labels.jsonl").read_text().splitlines())}
        for m in members
    ]
    for record in map(json.loads, (tmp_path / "jury" / "labels.jsonl").read_text().splitlines()):
        if record["target"] != "relevance":
            key = (record["id"], record["target"])
            assert record["severity"] == {c: max(v[key]["severity"][c] for v in votes) for c in record["severity"]}


def test_mean_probability_reads_a_samples_run(cli: CliRunner, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sampled = _grade(
        server, tmp_path, "sampled", "--model", "harness-baseline", "--samples", "3", "--temperature", "0.7"
    )
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


def _three_runs(server, tmp_path: Path) -> list[Path]:  # type: ignore[no-untyped-def]
    data = head_pairs(tmp_path, 30)
    folders = []
    for model in ("harness-baseline", "harness-small", "harness-literal"):
        folder = tmp_path / model
        done = RUNNER.invoke(
            app,
            [
                "grade",
                str(data),
                "--base-url",
                server.base_url,
                "--model",
                model,
                "--logprobs",
                "-o",
                str(folder),
                "--quiet",
                "--cache-dir",
                str(tmp_path / "cache"),
            ],
        )
        assert done.exit_code == 0, done.output
        folders.append(folder)
    return folders


@pytest.mark.slow
def test_a_jury_is_a_run_folder_calibrated_like_any_grader(cli: CliRunner, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    members = _three_runs(server, tmp_path)
    jury = tmp_path / "jury"
    made = cli.invoke(app, ["jury", *map(str, members), "--rule", "majority", "-o", str(jury)])
    assert made.exit_code == 0, made.output
    manifest = json.loads((jury / "manifest.json").read_text())
    assert manifest["params"]["jury"]["members"] == [str(m) for m in members]
    assert manifest["model"].startswith("jury-majority(harness-baseline, harness-small, harness-literal")
    records = {(r["id"], r["target"]): r for r in map(json.loads, (jury / "labels.jsonl").read_text().splitlines())}
    votes = [
        {(r["id"], r["target"]): r for r in map(json.loads, (m / "labels.jsonl").read_text().splitlines())}
        for m in members
    ]
    for key, record in records.items():  # the majority by hand, ties to the higher severity
        if key[1] == "relevance":
            continue
        ok = [v[key]["severity"] for v in votes if v[key]["status"] == "ok"]
        flags = sum(max(s.values()) >= 1 for s in ok)
        assert (max(record["severity"].values()) >= 1) == (2 * flags >= len(ok))  # the item: the members' majority
        if "no category by itself" in record["rationale"]:
            continue
        for category in ("hate", "sexual", "violence", "self_harm"):
            values = [s[category] for s in ok]
            top = max(values.count(x) for x in values)
            assert record["severity"][category] == max(x for x in values if values.count(x) == top)
    calibrated = cli.invoke(
        app, ["calibrate", str(jury), "--human", str(tmp_path / "pairs.jsonl"), "--n-boot", "100", "--json"]
    )
    assert calibrated.exit_code == 0, calibrated.output
    assert json.loads(calibrated.stdout)["n_joined"] == 30
    compared = cli.invoke(app, ["compare", str(jury), *map(str, members), "--human", str(tmp_path / "pairs.jsonl"),
                                   "--n-boot", "100", "--json", "-o", str(tmp_path / "cmp.json")])
    assert compared.exit_code == 0, compared.output
    assert len(json.loads(compared.stdout)["runs"]) == 4
    # its own: replaced
    mean = cli.invoke(app, ["jury", *map(str, members), "--rule", "mean-probability", "-o", str(jury)])
    assert mean.exit_code == 0, mean.output
    first = json.loads((jury / "labels.jsonl").read_text().splitlines()[0])
    assert abs(sum(first["probabilities"]["hate"]) - 1) < 1e-3
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine", encoding="utf-8")
    refused = cli.invoke(app, ["jury", *map(str, members), "-o", str(tmp_path / "mine")])
    assert refused.exit_code == 2 and (tmp_path / "mine" / "notes.txt").read_text() == "mine"
