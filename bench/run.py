"""``make bench``: speed figures, each beside a baseline measured in the same run.

Everything runs against ``harness serve`` started as a separate process on 127.0.0.1.
Figures are printed and written to ``bench/results.json``. Two kinds of rate: *process*
figures are wall-clock for a whole command (interpreter start, imports and input loading
included; the bare loop is run the same way for them), *in-process* figures are the grading
rate from a ready client, measured like the bare loop inside this process. ``BENCH_QUICK=1`` skips the
100,000-item memory run.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.core.constants import CATEGORIES
from harness.grading.grade import GradeSpec
from harness.io.pairs import load_pairs, write_pairs
from harness.io.sample import sample_path
from harness.workflows.embedded import free_port, start_serve_process

ROOT = Path(__file__).resolve().parent
HARNESS = [sys.executable, "-m", "harness"]
#: items/s measured inside each grade run (its manifest), without process start-up.
RATES: dict[str, float] = {}
sys.path.insert(0, str(ROOT))


def items(n: int, tmp: Path) -> Path:
    """n unique pairs built from the sample's texts (a suffix makes each request distinct)."""
    base = load_pairs(sample_path())
    rows = base.sample(n, replace=True, random_state=0).reset_index(drop=True)
    rows["id"] = [f"b{i}" for i in range(n)]
    rows["prompt"] = rows["prompt"] + [f" (#{i})" for i in range(n)]
    rows["response"] = rows["response"] + [f" (#{i})" for i in range(n)]
    return write_pairs(rows, tmp / f"items_{n}.jsonl")


