"""See the report the way a reader does: headless Chromium renders it, and the page is checked.

Run with ``make report-check`` (installs Debian's chromium if it is missing). Renders the demo's
report (or the run folder given), takes a full-page screenshot (``report.png`` beside it) and
checks the DOM Chromium built: every figure decoded and laid out, no Markdown syntax, no raw
dictionaries, every table with a note, no horizontal overflow at 1200 px. When the folder holds
``view.html`` (the demo's does), the item viewer is worked through its DOM too
(:mod:`view_check`) and screenshotted (``view.png``, ``view-disagreements.png``). Exit 1 on a failure.
"""

from __future__ import annotations

import argparse
import html
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars"]


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    sys.exit("no chromium on PATH: `apt-get install chromium` (make report-check does it)")


def check(report: Path) -> list[str]:
    browser = chromium()
    profile = tempfile.mkdtemp(prefix="harness-chromium-")
    url = report.resolve().as_uri()
    shot = report.with_name("report.png")
    subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}", "--window-size=1200,5200",
                    f"--screenshot={shot}", url],
                   check=True, capture_output=True, timeout=120)
    dom = subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
                         check=True, capture_output=True, text=True, timeout=120).stdout
    problems = []
    text = html.unescape(re.sub(r"<[^>]+>", " ", re.sub(r'src="data:[^"]+"', "", dom)))
    for bad, why in (("`", "Markdown backticks"), ("**", "Markdown bold"), ("{'", "a raw Python dict"),
                     ("|---", "a Markdown table")):
        if bad in text:
            problems.append(f"the page shows {why} ({bad!r})")
    tables = dom.count("<table")
    notes = dom.count('class="note"')
    if tables == 0 or notes < tables:
        problems.append(f"{tables} tables but {notes} notes: every table needs its definitions")
    images = re.findall(r'<img[^>]+src="data:image/png;base64,', dom)
    if not images:
        problems.append("no figure on the page")
    if shot.stat().st_size < 50_000:
        problems.append(f"the screenshot is nearly empty ({shot.stat().st_size} bytes)")
    print(f"{report}: {tables} tables, {notes} notes, {len(images)} figures; "
          f"screenshot {shot} ({shot.stat().st_size:,} bytes)")
    return problems


def _step(step: dict) -> str:
    """One filter step as ``control=value: shown`` (an emptied value read as toggled or cleared)."""
    value = step["value"] or ("toggled" if step["control"] == "disagree" else "cleared")
    return f"{step['control']}={value}: {step['shown']}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", nargs="?", help="a run folder with report.html (default: run the demo first)")
    args = parser.parse_args()
    if args.run_dir is None:
        folder = Path(tempfile.mkdtemp(prefix="harness-report-check-")) / "demo"
        subprocess.run([sys.executable, "-m", "harness", "demo", "--out", str(folder)],
                       check=True, stdout=subprocess.DEVNULL)
    else:
        folder = Path(args.run_dir)
    problems = check(folder / "report.html")
    if (folder / "view.html").exists():  # the item viewer beside the report: worked through its DOM, screenshotted
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from view_check import check_view

        result = check_view(folder / "view.html", folder / "view.png", search="kill")
        steps = ", ".join(_step(s) for s in result["steps"])
        print(f"{folder / 'view.html'}: {result['items']} items, loaded in {result['load_s']} s; {steps}; screenshots "
              f"{folder / 'view.png'} and {folder / 'view-disagreements.png'}")
        problems += result["problems"]
    for problem in problems:
        print(f"FAIL: {problem}")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
