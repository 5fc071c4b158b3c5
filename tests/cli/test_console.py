"""The terminal: every command fits 80 columns, a resumed run says what was done and its bar keeps its width."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli.app import app
from harness.grading.grade import GradeSpec, grade
from harness.io.pairs import load_pairs, write_pairs
from harness.io.sample import SAMPLE_RATERS, ratings_path
from tests.helpers import RUNNER, SAMPLE, SHARED, endpoint_for


def test_a_resumed_run_says_what_was_already_done_and_the_bar_keeps_its_width(cli: CliRunner, server, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from rich.console import Console

    from harness.cli import console as console_module
    from harness.grading.grader import Progress

    data = write_pairs(load_pairs(SAMPLE).head(6), tmp_path / "d.jsonl")
    first = cli.invoke(
        app, ["grade", str(data), "--base-url", server.base_url, "--out", str(tmp_path / "run"), "--limit", "4"]
    )
    assert first.exit_code == 0, first.output
    labels = tmp_path / "run" / "labels.jsonl"
    labels.write_text("".join(labels.read_text().splitlines(keepends=True)[:5]))  # stopped after 5 of 8 answers
    resumed = cli.invoke(app, ["grade", str(data), "--base-url", server.base_url, "--out", str(tmp_path / "run"),
                                  "--limit", "4"], env={"COLUMNS": "200"})
    assert resumed.exit_code == 0, resumed.output
    assert "graded now 3 items (resumed: 5 were already graded in this folder)" in resumed.output
    screen = io.StringIO()
    monkeypatch.setattr(
        console_module, "console", Console(file=screen, force_terminal=True, width=80, color_system=None)
    )
    with console_module.GradeProgress() as bar:
        bar.update(Progress(total=1000, done=250, already=40))
        bar._bar.refresh()  # type: ignore[union-attr]
    frames = screen.getvalue()
    assert "ETA" in frames and "250/1000" in frames and "resumed: 40 items were already graded" in frames
    assert max(len(run) for run in frames.replace("━", "\0").replace("╸", "\0").split() if set(run) == {"\0"}) >= 20


PLAIN = ("grading with", "wrote ", "error:", "demo outputs")


def _words(text: str) -> set[str]:
    """The words of an output, as a reader sees them (rules and outer punctuation aside; paths are the
    user's own, a terminal wraps them anyway)."""
    words = {w.strip("(),;:.") for w in text.split()}
    return {w for w in words if w and "/" not in w and set(w) - set("─━│┃")}


def _check(args: list[str]) -> str:
    """The command's output at 80 columns: nothing cut with "…", no line over 80, and no word or number
    folded: every word of the 80-column output is a word of the 200-column output."""
    result = RUNNER.invoke(app, args, env={"COLUMNS": "80"})
    assert result.exit_code == 0, (args, result.output)
    assert "…" not in result.output, (args, result.output)
    for line in result.output.splitlines():
        if not line.startswith(PLAIN):  # one-line messages; a terminal wraps them
            assert len(line) <= 80, (args, line)
    if args[0] not in ("grade", "calibrate-shots", "data"):  # the others write files a second run would change
        wide = RUNNER.invoke(app, args, env={"COLUMNS": "200"})
        folded = _words(result.output) - _words(wide.output) - {"continued"}
        assert not folded, (args, sorted(folded)[:20], result.output)
    return result.output


@pytest.mark.slow
def test_every_command_fits_80_columns(cli: CliRunner, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    frame = load_pairs(SAMPLE)
    data = write_pairs(frame, tmp_path / "d.jsonl")
    run, other = tmp_path / "run", tmp_path / "other-run-with-a-long-name"
    _check(["data", "describe", str(data)])
    _check(["grade", str(data), "--base-url", server.base_url, "--out", str(run), "--target", "all"])
    grade(data, GradeSpec(), endpoint_for(server), run_dir=other, cache_dir=tmp_path / "c")
    _check(["calibrate", str(run), "--human", str(data), "--n-boot", "100"])
    _check(["calibrate", str(data), "--gold", "prompt_hate", "--pred", "response_hate", "--n-boot", "100"])
    _check(["analyze", str(run), "--by", "model", "--n-boot", "100", "--correct", str(run / "calibration.json")])
    mini_eval = SHARED / "pairedsafety" / "analysis" / "public_mini_eval"
    if mini_eval.exists():  # six models with long names, 3,600 pairs
        paired = tmp_path / "paired.jsonl"
        assert cli.invoke(app, ["data", "import", "pairedsafety", str(mini_eval), "-o", str(paired)]).exit_code == 0
        _check(["analyze", str(paired), "--by", "model", "--n-boot", "100", "-o", str(tmp_path / "paired-out")])
    _check(["compare", str(run), str(other), "--human", str(data), "--n-boot", "100", "-o", str(tmp_path / "cmp.json")])
    agreed = _check(
        [
            "agreement",
            ratings_path(),
            "--raters",
            ",".join(SAMPLE_RATERS),
            "--final",
            "canonical",
            "--grader",
            str(run),
            "--grader",
            str(other),
            "--n-boot",
            "100",
            "-o",
            str(tmp_path / "agreement.json"),
        ]
    )
    assert "harness-baseline (other-run-with-a-long-name)" in " ".join(agreed.split())
    _check(
        [
            "calibrate",
            ratings_path(),
            "--gold",
            "prompt_hate",
            "--pred",
            "ann1_prompt_hate",
            "--raters",
            "ann2_prompt_hate,ann3_prompt_hate",
            "--n-boot",
            "100",
        ]
    )
    injected = tmp_path / "inj.jsonl"
    _check(["data", "inject", str(data), "-o", str(injected)])
    inj_run = tmp_path / "inj"
    grade(injected, GradeSpec(), endpoint_for(server), run_dir=inj_run)
    _check(["flips", str(run), str(inj_run), "--n-boot", "100"])
    shots = _check(
        [
            "calibrate-shots",
            "--pool",
            str(data),
            "--base-url",
            server.base_url,
            "--run-root",
            str(tmp_path / "s"),
            "--out",
            str(tmp_path / "chosen.jsonl"),
            "--n-random",
            "1",
            "--greedy-steps",
            "1",
            "--greedy-candidates",
            "1",
            "--n-boot",
            "100",
        ]
    )
    assert "Held-out test" in shots
    assert json.loads((run / "calibration.json").read_text())["unit"]["n_clusters"] == frame["prompt_id"].nunique()
