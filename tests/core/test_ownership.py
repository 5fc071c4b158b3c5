"""The ownership rule: what harness marks as its own, what it may replace, and what a claim refuses."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness.core.atomic import atomic_path, write_json_atomic
from harness.core.claims import Output, claim
from harness.core.errors import ConfigError
from harness.core.ownership import RECORD, check_clearable, clear, kind_of, owned, run_folder


def _write(path: Path, text: str, kind: str) -> None:
    with atomic_path(path, kind=kind) as tmp:
        tmp.write_text(text, encoding="utf-8")


def test_a_written_file_is_marked_with_its_kind_and_bytes(tmp_path: Path) -> None:
    target = tmp_path / "plan.json"
    write_json_atomic(target, {"a": 1}, kind="result")
    record = json.loads((tmp_path / RECORD).read_text())
    assert record["files"] == ["plan.json"] and record["entries"]["plan.json"]["kind"] == "result"
    assert kind_of(target) == "result" and owned(target, "result") and not owned(target, "schema")
    write_json_atomic(target, {"a": 2}, kind="result")  # harness replaces its own file of the same kind
    assert json.loads(target.read_text()) == {"a": 2}


def test_a_file_edited_by_hand_is_the_users(tmp_path: Path) -> None:
    picks = tmp_path / "picks.jsonl"
    _write(picks, '{"id": "a", "prompt_hate": null}\n', "pairs")
    picks.write_text('{"id": "a", "prompt_hate": 2}\n')  # an annotator filled in the label
    assert kind_of(picks) is None
    with pytest.raises(ConfigError, match="harness did not write it \\(or it was changed since\\)"):
        _write(picks, "blank again\n", "pairs")
    assert picks.read_text() == '{"id": "a", "prompt_hate": 2}\n'


def test_a_kind_never_replaces_another(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.json"
    write_json_atomic(manifest, {"harness_version": "0", "counts": {}, "model": "m"}, kind="manifest")
    with pytest.raises(ConfigError, match="harness wrote it as a manifest, not a schema"):
        write_json_atomic(manifest, {"$schema": "x"}, kind="schema")
    assert json.loads(manifest.read_text())["model"] == "m"


def test_an_earlier_harness_file_is_known_by_what_it_holds(tmp_path: Path) -> None:
    (tmp_path / "report.md").write_text("# harness report: x\n")
    (tmp_path / "calibration.json").write_text(json.dumps({"provenance": {"harness_version": "0.1"}, "targets": {}}))
    (tmp_path / "confusion_prompt_max.csv").write_text("a,b\n")
    (tmp_path / "manifest.json").write_text(json.dumps({"harness_version": "0.1", "counts": {}, "model": "m"}))
    (tmp_path / "labels.jsonl").write_text("{}\n")
    (tmp_path / "schema.json").write_text(json.dumps({"$schema": "https://json-schema.org/draft/2020-12/schema"}))
    (tmp_path / "user.json").write_text(json.dumps({"harness": "my own notes"}))
    kinds = {p.name: kind_of(p) for p in tmp_path.iterdir()}
    assert kinds == {"report.md": "document", "calibration.json": "result", "confusion_prompt_max.csv": "table",
                     "manifest.json": "manifest", "labels.jsonl": "run", "schema.json": "schema", "user.json": None}
    assert run_folder(tmp_path)


def test_a_run_folder_is_harnesss_only_with_its_manifest(tmp_path: Path) -> None:
    (tmp_path / "labels.jsonl").write_text("{}\n")
    assert kind_of(tmp_path / "labels.jsonl") is None and not run_folder(tmp_path)
    with pytest.raises(ConfigError, match="holds labels.jsonl that harness did not write"):
        claim([Output(tmp_path, run=True)])


@pytest.mark.parametrize(("setup", "output", "message"), [
    ("input", lambda p: Output(p / "data.jsonl", kind="pairs"), "is the table, an input of this command"),
    ("user", lambda p: Output(p / "notes.json", kind="result"), "a file is in the way: harness did not write it"),
    ("link", lambda p: Output(p / "link.json", kind="result"), "is a symbolic link"),
    ("dir", lambda p: Output(p / "sub", kind="result"), "is a folder; expected the path of a file"),
    ("none", lambda p: Output(p / "out.json", folder=True), "the name is a file's (.json); give a folder"),
    ("none", lambda p: Output(p / ("x" * 300) / "a.json", kind="result"),
     "is 300 bytes; file systems take at most 255"),
    ("none", lambda p: Output(Path("/proc/self/out.json"), kind="result"), "lies under /proc, which is not a place"),
    ("user", lambda p: Output(p / "notes.json" / "a.json", kind="result"),
     "is a file, so nothing can be written below"),
])
def test_a_claim_refuses_before_any_work(tmp_path: Path, setup: str, output, message: str) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "data.jsonl").write_text("{}\n")
    (tmp_path / "notes.json").write_text("{}")
    (tmp_path / "sub").mkdir()
    if setup == "link":
        (tmp_path / "link.json").symlink_to(tmp_path / "notes.json")
    with pytest.raises(ConfigError, match=message.replace("(", "\\(").replace(")", "\\)")):
        claim([output(tmp_path)], inputs=[("the table", tmp_path / "data.jsonl")])
    assert (tmp_path / "data.jsonl").read_text() == "{}\n" and (tmp_path / "notes.json").read_text() == "{}"


def test_two_outputs_at_one_path_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="`a` and `b` both write"):
        claim(
            [
                Output(tmp_path / "x.json", param="`b`", kind="result"),
                Output(tmp_path / "x.json", param="`a`", kind="result"),
            ]
        )


def test_a_run_folders_own_files_read_as_inputs_are_inputs(tmp_path: Path) -> None:
    run = tmp_path / "run"
    write_json_atomic(run / "manifest.json", {"harness_version": "0", "counts": {}, "model": "m"}, kind="manifest")
    (run / "labels.jsonl").write_text("{}\n")
    with pytest.raises(ConfigError, match="an input of this command"):
        claim([Output(run / "labels.jsonl", kind="result")], inputs=[("the run", run)])


def test_clearing_removes_only_what_harness_wrote(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    write_json_atomic(folder / "plan.json", {"a": 1}, kind="result")
    write_json_atomic(folder / "deep" / "er" / "x.json", {"a": 1}, kind="result")
    (folder / ".cache").mkdir()
    (folder / ".cache" / "cache.db").write_text("cache")
    check_clearable(folder, param="`out`", keep=(".cache",))
    clear(folder, keep=(".cache",))
    assert sorted(p.name for p in folder.iterdir()) == [".cache"] and (folder / ".cache" / "cache.db").exists()
    (folder / "mine.txt").write_text("mine")
    with pytest.raises(ConfigError, match=r"holds files harness did not write \(mine.txt\)"):
        check_clearable(folder, param="`out`", keep=(".cache",))
    clear(folder)  # even unchecked, a user's file stays
    assert (folder / "mine.txt").read_text() == "mine"


def test_two_writers_in_one_folder_keep_both_marks(tmp_path: Path) -> None:
    import threading

    def write(k: int) -> None:
        for j in range(20):
            write_json_atomic(tmp_path / f"f{k}-{j}.json", {"k": k}, kind="result")

    threads = [threading.Thread(target=write, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(json.loads((tmp_path / RECORD).read_text())["files"]) == 80


def test_a_read_only_parent_is_refused_before_work(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip(
            "root writes into read-only folders; the read-only file system test covers it (tests/cli/test_faults.py)"
        )
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        with pytest.raises(ConfigError, match="is not writable"):
            claim([Output(locked / "a.json", kind="result")])
    finally:
        locked.chmod(0o755)


def test_the_record_is_replaced_whole_and_a_killed_writers_temporary_is_harnesss(tmp_path: Path) -> None:
    write_json_atomic(tmp_path / "a.json", {"x": 1}, kind="result")
    with (tmp_path / RECORD).open(encoding="utf-8") as old:
        write_json_atomic(tmp_path / "b.json", {"x": 2}, kind="result")
        assert "b.json" not in json.loads(old.read())["entries"]  # the old file intact: a new one renamed over it
    stale = tmp_path / f"{RECORD}.4242.tmp"
    stale.write_text('{"files": ["a.js')  # what a writer killed mid-record leaves
    check_clearable(tmp_path, param="--out")  # not a user's file
    assert kind_of(tmp_path / "a.json") == "result" and kind_of(tmp_path / "b.json") == "result"
    clear(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_manifest_rewritten_in_place_stays_the_runs_own(tmp_path: Path) -> None:
    manifest = {"harness_version": "0", "counts": {}, "model": "m", "status": "running"}
    write_json_atomic(tmp_path / "manifest.json", manifest, kind="manifest")
    (tmp_path / "manifest.json").write_text(json.dumps({**manifest, "status": "failed"}))  # a full disk's last resort
    assert run_folder(tmp_path) and owned(tmp_path / "manifest.json", "manifest")
