"""What a grader is unsure of: severity probabilities from log-probabilities, samples' vote and agreement."""

from __future__ import annotations

import json
import math
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from harness.core.constants import CATEGORIES, CATEGORY_CODES
from harness.grading.grade import GradeSpec, grade
from harness.grading.jobs import build_request, user_message
from harness.grading.templates import load_template_set
from harness.io.pairs import load_pairs
from harness.io.runs import read_labels
from tests.helpers import endpoint_for, few_pairs


def test_logprobs_become_severity_probabilities(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = few_pairs(tmp_path)
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
    request = build_request(
        spec, templates.system(record["target"], load_shots(None)), user_message(templates, [item]), 300
    )
    body = json.loads(
        urllib.request.urlopen(
            urllib.request.Request(
                f"{server.base_url}/chat/completions",
                data=json.dumps(request).encode(),
                headers={"Content-Type": "application/json"},
            )
        ).read()
    )
    tokens = body["choices"][0]["logprobs"]["content"]
    content = body["choices"][0]["message"]["content"]
    for category in CATEGORIES:
        offset = content.index(f'"{CATEGORY_CODES[category]}": {{"raw_0_7": ') + len(
            f'"{CATEGORY_CODES[category]}": {{"raw_0_7": '
        )
        position, index = 0, 0
        while position + len(tokens[index]["token"]) <= offset:
            position += len(tokens[index]["token"])
            index += 1
        mass = [0.0] * 4
        for alternative in tokens[index]["top_logprobs"]:
            mass[int(alternative["token"]) // 2] += math.exp(alternative["logprob"])
        expected = [m / sum(mass) for m in mass]
        # read where only a raw level follows
        assert record["probabilities"][category] == pytest.approx(expected, abs=1e-8)
        assert record["probability_outside"][category] == pytest.approx(max(0.0, 1 - sum(mass)), abs=1e-8)


def test_samples_vote_and_record_their_agreement(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = few_pairs(tmp_path, 15)
    grade(
        data,
        GradeSpec(samples=5, temperature=1.5, targets=("response",)),
        endpoint_for(server),
        run_dir=tmp_path / "run",
    )
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
