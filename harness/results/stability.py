"""``stability.json``: how much a grader's verdicts move between repeats of the same job (``harness stability``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from .base import CI, Result
from .common import Unit
from .provenance import Stamped
from .raters import ScopeAgreement

if TYPE_CHECKING:
    import pandas as pd


class StabilityScope(Result):
    """One side and scope (``any``: each pair's highest category) over the items every repeat graded ``ok``.

    ``changed`` is the share of items whose verdict is not the same in every repeat; ``margin`` the mean share of
    repeats that agree with the item's most frequent verdict (1: unanimous); ``agreement`` the repeats read as raters
    (Krippendorff's α over all, quadratic-weighted κ for each pair of repeats), every interval resampling prompt
    clusters.
    """

    side: str
    scope: str
    n_items: int
    n_clusters: int
    changed: float | None
    changed_ci: CI
    margin: float | None
    margin_ci: CI
    agreement: ScopeAgreement


class Stability(Stamped):
    """``stability.json``: test–retest agreement of one grader's repeats (``grade --repeats K``)."""

    schema_version: int
    repeats: int
    runs: list[str]
    seeds: list[int | None]
    model: str
    temperature: float | None
    threshold: int
    unit: Unit
    scopes: list[StabilityScope]
    #: Per repeat: the prompt side's harmful share minus the response side's
    #: (the paper's asymmetry, as the grader sees it).
    asymmetry: list[float | None]
    asymmetry_range: float | None
    #: Per repeat: the answers that came from the completion cache (earlier answers to the same requests).
    from_cache: list[int] = Field(default_factory=list)
    n_boot: int
    seed: int
    warnings: list[str] = Field(default_factory=list)

    def to_frame(self) -> pd.DataFrame:
        """One row per side and scope: items, clusters, changed share, margin, α and their CIs."""
        import pandas as pd

        return pd.DataFrame([{"side": s.side, "scope": s.scope, "n_items": s.n_items, "n_clusters": s.n_clusters,
                              "changed": s.changed, "changed_lo": s.changed_ci[0], "changed_hi": s.changed_ci[1],
                              "margin": s.margin, "alpha": s.agreement.alpha, "alpha_lo": s.agreement.alpha_ci[0],
                              "alpha_hi": s.agreement.alpha_ci[1]} for s in self.scopes])
