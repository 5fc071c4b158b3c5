"""Figures with a model named like markup or mathtext still draw, the name shown as text."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import completion_endpoint, pairs_file


@pytest.mark.slow
def test_a_model_named_like_markup_or_mathtext_runs_to_the_report(tmp_path: Path) -> None:
    url, httpd = completion_endpoint()
    data = pairs_file(tmp_path, 6)
    try:
        for model in ("[/x]", "$x^{2$"):
            run = tmp_path / f"run{len(model)}"
            graded = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "harness",
                    "grade",
                    str(data),
                    "--base-url",
                    url,
                    "--model",
                    model,
                    "--out",
                    str(run),
                ],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert graded.returncode == 0 and f"grading with model {model} " in graded.stderr, graded.stderr
            calibrated = subprocess.run(
                [sys.executable, "-m", "harness", "calibrate", str(run), "--human", str(data), "--n-boot", "50"],
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert calibrated.returncode == 0, calibrated.stderr
            reported = subprocess.run(
                [sys.executable, "-m", "harness", "report", str(run)], capture_output=True, text=True, timeout=120
            )
            assert reported.returncode == 0 and "Traceback" not in reported.stderr, reported.stderr
    finally:
        httpd.shutdown()  # type: ignore[attr-defined]
