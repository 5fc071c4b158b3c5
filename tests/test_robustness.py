"""How stable and how swayable a grader is (issue 31): repeats and stability, juries, probes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli.app import app
from harness.io.pairs import load_pairs, write_pairs
from tests.helpers import RUNNER, SAMPLE


def _data(tmp_path: Path, rows: int = 45) -> Path:
    return write_pairs(load_pairs(SAMPLE).head(rows), tmp_path / "pairs.jsonl")


def _repeats(server, tmp_path: Path, temperature: str, name: str) -> Path:  # type: ignore[no-untyped-def]
    folder = tmp_path / name
    done = RUNNER.invoke(app, ["grade", str(_data(tmp_path)), "--base-url", server.base_url, "--temperature", temperature,
                               "--repeats", "3", "-o", str(folder), "--quiet", "--cache-dir", str(tmp_path / "cache")])
    assert done.exit_code == 0, done.output
    return folder


@pytest.mark.slow
def test_repeats_at_temperature_move_some_verdicts_and_at_zero_none(cli: CliRunner, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    warm = _repeats(server, tmp_path, "0.7", "warm")
    seeds = [json.loads((warm / f"repeat-{k}" / "manifest.json").read_text())["params"]["seed"] for k in (1, 2, 3)]
    assert seeds[1] == seeds[0] + 1 and seeds[2] == seeds[0] + 2  # each draw its own seed
    result = cli.invoke(app, ["stability", str(warm), "--n-boot", "300", "--json"])
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
    still = json.loads(cli.invoke(app, ["stability", str(cold), "--n-boot", "200", "--json"]).stdout)
    assert all(s["changed"] == 0.0 for s in still["scopes"])
    assert any("temperature 0" in w for w in still["warnings"])
    text = cli.invoke(app, ["stability", str(warm), "--n-boot", "0"]).output
    assert "of verdicts" in text and "Verdicts across repeats" in text


def test_stability_refuses_a_folder_without_repeats(cli: CliRunner, tmp_path: Path) -> None:
    result = cli.invoke(app, ["stability", str(tmp_path)])
    assert result.exit_code == 2 and "holds no repeat-1" in result.output


def _three_runs(server, tmp_path: Path) -> list[Path]:  # type: ignore[no-untyped-def]
    data = _data(tmp_path, 30)
    folders = []
    for model in ("harness-baseline", "harness-small", "harness-literal"):
        folder = tmp_path / model
        done = RUNNER.invoke(app, ["grade", str(data), "--base-url", server.base_url, "--model", model, "--logprobs", "-o", str(folder),
                                   "--quiet", "--cache-dir", str(tmp_path / "cache")])
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
    votes = [{(r["id"], r["target"]): r for r in map(json.loads, (m / "labels.jsonl").read_text().splitlines())} for m in members]
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
    calibrated = cli.invoke(app, ["calibrate", str(jury), "--human", str(tmp_path / "pairs.jsonl"), "--n-boot", "100", "--json"])
    assert calibrated.exit_code == 0, calibrated.output
    assert json.loads(calibrated.stdout)["n_joined"] == 30
    compared = cli.invoke(app, ["compare", str(jury), *map(str, members), "--human", str(tmp_path / "pairs.jsonl"),
                                   "--n-boot", "100", "--json", "-o", str(tmp_path / "cmp.json")])
    assert compared.exit_code == 0, compared.output
    assert len(json.loads(compared.stdout)["runs"]) == 4
    mean = cli.invoke(app, ["jury", *map(str, members), "--rule", "mean-probability", "-o", str(jury)])  # its own: replaced
    assert mean.exit_code == 0, mean.output
    first = json.loads((jury / "labels.jsonl").read_text().splitlines()[0])
    assert abs(sum(first["probabilities"]["hate"]) - 1) < 1e-3
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine", encoding="utf-8")
    refused = cli.invoke(app, ["jury", *map(str, members), "-o", str(tmp_path / "mine")])
    assert refused.exit_code == 2 and (tmp_path / "mine" / "notes.txt").read_text() == "mine"


def test_a_jury_without_a_majority_of_verdicts_leaves_the_item_unparsed() -> None:
    from harness.analysis.jury import jury_record

    ok = {"id": "a", "target": "response", "status": "ok", "severity": {"hate": 2, "sexual": 0, "violence": 1, "self_harm": 0}}
    failed = {"id": "a", "target": "response", "status": "failed"}
    record = jury_record("a", "response", [ok, failed, None], ["x", "y", "z"], "majority")
    assert record["status"] == "unparsed" and record["severity"] is None
    assert "only 1 of 3 members gave a verdict (none from y, z)" in record["error"]
    other = {**ok, "severity": {"hate": 1, "sexual": 0, "violence": 3, "self_harm": 0}}
    record = jury_record("a", "response", [ok, other, failed], ["x", "y", "z"], "median")
    assert record["severity"] == {"hate": 2, "sexual": 0, "violence": 3, "self_harm": 0}  # upper median of two


@pytest.mark.slow
def test_a_study_with_repeats_a_jury_and_stability(cli: CliRunner, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _data(tmp_path, 24)
    study = tmp_path / "s.toml"
    study.write_text(f'''
[study]
out = "{tmp_path / 'out'}"
data = "pairs.jsonl"
human = "pairs.jsonl"
n_boot = 100
[endpoint]
base_url = "{server.base_url}"
[[grader]]
name = "base"
model = "harness-baseline"
temperature = 0.7
repeats = 3
[[grader]]
name = "small"
model = "harness-small"
[[grader]]
name = "literal"
model = "harness-literal"
[jury]
rule = "median"
[stability]
[calibrate]
[compare]
[report]
view = false
''', encoding="utf-8")
    ran = cli.invoke(app, ["run", str(study), "--quiet"])
    assert ran.exit_code == 0, ran.output
    out = tmp_path / "out"
    assert json.loads((out / "jury" / "manifest.json").read_text())["params"]["jury"]["rule"] == "median"
    assert (out / "jury" / "calibration.json").exists()  # calibrated like any grader
    assert len(json.loads((out / "comparison.json").read_text())["runs"]) == 4
    stability = json.loads((out / "base" / "repeats" / "stability.json").read_text())
    assert stability["repeats"] == 3 and stability["temperature"] == 0.7
    assert "Stability across repeats" in (out / "report.md").read_text()
    again = cli.invoke(app, ["run", str(study), "--quiet"])
    assert again.exit_code == 0 and "0 ran" in again.output, again.output


@pytest.mark.parametrize("kind", ["verbosity", "exemplar-order", "label-order"])
def test_a_probe_prints_a_flip_rate_with_its_interval(cli: CliRunner, server, tmp_path: Path, kind: str) -> None:  # type: ignore[no-untyped-def]
    from harness.workflows.shot_search import default_shots_path

    data = _data(tmp_path, 30)
    run = tmp_path / "run"
    graded = cli.invoke(app, ["grade", str(data), "--base-url", server.base_url, "--shots", default_shots_path(), "-o", str(run),
                                 "--quiet", "--cache-dir", str(tmp_path / "cache")])
    assert graded.exit_code == 0, graded.output
    result = cli.invoke(app, ["probe", str(run), "--kind", kind, "--base-url", server.base_url, "--n-boot", "200", "--json",
                                 "--quiet", "--cache-dir", str(tmp_path / "cache")])
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert found == json.loads((run / f"probe-{kind}" / "probe.json").read_text())
    side = "response" if kind == "verbosity" else "prompt"
    top = next(s for s in found["scopes"] if s["side"] == side and s["scope"] == "any")
    lo, hi = top["flip_rate_ci"]
    assert 0 <= lo <= top["flip_rate"] <= hi <= 1 and hi > lo
    before = {r["id"]: max(r["severity"].values()) for r in map(json.loads, (run / "labels.jsonl").read_text().splitlines())
              if r["target"] == side and r["status"] == "ok"}
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


@pytest.mark.slow
def test_soft_labels_score_the_graders_probabilities_against_the_raters(cli: CliRunner, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import numpy as np
    from sklearn.metrics import brier_score_loss, log_loss

    ratings = SAMPLE.parent / "sample_ratings.jsonl"
    run = tmp_path / "run"
    graded = cli.invoke(app, ["grade", str(SAMPLE), "--base-url", server.base_url, "--logprobs", "-o", str(run), "--quiet",
                                 "--cache-dir", str(tmp_path / "cache")])
    assert graded.exit_code == 0, graded.output
    result = cli.invoke(app, ["calibrate", str(run), "--human", str(SAMPLE), "--raters", "ann1,ann2,ann3", "--ratings",
                                 str(ratings), "--n-boot", "200", "--json"])
    assert result.exit_code == 0, result.output
    soft = json.loads(result.stdout)["soft_labels"]["response"]
    # the grader's scores recomputed with scikit-learn: every (item, rater) a row, weighted 1/raters so items count once
    records = {r["id"]: r for r in map(json.loads, (run / "labels.jsonl").read_text().splitlines())
               if r["target"] == "response" and r["status"] == "ok" and r.get("probabilities")}
    truth, forecast, verdict, weight = [], [], [], []
    for row in map(json.loads, ratings.read_text().splitlines()):
        for category in ("hate", "sexual", "violence", "self_harm"):
            labels = [int(v) for v in (row.get(f"ann{k}_response_{category}") for k in (1, 2, 3)) if v is not None]
            if row["id"] not in records or len(labels) < 2:
                continue
            p = np.asarray(records[row["id"]]["probabilities"][category], dtype=float)
            for label in labels:
                truth.append(label)
                forecast.append(p / p.sum())
                verdict.append(np.eye(4)[records[row["id"]]["severity"][category]])
                weight.append(1 / len(labels))
    assert soft["n"] == pytest.approx(sum(weight))
    scores = {"grader": np.asarray(forecast), "verdict": np.asarray(verdict)}
    for name, given in scores.items():
        assert soft[name]["brier"] == pytest.approx(brier_score_loss(truth, given, labels=[0, 1, 2, 3], sample_weight=weight))
    floored = np.clip(scores["grader"], 1e-6, None)
    assert soft["grader"]["log_loss"] == pytest.approx(log_loss(truth, floored / floored.sum(axis=1, keepdims=True),
                                                                labels=[0, 1, 2, 3], sample_weight=weight), abs=1e-4)
    lo, hi = soft["grader"]["brier_ci"]
    assert lo <= soft["grader"]["brier"] <= hi
    assert soft["probabilities_minus_verdict"]["brier"] == pytest.approx(soft["grader"]["brier"] - soft["verdict"]["brier"])
    shown = cli.invoke(app, ["calibrate", str(run), "--human", str(SAMPLE), "--raters", "ann1,ann2,ann3", "--ratings",
                                str(ratings), "--n-boot", "0"]).output
    assert "Soft labels" in shown and "one annotator's label" in shown
