"""What a grader is unsure of, end to end over HTTP: token log-probabilities (``grade --logprobs``) and
repeated samples (``grade --samples K``), recorded per label."""

from __future__ import annotations

import json
import math
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli.app import app
from harness.core.constants import CATEGORIES, CATEGORY_CODES
from harness.grading.grade import GradeSpec, grade
from harness.grading.jobs import build_request, user_message
from harness.grading.templates import load_template_set
from harness.io.pairs import load_pairs, write_pairs
from harness.io.runs import read_labels
from tests.helpers import SAMPLE, endpoint_for


def _small(tmp_path: Path, n: int = 12) -> Path:
    return write_pairs(load_pairs(SAMPLE).head(n), tmp_path / "small.jsonl")


def test_logprobs_become_severity_probabilities(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = _small(tmp_path)
    spec = GradeSpec(logprobs=True)
    grade(data, spec, endpoint_for(server), run_dir=tmp_path / "run", cache_dir=tmp_path / "cache")
    records = [r for r in read_labels(tmp_path / "run") if r["status"] == "ok"]
    assert len(records) == 24
    for record in records:
        for category in CATEGORIES:
            probabilities = record["probabilities"][category]
            assert len(probabilities) == 4 and math.isclose(sum(probabilities), 1.0, abs_tol=1e-6)
    # the probabilities are the endpoint's own: sum the raw digits' top_logprobs of one answer by hand
    record = records[0]
    frame = load_pairs(data)
    row = frame[frame["id"] == record["id"]].iloc[0]
    from harness.grading.jobs import item_of
    from harness.grading.shots import load_shots

    templates = load_template_set(None)
    item = item_of(row["id"], record["target"], row["prompt"], row["response"])
    assert item is not None
    request = build_request(spec, templates.system(record["target"], load_shots(None)), user_message(templates, [item]), 300)
    body = json.loads(urllib.request.urlopen(urllib.request.Request(
        f"{server.base_url}/chat/completions", data=json.dumps(request).encode(), headers={"Content-Type": "application/json"})).read())
    tokens = body["choices"][0]["logprobs"]["content"]
    content = body["choices"][0]["message"]["content"]
    for category in CATEGORIES:
        offset = content.index(f'"{CATEGORY_CODES[category]}": {{"raw_0_7": ') + len(f'"{CATEGORY_CODES[category]}": {{"raw_0_7": ')
        position, index = 0, 0
        while position + len(tokens[index]["token"]) <= offset:
            position += len(tokens[index]["token"])
            index += 1
        mass = [0.0] * 4
        for alternative in tokens[index]["top_logprobs"]:
            mass[int(alternative["token"]) // 2] += math.exp(alternative["logprob"])
        expected = [m / sum(mass) for m in mass]
        assert record["probabilities"][category] == pytest.approx(expected, abs=1e-8)  # read where only a raw level follows
        assert record["probability_outside"][category] == pytest.approx(max(0.0, 1 - sum(mass)), abs=1e-8)


def test_samples_vote_and_record_their_agreement(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = _small(tmp_path, 15)
    grade(data, GradeSpec(samples=5, temperature=1.5, targets=("response",)), endpoint_for(server), run_dir=tmp_path / "run")
    records = [r for r in read_labels(tmp_path / "run") if r["status"] == "ok"]
    assert records and all(len(r["samples"]) == 5 for r in records)
    split = 0
    for record in records:
        for category in CATEGORIES:
            votes = Counter(s[category] for s in record["samples"])
            assert votes[record["severity"][category]] == max(votes.values())
            assert record["sample_agreement"][category] == max(votes.values()) / 5
            split += record["sample_agreement"][category] < 1
    assert split > 0  # at temperature 1.5 some answers disagree, and the record says so


def test_samples_at_temperature_zero_is_refused_with_the_flag(cli: CliRunner, tmp_path: Path) -> None:
    data = _small(tmp_path)
    result = cli.invoke(app, ["grade", str(data), "--samples", "3", "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert "--samples 3 at --temperature 0.0" in " ".join(result.output.split())
    assert not (tmp_path / "run").exists()


def test_logprobs_with_several_items_per_request_is_refused(cli: CliRunner, tmp_path: Path) -> None:
    data = _small(tmp_path)
    result = cli.invoke(app, ["grade", str(data), "--logprobs", "--items-per-request", "4", "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert "one item per request" in " ".join(result.output.split())


def test_serve_checks_logprob_parameters(server) -> None:  # type: ignore[no-untyped-def]
    def post(body: dict[str, object]) -> tuple[int, str]:
        request = urllib.request.Request(f"{server.base_url}/chat/completions", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    base = {"model": "harness-baseline", "messages": [{"role": "user", "content": "hello"}]}
    assert post({**base, "top_logprobs": 3})[0] == 400
    status, text = post({**base, "logprobs": True, "top_logprobs": 30})
    assert status == 400 and "top_logprobs" in text
    assert post({**base, "n": 0})[0] == 400
    status, text = post({**base, "logprobs": True, "top_logprobs": 2})
    tokens = json.loads(text)["choices"][0]["logprobs"]["content"]
    assert status == 200 and "".join(t["token"] for t in tokens) == json.loads(text)["choices"][0]["message"]["content"]


def test_calibrate_shows_the_reliability_of_the_probabilities(cli: CliRunner, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = _small(tmp_path, 30)
    grade(data, GradeSpec(logprobs=True), endpoint_for(server), run_dir=tmp_path / "run")
    result = cli.invoke(app, ["calibrate", str(tmp_path / "run"), "--human", str(data), "--n-boot", "100"])
    assert result.exit_code == 0, result.output
    assert "Reliability of the grader's probabilities" in result.output
    found = json.loads((tmp_path / "run" / "calibration.json").read_text())["reliability"]["response"]
    human = load_pairs(data).set_index("id")
    forecasts, outcomes = [], []
    for record in read_labels(tmp_path / "run"):
        if record["target"] == "response" and record["status"] == "ok":
            for category in CATEGORIES:
                forecasts.append(sum(record["probabilities"][category][1:]))
                outcomes.append(float(human.loc[record["id"], f"response_{category}"] >= 1))
    assert found["n"] == len(forecasts) == 120
    gaps = Counter()  # per bin: forecast sum minus outcome sum
    for f, o in zip(forecasts, outcomes, strict=True):
        gaps[min(int(f * 10), 9)] += f - o
    assert found["ece"] == pytest.approx(sum(abs(g) for g in gaps.values()) / len(forecasts))
    assert found["brier"] == pytest.approx(sum((f - o) ** 2 for f, o in zip(forecasts, outcomes, strict=True)) / len(forecasts))
