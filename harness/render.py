"""Console rendering for the CLI (rich tables and the grading progress bar).

Only the CLI imports this module; the library returns data and never prints.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from .constants import CATEGORY_CODES

if TYPE_CHECKING:
    from .grading import GradeResult, Progress

console = Console(highlight=False)


def print_json(data: Any) -> None:
    console.print_json(json.dumps(data, default=str))


def fmt_rate(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "n/a"
    return f"{100 * float(value):.{digits}f}%"


def fmt_num(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "n/a"
    return f"{float(value):.{digits}f}"


def fmt_ci(ci: Any, *, pct: bool = True) -> str:
    if not ci or ci[0] is None:
        return ""
    if pct:
        return f"[{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"
    return f"[{ci[0]:.3f}, {ci[1]:.3f}]"


def print_describe(summary: dict[str, Any], name: str) -> None:
    console.print(f"[bold]{name}[/]: {summary['rows']} rows, {summary['with_response']} with a response")
    if summary["labels"]:
        table = Table("label column", "known", "coverage", "0/1", "1/2", "2/3", "3", title="labels")
        for column, info in summary["labels"].items():
            dist = list(info["distribution"].values()) + [""] * (4 - len(info["distribution"]))
            table.add_row(column, str(info["known"]), fmt_rate(info["coverage"]), *map(str, dist))
        console.print(table)
    if summary["metadata"]:
        meta = Table("metadata column", "unique", "missing", "most common", title="metadata")
        for column, info in summary["metadata"].items():
            top = ", ".join(f"{k} ({v})" for k, v in list(info["top"].items())[:4])
            meta.add_row(column, str(info["unique"]), str(info["missing"]), top)
        console.print(meta)


class GradeProgress:
    """A rich progress bar fed by the library's ``on_progress`` callback (throttled)."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled and console.is_terminal
        self._bar: Any = None
        self._task: Any = None
        self._last = 0.0

    def __enter__(self) -> GradeProgress:
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(
                TextColumn("grading"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
                TimeRemainingColumn(), TextColumn("{task.fields[info]}"), console=console, transient=True,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task("grade", total=None, rate="", info="")
        return self

    def update(self, progress: Progress) -> None:
        if self._bar is None:
            return
        now = time.perf_counter()
        if now - self._last < 0.1 and progress.done < progress.total:
            return
        self._last = now
        rate = progress.done / progress.elapsed_s if progress.elapsed_s > 0 else 0.0
        bad = sum(progress.statuses[s] for s in ("failed", "unparsed", "refused"))
        info = f"tokens {progress.prompt_tokens + progress.completion_tokens:,} · cache {progress.cached} · not ok {bad}"
        self._bar.update(self._task, total=progress.total, completed=progress.done, rate=f"{rate:,.0f}/s", info=info)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)


def print_grade_summary(result: GradeResult) -> None:
    manifest = result.manifest
    table = Table("target", "ok", "unparsed", "refused", "failed", title=f"run {result.run_dir}")
    for target, counts in manifest.get("counts_by_target", {}).items():
        table.add_row(target, *(str(counts[s]) for s in ("ok", "unparsed", "refused", "failed")))
    console.print(table)
    session = manifest.get("last_session", {})
    tokens = manifest.get("tokens", {})
    console.print(
        f"graded now {result.graded_now} items in {session.get('elapsed_s', 0):.2f}s "
        f"({session.get('items_per_s') or 0:,.1f} items/s), {session.get('requests_sent', 0)} requests, "
        f"{manifest.get('cache_hits', 0)} cache hits in the run; billed tokens "
        f"{tokens.get('billed_prompt_tokens', 0):,} prompt + {tokens.get('billed_completion_tokens', 0):,} completion "
        f"({manifest.get('prompt_tokens_per_billed_item') or 0:,} prompt tokens per item)"
    )


def _cell(record: dict[str, Any]) -> str:
    return f"{fmt_rate(record['rate'])} {fmt_ci(record['ci'])}"


def print_analysis(result: dict[str, Any]) -> None:
    settings = list(result["groups"].items()) + [("pooled", result["pooled"])]
    console.print(
        f"[bold]paired transitions[/]: {result['n_analyzed']} pairs analysed"
        f" ({result['n_excluded_incomplete']} left out for a missing label)"
    )
    table = Table("setting", "N", "reduction", "preservation", "escalation", "cond. reduction", title="transitions (95% Wilson CI)")
    for name, stats in settings:
        table.add_row(name, str(stats["n"]), *(_cell(stats[k]) for k in ("reduction", "preservation", "escalation", "conditional_reduction")))
    console.print(table)
    safety = Table("setting", "response harm", "harmful-prompt compliance", "benign drift", "unsolicited", "compliance esc.", title="safety posture")
    for name, stats in settings:
        mech = stats["escalation_mechanism"]
        safety.add_row(name, *(_cell(stats[k]) for k in ("response_harm", "harmful_prompt_compliance", "benign_drift")),
                       str(mech["unsolicited_elaboration"]), str(mech["compliance_escalation"]))
    console.print(safety)
    comparison = result.get("comparison")
    if comparison:
        title = f"matched comparison on {comparison['matched_on']} (exact McNemar, Holm per metric)"
        cmp_table = Table("metric", "A", "B", "shared", "A rate", "B rate", "A only", "B only", "p", "p Holm", title=title)
        for metric, rows in comparison["metrics"].items():
            for row in rows:
                cmp_table.add_row(metric, row["a"], row["b"], str(row["n_shared"]), fmt_rate(row["a_rate"]), fmt_rate(row["b_rate"]),
                                  str(row["a_only"]), str(row["b_only"]), f"{row['p_exact']:.2e}", f"{row['p_holm']:.2e}")
        console.print(cmp_table)
    cats = Table("category", "harmful prompts", "harmful resp. from harmful", "persistence", "reduction", "drift count", "drift up", title="categories (pooled)")
    for category, cat in result["pooled"]["categories"].items():
        cats.add_row(category, str(cat["harmful_prompts"]), str(cat["harmful_responses_from_harmful_prompts"]),
                     _cell(cat["persistence"]), _cell(cat["reduction"]), str(cat["drift_count"]), _cell(cat["drift_up"]))
    console.print(cats)
    pooled = result["pooled"]
    landing = pooled["escalation_by_landing_severity"]
    console.print(
        f"escalations: {pooled['escalation']['k']} = {pooled['escalation_mechanism']['unsolicited_elaboration']} unsolicited elaboration"
        f" + {pooled['escalation_mechanism']['compliance_escalation']} compliance escalation; landing severity 1/2/3: "
        f"{landing['1']}/{landing['2']}/{landing['3']}"
    )
    boot = result["cluster_bootstrap"]
    if boot["n_boot"]:
        ci = boot["ci"]
        console.print(
            f"cluster bootstrap ({boot['n_clusters']} clusters of {result['cluster']}, {boot['n_boot']} resamples): "
            + ", ".join(f"{k} {fmt_ci(ci[k])}" for k in ("reduction", "preservation", "escalation"))
        )
    relevance = pooled.get("relevance")
    if relevance:
        rel = Table("subset", "n", "rel 1", "rel 2", "rel 3", "mean", "share rel 3", title="relevance (pooled)")
        rows = [*relevance["by_transition"].items(), *((f"response severity {k}", v) for k, v in relevance["by_response_severity"].items())]
        for name, info in rows:
            rel.add_row(name, str(info["n"]), *(str(info["counts"][k]) for k in ("1", "2", "3")), fmt_num(info["mean"], 2), fmt_rate(info["share_relevance_3"]))
        console.print(rel)


def print_table_agreement(result: dict[str, Any]) -> None:
    left = result["left_out"]
    console.print(
        f"[bold]{result['gold']} vs {result['pred']}[/]: {result['n']} of {result['n_rows']} rows compared; "
        f"{result['n_unparsed']} unparsed grader labels ({left['pred_missing']} missing, {left['pred_outside_labels']} outside the label set), "
        f"{left['gold_unknown'] + left['gold_outside_labels']} without a usable reference label"
    )
    ci = result["ci"]
    line = f"accuracy {fmt_num(result['accuracy'])} {fmt_ci(ci['accuracy'], pct=False)}, kappa {fmt_num(result['kappa'])} {fmt_ci(ci['kappa'], pct=False)}, macro-F1 {fmt_num(result['macro_f1'])}"
    if result["ordinal"]:
        det = result["detection"]
        line += (f", quadratic kappa {fmt_num(result['kappa_quadratic'])} {fmt_ci(ci['kappa_quadratic'], pct=False)}, "
                 f"detection (>= {result['threshold']}) recall {fmt_num(det['recall'])} precision {fmt_num(det['precision'])} FPR {fmt_num(det['false_positive_rate'])}")
    console.print(line)
    labels = [str(v) for v in result["labels"]]
    table = Table("reference \\ grader", *labels, title="confusion matrix")
    for label, row in zip(labels, result["confusion"], strict=True):
        table.add_row(label, *map(str, row))
    console.print(table)
    for note in result["notes"]:
        console.print(f"note: {note}")


def print_calibration(result: dict[str, Any]) -> None:
    console.print(f"[bold]{result['model']}[/] vs human labels: {result['n_joined']} pairs joined (detection at severity >= {result['threshold']})")
    table = Table("side", "scope", "n", "unparsed", "acc", "kappa", "kappa lin", "kappa quad", "macro-F1", "recall", "precision", "FPR", "prev human", "prev grader", title="agreement")
    for side, report in result["targets"].items():
        for scope, m in [("pooled", report["pooled"]), ("max", report["max"]), *report["categories"].items()]:
            det = m["detection"]
            table.add_row(side, scope, str(m["n"]), str(m["n_unparsed"]), fmt_num(m["accuracy"]), fmt_num(m["kappa"]), fmt_num(m["kappa_linear"]),
                          fmt_num(m["kappa_quadratic"]), fmt_num(m["macro_f1"]), fmt_num(det["recall"]), fmt_num(det["precision"]),
                          fmt_num(det["false_positive_rate"]), fmt_rate(det["prevalence_gold"]), fmt_rate(det["prevalence_pred"]))
    console.print(table)
    asym = result.get("asymmetry")
    if asym:
        gap = Table("scope", "prompt recall", "response recall", "gap", "gap 95% CI", "kappa gap", "kappa gap CI", title="prompt/response asymmetry (paired bootstrap)")
        for scope, a in asym.items():
            gap.add_row(scope, fmt_num(a["prompt_recall"]), fmt_num(a["response_recall"]), fmt_num(a["recall_gap"]),
                        fmt_ci(a["recall_gap_ci"], pct=False), fmt_num(a["kappa_gap"]), fmt_ci(a["kappa_gap_ci"], pct=False))
        console.print(gap)


def print_comparison(result: dict[str, Any]) -> None:
    table = Table("run", "model", "prompt qκ", "resp qκ", "prompt recall", "resp recall", "prompt FPR", "resp FPR", "recall gap", "not ok", "billed tokens", title="graders vs human")
    for name, row in result["runs"].items():
        table.add_row(name, str(row["model"]), fmt_num(row.get("prompt_kappa_quadratic")), fmt_num(row.get("response_kappa_quadratic")),
                      fmt_num(row.get("prompt_recall")), fmt_num(row.get("response_recall")), fmt_num(row.get("prompt_fpr")),
                      fmt_num(row.get("response_fpr")), fmt_num(row.get("recall_gap")), fmt_rate(row["not_ok_rate"]), f"{row['billed_tokens']:,}")
    console.print(table)
    pairs = Table("A", "B", "items", "A right only", "B right only", "McNemar p", "Holm p", "qκ A−B", "95% CI", title="paired tests")
    for p in result["pairs"]:
        pairs.add_row(p["a"], p["b"], str(p["n_items"]), str(p["a_correct_only"]), str(p["b_correct_only"]), f"{p['p_mcnemar']:.3g}",
                      f"{p['p_holm']:.3g}", fmt_num(p["kappa_quadratic_diff"]), fmt_ci(p["kappa_quadratic_diff_ci"], pct=False))
    console.print(pairs)


def print_shot_search(result: dict[str, Any]) -> None:
    console.print(f"splits: {result['splits']}; chose [bold]{result['chosen']}[/] ({result['objective']}); shots written to {result['chosen_shots']}")
    dev = Table("candidate", "shots", "dev score", title="dev")
    for row in result["dev"]:
        dev.add_row(row["name"], str(row["shots"]), fmt_num(row["score"]))
    console.print(dev)
    test = Table("set", "shots", "prompt qκ", "response qκ", "prompt recall", "response recall", "recall gap", title="held-out test")
    for row in result["test"]:
        test.add_row(row["set"], str(row["shots"]), fmt_num(row.get("prompt_kappa_quadratic")), fmt_num(row.get("response_kappa_quadratic")),
                     fmt_num(row.get("prompt_recall")), fmt_num(row.get("response_recall")), fmt_num(row.get("recall_gap")))
    console.print(test)


def print_flips(result: dict[str, Any]) -> None:
    from rich import box

    lost = result["answers_lost"]
    console.print(f"{result['items_paired_ok']} of {result['items_shared']} items graded ok in both runs; "
                  f"answers lost to the injection: {lost['k']}/{lost['n']} ({fmt_rate(lost['rate'])})")
    table = Table("side", "cat", "n", "lowered", "lost", "rate", "95% CI", "p", title="injected vs clean verdicts",
                  box=box.SIMPLE_HEAD)
    raised = gained = 0
    short_ci = lambda ci: "" if ci[0] is None else f"{100 * ci[0]:.0f}–{100 * ci[1]:.0f}%"
    for side, block in result["sides"].items():
        for category, row in block["categories"].items():
            det = row["detection_lost"]
            raised += row["raised"]["k"]
            gained += row["detection_gained"]
            table.add_row(side, CATEGORY_CODES[category], str(row["n"]), fmt_rate(row["lowered"]["rate"]),
                          f"{det['k']}/{det['n']}", fmt_rate(det["rate"]), short_ci(det["ci"]), f"{row['mcnemar_p']:.2g}")
        any_lost = block["any_detection_lost"]
        table.add_row(side, "any", str(block["n"]), fmt_rate(block["any_lowered"]["rate"]),
                      f"{any_lost['k']}/{any_lost['n']}", fmt_rate(any_lost["rate"]), short_ci(any_lost["ci"]), "")
    console.print(table)
    console.print(f"lost: detections the injected copy no longer flags; p: exact McNemar, lost vs gained. "
                  f"Verdicts raised: {raised}; detections gained: {gained} (per category in flips.json).")
