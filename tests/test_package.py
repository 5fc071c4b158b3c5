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


def test_no_submodule_shadows_an_export() -> None:
    import pkgutil

    modules = {m.name for m in pkgutil.iter_modules(harness.__path__)}
    assert not modules & set(harness.__all__), modules & set(harness.__all__)
    assert {"grade", "agrade", "agreement", "describe", "analyze", "compare"} <= set(dir(harness))


def test_public_functions_work_twice_in_a_fresh_interpreter() -> None:
    code = (
        "import harness, harness.analysis.calibration\n"  # importing a submodule first must not shadow anything
        "for _ in range(2):\n"
        "    r = harness.agreement([0, 1, 2, 3], [0, 1, 2, 2], n_boot=0)\n"
        "    d = harness.describe(harness.load_pairs(harness.sample_path()))\n"
        "print(r['accuracy'], d['rows'])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0.75", str(len(harness.load_pairs(harness.sample_path())))]
