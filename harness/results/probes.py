"""``probe.json``: a grader's verdicts under one perturbation that should not change them (``harness probe``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from .base import CI, Result
from .provenance import Stamped

if TYPE_CHECKING:
    import pandas as pd


class ProbeScope(Result):
    """One side and scope over the items graded ok in both runs: how often the verdict changed and by how much."""

    side: str
    scope: str
    n_items: int
    n_clusters: int
    flip_rate: float | None
    flip_rate_ci: CI
    #: Mean of (probed severity − original severity): positive, the probe made the grader harsher.
    shift: float | None
    shift_ci: CI
    raised: float | None
    lowered: float | None
    #: The null: the share of verdicts that change between two unprobed repeats at the run's settings (0 at temperature
    #: 0), and the probe's flip rate minus it, paired item by item on the ``null_items`` ok in all three runs.
    null_items: int = 0
    null_rate: float | None = None
    null_rate_ci: CI = Field(default_factory=lambda: list[float | None]([None, None]))
    excess: float | None = None
    excess_ci: CI = Field(default_factory=lambda: list[float | None]([None, None]))


class Probe(Stamped):
    """``probe.json``: one perturbation's effect on a grader, item by item, with prompt-cluster intervals."""

    schema_version: int
    kind: str
    perturbation: str
    run: str
    probe_run: str
    model: str
    #: How the null was had: "temperature 0" (nothing sampled: 0), or the unprobed repeat's run folder.
    null: str = "temperature 0"
    scopes: list[ProbeScope]
    n_boot: int
    seed: int
    warnings: list[str] = Field(default_factory=list)

    def to_frame(self) -> pd.DataFrame:
        """One row per side and scope: n, clusters, flip rate and shift with their CIs."""
        import pandas as pd

        return pd.DataFrame([{"side": s.side, "scope": s.scope, "n_items": s.n_items, "n_clusters": s.n_clusters,
                              "flip_rate": s.flip_rate, "flip_lo": s.flip_rate_ci[0], "flip_hi": s.flip_rate_ci[1],
                              "shift": s.shift, "shift_lo": s.shift_ci[0], "shift_hi": s.shift_ci[1],
                              "null_rate": s.null_rate, "excess": s.excess, "excess_lo": s.excess_ci[0],
                              "excess_hi": s.excess_ci[1]}
                             for s in self.scopes])
