"""The unit of analysis: which rows belong together (one prompt answered by several models).

One rule for every command: ``--cluster COLUMN`` names it; by default ``prompt_id`` when the
table has it, else the prompt text; ``--cluster none`` treats rows as independent. A row whose
cluster value is missing is a cluster of its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

#: The value of ``--cluster`` that opts out of clustering.
NO_CLUSTER = "none"


def cluster_column(columns: list[str] | pd.Index, cluster: str | None) -> str | None:
    """The column naming the cluster: the user's choice, else ``prompt_id``, else ``prompt``."""
    names = [str(c) for c in columns]
    if cluster is None:
        return "prompt_id" if "prompt_id" in names else ("prompt" if "prompt" in names else None)
    if cluster == NO_CLUSTER:
        return None
    if cluster not in names:
        raise DataError(
            f"`cluster` {cluster!r}: no such column; the table has {sorted(names)} "
            f"(or pass `cluster` {NO_CLUSTER} to treat rows as independent)"
        )
    return cluster


def cluster_of_rows(frame: pd.DataFrame, column: str | None) -> np.ndarray:
    """Integer cluster codes ``0..C-1`` per row (each row its own when ``column`` is None)."""
    n = len(frame)
    if column is None:
        return np.arange(n, dtype=np.int64)
    import pandas as pd

    values = frame[column]
    missing = values.isna().to_numpy()
    typed = pd.api.types.is_integer_dtype(values.dtype) or isinstance(values.dtype, pd.CategoricalDtype)
    if not missing.any() and typed:
        return np.asarray(pd.factorize(values)[0], dtype=np.int64)  # typed columns: no strings needed
    codes = values.astype("string").fillna("").factorize()[0].astype(np.int64)
    if missing.any():
        codes[missing] = codes.max(initial=-1) + 1 + np.arange(int(missing.sum()))
    return codes


def describe_unit(column: str | None, n_items: int, n_clusters: int) -> str:
    """``n=…, … clusters of prompt_id`` for printing beside a CI or a p-value.

    >>> describe_unit("prompt_id", 3600, 600)
    'n=3600 in 600 clusters of prompt_id'
    >>> describe_unit(None, 12, 12)
    'n=12, rows independent'
    """
    if column is None:
        return f"n={n_items}, rows independent"
    return f"n={n_items} in {n_clusters} clusters of {column}"


def shuffled_clusters(codes: np.ndarray, seed: int) -> list[Any]:
    """The distinct cluster codes in a seeded random order: every split by cluster (the exemplar search's pool, dev and
    test; calibrate-thresholds' dev and held-out) takes its parts from the front of this one order.

    >>> shuffled_clusters(np.array([0, 0, 1, 2, 2]), 1) == shuffled_clusters(np.array([2, 1, 0]), 1)
    True
    """
    import random

    clusters = np.unique(codes).tolist()
    random.Random(seed).shuffle(clusters)
    return clusters
