"""The command line's own house rules: every command named where a newcomer looks for it; what researchers reach
for first (the version, templates, a limited or sampled grade, exports) works."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import typer
from typer.testing import CliRunner

from harness.cli.app import app
from harness.io.pairs import load_pairs, write_pairs
from tests.helpers import REPO, SAMPLE


def test_every_command_is_named_in_its_module_and_in_the_architecture() -> None:
    architecture = (REPO / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    group = typer.main.get_command(app)
    missing = []
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        callback = getattr(command, "callback", None)
        module = callback.__module__ if callback is not None else None
        if module is None:  # a group (data, batch): its module registers it
            module = next(c.callback.__module__ for c in command.commands.values())  # type: ignore[attr-defined]
        doc = importlib.import_module(module).__doc__ or ""
        row = next(
            (
                line
                for line in architecture.splitlines()
                if f"`{module.replace('harness.', '').replace('.', '/')}.py`" in line
            ),
            "",
        )
        for place, text in (("docstring", doc), ("ARCHITECTURE.md", row)):
            if not re.search(rf"`(?:harness )?{re.escape(name)}\b", text):
                missing.append(f"{name} in {module}'s {place}")
    assert not missing, missing


def test_what_researchers_reach_for(cli: CliRunner, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from harness import __version__

    assert cli.invoke(app, ["--version"]).output.strip() == f"harness {__version__}"
    listing = cli.invoke(app, ["templates"], env={"COLUMNS": "100"})
    assert listing.exit_code == 0 and "default" in listing.output and "4 exemplars" in listing.output

    data = write_pairs(load_pairs(SAMPLE), tmp_path / "d.jsonl")
    run = tmp_path / "run"
    args = ["grade", str(data), "--base-url", server.base_url, "--target", "prompt"]
    assert cli.invoke(app, [*args, "--out", str(run), "--limit", "5"]).exit_code == 0
    assert json.loads((run / "manifest.json").read_text())["input_rows"] == 5
    sampled = tmp_path / "sampled"
    assert cli.invoke(app, [*args, "--out", str(sampled), "--sample", "7", "--sample-seed", "3"]).exit_code == 0
    again = tmp_path / "again"
    assert cli.invoke(app, [*args, "--out", str(again), "--sample", "7", "--sample-seed", "3"]).exit_code == 0
    ids = lambda folder: [json.loads(line)["id"] for line in (folder / "input.jsonl").read_text().splitlines()]
    assert len(ids(sampled)) == 7 and ids(sampled) == ids(again) and ids(sampled) != ids(run)[:7]
    both = cli.invoke(app, [*args, "--out", str(tmp_path / "x"), "--limit", "2", "--sample", "2"])
    assert both.exit_code == 2 and "--limit and --sample exclude each other" in both.output

    exported = cli.invoke(app, ["export", str(run), "-o", str(tmp_path / "labels.csv")])
    assert exported.exit_code == 0 and "wrote 5 rows" in exported.output
    table = pd.read_csv(tmp_path / "labels.csv")
    assert {"grader_prompt_hate", "prompt_status", "prompt_hate"} <= set(table.columns) and len(table) == 5
    assert cli.invoke(app, ["export", str(run), "-o", str(tmp_path / "labels.parquet")]).exit_code == 0
    assert len(pd.read_parquet(tmp_path / "labels.parquet")) == 5

    analysis = cli.invoke(
        app, ["analyze", str(data), "--limit", "30", "--n-boot", "0", "--json", "-o", str(tmp_path / "a")]
    )
    assert analysis.exit_code == 0 and json.loads((tmp_path / "a" / "analysis.json").read_text())["n_pairs"] == 30


def test_the_consoles_width_follows_columns_whatever_it_was_at_import() -> None:
    code = ("import os; os.environ['COLUMNS'] = '40'\n"
            "from harness.cli.console import console\n"
            "os.environ['COLUMNS'] = '200'; print(console.width)")
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert shown.stdout.strip() == "200"
