"""``harness plan`` and ``harness select``'s results: how many items humans should label, and which."""

from __future__ import annotations

from ..core.bounds import ASSURANCE
from .base import CI, Result
from .common import Unit
from .provenance import Stamped


class PlanSize(Result):
    """One labelling size: the interval width the pilot predicts for it.

    ``width`` is the median over simulated studies of that size, ``width_conservative`` the ``assurance``
    quantile (the pilot's own uncertainty included; an undefined study counts as an infinite width), both on the
    monotone envelope (never narrower than at a larger size), ``width_formula`` the pilot's own width
    scaled by the square root of the clusters (the textbook rule, for comparison).
    """

    n_items: int
    n_clusters: int
    width: float | None
    width_conservative: float | None
    width_formula: float | None
    #: Expected human-labelled items at each severity 0-3 on the metric's side (or label, for a plain table).
    rows_by_label: dict[str, float]
    #: Share of simulated studies where the metric was undefined (no harmful item, no disagreement possible …) or
    #: degenerate (every resample the same: no interval); they count as studies that missed the target.
    undefined: float
    #: How many simulated studies that was.
    undefined_studies: int = 0


class Plan(Stamped):
    """``plan.json``: from a pilot, the size of a human labelling round that pins a metric to a target width."""

    schema_version: int
    metric: str
    side: str | None
    threshold: int | None
    source: str
    pilot: Unit
    pilot_value: float | None
    pilot_width: float | None
    items_per_cluster: float
    graded_clusters: int | None
    target_width: float | None
    #: The smallest size whose median predicted width meets the target (None: not within the sizes tried).
    n_items: int | None
    n_clusters: int | None
    #: The same at the ``assurance`` quantile: a size that meets the target in that share of studies
    #: (default nine in ten).
    n_items_conservative: int | None
    n_clusters_conservative: int | None
    sizes: list[PlanSize]
    method: str
    studies: int
    n_boot: int
    seed: int
    warnings: list[str]
    #: The share of simulated studies the conservative size meets the target in.
    assurance: float = ASSURANCE.default
    #: The smallest size tried at which the metric is defined in at least 95 % of studies
    #: (no smaller one is recommended).
    defined_floor: int | None = None
    #: The pilot's 95 % interval (``pilot_width`` is its width) and how it was made: a calibration's own, or
    #: calibrate's bootstrap of the same pilot (one bootstrap per figure).
    pilot_ci: CI | None = None
    pilot_interval: str | None = None


class Selection(Stamped):
    """``picks.design.json``: which prompt clusters were picked for annotation, and with what probability."""

    schema_version: int
    source: str
    strategy: str
    #: The strategy asked for, when another was used (``active`` without probabilities or samples).
    requested: str | None = None
    budget_clusters: int
    unit: Unit
    n_picked_items: int
    n_picked_clusters: int
    design: str
    #: Picked clusters and all clusters per stratum (``stratified``: flagged / quiet).
    strata: dict[str, list[int]] | None = None
    inclusion_min: float
    inclusion_max: float
    seed: int
    outputs: list[str]
    notes: list[str]
