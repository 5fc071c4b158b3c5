"""The pairs-table contract on JSON lines in pure Python: the same lines and errors as the pandas path; hostile lines
located."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from harness.cli.app import app
from harness.core.errors import DataError
from harness.io.pairs import iter_pairs, jsonl_lines
from harness.io.records import table_chunks
from tests.helpers import assert_no_traceback

HOSTILE_LINES = {
    "deep": ('{"id": "a", "prompt": "x", "m": ' + "[" * 3000 + "]" * 3000 + "}", "line 2: JSON nested too deeply"),
    "surrogate": ('{"id": "a", "prompt": "x\\ud800"}', "line 2: a \\u escape encodes a lone surrogate"),
    "list cell": ('{"id": "a", "prompt": "x", "tags": ["a", "b"]}', "line 2, column 'tags': the cell holds a list"),
    "dict cell": ('{"id": "a", "prompt": "x", "meta": {"k": 1}}', "line 2, column 'meta': the cell holds an object"),
    "bool id": ('{"id": true, "prompt": "x"}', "line 2, column 'id': id True is a boolean"),
    "float id": ('{"id": 2.0, "prompt": "x"}', "line 2, column 'id': id 2.0 is a floating-point number"),
    "list id": ('{"id": [1], "prompt": "x"}', "line 2, column 'id': the cell holds a list"),
    "float label": (
        '{"id": "a", "prompt": "x", "prompt_hate": 1.5}',
        "line 2, column 'prompt_hate': label 1.5 is not an integer",
    ),
    "text float label": (
        '{"id": "a", "prompt": "x", "prompt_hate": "1.5"}',
        "line 2, column 'prompt_hate': label '1.5' is not an integer",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_LINES))
def test_hostile_and_loose_files_are_located_errors(cli: CliRunner, case: str, tmp_path: Path) -> None:
    line, expected = HOSTILE_LINES[case]
    path = tmp_path / "t.jsonl"
    path.write_text('{"id": "z", "prompt": "fine"}\n' + line + "\n", encoding="utf-8")
    for command in (
        ["data", "describe", str(path)],
        ["grade", str(path), "--base-url", "http://127.0.0.1:9/v1", "--out", str(tmp_path / "r")],
    ):
        result = cli.invoke(app, command)
        assert_no_traceback(result)
        assert result.exit_code == 2 and expected in result.output, (command, result.output)
    assert not (tmp_path / "r").exists()


#: Cells that test the rules: digit text with spaces or other scripts, floats, booleans, blanks, nesting, NaN.
TRICKY = [
    None,
    True,
    False,
    0,
    2,
    3,
    -1,
    4,
    10**20,
    "0",
    " 2 ",
    "3",
    "-1",
    "2.0",
    "x",
    "",
    "  ",
    "\u0661",
    "07",
    2.0,
    1.5,
    float("nan"),
    [1],
    {"a": 1},
]


CELLS = st.one_of(st.sampled_from(TRICKY), st.text(max_size=3), st.integers(-3, 6))


COLUMNS = ["id", "prompt", "response", "prompt_hate", "response_violence", "relevance", "model", "prompt_id"]


#: Mutations of a valid table: (row, column, new value); a row may also lose a column (DROP).
DROP = object()


MUTATIONS = st.lists(
    st.tuples(st.integers(0, 3), st.sampled_from(COLUMNS), st.one_of(CELLS, st.just(DROP))), max_size=6
)


def _pandas(path: Path) -> list[str] | str:
    try:
        return [line for frame in iter_pairs(path, chunk_rows=3) for line in jsonl_lines(frame)]
    except DataError as exc:
        return str(exc)


def _streamed(path: Path) -> list[str] | str:
    try:
        return [line for chunk in table_chunks(path, chunk_rows=3) for line in chunk.lines]
    except DataError as exc:
        return str(exc)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    labels=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(1, 3)), min_size=1, max_size=10),
    mutations=MUTATIONS,
)
@pytest.mark.slow
def test_both_validators_write_the_same_lines_or_raise_the_same_error(
    tmp_path: Path, labels: list[tuple[int, int, int]], mutations: list[tuple[int, str, object]]
) -> None:
    rows: list[dict[str, object]] = [
        {"id": f"g{i}", "prompt": f"p{i}", "response": "r", "prompt_hate": a, "response_violence": b, "relevance": c,
         "model": "m", "prompt_id": f"q{i // 2}"} for i, (a, b, c) in enumerate(labels)]
    for index, column, value in mutations:  # a valid table made wrong (or odd) in a few cells
        row = rows[index % len(rows)]
        if value is DROP:
            row.pop(column, None)
        else:
            row[column] = value
    path = tmp_path / "t.jsonl"
    with path.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row) + "\n")
    assert _streamed(path) == _pandas(path)


def test_the_common_case_agrees_and_counts_responses(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    rows = [{"id": 1, "prompt": "p", "response": "  ", "prompt_hate": "2", "note": " "},
            {"id": "b", "prompt": "q", "response": "r", "relevance": 3, "extra": True}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (chunk,) = table_chunks(path)
    assert chunk.lines == _pandas(path) and chunk.rows == 2 and chunk.with_response == 1
    assert json.loads(chunk.lines[0]) == {"id": "1", "prompt": "p", "response": None, "prompt_hate": 2, "note": None,
                                          "relevance": None, "extra": None}
