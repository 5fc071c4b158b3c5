"""An interval on fewer than 10 clusters is printed as such by every command: the terminal, the JSON and the report."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from harness.analysis.probes import probe_scopes
from harness.cli.app import app
from harness.io.pairs import write_pairs
from harness.io.provenance import provenance_of, stamped
from harness.io.runs import load_run
from harness.report.sections import section_of
from harness.results.common import few_cluster_intervals, few_cluster_warnings
from harness.results.probes import Probe
from tests.helpers import write_run


def _flat(text: str) -> str:
    return " ".join(text.split())


def _probe(tmp_path: Path, clusters: int) -> Probe:
    a = load_run(write_run(tmp_path / f"a{clusters}", [0, 1, 2, 0, 1, 1] * 4, clusters=clusters))
    b = load_run(write_run(tmp_path / f"b{clusters}", [0, 1, 1, 0, 2, 1] * 4, clusters=clusters))
    result = Probe(schema_version=1, kind="verbosity", perturbation="padded", run="a", probe_run="b", model="sim",
                   scopes=probe_scopes(a, b, n_boot=200), n_boot=200, seed=1)
    return stamped(result, provenance_of("probe", "grader", []))


def test_every_interval_on_few_clusters_is_found_with_its_count(tmp_path: Path) -> None:
    few = _probe(tmp_path, 2)
    found = few_cluster_intervals(few)
    assert ("scopes[response any].flip_rate_ci", 2) in found and ("scopes[response hate].excess_ci", 2) in found
    assert all(clusters == 2 for _, clusters in found)
    assert few.few_clusters == few_cluster_warnings(few) and "rest on 2 clusters, fewer than 10" in few.few_clusters[0]
    assert json.loads(json.dumps(few.to_json()))["few_clusters"] == few.few_clusters
    section = section_of(few)
    assert any(p.startswith("Warning: ") and "all " in p and "on 2 clusters" in p for p in section.paragraphs)
    enough = _probe(tmp_path, 12)
    assert few_cluster_intervals(enough) == [] and "few_clusters" not in enough.to_json()
    assert not any("fewer than 10" in p for p in section_of(enough).paragraphs)


def test_stability_on_two_clusters_warns_in_the_terminal_the_json_and_the_report(
    cli: CliRunner, tmp_path: Path
) -> None:
    a = write_run(tmp_path / "r" / "repeat-1", [0, 1, 2, 0] * 5, clusters=2)
    write_run(tmp_path / "r" / "repeat-2", [0, 1, 1, 0] * 5, clusters=2, params={"seed": 2})
    shown = cli.invoke(app, ["stability", str(a.parent), "--n-boot", "200"])
    assert shown.exit_code == 0, shown.output
    assert "Warning:" in shown.output and "rest on 2 clusters, fewer than 10" in _flat(shown.output)
    written = json.loads((a.parent / "stability.json").read_text())
    assert any("on 2 clusters" in w for w in written["few_clusters"])
    written_file = str(a.parent / "stability.json")
    report = cli.invoke(app, ["report", "--stability", written_file, "-o", str(tmp_path / "rep")])
    assert report.exit_code == 0, report.output
    assert "rest on 2 clusters, fewer than 10" in _flat((tmp_path / "rep" / "report.md").read_text())


def test_calibrate_on_six_clusters_says_so_in_the_terminal(cli: CliRunner, tmp_path: Path) -> None:
    import pandas as pd

    rows = [{"id": f"i{i}", "prompt": f"p{i % 6}", "prompt_id": f"p{i % 6}", "human": i % 3,
             "grader": (i + (i % 4 == 0)) % 3} for i in range(36)]
    table = write_pairs(pd.DataFrame(rows), tmp_path / "t.jsonl")
    shown = cli.invoke(app, ["calibrate", str(table), "--gold", "human", "--pred", "grader", "--n-boot", "200", "-o",
                                str(tmp_path)])
    assert shown.exit_code == 0, shown.output
    assert "on 6 clusters, fewer than 10" in _flat(shown.output)
