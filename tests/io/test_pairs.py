"""The pairs-table contract on pandas frames: load, round trip, column mapping, located errors, streamed chunks, fuzzed
input."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from harness.cli.app import app
from harness.cli.common import as_flags
from harness.core.errors import DataError
from harness.io.pairs import load_pairs, write_pairs
from tests.helpers import SAMPLE, write_jsonl


def test_strict_rule_accepts_integers_and_digit_text(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(
        '{"id": 7, "prompt": "x", "prompt_hate": 1, "prompt_sexual": "2", "flag": true}\n', encoding="utf-8"
    )
    frame = load_pairs(path)
    assert (
        frame["id"].tolist() == ["7"]
        and frame["prompt_hate"].tolist() == [1]
        and frame["prompt_sexual"].tolist() == [2]
    )


def test_loads_jsonl_with_labels_and_metadata(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "p.jsonl", [
        {"id": "a", "prompt": "hi", "response": "hello", "prompt_hate": 1, "response_hate": None, "model": "m1"},
        {"id": 2, "prompt": "yo", "prompt_hate": 0, "response_hate": 3, "model": "m2"},
    ])
    frame = load_pairs(path)
    assert frame["id"].tolist() == ["a", "2"]
    assert frame["prompt_hate"].tolist() == [1, 0]
    assert pd.isna(frame.loc[0, "response_hate"])  # empty is unknown, never 0
    assert frame["model"].tolist() == ["m1", "m2"]


def test_csv_and_parquet_round_trip(tmp_path: Path) -> None:
    frame = load_pairs(
        write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "prompt": 'x, "quoted"\nline', "prompt_sexual": 2}])
    )
    for name in ("t.csv", "t.parquet"):
        write_pairs(frame, tmp_path / name)
        again = load_pairs(tmp_path / name)
        assert again["prompt"].tolist() == ["x, \"quoted\"\nline"]
        assert again["prompt_sexual"].tolist() == [2]


def test_column_mapping(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "p.jsonl", [{"uid": "u1", "question": "q"}])
    frame = load_pairs(path, mapping={"id": "uid", "prompt": "question"})
    assert frame[["id", "prompt"]].values.tolist() == [["u1", "q"]]


BAD_CASES = [
    ("malformed.jsonl", b'{"id": "a", "prompt": "x"}\n{"id": "b", "prompt": \n', "line 2", "malformed JSON"),
    ("missing.jsonl", b'{"id": "a", "text": "x"}\n', "missing required column 'prompt'", "`mapping` prompt="),
    (
        "dup.jsonl",
        b'{"id": "a", "prompt": "x"}\n\n{"id": "a", "prompt": "y"}\n',
        "line 3, column 'id'",
        "first seen at line 1",
    ),
    (
        "range.jsonl",
        b'{"id": "a", "prompt": "x", "response_violence": 4}\n',
        "line 1, column 'response_violence'",
        "outside 0-3",
    ),
    ("nonint.jsonl", b'{"id": "a", "prompt": "x", "prompt_hate": 1.5}\n', "column 'prompt_hate'", "not an integer"),
    ("word.csv", b"id,prompt,prompt_hate\na,x,0\nb,y,high\n", "line 3, column 'prompt_hate'", "not an integer"),
    ("empty.jsonl", b'{"id": "a", "prompt": "   "}\n', "line 1, column 'prompt'", "empty text"),
    ("latin1.csv", "id,prompt\na,caf\xe9\n".encode("latin-1"), "line 2", "not valid UTF-8"),
    ("relevance.jsonl", b'{"id": "a", "prompt": "x", "relevance": 0}\n', "column 'relevance'", "outside 1-3"),
    ("array.jsonl", b"[1, 2]\n", "line 1", "expected a JSON object"),
    ("blank.csv", b"id,prompt\nb,x\n\n  \na,\n", "line 5, column 'prompt'", "empty text"),  # was line 3
    ("cr.csv", b"\x00\r\x00", "cr.csv", "missing required column 'id'"),  # found by the fuzz suite: was csv.Error
    (
        "crlf.csv",
        b'id,prompt,prompt_hate\r\na,"two\r\nlines",0\r\nb,y,9\r\n',
        "line 4, column 'prompt_hate'",
        "outside 0-3",
    ),
]


@pytest.mark.parametrize(("name", "content", "where", "what"), BAD_CASES)
def test_bad_input_is_located_and_exits_2(
    cli: CliRunner, tmp_path: Path, name: str, content: bytes, where: str, what: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError) as info:
        load_pairs(path)
    assert str(path) in str(info.value) and where in str(info.value) and what in str(info.value)
    result = cli.invoke(app, ["data", "describe", str(path)])
    assert result.exit_code == 2
    assert where in result.output and "Traceback" not in result.output
    assert as_flags(info.value) in result.output  # the library names parameters, the CLI their flags (--map)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.binary(max_size=300), suffix=st.sampled_from([".jsonl", ".csv"]))
def test_fuzzed_bytes_give_data_error_or_valid_table(tmp_path: Path, content: bytes, suffix: str) -> None:
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(content)
    try:
        frame = load_pairs(path)
    except DataError as exc:
        assert str(path) in str(exc)
    else:
        assert frame["id"].is_unique and frame["prompt"].map(lambda t: isinstance(t, str) and t.strip() != "").all()


label_value = st.one_of(st.none(), st.integers(-3, 6), st.floats(allow_nan=True), st.text(max_size=3), st.booleans())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.fixed_dictionaries({"id": st.one_of(st.text(max_size=3), st.integers(0, 3)),
                                            "prompt": st.text(max_size=5),
                                            "prompt_hate": label_value}),
                     min_size=1, max_size=6))
def test_fuzzed_records_obey_the_contract(tmp_path: Path, rows: list[dict[str, object]]) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    try:
        frame = load_pairs(path)
    except DataError as exc:
        assert "line" in str(exc) and str(path) in str(exc)
    else:
        labels = frame["prompt_hate"].dropna().tolist()
        assert all(v in (0, 1, 2, 3) for v in labels)


def test_streamed_chunks_equal_the_whole_table_and_find_cross_chunk_duplicates(tmp_path: Path) -> None:
    from harness.io.pairs import iter_pairs

    rows = [{"id": f"r{i}", "prompt": f"text {i}", "prompt_hate": i % 4} for i in range(23)]
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    chunks = list(iter_pairs(path, chunk_rows=5))
    assert [len(c) for c in chunks] == [5, 5, 5, 5, 3]
    whole = load_pairs(path)
    assert pd.concat(chunks, ignore_index=True).equals(whole)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows + [{"id": "r2", "prompt": "again"}]), encoding="utf-8")
    with pytest.raises(DataError, match=r"line 24, column 'id'.*duplicate id 'r2' \(first seen at line 3\)"):
        list(iter_pairs(path, chunk_rows=5))


@pytest.mark.parametrize("content", [
    b'id,prompt,prompt_hate\r\na,"two\r\nlines",0\r\n\r\nb,y,1\r\n  \nc,"x, y",\n',
    "\ufeffid,prompt\n" .encode() + "".join(f"r{i},text {i}\n" for i in range(12)).encode(),
    b'id,prompt\na,"quoted ""inner"" text"\nb,plain\n',
])
def test_streamed_csv_chunks_equal_the_whole_table(tmp_path: Path, content: bytes) -> None:
    from harness.io.pairs import iter_pairs

    path = tmp_path / "t.csv"
    path.write_bytes(content)
    chunks = list(iter_pairs(path, chunk_rows=2))
    assert pd.concat(chunks, ignore_index=True).equals(load_pairs(path))


def test_streamed_csv_errors_are_located_like_the_whole_table(tmp_path: Path) -> None:
    from harness.io.pairs import iter_pairs

    path = tmp_path / "t.csv"
    path.write_bytes(b'id,prompt\na,x\n\nb,y\nc,"multi\nline"\nd,\n')
    with pytest.raises(DataError, match=r"line 7, column 'prompt'.*empty text"):
        list(iter_pairs(path, chunk_rows=2))
    with pytest.raises(DataError, match=r"line 7, column 'prompt'.*empty text"):
        load_pairs(path)
    path.write_bytes(b'id,prompt\na,x\nb,y\na,z\n')
    with pytest.raises(DataError, match=r"line 4, column 'id'.*first seen at line 2"):
        list(iter_pairs(path, chunk_rows=2))
    path.write_bytes("id,prompt\na,x\nb,caf\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"line 3.*not valid UTF-8"):
        list(iter_pairs(path, chunk_rows=1))


def test_a_response_column_under_another_name_is_pointed_out(cli: CliRunner, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    frame = load_pairs(SAMPLE).head(3).rename(columns={"response": "completion"})
    data = write_pairs(frame, tmp_path / "d.csv")
    result = cli.invoke(app, ["grade", str(data), "--base-url", server.base_url, "--out", str(tmp_path / "run")])
    assert (
        result.exit_code == 2 and "pass --map response=completion" in result.output and not (tmp_path / "run").exists()
    )
    mapped = cli.invoke(app, ["grade", str(data), "--base-url", server.base_url, "--out", str(tmp_path / "run"),
                                 "--map", "response=completion"])
    assert mapped.exit_code == 0, mapped.output
