"""The unit of analysis: duplicated rows under one prompt change no interval, every command counts the same items, the
cluster flag is checked."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from harness.cli.app import app
from harness.grading.grade import GradeSpec, grade
from harness.io.pairs import load_pairs, write_pairs
from tests.helpers import SAMPLE, endpoint_for


def _duplicated(frame: pd.DataFrame, copies: int = 6) -> pd.DataFrame:
    """Each row ``copies`` times under new ids; ``prompt_id`` is the original row's id."""
    out = frame.loc[frame.index.repeat(copies)].reset_index(drop=True)
    out["prompt_id"] = out["id"]
    out["id"] = [f"{ident}-{k}" for ident, k in zip(out["id"], list(range(copies)) * len(frame), strict=True)]
    return out


def _width(ci: list[float]) -> float:
    return ci[1] - ci[0]


def _perturbed(frame: pd.DataFrame, columns: list[str], every: int, seed: int) -> pd.DataFrame:
    """Shift some labels by one, chosen by the row's ``prompt_id`` (so duplicates change alike)."""
    out = frame.copy()
    keys = out["prompt_id"].map(lambda v: zlib.crc32(f"{v}/{seed}".encode()) % every == 0)
    for column in columns:
        values = out[column].astype("Int64")
        out[column] = values.where(~keys, (values + 1) % 4).astype("Int8")
    return out


