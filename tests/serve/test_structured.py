"""Structured outputs for the local model: response_format as an llguidance grammar over the model's own tokenizer
(the [local] extra; the tokenizer alone is loaded, not the model)."""

from __future__ import annotations

from typing import Any

import pytest

from harness.grading.templates import load_template_set, prompts_root

pytestmark = pytest.mark.local_model


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    import os

    os.environ["HF_HUB_OFFLINE"] = "1"
    from transformers import AutoTokenizer

    from harness.serve.local_model import model_file

    path = model_file("smollm2-135m")
    return AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name, local_files_only=True)


def test_what_each_response_format_becomes() -> None:
    from harness.serve.structured import MAX_SCHEMA_BYTES, FormatError, grammar_of

    assert grammar_of(None) is None and grammar_of({"type": "text"}) is None
    grammar = grammar_of({"type": "json_object"})
    assert grammar is not None and grammar[1] == "json_object"
    named = grammar_of({"type": "json_schema", "json_schema": {"name": "verdict", "schema": {"type": "object"}}})
    assert named is not None and named[1] == "verdict"
    for wrong, message in [({"type": "xml"}, "'response_format.type'"),
                           ({"type": "json_schema", "json_schema": {"schema": {}}},
                            "'response_format.json_schema.name'"),
                           ({"type": "json_schema", "json_schema": {"name": "v", "schema": []}}, "response_format 'v'"),
                           ({"type": "json_schema", "json_schema": {"name": "v", "schema": {
                               "description": "x" * MAX_SCHEMA_BYTES}}}, "over 65,536 bytes")]:
        with pytest.raises(FormatError, match=message):
            grammar_of(wrong)


def test_a_verdict_is_forced_where_the_schema_leaves_one_way_and_masked_to_its_levels_where_not(tokenizer: Any) -> None:
    from harness.serve.structured import Grammars, grammar_of

    verdict = load_template_set(prompts_root() / "compact").verdict
    assert verdict is not None
    structure = grammar_of(verdict.response_format())
    assert structure is not None
    constraint = Grammars(tokenizer, tokenizer.convert_tokens_to_ids("<|im_end|>")).constraint(*structure)
    written = ""
    for code, level in (("H", 0), ("S", 3), ("V", 7), ("SH", 1)):
        forced = constraint.forced()
        written += tokenizer.decode(forced)
        for token in forced:
            constraint.advance(token)
        allowed = constraint.allowed()
        assert written.endswith(f'"{code}": ') and constraint.forced() == []
        assert sorted(tokenizer.decode([int(i)]) for i in allowed.nonzero().flatten()) == list("01234567")
        digit = tokenizer.convert_tokens_to_ids(str(level))
        constraint.advance(digit)
        written += str(level)
    for token in constraint.forced():  # `, "rationale": `: then a string or null
        constraint.advance(token)
    constraint.advance(tokenizer.encode(" null", add_special_tokens=False)[0])
    for token in tokenizer.encode("}", add_special_tokens=False):
        assert not constraint.complete
        constraint.advance(token)
    assert constraint.complete and written.startswith('{"H": 0, "S": 3')


def test_a_schema_llguidance_cannot_build_is_refused_naming_response_format(tokenizer: Any) -> None:
    from harness.serve.structured import FormatError, Grammars, grammar_of

    structure = grammar_of({"type": "json_schema", "json_schema": {"name": "broken", "schema": {
        "type": "object", "properties": {"a": {"$ref": "#/$defs/nowhere"}}}}})
    assert structure is not None
    with pytest.raises(FormatError, match="Invalid schema for response_format 'broken'"):
        Grammars(tokenizer, 2).constraint(*structure)
