"""Console rendering for the CLI (rich tables and the grading progress bar).

Only the CLI imports this module; the library returns data and never prints.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

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
