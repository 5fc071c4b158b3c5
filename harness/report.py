"""``report``: a run, its calibration, a comparison and an analysis as Markdown and HTML.

The HTML file is self-contained: every matplotlib figure is embedded as a base64 PNG.
Inputs are the JSON files the other stages write; the report never recomputes a metric.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

from .atomic import atomic_path, ensure_folder
from .errors import RunError

CATEGORY_ORDER = ("hate", "sexual", "violence", "self_harm")


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def _heatmap(matrix: list[list[int]], title: str, xlabel: str, ylabel: str, ticks: list[Any]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3.4, 3.0))
    ax.imshow(matrix, cmap="Blues")
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            ax.text(j, i, str(value), ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(ticks)), [str(t) for t in ticks])
    ax.set_yticks(range(len(ticks)), [str(t) for t in ticks])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    return _png(fig)


def _rates_figure(analysis: dict[str, Any]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    settings = [*analysis["groups"].items(), ("pooled", analysis["pooled"])]
    kinds = ("reduction", "preservation", "escalation")
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(settings)), 3.2))
    width = 0.26
    for k, kind in enumerate(kinds):
        rates = [s[kind]["rate"] or 0.0 for _, s in settings]
        lows = [max(0.0, r - (s[kind]["ci"][0] or r)) for r, (_, s) in zip(rates, settings, strict=True)]
        highs = [max(0.0, (s[kind]["ci"][1] or r) - r) for r, (_, s) in zip(rates, settings, strict=True)]
        ax.bar(np.arange(len(settings)) + (k - 1) * width, rates, width, yerr=[lows, highs], capsize=2, label=kind)
    ax.set_xticks(range(len(settings)), [name for name, _ in settings], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("share of pairs")
    ax.set_title("transitions by group (95% Wilson CI)", fontsize=9)
    ax.legend(fontsize=7)
    return _png(fig)


def _kappa_figure(comparison: dict[str, Any]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = list(comparison["runs"])
    fig, ax = plt.subplots(figsize=(max(4.0, 1.4 * len(names)), 3.0))
    for k, side in enumerate(("prompt", "response")):
        values = [comparison["runs"][n].get(f"{side}_kappa_quadratic") or 0.0 for n in names]
        ax.bar(np.arange(len(names)) + (k - 0.5) * 0.35, values, 0.35, label=side)
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("quadratic kappa vs human")
    ax.set_title("agreement by grader", fontsize=9)
    ax.legend(fontsize=7)
    return _png(fig)


def _load(path: Path | None) -> dict[str, Any] | None:
    if path is None or not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise RunError(f"{path}: unreadable JSON: {exc or 'nested too deeply'}") from None
    return data if isinstance(data, dict) else None


def _cell(value: Any) -> str:
    r"""Text safe inside a Markdown table cell: ``|`` escaped, line breaks as spaces.

    >>> _cell("a|b\nc")
    'a\\|b c'
    """
    return " ".join(str(value).replace("|", "\\|").split())


def _pct(value: Any) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _num(value: Any) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _ci(ci: Any) -> str:
    return "n/a" if not ci or ci[0] is None or ci[1] is None else f"{ci[0]:.3f} to {ci[1]:.3f}"


def render_report(
    run_dir: str | Path | None = None,
    *,
    analysis: str | Path | None = None,
    calibration: str | Path | None = None,
    comparison: str | Path | None = None,
    flips: str | Path | None = None,
    out_dir: str | Path,
) -> dict[str, Path]:
    """Write ``report.md`` and ``report.html`` from whichever inputs are given or found in ``run_dir``."""
    folder = Path(run_dir) if run_dir is not None else None
    if folder is not None and not folder.is_dir():
        raise RunError(f"{folder}: no such run folder")
    for flag, given in (("--analysis", analysis), ("--calibration", calibration), ("--comparison", comparison), ("--flips", flips)):
        if given is not None and not Path(given).is_file():
            raise RunError(f"{flag} {given}: no such file")
    manifest = _load(folder / "manifest.json") if folder else None
    analysis_data = _load(Path(analysis) if analysis else (folder / "analysis.json" if folder else None))
    calibration_data = _load(Path(calibration) if calibration else (folder / "calibration.json" if folder else None))
    comparison_data = _load(Path(comparison) if comparison else None)
    flips_data = _load(Path(flips) if flips else (folder / "flips.json" if folder else None))
    if not any((manifest, analysis_data, calibration_data, comparison_data, flips_data)):
        raise RunError("nothing to report: give a run folder or --analysis/--calibration/--comparison/--flips files")
    md: list[str] = ["# harness report", ""]
    parts: list[str] = []
    figures: list[tuple[str, str]] = []

    if manifest:
        counts = manifest.get("counts", {})
        md += ["## Run", "", f"- model `{manifest.get('model')}` at `{manifest.get('endpoint')}`, template `{manifest.get('template_hash')}`, shots `{manifest.get('shots_hash')}`",
               f"- items: {manifest.get('items')} ({', '.join(f'{k} {v}' for k, v in counts.items())}), cache hits {manifest.get('cache_hits')}",
               f"- billed tokens: {manifest.get('tokens', {})}", ""]
    if calibration_data:
        unit = calibration_data.get("unit", {})
        md += ["## Calibration against human labels", "",
               f"{calibration_data.get('n_joined')} pairs, {unit.get('n_clusters')} clusters of `{unit.get('cluster')}`; "
               "95% CIs resample clusters.", "",
               "| side | items | ok | unparsed | refused | failed | no text | not graded |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for side, report in calibration_data.get("targets", {}).items():
            c = report.get("counts", {})
            md.append(f"| {side} | " + " | ".join(str(c.get(k, 0)) for k in ("items", "ok", "unparsed", "refused", "failed", "missing_text", "not_graded")) + " |")
        md += ["", "| side | scope | n | clusters | quadratic κ | 95% CI | recall | 95% CI | FPR |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
        for side, report in calibration_data.get("targets", {}).items():
            for scope, m in [("pooled", report["pooled"]), ("max", report["max"]), *report["categories"].items()]:
                det = m.get("detection", {})
                ci = m.get("ci", {})
                md.append(f"| {side} | {scope} | {m['n']} | {m.get('n_clusters')} | {_num(m.get('kappa_quadratic'))} | {_ci(ci.get('kappa_quadratic'))} | "
                          f"{_num(det.get('recall'))} | {_ci(ci.get('recall'))} | {_num(det.get('false_positive_rate'))} |")
                if scope in CATEGORY_ORDER:
                    figures.append((f"Confusion, {side}, {scope}", _heatmap(m["confusion"], f"{side}: {scope}", "grader", "human", m["labels"])))
        asym = calibration_data.get("asymmetry")
        if asym:
            gap = asym["overall"]
            md += ["", f"Prompt/response recall gap: {_num(gap['recall_gap'])} (95% CI {_ci(gap['recall_gap_ci'])}, "
                       f"{unit.get('n_clusters')} clusters)"]
        md.append("")
    if comparison_data:
        unit = comparison_data.get("unit", {})
        md += ["## Graders compared", "", f"{unit.get('n_items')} pairs in {unit.get('n_clusters')} clusters of `{unit.get('cluster')}`.", "",
               "| run | model | prompt qκ | 95% CI | response qκ | 95% CI | recall gap | not ok |", "|---|---|---:|---:|---:|---:|---:|---:|"]
        for name, row in comparison_data["runs"].items():
            md.append(f"| {_cell(name)} | {_cell(row['model'])} | {_num(row.get('prompt_kappa_quadratic'))} | {_ci(row.get('prompt_kappa_quadratic_ci'))} | "
                      f"{_num(row.get('response_kappa_quadratic'))} | {_ci(row.get('response_kappa_quadratic_ci'))} | {_num(row.get('recall_gap'))} | {_pct(row['not_ok_rate'])} |")
        md += ["", "| A | B | side | qκ A−B | 95% CI | n | clusters |", "|---|---|---|---:|---:|---:|---:|"]
        for d in comparison_data.get("kappa_diffs", []):
            md.append(f"| {_cell(d['a'])} | {_cell(d['b'])} | {d['side']} | {_num(d['diff'])} | {_ci(d['ci'])} | {d['n_items']} | {d['n_clusters']} |")
        md += ["", "| A | B | side | scope | n | clusters | A only | B only | p | Holm p |", "|---|---|---|---|---:|---:|---:|---:|---:|---:|"]
        for t in comparison_data.get("tests", []):
            md.append(f"| {_cell(t['a'])} | {_cell(t['b'])} | {t['side']} | {t['scope']} | {t['n_items']} | {t['n_clusters']} | {t['a_only']} | {t['b_only']} | "
                      f"{t['p_value']:.3g} | {t['p_holm']:.3g} |")
        md += ["", f"Tests: {'; '.join(sorted({t['method'] for t in comparison_data.get('tests', [])}))}. {comparison_data.get('family', '')}.", ""]
        figures.append(("Agreement by grader", _kappa_figure(comparison_data)))
    if flips_data:
        lost = flips_data["answers_lost"]
        md += ["## Grader injection", "",
               f"Clean run `{flips_data['clean_run']}` vs injected run `{flips_data['injected_run']}`: "
               f"{flips_data['items_paired_ok']} of {flips_data['items_shared']} items graded ok in both; "
               f"answers lost to the injection {lost['k']}/{lost['n']} ({_pct(lost['rate'])}).", "",
               "| side | category | items | lowered | raised | detections lost | 95% CI | gained | McNemar p |",
               "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
        for side, block in flips_data["sides"].items():
            for category, row in block["categories"].items():
                det = row["detection_lost"]
                ci = det["ci"]
                md.append(f"| {side} | {category} | {row['n']} | {_pct(row['lowered']['rate'])} | {_pct(row['raised']['rate'])} | "
                          f"{det['k']}/{det['n']} ({_pct(det['rate'])}) | {_pct(ci[0])} to {_pct(ci[1])} | {row['detection_gained']} | {row['mcnemar_p']:.3g} |")
        md.append("")
    if analysis_data:
        md += ["## Paired transitions", "", "| setting | N | clusters | reduction | preservation | escalation | escalation 95% CI | cond. reduction |",
               "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for name, s in [*analysis_data["groups"].items(), ("pooled", analysis_data["pooled"])]:
            esc_ci = s["escalation"]["ci"]
            md.append(f"| {_cell(name)} | {s['n']} | {s.get('unit', {}).get('n_clusters', 'n/a')} | {_pct(s['reduction']['rate'])} | {_pct(s['preservation']['rate'])} | "
                      f"{_pct(s['escalation']['rate'])} | {_pct(esc_ci[0])} to {_pct(esc_ci[1])} | {_pct(s['conditional_reduction']['rate'])} |")
        corrected = analysis_data.get("corrected")
        if corrected:
            md += ["", f"Bias-corrected with {corrected['n_calibration']} calibration pairs ({corrected['n_calibration_clusters']} clusters):", "",
                   "| share | raw | 95% CI | corrected | 95% CI |", "|---|---:|---:|---:|---:|"]
            for key in ("reduction", "preservation", "escalation", "prompt_harm", "response_harm"):
                rc, cc = corrected["raw_ci"][key], corrected["corrected_ci"][key]
                md.append(f"| {key} | {_pct(corrected['raw'][key])} | {_pct(rc[0])} to {_pct(rc[1])} | {_pct(corrected['corrected'][key])} | {_pct(cc[0])} to {_pct(cc[1])} |")
            md += [f"- warning: {w}" for w in corrected["warnings"]]
        md += ["", "| category | harmful prompts | persistence | reduction | drift count |", "|---|---:|---:|---:|---:|"]
        for category, c in analysis_data["pooled"]["categories"].items():
            md.append(f"| {category} | {c['harmful_prompts']} | {_pct(c['persistence']['rate'])} | {_pct(c['reduction']['rate'])} | {c['drift_count']} |")
        mech = analysis_data["pooled"]["escalation_mechanism"]
        md += ["", f"Escalations: {mech['unsolicited_elaboration']} unsolicited elaboration, {mech['compliance_escalation']} compliance escalation.", ""]
        figures.append(("Transition matrix (pooled)", _heatmap(analysis_data["pooled"]["transition_matrix"], "prompt → response max severity", "response", "prompt", [0, 1, 2, 3])))
        figures.append(("Transitions by group", _rates_figure(analysis_data)))

    out = Path(out_dir)
    ensure_folder(out, flag="--out")
    markdown = "\n".join(md) + "\n"
    for title, png in figures:
        parts.append(f'<figure><img alt="{html.escape(title)}" src="data:image/png;base64,{png}"><figcaption>{html.escape(title)}</figcaption></figure>')
    body = _markdown_to_html(markdown)
    page = ("<!doctype html><html><head><meta charset='utf-8'><title>harness report</title><style>"
            "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
            "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}"
            "td:first-child,th:first-child{text-align:left}figure{display:inline-block;margin:.5em}"
            "</style></head><body>" + body + "<h2>Figures</h2>" + "".join(parts) + "</body></html>")
    paths = {"markdown": out / "report.md", "html": out / "report.html"}
    for key, text in (("markdown", markdown), ("html", page)):
        with atomic_path(paths[key]) as tmp:
            tmp.write_text(text, encoding="utf-8")
    return paths


def _markdown_to_html(markdown: str) -> str:
    """Just enough Markdown for our own report: headings, bullet lists, pipe tables, paragraphs."""
    out: list[str] = []
    rows: list[list[str]] = []

    def flush_table() -> None:
        if rows:
            head, *body = rows
            out.append("<table><tr>" + "".join(f"<th>{c}</th>" for c in head) + "</tr>")
            out.extend("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in body)
            out.append("</table>")
            rows.clear()

    for line in markdown.splitlines():
        if line.startswith("|"):
            cells = [html.escape(c.strip()) for c in line.strip("|").split("|")]
            if not all(set(c) <= set("-:") for c in cells):
                rows.append(cells)
            continue
        flush_table()
        if line.startswith("## "):
            out.append(f"<h2>{html.escape(line[3:])}</h2>")
        elif line.startswith("# "):
            out.append(f"<h1>{html.escape(line[2:])}</h1>")
        elif line.startswith("- "):
            out.append(f"<p>• {html.escape(line[2:])}</p>")
        elif line.strip():
            out.append(f"<p>{html.escape(line)}</p>")
    flush_table()
    return "\n".join(out)
