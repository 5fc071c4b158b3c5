"""``make validate``: do harness's corrections and intervals hold, through the CLI, where their
assumptions hold and where they break?

Every replicate is a simulated study with a known truth (:mod:`validation.studies`): prompts
answered by several models, a grader whose prompt and response errors are correlated (``rho``)
or not, rare severity 3, human labels on a random subset of prompt clusters of a given size. It
is written to files and run through the command line exactly as a user would (``harness
analyze GRADED --human SUBSET --json``, ``harness calibrate RUN --human CAL`` then ``harness
analyze GRADED --correct calibration.json``, ``harness calibrate TABLE --gold --pred``), and
the JSON the CLI writes is scored against the truth: bias, coverage of the 95 % interval and
its mean width, per method and regime. Writes ``validation/results.md`` and ``results.json``.

    python validation/simulate.py --replicates 500 --workers 2
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from validation.ece import clustered_size, ece_coverage  # noqa: E402
from validation.jury import jury_checks, jury_table  # noqa: E402
from validation.plan import plan_assurance  # noqa: E402
from validation.readme import paste  # noqa: E402
from validation.soft import soft_label_checks, soft_table  # noqa: E402
from validation.stability import stability_coverage  # noqa: E402
from validation.stability import table as stability_table  # noqa: E402
from validation.studies import Setting, draw, frames, population_truth  # noqa: E402

N_BOOT = 500
SHARE = "escalation"


@dataclass(frozen=True)
class Regime:
    """One row of the table: a setting, a human-labelled subset size, a method."""

    name: str
    setting: Setting
    labelled_clusters: int
    method: str  # "ppi" (analyze --human) or "em" (calibrate, then analyze --correct)


def regimes() -> list[Regime]:
    base = Setting(rho=0.7)
    out = [Regime(f"rho {rho}, 100 labelled clusters (600 pairs)", Setting(rho=rho), 100, "ppi")
           for rho in (0.0, 0.4, 0.7)]
    for pairs in (50, 200, 1000, 4000):
        clusters = pairs // 6
        setting = Setting(rho=0.7, n_prompts=max(600, clusters + 200))
        out.append(Regime(f"rho 0.7, {pairs} labelled pairs ({clusters} clusters)", setting, clusters, "ppi"))
    for clusters in (5, 12, 20, 30, 50):
        out.append(Regime(f"rho 0.7, {clusters} labelled clusters", base, clusters, "ppi"))
    out.append(Regime("rho 0.7, rare severity 3, 100 labelled clusters", Setting(rho=0.7, rare3=0.05), 100, "ppi"))
    for rho in (0.0, 0.7):
        for pairs in (200, 1000):
            out.append(Regime(f"rho {rho}, calibration of {pairs} pairs", Setting(rho=rho), pairs // 6, "em"))
    return out


def _cli(args: list[str]) -> None:
    from typer.testing import CliRunner

    from harness.cli.app import app

    result = CliRunner().invoke(app, args)
    if result.exit_code != 0:
        raise RuntimeError(f"harness {' '.join(args)} exited {result.exit_code}: {result.output[-500:]}")


def write_run_folder(folder: Path, graded: Any, human: Any) -> None:
    """A run folder as ``harness grade`` leaves it, written from simulated grader labels."""
    from harness.io.pairs import write_pairs

    folder.mkdir(parents=True, exist_ok=True)
    write_pairs(human, folder / "input.jsonl")
    categories = ("hate", "sexual", "violence", "self_harm")
    with (folder / "labels.jsonl").open("w", encoding="utf-8") as out:
        for _, row in graded.iterrows():
            for side in ("prompt", "response"):
                severity = {c: int(row[f"{side}_{c}"]) for c in categories}
                out.write(json.dumps({"id": row["id"], "target": side, "status": "ok", "severity": severity}) + "\n")
    manifest = {"model": "simulated", "template_hash": "t", "shots_hash": "none", "status": "complete",
                "schema_version": 1}
    (folder / "manifest.json").write_text(json.dumps(manifest))


def replicate(regime: Regime, seed: int) -> dict[str, float]:
    """One study through the CLI: the corrected share, its interval, and the grader's raw share."""
    from harness.io.pairs import write_pairs

    rng = np.random.default_rng(seed)
    setting = regime.setting
    p, r, gp, gr, clusters = draw(setting, rng)
    graded, human = frames(p, r, gp, gr, clusters, setting.per)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_pairs(graded, folder / "graded.jsonl")
        if regime.method == "ppi":
            chosen = rng.choice(setting.n_prompts, regime.labelled_clusters, replace=False)
            write_pairs(human[np.isin(clusters, chosen)], folder / "subset.jsonl")
            _cli(["analyze", str(folder / "graded.jsonl"), "--human", str(folder / "subset.jsonl"),
                  "--n-boot", str(N_BOOT), "--seed", str(seed), "-o", str(folder / "out")])
        else:  # a calibration set drawn apart from the graded pairs, from the same population (EM's best case)
            cp, cr, cgp, cgr, cclusters = draw(setting, rng, n_prompts=regime.labelled_clusters)
            cal_graded, cal_human = frames(cp, cr, cgp, cgr, cclusters, setting.per, prefix="c")
            write_run_folder(folder / "cal", cal_graded, cal_human)
            write_pairs(cal_human, folder / "cal_human.jsonl")
            _cli(["calibrate", str(folder / "cal"), "--human", str(folder / "cal_human.jsonl"), "--n-boot", "0"])
            _cli(["analyze", str(folder / "graded.jsonl"), "--correct", str(folder / "cal" / "calibration.json"),
                  "--n-boot", str(N_BOOT), "--seed", str(seed), "-o", str(folder / "out")])
        corrected = json.loads((folder / "out" / "analysis.json").read_text())["corrected"]
    low, high = corrected["corrected_ci"][SHARE]
    return {"estimate": corrected["corrected"][SHARE], "low": low, "high": high, "raw": corrected["raw"][SHARE],
            "dependent": float(any("dependent" in w for w in corrected["warnings"]))}


