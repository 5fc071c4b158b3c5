"""Reliability suite: faults, kill -9 and resume, hostile input and secrets, end to end over HTTP.

Every check runs the real grader against ``harness serve`` on 127.0.0.1 and counts requests
at the server. ``make soak`` runs the same checks at a larger size (``HARNESS_SOAK=1``).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.cli.app import app
from harness.io.pairs import load_pairs
from tests.helpers import RUNNER

SOAK = os.environ.get("HARNESS_SOAK") == "1"


_record = st.dictionaries(st.sampled_from(["id", "prompt", "response", "prompt_hate", "response_sexual", "model", "x"]),
                          st.one_of(st.none(), st.integers(-2, 9), st.text(max_size=6), st.floats(allow_nan=True),
                                    st.booleans()))


_content = st.one_of(st.binary(max_size=400),
                     st.lists(_record, max_size=5).map(lambda rows: "".join(json.dumps(r) + "\n" for r in rows).encode()),
                     st.lists(st.lists(st.text(max_size=8), min_size=1, max_size=4), max_size=5).map(
                         lambda rows: "\n".join(",".join(cells) for cells in rows).encode()))


def _refused_cleanly(result, path: Path, out: Path) -> None:  # type: ignore[no-untyped-def]
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)  # our error, not a traceback
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and path.name in errors[0], result.output
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".") or ".tmp" in p.name]  # no temp left


@settings(max_examples=200 if SOAK else 40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=_content, suffix=st.sampled_from([".jsonl", ".csv"]))
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
        _refused_cleanly(result, path, run)
    else:
        result = RUNNER.invoke(app, ["data", "describe", str(path), "--json"])
        assert result.exit_code == 0, result.output
