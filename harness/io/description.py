"""``harness data describe``: what a pairs table holds."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..core.constants import LABEL_COLUMNS, SEVERITIES
from .pairs import REQUIRED, TEXT_COLUMNS

if TYPE_CHECKING:
    import pandas as pd


def describe(frame: pd.DataFrame) -> dict[str, Any]:
    """Row count, label coverage and severity distribution per label column, metadata summary."""
    rows = len(frame)
    labels: dict[str, Any] = {}
    for column in (*LABEL_COLUMNS, "relevance"):
        if column not in frame.columns:
            continue
        series = frame[column]
        known = int(series.notna().sum())
        levels = (1, 2, 3) if column == "relevance" else SEVERITIES
        counts = series.value_counts(dropna=True)
        labels[column] = {
            "known": known,
            "coverage": known / rows if rows else 0.0,
            "distribution": {int(level): int(counts.get(level, 0)) for level in levels},
        }
    metadata = {}
    for column in frame.columns:
        if column in REQUIRED or column in TEXT_COLUMNS or column in labels:
            continue
        values = frame[column]
        metadata[column] = {
            "unique": int(values.nunique(dropna=True)),
            "missing": int(values.isna().sum()),
            "top": {str(k): int(v) for k, v in values.value_counts().head(6).items()},
        }
    responses = int(frame["response"].notna().sum()) if "response" in frame.columns else 0
    return {"rows": rows, "with_response": responses, "labels": labels, "metadata": metadata}
