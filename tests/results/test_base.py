"""Typed results: every stage's file reads back as its type, a renamed field fails loudly, wrong types name their path,
results as frames."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli.app import app
from harness.core.errors import ResultError
from harness.grading.grade import GradeSpec, grade
from harness.io.pairs import load_pairs, write_pairs
from harness.results.analysis import Analysis
from harness.results.calibration import Calibration
from harness.results.comparison import Comparison
from harness.results.flips import Flips
from harness.results.manifest import Manifest
from harness.results.shots import ShotSearch
from tests.helpers import SAMPLE, endpoint_for


@pytest.fixture
def stage_files(cli: CliRunner, server, tmp_path: Path) -> dict[str, Path]:  # type: ignore[no-untyped-def]
    data = write_pairs(load_pairs(SAMPLE).head(30), tmp_path / "d.jsonl")
    injected = tmp_path / "i.jsonl"
    assert cli.invoke(app, ["data", "inject", str(data), "-o", str(injected)]).exit_code == 0
    for name, table in (("run", data), ("other", data), ("injected", injected)):
        grade(table, GradeSpec(), endpoint_for(server), run_dir=tmp_path / name)
    run = tmp_path / "run"
    for args in (["calibrate", str(run), "--human", str(data), "--n-boot", "50"],
                 ["analyze", str(run), "--by", "model", "--n-boot", "50"],
                 ["compare", str(run), str(tmp_path / "other"), "--human", str(data), "--n-boot", "50",
                  "-o", str(tmp_path / "cmp.json")],
                 ["flips", str(run), str(tmp_path / "injected"), "--n-boot", "50", "-o", str(tmp_path / "flips.json")]):
        assert cli.invoke(app, args).exit_code == 0, args
    return {
        "manifest": run / "manifest.json",
        "calibration": run / "calibration.json",
        "analysis": run / "analysis.json",
        "comparison": tmp_path / "cmp.json",
        "flips": tmp_path / "flips.json",
        "run": run,
        "data": data,
    }


def test_every_stage_result_reads_back_as_its_type(stage_files: dict[str, Path]) -> None:
    read = lambda key: json.loads(stage_files[key].read_text())
    manifest = Manifest.from_json(read("manifest"))
    calibration = Calibration.from_json(read("calibration"))
    analysis = Analysis.from_json(read("analysis"))
    comparison = Comparison.from_json(read("comparison"))
    flips = Flips.from_json(read("flips"))
    assert manifest.counts["ok"] == 60 and calibration.unit.n_items == 30
    assert calibration.targets["prompt"].pooled.n == 120 and calibration.asymmetry is not None
    assert analysis.pooled.n == 30 and set(analysis.groups) == {"aurora-mini", "basalt-7b", "cirrus-xl"}
    assert set(comparison.runs) == {"harness-baseline (run)", "harness-baseline (other)"}
    assert comparison.runs["harness-baseline (run)"].sides["prompt"].kappa_quadratic is not None
    assert flips.sides["response"].n == 30
    assert Analysis.from_json(analysis.to_json()) == analysis  # to_json and from_json are inverses


@pytest.mark.parametrize(
    ("key", "path", "flag"),
    [
        ("analysis", ["pooled", "escalation"], "--analysis"),
        ("calibration", ["targets", "prompt", "pooled", "kappa"], "--calibration"),
        ("comparison", ["unit"], "--comparison"),
        ("flips", ["answers_lost"], "--flips"),
    ],
)
def test_a_renamed_field_fails_the_report_loudly(
    cli: CliRunner, stage_files: dict[str, Path], tmp_path: Path, key: str, path: list[str], flag: str
) -> None:
    data = json.loads(stage_files[key].read_text())
    holder = data
    for step in path[:-1]:
        holder = holder[step]
    holder[path[-1] + "_renamed"] = holder.pop(path[-1])
    broken = tmp_path / f"broken-{key}.json"
    broken.write_text(json.dumps(data))
    result = cli.invoke(app, ["report", flag, str(broken), "-o", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert f"{broken.name}.{'.'.join(path)}: missing" in result.output
    assert not (tmp_path / "out" / "report.html").exists()  # nothing half-written


def test_wrong_types_name_their_path() -> None:
    with pytest.raises(ResultError, match=r"shotsearch\.dev\[0\]\.shots: expected int, got str"):
        ShotSearch.from_json(
            {
                "schema_version": 1,
                "splits": {},
                "unit": {"cluster": None, "n_items": 1, "n_clusters": 1},
                "dev": [{"name": "a", "shots": "two", "score": 0.5}],
                "chosen": "a",
                "ties": [],
                "indistinguishable": [],
                "chosen_shots": "x",
                "test": [],
                "verdict": "",
                "objective": "",
                "n_boot": 0,
            }
        )


def test_results_as_frames(stage_files: dict[str, Path]) -> None:
    import harness

    analysis = harness.Analysis.from_json(json.loads(stage_files["analysis"].read_text()))
    frame = analysis.to_frame()
    assert list(frame["setting"]) == ["aurora-mini", "basalt-7b", "cirrus-xl", "pooled"]
    assert frame.loc[3, "n"] == 30 and frame.loc[3, "escalation"] == analysis.pooled.escalation.rate
    calibration = harness.Calibration.from_json(json.loads(stage_files["calibration"].read_text()))
    assert len(calibration.to_frame()) == 2 * 6
    comparison = harness.Comparison.from_json(json.loads(stage_files["comparison"].read_text()))
    assert set(comparison.to_frame()["scope"]) == {"any", "hate", "sexual", "violence", "self_harm"}
