"""The demo end to end, and the report it renders (figures embedded in the HTML)."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli.app import app
from harness.io.pairs import load_pairs
from tests.helpers import SAMPLE


@pytest.mark.slow
def test_demo_then_report_embeds_figures(cli: CliRunner, tmp_path: Path) -> None:
    result = cli.invoke(app, ["demo", "--out", str(tmp_path / "demo")])
    assert result.exit_code == 0, result.output
    study = tmp_path / "demo"
    run = study / "baseline"
    manifest = json.loads((run / "manifest.json").read_text())
    pairs = len(load_pairs(SAMPLE))
    assert manifest["counts"]["ok"] == pairs * 3 and manifest["status"] == "complete"
    analysis = json.loads((run / "analysis.json").read_text())
    assert set(analysis["groups"]) == {"aurora-mini", "basalt-7b", "cirrus-xl"}
    assert analysis["pooled"]["relevance"]["n_known"] == pairs
    html = (study / "report.html").read_text()
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    # confusion grid, kappa bars, reliability diagram, graders compared, transition matrix, transitions, posture,
    # categories, corrected shares
    assert len(images) == 9
    assert all(base64.b64decode(img).startswith(b"\x89PNG") for img in images)
    _assert_vector_figures(study, len(images))
    assert "<table>" in html and "Paired transitions" in html
    markdown = (study / "report.md").read_text()
    assert f"| pooled | {pairs} | {pairs // 3} |" in markdown
    _assert_paper_ready(html, markdown, analysis)


def _assert_vector_figures(run: Path, count: int) -> None:
    """Every figure as SVG (and PDF, the demo asks for LaTeX) at print size, no text under 8 pt, linked from both reports."""
    import xml.etree.ElementTree as ET

    svgs = sorted((run / "figures").glob("*.svg"))
    assert len(svgs) == count and len(list((run / "figures").glob("*.pdf"))) == count
    markdown = (run / "report.md").read_text()
    tex = (run / "report.tex").read_text()
    for svg in svgs:
        root = ET.parse(svg).getroot()
        assert float(root.get("width", "0").removesuffix("pt")) <= 7.3 * 72  # fits the full text width unscaled
        sizes = [float(size) for size in re.findall(r"font-size: ([\d.]+)px", svg.read_text())]
        assert sizes and min(sizes) >= 8  # viewBox units are points: 8px is 8 pt at print size
        assert "labels: " in svg.read_text()  # the figure names its label source
        assert f"](figures/{svg.name})" in markdown and f"figures/{svg.stem}.pdf" in tex
    assert "\\begin{tabular}" in tex and "\\toprule" in tex and "q$\\kappa$" in tex
    assert markdown.startswith("# harness study report: harness-baseline, harness-small on sample_pairs.jsonl")
    assert "## Exemplar search" in markdown and "Labels: grader vs human; graders: harness-baseline" in markdown


def _assert_paper_ready(html: str, markdown: str, analysis: dict[str, object]) -> None:
    """What a reader must not see, and what every figure needs beside it."""
    import html as html_lib

    text = html_lib.unescape(re.sub(r"<[^>]+>", " ", re.sub(r'src="data:[^"]+"', "", html)))
    assert "`" not in text and "**" not in text and "{'" not in text and "|---" not in text  # no Markdown or dicts
    for caption in re.findall(r"<caption>(.*?)</caption>", html):  # every table in both formats
        assert f"**{html_lib.unescape(caption)}**" in markdown
    assert text.count("95% CI") >= 6 and "clusters of prompt_id" in text
    assert "qκ: Cohen's kappa" in text and "Reduction: response below prompt" in text  # definitions under tables
    pooled = analysis["pooled"]  # type: ignore[index]
    low, high = pooled["escalation"]["ci"]  # type: ignore[index]
    assert f"{100 * low:.1f}–{100 * high:.1f}%" in text  # the CIs the CLI prints are in the report


def test_report_needs_an_input(cli: CliRunner, tmp_path: Path) -> None:
    result = cli.invoke(app, ["report", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "nothing to report" in result.output


@pytest.mark.slow
def test_results_name_their_inputs_and_the_report_says_what_it_is(cli: CliRunner, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import hashlib

    run = tmp_path / "run"
    graded = cli.invoke(app, ["grade", str(SAMPLE), "--base-url", server.base_url, "--out", str(run), "--limit", "30"])
    assert graded.exit_code == 0, graded.output
    calibrated = cli.invoke(app, ["calibrate", str(run), "--human", str(SAMPLE), "--n-boot", "200"])
    assert calibrated.exit_code == 0, calibrated.output
    provenance = json.loads((run / "calibration.json").read_text())["provenance"]
    assert provenance["label_source"] == "grader vs human" and provenance["step"] == "calibrate"
    human = next(i for i in provenance["inputs"] if i["role"] == "human")
    assert human["sha256"] == hashlib.sha256(SAMPLE.read_bytes()).hexdigest()
    labels = next(i for i in provenance["inputs"] if i["role"] == "run")
    assert labels["sha256"] == hashlib.sha256((run / "labels.jsonl").read_bytes()).hexdigest()
    assert provenance["graders"][0]["model"] == "harness-baseline" and "api_key" not in json.dumps(provenance)
    import harness
    from harness.results.calibration import Calibration

    shown = harness.show(Calibration.from_json(json.loads((run / "calibration.json").read_text())))._repr_html_()
    assert shown.count("data:image/png;base64,") == 2 and "Labels: grader vs human" in shown  # figures and provenance
    reported = cli.invoke(app, ["report", str(run), "--latex"])
    assert reported.exit_code == 0, reported.output
    markdown = (run / "report.md").read_text()
    assert markdown.startswith("# harness grading and calibration report: harness-baseline on sample_pairs.jsonl")
    assert "Labels: grader vs human" in markdown
    tex = (run / "report.tex").read_text()
    assert "\\begin{document}" in tex and tex.count("\\begin{table}") == markdown.count("\n**") and "\\_" in tex
    assert sorted(p.suffix for p in (run / "figures").iterdir() if not p.name.startswith(".")) == [".pdf"] * 2 + [".svg"] * 2  # confusion grid, κ bars


def test_show_puts_the_reports_section_in_a_notebook(tmp_path: Path) -> None:
    import harness

    table = tmp_path / "t.csv"
    table.write_text("id,human,<b>g</b>\n" + "".join(f"{k},{k % 4},{(k + (k % 5 == 0)) % 4}\n" for k in range(40)))
    result = harness.calibrate_table(harness.load_pairs(table, require=("id",)), "human", "<b>g</b>", n_boot=0)
    shown = harness.show(result)
    html = shown._repr_html_()
    assert html.count("<table>") == 2 and "<caption>Agreement</caption>" in html and 'class="num"' in html
    assert "human against &lt;b&gt;g&lt;/b&gt;" in html and "<b>g</b>" not in html  # names are text, never markup
    assert "data:image/png" not in html  # a table agreement has no figure
    assert "human against <b>g</b>" in repr(shown) and "Agreement: metric, value, 95% CI (7 rows)" in repr(shown)


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
    human.write_text("".join(line + "\n" for line in SAMPLE.read_text(encoding="utf-8").splitlines()[:150]), encoding="utf-8")
    assert cli.invoke(app, ["analyze", str(graded), "--human", str(human), "--n-boot", "100", "-o", str(tmp_path / "a")]).exit_code == 0
    assert cli.invoke(app, ["report", "--analysis", str(tmp_path / "a" / "analysis.json"), "-o", str(tmp_path / "r")]).exit_code == 0
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
