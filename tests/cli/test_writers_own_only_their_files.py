"""Every command that writes: pointed at each of its own inputs, at a user's file, at a folder of a user's files and
at a run folder, it refuses (exit 2, naming the flag) or writes only its own files. No byte it did not write changes.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli.app import app
from tests.helpers import REPO, SAMPLE

RATINGS = REPO / "harness" / "data" / "sample_ratings.jsonl"
#: A user's files named as harness names its own, in a folder of theirs.
USER_NAMES = ("calibration.json", "comparison.json", "manifest.json", "input.jsonl", "labels.jsonl", "report.md",
              "report.html", "analysis.json", "analysis_transitions.csv", "confusion_prompt_max.csv", "view.html",
              "plan.json", "picks.jsonl", "picks.design.json", "stability.json", "flips.json", "probe.json",
              "study.json", "chosen_shots.jsonl", "labels.csv", "shot_search.json", "thresholds.json")


def _protected(root: Path, inputs: list[Path]) -> set[str]:
    """The files a command must not change: every file harness did not write, and its inputs (a run's own files)."""
    from harness.core.ownership import RUN_FILES, kind_of

    paths = [p for p in root.rglob("*") if p.is_file() and ".cache" not in p.parts and p.name != ".harness-owned.json"]
    named = {p.resolve() for p in inputs} | {(p / n).resolve() for p in inputs if p.is_dir() for n in RUN_FILES}
    return {str(p.relative_to(root)) for p in paths if kind_of(p) is None or p.resolve() in named}


def _digests(root: Path) -> dict[str, str]:
    """Every file under ``root`` by its bytes (harness's own records and caches aside)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != ".harness-owned.json" and ".cache" not in p.parts}


@pytest.fixture(scope="module")
def place(cli: CliRunner, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two graded runs of one small table (and two repeats), a user's folder, a user's file."""
    from harness.serve.runner import start_server

    root = tmp_path_factory.mktemp("owners")
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()[:30]
    (root / "data.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    shutil.copy(RATINGS, root / "ratings.jsonl")
    server = start_server(str(SAMPLE))
    try:
        for name, model, extra in (("run", "harness-baseline", []), ("other", "harness-small", []),
                                   ("probs", "harness-small", ["--logprobs"])):
            done = cli.invoke(app, ["grade", str(root / "data.jsonl"), "--base-url", server.base_url, "--model", model,
                                       *extra, "-o", str(root / name), "--quiet", "--cache-dir", str(root / ".cache")])
            assert done.exit_code == 0, done.output
        done = cli.invoke(app, ["grade", str(root / "data.jsonl"), "--base-url", server.base_url, "--repeats", "2",
                                   "-o", str(root / "reps"), "--quiet", "--cache-dir", str(root / ".cache")])
        assert done.exit_code == 0, done.output
    finally:
        server.stop()
    calibrated = cli.invoke(app, ["calibrate", str(root / "run"), "--human", str(root / "data.jsonl"), "--n-boot", "0"])
    assert calibrated.exit_code == 0, calibrated.output
    (root / "mine").mkdir()
    for name in USER_NAMES:
        (root / "mine" / name).write_text(f"the user's own {name}\n", encoding="utf-8")
    (root / "notes.json").write_text('{"mine": true}\n', encoding="utf-8")
    return root


def _commands(root: Path) -> dict[str, tuple[list[str], list[Path], str]]:
    """Each writer: its arguments before ``-o``, its inputs, and whether ``-o`` is a file or a folder."""
    data, run, other = root / "data.jsonl", root / "run", root / "other"
    boot = ["--n-boot", "0"]
    return {
        "grade": (["grade", str(data), "--base-url", "http://127.0.0.1:9/v1", "--quiet"], [data], "folder"),
        "calibrate": (["calibrate", str(run), "--human", str(data), *boot], [run, data], "folder"),
        "compare": (["compare", str(run), str(other), "--human", str(data), *boot], [run, other, data], "file"),
        "agreement": (
            ["agreement", str(root / "ratings.jsonl"), "--raters", "ann1,ann2,ann3", *boot],
            [root / "ratings.jsonl"],
            "file",
        ),
        "analyze": (["analyze", str(run), *boot], [run], "folder"),
        "plan": (
            ["plan", str(run), "--human", str(data), "--target-width", "0.3", "--studies", "10", "--n-boot", "50"],
            [run, data],
            "file",
        ),
        "select": (["select", str(run), "--budget", "2"], [run], "file"),
        "stability": (
            ["stability", str(root / "reps"), *boot],
            [root / "reps" / "repeat-1", root / "reps" / "repeat-2"],
            "file",
        ),
        "jury": (["jury", str(run), str(other)], [run, other], "folder"),
        "calibrate-thresholds": (
            ["calibrate-thresholds", str(root / "probs"), "--human", str(data), *boot],
            [root / "probs", data],
            "folder",
        ),
        "flips": (["flips", str(run), str(other), *boot], [run, other], "file"),
        "export": (["export", str(run)], [run], "file"),
        "schema": (["schema"], [], "folder"),
        "report": (["report", str(run)], [run / "calibration.json"], "folder"),
        "view": (["view", str(run), "--human", str(data)], [run, data], "file"),
        "inject": (["data", "inject", str(data)], [data], "file"),
        "probe": (
            ["probe", str(run), "--kind", "verbosity", "--base-url", "http://127.0.0.1:9/v1", *boot],
            [run],
            "folder",
        ),
    }


def _targets(root: Path, inputs: list[Path], shape: str) -> list[tuple[Path, bool]]:
    """Where to point ``-o``, and whether the command must refuse: each input (and a run's own files), a user's file,
    a user's folder, a user's file in the place of one the command writes."""
    targets: list[tuple[Path, bool]] = []
    for source in inputs:
        # a folder of several files may go into a run folder it reads (calibrate's default), beside the run's own files
        targets.append((source, not (source.is_dir() and shape == "folder")))
        if source.is_dir():
            targets += [(source / name, True) for name in ("labels.jsonl", "manifest.json", "input.jsonl")]
    targets += [(root / "notes.json", True), (root / "mine" / "calibration.json", True)]
    targets += [(root / "mine", True), (root / "mine.json", shape == "folder")]
    return targets


@pytest.mark.slow
@pytest.mark.parametrize("command", ["grade", "calibrate", "compare", "agreement", "analyze", "plan", "select",
                                     "stability", "jury", "calibrate-thresholds", "flips", "export", "schema", "report",
                                     "view", "inject",
                                     "probe"])
def test_a_writer_never_changes_a_byte_it_did_not_write(cli: CliRunner, place: Path, command: str) -> None:
    args, inputs, shape = _commands(place)[command]
    for target, refused in _targets(place, inputs, shape):
        before, protected = _digests(place), _protected(place, inputs)
        result = cli.invoke(app, [*args, "-o", str(target)])
        assert "Traceback" not in result.output, (command, target, result.output)
        if refused:
            assert result.exit_code == 2, (command, target, result.output)
            assert "--out" in result.output, (command, target, result.output)
        after = _digests(place)
        changed = sorted(name for name in protected if after.get(name) != before[name])
        assert not changed, (command, target, changed, result.output)
        for made in set(after) - set(before):  # whatever it made lies at its own target
            assert made.startswith(str(target.relative_to(place))), (command, target, made)


@pytest.mark.slow
def test_a_study_is_refused_whole_before_any_step(cli: CliRunner, place: Path, tmp_path: Path) -> None:
    """out = a folder of a user's files named as a study's outputs: refused naming one, nothing graded or written;
    a study whose human labels are where its picks go is refused too."""
    study = tmp_path / "study.toml"
    shutil.copy(place / "data.jsonl", tmp_path / "data.jsonl")
    study.write_text(f'[study]\nname = "s"\nout = "{place / "mine"}"\ndata = "data.jsonl"\nhuman = "data.jsonl"\n'
                     '[endpoint]\nbase_url = "http://127.0.0.1:9/v1"\n'
                     '[[grader]]\nname = "g"\nmodel = "harness-baseline"\n[calibrate]\n[plan]\ngrader = "g"\n'
                     'target_width = 0.2\n[select]\ngrader = "g"\nbudget = 2\n', encoding="utf-8")
    before = _digests(place)
    result = cli.invoke(app, ["run", str(study)])
    assert result.exit_code == 2 and "mine" in result.output and "Traceback" not in result.output, result.output
    assert _digests(place) == before and not (place / "mine" / "g").exists()
    picks_are_labels = tmp_path / "labelled"
    picks_are_labels.mkdir()
    shutil.copy(place / "data.jsonl", picks_are_labels / "picks.jsonl")
    study.write_text(
        study.read_text(encoding="utf-8")
        .replace(str(place / "mine"), str(picks_are_labels))
        .replace('human = "data.jsonl"', f'human = "{picks_are_labels / "picks.jsonl"}"'),
        encoding="utf-8",
    )
    result = cli.invoke(app, ["run", str(study)])
    assert result.exit_code == 2 and "picks.jsonl" in result.output and "input" in result.output, result.output
    assert (picks_are_labels / "picks.jsonl").read_bytes() == (place / "data.jsonl").read_bytes()
    assert sorted(p.name for p in picks_are_labels.iterdir()) == ["picks.jsonl"]


@pytest.mark.slow
def test_two_identical_probe_tables_and_a_plan_without_width_are_refused_before_grading(
    cli: CliRunner, place: Path, tmp_path: Path
) -> None:
    shutil.copy(place / "data.jsonl", tmp_path / "data.jsonl")
    base = ('[study]\nname = "s"\nout = "out"\ndata = "data.jsonl"\nhuman = "data.jsonl"\n'
            '[endpoint]\nbase_url = "http://127.0.0.1:9/v1"\n[[grader]]\nname = "g"\nmodel = "harness-baseline"\n')
    (tmp_path / "a.toml").write_text(base + '[[probe]]\nkind = "verbosity"\n[[probe]]\nkind = "verbosity"\n')
    (tmp_path / "b.toml").write_text(base + '[plan]\ngrader = "g"\n')
    twice = cli.invoke(app, ["run", str(tmp_path / "a.toml")])
    assert twice.exit_code == 2 and "declared twice" in twice.output and "probe verbosity g" in twice.output, (
        twice.output
    )
    width = cli.invoke(app, ["run", str(tmp_path / "b.toml")])
    assert width.exit_code == 2 and "plan: give target_width" in width.output and "--" not in width.output, width.output
    assert not (tmp_path / "out" / "g").exists()


def test_a_demo_folder_with_a_users_file_is_refused_and_kept(cli: CliRunner, tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    folder.mkdir()
    (folder / "thesis.tex").write_text("years of work")
    result = cli.invoke(app, ["demo", "-o", str(folder)])
    assert result.exit_code == 2 and "thesis.tex" in result.output and "Traceback" not in result.output
    assert sorted(p.name for p in folder.iterdir()) == ["thesis.tex"]


def test_schema_over_a_run_and_export_over_its_manifest_are_refused(cli: CliRunner, tmp_path: Path) -> None:
    from harness.core.atomic import write_json_atomic

    run = tmp_path / "run"
    write_json_atomic(run / "manifest.json", {"harness_version": "0", "counts": {}, "model": "m"}, kind="manifest")
    before = (run / "manifest.json").read_bytes()
    schema = cli.invoke(app, ["schema", "-o", str(run)])
    assert schema.exit_code == 2 and "manifest.json" in schema.output and "as a manifest, not a schema" in schema.output
    assert (run / "manifest.json").read_bytes() == before and json.loads(before)["model"] == "m"


def test_every_out_flag_says_whether_it_is_a_file_or_a_folder() -> None:
    """`-o` is a file for a command that writes one file and a folder for one that writes several, and its help says
    which; the table of writers above holds each to what it says."""
    import typer

    group = typer.main.get_command(app)
    said: dict[str, str] = {}
    for name, command in [*group.commands.items(), *group.commands["data"].commands.items()]:  # type: ignore[attr-defined]
        for param in getattr(command, "params", []):
            if "--out" in getattr(param, "opts", ()):
                said[name] = param.help.split(":")[0]
    assert said and set(said.values()) == {"A file", "A folder"}, said
    shapes = {name: shape for name, (_, _, shape) in _commands(Path("/nowhere")).items()}
    for name, shape in shapes.items():
        assert said["inject" if name == "inject" else name] == f"A {shape}", name
