"""Reading table files: unreadable files, unclosed CSV quotes, mixed encodings and hostile Parquet cells are located
errors."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from harness.cli.app import app
from tests.helpers import assert_no_traceback


def test_unclosed_csv_quote_names_its_line(cli: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text('id,prompt\na,"never closed\nb,x\n', encoding="utf-8")
    result = cli.invoke(app, ["data", "describe", str(path)])
    assert_no_traceback(result)
    assert result.exit_code == 2 and "t.csv, line 2: a quoted field opens here and is never closed" in result.output


def test_unreadable_file_and_directory(cli: CliRunner, tmp_path: Path) -> None:
    result = cli.invoke(app, ["data", "describe", str(tmp_path / "nope.jsonl")])
    assert result.exit_code == 2 and "file not found" in result.output
    folder = tmp_path / "dir.jsonl"
    folder.mkdir()
    result = cli.invoke(app, ["data", "describe", str(folder)])
    assert result.exit_code == 2 and "is a directory" in result.output


def test_hostile_parquet_cells_are_located_errors(cli: CliRunner, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from harness.cli.app import app

    labels = {f"prompt_{c}": [0, 0] for c in ("sexual", "violence", "self_harm")}
    cases = {
        "lists": (pa.table({"id": ["a", "b"], "prompt": ["p", "q"], "prompt_hate": pa.array([[1, 2], [3]]), **labels}),
                  "column 'prompt_hate' holds list"),
        "booleans": (pa.table({"id": ["a", "b"], "prompt": ["p", "q"], "prompt_hate": [True, False], **labels}),
                     "label True is not an integer"),
        "dictionary": (pa.table({"id": pa.array(["a", "b"]).dictionary_encode(), "prompt": ["p", "q"]}), None),
    }
    for name, (table, message) in cases.items():
        pq.write_table(table, tmp_path / f"{name}.parquet")
        result = cli.invoke(app, ["data", "describe", str(tmp_path / f"{name}.parquet")])
        if message is None:
            assert result.exit_code == 0 and "2 rows" in result.output, result.output
        else:
            assert result.exit_code == 2 and message in " ".join(result.output.split()), result.output


def test_mixed_encoding_file_is_located_and_writes_nothing(cli: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b'{"id": "a", "prompt": "fine"}\n{"id": "b", "prompt": "caf\xe9 in latin-1"}\n')
    result = cli.invoke(
        app, ["grade", str(path), "--base-url", "http://127.0.0.1:9/v1", "--out", str(tmp_path / "run")]
    )
    assert result.exit_code == 2
    assert "mixed.jsonl" in result.output and "line 2" in result.output and "UTF-8" in result.output
    assert not (tmp_path / "run").exists()
