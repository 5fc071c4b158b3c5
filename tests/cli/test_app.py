"""The command line's own house rules: every command named where a newcomer looks for it."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys

import typer

from harness.cli.app import app
from tests.helpers import REPO


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
        row = next((line for line in architecture.splitlines() if f"`{module.replace('harness.', '').replace('.', '/')}.py`"
                    in line), "")
        for place, text in (("docstring", doc), ("ARCHITECTURE.md", row)):
            if not re.search(rf"`(?:harness )?{re.escape(name)}\b", text):
                missing.append(f"{name} in {module}'s {place}")
    assert not missing, missing


def test_the_consoles_width_follows_columns_whatever_it_was_at_import() -> None:
    code = ("import os; os.environ['COLUMNS'] = '40'\n"
            "from harness.cli.console import console\n"
            "os.environ['COLUMNS'] = '200'; print(console.width)")
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert shown.stdout.strip() == "200"
