"""The error edge: fuzzed tables, label files and pairs files end in exit 0 or 2 with a message, never a traceback or a
half-written run."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.cli.app import app
from harness.grading.grade import GradeSpec, grade
from harness.io.pairs import load_pairs, write_pairs
from tests.helpers import RUNNER, SAMPLE, SOAK, assert_refused_cleanly, content_strategy, endpoint_for


def assert_no_traceback(result: Any) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output


def _valid_lines() -> list[str]:
    frame = load_pairs(SAMPLE).head(4)
    from harness.io.pairs import jsonl_lines

    return list(jsonl_lines(frame))


MUTATIONS = st.one_of(
    st.tuples(st.just("replace"), st.text(max_size=40)),
    st.tuples(
        st.just("value"),
        st.sampled_from(["id", "prompt", "response", "prompt_hate", "response_sexual", "model", "relevance"]),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(-5, 9),
            st.floats(allow_nan=True),
            st.text(max_size=8),
            st.lists(st.integers(), max_size=2),
            st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
        ),
    ),
    st.tuples(st.just("truncate"), st.integers(0, 60)),
    st.tuples(st.just("drop"), st.sampled_from(["id", "prompt", "response"])),
)


def _mutate(lines: list[str], index: int, mutation: tuple[Any, ...]) -> list[str]:
    out = list(lines)
    kind = mutation[0]
    if kind == "replace":
        out[index] = mutation[1] + "\n"
    elif kind == "truncate":
        out[index] = out[index][: mutation[1]] + "\n"
    else:
        record = json.loads(out[index])
        if kind == "value":
            record[mutation[1]] = mutation[2]
        else:
            record.pop(mutation[1], None)
        out[index] = json.dumps(record) + "\n"
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(index=st.integers(0, 3), mutation=MUTATIONS)
@pytest.mark.slow
def test_fuzzed_tables_never_trace_back(server, tmp_path: Path, index: int, mutation: tuple[Any, ...]) -> None:  # type: ignore[no-untyped-def]
    import tempfile

    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    path = folder / "t.jsonl"
    path.write_text("".join(_mutate(_valid_lines(), index, mutation)), encoding="utf-8")
    describe = ["data", "describe", str(path)]
    analyze = ["analyze", str(path), "--n-boot", "0", "-o", str(folder / "a")]
    graded = ["grade", str(path), "--base-url", server.base_url, "--out", str(folder / "run"), "--target", "prompt"]
    for command in (describe, analyze, graded):
        result = RUNNER.invoke(app, command)
        assert_no_traceback(result)
        assert result.exit_code in (0, 2), (command, result.output)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(index=st.integers(0, 7), mutation=MUTATIONS)
@pytest.mark.slow
def test_fuzzed_label_files_never_trace_back(server, tmp_path: Path, index: int, mutation: tuple[Any, ...]) -> None:  # type: ignore[no-untyped-def]
    import shutil
    import tempfile

    base = tmp_path / "base"
    data = tmp_path / "d.jsonl"
    if not base.exists():
        write_pairs(load_pairs(SAMPLE).head(4), data)
        grade(data, GradeSpec(), endpoint_for(server), run_dir=base)
    run = Path(tempfile.mkdtemp(dir=tmp_path)) / "run"
    shutil.copytree(base, run)
    lines = (run / "labels.jsonl").read_text().splitlines(keepends=True)
    (run / "labels.jsonl").write_text("".join(_mutate(lines, index, mutation)))
    for command in (
        ["analyze", str(run), "--n-boot", "0"],
        ["calibrate", str(run), "--human", str(data), "--n-boot", "0"],
    ):
        result = RUNNER.invoke(app, command)
        assert_no_traceback(result)
        assert result.exit_code in (0, 2), (command, result.output)




@settings(max_examples=200 if SOAK else 40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=content_strategy, suffix=st.sampled_from([".jsonl", ".csv"]))
@pytest.mark.slow
def test_fuzzed_pairs_files_never_half_write_a_run(tmp_path: Path, content: bytes, suffix: str) -> None:
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    path = folder / f"in{suffix}"
    path.write_bytes(content)
    try:
        load_pairs(path)
    except Exception:
        run = folder / "run"  # loading fails: grade must stop before touching the run folder or the network
        result = RUNNER.invoke(app, ["grade", str(path), "--base-url", "http://127.0.0.1:9/v1", "--out", str(run)])
        assert_refused_cleanly(result, path, run)
    else:
        result = RUNNER.invoke(app, ["data", "describe", str(path), "--json"])
        assert result.exit_code == 0, result.output
