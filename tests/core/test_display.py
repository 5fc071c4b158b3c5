"""Text from an endpoint is shown as text: no markup, no terminal escapes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import completion_endpoint, pairs_file


@pytest.mark.slow
def test_markup_and_escapes_from_an_endpoint_are_printed_as_text(tmp_path: Path) -> None:
    message = "bad [/x] request [link=http://evil.example]click[/link] \x1b]8;;http://evil.example\x07here\x1b]8;;\x07"
    url, httpd = completion_endpoint(message)
    try:
        process = subprocess.run(
            [
                sys.executable,
                "-m",
                "harness",
                "grade",
                str(pairs_file(tmp_path, 3)),
                "--base-url",
                url,
                "--out",
                str(tmp_path / "run"),
                "--target",
                "prompt",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        httpd.shutdown()  # type: ignore[attr-defined]
    assert process.returncode == 3 and "Traceback" not in process.stderr  # failed items, said as such
    assert "bad [/x] request [link=http://evil.example]click[/link]" in process.stdout
    assert "\x1b" not in process.stdout + process.stderr
