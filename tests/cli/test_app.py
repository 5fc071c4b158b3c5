"""The command line's own house rules: every command named where a newcomer looks for it."""

from __future__ import annotations

import importlib
import re

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