def server_requests(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats") as response:
        return int(json.load(response)["requests"])


def rendered_requests(data: Path, tmp: Path) -> Path:
    """The prompt-side requests ``harness grade --target prompt`` sends for ``data``, as one JSON file."""
    from harness.grading.jobs import Item, build_request, user_message
    from harness.grading.templates import load_template_set

    templates = load_template_set()
    spec = GradeSpec(targets=("prompt",))
    system = templates.system("prompt")
    requests = [build_request(spec, system, user_message(templates, [Item(str(i), "prompt", text=text)]),
                              spec.max_tokens)
                for i, text in enumerate(load_pairs(data)["prompt"].tolist())]
    path = tmp / f"requests_{data.stem}.json"
    path.write_text(json.dumps(requests))
    return path


def bare_in_process(port: int, requests: Path, aiohttp: bool) -> float:
    """items/s of the bare loop inside this process (the SDK already imported): the sending alone."""
    from bare_loop import main as bare

    return bare(port, str(requests), aiohttp)


def bare_process(port: int, requests: Path) -> float:
    """Wall seconds of the bare aiohttp loop as its own process (interpreter, SDK import and all)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, str(ROOT / "bare_loop.py"), str(port), str(requests)],
                   check=True, capture_output=True)
    return time.perf_counter() - start


def grade_rate(data: Path, port: int, run: Path, *extra: str) -> tuple[float, float]:
    """items/s of a `harness grade` subprocess (wall time, start-up included) and its peak RSS (MB).

    The manifest's set-up figures are kept too: all of it, and the SDK's part (import and client)."""
    wrapper = (
        "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(r.returncode)"
    )
    command = [*HARNESS, "grade", str(data), "--base-url", f"http://127.0.0.1:{port}/v1",
               "--out", str(run), "-q", *extra]
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", wrapper, *command], check=True, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    graded = sum(1 for _ in (run / "labels.jsonl").open())
    session = json.loads((run / "manifest.json").read_text())["last_session"]
    RATES[run.name] = session["items_per_s"]
    RATES[f"{run.name}_setup_s"] = session["setup_s"]
    RATES[f"{run.name}_sdk_setup_s"] = session.get("sdk_setup_s") or 0.0
    return graded / elapsed, int(out.stdout.strip().splitlines()[-1]) / 1024


def paired_whole_process(data: Path, requests: Path, port: int, tmp: Path, runs: int = 7) -> dict[str, Any]:
    """``harness grade`` and the bare loop, each a whole process on the same items, run in turns
    (bare, harness, bare, harness …) so that machine noise hits both; medians and the median ratio."""
    n = len(load_pairs(data))
    bare_s, harness_s = [], []
    for i in range(runs):
        bare_s.append(bare_process(port, requests))
        start = time.perf_counter()
        subprocess.run([*HARNESS, "grade", str(data), "--base-url", f"http://127.0.0.1:{port}/v1",
                        "--out", str(tmp / f"paired{i}"),
                        "-q", "--target", "prompt", "--no-cache", "--concurrency", "64"],
                       check=True, capture_output=True)
        harness_s.append(time.perf_counter() - start)
    ratios = [b / h for b, h in zip(bare_s, harness_s, strict=True)]
    return {"runs": runs, "items": n, "bare_process_s_median": round(statistics.median(bare_s), 3),
            "harness_process_s_median": round(statistics.median(harness_s), 3),
            "bare_items_s_median": round(n / statistics.median(bare_s), 1),
            "harness_items_s_median": round(n / statistics.median(harness_s), 1),
            "harness_over_bare_median_of_pairs": round(statistics.median(ratios), 3),
            "harness_over_bare_range": [round(min(ratios), 3), round(max(ratios), 3)]}


def synthetic_pairs(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"id": np.arange(n).astype(str), "prompt": "p", "model": rng.integers(0, 10, n).astype(str),
                          "prompt_id": (np.arange(n) // 10).astype(str)})
    for side in ("prompt", "response"):
        for category in CATEGORIES:
            frame[f"{side}_{category}"] = rng.choice(4, n, p=[0.7, 0.15, 0.1, 0.05]).astype("int8")
    return frame


def main() -> None:
    quick = os.environ.get("BENCH_QUICK") == "1"
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        data = items(2000, tmp)
        texts = load_pairs(data)["prompt"].tolist()
        port = free_port()
        server = start_serve_process(port)
        try:
            requests = rendered_requests(data, tmp)
            bare_httpx = bare_in_process(port, requests, aiohttp=False)
            bare_aio = bare_in_process(port, requests, aiohttp=True)
            bare_aio_wall = len(texts) / statistics.median(bare_process(port, requests) for _ in range(3))
            single, _ = grade_rate(data, port, tmp / "single", "--target", "prompt", "--no-cache",
                                   "--concurrency", "64")
            batched, _ = grade_rate(data, port, tmp / "batched", "--target", "prompt", "--no-cache",
                                    "--concurrency", "64", "--items-per-request", "10")
            before = server_requests(port)
            grade_rate(data, port, tmp / "warm", "--target", "prompt", "--cache-dir", str(tmp / "cache"),
                       "--concurrency", "64")
            mid = server_requests(port)
            cached, _ = grade_rate(data, port, tmp / "cached", "--target", "prompt", "--cache-dir", str(tmp / "cache"),
                                   "--concurrency", "64")
            after = server_requests(port)
            best_bare = max(bare_aio, bare_httpx)
            results["throughput_2000"] = {
                "bare_openai_httpx_items_s": round(bare_httpx, 1), "bare_openai_aiohttp_items_s": round(bare_aio, 1),
                "aiohttp_over_httpx": round(bare_aio / bare_httpx, 2),
                "bare_openai_aiohttp_process_items_s": round(bare_aio_wall, 1),
                "harness_single_items_s": round(single, 1),
                "single_over_bare_process": round(single / bare_aio_wall, 2),
                "harness_batched10_items_s": round(batched, 1), "batched_over_single": round(batched / single, 2),
                "cached_rerun_items_s": round(cached, 1), "cached_over_single": round(cached / single, 2),
                "requests_during_cached_rerun": after - mid, "requests_during_warm_run": mid - before,
                "in_process_single_items_s": RATES["single"],
                "in_process_single_over_best_bare": round(RATES["single"] / best_bare, 2),
                "in_process_batched10_items_s": RATES["batched"],
                "in_process_batched10_over_best_bare": round(RATES["batched"] / best_bare, 2),
                "in_process_cached_items_s": RATES["cached"],
                "in_process_cached_over_single": round(RATES["cached"] / RATES["single"], 1),
                "setup_s_single_run": RATES["single_setup_s"], "sdk_setup_s_single_run": RATES["single_sdk_setup_s"],
                "own_setup_s_single_run": round(RATES["single_setup_s"] - RATES["single_sdk_setup_s"], 3),
                "setup_s_cached_run": RATES["cached_setup_s"],
            }
            results["whole_process_2000"] = paired_whole_process(data, requests, port, tmp)
        finally:
            server.terminate()
            server.wait(10)
        port = free_port()
        server = start_serve_process(port, "--latency-ms", "200")
        try:
            slow = items(1000, tmp)
            bare_slow = bare_in_process(port, rendered_requests(slow, tmp), aiohttp=True)
            achieved, _ = grade_rate(slow, port, tmp / "latency", "--target", "prompt", "--no-cache",
                                     "--concurrency", "64")
            ideal = 64 / 0.2
            results["latency_200ms_c64"] = {"achieved_items_s": round(achieved, 1), "ideal_items_s": ideal,
                                            "achieved_over_ideal": round(achieved / ideal, 2),
                                            "in_process_items_s": RATES["latency"],
                                            "in_process_over_ideal": round(RATES["latency"] / ideal, 2),
                                            "bare_openai_aiohttp_items_s": round(bare_slow, 1),
                                            "bare_over_ideal": round(bare_slow / ideal, 2),
                                            "in_process_over_bare": round(RATES["latency"] / bare_slow, 2)}
        finally:
            server.terminate()
            server.wait(10)
        if not quick:
            port = free_port()
            server = start_serve_process(port)
            try:
                memory: dict[str, Any] = {}
                for n in (10_000, 100_000):
                    big = items(n, tmp)
                    rate, rss = grade_rate(big, port, tmp / f"mem{n}", "--target", "prompt", "--no-cache",
                                           "--concurrency", "64", "--items-per-request", "10")
                    memory[f"{n}_items_s"] = round(rate, 1)
                    memory[f"{n}_peak_rss_mb"] = round(rss, 1)
                    big.unlink()
                memory["rss_100k_over_10k"] = round(memory["100000_peak_rss_mb"] / memory["10000_peak_rss_mb"], 2)
                extra_mb = memory["100000_peak_rss_mb"] - memory["10000_peak_rss_mb"]
                memory["kb_per_extra_item"] = round(extra_mb * 1024 / 90_000, 2)
                results["memory_batched10"] = memory
            finally:
                server.terminate()
                server.wait(10)
        from harness.analysis.transitions import analyze

        frame = synthetic_pairs(1_000_000)
        start = time.perf_counter()
        analyze(frame, by="model", n_boot=0)
        no_boot = time.perf_counter() - start
        start = time.perf_counter()
        analyze(frame, by="model", n_boot=200)
        with_boot = time.perf_counter() - start
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        results["analyze_1m_pairs"] = {"seconds_no_bootstrap": round(no_boot, 2),
                                       "seconds_200_bootstrap": round(with_boot, 2),
                                       "bootstrap_cost_s": round(with_boot - no_boot, 2),
                                       "peak_rss_mb_this_process": round(peak_mb, 1)}
    python_only = [_wall([sys.executable, "-c", "pass"]) for _ in range(5)]
    help_times = [_wall([*HARNESS, "--help"]) for _ in range(5)]
    results["startup"] = {"harness_help_s": round(statistics.median(help_times), 3),
                          "python_noop_s": round(statistics.median(python_only), 3),
                          "help_over_noop": round(statistics.median(help_times) / statistics.median(python_only), 1)}
    if not quick:
        results["analyze_10m_pairs"] = analyze_10m()
    results["serve_ready"] = serve_readiness()
    from view import view_figures  # bench/view.py: harness view at 50,000 items

    results["view_50k"] = view_figures()
    if not quick:
        from plan import plan_figures  # bench/plan.py: harness plan from a run of 1,000,000 pairs

        results["plan_1m_pairs"] = plan_figures()
        from view import view_process

        results["view_process_100k_pairs"] = view_process(100_000)
    from local_model import local_figures  # bench/local_model.py: the real model, with and without prefix reuse

    results["local_model"] = local_figures()
    (ROOT / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    for section, figures in results.items():
        print(f"{section}:")
        for key, value in figures.items():
            print(f"  {key:36s} {value}")


def parquet_pairs(n: int, path: Path) -> Path:
    """``n`` synthetic pairs as Parquet with compact dtypes (integer ids and prompt ids, a categorical model)."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"id": np.arange(n, dtype=np.int64), "prompt": "p",
                          "model": pd.Categorical.from_codes(rng.integers(0, 10, n), [f"model-{i}" for i in range(10)]),
                          "prompt_id": (np.arange(n) // 10).astype(np.int64)})
    for side in ("prompt", "response"):
        for category in CATEGORIES:
            frame[f"{side}_{category}"] = rng.choice(4, n, p=[0.7, 0.15, 0.1, 0.05]).astype("int8")
    frame.to_parquet(path, index=False)
    return path


def analyze_10m(n: int = 10_000_000) -> dict[str, float]:
    """``harness analyze`` on 10M pairs from Parquet as its own process: wall time and peak RSS
    against the targets (45 s, 4 GB), without bootstrap (each resample adds a pass over 1M clusters)."""
    with tempfile.TemporaryDirectory() as tmp:
        data = parquet_pairs(n, Path(tmp) / "pairs.parquet")
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        start = time.perf_counter()
        subprocess.run([*HARNESS, "analyze", str(data), "--by", "model", "--n-boot", "0", "-o", str(Path(tmp) / "out")],
                       check=True, capture_output=True)
        seconds = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"pairs": n, "seconds": round(seconds, 1), "target_s": 45.0,
            "peak_rss_gb": round(max(peak, before) / 1024 / 1024, 2), "target_gb": 4.0}


def serve_readiness(starts: int = 5) -> dict[str, float]:
    """Seconds from spawning ``harness serve`` to its first answer to GET /v1/models (median of
    ``starts``), and to the graders being fitted (GET /health ready), beside ``python -c pass``."""

    listening, fitted = [], []
    for _ in range(starts):
        port = free_port()
        start = time.perf_counter()
        process = subprocess.Popen([*HARNESS, "serve", "--port", str(port)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=1):
                        listening.append(time.perf_counter() - start)
                        break
                except OSError:
                    time.sleep(0.01)
            while True:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
                    if json.loads(response.read())["ready"]:
                        fitted.append(time.perf_counter() - start)
                        break
                time.sleep(0.01)
        finally:
            process.terminate()
            process.wait(10)
    noop = statistics.median(_wall([sys.executable, "-c", "pass"]) for _ in range(3))
    return {"models_answered_s_median": round(statistics.median(listening), 3), "target_s": 1.0,
            "graders_ready_s_median": round(statistics.median(fitted), 3), "python_noop_s": round(noop, 3)}


def _wall(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
