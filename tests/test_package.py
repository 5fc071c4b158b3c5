"""The public API re-exported from harness/__init__.py resolves, and stays lazy."""

from __future__ import annotations

import subprocess
import sys

import harness


def test_every_export_resolves() -> None:
    for name in harness.__all__:
        assert getattr(harness, name) is not None, name


def test_cli_import_does_not_load_heavy_libraries() -> None:
    code = "import sys, harness.cli; print(sorted(m for m in ('pandas', 'openai', 'sklearn') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
