"""``harness view``: every item on one page, texts as text, filters and two runs compared (in Chromium where
present)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli.app import app
from harness.io.pairs import load_pairs, write_pairs
from tests.helpers import REPO, RUNNER, SAMPLE

HOSTILE = ['</script><script>window.pwned=1</script>', '<img src=x onerror="window.pwned=1">', "bold & <b>bold</b>"]


def _hostile_run(server, tmp_path: Path) -> tuple[Path, Path]:  # type: ignore[no-untyped-def]
    """12 sample pairs, three with hostile texts, graded on both sides; the human file is the same pairs."""
    frame = load_pairs(SAMPLE).head(12).copy()
    for k, text in enumerate(HOSTILE):
        frame.loc[k, "response"] = text
    frame.loc[len(HOSTILE), "response"] = "line\u2028sep \u202eevil"  # invisible and reordering characters
    data = write_pairs(frame, tmp_path / "data.jsonl")
    result = RUNNER.invoke(app, ["grade", str(data), "--base-url", server.base_url, "--out", str(tmp_path / "run"),
                                 "--target", "both", "--cache-dir", str(tmp_path / "cache")])
    assert result.exit_code == 0, result.output
    return tmp_path / "run", data


def _page_data(page: Path) -> dict[str, object]:
    html = page.read_text(encoding="utf-8")
    found = re.search(r'<script type="application/json" id="view-data">(.*?)</script>', html, re.S)
    assert found is not None
    return dict(json.loads(found.group(1)))


def test_view_lists_every_item_and_no_text_becomes_markup(cli: CliRunner, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run, data = _hostile_run(server, tmp_path)
    page = tmp_path / "page.html"
    result = cli.invoke(
        app, ["view", str(run), "--human", str(data), "--cache-dir", str(tmp_path / "cache"), "-o", str(page)]
    )
    assert result.exit_code == 0, result.output
    payload = _page_data(page)
    items = payload["items"]
    strings = payload["strings"]
    assert isinstance(items, list) and isinstance(strings, list)
    assert len(items) == 24  # 12 pairs x 2 sides
    html = page.read_text(encoding="utf-8")
    assert html.count("</script>") == 3  # the page's own three; no text closed one
    assert "<img" not in html and "window.pwned=1</script>" not in html
    for text in HOSTILE:
        assert text in strings  # shown verbatim (as text), not dropped
    assert "line\nsep ⟨U+202E⟩evil" in strings  # a line separator breaks the line; a bidi override is shown, not obeyed
    # the disagreements the page marks are the items where a grader label differs from the human one
    human = load_pairs(data).set_index("id")
    expected = 0
    for item in items:
        item_id, side, grader = strings[item[0]], item[2], item[5]
        row = human.loc[item_id]
        labels = [row[f"{side}_{c}"] for c in ("hate", "sexual", "violence", "self_harm")]
        expected += bool(grader and any(g != h for g, h in zip(grader, labels, strict=True)))
        assert item[11] == bool(grader and any(g != h for g, h in zip(grader, labels, strict=True)))
    said = " ".join(result.output.split())  # the summary wraps at words at 80 columns
    assert f"{expected} disagreements" in said and "24 items (24 graded), 24 raw completions" in said


def test_view_says_what_is_not_graded_and_refuses_bad_input(cli: CliRunner, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli.invoke(app, ["grade", str(SAMPLE), "--base-url", server.base_url, "--out", str(tmp_path / "run"),
                                 "--limit", "5", "--target", "prompt"])
    assert result.exit_code == 0, result.output
    labels = tmp_path / "run" / "labels.jsonl"  # as if the run had been stopped after three answers
    labels.write_text("".join(labels.read_text().splitlines(keepends=True)[:3]))
    ok = cli.invoke(app, ["view", str(tmp_path / "run")])
    assert ok.exit_code == 0, ok.output
    items = _page_data(tmp_path / "run" / "view.html")["items"]
    graded = {json.loads(line)["id"] for line in labels.read_text().splitlines()}
    strings = _page_data(tmp_path / "run" / "view.html")["strings"]
    assert isinstance(items, list) and isinstance(strings, list) and len(items) == 5
    assert [i[7] for i in items] == ["ok" if strings[i[0]] in graded else "not graded" for i in items]
    assert sorted(i[7] for i in items) == ["not graded"] * 2 + ["ok"] * 3
    assert "5 items (3 graded)" in " ".join(ok.output.split())
    missing = cli.invoke(app, ["view", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "no such run folder" in missing.output
    cache = cli.invoke(app, ["view", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "nocache")])
    assert cache.exit_code == 2 and "--cache-dir" in cache.output and not (tmp_path / "nocache").exists()
    into_folder = cli.invoke(app, ["view", str(tmp_path / "run"), "-o", str(tmp_path / "run")])
    assert into_folder.exit_code == 2 and "is a folder; give the page's file name" in into_folder.output
    others = write_pairs(load_pairs(SAMPLE).assign(id=lambda f: "other-" + f["id"]), tmp_path / "others.jsonl")
    unmatched = cli.invoke(app, ["view", str(tmp_path / "run"), "--human", str(others)])
    assert unmatched.exit_code == 2 and "no id of the human labels is an id of the run" in unmatched.output


def _need_chromium(chromium) -> None:  # type: ignore[no-untyped-def]
    """Skip without Chromium on a developer's machine; fail in CI, where .ci/run installs it (make install-browser)."""
    import os

    if chromium() is None:
        if os.environ.get("CI") or os.environ.get("HARNESS_REQUIRE_BROWSER") == "1":
            pytest.fail("no chromium on PATH; .ci/run installs it with make install-browser")
        pytest.skip("no chromium on PATH (make install-browser); the page's data and escaping are tested without it")


