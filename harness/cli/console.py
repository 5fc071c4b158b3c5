"""Console rendering for the CLI (rich tables and the grading progress bar).

Only the CLI imports this module; the library returns data and never prints.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..core.display import printable

if TYPE_CHECKING:
    from ..grading.grade import GradeResult
    from ..grading.grader import Progress
    from ..report.blocks import Section
    from ..results.base import Result
    from ..results.manifest import DryRun

class _PlainConsole(Console):
    """A console that never reads text as markup and drops control characters from every string it prints
    (model names, endpoint messages and file contents reach the terminal as text, nothing else)."""

    def print(self, *objects: Any, **options: Any) -> None:  # type: ignore[override]
        super().print(*(printable(o) if isinstance(o, str) else o for o in objects), **options)


def _console() -> _PlainConsole:
    """The console, its width read at every print (``COLUMNS`` included), never frozen at whatever ``COLUMNS`` said
    when harness was first imported (a notebook, a test, a parent process)."""
    saved = {name: os.environ.pop(name) for name in ("COLUMNS", "LINES") if name in os.environ}
    try:
        return _PlainConsole(highlight=False, markup=False)
    finally:
        os.environ.update(saved)


console = _console()


def _styled(label: str, style: str, rest: str = "") -> Text:
    """``label`` in ``style``, then ``rest`` as plain text."""
    return Text.assemble((label, style), printable(rest))


def _table(*headers: str, title: str | None = None) -> Table:
    """A table that stays readable at any width: light rules, no edge padding, and cells that
    wrap or fold instead of being cut with an ellipsis (piped output defaults to 80 columns)."""
    # the box puts one space between columns
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 0), show_edge=False)
    for header in headers:
        table.add_column(header, overflow="fold")
    return table


def print_json(data: Any) -> None:
    """A result (or any JSON value) as indented JSON."""
    value = data.to_json() if hasattr(data, "to_json") else data
    console.print_json(json.dumps(value, default=str))


def fmt_rate(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "n/a"
    return f"{100 * float(value):.{digits}f}%"


def print_describe(summary: dict[str, Any], name: str) -> None:
    console.print(_styled(name, "bold", f": {summary['rows']} rows, {summary['with_response']} with a response "
                                        "(their responses are graded too; the other rows' prompts only)"))
    if summary["labels"]:
        table = _table("label column", "known", "coverage", "0", "1", "2", "3", title="labels: items per severity")
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
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.text import Text

            # the bar, counts and times on one line, the details under it: a wide bar at 80 columns
            class TwoLines(Progress):
                def get_renderables(self) -> Any:
                    yield self.make_tasks_table(self.tasks)
                    for task in self.tasks:
                        if task.fields.get("info"):
                            yield Text("  " + task.fields["info"], style="dim")

            self._bar = TwoLines(
                TextColumn("grading"),
                BarColumn(bar_width=None),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=console,
                transient=True,
                expand=True,
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
        tokens = progress.prompt_tokens + progress.completion_tokens
        info = (f"tokens {tokens:,} · from the cache {progress.cached} · not ok {bad}"
                + (f" · resumed: {progress.already:,} items were already graded" if progress.already else ""))
        self._bar.update(self._task, total=progress.total, completed=progress.done, rate=f"{rate:,.0f}/s", info=info)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)


def _graded_now_line(result: GradeResult, *, local: bool) -> str:
    """This session's items, time, throughput, requests and tokens, and the run's cache hits."""
    manifest = result.manifest
    session, tokens = manifest.last_session, manifest.tokens
    already = manifest.items - result.graded_now
    resumed = f" (resumed: {already} were already graded in this folder)" if already > 0 else ""
    return (
        f"graded now {result.graded_now} items" + resumed
        + f" in {session.elapsed_s if session else 0:.2f}s "
        f"({(session.items_per_s if session else None) or 0:,.1f} items/s), "
        f"{session.requests_sent if session else 0} requests, "
        f"{manifest.cache_hits} cache hits in the run; "
        f"{'tokens sent to a local endpoint' if local else 'billed tokens'} "
        f"{tokens.get('billed_prompt_tokens', 0):,} prompt + {tokens.get('billed_completion_tokens', 0):,} completion "
        f"({manifest.prompt_tokens_per_billed_item or 0:,} prompt tokens per item)"
    )


def print_grade_summary(result: GradeResult) -> None:
    from ..grading.cache import is_loopback

    manifest = result.manifest
    table = _table("target", "ok", "unparsed", "refused", "failed", title=f"run {result.run_dir}")
    for target, counts in manifest.counts_by_target.items():
        table.add_row(target, *(str(counts.get(s, 0)) for s in ("ok", "unparsed", "refused", "failed")))
    console.print(table)
    session, tokens = manifest.last_session, manifest.tokens
    local = is_loopback(manifest.endpoint or "") and manifest.cost is None  # with a price, the tokens are billed
    console.print(_graded_now_line(result, local=local))
    if manifest.cached_non_verdicts:
        console.print(_styled("note:", "yellow", f" {manifest.cached_non_verdicts} unparsed or refused answers were "
                              "not asked afresh (read from the cache, or shared with an identical request of this "
                              "run); --retry unparsed,refused forgets them and asks again"))
    cached = tokens.get("billed_prompt_tokens_prefix_cached", 0)
    if tokens.get("billed_prompt_tokens"):
        billed = tokens["billed_prompt_tokens"]
        console.print(f"{'prefix reuse' if local else 'provider prompt cache'}: {cached:,} of {billed:,} "
                      f"{'sent' if local else 'billed'} prompt tokens "
                      f"({100 * cached / billed:.1f}%) were a repeated prefix (rubric and shots first)")
    if manifest.cost is not None:
        per_item = manifest.cost.billed / manifest.items if manifest.items else 0.0
        price = manifest.cost.price_per_million
        console.print(f"billed cost {manifest.cost.billed:,.4f} ({per_item:,.6f} per item) at "
                      f"{price['input']} / {price['output']} per million "
                      "prompt / completion tokens")
    if manifest.shots_overlap:
        console.print(_styled("warning:", "yellow", f" {manifest.shots_overlap} graded items are among the exemplars "
                              "of the shot set (same id or text): they were graded with their own answer shown; do "
                              "not score the grader on them"))
    if session is not None:
        for url, reason in (session.replicas_set_aside or {}).items():
            console.print(_styled("replica set aside:", "yellow", f" {url} {reason}"))
        for url, names in (session.answered_models or {}).items():
            console.print(_styled("warning:", "yellow", f" {url} answered as {', '.join(names)}, not {manifest.model}: "
                                  "check that the endpoint serves the grader you meant"))
    for note in manifest.cache_notes:
        console.print(_styled("cache:", "yellow", f" {note}"))
    for status, reasons in manifest.reasons.items():
        console.print(_styled(f"{manifest.counts.get(status, 0)} {status}", "bold", ", by reason:"))
        for reason, count in reasons.items():
            console.print(f"  {count:>6}  {reason}")


def print_dry_run(found: DryRun) -> None:
    """What a grade would send and cost, before anything is sent."""
    by_target = ", ".join(f"{t} {n}" for t, n in found.items_by_target.items())
    console.print(_styled("dry run", "bold", f" (nothing sent) for {found.model}: {found.requests:,} requests "
                                          f"for {found.items:,} items ({by_target})"))
    if found.duplicate_requests:
        console.print(f"{found.duplicate_requests:,} more requests are identical to one of these: sent once, not "
                      "counted again")
    if found.batch:
        console.print("costs below carry the Batch API's discount")
    console.print(f"prompt tokens ≈ {found.prompt_tokens_estimate:,} (estimate: {found.estimate}); "
                  f"completion budget ≤ {found.completion_token_budget:,} tokens (max_tokens per request)")
    if found.cost_prompt is None or found.cost_upper_bound is None:
        console.print("price: unknown; pass --price-input and --price-output (per million tokens) or add "
                      "[prices.MODEL] to harness.toml")
    else:
        console.print(f"price: prompt ≈ {found.cost_prompt:,.4f}; at most {found.cost_upper_bound:,.4f} with the "
                      "whole completion budget")


def print_section(section: Section, *, title: bool = True) -> None:
    """A result's section as the terminal shows it: paragraphs, then each table with its note."""
    if title:
        console.print(_styled(section.title, "bold"))
    for paragraph in section.paragraphs:
        console.print(paragraph)
    for block in section.tables:
        print_table(block)


