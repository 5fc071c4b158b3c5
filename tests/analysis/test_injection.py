"""Injected copies of a table and the flips they cause: measured exactly on a gullible grader, counted item by item,
bad input refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli.app import app
from harness.grading.grade import GradeSpec, grade
from harness.io.pairs import load_pairs, write_pairs
from harness.io.runs import read_labels
from tests.helpers import SAMPLE, endpoint_for, pairs_file, stats


def test_inject_refuses_to_overwrite_its_input(cli: CliRunner, tmp_path: Path) -> None:

    from harness.cli.app import app

    data = pairs_file(tmp_path)
    before = data.read_bytes()
    result = cli.invoke(app, ["data", "inject", str(data), "-o", str(data)])
    assert (
        result.exit_code == 2
        and "is the clean table, an input of this command" in result.output
        and data.read_bytes() == before
    )


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