@pytest.mark.slow
def test_view_filters_work_in_chromium(cli: CliRunner, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(REPO / "scripts"))
    from browser import chromium  # type: ignore[import-not-found]
    from view_check import check_narrow, check_view  # type: ignore[import-not-found]

    _need_chromium(chromium)
    run, data = _hostile_run(server, tmp_path)
    page = tmp_path / "page.html"
    assert cli.invoke(app, ["view", str(run), "--human", str(data), "-o", str(page)]).exit_code == 0
    items = _page_data(page)["items"]
    assert isinstance(items, list)
    result = check_view(page, tmp_path / "view.png", search="onerror")
    assert result["problems"] == [] and result["safety"] == {"imgs": 0, "scripts": 3, "pwned": False}
    steps = {(s["control"], s["value"]): s["shown"] for s in result["steps"]}
    assert result["steps"][0]["shown"] == sum(i[11] for i in items)  # the first toggle turns it on
    assert steps[("disagree", "")] == len(items)  # the last turns it off (a dict keeps the last step)
    assert steps[("side", "response")] == sum(1 for i in items if i[11] and i[2] == "response")
    assert steps[("q", "onerror")] == 1  # the hostile text is found as text

    def error(item: list, kind: str) -> bool:  # the page's own rule, recomputed: harmful is severity >= 1
        g, h = item[5], item[6]
        if not g or not h or item[2] == "relevance":
            return False
        hit = (lambda c: h[c] is not None and g[c] is not None and h[c] >= 1 and g[c] == 0) if kind == "miss" else \
              (lambda c: h[c] is not None and g[c] is not None and g[c] >= 1 and h[c] == 0)
        return any(hit(c) for c in range(4))

    for kind in ("miss", "over"):
        assert steps[("error", kind)] == sum(1 for i in items if i[11] and i[2] == "response" and error(i, kind))
    narrow = check_narrow(page, tmp_path / "narrow.png")
    assert narrow["scroll"] <= 420 and narrow["rows"] > 0  # usable at 400 px: no sideways scrolling
    assert (tmp_path / "view.png").stat().st_size > 20_000


@pytest.mark.slow
def test_two_runs_on_one_page_marked_where_they_differ_and_sorted_in_chromium(
    cli: CliRunner, server, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(REPO / "scripts"))
    from browser import chromium  # type: ignore[import-not-found]
    from view_check import check_narrow, check_runs  # type: ignore[import-not-found]

    frame = load_pairs(SAMPLE).head(60).assign(source=lambda f: ["forum" if k % 2 else "survey" for k in range(len(f))])
    data = write_pairs(frame, tmp_path / "data.jsonl")
    for model in ("harness-baseline", "harness-small"):
        done = cli.invoke(app, ["grade", str(data), "--base-url", server.base_url, "--model", model, "--shots",
                                   str(REPO / "prompts" / "default_shots.jsonl"), "--out", str(tmp_path / model),
                                   "--cache-dir", str(tmp_path / "cache")])
        assert done.exit_code == 0, done.output
    page = tmp_path / "two.html"
    made = cli.invoke(
        app,
        [
            "view",
            str(tmp_path / "harness-baseline"),
            str(tmp_path / "harness-small"),
            "--human",
            str(data),
            "-o",
            str(page),
        ],
    )
    assert made.exit_code == 0, made.output
    view = _page_data(page)
    items, strings = view["items"], view["strings"]
    assert isinstance(items, list) and isinstance(strings, list)
    assert view["runs"] == ["harness-baseline · harness-baseline", "harness-small · harness-small"]
    assert view["meta_columns"] == ["prompt_id", "source"]
    splits = [i for i in items if i[15]]
    assert all(i[5] != i[14][0][0] for i in splits) and 0 < len(splits) < len(items)
    said = " ".join(made.output.split())
    assert f"2 runs, {len(splits):,} items where their verdicts differ" in said
    off = [[bool(i[6] and v and any(a is not None and b is not None and a != b for a, b in zip(v, i[6], strict=True)))
            for v in (i[5], i[14][0][0])] for i in items]
    # a row is marked when any run disagrees with the humans
    assert [i[11] for i in items] == [int(any(o)) for o in off]
    per_run = [sum(o[k] for o in off) for k in (0, 1)]
    assert f"harness-baseline {per_run[0]:,}, harness-small {per_run[1]:,}" in said and per_run[0] != per_run[1]
    assert [strings[i[0]] for i in items][::2] == list(frame["id"])  # file order: the input's, prompt then response
    twice = cli.invoke(app, ["view", str(tmp_path / "harness-baseline"), str(tmp_path / "harness-baseline")])
    assert twice.exit_code == 2 and "named twice" in twice.output
    _need_chromium(chromium)
    result = check_runs(page, tmp_path / "two.png")
    assert int(result["split"]["count"].split(" of ")[0]) == len(splits)
    highest = max(max(v for v in i[5] if v is not None) for i in items if i[5])
    assert max(int(v) for v in result["by_grader_desc"]["runs"][0]) == highest
    assert len(result["by_grader_desc"]["runs"]) == 2  # both graders' verdicts on the row
    assert result["by_id"]["id"] == min(strings[i[0]] for i in items)
    assert check_narrow(page, tmp_path / "two-narrow.png")["scroll"] <= 420
