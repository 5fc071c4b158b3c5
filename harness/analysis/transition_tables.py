"""The transition analysis as files: ``analysis.json`` and one flat table (CSV) per part of it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..results.analysis import Analysis
from ..results.common import Proportion
from .transitions import KINDS

if TYPE_CHECKING:
    import pandas as pd


def analysis_tables(result: Analysis) -> dict[str, pd.DataFrame]:
    """The analysis as flat tables (one CSV each): transitions, categories, comparison, cases."""
    import pandas as pd

    settings = [("pooled", result.pooled), *result.groups.items()]
    transitions = []
    categories = []
    matrices = []
    for name, stats in settings:
        row: dict[str, Any] = {"group": name, "n": stats.n, "harmful_prompts": stats.harmful_prompts}
        for metric in (*KINDS, "conditional_reduction", "response_harm", "harmful_prompt_compliance", "benign_drift"):
            record: Proportion = getattr(stats, metric)
            row[metric] = record.rate
            row[f"{metric}_ci_low"], row[f"{metric}_ci_high"] = record.ci
        row.update({f"escalations_{k}": v for k, v in stats.escalation_mechanism.items()})
        row.update({f"escalations_landing_{k}": v for k, v in stats.escalation_by_landing_severity.items()})
        transitions.append(row)
        for category, cat in stats.categories.items():
            categories.append({
                "group": name, "category": category, "harmful_prompts": cat.harmful_prompts,
                "harmful_responses_from_harmful_prompts": cat.harmful_responses_from_harmful_prompts,
                "persistence": cat.persistence.rate, "reduction": cat.reduction.rate,
                "drift_count": cat.drift_count, "drift_up": cat.drift_up.rate,
                "drift_share": cat.drift_share.rate,
            })
        for p_level, counts in enumerate(stats.transition_matrix):
            matrices.append(
                {"group": name, "prompt_severity": p_level, **{f"response_{r}": c for r, c in enumerate(counts)}}
            )
    tables = {
        "transitions": pd.DataFrame(transitions),
        "categories": pd.DataFrame(categories),
        "transition_matrix": pd.DataFrame(matrices),
        "escalation_cases": pd.DataFrame([case.to_json() for case in result.escalation_cases]),
    }
    if result.comparison:
        tables["comparison"] = pd.DataFrame(
            [{"metric": metric, **row.to_json()} for metric, rows in result.comparison.metrics.items() for row in rows]
        )
    return tables


def save_analysis(result: Analysis, out_dir: str | Path) -> list[Path]:
    """Write ``analysis.json`` and one CSV per table into ``out_dir`` (atomically per file)."""
    from ..core.atomic import write_csv_atomic

    folder = Path(out_dir)
    written = [result.write(folder / "analysis.json")]
    written += [
        write_csv_atomic(folder / f"analysis_{name}.csv", table) for name, table in analysis_tables(result).items()
    ]
    return written
