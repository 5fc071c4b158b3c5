"""A study's steps fingerprinted: run, skipped when unchanged, rerun when an input changes, stopped by failures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli.app import app
from harness.io.pairs import load_pairs, write_pairs
from tests.helpers import SAMPLE, study_file


def test_a_stopped_grade_whose_model_then_changed_is_set_aside_not_stuck(
    cli: CliRunner, server, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    from harness.io.pairs import load_pairs, write_pairs

    write_pairs(load_pairs(SAMPLE).head(6), tmp_path / "pairs.jsonl")
    study = tmp_path / "s.toml"

    def write(url: str, model: str) -> None:
        study.write_text(f'[study]\nout = "{tmp_path / "out"}"\ndata = "pairs.jsonl"\n[endpoint]\nbase_url = "{url}"\n'
                         f'max_attempts = 1\n[[grader]]\nname = "g"\nmodel = "{model}"\n', encoding="utf-8")

    write("http://127.0.0.1:9/v1", "harness-baseline")  # nothing listens there: the grade stops unfinished
    stopped = cli.invoke(app, ["run", str(study), "--quiet"])
    assert stopped.exit_code == 1, stopped.output
    write(server.base_url, "harness-small")
    fixed = cli.invoke(app, ["run", str(study), "--quiet"])
    assert fixed.exit_code == 0, fixed.output
    assert "--run-dir" not in fixed.output + stopped.output and "--base-url" not in stopped.output
    manifest = json.loads((tmp_path / "out" / "g" / "manifest.json").read_text())
    assert manifest["model"] == "harness-small" and manifest["counts"]["ok"] == 12
    aside = list((tmp_path / "out").glob("g.superseded-*"))
    assert len(aside) == 1 and (aside[0] / "input.jsonl").exists()  # the half-made folder set aside, never deleted


def _steps(output: str) -> dict[str, str]:
    lines = [line.strip() for line in output.splitlines() if line.startswith("  ") and ": " in line]
    return {name: how.split(" ")[0] for name, how in (line.split(": ", 1) for line in lines)}


@pytest.mark.slow
def test_a_study_runs_every_step_then_skips_what_did_not_change(cli: CliRunner, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    study = study_file(tmp_path / "s", server.base_url)
    first = cli.invoke(app, ["run", str(study), "--quiet"])
    assert first.exit_code == 0, first.output
    assert _steps(first.output) == {
        "grade base": "ran",
        "grade small": "ran",
        "calibrate base": "ran",
        "calibrate small": "ran",
        "compare": "ran",
        "analyze": "ran",
        "report": "ran",
        "view": "ran",
    }
    out = tmp_path / "s" / "out"
    analysis = json.loads((out / "base" / "analysis.json").read_text())
    assert (
        analysis["provenance"]["label_source"] == "grader"
        and analysis["provenance"]["graders"][0]["model"] == "harness-baseline"
    )
    named = {i["role"]: i for i in analysis["provenance"]["inputs"]}
    assert named["study"]["path"] == str(study.resolve()) and named["study"]["sha256"]
    comparison = json.loads((out / "comparison.json").read_text())
    assert set(comparison["runs"]) == {"harness-baseline", "harness-small"}
    assert "## Graders compared" in (out / "report.md").read_text() and (out / "view.html").exists()
    again = cli.invoke(app, ["run", str(study), "--quiet"])
    assert again.exit_code == 0 and set(_steps(again.output).values()) == {"skipped"}, again.output
    # new human labels: grading is unchanged, everything that reads the human labels runs again
    human = load_pairs(tmp_path / "s" / "human.jsonl")
    human.loc[0, "prompt_hate"] = 3
    write_pairs(human, tmp_path / "s" / "human.jsonl")
    third = cli.invoke(app, ["run", str(study), "--quiet"])
    steps = _steps(third.output)
    assert third.exit_code == 0, third.output
    assert steps == {
        "grade base": "skipped",
        "grade small": "skipped",
        "calibrate base": "ran",
        "calibrate small": "ran",
        "compare": "ran",
        "analyze": "skipped",
        "report": "ran",
        "view": "ran",
    }
    # new data: another run; the old folder is set aside (never deleted), the cache answers the unchanged items
    requests = server.endpoint.stats.as_json()["requests"]
    write_pairs(load_pairs(SAMPLE).head(31), tmp_path / "s" / "pairs.jsonl")
    fourth = cli.invoke(app, ["run", str(study), "--quiet"])
    assert fourth.exit_code == 0 and _steps(fourth.output)["grade base"] == "ran" and "moved to" in fourth.output, (
        fourth.output
    )
    assert len(list(out.glob("base.superseded-*"))) == 1
    assert json.loads((out / "base" / "manifest.json").read_text())["counts"]["ok"] == 62
    assert server.endpoint.stats.as_json()["requests"] - requests == 2 * 2  # one new pair, two sides, two graders


@pytest.mark.slow
def test_a_failed_grade_stops_the_study_and_the_fixed_file_finishes_it(cli: CliRunner, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from harness.workflows.embedded import free_port

    dead = f"http://127.0.0.1:{free_port()}/v1"
    study = study_file(tmp_path / "s", dead)
    failed = cli.invoke(app, ["run", str(study), "--quiet"])
    assert failed.exit_code != 0 and "grade base" not in _steps(failed.output)
    state = tmp_path / "s" / "out" / "study.json"
    assert not state.exists() or "grade base" not in json.loads(state.read_text())["steps"]
    study.write_text(study.read_text().replace(dead, server.base_url))
    fixed = cli.invoke(app, ["run", str(study), "--quiet"])
    assert fixed.exit_code == 0, fixed.output
    assert _steps(fixed.output)["grade base"] == "ran" and "grade base" in json.loads(state.read_text())["steps"]


@pytest.mark.slow
def test_study_wide_settings_rerun_the_analyses_not_the_grades(cli: CliRunner, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    study = study_file(tmp_path / "s", server.base_url)
    assert cli.invoke(app, ["run", str(study), "--quiet"]).exit_code == 0
    study.write_text(study.read_text().replace("n_boot = 100", "n_boot = 150"))
    again = cli.invoke(app, ["run", str(study), "--quiet"])
    steps = _steps(again.output)
    assert again.exit_code == 0 and steps["grade base"] == "skipped" and steps["calibrate base"] == "ran", again.output
    assert json.loads((tmp_path / "s" / "out" / "base" / "calibration.json").read_text())["n_boot"] == 150


@pytest.mark.slow
def test_a_shot_search_runs_again_when_the_human_labels_change(cli: CliRunner, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "s"
    study = study_file(
        folder,
        server.base_url,
        extra='[shot_search]\ngrader = "base"\nk = 1\nn_random = 1\ngreedy_steps = 0\n'
        '[[grader]]\nname = "tuned"\nmodel = "harness-baseline"\nshots = "chosen"\n',
    )
    write_pairs(load_pairs(SAMPLE).head(90), folder / "human.jsonl")
    write_pairs(load_pairs(SAMPLE).head(90), folder / "pairs.jsonl")
    first = cli.invoke(app, ["run", str(study), "--quiet"])
    assert first.exit_code == 0 and _steps(first.output)["shot search"] == "ran", first.output
    # the grader whose exemplars were chosen on these labels is scored on the held-out test prompts only, and the
    # comparison puts every grader on those same prompts; the others' own calibrations use every pair
    tuned = json.loads((folder / "out" / "tuned" / "calibration.json").read_text())
    search = json.loads((folder / "out" / "shot-search" / "shot_search.json").read_text())
    assert tuned["n_joined"] == search["splits"]["test"] < 90 and "held-out test pairs only" in tuned["warnings"][-1]
    assert json.loads((folder / "out" / "base" / "calibration.json").read_text())["n_joined"] == 90
    comparison = json.loads((folder / "out" / "comparison.json").read_text())
    assert comparison["unit"]["n_items"] == search["splits"]["test"]
    assert "held-out test pairs only" in comparison["warnings"][-1]
    human = load_pairs(folder / "human.jsonl")
    human.loc[0, "prompt_hate"] = 3
    write_pairs(human, folder / "human.jsonl")
    second = cli.invoke(app, ["run", str(study), "--quiet"])
    assert second.exit_code == 0 and _steps(second.output)["shot search"] == "ran", second.output
    assert "moved to" in second.output and len(list((folder / "out").glob("shot-search.superseded-*"))) == 1
    search = json.loads((folder / "out" / "shot-search" / "shot_search.json").read_text())
    assert search["provenance"]["graders"] and search["provenance"]["graders"][0]["model"] == "harness-baseline"


@pytest.mark.slow
def test_failed_items_stop_the_study_with_exit_3_and_a_rerun_retries_them(
    cli: CliRunner, make_server, server, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    flaky = make_server(fail_rate=0.5, fail_modes=("500",), seed=2)
    study = study_file(tmp_path / "s", flaky.base_url)
    study.write_text(study.read_text().replace("concurrency = 4", "concurrency = 4\nmax_attempts = 1"))
    failed = cli.invoke(app, ["run", str(study), "--quiet"])
    assert failed.exit_code == 3 and "items failed" in failed.output and "grade base" not in _steps(failed.output), (
        failed.output
    )
    study.write_text(study.read_text().replace(flaky.base_url, server.base_url))
    fixed = cli.invoke(app, ["run", str(study), "--quiet"])
    assert fixed.exit_code == 0, fixed.output
    manifest = json.loads((tmp_path / "s" / "out" / "base" / "manifest.json").read_text())
    assert manifest["counts"].get("failed", 0) == 0 and manifest["counts"]["ok"] == 60
