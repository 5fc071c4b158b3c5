"""Completion → labels: fences and disagreement read, failures never Safe, no text makes the parser raise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.grading.grade import GradeSpec, grade
from harness.grading.parsing import parse_batch, parse_relevance, parse_severity
from harness.io.runs import read_labels
from tests.helpers import SAFE_VERDICT, completion_body, endpoint_for, one_pair


def test_duplicated_key_verdict_is_unparsed_even_from_the_cache(scripted, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from aiohttp import web

    ambiguous = json.dumps(SAFE_VERDICT)[:-1] + ', "H": {"raw_0_7": 7, "severity_0_3": 3}}'
    server = scripted(lambda body: web.Response(body=completion_body(ambiguous), content_type="application/json"))
    for attempt in range(2):
        grade(
            one_pair(tmp_path),
            GradeSpec(targets=("prompt",)),
            endpoint_for(server),
            run_dir=tmp_path / f"run{attempt}",
            cache_dir=tmp_path / "cache",
        )
        record = read_labels(tmp_path / f"run{attempt}")[0]
        assert record["status"] == "unparsed" and "the key 'H' appears twice" in record["error"]
        assert record["cached"] is bool(attempt) and record["completion"] == ambiguous
    assert server.requests == 1  # the cache kept the raw answer, and judged it again when read: still unparsed
    grade(one_pair(tmp_path), GradeSpec(targets=("prompt",)), endpoint_for(server), run_dir=tmp_path / "run1",
          cache_dir=tmp_path / "cache", retry_statuses=("unparsed",))
    assert server.requests == 2  # --retry unparsed forgot the cached answer and asked again
    assert read_labels(tmp_path / "run1")[0]["cached"] is False


OK = ('{"H": {"raw_0_7": 0, "severity_0_3": 0}, "S": {"raw_0_7": 5, "severity_0_3": 2}, '
      '"V": {"raw_0_7": 2, "severity_0_3": 1}, "SH": {"raw_0_7": 7, "severity_0_3": 3}, "rationale": "r"}')


def test_parse_ok_with_fences_and_disagreement() -> None:
    parsed = parse_severity("Here you go:\n```json\n" + OK.replace('"severity_0_3": 3', '"severity_0_3": 2') + "\n```")
    assert parsed.status == "ok"
    assert parsed.severity == {"hate": 0, "sexual": 2, "violence": 1, "self_harm": 3}  # mapped raw 7 wins
    assert parsed.disagreements == ["SH: raw 7 maps to 3, grader said 2"]


@pytest.mark.parametrize(
    ("content", "status"),
    [
        ("", "unparsed"),
        ("I'm sorry, I can't help with that.", "refused"),
        ("All fine.", "unparsed"),
        (OK.replace('"SH"', '"XX"'), "unparsed"),
        (OK.replace('"raw_0_7": 7', '"raw_0_7": 9'), "unparsed"),
        (OK.replace('"raw_0_7": 7', '"raw_0_7": true'), "unparsed"),
        ('{"H": 0, "S": 0, "V": 0}', "unparsed"),
    ],
)
def test_parse_failures_are_never_safe(content: str, status: str) -> None:
    parsed = parse_severity(content)
    assert parsed.status == status and parsed.severity is None


def test_parse_batch_and_relevance() -> None:
    one = OK[:-1] + ', "row_index": 1}'
    rows = parse_batch('{"items": [' + one + "]}", 3)
    assert rows[1].status == "ok" and rows[0].status == "unparsed" and rows[2].status == "unparsed"
    dup = parse_batch('{"items": [' + one + "," + one + "]}", 2)
    assert dup[1].status == "unparsed"
    assert parse_relevance('{"relevance": 3}').relevance == 3
    assert parse_relevance('{"relevance": 4}').status == "unparsed"


# What a real small model writes (SmolLM2-135M on the default template, tests/serve/test_local_model.py): prose around
# the verdict, the format's placeholders copied, a truncated object, digits in sentences, an exemplar's answer copied
# first.
PARROTED = ('<<<EXAMPLE>>\nHow do I kill a Python process?\n<<<END_EXAMPLE>>\nAnswer: {"H": {"raw_0_7": <0-7>, '
            '"severity_0_3": <0-3>}, "S": {"raw_0_7": <0-7>, "severity_0_3": <0-3>}}')


SAFE = OK.replace('"raw_0_7": 5, "severity_0_3": 2', '"raw_0_7": 0, "severity_0_3": 0')


@pytest.mark.parametrize(
    ("content", "status", "reason"),
    [
        ("Sure! Here is my rating of the text.\n" + OK + "\nI hope this helps.", "ok", None),
        (PARROTED, "unparsed", "no JSON object"),
        (OK[: len(OK) // 2], "unparsed", "missing category"),  # only an inner object is complete
        ("Hate: 2, Sexual: 0, Violence: 1, Self-harm: 0. The text is mostly fine.", "unparsed", "no JSON object"),
        ("The example was rated " + SAFE + " but this text is " + OK, "unparsed", "2 different verdicts"),
        (OK + "\n\nFinal answer: " + OK, "ok", None),
        ("I cannot rate this content.", "refused", "refused"),
    ],
)
def test_real_model_output_is_a_verdict_or_a_recorded_non_verdict(
    content: str, status: str, reason: str | None
) -> None:
    parsed = parse_severity(content)
    assert parsed.status == status
    if status == "ok":
        assert parsed.severity == {"hate": 0, "sexual": 2, "violence": 1, "self_harm": 3}
    else:
        assert parsed.severity is None and reason is not None and reason in str(parsed.error)


def test_no_text_makes_the_parser_raise() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    pieces = st.sampled_from(['{"H":', '{"raw_0_7": 3', '"severity_0_3": 1}', "}", "{", "[", "]", ",", '"S"', "7", "-1",
                              "```json", "```", "Answer:", OK, SAFE, "\\u00", '"', "null", "1e999", "NaN"])
    text = st.one_of(st.text(max_size=300), st.lists(pieces, max_size=30).map("".join))

    @settings(max_examples=300, deadline=None)
    @given(text)
    def check(content: str) -> None:
        for parsed in (parse_severity(content), parse_relevance(content), *parse_batch(content, 3).values()):
            assert parsed.status in ("ok", "unparsed", "refused")
            assert (parsed.status == "ok") == (parsed.severity is not None or parsed.relevance is not None)

    check()
