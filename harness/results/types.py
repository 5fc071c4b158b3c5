"""Typed results: what every stage writes, as frozen dataclasses the renderers and the report read.

The library writes each result as JSON (with ``schema_version``); ``Type.from_json(data)``
reads it back strictly: a missing field is a :class:`~harness.errors.ResultError` naming its
path (``analysis.pooled.escalation.rate``), so a field renamed on one side fails loudly, and
mypy checks every access the renderers make. Unknown extra fields are ignored (a newer writer
may add some). ``to_json()`` gives the plain JSON value back.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar, Union

from ..core.errors import ResultError

if TYPE_CHECKING:
    import pandas as pd

T = TypeVar("T", bound="Result")
CI = list[float | None]


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _convert(kind: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(kind)
    if origin in (Union, types.UnionType):
        options = [k for k in typing.get_args(kind) if k is not type(None)]
        if value is None:
            if len(options) < len(typing.get_args(kind)):
                return None
            raise ResultError(f"{path}: is null; expected a value")
        return _convert(options[0], value, path)
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        if not isinstance(value, dict):
            raise ResultError(f"{path}: expected an object, got {type(value).__name__}")
        return _build(kind, value, path)
    if origin is list:
        if not isinstance(value, list):
            raise ResultError(f"{path}: expected a list, got {type(value).__name__}")
        (item,) = typing.get_args(kind) or (Any,)
        return [_convert(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ResultError(f"{path}: expected an object, got {type(value).__name__}")
        _, item = typing.get_args(kind) or (str, Any)
        return {k: _convert(item, v, f"{path}.{k}") for k, v in value.items()}
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind in (int, float, str, bool) and not isinstance(value, kind):
        raise ResultError(f"{path}: expected {kind.__name__}, got {type(value).__name__} {value!r}")
    return value


def _build(cls: type, data: dict[str, Any], path: str) -> Any:
    values = {}
    for item in dataclasses.fields(cls):
        where = f"{path}.{item.name}"
        if item.name in data:
            values[item.name] = _convert(_hints(cls)[item.name], data[item.name], where)
        elif item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING:
            raise ResultError(f"{where}: missing; the result was written by another version of harness, or changed by hand")
    return cls(**values)


class Result:
    """Shared reading and writing of a typed result."""

    @classmethod
    def from_json(cls: type[T], data: Any, *, name: str | None = None) -> T:
        """Read a result strictly (see the module docstring)."""
        if not isinstance(data, dict):
            raise ResultError(f"{name or cls.__name__}: expected a JSON object")
        result: T = _build(cls, data, name or cls.__name__.lower())
        return result

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload, no-any-return]


# ----------------------------------------------------------------------------- shared pieces


@dataclass(frozen=True)
class Proportion(Result):
    k: int
    n: int
    rate: float | None
    ci: CI


@dataclass(frozen=True)
class Unit(Result):
    cluster: str | None
    n_items: int
    n_clusters: int


# ----------------------------------------------------------------------------- calibration


@dataclass(frozen=True)
class Detection(Result):
    tp: int
    fp: int
    fn: int
    tn: int
    precision: float | None
    recall: float | None
    f1: float | None
    false_positive_rate: float | None
    prevalence_gold: float | None
    prevalence_pred: float | None


@dataclass(frozen=True)
class Agreement(Result):
    n: int
    confusion: list[list[int]]
    accuracy: float | None
    kappa: float | None
    macro_f1: float | None
    labels: list[Any]
    ordinal: bool
    threshold: Any
    left_out: dict[str, int]
    n_items: int
    n_clusters: int
    cluster: str | None
    notes: list[str]
    ci: dict[str, CI]
    ci_method: str | None
    kappa_linear: float | None = None
    kappa_quadratic: float | None = None
    detection: Detection | None = None


@dataclass(frozen=True)
class TableAgreement(Agreement):
    gold: str = ""
    pred: str = ""
    n_rows: int = 0


@dataclass(frozen=True)
class SideReport(Result):
    categories: dict[str, Agreement]
    pooled: Agreement
    max: Agreement
    counts: dict[str, int]

    def scopes(self) -> list[tuple[str, Agreement]]:
        """pooled, max, then each category, in the order tables show them."""
        return [("pooled", self.pooled), ("max", self.max), *self.categories.items()]


@dataclass(frozen=True)
class Asymmetry(Result):
    prompt_recall: float | None
    response_recall: float | None
    recall_gap: float | None
    recall_gap_ci: CI
    prompt_kappa_quadratic: float | None
    response_kappa_quadratic: float | None
    kappa_gap: float | None
    kappa_gap_ci: CI


@dataclass(frozen=True)
class Calibration(Result):
    schema_version: int
    run: str
    model: str | None
    n_joined: int
    threshold: int
    unit: Unit
    n_boot: int
    seed: int
    targets: dict[str, SideReport]
    asymmetry: dict[str, Asymmetry] | None = None

    def to_frame(self) -> pd.DataFrame:
        """One row per side and scope: n, clusters, κ (plain, quadratic) with CIs, recall, FPR."""
        import pandas as pd

        rows = []
        for side, report in self.targets.items():
            for scope, m in report.scopes():
                low, high = m.ci.get("kappa_quadratic", [None, None])
                rows.append({"side": side, "scope": scope, "n": m.n, "n_clusters": m.n_clusters, "kappa": m.kappa,
                             "kappa_quadratic": m.kappa_quadratic, "kappa_quadratic_ci_low": low, "kappa_quadratic_ci_high": high,
                             "recall": m.detection.recall if m.detection else None,
                             "false_positive_rate": m.detection.false_positive_rate if m.detection else None})
        return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- comparison


@dataclass(frozen=True)
class SideScore(Result):
    kappa_quadratic: float | None
    kappa_quadratic_ci: CI
    recall: float | None
    recall_ci: CI
    fpr: float | None


@dataclass(frozen=True)
class RunScore(Result):
    model: str | None
    template_hash: str | None
    shots_hash: str | None
    not_ok_rate: float | None
    billed_tokens: int
    counts: dict[str, dict[str, int]]
    sides: dict[str, SideScore]
    cost: float | None = None
    items_graded: int = 0
    recall_gap: float | None = None
    recall_gap_ci: CI = field(default_factory=lambda: [None, None])


@dataclass(frozen=True)
class PairTest(Result):
    a: str
    b: str
    side: str
    scope: str
    n_items: int
    n_clusters: int
    a_only: int
    b_only: int
    discordant_clusters: int
    p_value: float
    method: str
    p_holm: float


@dataclass(frozen=True)
class KappaDiff(Result):
    a: str
    b: str
    side: str
    n_items: int
    n_clusters: int
    kappa_quadratic_a: float | None
    kappa_quadratic_b: float | None
    diff: float | None
    ci: CI


@dataclass(frozen=True)
class Comparison(Result):
    schema_version: int
    threshold: int
    unit: Unit
    runs: dict[str, RunScore]
    tests: list[PairTest]
    kappa_diffs: list[KappaDiff]
    family: str
    n_boot: int
    seed: int

    def to_frame(self) -> pd.DataFrame:
        """One row per paired test (run pair, side, scope) with n, clusters, p and Holm p."""
        import pandas as pd

        return pd.DataFrame([t.to_json() for t in self.tests])


# ----------------------------------------------------------------------------- transitions


@dataclass(frozen=True)
class CategoryStats(Result):
    harmful_prompts: int
    harmful_responses_from_harmful_prompts: int
    persistence: Proportion
    reduction: Proportion
    drift_count: int
    drift_up: Proportion
    drift_share: Proportion
    transitions: dict[str, Proportion]


@dataclass(frozen=True)
class RelevanceTable(Result):
    n: int
    counts: dict[str, int]
    mean: float | None
    share_relevance_3: float | None


@dataclass(frozen=True)
class Relevance(Result):
    n_known: int
    by_transition: dict[str, RelevanceTable]
    by_response_severity: dict[str, RelevanceTable]


@dataclass(frozen=True)
class SettingUnit(Unit):
    ci_method: str = "wilson"
    bootstrap_ci: dict[str, CI] = field(default_factory=dict)


@dataclass(frozen=True)
class TransitionStats(Result):
    n: int
    reduction: Proportion
    preservation: Proportion
    escalation: Proportion
    harmful_prompts: int
    conditional_reduction: Proportion
    response_harm: Proportion
    harmful_prompt_compliance: Proportion
    benign_drift: Proportion
    transition_matrix: list[list[int]]
    escalation_mechanism: dict[str, int]
    escalation_by_landing_severity: dict[str, int]
    compliance_escalation_by_landing_severity: dict[str, int]
    categories: dict[str, CategoryStats]
    unit: SettingUnit
    relevance: Relevance | None = None


@dataclass(frozen=True)
class MatchedTest(Result):
    a: str
    b: str
    n_shared: int
    n_clusters: int
    a_only: int
    b_only: int
    both: int
    neither: int
    a_rate: float | None
    b_rate: float | None
    p_exact: float
    method: str
    p_holm: float


@dataclass(frozen=True)
class GroupComparison(Result):
    reference: str | None
    matched_on: str
    metrics: dict[str, list[MatchedTest]]


@dataclass(frozen=True)
class ClusterBootstrap(Result):
    unit: str
    n_clusters: int
    n_boot: int
    seed: int
    ci: dict[str, CI]


@dataclass(frozen=True)
class Correction(Result):
    n_graded: int
    n_graded_clusters: int
    n_calibration: int
    n_calibration_clusters: int
    calibration_model: str | None
    confusion_prompt: list[list[int]]
    confusion_response: list[list[int]]
    raw: dict[str, float]
    corrected: dict[str, float]
    raw_ci: dict[str, CI]
    corrected_ci: dict[str, CI]
    n_boot: int
    method: str
    assumptions: list[str]
    warnings: list[str]


@dataclass(frozen=True)
class Analysis(Result):
    schema_version: int
    n_pairs: int
    n_analyzed: int
    n_excluded_incomplete: int
    excluded: dict[str, dict[str, int]]
    by: str | None
    cluster: str | None
    pooled: TransitionStats
    groups: dict[str, TransitionStats]
    cluster_bootstrap: ClusterBootstrap
    escalation_cases_truncated: bool
    comparison: GroupComparison | None = None
    corrected: Correction | None = None

    def to_frame(self) -> pd.DataFrame:
        """One row per setting (groups, pooled): the transition rates with their CIs and units."""
        import pandas as pd

        rows = []
        for name, stats in [*self.groups.items(), ("pooled", self.pooled)]:
            row: dict[str, Any] = {"setting": name, "n": stats.n, "n_clusters": stats.unit.n_clusters, "ci_method": stats.unit.ci_method}
            for kind in ("reduction", "preservation", "escalation", "conditional_reduction", "response_harm"):
                record: Proportion = getattr(stats, kind)
                row[kind], (row[f"{kind}_ci_low"], row[f"{kind}_ci_high"]) = record.rate, record.ci
            rows.append(row)
        return pd.DataFrame(rows)

    def settings(self, *, pooled_last: bool = True) -> list[tuple[str, TransitionStats]]:
        """The groups and the pooled figures (pooled left out when there is a single group)."""
        groups = list(self.groups.items())
        return groups if len(groups) == 1 else [*groups, ("pooled", self.pooled)] if pooled_last else [("pooled", self.pooled), *groups]


# ----------------------------------------------------------------------------- flips, shots, runs


@dataclass(frozen=True)
class FlipCategory(Result):
    n: int
    lowered: Proportion
    raised: Proportion
    detection_lost: Proportion
    detection_gained: int
    mcnemar_p: float
    mcnemar_method: str


@dataclass(frozen=True)
class FlipUnit(Unit):
    ci_method: str = "wilson"


@dataclass(frozen=True)
class FlipSide(Result):
    n: int
    unit: FlipUnit
    any_lowered: Proportion
    any_detection_lost: Proportion
    categories: dict[str, FlipCategory]


@dataclass(frozen=True)
class Flips(Result):
    schema_version: int
    clean_run: str
    injected_run: str
    threshold: int
    cluster: str | None
    items_shared: int
    items_paired_ok: int
    status_transitions: dict[str, int]
    answers_lost: Proportion
    sides: dict[str, FlipSide]


@dataclass(frozen=True)
class Difference(Result):
    diff: float | None
    ci: CI
    n_items: int
    n_clusters: int


@dataclass(frozen=True)
class DevCandidate(Result):
    name: str
    shots: int
    score: float
    winner_minus_this: Difference | None = None
    tie: bool = False
    indistinguishable: bool = False


@dataclass(frozen=True)
class TestSet(Result):
    set: str
    shots: int
    score: float
    prompt_kappa_quadratic: float | None = None
    prompt_recall: float | None = None
    response_kappa_quadratic: float | None = None
    response_recall: float | None = None
    recall_gap: float | None = None
    chosen_minus_this: Difference | None = None


@dataclass(frozen=True)
class ShotSearch(Result):
    schema_version: int
    splits: dict[str, int]
    unit: Unit
    dev: list[DevCandidate]
    chosen: str
    ties: list[str]
    indistinguishable: list[str]
    chosen_shots: str
    test: list[TestSet]
    verdict: str
    objective: str
    n_boot: int


@dataclass(frozen=True)
class Session(Result):
    graded: int
    requests_sent: int
    setup_s: float
    elapsed_s: float
    items_per_s: float | None


@dataclass(frozen=True)
class Cost(Result):
    billed: float
    price_per_million: dict[str, float | None]
    batch_discount: float | None = None


@dataclass(frozen=True)
class Manifest(Result):
    """A run folder's ``manifest.json`` (the fields renderers read; the file holds more)."""

    model: str
    template_hash: str
    shots_hash: str
    status: str
    endpoint: str | None = None
    shots_count: int = 0
    items: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    counts_by_target: dict[str, dict[str, int]] = field(default_factory=dict)
    cache_hits: int = 0
    tokens: dict[str, int] = field(default_factory=dict)
    prompt_tokens_per_billed_item: float | None = None
    reasons: dict[str, dict[str, int]] = field(default_factory=dict)
    cache_notes: list[str] = field(default_factory=list)
    last_session: Session | None = None
    cost: Cost | None = None
    schema_version: int = 0
