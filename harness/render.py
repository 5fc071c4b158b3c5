"""Console rendering for the CLI (rich tables and the grading progress bar).

Only the CLI imports this module; the library returns data and never prints.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console
from rich.table import Table

from .constants import CATEGORY_CODES

if TYPE_CHECKING:
    from .grading import GradeResult, Progress
    from .results import (
        Agreement,
        Analysis,
        Calibration,
        Comparison,
        Correction,
        Flips,
        GroupComparison,
        Proportion,
        Relevance,
        ShotSearch,
        TableAgreement,
        Unit,
    )

console = Console(highlight=False)


def _table(*headers: str, title: str | None = None) -> Table:
    """A table that stays readable at any width: light rules, no edge padding, and cells that
    wrap or fold instead of being cut with an ellipsis (piped output defaults to 80 columns)."""
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1), collapse_padding=True)
    for header in headers:
        table.add_column(header, overflow="fold")
    return table


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


def fmt_ci(ci: Any, *, pct: bool = True, digits: int | None = None) -> str:
    if not ci or ci[0] is None or ci[1] is None:
        return ""
    if pct:
        d = 1 if digits is None else digits
        return f"[{100 * ci[0]:.{d}f},{100 * ci[1]:.{d}f}]"  # no space: a table never breaks a CI over two lines
    d = 3 if digits is None else digits
    return f"[{ci[0]:.{d}f},{ci[1]:.{d}f}]"


def print_describe(summary: dict[str, Any], name: str) -> None:
    console.print(f"[bold]{name}[/]: {summary['rows']} rows, {summary['with_response']} with a response")
    if summary["labels"]:
        table = _table("label column", "known", "coverage", "0/1", "1/2", "2/3", "3", title="labels")
        for column, info in summary["labels"].items():
            dist = list(info["distribution"].values()) + [""] * (4 - len(info["distribution"]))
            table.add_row(column, str(info["known"]), fmt_rate(info["coverage"]), *map(str, dist))
        console.print(table)
    if summary["metadata"]:
        meta = _table("metadata column", "unique", "missing", "most common", title="metadata")
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
    from .results import Manifest

    manifest = Manifest.from_json(result.manifest)
    table = _table("target", "ok", "unparsed", "refused", "failed", title=f"run {result.run_dir}")
    for target, counts in manifest.counts_by_target.items():
        table.add_row(target, *(str(counts.get(s, 0)) for s in ("ok", "unparsed", "refused", "failed")))
    console.print(table)
    session, tokens = manifest.last_session, manifest.tokens
    console.print(
        f"graded now {result.graded_now} items in {session.elapsed_s if session else 0:.2f}s "
        f"({(session.items_per_s if session else None) or 0:,.1f} items/s), {session.requests_sent if session else 0} requests, "
        f"{manifest.cache_hits} cache hits in the run; billed tokens "
        f"{tokens.get('billed_prompt_tokens', 0):,} prompt + {tokens.get('billed_completion_tokens', 0):,} completion "
        f"({manifest.prompt_tokens_per_billed_item or 0:,} prompt tokens per item)"
    )
    for note in manifest.cache_notes:
        console.print(f"[yellow]cache:[/] {note}")
    for status, reasons in manifest.reasons.items():
        console.print(f"[bold]{manifest.counts.get(status, 0)} {status}[/], by reason:")
        for reason, count in reasons.items():
            console.print(f"  {count:>6}  {reason}")


def _cell(record: Proportion) -> str:
    return f"{fmt_rate(record.rate)} {fmt_ci(record.ci)}"


def print_analysis(result: Analysis) -> None:
    settings = result.settings()
    why = "; ".join(f"{side}: " + ", ".join(f"{k} {v}" for k, v in sorted(r.items())) for side, r in result.excluded.items() if r)
    console.print(
        f"[bold]paired transitions[/]: {result.n_analyzed} pairs analysed"
        f" ({result.n_excluded_incomplete} left out for a missing label{': ' + why if why else ''})"
    )
    table = _table("setting", "N", "clust.", "reduction", "preservation", "escalation", "cond. red.", title="transitions (95% CI)")
    for name, stats in settings:
        table.add_row(name, str(stats.n), str(stats.unit.n_clusters), _cell(stats.reduction), _cell(stats.preservation),
                      _cell(stats.escalation), _cell(stats.conditional_reduction))
    console.print(table)
    methods = {name: stats.unit.ci_method for name, stats in settings}
    clusters = result.cluster or "each pair"
    if len(set(methods.values())) == 1:
        console.print(f"CIs: {next(iter(methods.values()))} (clusters of {clusters})")
    else:
        console.print("CIs: " + "; ".join(f"{name} {m}" for name, m in methods.items()) + f" (clusters of {clusters})")
    safety = _table("setting", "response harm", "harmful-prompt compl.", "benign drift", "unsol.", "compl. esc.", title="safety posture")
    for name, stats in settings:
        mech = stats.escalation_mechanism
        safety.add_row(name, _cell(stats.response_harm), _cell(stats.harmful_prompt_compliance), _cell(stats.benign_drift),
                       str(mech["unsolicited_elaboration"]), str(mech["compliance_escalation"]))
    console.print(safety)
    if result.comparison:
        _print_group_comparison(result.comparison)
    _print_categories_and_escalations(result)
    if result.pooled.relevance:
        _print_relevance(result.pooled.relevance)
    if result.corrected:
        print_correction(result.corrected)


def _print_group_comparison(comparison: GroupComparison) -> None:
    title = f"matched on {comparison.matched_on}: one pair per prompt and group"
    table = _table("metric", "A", "B", "shared", "A rate", "B rate", "A only", "B only", "p", "p Holm", title=title)
    for metric, rows in comparison.metrics.items():
        for row in rows:
            table.add_row(_METRIC_SHORT.get(metric, metric), row.a, row.b, str(row.n_shared), fmt_rate(row.a_rate), fmt_rate(row.b_rate),
                          str(row.a_only), str(row.b_only), f"{row.p_exact:.2g}", f"{row.p_holm:.2g}")
    console.print(table)
    console.print("esc.: escalation; harm: response harm; compl.: harmful-prompt compliance; p: exact McNemar on the shared "
                  "prompts (n = shared = clusters), Holm within each metric")


def _print_categories_and_escalations(result: Analysis) -> None:
    pooled = result.pooled
    cats = _table("category", "harmful prompts", "harm. resp. from harm.", "persistence", "reduction", "drift", "drift up",
                  title="categories (pooled)")
    for category, cat in pooled.categories.items():
        cats.add_row(category, str(cat.harmful_prompts), str(cat.harmful_responses_from_harmful_prompts), _cell(cat.persistence),
                     _cell(cat.reduction), str(cat.drift_count), _cell(cat.drift_up))
    console.print(cats)
    landing, mech = pooled.escalation_by_landing_severity, pooled.escalation_mechanism
    console.print(
        f"escalations: {pooled.escalation.k} = {mech['unsolicited_elaboration']} unsolicited elaboration"
        f" + {mech['compliance_escalation']} compliance escalation; landing severity 1/2/3: "
        f"{landing['1']}/{landing['2']}/{landing['3']}"
    )
    boot = result.cluster_bootstrap
    if boot.n_boot:
        console.print(
            f"pooled cluster bootstrap (n={pooled.n} in {boot.n_clusters} clusters of {result.cluster or 'each pair'}, "
            f"{boot.n_boot} resamples): " + ", ".join(f"{k} {fmt_ci(boot.ci[k])}" for k in ("reduction", "preservation", "escalation"))
        )


def _print_relevance(relevance: Relevance) -> None:
    rel = _table("subset", "n", "rel 1", "rel 2", "rel 3", "mean", "share rel 3", title="relevance (pooled)")
    rows = [*relevance.by_transition.items(), *((f"response severity {k}", v) for k, v in relevance.by_response_severity.items())]
    for name, info in rows:
        rel.add_row(name, str(info.n), *(str(info.counts[k]) for k in ("1", "2", "3")), fmt_num(info.mean, 2), fmt_rate(info.share_relevance_3))
    console.print(rel)


_METRIC_SHORT = {"escalation": "esc.", "response_harm": "harm", "harmful_prompt_compliance": "compl."}


def print_correction(corrected: Correction) -> None:
    console.print(
        f"[bold]bias-corrected[/] with {corrected.n_calibration} calibration pairs in {corrected.n_calibration_clusters} clusters "
        f"(grader {corrected.calibration_model}); graded n={corrected.n_graded} in {corrected.n_graded_clusters} clusters"
    )
    table = _table("share", "raw", "raw 95% CI", "corrected", "corrected 95% CI", title="raw vs bias-corrected")
    for key in ("reduction", "preservation", "escalation", "prompt_harm", "response_harm"):
        table.add_row(key.replace("_", " "), fmt_rate(corrected.raw[key]), fmt_ci(corrected.raw_ci[key]),
                      fmt_rate(corrected.corrected[key]), fmt_ci(corrected.corrected_ci[key]))
    console.print(table)
    console.print(f"method: {corrected.method}; CIs resample both sets by cluster ({corrected.n_boot} resamples). "
                  f"Assumes: {'; '.join(corrected.assumptions)}.")
    for warning in corrected.warnings:
        console.print(f"[yellow]warning:[/] {warning}")


def _unit(unit: Unit | Agreement) -> str:
    from .clusters import describe_unit

    return describe_unit(unit.cluster, unit.n_items, unit.n_clusters)


def print_table_agreement(result: TableAgreement) -> None:
    left = result.left_out
    console.print(
        f"[bold]{result.gold} vs {result.pred}[/]: {result.n} of {result.n_rows} rows compared "
        f"({_unit(result)}); grader label missing {left['grader_missing']}, outside the label set "
        f"{left['grader_outside_labels']}; reference label missing or outside {left['reference_missing'] + left['reference_outside_labels']}"
    )
    ci = result.ci
    line = f"accuracy {fmt_num(result.accuracy)} {fmt_ci(ci['accuracy'], pct=False)}, kappa {fmt_num(result.kappa)} {fmt_ci(ci['kappa'], pct=False)}, macro-F1 {fmt_num(result.macro_f1)}"
    if result.ordinal and result.detection is not None:
        det = result.detection
        line += (f", quadratic kappa {fmt_num(result.kappa_quadratic)} {fmt_ci(ci['kappa_quadratic'], pct=False)}, "
                 f"detection (>= {result.threshold}) recall {fmt_num(det.recall)} precision {fmt_num(det.precision)} FPR {fmt_num(det.false_positive_rate)}")
    console.print(line)
    if result.ci_method:
        console.print(f"95% CIs: {result.ci_method}")
    labels = [str(v) for v in result.labels]
    table = _table("reference \\ grader", *labels, title="confusion matrix")
    for label, row in zip(labels, result.confusion, strict=True):
        table.add_row(label, *map(str, row))
    console.print(table)
    for note in result.notes:
        console.print(f"note: {note}")


def print_calibration(result: Calibration) -> None:
    console.print(f"[bold]{result.model}[/] vs human labels: {result.n_joined} pairs joined, {_unit(result.unit)}; "
                  f"detection at severity >= {result.threshold}; 95% CIs resample clusters ({result.n_boot} resamples)")
    counts = _table("side", "items", "ok", "unparsed", "refused", "failed", "no text", "not graded", "no human", title="items")
    for side, report in result.targets.items():
        c = report.counts
        counts.add_row(side, *(str(c.get(k, 0)) for k in ("items", "ok", "unparsed", "refused", "failed", "missing_text", "not_graded", "reference_missing")))
    console.print(counts)
    table = _table("side", "scope", "n", "qκ", "qκ 95% CI", "κ", "recall", "recall CI", "FPR", title="agreement")
    for side, report in result.targets.items():
        for scope, m in report.scopes():
            det = m.detection
            table.add_row(side, _scope(scope), str(m.n), fmt_num(m.kappa_quadratic, 2), fmt_ci(m.ci["kappa_quadratic"], pct=False, digits=2),
                          fmt_num(m.kappa, 2), fmt_num(det.recall if det else None, 2), fmt_ci(m.ci["recall"], pct=False, digits=2),
                          fmt_num(det.false_positive_rate if det else None, 2))
    console.print(table)
    console.print("n: labels compared (pooled: 4 per item); qκ quadratic-weighted kappa; recall and FPR of detection")
    if result.asymmetry:
        gap = _table("scope", "prompt rec.", "resp. rec.", "gap", "gap 95% CI", "qκ gap", "qκ gap CI", title="prompt/response asymmetry")
        for scope, a in result.asymmetry.items():
            gap.add_row(_scope(scope), fmt_num(a.prompt_recall, 2), fmt_num(a.response_recall, 2), fmt_num(a.recall_gap, 2),
                        fmt_ci(a.recall_gap_ci, pct=False, digits=2), fmt_num(a.kappa_gap, 2), fmt_ci(a.kappa_gap_ci, pct=False, digits=2))
        console.print(gap)
        console.print(f"gap: prompt minus response; CIs resample {_unit(result.unit)} with both sides together")


def _scope(scope: str) -> str:
    return CATEGORY_CODES.get(scope, scope)


def print_comparison(result: Comparison) -> None:
    console.print(f"graders vs human labels, {_unit(result.unit)}; 95% CIs resample clusters ({result.n_boot} resamples)")
    table = _table("run", "side", "qκ", "qκ 95% CI", "recall", "recall CI", "FPR", "not ok", title="graders vs human")
    for name, row in result.runs.items():
        for side, score in row.sides.items():
            table.add_row(name, side, fmt_num(score.kappa_quadratic, 2), fmt_ci(score.kappa_quadratic_ci, pct=False, digits=2),
                          fmt_num(score.recall, 2), fmt_ci(score.recall_ci, pct=False, digits=2), fmt_num(score.fpr, 2), fmt_rate(row.not_ok_rate))
    console.print(table)
    for name, row in result.runs.items():
        if row.recall_gap is not None:
            console.print(f"{name}: prompt-response recall gap {fmt_num(row.recall_gap, 3)} {fmt_ci(row.recall_gap_ci, pct=False)}; "
                          f"billed tokens {row.billed_tokens:,}")
    diffs = _table("A", "B", "side", "qκ A−B", "95% CI", "n", "clusters", title="paired kappa difference (cluster bootstrap)")
    for d in result.kappa_diffs:
        diffs.add_row(d.a, d.b, d.side, fmt_num(d.diff, 3), fmt_ci(d.ci, pct=False), str(d.n_items), str(d.n_clusters))
    console.print(diffs)
    tests = _table("A", "B", "side", "scope", "n", "clust.", "A only", "B only", "p", "p Holm", title="paired detection tests")
    for t in result.tests:
        tests.add_row(t.a, t.b, t.side, _scope(t.scope), str(t.n_items), str(t.n_clusters), str(t.a_only), str(t.b_only),
                      f"{t.p_value:.2g}", f"{t.p_holm:.2g}")
    console.print(tests)
    methods = sorted({t.method for t in result.tests})
    console.print(f"A only / B only: items only A / only B detects correctly; test: {'; '.join(methods)}; {result.family}")


def print_shot_search(result: ShotSearch) -> None:
    console.print(f"splits: {result.splits}; {_unit(result.unit)} on test; objective: {result.objective}")
    dev = _table("candidate", "shots", "dev score", "winner − this", "95% CI", title="dev")
    for row in result.dev:
        diff = row.winner_minus_this
        mark = " (chosen)" if row.name == result.chosen else (" (tie)" if row.tie else "")
        dev.add_row(row.name + mark, str(row.shots), fmt_num(row.score), fmt_num(diff.diff) if diff else "",
                    fmt_ci(diff.ci, pct=False) if diff else "")
    console.print(dev)
    test = _table("set", "shots", "score", "prompt qκ", "resp. qκ", "recall gap", "chosen − this", "95% CI", title="held-out test")
    for t in result.test:
        d = t.chosen_minus_this
        test.add_row(t.set, str(t.shots), fmt_num(t.score, 2), fmt_num(t.prompt_kappa_quadratic, 2), fmt_num(t.response_kappa_quadratic, 2),
                     fmt_num(t.recall_gap, 2), fmt_num(d.diff, 2) if d else "", fmt_ci(d.ci, pct=False, digits=2) if d else "")
    console.print(test)
    console.print(f"chose [bold]{result.chosen}[/], written to {result.chosen_shots}. {result.verdict}.")


def print_flips(result: Flips) -> None:
    lost = result.answers_lost
    console.print(f"{result.items_paired_ok} of {result.items_shared} items graded ok in both runs; "
                  f"answers lost to the injection: {lost.k}/{lost.n} ({fmt_rate(lost.rate)})")
    table = _table("side", "cat", "n", "lowered", "lost", "rate", "95% CI", "p", title="injected vs clean verdicts")
    raised = gained = 0
    short_ci = lambda ci: "" if ci[0] is None or ci[1] is None else f"{100 * ci[0]:.0f}–{100 * ci[1]:.0f}%"
    for side, block in result.sides.items():
        for category, row in block.categories.items():
            det = row.detection_lost
            raised += row.raised.k
            gained += row.detection_gained
            table.add_row(side, CATEGORY_CODES[category], str(row.n), fmt_rate(row.lowered.rate), f"{det.k}/{det.n}",
                          fmt_rate(det.rate), short_ci(det.ci), f"{row.mcnemar_p:.2g}")
        any_lost = block.any_detection_lost
        table.add_row(side, "any", str(block.n), fmt_rate(block.any_lowered.rate), f"{any_lost.k}/{any_lost.n}",
                      fmt_rate(any_lost.rate), short_ci(any_lost.ci), "")
    console.print(table)
    for side, block in result.sides.items():
        console.print(f"{side}: {_unit(block.unit)}; CIs: {block.unit.ci_method}")
    console.print(f"lost: detections the injected copy no longer flags; p: McNemar lost vs gained, by cluster. "
                  f"Verdicts raised: {raised}; detections gained: {gained} (per category in flips.json).")


def print_templates(entries: list[dict[str, Any]]) -> None:
    table = _table("kind", "name", "hash", "contents", title="bundled template sets and shot files")
    for e in entries:
        contents = f"{len(e['files'])} templates" if e["kind"] == "templates" else e["files"][0]
        table.add_row(e["kind"], e["name"], e["hash"], contents)
    console.print(table)
    folders = sorted({str(Path(e["path"]).parent) for e in entries})
    console.print(f"in {', '.join(folders)}; use: harness grade DATA --template FOLDER --shots FILE "
                  "(a folder of your own works the same way)")
