"""``harness demo``: the whole workflow on the embedded endpoint and the bundled sample.

Starts ``harness serve`` (three small in-context graders, cross-fitted so no text is graded by
a model that saw it) as a background process on a free loopback port, then:

1. grades the sample's prompts, responses and relevance with ``harness-baseline`` and the
   default few-shot exemplars;
2. calibrates it against the human labels (the prompt/response asymmetry, with CIs);
3. runs a small exemplar search (pool/dev/test split by prompt) and reports the chosen set
   against zero-shot and the default set on held-out prompts, with paired CIs and ties said;
4. grades again with ``harness-small`` and compares the two graders;
5. measures the three annotators of the sample's reliability subset against each other
   (Krippendorff's α), sets each grader beside that human ceiling and runs the alternative
   annotator test (``agreement.json``; calibrate and compare carry the ceiling too);
6. plans the next labelling round from the calibration (how many prompts to know the prompt
   side's quadratic κ to ±0.05) and picks 20 prompt clusters for it, stratified, with weights;
7. analyses the transitions by model, corrected by the human labels of a random third of the
   prompts (prediction-powered inference), and writes the report.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..core.constants import DEFAULT_SEED
from ..core.errors import GraderError
from ..grading.endpoint import EndpointConfig
from ..grading.grade import GradeResult, grade
from ..grading.jobs import GradeSpec
from ..io.provenance import provenance_of, stamped
from ..io.sample import SAMPLE_RATERS, ratings_path, sample_path
from ..results.analysis import Analysis
from ..results.calibration import Calibration
from ..results.comparison import Comparison
from ..results.planning import Plan, Selection
from ..results.raters import RaterAgreement
from ..results.shots import ShotSearch


@dataclass
class DemoResult:
    grade: GradeResult
    analysis: Analysis
    calibration: Calibration
    shot_search: ShotSearch
    comparison: Comparison
    agreement: RaterAgreement
    plan: Plan
    pick: Selection
    outputs: dict[str, Path]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_serve_process(port: int, *extra: str, timeout_s: float = 60.0) -> subprocess.Popen[bytes]:
    """Run ``harness serve`` in a child process; return once it says it is listening.

    ``harness serve`` prints its URL only when the socket accepts connections, so waiting for
    that line is waiting for readiness (no sleeping and polling).
    """
    import selectors

    process = subprocess.Popen(
        [sys.executable, "-m", "harness", "serve", "--port", str(port), *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert process.stderr is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stderr, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout_s
    seen = b""
    while time.monotonic() < deadline:
        if not selector.select(timeout=max(0.0, deadline - time.monotonic())):
            break
        line = process.stderr.readline()
        if not line:  # the child exited
            process.wait(5)
            raise GraderError(f"harness serve exited early: {(seen + process.stderr.read()).decode(errors='replace').strip()[-500:]}")
        seen += line
        if line.startswith(b"harness serve: http://"):
            selector.close()
            return process
    process.kill()
    raise GraderError(f"harness serve did not start listening within {timeout_s:g} s")


def wait_until_graders_ready(port: int, *, timeout_s: float = 120.0) -> None:
    """Block until the served graders are fitted (``/health`` says ready); chat requests would wait anyway."""
    import json

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
            health = json.loads(response.read())
        if health.get("error"):
            raise GraderError(f"the embedded graders could not be fitted: {health['error']}")
        if health.get("ready"):
            return
        time.sleep(0.05)
    raise GraderError(f"the embedded graders were not ready within {timeout_s:g} s")


DEMO_MARKER = ".harness-demo"
#: Resamples of every demo CI (fewer than the default 2,000: the demo is a quick tour).
DEMO_N_BOOT = 1000


def _earlier_demo(folder: Path) -> bool:
    """A run folder an earlier harness demo made before demos left a marker: it graded the bundled sample."""
    import json

    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and str(manifest.get("input_path", "")).endswith("sample_pairs.jsonl")


def _fresh_demo_folder(folder: Path) -> None:
    """A demo starts from scratch, but deletes only a folder an earlier demo made (it holds
    the marker file); any other non-empty folder is left alone and refused."""
    import shutil

    from ..core.atomic import ensure_folder
    from ..core.errors import RunError

    if folder.exists():
        if not folder.is_dir():
            raise RunError(f"`run_dir` {folder}: expected a folder, but it is a file")
        if any(folder.iterdir()) and not (folder / DEMO_MARKER).exists() and not _earlier_demo(folder):
            raise RunError(f"`run_dir` {folder}: the folder holds files the demo did not make; pick an empty or new folder")
        shutil.rmtree(folder)
    ensure_folder(folder, param="run_dir")
    (folder / DEMO_MARKER).write_text("made by harness demo; harness demo may delete this folder\n", encoding="utf-8")


def human_subset(human: Any, share: float = 1 / 3, seed: int = DEFAULT_SEED) -> Any:
    """A random share of the prompt clusters with their human labels: what an annotation round would return.

    The demo corrects the grader's transition shares with it (prediction-powered inference),
    not with the pairs it calibrated on.
    """
    import numpy as np

    prompts = np.unique(human["prompt_id"].astype(str))
    chosen = np.random.default_rng(seed).choice(prompts, size=max(1, round(share * prompts.size)), replace=False)
    return human[human["prompt_id"].astype(str).isin(set(chosen))].reset_index(drop=True)


def run_demo(run_dir: str | Path = "runs/demo", *, on_progress: Any = None) -> DemoResult:
    """The whole workflow on the bundled sample against a freshly started local endpoint."""
    from ..analysis.calibration import calibrate_run, save_calibration
    from ..analysis.comparison import compare
    from ..analysis.raters import rater_agreement
    from ..analysis.transitions import analyze, save_analysis
    from ..io.pairs import load_pairs, write_pairs
    from ..io.ratings import read_ratings
    from ..io.runs import graded_pairs, load_run
    from ..report.document import render_report
    from .shot_search import SearchSettings, calibrate_shots, default_shots_path

    folder = Path(run_dir)
    _fresh_demo_folder(folder)
    port = free_port()
    process = start_serve_process(port)
    human = load_pairs(sample_path())
    cache = folder / ".cache"
    try:
        wait_until_graders_ready(port)
        endpoint = EndpointConfig(base_url=f"http://127.0.0.1:{port}/v1", concurrency=32)
        spec = GradeSpec(targets=("prompt", "response", "relevance"), shots_path=default_shots_path(), logprobs=True)
        result = grade(sample_path(), spec, endpoint, run_dir=folder, cache_dir=cache, on_progress=on_progress)
        small_dir = folder / "compare-small"
        grade(sample_path(), replace(spec, model="harness-small", targets=("prompt", "response"), logprobs=False), endpoint,
              run_dir=small_dir, cache_dir=cache)
        search = calibrate_shots(human, replace(spec, targets=("prompt", "response"), shots_path=None, logprobs=False), endpoint,
                                 run_root=folder / "shot-search", out=folder / "chosen_shots.jsonl", cache_dir=cache,
                                 settings=SearchSettings(k=3, n_random=2, greedy_steps=1, greedy_candidates=2, n_boot=DEMO_N_BOOT))
    finally:
        process.terminate()
        process.wait(10)
    search = stamped(search, provenance_of("shot-search", "grader vs human", [("pool", sample_path()), ("default shots", default_shots_path())]))
    search.write(folder / "shot-search" / "shot_search.json")
    raters = lambda *runs: read_ratings(ratings_path(), raters=list(SAMPLE_RATERS), final="canonical",
                                        graders=[str(r) for r in runs])
    calibration = calibrate_run(load_run(folder), human, n_boot=DEMO_N_BOOT, raters=raters(folder))
    calibration = stamped(calibration, provenance_of("calibrate", "grader vs human", [("run", folder), ("human", sample_path()),
                                                                                     ("ratings", ratings_path())]))
    calibration_files = save_calibration(calibration, folder)
    comparison = compare([load_run(folder), load_run(small_dir)], human, n_boot=DEMO_N_BOOT, raters=raters(folder, small_dir))
    comparison = stamped(comparison, provenance_of("compare", "graders vs human", [("run", folder), ("run", small_dir),
                                                                                   ("human", sample_path()), ("ratings", ratings_path())]))
    comparison.write(folder / "comparison.json")
    agreement = rater_agreement(raters(folder, small_dir), n_boot=DEMO_N_BOOT)
    agreement = stamped(agreement, provenance_of("agreement", "human raters and graders", [("ratings", ratings_path()),
                                                                                            ("grader", folder), ("grader", small_dir)]))
    agreement.write(folder / "agreement.json")
    subset = write_pairs(human_subset(human), folder / "human_subset.jsonl")
    analysis = analyze(graded_pairs(load_run(folder)), by="model", n_boot=DEMO_N_BOOT, human=load_pairs(subset),
                       human_source=str(subset))
    analysis = stamped(analysis, provenance_of("analyze", "grader, corrected by human labels", [("pairs", folder), ("human", subset)]))
    written = save_analysis(analysis, folder)
    next_round = plan_next_round(folder, calibration)
    report = render_report(folder, comparison=folder / "comparison.json", out_dir=folder, latex=True)
    outputs = {"analysis": written[0], "calibration": calibration_files[0], "comparison": folder / "comparison.json",
               "agreement": folder / "agreement.json", "plan": folder / "plan.json", "picks": folder / "picks.jsonl",
               "shot_search": folder / "shot-search" / "shot_search.json", **report}
    return DemoResult(result, analysis, calibration, search, comparison, agreement, *next_round, outputs)


def plan_next_round(folder: Path, calibration: Calibration) -> tuple[Plan, Selection]:
    """The next labelling round: how many prompts to label to know the prompt side's quadratic κ to ±0.05
    (from the calibration as a pilot), and a stratified pick of 20 prompt clusters with their weights."""
    from ..analysis.planning import pilot_from_pairs, plan
    from ..analysis.selection import select
    from ..io.pairs import write_pairs
    from ..io.runs import graded_pairs, load_run

    assert calibration.max_severity_pairs is not None
    pilot = pilot_from_pairs(calibration.max_severity_pairs, metric="kappa-quadratic", side="prompt", threshold=1,
                             source=str(folder / "calibration.json"), cluster=calibration.unit.cluster)
    found = plan(pilot, target_width=0.10, studies=100, n_boot=200)
    found = stamped(found, provenance_of("plan", "grader vs human (calibration as pilot)", [("pilot", folder / "calibration.json")]))
    found.write(folder / "plan.json")
    rows, design = select(graded_pairs(load_run(folder)), budget=20, strategy="stratified", source=str(folder))
    write_pairs(rows, folder / "picks.jsonl")
    design = Selection(**{**design.fields(), "outputs": [str(folder / "picks.jsonl"), str(folder / "picks.design.json")]})
    design = stamped(design, provenance_of("select", "grader", [("graded", folder)]))
    design.write(folder / "picks.design.json")
    return found, design
