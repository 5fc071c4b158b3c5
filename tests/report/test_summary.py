"""The report's first screen: corrected shares first with the raw beside them (that add up, or a note giving their
sum), how many answers gave no verdict, cost kept for the appendix."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from harness.analysis.transitions import analyze
from harness.cli.app import app
from harness.io.pairs import load_pairs
from harness.report.summary import summary_section
from tests.helpers import SAMPLE
from validation.studies import Setting, study

PARTITION = ("reduction", "preservation", "escalation")


def _table(prompt: np.ndarray, response: np.ndarray) -> pd.DataFrame:
    n = prompt.size
    frame = pd.DataFrame(
        {"id": [f"i{i}" for i in range(n)], "prompt": [f"prompt {i}" for i in range(n)], "response": "r"}
    )
    for side in ("prompt", "response"):
        for category in ("hate", "sexual", "violence", "self_harm"):
            frame[f"{side}_{category}"] = 0
    frame["prompt_violence"], frame["response_violence"] = prompt, response
    return frame


def test_corrected_shares_that_add_up_need_no_note() -> None:
    graded, human = study(Setting(rho=0.4), 4, labelled_clusters=100)
    analysis = analyze(graded, human=human, n_boot=100, seed=4)
    assert analysis.corrected is not None
    assert abs(sum(analysis.corrected.corrected[s] for s in PARTITION) - 1) < 1e-12
    section = summary_section([analysis])
    assert section is not None and not any("add up to" in line for line in section.paragraphs)


def test_a_share_clipped_at_zero_gets_a_note_with_the_sum() -> None:
    """A rare escalation over-corrected below 0 and shown as 0: the three no longer add up, and the summary says so."""
    rng = np.random.default_rng(3)
    truth_p = rng.choice([0, 1, 2, 3], 3000, p=[0.5, 0.2, 0.2, 0.1])
    truth_r = np.where(rng.random(3000) < 0.3, truth_p, 0)
    noisy = lambda x: np.where(rng.random(3000) < 0.2, np.clip(x + rng.choice([-1, 1], 3000), 0, 3), x)
    labelled = rng.choice(3000, 600, replace=False)
    analysis = analyze(
        _table(noisy(truth_p), noisy(truth_r)),
        human=_table(truth_p, truth_r).iloc[labelled],
        cluster="none",
        n_boot=100,
        seed=1,
    )
    assert analysis.corrected is not None and analysis.corrected.corrected["escalation"] == 0.0
    total = sum(analysis.corrected.corrected[s] for s in PARTITION)
    section = summary_section([analysis])
    assert section is not None
    assert any(f"add up to {100 * total:.1f}%, not 100%" in line for line in section.paragraphs), section.paragraphs


def test_the_report_opens_with_corrected_shares_and_keeps_cost_for_the_appendix(cli: CliRunner, tmp_path: Path) -> None:
    from harness.cli.app import app
    from tests.helpers import SAMPLE

    rows = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines()]
    for k, row in enumerate(rows):  # a grader's labels that differ from the humans' on some responses
        if k % 4 == 0:
            row["response_violence"] = min(3, int(row["response_violence"]) + 2)
    graded = tmp_path / "graded.jsonl"
    graded.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    human = tmp_path / "human.jsonl"
    human.write_text(
        "".join(line + "\n" for line in SAMPLE.read_text(encoding="utf-8").splitlines()[:150]), encoding="utf-8"
    )
    assert (
        cli.invoke(
            app, ["analyze", str(graded), "--human", str(human), "--n-boot", "100", "-o", str(tmp_path / "a")]
        ).exit_code
        == 0
    )
    assert (
        cli.invoke(
            app, ["report", "--analysis", str(tmp_path / "a" / "analysis.json"), "-o", str(tmp_path / "r")]
        ).exit_code
        == 0
    )
    text = (tmp_path / "r" / "report.md").read_text(encoding="utf-8")
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings[0] == "## Summary" and headings[-1] == "## Appendix: provenance and cost"
    assert "Contents: Summary" in text
    first_table = text.split("**", 2)[1]
    assert first_table == "What the study found"
    table = text.split("**What the study found**", 1)[1].split("\n\n", 2)[1]
    escalation = next(line for line in table.splitlines() if line.startswith("| escalation"))
    cells = [c.strip() for c in escalation.strip("| ").split("|")]
    analysis = json.loads((tmp_path / "a" / "analysis.json").read_text())
    assert cells[1] == f"{100 * analysis['corrected']['corrected']['escalation']:.1f}%"  # corrected first
    assert cells[3] == f"{100 * analysis['pooled']['escalation']['rate']:.1f}%"  # the raw beside it
    assert text.index("Labels: ") > text.index("## Appendix")  # provenance after the answers


@pytest.mark.slow
def test_the_summary_says_how_many_answers_gave_no_verdict(cli: CliRunner, make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A grader that often answers off-format: the first screen says how many of its answers carry no verdict, per
    side, before any agreement figure (which covers only the rest)."""
    handle = make_server(fail_rate=0.4, fail_modes=("garbage",), seed=3)
    data = tmp_path / "pairs.jsonl"
    load_pairs(SAMPLE).head(60).to_json(data, orient="records", lines=True)
    graded = cli.invoke(app, ["grade", str(data), "--base-url", handle.base_url, "--out", str(tmp_path / "run"),
                                 "--no-cache", "--max-attempts", "1"])
    assert graded.exit_code == 0, graded.output
    assert cli.invoke(app, ["calibrate", str(tmp_path / "run"), "--human", str(data), "--n-boot", "50"]).exit_code == 0
    labels = [json.loads(line) for line in (tmp_path / "run" / "labels.jsonl").read_text().splitlines()]
    missing = {side: sum(r["status"] != "ok" for r in labels if r["target"] == side) for side in ("prompt", "response")}
    assert all(missing.values())
    made = cli.invoke(app, ["report", str(tmp_path / "run"), "-o", str(tmp_path / "report")])
    assert made.exit_code == 0, made.output
    text = (tmp_path / "report" / "report.md").read_text()
    summary = text[text.index("## Summary"):text.index("## ", text.index("## Summary") + 3)]
    said = re.search(r"gave no verdict \(unparsed, refused or failed\) in (\d+) of 60 prompt answers \([\d.]+%\) and "
                     r"(\d+) of 60 response answers", summary)
    assert said is not None, summary
    assert (int(said.group(1)), int(said.group(2))) == (missing["prompt"], missing["response"])
    assert summary.index("gave no verdict") < summary.index("quadratic κ")