def _cell_widths(cells: list[str], breakable: bool) -> int:
    """The narrowest a column can be without cutting a word (or, unbreakable, a cell)."""
    from rich.cells import cell_len

    return max((cell_len(piece) for cell in cells for piece in (cell.split() if breakable else [cell])), default=0)


def column_groups(minimums: list[int], width: int, key: int = 1) -> list[list[int]]:
    """Columns split into tables that fit ``width``, each repeating the first ``key`` columns (the row's name) and
    never narrower than a column's longest word: a wide table becomes two stacked, not folded.

    >>> column_groups([10, 8, 8, 8], 80)
    [[0, 1, 2, 3]]
    >>> column_groups([10, 30, 30, 30], 80)
    [[0, 1, 2], [0, 3]]
    >>> column_groups([5, 5, 30, 30, 30], 80, key=2)
    [[0, 1, 2, 3], [0, 1, 4]]
    """
    key = max(1, min(key, len(minimums)))
    start = list(range(key))
    groups: list[list[int]] = [list(start)]
    used = sum(minimums[:key]) + key - 1
    for j in range(key, len(minimums)):
        if len(groups[-1]) > key and used + 1 + minimums[j] > width:
            groups.append(list(start))
            used = sum(minimums[:key]) + key - 1
        groups[-1].append(j)
        used += 1 + minimums[j]
    return groups


