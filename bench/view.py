"""``harness view`` at 50,000 items: the page written, and (with Chromium) loaded and filtered in a browser.

Baseline: ``json.dumps`` of the same records (the floor of writing them at all) for the page,
a bare page that parses the same JSON for the browser figures.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from harness.core.constants import CATEGORIES
from harness.report.view import render_view

ROOT = Path(__file__).resolve().parent.parent


def synthetic_run(pairs: int, seed: int = 0) -> Any:
    """A run of ``pairs`` pairs graded on both sides (``2 * pairs`` items), its human labels, as ``load_run``
    returns them."""
    rng = np.random.default_rng(seed)
    prompts = [f"Question {k} about a everyday topic, written at some length to look like a real prompt."
               for k in range(pairs // 3)]
    responses = [f"An answer number {k}, a few sentences long, that the grader reads and labels." for k in range(pairs)]
    frame = pd.DataFrame({"id": [f"p{k}" for k in range(pairs)], "prompt_id": [f"q{k // 3}" for k in range(pairs)],
                          "prompt": [prompts[k // 3 % len(prompts)] for k in range(pairs)],
                          "response": responses,
                          "model": rng.choice(["aurora-mini", "basalt-7b", "cirrus-xl"], pairs)})
    labels = []
    for side in ("prompt", "response"):
        severities = rng.choice(4, size=(pairs, 4), p=[0.7, 0.15, 0.1, 0.05])
        for k in range(pairs):
            severity = dict(zip(CATEGORIES, map(int, severities[k]), strict=True))
            rationale = "highest violence at severity 1." if severities[k].max() else "no harm detected."
            labels.append({"id": f"p{k}", "target": side, "status": "ok", "severity": severity,
                           "rationale": rationale,
                           "raw": None, "completion": None, "error": None, "request_hash": f"{side}{k}"})
    human = frame.copy()
    for side in ("prompt", "response"):
        for category in CATEGORIES:
            human[f"{side}_{category}"] = rng.choice(4, pairs, p=[0.7, 0.15, 0.1, 0.05])
    manifest = SimpleNamespace(model="bench-grader", input_path="bench.jsonl",
                               template_hash="t" * 16, shots_hash="s" * 16, shots_count=4,
                               status="complete", targets=["prompt", "response"])
    return SimpleNamespace(input=frame, records=labels, manifest=manifest, path=Path("runs/bench")), human


def view_figures(items: int = 50_000) -> dict[str, Any]:
    run, human = synthetic_run(items // 2)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        start = time.perf_counter()
        json.dumps(run.records)
        floor = time.perf_counter() - start
        start = time.perf_counter()
        summary = render_view(run, tmp / "view.html", human=human, human_source="bench-human.jsonl")
        page = time.perf_counter() - start
        out: dict[str, Any] = {"items": summary.items, "page_mb": round((tmp / "view.html").stat().st_size / 1e6, 1),
                               "write_page_s": round(page, 2), "json_dumps_records_s": round(floor, 2),
                               "page_over_json_dumps": round(page / floor, 1)}
        sys.path.insert(0, str(ROOT / "scripts"))
        from browser import chromium
        from view_check import check_view

        if chromium() is None:
            out["browser"] = "no chromium on PATH: browser figures skipped"
            return out
        bare = tmp / "bare.html"
        view_data = (tmp / "view.html").read_text().split('id="view-data">', 1)[1].split("</script>", 1)[0]
        bare.write_text("<!doctype html><body><script type='application/json' id='d'>" + view_data
                        + "</script><script>JSON.parse(document.getElementById('d').textContent);"
                        "document.body.dataset.ready='1'</script>")
        checked = check_view(tmp / "view.html", search="answer number 4242")
        bare_load = check_view_load(bare)
        out.update({"browser_load_s": checked["load_s"], "bare_parse_load_s": bare_load,
                    "load_over_bare": round(checked["load_s"] / bare_load, 1),
                    "slowest_filter_s": max(s["s"] for s in checked["steps"] if s["control"] != "q"),
                    "search_s_incl_150ms_pause": next(s["s"] for s in checked["steps"] if s["control"] == "q"),
                    "problems": checked["problems"]})
    return out


def run_folder(pairs: int, folder: Path) -> tuple[Path, Path]:
    """The synthetic run as a real run folder (a grade of 3 sample pairs at the embedded endpoint gives the manifest;
    its input and labels are then replaced), and the human labels as a pairs file."""
    from harness.grading.grade import grade
    from harness.grading.jobs import GradeSpec
    from harness.io.pairs import load_pairs, write_pairs
    from harness.io.sample import sample_path
    from harness.serve.runner import start_server

    with start_server() as server:
        grade(load_pairs(sample_path()).head(3), GradeSpec(model="harness-baseline"), server, run_dir=folder / "run")
    run, human = synthetic_run(pairs)
    write_pairs(run.input, folder / "run" / "input.jsonl")
    with (folder / "run" / "labels.jsonl").open("w", encoding="utf-8") as handle:
        for record in run.records:
            handle.write(json.dumps(record) + "\n")
    return folder / "run", write_pairs(human, folder / "human.jsonl")


def view_process(pairs: int = 100_000) -> dict[str, Any]:
    """``harness view RUN --human FILE`` on ``pairs`` pairs (2 × pairs items) as a user runs it: wall time and the
    process's peak memory; the baseline is ``harness --help`` (interpreter and imports) in the same run."""
    import resource
    import subprocess

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        run, human = run_folder(pairs, tmp)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "harness", "--help"], check=True, capture_output=True)
        baseline = time.perf_counter() - start
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "harness", "view", str(run), "--human", str(human),
                        "-o", str(tmp / "v.html")],
                       check=True, capture_output=True)
        wall = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        return {"pairs": pairs, "items": 2 * pairs, "view_s": round(wall, 2), "help_s": round(baseline, 2),
                "view_over_help": round(wall / baseline, 1), "peak_rss_mb": round(peak, 1),
                "page_mb": round((tmp / "v.html").stat().st_size / 1e6, 1)}


def check_view_load(page: Path) -> float:
    from browser import Browser

    with Browser() as browser:
        start = time.perf_counter()
        browser.open(page, ready="document.body && document.body.dataset.ready === '1'")
        return round(time.perf_counter() - start, 3)


if __name__ == "__main__":
    print(json.dumps({**view_figures(), "process_100k_pairs": view_process(100_000)}, indent=1))
