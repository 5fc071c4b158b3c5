"""``harness demo`` deletes only a folder it made."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_demo_deletes_only_a_folder_it_made(tmp_path: Path) -> None:
    from harness.core.atomic import write_json_atomic
    from harness.core.errors import ConfigError
    from harness.workflows.demo import fresh_demo_folder

    precious = tmp_path / "mine"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    with pytest.raises(ConfigError, match=r"holds files harness did not write \(thesis.tex\)"):
        fresh_demo_folder(precious)
    assert (precious / "thesis.tex").read_text() == "years of work"
    demo = tmp_path / "demo"
    fresh_demo_folder(demo)
    write_json_atomic(demo / "sub" / "plan.json", {"a": 1}, kind="result")  # an earlier demo's output: cleared
    (demo / "notes.txt").write_text("mine")  # a user's file in a demo folder: the demo refuses, removes nothing
    with pytest.raises(ConfigError, match="notes.txt"):
        fresh_demo_folder(demo)
    assert (demo / "sub" / "plan.json").exists() and (demo / "notes.txt").read_text() == "mine"
    (demo / "notes.txt").unlink()
    fresh_demo_folder(demo)
    assert not (demo / "sub").exists() and (demo / ".harness-demo").exists()
