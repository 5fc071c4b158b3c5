"""``harness.show(result)``: the report's section in a notebook cell."""

from __future__ import annotations

from pathlib import Path


def test_show_puts_the_reports_section_in_a_notebook(tmp_path: Path) -> None:
    import harness

    table = tmp_path / "t.csv"
    table.write_text("id,human,<b>g</b>\n" + "".join(f"{k},{k % 4},{(k + (k % 5 == 0)) % 4}\n" for k in range(40)))
    result = harness.calibrate_table(harness.load_pairs(table, require=("id",)), "human", "<b>g</b>", n_boot=0)
    shown = harness.show(result)
    html = shown._repr_html_()
    assert html.count("<table>") == 2 and "<caption>Agreement</caption>" in html and 'class="num"' in html
    assert "human against &lt;b&gt;g&lt;/b&gt;" in html and "<b>g</b>" not in html  # names are text, never markup
    assert "data:image/png" not in html  # a table agreement has no figure
    assert "human against <b>g</b>" in repr(shown) and "Agreement: metric, value, 95% CI (7 rows)" in repr(shown)
