"""``harness calibrate-thresholds``: the derived run folder, its provenance, and every command reading it without its
dev pairs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli.app import app
from harness.io.pairs import load_pairs, write_pairs
from tests.helpers import RUNNER, SAMPLE
from validation.thresholds import REGIMES, simulated_run


def _folder(tmp_path: Path, regime: int = 0, seed: int = 1) -> tuple[Path, Path]:
    """A simulated run folder as grade --logprobs leaves it, and its human labels."""
    run, human = simulated_run(REGIMES[regime], seed)
    folder = tmp_path / "run"
    folder.mkdir()
    write_pairs(human, folder / "input.jsonl")
    (folder / "labels.jsonl").write_text("".join(json.dumps(r) + "\n" for r in run.records), encoding="utf-8")
    (folder / "manifest.json").write_text(run.manifest.model_dump_json(), encoding="utf-8")
    return folder, write_pairs(human, tmp_path / "human.jsonl")


def _invoke(*args: str) -> dict[str, object]:
    done = RUNNER.invoke(app, list(args))
    assert done.exit_code == 0, done.output
    return json.loads(done.stdout) if "--json" in args else {}


def test_the_derived_run_names_its_source_rule_cut_points_and_split(tmp_path: Path) -> None:
    run, human = _folder(tmp_path)
    found = _invoke("calibrate-thresholds", str(run), "--human", str(human), "--n-boot", "200", "--seed", "5", "--json")
    derived = tmp_path / "run-thresholds"
    assert found == json.loads((derived / "thresholds.json").read_text())
    manifest = json.loads((derived / "manifest.json").read_text())
    info = manifest["params"]["thresholds"]
    assert manifest["model"] == "sim-signal+thresholds" and info["source"] == str(run) and info["rule"] == "thresholds"
    assert info["cut_points"] == {c["category"]: c["cuts"] for c in found["cut_points"]}  # type: ignore[union-attr]
    split = found["split"]
    assert isinstance(split, dict) and info["split"]["dev_ids"] == split["dev_ids"] and info["split"]["seed"] == 5
    assert not set(split["dev_ids"]) & set(split["held_out_ids"])
    assert len(split["dev_ids"]) + len(split["held_out_ids"]) == len(load_pairs(human))
    # the labels follow the cut points: a response's violence verdict recomputed by hand from its probabilities
    cuts = info["cut_points"]["violence"]
    for line in (derived / "labels.jsonl").read_text().splitlines()[:50]:
        record = json.loads(line)
        p = record["probabilities"]["violence"]
        e = sum(k * v for k, v in enumerate(p)) / sum(p)
        assert record["severity"]["violence"] == sum(c is not None and e >= c for c in cuts)
    rules = {(s["rule"], s["scope"]) for s in found["held_out"]}  # type: ignore[union-attr]
    assert rules == {(r, s) for r in ("argmax", "expected", "thresholds") for s in ("both", "prompt", "response")}
    again = _invoke("calibrate-thresholds", str(run), "--human", str(human), "--n-boot", "0", "--seed", "5", "--json")
    assert again["cut_points"] == found["cut_points"] and again["split"] == found["split"]  # replaced: its own folder


def test_every_command_reads_the_derived_run_without_its_dev_pairs(cli: CliRunner, tmp_path: Path) -> None:
    run, human = _folder(tmp_path)
    derived = tmp_path / "cut"
    found = _invoke("calibrate-thresholds", str(run), "--human", str(human), "--n-boot", "100", "-o", str(derived),
                    "--json")
    held_out = len(found["split"]["held_out_ids"])  # type: ignore[index]
    calibrated = _invoke("calibrate", str(derived), "--human", str(human), "--n-boot", "100", "--json")
    assert calibrated["n_joined"] == held_out
    warnings = calibrated["warnings"]
    assert isinstance(warnings, list)
    assert any("cut points of" in w and "never scored where it was fit" in w for w in warnings)
    compared = _invoke("compare", str(run), str(derived), "--human", str(human), "--n-boot", "100", "--json", "-o",
                       str(tmp_path / "cmp.json"))
    assert compared["unit"]["n_items"] == held_out  # type: ignore[index]  # every run on the same held-out pairs
    assert any("cut points of" in w for w in compared["warnings"])  # type: ignore[union-attr]
    source = _invoke("calibrate", str(run), "--human", str(human), "--n-boot", "0", "--json", "-o", str(tmp_path / "c"))
    assert source["n_joined"] == len(load_pairs(human))  # the source graded everything itself: all pairs
    analysed = _invoke("analyze", str(derived), "--human", str(human), "--n-boot", "50", "--json")
    assert any("cut points of" in w for w in analysed["corrected"]["warnings"])  # type: ignore[index]
    viewed = cli.invoke(app, ["view", str(derived), "--human", str(human)])
    assert viewed.exit_code == 0 and (derived / "view.html").exists()
    reported = cli.invoke(app, ["report", str(derived)])
    assert reported.exit_code == 0, reported.output
    text = (derived / "report.md").read_text()
    assert "## Verdicts from probabilities: sim-signal" in text and "Dev (in-sample) against held-out" in text
    probed = cli.invoke(app, ["probe", str(derived), "--base-url", "http://127.0.0.1:9/v1"])
    assert probed.exit_code == 2 and "probe its source" in probed.output


def test_a_run_without_probabilities_and_a_users_folder_are_refused(cli: CliRunner, tmp_path: Path) -> None:
    run, human = _folder(tmp_path)
    lines = [json.loads(line) for line in (run / "labels.jsonl").read_text().splitlines()]
    (run / "labels.jsonl").write_text("".join(json.dumps({k: v for k, v in r.items() if k != "probabilities"}) + "\n"
                                              for r in lines), encoding="utf-8")
    bare = cli.invoke(app, ["calibrate-thresholds", str(run), "--human", str(human)])
    assert bare.exit_code == 2 and "--logprobs" in bare.output and not (tmp_path / "run-thresholds").exists()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine", encoding="utf-8")
    refused = cli.invoke(app, ["calibrate-thresholds", str(run), "--human", str(human), "-o", str(mine)])
    assert refused.exit_code == 2 and "--out" in refused.output
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    missing = cli.invoke(app, ["calibrate-thresholds", str(run)])
    assert missing.exit_code == 2 and "--human" in missing.output
    itself = cli.invoke(app, ["calibrate-thresholds", str(run), "--human", str(human), "-o", str(run)])
    assert itself.exit_code == 2 and "is the run itself" in itself.output


@pytest.mark.slow
def test_the_bundled_sample_graded_with_logprobs(cli: CliRunner, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    graded = tmp_path / "small"
    done = cli.invoke(app, ["grade", str(SAMPLE), "--base-url", server.base_url, "--model", "harness-small",
                               "--logprobs", "--target", "prompt,response", "-o", str(graded), "--quiet", "--cache-dir",
                               str(tmp_path / "cache")])
    assert done.exit_code == 0, done.output
    found = _invoke("calibrate-thresholds", str(graded), "--human", str(SAMPLE), "--n-boot", "500", "--json")
    split = found["split"]
    assert isinstance(split, dict) and split["dev_clusters"] + split["held_out_clusters"] == 101
    pairs = load_pairs(SAMPLE).set_index("id")["prompt_id"]
    assert not set(pairs[split["dev_ids"]]) & set(pairs[split["held_out_ids"]])  # disjoint prompt clusters
    for row in found["held_out"]:  # type: ignore[union-attr]
        low, high = row["kappa_quadratic_ci"]
        assert row["n_clusters"] == split["held_out_clusters"] and low is not None and low < high
    again = _invoke("calibrate-thresholds", str(graded), "--human", str(SAMPLE), "--n-boot", "0", "--json", "-o",
                    str(tmp_path / "again"))
    assert again["cut_points"] == found["cut_points"]
    ratings = SAMPLE.with_name("sample_ratings.jsonl")
    calibrated = _invoke("calibrate", str(tmp_path / "small-thresholds"), "--human", str(SAMPLE), "--n-boot", "0",
                         "--raters", "ann1,ann2,ann3", "--ratings", str(ratings), "--json")
    assert calibrated["n_joined"] == split["held_out_pairs"]
    rated = {json.loads(line)["id"] for line in ratings.read_text().splitlines()}
    ceiling = calibrated["human_agreement"]["unit"]["n_items"]  # type: ignore[index]
    assert ceiling == len(rated - set(split["dev_ids"])) < len(rated)  # the annotators beside it: held-out items too