def _task(args: tuple[int, int]) -> dict[str, float]:
    index, seed = args
    return replicate(regimes()[index], seed)


def summarise(regime: Regime, rows: list[dict[str, float]]) -> dict[str, Any]:
    truth = population_truth(regime.setting)[SHARE]
    estimates = np.array([r["estimate"] for r in rows], dtype=float)
    covered = [r["low"] is not None and r["low"] <= truth <= r["high"] for r in rows]
    widths = [r["high"] - r["low"] for r in rows if r["low"] is not None]
    return {"regime": regime.name, "method": regime.method, "replicates": len(rows), "truth": truth,
            "bias": float(np.mean(estimates - truth)), "raw_bias": float(np.mean([r["raw"] - truth for r in rows])),
            "coverage": float(np.mean(covered)), "mean_width": float(np.mean(widths)) if widths else None,
            "warned_dependent": float(np.mean([r["dependent"] for r in rows]))}


def agreement_intervals(replicates: int, workers: int) -> list[dict[str, Any]]:
    """Recall and quadratic-κ interval coverage by number of clusters, through ``calibrate TABLE --gold --pred``."""
    out = []
    with ProcessPoolExecutor(workers) as pool:
        for clusters in (5, 8, 12, 20, 30, 50, 100):
            rows = list(pool.map(_agreement_task, [(clusters, seed) for seed in range(replicates)]))
            out.append({"clusters": clusters, "recall_coverage": float(np.mean([r[0] for r in rows])),
                        "kappa_coverage": float(np.mean([r[1] for r in rows]))})
    return out


#: The recall and quadratic κ of the simulated grader's response side in the population.
@dataclass(frozen=True)
class _Truth:
    recall: float
    kappa: float


@functools.cache
def _agreement_truth() -> _Truth:
    from harness.analysis.stats import detection_from_confusion, kappa_from_confusion

    _, r, _, gr, _ = draw(Setting(), np.random.default_rng(1), n_prompts=100_000)
    matrix = np.zeros((4, 4))
    np.add.at(matrix, (r.max(axis=1), gr.max(axis=1)), 1)
    return _Truth(float(detection_from_confusion(matrix, threshold_index=1)["recall"]),
                  float(kappa_from_confusion(matrix, weights="quadratic")))


