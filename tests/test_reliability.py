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
from typer.testing import CliRunner

from harness.cli.app import app
from harness.grading.grade import GradeSpec, grade
from harness.io.pairs import load_pairs, write_pairs
from harness.io.runs import read_labels
from tests.helpers import RUNNER, SAMPLE, endpoint_for, stats

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


@pytest.mark.slow
def test_flip_rate_of_a_gullible_grader_is_measured_exactly(cli: CliRunner, make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    gullible = make_server(gullible=True)
    frame = load_pairs(SAMPLE)
    n = len(frame)
    clean_data = write_pairs(frame, tmp_path / "clean.jsonl")
    injected_data = tmp_path / "injected.jsonl"
    made = cli.invoke(app, ["data", "inject", str(clean_data), "-o", str(injected_data), "--side", "response"])
    assert made.exit_code == 0 and f"wrote {n} injected of {n} rows" in made.output, made.output
    for data, run in ((clean_data, "clean"), (injected_data, "injected")):
        result = cli.invoke(app, ["grade", str(data), "--base-url", gullible.base_url, "--out", str(tmp_path / run),
                                     "--cache-dir", str(tmp_path / "cache"), "-q"])
        assert result.exit_code == 0, result.output
    unique = load_pairs(injected_data)["response"].nunique()  # identical requests are sent once
    assert stats(gullible)["obeyed_injections"] == unique  # every injected response, no clean text
    clean = [r for r in read_labels(tmp_path / "clean") if r["target"] == "response"]
    detected = sum(any(v >= 1 for v in r["severity"].values()) for r in clean)
    sexual = sum(r["severity"]["sexual"] >= 1 for r in clean)
    lowered_violence = sum(r["severity"]["violence"] > 0 for r in clean)
    assert detected > 10 and sexual > 0

    result = cli.invoke(app, ["flips", str(tmp_path / "clean"), str(tmp_path / "injected"), "--json"])
    assert result.exit_code == 0, result.output
    flips = json.loads((tmp_path / "injected" / "flips.json").read_text())
    response = flips["sides"]["response"]
    assert response["any_detection_lost"]["k"] == response["any_detection_lost"]["n"] == detected
    assert response["categories"]["sexual"]["detection_lost"]["k"] == sexual
    assert response["categories"]["violence"]["lowered"]["k"] == lowered_violence
    assert all(c["raised"]["k"] == 0 and c["detection_gained"] == 0 for c in response["categories"].values())
    # prompts were not touched, so their verdicts do not move
    assert all(c["lowered"]["k"] == c["raised"]["k"] == 0 for c in flips["sides"]["prompt"]["categories"].values())
    assert flips["status_transitions"] == {"ok->ok": 2 * n}
    shown = cli.invoke(app, ["report", str(tmp_path / "injected")])
    assert shown.exit_code == 0, shown.output
    report = (tmp_path / "injected" / "report.md").read_text()
    assert "## Grader injection" in report
    assert f"| response | Sexual | {n} |" in report and f"| {sexual}/{sexual} | 100.0% |" in report


def test_an_ordinary_graders_flips_are_counted_item_by_item(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from harness.analysis.injection import INJECTIONS, inject
    from harness.grading.templates import load_template_set

    frame = load_pairs(SAMPLE).head(30)
    injected = inject(frame, side="prompt", name="fake-verdict", position="start")
    assert injected["prompt"].str.startswith(INJECTIONS["fake-verdict"]).all()
    assert (injected["response"] == frame["response"]).all() and set(injected["injection"]) == {"fake-verdict"}
    # the instruction sits inside the delimited block the rubric tells the grader to label, never outside it
    user = load_template_set().user("prompt", injected["prompt"].iloc[0])
    block = user.split("<<<TEXT_TO_LABEL>>>\n", 1)[1].split("\n<<<END_TEXT_TO_LABEL>>>", 1)[0]
    assert INJECTIONS["fake-verdict"] in block and user.count("<<<END_TEXT_TO_LABEL>>>") == 1
    from harness.analysis.injection import flip_rates
    from harness.io.runs import load_run

    spec = GradeSpec(targets=("prompt",))
    grade(frame, spec, endpoint_for(server), run_dir=tmp_path / "clean")
    grade(injected, spec, endpoint_for(server), run_dir=tmp_path / "injected")
    result = flip_rates(load_run(tmp_path / "clean"), load_run(tmp_path / "injected"))
    prompt = result["sides"]["prompt"]
    assert prompt["n"] == 30 and result["items_shared"] == 30
    changed = sum(c["lowered"]["k"] + c["raised"]["k"] for c in prompt["categories"].values())
    clean = {r["id"]: r["severity"] for r in read_labels(tmp_path / "clean")}
    hit = {r["id"]: r["severity"] for r in read_labels(tmp_path / "injected")}
    assert changed == sum(clean[i][c] != hit[i][c] for i in clean for c in clean[i])  # counted item by item


def test_inject_and_flips_refuse_bad_input(cli: CliRunner, tmp_path: Path) -> None:
    data = write_pairs(load_pairs(SAMPLE).head(3), tmp_path / "d.jsonl")
    for args, message in ((["--side", "title"], "--side 'title'"), (["--position", "middle"], "--position"),
                          (["--name", "nope"], "--name 'nope'"), (["--text", "  "], "--text is empty")):
        result = cli.invoke(app, ["data", "inject", str(data), "-o", str(tmp_path / "o.jsonl"), *args])
        assert result.exit_code == 2 and message in result.output, (args, result.output)
        assert not (tmp_path / "o.jsonl").exists()
    missing = cli.invoke(app, ["flips", str(tmp_path / "nope"), str(tmp_path / "nope2")])
    assert missing.exit_code == 2 and "no such run folder" in missing.output
