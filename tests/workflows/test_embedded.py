"""The embedded endpoint: started for a grade and gone after it, never left behind by a killed study."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import REPO, SAMPLE


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_kill_9_of_a_study_leaves_no_embedded_server(tmp_path: Path) -> None:
    (tmp_path / "pairs.jsonl").write_text(SAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    study = tmp_path / "s.toml"
    study.write_text(f'[study]\nout = "{tmp_path / "out"}"\ndata = "pairs.jsonl"\n[endpoint]\nbase_url = "embedded"\n'
                     '[[grader]]\nname = "g"\nmodel = "harness-baseline"\n', encoding="utf-8")
    parent = subprocess.Popen([sys.executable, "-m", "harness", "run", str(study), "--quiet"], cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        children: list[int] = []
        while not children and time.monotonic() < deadline and parent.poll() is None:
            children = [
                c for c in _children(parent.pid) if "serve" in Path(f"/proc/{c}/cmdline").read_text(errors="replace")
            ]
            time.sleep(0.05)
        assert children, "the study never started its embedded server"
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 30
        while any(_alive(c) for c in children) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_alive(c) for c in children)
    finally:
        if parent.poll() is None:
            parent.kill()


@pytest.mark.slow
def test_grade_at_the_embedded_endpoint_starts_and_stops_its_own_server(tmp_path: Path) -> None:
    """``--base-url embedded``: harness serve started for the grade, said so, and gone when the grade ends."""
    import subprocess
    import sys
    import urllib.error
    import urllib.request

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness",
            "grade",
            str(SAMPLE),
            "--base-url",
            "embedded",
            "--limit",
            "2",
            "-o",
            str(tmp_path / "run"),
            "--no-cache",
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "(harness serve, started for this grade)" in " ".join(done.stderr.split())
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["counts"].get("ok") == 4 and not manifest["counts"].get("failed")
    assert manifest["endpoint"].startswith("harness-serve:")  # what it serves, not the port it was given
    url = manifest["replicas"][0].removesuffix("/v1")
    assert url.startswith("http://127.0.0.1:")
    with pytest.raises(urllib.error.URLError):  # the server it started is gone
        urllib.request.urlopen(url + "/health", timeout=5)