def _agreement_task(args: tuple[int, int]) -> tuple[bool, bool]:
    from harness.io.pairs import write_pairs

    clusters, seed = args
    truth = _agreement_truth()
    rng = np.random.default_rng(10_000 + seed)
    p, r, gp, gr, codes = draw(Setting(), rng, n_prompts=clusters)
    table = frames(p, r, gp, gr, codes, 6)[0][["id", "prompt", "prompt_id"]].copy()
    table["human"], table["grader"] = r.max(axis=1), gr.max(axis=1)
    with tempfile.TemporaryDirectory() as tmp:
        write_pairs(table, Path(tmp) / "t.jsonl")
        _cli(["calibrate", str(Path(tmp) / "t.jsonl"), "--gold", "human", "--pred", "grader", "--n-boot", str(N_BOOT),
              "--seed", str(seed), "-o", tmp])
        result = json.loads((Path(tmp) / "calibration_human_vs_grader.json").read_text())
    inside: Callable[[str, float], bool] = lambda key, value: (
        result["ci"][key][0] is not None and result["ci"][key][0] <= value <= result["ci"][key][1])
    return inside("recall", truth.recall), inside("kappa_quadratic", truth.kappa)


def paired_test_size(replicates: int) -> dict[str, float]:
    """Type-I error of the clustered paired test when two graders are equally good but their disagreements cluster
    by prompt: per prompt a shared difficulty and a shared lean ``u`` towards one grader (``+u`` for A, ``-u`` for B,
    symmetric, so neither is better: the null holds exactly), six responses per prompt."""
    from harness.analysis.stats import mcnemar_test

    rng = np.random.default_rng(3)
    clustered = rows = 0
    for _ in range(replicates):
        difficulty = np.repeat(rng.normal(0, 1.2, 300), 6)
        lean = np.repeat(rng.normal(0, 1.0, 300), 6)
        a = rng.random(difficulty.size) < 1 / (1 + np.exp(-(1 + difficulty + lean)))
        b = rng.random(difficulty.size) < 1 / (1 + np.exp(-(1 + difficulty - lean)))
        clustered += mcnemar_test(a, b, clusters=np.repeat(np.arange(300), 6)).p_value < 0.05
        rows += mcnemar_test(a, b).p_value < 0.05
    return {"clustered": clustered / replicates, "rows": rows / replicates}


#: Pick strategies compared at one budget (prompt clusters of the 600 in a study).
PICK_BUDGET = 100
PICK_SETTING = Setting(rho=0.4)


