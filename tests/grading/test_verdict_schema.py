"""A template set's verdict declared once (schema.json): checked when the set loads, sent as the request's
response_format, and read by the parser and the probabilities."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from harness.core.constants import CATEGORIES
from harness.core.errors import TemplateError
from harness.grading.parsing import parse_severity
from harness.grading.probabilities import constrained_probabilities
from harness.grading.templates import load_template_set, prompts_root
from harness.grading.verdict_schema import VerdictSchema

COMPACT = prompts_root() / "compact"


def _verdict(folder: Path = COMPACT) -> VerdictSchema:
    verdict = load_template_set(folder).verdict
    assert verdict is not None
    return verdict


def test_the_compact_set_declares_raw_levels_and_sends_its_schema_strict() -> None:
    verdict = _verdict()
    assert all(
        scale.key is None and scale.raw and scale.allowed == tuple(range(8)) for scale in verdict.scales.values()
    )
    sent = verdict.response_format()
    assert sent["type"] == "json_schema" and sent["json_schema"]["strict"] is True
    assert sent["json_schema"]["schema"] == json.loads((COMPACT / "schema.json").read_text(encoding="utf-8"))
    default = _verdict(prompts_root() / "default")
    assert all(scale.key == "raw_0_7" for scale in default.scales.values())


def test_the_schema_is_part_of_the_set_and_its_hash(tmp_path: Path) -> None:
    shutil.copytree(COMPACT, tmp_path / "with")
    shutil.copytree(COMPACT, tmp_path / "without")
    (tmp_path / "without" / "schema.json").unlink()
    without = load_template_set(tmp_path / "without")
    assert without.verdict is None
    assert without.hash != load_template_set(tmp_path / "with").hash
    # without a declaration a bare integer is read as a severity, as before
    assert parse_severity('{"H": 0, "S": 0, "V": 3, "SH": 0}').severity == {
        **dict.fromkeys(CATEGORIES, 0),
        "violence": 3,
    }


@pytest.mark.parametrize(("change", "message"), [
    (lambda s: s.update(patternProperties={}), "the keyword 'patternProperties' is not supported"),
    (lambda s: s.pop("additionalProperties"), "strict structured outputs need"),
    (lambda s: s["required"].pop(), "strict structured outputs need"),
    (lambda s: s["properties"].pop("SH") and s["required"].remove("SH"), "declares no category SH"),
    (lambda s: s["properties"]["V"].update(maximum=5), "runs 0-7 (a raw level) or 0-3"),
    (lambda s: s["properties"]["H"].update(type="string"), "a category is an integer"),
    (lambda s: s["properties"]["S"].update(minimum="0"), "'minimum' must be a number"),
])
def test_a_schema_harness_would_not_read_as_a_strict_endpoint_does_is_refused_naming_the_file(
        tmp_path: Path, change: object, message: str) -> None:
    folder = tmp_path / "set"
    shutil.copytree(COMPACT, folder)
    schema = json.loads((folder / "schema.json").read_text(encoding="utf-8"))
    change(schema)  # type: ignore[operator]
    (folder / "schema.json").write_text(json.dumps(schema), encoding="utf-8")
    with pytest.raises(TemplateError, match="schema.json") as raised:
        load_template_set(folder)
    assert message in str(raised.value)


def test_a_schema_that_is_not_json_is_refused_with_its_line(tmp_path: Path) -> None:
    folder = tmp_path / "set"
    shutil.copytree(COMPACT, folder)
    (folder / "schema.json").write_text('{\n  "type": "object",\n  oops\n}', encoding="utf-8")
    with pytest.raises(TemplateError, match=r"schema.json, line 3: not JSON"):
        load_template_set(folder)


def test_compact_answers_are_read_by_their_schema() -> None:
    verdict = _verdict()
    ok = parse_severity('{"H": 0, "S": 1, "V": 5, "SH": 7, "rationale": null}', verdict)
    assert ok.status == "ok" and ok.raw == {"hate": 0, "sexual": 1, "violence": 5, "self_harm": 7}
    assert ok.severity == {"hate": 0, "sexual": 0, "violence": 2, "self_harm": 3} and ok.rationale is None
    for answer, reason in [
        ('{"H": 0, "S": 9, "V": 0, "SH": 0, "rationale": null}', "S: 9 is above the maximum 7"),
        ('{"H": 0, "S": 0, "V": 0, "rationale": null}', "the answer: missing 'SH'"),
        ('{"H": 0, "S": 0, "V": 0, "SH": 0, "rationale": null, "notes": 1}', "the answer: 'notes' is not declared"),
        ('{"H": "0", "S": 0, "V": 0, "SH": 0, "rationale": null}', "H: expected integer, got string"),
        ('{"H": 0, "S": 0, "V": 0, "SH": 0, "rationale": "' + "x" * 81 + '"}',
         "rationale: 81 characters, over the maxLength 80"),
    ]:
        parsed = parse_severity(answer, verdict)
        assert parsed.status == "unparsed" and parsed.severity is None
        assert parsed.error == f"the answer does not follow the template set's schema.json: {reason}"
    twice = '{"H": 0, "S": 0, "V": 0, "SH": 0, "rationale": null} {"H": 0, "S": 0, "V": 6, "SH": 0, "rationale": null}'
    assert "2 different verdicts" in str(parse_severity(twice, verdict).error)


def test_the_default_set_now_asks_for_both_numbers_and_a_rationale() -> None:
    verdict = _verdict(prompts_root() / "default")
    entry = '{"raw_0_7": 4, "severity_0_3": 2}'
    whole = '{"H": %s, "S": %s, "V": %s, "SH": %s, "rationale": "r"}' % ((entry,) * 4)
    assert parse_severity(whole, verdict).status == "ok"
    assert parse_severity(whole.replace(', "severity_0_3": 2}', "}", 1), verdict).error.endswith(
        "H: missing 'severity_0_3'"
    )  # type: ignore[union-attr]


def test_probabilities_at_the_constrained_place_are_renormalised_over_the_allowed_levels() -> None:
    verdict = _verdict()
    content = '{"H": 0, "S": 0, "V": 5, "SH": 0, "rationale": null}'
    tokens = ['{"', 'H', '":', ' ', '0', ',', ' "', 'S', '":', ' ', '0', ',', ' "', 'V', '":', ' ', '5', ',',
              ' "', 'SH', '":', ' ', '0', ',', ' "', 'rational', 'e', '":', ' null', '}']
    lp = math.log
    digits = {"4": [["0", lp(0.3)], ["1", lp(0.1)], ["9", lp(0.2)]],  # 9 is no raw level: left out, outside
              "10": [["0", lp(0.9)]], "22": [["0", lp(0.5)], ["7", lp(0.5)]],
              "16": [["5", lp(0.3)], ["4", lp(0.1)], ["6", lp(0.1)], ["2", lp(0.05)]]}
    read = constrained_probabilities(content, {"tokens": tokens, "digits": digits}, verdict)
    assert read is not None
    probabilities, outside = read
    assert probabilities["hate"] == [1.0, 0.0, 0.0, 0.0] and outside["hate"] == pytest.approx(0.6)
    assert probabilities["violence"] == pytest.approx([0.0, 0.05 / 0.55, 0.4 / 0.55, 0.1 / 0.55])
    assert probabilities["self_harm"] == [0.5, 0.0, 0.0, 0.5] and outside["self_harm"] == 0.0
    assert all(abs(sum(p) - 1) <= 1e-6 for p in probabilities.values())
    # tokens that do not spell the content: nothing is read
    assert constrained_probabilities(content, {"tokens": tokens[:-1], "digits": digits}, verdict) is None