def _alt_run(run: Path, target: Path, prompt_ids: dict[str, str]) -> Path:
    """A copy of a run folder whose grader labels differ on some prompts: a second, different grader."""
    import shutil

    shutil.copytree(run, target)
    lines = []
    for line in (run / "labels.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record.get("severity") and zlib.crc32(prompt_ids[record["id"]].encode()) % 4 == 0:
            record["severity"] = {
                k: (3 - v if record["target"] == "response" else v) for k, v in record["severity"].items()
            }
        lines.append(json.dumps(record))
    (target / "labels.jsonl").write_text("\n".join(lines) + "\n")
    return target


@pytest.fixture
def labeled_runs(make_server, tmp_path: Path) -> dict[str, Path]:  # type: ignore[no-untyped-def]
    """An original table (each row its own prompt) and its 6x duplicate, with human labels that the
    grader does not match perfectly, each graded, plus a second grader's run (labels shifted on some prompts)."""
    from harness.core.constants import LABEL_COLUMNS

    handle = make_server()
    original = load_pairs(SAMPLE).iloc[::3].copy()
    original["prompt_id"] = original["id"]
    original = _perturbed(original, list(LABEL_COLUMNS), every=3, seed=1)
    tables = {"orig": original, "dup": _duplicated(original)}
    out: dict[str, Path] = {}
    for name, table in tables.items():
        out[name] = write_pairs(table, tmp_path / f"{name}.jsonl")
        run = tmp_path / f"{name}-zero"
        grade(out[name], GradeSpec(), endpoint_for(handle), run_dir=run, cache_dir=tmp_path / "cache")
        out[f"{name}-zero"] = run
        out[f"{name}-one"] = _alt_run(
            run, tmp_path / f"{name}-one", dict(zip(table["id"], table["prompt_id"].astype(str), strict=True))
        )
    return out


@pytest.mark.slow
def test_duplicating_rows_under_one_prompt_changes_no_ci_or_p_value(
    cli: CliRunner, labeled_runs: dict[str, Path], tmp_path: Path
) -> None:
    results = {}
    for name in ("orig", "dup"):
        out = tmp_path / f"cal-{name}"
        result = cli.invoke(app, ["calibrate", str(labeled_runs[f"{name}-zero"]), "--human", str(labeled_runs[name]),
                                     "--n-boot", "400", "-o", str(out)])
        assert result.exit_code == 0, result.output
        results[name] = json.loads((out / "calibration.json").read_text())
    orig, dup = results["orig"], results["dup"]
    n = orig["unit"]["n_items"]
    assert orig["unit"] == {"cluster": "prompt_id", "n_items": n, "n_clusters": n} and n == len(
        load_pairs(SAMPLE).iloc[::3]
    )
    assert dup["unit"] == {"cluster": "prompt_id", "n_items": 6 * n, "n_clusters": n}
    checked = 0
    for side in ("prompt", "response"):
        for scope in ("pooled", "max"):
            a, b = orig["targets"][side][scope], dup["targets"][side][scope]
            assert b["n"] == 6 * a["n"] and b["kappa_quadratic"] == pytest.approx(a["kappa_quadratic"])
            for metric in ("kappa", "kappa_quadratic", "recall", "accuracy"):
                if a["ci"][metric][0] is None or _width(a["ci"][metric]) == 0:
                    continue
                assert _width(b["ci"][metric]) == pytest.approx(_width(a["ci"][metric]), rel=0.15), (
                    side,
                    scope,
                    metric,
                )
                checked += 1
    assert checked >= 12  # the grader disagrees with the human labels: intervals have width
    # the same duplicate read as independent rows claims far more precision: what clustering prevents
    rows = cli.invoke(
        app,
        [
            "calibrate",
            str(labeled_runs["dup-zero"]),
            "--human",
            str(labeled_runs["dup"]),
            "--n-boot",
            "400",
            "--cluster",
            "none",
            "-o",
            str(tmp_path / "rows"),
        ],
    )
    assert rows.exit_code == 0, rows.output
    naive = json.loads((tmp_path / "rows" / "calibration.json").read_text())["asymmetry"]["overall"]["kappa_gap_ci"]
    clustered = dup["asymmetry"]["overall"]["kappa_gap_ci"]
    assert _width(naive) < 0.6 * _width(clustered)

    compared = {}
    for name in ("orig", "dup"):
        out = tmp_path / f"cmp-{name}.json"
        result = cli.invoke(app, ["compare", str(labeled_runs[f"{name}-zero"]), str(labeled_runs[f"{name}-one"]),
                                     "--human", str(labeled_runs[name]), "--n-boot", "300", "-o", str(out)])
        assert result.exit_code == 0, result.output
        compared[name] = json.loads(out.read_text())
    for a, b in zip(compared["orig"]["tests"], compared["dup"]["tests"], strict=True):
        assert (a["side"], a["scope"]) == (b["side"], b["scope"])
        assert b["n_items"] == 6 * a["n_items"] and b["n_clusters"] == a["n_clusters"]
        assert b["p_value"] >= a["p_value"] - 1e-12 and b["p_holm"] >= a["p_holm"] - 1e-12
    assert any(t["a_only"] + t["b_only"] > 0 for t in compared["orig"]["tests"])  # the two shot sets do disagree


@pytest.mark.slow
def test_every_command_counts_the_same_items(cli: CliRunner, make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    handle = make_server(fail_rate=0.35, fail_modes=("refusal", "garbage", "500"), seed=3)
    frame = load_pairs(SAMPLE).head(45).copy()
    frame.loc[frame.index[:7], "response"] = None  # no response text: missing, never unparsed
    data = write_pairs(frame, tmp_path / "d.jsonl")
    run = tmp_path / "run"
    graded = grade(data, GradeSpec(), endpoint_for(handle, max_attempts=1), run_dir=run)
    by_target = graded.manifest["counts_by_target"]
    assert by_target["response"]["ok"] < 38 and sum(by_target["response"].values()) == 38
    assert by_target["prompt"]["unparsed"] + by_target["prompt"]["refused"] + by_target["prompt"]["failed"] > 0

    assert cli.invoke(app, ["calibrate", str(run), "--human", str(data), "--n-boot", "0"]).exit_code == 0
    calibration = json.loads((run / "calibration.json").read_text())
    for side in ("prompt", "response"):
        counts = calibration["targets"][side]["counts"]
        assert {s: counts[s] for s in ("ok", "unparsed", "refused", "failed")} == by_target[side]
        assert counts["missing_text"] == (7 if side == "response" else 0) and counts["not_graded"] == 0
    assert calibration["targets"]["response"]["counts"]["unparsed"] == by_target["response"]["unparsed"]

    result = cli.invoke(app, ["analyze", str(run), "--n-boot", "0"])
    assert result.exit_code == 0, result.output
    analysis = json.loads((run / "analysis.json").read_text())
    excluded = analysis["excluded"]
    assert excluded["response"].get("missing_text") == 7
    for status in ("unparsed", "refused", "failed"):
        assert excluded["prompt"].get(status, 0) == by_target["prompt"][status]
    assert "missing_text 7" in result.output

    grade(data, GradeSpec(), endpoint_for(handle, max_attempts=1), run_dir=tmp_path / "run2")
    out = tmp_path / "cmp.json"
    assert (
        cli.invoke(
            app, ["compare", str(run), str(tmp_path / "run2"), "--human", str(data), "--n-boot", "0", "-o", str(out)]
        ).exit_code
        == 0
    )
    comparison = json.loads(out.read_text())
    assert comparison["runs"]["harness-baseline (run)"]["counts"] == {
        side: calibration["targets"][side]["counts"] for side in ("prompt", "response")
    }

    manifest = json.loads((run / "manifest.json").read_text())
    # every JSON written says its layout
    assert {d["schema_version"] for d in (manifest, calibration, analysis, comparison)} == {1}
    assert cli.invoke(app, ["report", str(run)]).exit_code == 0
    report = (run / "report.md").read_text()
    c = calibration["targets"]["response"]["counts"]
    cells = [c[k] for k in ("items", "ok", "unparsed", "refused", "failed", "missing_text", "not_graded")]
    row = "| response | " + " | ".join(str(cell) for cell in cells) + " |"
    assert row in report


def test_cluster_flag_is_validated(cli: CliRunner, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = write_pairs(load_pairs(SAMPLE).head(9), tmp_path / "d.jsonl")
    grade(data, GradeSpec(), endpoint_for(server), run_dir=tmp_path / "run")
    result = cli.invoke(app, ["calibrate", str(tmp_path / "run"), "--human", str(data), "--cluster", "family"])
    assert (
        result.exit_code == 2
        and "--cluster 'family': no such column" in result.output
        and "--cluster none" in result.output
    )
    result = cli.invoke(app, ["calibrate", str(tmp_path / "run"), "--human", str(data), "--threshold", "5"])
    said = "--threshold 5: expected an integer with 1 <= threshold <= 3"
    assert result.exit_code == 2 and said in result.output, result.output