def _uncertain_run(folder: Path, graded: Any, human: Any, rng: np.random.Generator) -> None:
    """A run folder whose response labels carry an uncertainty signal (``sample_agreement``): informative but
    imperfect, as a real grader's is: higher where it erred, somewhat higher where it flags harm, plus noise."""
    write_run_folder(folder, graded, human)
    records = [json.loads(line) for line in (folder / "labels.jsonl").read_text().splitlines()]
    truth = human.set_index("id")
    for record in records:
        if record["target"] != "response":
            continue
        wrong = any(record["severity"][c] != truth.loc[record["id"], f"response_{c}"] for c in record["severity"])
        flagged = max(record["severity"].values()) >= 1
        doubt = min(0.95, 0.45 * wrong + 0.15 * flagged + 0.3 * rng.random())
        record["sample_agreement"] = {c: (1.0 - doubt if c == "hate" else 1.0) for c in record["severity"]}
    (folder / "labels.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


@functools.cache
def _pick_truth() -> tuple[float, float]:
    """The population's escalation share and the grader's response quadratic κ against the truth."""
    from harness.analysis.stats import kappa_from_confusion

    _, r, _, gr, _ = draw(PICK_SETTING, np.random.default_rng(2), n_prompts=100_000)
    matrix = np.zeros((4, 4))
    np.add.at(matrix, (r.max(axis=1), gr.max(axis=1)), 1)
    return population_truth(PICK_SETTING)[SHARE], float(kappa_from_confusion(matrix, weights="quadratic"))


def _pick_task(args: tuple[str, int]) -> dict[str, Any]:
    """One study: pick ``PICK_BUDGET`` clusters by a strategy, label them, correct the escalation share and measure
    κ."""
    import pandas as pd

    from harness.io.pairs import write_pairs

    strategy, seed = args
    rng = np.random.default_rng(40_000 + seed)
    p, r, gp, gr, clusters = draw(PICK_SETTING, rng)
    graded, human = frames(p, r, gp, gr, clusters, PICK_SETTING.per)
    truth, kappa = _pick_truth()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _uncertain_run(folder / "run", graded, human, rng)
        _cli(["select", str(folder / "run"), "--budget", str(PICK_BUDGET), "--strategy", strategy, "--seed", str(seed),
              "-o", str(folder / "picks.jsonl")])
        picks = pd.read_json(folder / "picks.jsonl", lines=True)
        labels = human.set_index("id")
        for column in [c for c in picks.columns if c.startswith(("prompt_", "response_")) and c != "prompt_id"]:
            picks[column] = picks["id"].map(labels[column])
        write_pairs(picks, folder / "labelled.jsonl")
        _cli(["analyze", str(folder / "run"), "--human", str(folder / "labelled.jsonl"), "--n-boot", str(N_BOOT),
              "--seed", str(seed), "-o", str(folder / "out")])
        _cli(["calibrate", str(folder / "run"), "--human", str(folder / "labelled.jsonl"), "--n-boot", str(N_BOOT),
              "--seed", str(seed), "-o", str(folder / "cal")])
        corrected = json.loads((folder / "out" / "analysis.json").read_text())["corrected"]
        calibration = json.loads((folder / "cal" / "calibration.json").read_text())["targets"]["response"]["max"]
    low, high = corrected["corrected_ci"][SHARE]
    k_low, k_high = calibration["ci"]["kappa_quadratic"]
    return {"covered": low <= truth <= high, "width": high - low, "kappa_covered": k_low <= kappa <= k_high,
            "kappa_width": k_high - k_low, "kappa": calibration["kappa_quadratic"]}


def pick_strategies(replicates: int, workers: int, strategies: tuple[str, ...] = ("uniform", "stratified", "active"),
                    kept: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Coverage and mean width of the corrected escalation share and of κ per pick strategy, equal budget (the
    strategies not asked for are kept from ``kept``, an earlier run)."""
    out = [row for row in kept or [] if row["strategy"] not in strategies]
    with ProcessPoolExecutor(workers) as pool:
        for strategy in strategies:
            rows = list(pool.map(_pick_task, [(strategy, seed) for seed in range(replicates)]))
            out.append({"strategy": strategy, "replicates": replicates,
                        "coverage": float(np.mean([r["covered"] for r in rows])),
                        "mean_width": float(np.mean([r["width"] for r in rows])),
                        "kappa_coverage": float(np.mean([r["kappa_covered"] for r in rows])),
                        "kappa_mean_width": float(np.mean([r["kappa_width"] for r in rows])),
                        "kappa_bias": float(np.mean([r["kappa"] for r in rows]) - _pick_truth()[1])})
            print(f"pick {strategy}: {out[-1]}", flush=True)
    order = ("uniform", "stratified", "active")
    return sorted(out, key=lambda row: order.index(row["strategy"]))


def _mc(row: dict[str, Any]) -> str:
    return f"{100 * (0.95 * 0.05 / row['replicates']) ** 0.5:.1f}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"


def write_results(corrections: list[dict[str, Any]], agreement: list[dict[str, Any]], paired: dict[str, float],
                  picks: list[dict[str, Any]], seconds: float, replicates: int) -> str:
    lines = [f"Simulation through the CLI: {replicates} studies per regime (EM: {max(50, replicates // 2)}), "
             f"{N_BOOT} bootstrap resamples each, {seconds:.0f} s on this machine. Share: {SHARE}; "
             "truth: its value in the population the study is drawn from.", "",
             "| method | regime | truth | bias | raw grader's bias | coverage | mean width "
             "| warned: errors dependent |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    names = {"ppi": "PPI (`analyze --human`)", "em": "EM (`analyze --correct`)"}
    for row in corrections:
        lines.append(f"| {names[row['method']]} | {row['regime']} | "
                     f"{_pct(row['truth'])} | {100 * row['bias']:+.2f} pt | "
                     f"{100 * row['raw_bias']:+.2f} pt | {_pct(row['coverage'])} | {_pct(row['mean_width'])} | "
                     f"{_pct(row['warned_dependent']) if row['method'] == 'em' else ''} |")
    lines += ["", "| clusters behind the interval | recall coverage | quadratic κ coverage |", "|---:|---:|---:|"]
    lines += [f"| {row['clusters']} | {_pct(row['recall_coverage'])} | {_pct(row['kappa_coverage'])} |"
              for row in agreement]
    lines += ["", "| paired grader test under the null, α = 0.05 | rejection rate |", "|---|---:|",
              f"| clustered sign-flip / exact McNemar (harness) | {_pct(paired['clustered'])} |",
              f"| McNemar treating rows as independent | {_pct(paired['rows'])} |", "",
              f"Picks of {PICK_BUDGET} prompt clusters of 600 (`harness select`, then `analyze --human` and "
              "`calibrate` weighting by 1/π; active reads a simulated uncertainty signal, informative but "
              "imperfect):", "",
              "| strategy | studies | escalation coverage | mean width | response quadratic κ coverage | mean width "
              "| κ bias |",
              "|---|---:|---:|---:|---:|---:|---:|",
              *(f"| {row['strategy']} | {row['replicates']} | "
                f"{_pct(row['coverage'])} ± {_mc(row)} | {_pct(row['mean_width'])} | "
                f"{_pct(row['kappa_coverage'])} ± {_mc(row)} | "
                f"{row['kappa_mean_width']:.3f} | {row['kappa_bias']:+.3f} |"
                for row in picks), "",
              "± is the Monte-Carlo standard error of a 95 % coverage at that many studies.", "",
              "Targets: coverage 93–97 % and type-I error 3–7 % where the method's assumptions hold; "
              "the other rows show what the user is warned about (fewer than 30 clusters, errors dependent under EM)."]
    return "\n".join(lines) + "\n"


PARTS = ("ppi", "em", "agreement", "paired", "picks", "ece", "ece-clustered", "stability", "plan", "soft", "jury")
#: Pilots the plan's assurance is checked on (each with 30 fresh studies): the pilots are the independent draws.
PLAN_PILOTS = 300


def ece_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    lines = ["", f"Calibration error of a grader's probabilities ({rows[0]['replicates']} studies per regime of "
             "400 forecasts in 100 prompt clusters; `calibrate` on a run graded with --logprobs; "
             "± is the Monte-Carlo error of a 95 % coverage):", "",
             "| grader | true RMS error | debiased CE coverage | true ECE | plug-in ECE coverage "
             "| test rejects \"calibrated\" |",
             "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['regime']} | {r['truth_rms']:.3f} | {_pct(r['coverage'])} ± {100 * r['mc_error']:.1f} | "
              f"{r['truth_ece']:.3f} | {_pct(r['plug_in_coverage'])} | {_pct(r['rejects_calibrated'])} |" for r in rows]
    lines += ["", "The plug-in ECE is biased upward and its interval misses a calibrated grader's true 0; the debiased "
              "error's interval covers (conservatively at the boundary), and the test's size on a calibrated grader is "
              "its rejection rate in the first row."]
    return "\n".join(lines) + "\n"


def ece_clustered_table(row: dict[str, Any] | None) -> str:
    if not row:
        return ""
    side = lambda name: row[name]
    return ("\n" + f"The calibration test on clustered data (`calibrate RUN --human` through the CLI; "
            f"{row['replicates']} studies of {row['prompts']} prompts x {row['per_prompt']} pairs, "
            "a perfectly calibrated grader, each pair repeating its prompt's forecast and label): "
            "it rejects \"calibrated\" in "
            f"{_pct(side('prompt')['rejects'])} ± {100 * row['mc_error']:.1f} of studies on the prompt side "
            "(was 74.5 % when the copies counted as independent items; now one forecast per prompt and category, "
            f"n {side('prompt')['n']:.0f}) and "
            f"{_pct(side('response')['rejects'])} on the response side (n {side('response')['n']:.0f}); "
            f"the debiased error averages {side('prompt')['debiased']:.3f} on the prompt side and "
            f"{side('response')['debiased']:.3f} on the "
            "response side (truth 0; the root of a clipped square is never below 0).\n")


def plan_table(row: dict[str, Any] | None) -> str:
    if not row:
        return ""
    return ("\n" + f"Labelling plans (`harness plan` at its defaults, assurance {row['stated']:.0%}, "
            "κ to a width of 0.15): "
            f"{row['pilots']} pilots of 60 clusters from a known population, "
            f"each checked on {row['studies_per_pilot']} fresh "
            f"studies of its conservative size (median {row['median_clusters']:.0f} clusters, smallest "
            f"{row['smallest_clusters']}), each study's interval calibrate's (2,000 resamples): "
            f"{_pct(row['achieved'])} ± {100 * row['mc_error']:.1f} of studies reached the width "
            f"(± over pilots; per pilot {_pct(row['per_pilot_range'][0])} to {_pct(row['per_pilot_range'][1])}; "
            f"stated {row['stated']:.0%}, the pilots' "
            "own uncertainty included)." + _near_perfect(row.get("near_perfect")) + "\n")


def _near_perfect(row: dict[str, Any] | None) -> str:
    if not row:
        return ""
    planned = (f"; their studies reached the width in {_pct(row['achieved'])}, "
               f"the smallest size {row['smallest_clusters']} clusters" if row["planned"] else "")
    return (f" With a grader right {100 * row['right']:.0f} % of the time "
            "(about one disagreement in a pilot of 120 items), "
            f"{row['planned']} of {row['pilots']} pilots got a size{planned}; "
            "the others none, since in more than 5 % of the populations they allow the grader never disagrees "
            "(κ 1 in every resample: no interval), where a study with a zero-width bootstrap used to count as narrow "
            "and 3 clusters were recommended.")


def _checkpoint(results: dict[str, object]) -> None:
    (HERE / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--replicates", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--parts", default=",".join(PARTS),
                        help=f"comma-separated, of {', '.join(PARTS)}; the others are kept from results.json")
    parser.add_argument("--pick-studies", type=int, default=None,
                        help="studies per pick strategy (default replicates / 2)")
    parser.add_argument("--strategies", default="uniform,stratified,active",
                        help="pick strategies to run; the others are kept from results.json")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    start = time.perf_counter()
    previous = json.loads((HERE / "results.json").read_text()) if (HERE / "results.json").exists() else {}
    corrections = [c for c in previous.get("corrections", []) if c["method"] not in parts]
    with ProcessPoolExecutor(args.workers) as pool:
        for index, regime in enumerate(regimes()):
            if regime.method not in parts:
                continue
            count = args.replicates if regime.method == "ppi" else max(50, args.replicates // 2)
            rows = list(pool.map(_task, [(index, 1000 * index + seed) for seed in range(count)]))
            corrections.append(summarise(regime, rows))
            print(f"{regime.method} {regime.name}: coverage {corrections[-1]['coverage']:.3f}, "
                  f"bias {corrections[-1]['bias']:+.4f}, width {corrections[-1]['mean_width']}", flush=True)
    order = {regime.name + regime.method: i for i, regime in enumerate(regimes())}
    corrections.sort(key=lambda c: order.get(c["regime"] + c["method"], 0))
    # each finished part is kept in results.json at once: a later part that fails costs only itself
    # (rerun it with --parts)
    done = {**previous, "corrections": corrections}
    _checkpoint(done)
    for part, measure in (("agreement", lambda: agreement_intervals(max(100, args.replicates // 2), args.workers)),
                          ("paired", lambda: paired_test_size(args.replicates)),
                          ("picks", lambda: pick_strategies(args.pick_studies or max(100, args.replicates // 2),
                                                            args.workers, tuple(args.strategies.split(",")),
                                                            previous.get("picks"))),
                          ("ece", lambda: ece_coverage(max(400, args.replicates))),
                          ("ece-clustered", lambda: clustered_size(max(400, args.replicates), args.workers)),
                          ("stability", lambda: stability_coverage(max(400, args.replicates), args.workers)),
                          ("plan", lambda: {**plan_assurance(PLAN_PILOTS, 30, workers=args.workers),
                                            "near_perfect": plan_assurance(60, 30, right=0.99, workers=args.workers)}),
                          ("soft", lambda: soft_label_checks(max(100, args.replicates // 10), args.workers)),
                          ("jury", lambda: jury_checks(max(200, args.replicates // 5), args.workers))):
        if part in parts:
            done[part] = measure()
            _checkpoint(done)
    agreement, paired, picks, ece = done["agreement"], done["paired"], done.get("picks", []), done.get("ece", [])
    seconds = time.perf_counter() - start + (previous.get("seconds", 0) if parts != set(PARTS) else 0)
    if not parts & {"ppi", "em"} and "seconds" in previous:
        seconds = previous["seconds"]  # the header's time is the studies' of the table it heads
    # the kept parts' own count
    replicates = args.replicates if parts & {"ppi", "em"} else previous.get("replicates", 300)
    text = (write_results(corrections, agreement, paired, picks, seconds, replicates) + ece_table(ece)
            + ece_clustered_table(done.get("ece-clustered")) + stability_table(done.get("stability"))
            + plan_table(done.get("plan")) + soft_table(done.get("soft", [])) + jury_table(done.get("jury")))
    (HERE / "results.md").write_text(text, encoding="utf-8")
    paste("validate", text)
    results = {"corrections": corrections, "agreement": agreement, "paired": paired,
               "picks": picks, "ece": ece, "stability": done.get("stability"), "plan": done.get("plan"),
               **{part: done.get(part) for part in ("ece-clustered", "soft", "jury")},
               "seconds": round(seconds),
               "replicates": replicates}
    (HERE / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
