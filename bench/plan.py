"""``harness plan`` on a run of 1,000,000 graded pairs with about 1,800 human-labelled ones, as a user runs it.

Agreement metrics need only the labelled pairs, so the run is read for those alone (a line's id is read off it; the
others are not parsed). Baseline in the same run: reading the whole run (what plan did before), beside reading only
the labelled pairs. Figures: the plan's wall seconds and peak memory as a process; the two reads in this process.
``--metric escalation`` still reads every pair (its cluster sums need them) and is not measured here.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from view import run_folder  # the synthetic run written as a real run folder


def _timed(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one child process (measured in a fresh child so the peaks do not mix)."""
    probe = ("import resource, subprocess, sys, time, json; t = time.perf_counter(); "
             "subprocess.run(sys.argv[1:], check=True, capture_output=True); "
             "print(json.dumps([time.perf_counter() - t, "
             "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024]))")
    done = subprocess.run([sys.executable, "-c", probe, *command], check=True, capture_output=True, text=True)
    wall, peak = json.loads(done.stdout)
    return round(wall, 2), round(peak, 1)


def _plan(run: Path, human: Path, out: Path) -> tuple[float, float]:
    return _timed([sys.executable, "-m", "harness", "plan", str(run), "--human", str(human), "--side", "prompt",
                   "--metric", "kappa-quadratic", "--target-width", "0.1", "--studies", "100", "--n-boot", "100",
                   "--out", str(out)])


def plan_figures(pairs: int = 1_000_000, labelled_prompts: int = 600) -> dict[str, Any]:
    """The plan from a run of ``pairs`` as a user runs it, and (baseline, in this process) reading that run whole
    against reading only its labelled pairs."""
    import pandas as pd

    from harness.io.runs import load_run

    out: dict[str, Any] = {"pairs": pairs}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        started = time.perf_counter()
        run, human_all = run_folder(pairs, tmp)
        out["write_run_s"] = round(time.perf_counter() - started, 1)
        human = pd.read_json(human_all, lines=True, dtype={"id": str})
        step = max(1, pairs // 3 // labelled_prompts)
        labelled = human[human["prompt_id"].isin({f"q{k}" for k in range(0, pairs // 3, step)})]
        labelled.to_json(tmp / "labelled.jsonl", orient="records", lines=True)
        out["labelled_pairs"] = len(labelled)
        out["plan_s"], out["plan_peak_mb"] = _plan(run, tmp / "labelled.jsonl", tmp / "plan.json")
        started = time.perf_counter()
        subset = load_run(run, ids=set(labelled["id"]))
        out["read_labelled_only_s"] = round(time.perf_counter() - started, 2)
        started = time.perf_counter()
        whole = load_run(run)
        out["read_whole_run_s (baseline)"] = round(time.perf_counter() - started, 2)
        out["whole_over_labelled_only"] = round(out["read_whole_run_s (baseline)"] / out["read_labelled_only_s"], 1)
        out["records_labelled_only"], out["records_whole"] = len(subset.records), len(whole.records)
    return out


if __name__ == "__main__":
    print(json.dumps(plan_figures(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000), indent=1))
