"""``report``: the documents and figures it writes, and what a killed report left behind."""

from __future__ import annotations

import base64
import json
import os
import re
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli.app import app
from harness.grading.endpoint import EndpointConfig, RetryPolicy
from harness.grading.grade import GradeSpec, grade
from harness.io.pairs import load_pairs
from tests.helpers import RUNNER, SAMPLE, completion_endpoint, pairs_file


@pytest.mark.slow
def test_a_killed_reports_staging_folders_are_swept_and_a_live_ones_kept(cli: CliRunner, tmp_path: Path) -> None:
    done = cli.invoke(app, ["analyze", str(SAMPLE), "--n-boot", "0", "-o", str(tmp_path / "a")])
    assert done.exit_code == 0, done.output
    out = tmp_path / "report"
    dead, live, old, young = (
        out / ".figures-999999999-x1",
        out / f".figures-{os.getpid()}-x2",
        out / ".figures-abc123",
        out / ".figures-def456",
    )
    for folder in (dead, live, old, young):
        folder.mkdir(parents=True)
        (folder / "01-a.svg").write_text("<svg/>")
    os.utime(old, (time.time() - 7200, time.time() - 7200))  # an earlier harness's, untouched for two hours
    (out / ".figures-mine").mkdir()
    (out / ".figures-mine" / "notes.txt").write_text("a user's folder that only looks like one")
    result = cli.invoke(app, ["report", "--analysis", str(tmp_path / "a" / "analysis.json"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    left = sorted(p.name for p in out.iterdir() if p.name.startswith(".figures"))
    assert left == sorted([live.name, young.name, ".figures-mine"])
    assert (out / "report.html").exists() and any((out / "figures").glob("*.svg"))


def sample_analysis(tmp_path: Path) -> Path:
    folder = tmp_path / "analysis"
    done = RUNNER.invoke(app, ["analyze", str(SAMPLE), "--n-boot", "50", "-o", str(folder)])
    assert done.exit_code == 0, done.output
    return folder / "analysis.json"


@pytest.mark.slow
def test_a_report_never_deletes_a_users_files_beside_its_figures(cli: CliRunner, tmp_path: Path) -> None:
    analysis = sample_analysis(tmp_path)
    out = tmp_path / "report"
    (out / "figures").mkdir(parents=True)
    mine = out / "figures" / "my-notes.txt"
    mine.write_bytes(b"mine, byte for byte\x00\xff")
    refused = cli.invoke(app, ["report", "--analysis", str(analysis), "-o", str(out)])
    assert refused.exit_code == 2
    assert "holds files harness did not write (my-notes.txt)" in refused.output
    assert mine.read_bytes() == b"mine, byte for byte\x00\xff"
    assert not (out / "report.html").exists()  # refused before anything was written
    mine.unlink()
    for _ in range(2):  # a report replaces the figures it drew itself, run after run
        done = cli.invoke(app, ["report", "--analysis", str(analysis), "-o", str(out)])
        assert done.exit_code == 0, done.output
    drawn = sorted(p.name for p in (out / "figures").iterdir())
    recorded = json.loads((out / "figures" / ".harness-owned.json").read_text())["files"]
    assert drawn == sorted([*recorded, ".harness-owned.json"]) and any(n.endswith(".svg") for n in recorded)
    beside = out / "my-table.csv"
    beside.write_text("a,b\n", encoding="utf-8")
    assert cli.invoke(app, ["report", "--analysis", str(analysis), "-o", str(out)]).exit_code == 0
    assert beside.read_text(encoding="utf-8") == "a,b\n"


def test_a_figures_symlink_is_refused_not_followed(cli: CliRunner, tmp_path: Path) -> None:
    analysis = sample_analysis(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.svg").write_text("<svg/>", encoding="utf-8")
    out = tmp_path / "report"
    out.mkdir()
    (out / "figures").symlink_to(elsewhere)
    refused = cli.invoke(app, ["report", "--analysis", str(analysis), "-o", str(out)])
    assert refused.exit_code == 2 and "symbolic link" in refused.output
    assert sorted(p.name for p in elsewhere.iterdir()) == ["keep.svg"]


@pytest.mark.slow
def test_a_users_figure_named_like_harnesss_and_a_users_report_are_never_overwritten(
    cli: CliRunner, tmp_path: Path
) -> None:
    analysis = sample_analysis(tmp_path)
    out = tmp_path / "report"
    (out / "figures").mkdir(parents=True)
    mine = out / "figures" / "07-my-plot.svg"
    mine.write_text("<svg>my plot</svg>", encoding="utf-8")
    refused = cli.invoke(app, ["report", "--analysis", str(analysis), "-o", str(out)])
    assert refused.exit_code == 2 and "07-my-plot.svg" in refused.output
    assert mine.read_text(encoding="utf-8") == "<svg>my plot</svg>"
    mine.unlink()
    own = out / "report.html"
    own.write_text("<html><title>my notes</title></html>", encoding="utf-8")
    refused = cli.invoke(app, ["report", "--analysis", str(analysis), "-o", str(out)])
    assert refused.exit_code == 2 and "report.html: a file is in the way: harness did not write it" in refused.output
    assert own.read_text(encoding="utf-8") == "<html><title>my notes</title></html>"
    own.unlink()
    assert cli.invoke(app, ["report", "--analysis", str(analysis), "-o", str(out)]).exit_code == 0
    assert cli.invoke(app, ["report", "--analysis", str(analysis), "-o", str(out)]).exit_code == 0  # its own: replaced


def endpoint_at(*urls: str) -> EndpointConfig:
    return EndpointConfig(base_url=urls[0], replicas=tuple(urls[1:]), concurrency=8, timeout_s=5.0,
                          retry=RetryPolicy(max_attempts=8, initial_s=0.0, max_s=0.05, retry_after_cap_s=0.0))


def test_a_script_in_a_model_name_stays_text_in_the_markdown_report(tmp_path: Path) -> None:
    from harness.report.document import render_report

    url, httpd = completion_endpoint()
    try:
        grade(
            pairs_file(tmp_path, 3),
            GradeSpec(model="<script>alert(1)</script>"),
            endpoint_at(url),
            run_dir=tmp_path / "run",
        )
    finally:
        httpd.shutdown()  # type: ignore[attr-defined]
    markdown = render_report(tmp_path / "run", out_dir=tmp_path / "run")["markdown"].read_text()
    assert "<script>" not in markdown and "&lt;script&gt;" in markdown


def _assert_vector_figures(run: Path, count: int) -> None:
    """Every figure as SVG (and PDF, the demo asks for LaTeX) at print size, no text under 8 pt, linked from both
    reports."""
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


def test_report_needs_an_input(cli: CliRunner, tmp_path: Path) -> None:
    result = cli.invoke(app, ["report", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "nothing to report" in result.output