def _widths(minimums: list[int], natural: list[int], width: int) -> list[int]:
    """Each column's width: its natural width when all fit, else its minimum plus a share of what is left,
    given first to the columns that would otherwise wrap most.

    >>> _widths([3, 5], [3, 9], 80), _widths([10, 10], [40, 60], 40)
    ([3, 9], [10, 29])
    """
    gaps = len(minimums) - 1
    if sum(natural) + gaps <= width:
        return natural
    out = list(minimums)
    spare = width - gaps - sum(out)
    while spare > 0:
        wanting = [j for j in range(len(out)) if out[j] < natural[j]]
        if not wanting:
            break
        j = max(wanting, key=lambda i: natural[i] - out[i])
        out[j] += 1
        spare -= 1
    return out


def print_table(block: Any) -> None:
    """One table of a section: the caption on its own line, numbers right-aligned and never broken, and
    a table too wide for the terminal split into stacked tables that repeat the columns naming a row."""
    header = [printable(h) for h in block.header]
    rows = [[printable(c) for c in row] for row in block.rows]
    numeric = block.numeric
    minimums = [max(_cell_widths([header[j]], True), _cell_widths([r[j] for r in rows], not numeric[j]))
                for j in range(len(header))]
    natural = [max(_cell_widths([header[j]], False), _cell_widths([r[j] for r in rows], False))
               for j in range(len(header))]
    console.print(_styled(printable(block.caption), "bold"))
    for part, columns in enumerate(column_groups(minimums, console.width, block.key)):
        widths = _widths([minimums[j] for j in columns], [natural[j] for j in columns], console.width)
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 0), show_edge=False)
        for j, width in zip(columns, widths, strict=True):
            table.add_column(header[j], justify="right" if numeric[j] else "left", overflow="fold", width=width)
        for row in rows:
            table.add_row(*(row[j] for j in columns))
        if part:
            console.print(f"({printable(block.caption)}, continued)")
        console.print(table)
    if block.note:
        console.print(_styled(block.note, "dim"))


def print_result(result: Result) -> None:
    """Any typed result, as its section (:func:`harness.report.sections.section_of`)."""
    from ..report.sections import section_of

    print_section(section_of(result))


def print_templates(entries: list[dict[str, Any]]) -> None:
    table = _table("kind", "name", "hash", "contents", title="bundled template sets and shot files")
    for e in entries:
        contents = f"{len(e['files'])} templates" if e["kind"] == "templates" else e["files"][0]
        table.add_row(e["kind"], e["name"], e["hash"], contents)
    console.print(table)
    folders = sorted({str(Path(e["path"]).parent) for e in entries})
    console.print(f"in {', '.join(folders)}; use: harness grade DATA --template FOLDER --shots FILE "
                  "(a folder of your own works the same way)")


def print_batches(batches: list[dict[str, Any]]) -> None:
    table = _table("batch", "status", "requests", "done", "failed", "recorded", title="batches")
    for b in batches:
        counts = b.get("request_counts") or {}
        table.add_row(b["id"] or f"({b['input_file_id']})",
                      str(b.get("status")),
                      str(b["requests"]),
                      str(counts.get("completed", "")),
                      str(counts.get("failed", "")),
                      "yes" if b.get("recorded") else "no")
    console.print(table)
    if any(b["id"] is None for b in batches):
        console.print("(file id): uploaded, batch not yet confirmed; the next grade of this run finds or creates it")
    for b in batches:
        if b.get("note"):
            console.print(b["note"])
            break
