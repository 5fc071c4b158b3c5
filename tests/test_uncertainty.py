"""What a grader is unsure of, end to end over HTTP: token log-probabilities (``grade --logprobs``) and
repeated samples (``grade --samples K``), recorded per label."""

from __future__ import annotations

import json
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli.app import app
from harness.core.constants import CATEGORIES
from harness.grading.grade import GradeSpec, grade
from harness.io.pairs import load_pairs, write_pairs
from harness.io.runs import read_labels
from tests.helpers import SAMPLE, endpoint_for


def _small(tmp_path: Path, n: int = 12) -> Path:
    return write_pairs(load_pairs(SAMPLE).head(n), tmp_path / "small.jsonl")


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
