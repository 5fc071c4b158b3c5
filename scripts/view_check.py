"""Use a ``harness view`` page the way a reader does, in headless Chromium, and report what the DOM shows.

``python scripts/view_check.py RUN/view.html [--shot view.png]``: loads the page from disk,
reads the item count, then works the filters through the DOM as a click or a keystroke would
(disagreements only, side, category and severity, status, search, paging), screenshots the
first page and checks that no text became markup (no ``<img>``, only the page's own three
scripts, no global a hostile text could set). Prints one line per step; exit 1 on a failure.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser import Browser

READY = "document.body && document.body.dataset.ready === '1'"
STATE = ("({count: document.getElementById('count').textContent, "
         "rows: document.getElementById('rows').children.length, "
         "page: document.getElementById('page').textContent})")


def _set(browser: Browser, control: str, value: str) -> dict[str, Any]:
    """Change one control as a user would (the page listens to change / input events) and return the state after."""
    browser.evaluate(f"(() => {{ const c = document.getElementById({json.dumps(control)}); "
                     f"if (c.type === 'checkbox') {{ c.click(); }} else {{ c.value = {json.dumps(value)}; "
                     f"c.dispatchEvent(new Event(c.tagName === 'INPUT' ? 'input' : 'change')); }} }})()")
    if control == "q":
        time.sleep(0.4)  # the search waits for typing to pause
    return dict(browser.evaluate(STATE))


def shown(state: dict[str, Any]) -> int:
    """The number of matching items the page says it shows ("1,234 of 5,000 items")."""
    return int(state["count"].split(" of ")[0].replace(",", ""))


def check_view(page: Path, shot: Path | None = None, *, search: str | None = None) -> dict[str, Any]:
    """Every step's state, timings and the safety counts; ``problems`` lists what failed."""
    out: dict[str, Any] = {"problems": []}
    with Browser(1400, 1000) as browser:
        started = time.perf_counter()
        browser.open(page, ready=READY)
        out["load_s"] = round(time.perf_counter() - started, 3)
        out["initial"] = dict(browser.evaluate(STATE))
        out["items"] = browser.evaluate("JSON.parse(document.getElementById('view-data').textContent).items.length")
        out["safety"] = browser.evaluate("({imgs: document.images.length, scripts: document.scripts.length, "
                                         "pwned: typeof window.pwned !== 'undefined'})")
        if shot is not None:
            browser.screenshot(shot)
        steps = [("disagree", ""), ("side", "response"), ("category", "0"), ("severity", "0"),
                 ("category", ""), ("severity", ""), ("error", "miss"), ("error", "over"), ("error", ""),
                 ("side", ""), ("disagree", "")]
        if search:
            steps += [("q", search), ("q", "")]
        out["steps"] = []
        for control, value in steps:
            started = time.perf_counter()
            state = _set(browser, control, value)
            out["steps"].append({"control": control, "value": value, "shown": shown(state), "rows": state["rows"],
                                 "s": round(time.perf_counter() - started, 3)})
        next_page = "(() => { document.getElementById('next').click(); return " + STATE + "; })()"
        out["after_next"] = dict(browser.evaluate(next_page))
        if shot is not None:
            _set(browser, "disagree", "")
            browser.screenshot(shot.with_name(shot.stem + "-disagreements.png"))
    safety = out["safety"]
    if safety["imgs"] or safety["scripts"] != 3 or safety["pwned"]:
        out["problems"].append(f"text became markup: {safety}")
    if shown(out["initial"]) != out["items"]:
        out["problems"].append(f"the page says {out['initial']['count']!r} but holds {out['items']} items")
    if out["steps"][-1 - (2 if search else 0)]["shown"] != out["items"]:
        out["problems"].append("clearing the filters did not bring every item back")
    return out


def check_narrow(page: Path, shot: Path | None = None, width: int = 400) -> dict[str, Any]:
    """The page in a ``width``-pixel window: how wide it lays out (no sideways scrolling wanted) and how many rows
    show."""
    with Browser(width, 900) as browser:
        browser.open(page, ready=READY)
        if shot is not None:
            browser.screenshot(shot)
        return dict(browser.evaluate("({scroll: document.documentElement.scrollWidth, rows: "
                                     "document.getElementById('rows').children.length})"))


def check_runs(page: Path, shot: Path | None = None) -> dict[str, Any]:
    """A page of several runs: how many items the "graders disagree" filter shows, then the list sorted by clicking
    headers (grader severity, highest first; id), read back from the rows a reader sees."""
    first = ("(() => { const r = document.querySelector('#rows tr'); "
             "return {id: r.querySelector('td div').textContent, "
             "runs: Array.from(r.querySelectorAll('td:nth-child(4) .run')).map((line) => "
             "Array.from(line.querySelectorAll('.sev')).map((s) => s.textContent))}; })()")
    click = "(() => { document.querySelector('th[data-sort=\"%s\"]').click(); return " + STATE + "; })()"
    out: dict[str, Any] = {}
    with Browser(1280, 1000) as browser:
        browser.open(page, ready=READY)
        out["initial"] = dict(browser.evaluate(STATE))
        out["split"] = dict(_set(browser, "split", ""))
        if shot is not None:
            browser.screenshot(shot)
        _set(browser, "split", "")
        browser.evaluate(click % "grader")
        browser.evaluate(click % "grader")  # a second click: highest first
        out["by_grader_desc"] = dict(browser.evaluate(first))
        browser.evaluate(click % "id")
        out["by_id"] = dict(browser.evaluate(first))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", type=Path)
    parser.add_argument("--shot", type=Path, default=None)
    parser.add_argument("--search", default=None)
    args = parser.parse_args()
    result = check_view(args.page, args.shot, search=args.search)
    print(json.dumps(result, indent=1))
    sys.exit(1 if result["problems"] else 0)


if __name__ == "__main__":
    main()
