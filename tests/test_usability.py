"""Failures that speak, defaults that are said, output that lands, an API that works in a notebook."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from harness.cli.app import app
from harness.io.pairs import load_pairs, write_pairs
from tests.helpers import SAMPLE


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens once the socket is closed


def test_defaults_are_said_before_grading(cli: CliRunner, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    result = cli.invoke(app, ["grade", str(SAMPLE), "--out", str(tmp_path / "run")], env={"OPENAI_BASE_URL": url})
    first = result.output.splitlines()[0]
    assert first.startswith("grading with model harness-baseline (default) at " + url + " (environment)")
    assert "pass --model and --base-url for a real one" in first


def test_failed_items_exit_3_with_grouped_reasons(cli: CliRunner, make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    handle = make_server(fail_rate=0.5, fail_modes=("500",), seed=2)
    data = write_pairs(load_pairs(SAMPLE).head(20), tmp_path / "d.jsonl")
    args = ["grade", str(data), "--base-url", handle.base_url, "--max-attempts", "1", "--target", "prompt"]
    result = cli.invoke(app, [*args, "--out", str(tmp_path / "run")], env={"COLUMNS": "120"})
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    failed = manifest["counts"]["failed"]
    assert 0 < failed < 20 and result.exit_code == 3
    assert f"{failed} failed" in result.output and f"{failed:>6}  500: The server had an error" in result.output
    assert f"error: {failed} of 20 items failed" in result.output and "--retry failed" in result.output
    assert manifest["reasons"]["failed"] == {"500: The server had an error while processing your request.": failed}
    allowed = cli.invoke(app, [*args, "--out", str(tmp_path / "run2"), "--allow-failed", "--json"])
    assert allowed.exit_code == 0


def test_outputs_land_and_missing_inputs_are_errors(cli: CliRunner, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from harness.grading.grade import GradeSpec, grade
    from tests.helpers import endpoint_for

    table = write_pairs(pd.DataFrame({"id": ["a", "b", "c"], "prompt": ["x", "y", "z"], "g": ["1", "0", "1"], "p": ["1", "1", "1"]}),
                        tmp_path / "t.csv")
    result = cli.invoke(app, ["calibrate", str(table), "--gold", "g", "--pred", "p", "--n-boot", "0", "-o", str(tmp_path / "cal")])
    assert result.exit_code == 0 and json.loads((tmp_path / "cal" / "calibration_g_vs_p.json").read_text())["n"] == 3
    assert (tmp_path / "cal" / "confusion_calibration_g_vs_p.csv").read_text().startswith(",pred_0,pred_1")
    bad = cli.invoke(app, ["calibrate", str(table), "--gold", "g", "--pred", "p", "--threshold", "5"])
    assert bad.exit_code == 2 and "--threshold 5: expected one of [1]" in bad.output

    data = write_pairs(load_pairs(SAMPLE).head(3), tmp_path / "d.jsonl")
    for name in ("a", "b", "c"):
        grade(data, GradeSpec(), endpoint_for(server), run_dir=tmp_path / name)
    first = cli.invoke(app, ["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--human", str(data), "--n-boot", "0"])
    second = cli.invoke(app, ["compare", str(tmp_path / "a"), str(tmp_path / "c"), "--human", str(data), "--n-boot", "0"])
    assert first.exit_code == second.exit_code == 0
    written = sorted(p.name for p in (Path("runs")).glob("comparison-*.json"))
    assert len(written) == 2 and written[0].startswith("comparison-a-vs-") and written[0] != written[1]

    missing = cli.invoke(app, ["report", str(tmp_path / "a"), "--analysis", str(tmp_path / "missing.json")])
    assert missing.exit_code == 2 and "--analysis" in missing.output and "no such file" in missing.output
    nowhere = cli.invoke(app, ["report", str(tmp_path / "nonexist")])
    assert nowhere.exit_code == 2 and "no such run folder" in nowhere.output


def test_what_researchers_reach_for(cli: CliRunner, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from harness import __version__

    assert cli.invoke(app, ["--version"]).output.strip() == f"harness {__version__}"
    listing = cli.invoke(app, ["templates"], env={"COLUMNS": "100"})
    assert listing.exit_code == 0 and "default" in listing.output and "4 exemplars" in listing.output

    data = write_pairs(load_pairs(SAMPLE), tmp_path / "d.jsonl")
    run = tmp_path / "run"
    args = ["grade", str(data), "--base-url", server.base_url, "--target", "prompt"]
    assert cli.invoke(app, [*args, "--out", str(run), "--limit", "5"]).exit_code == 0
    assert json.loads((run / "manifest.json").read_text())["input_rows"] == 5
    sampled = tmp_path / "sampled"
    assert cli.invoke(app, [*args, "--out", str(sampled), "--sample", "7", "--sample-seed", "3"]).exit_code == 0
    again = tmp_path / "again"
    assert cli.invoke(app, [*args, "--out", str(again), "--sample", "7", "--sample-seed", "3"]).exit_code == 0
    ids = lambda folder: [json.loads(line)["id"] for line in (folder / "input.jsonl").read_text().splitlines()]
    assert len(ids(sampled)) == 7 and ids(sampled) == ids(again) and ids(sampled) != ids(run)[:7]
    both = cli.invoke(app, [*args, "--out", str(tmp_path / "x"), "--limit", "2", "--sample", "2"])
    assert both.exit_code == 2 and "--limit and --sample exclude each other" in both.output

    exported = cli.invoke(app, ["export", str(run), "-o", str(tmp_path / "labels.csv")])
    assert exported.exit_code == 0 and "wrote 5 rows" in exported.output
    table = pd.read_csv(tmp_path / "labels.csv")
    assert {"grader_prompt_hate", "prompt_status", "prompt_hate"} <= set(table.columns) and len(table) == 5
    assert cli.invoke(app, ["export", str(run), "-o", str(tmp_path / "labels.parquet")]).exit_code == 0
    assert len(pd.read_parquet(tmp_path / "labels.parquet")) == 5

    analysis = cli.invoke(app, ["analyze", str(data), "--limit", "30", "--n-boot", "0", "--json", "-o", str(tmp_path / "a")])
    assert analysis.exit_code == 0 and json.loads((tmp_path / "a" / "analysis.json").read_text())["n_pairs"] == 30


def test_a_resumed_run_says_what_was_already_done_and_the_bar_keeps_its_width(cli: CliRunner, server, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from rich.console import Console

    from harness.cli import console as console_module
    from harness.grading.grader import Progress

    data = write_pairs(load_pairs(SAMPLE).head(6), tmp_path / "d.jsonl")
    first = cli.invoke(app, ["grade", str(data), "--base-url", server.base_url, "--out", str(tmp_path / "run"), "--limit", "4"])
    assert first.exit_code == 0, first.output
    labels = tmp_path / "run" / "labels.jsonl"
    labels.write_text("".join(labels.read_text().splitlines(keepends=True)[:5]))  # stopped after 5 of 8 answers
    resumed = cli.invoke(app, ["grade", str(data), "--base-url", server.base_url, "--out", str(tmp_path / "run"),
                                  "--limit", "4"], env={"COLUMNS": "200"})
    assert resumed.exit_code == 0, resumed.output
    assert "graded now 3 items (resumed: 5 were already graded in this folder)" in resumed.output
    screen = io.StringIO()
    monkeypatch.setattr(console_module, "console", Console(file=screen, force_terminal=True, width=80, color_system=None))
    with console_module.GradeProgress() as bar:
        bar.update(Progress(total=1000, done=250, already=40))
        bar._bar.refresh()  # type: ignore[union-attr]
    frames = screen.getvalue()
    assert "ETA" in frames and "250/1000" in frames and "resumed: 40 items were already graded" in frames
    assert max(len(run) for run in frames.replace("━", "\0").replace("╸", "\0").split() if set(run) == {"\0"}) >= 20
