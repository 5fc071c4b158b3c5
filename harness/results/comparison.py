"""``compare``'s result: several graders against one human-labelled set, with paired tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from .base import CI, Result
from .calibration import Agreement
from .common import Unit
from .provenance import Stamped
from .raters import RaterAgreement

if TYPE_CHECKING:
    import pandas as pd


class SideScore(Result):
    kappa_quadratic: float | None
    kappa_quadratic_ci: CI
    recall: float | None
    recall_ci: CI
    fpr: float | None


class RunScore(Result):
    """One grader (run) against the human labels."""

    model: str | None
    template_hash: str | None
    shots_hash: str | None
    not_ok_rate: float | None
    billed_tokens: int
    cost: float | None = None
    items_graded: int = 0
    counts: dict[str, dict[str, int]]
    sides: dict[str, SideScore]
    recall_gap: float | None = None
    recall_gap_ci: CI = Field(default_factory=lambda: list[float | None]([None, None]))
    warnings: list[str] | None = None


class PairTest(Result):
    """The clustered paired test of two runs on one side and scope, with its Holm-adjusted p."""

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


class Comparison(Stamped):
    """``comparison-*.json``: several graders against one human-labelled set, with paired tests."""

    threshold: int
    unit: Unit
    runs: dict[str, RunScore]
    tests: list[PairTest]
    kappa_diffs: list[KappaDiff]
    family: str
    n_boot: int
    seed: int
    schema_version: int
    #: ``compare --raters``: several humans' agreement, the ceiling beside each grader, the alt-test.
    human_agreement: RaterAgreement | None = None
    #: What the caller knew about these labels that the numbers cannot show (e.g. narrowed to held-out pairs).
    warnings: list[str] | None = None

    def to_frame(self) -> pd.DataFrame:
        """One row per paired test (run pair, side, scope) with n, clusters, p and Holm p."""
        import pandas as pd

        return pd.DataFrame([t.to_json() for t in self.tests])


class GraderPair(Result):
    """Two graders on one side and scope (``any``: each pair's highest category), on the items both graded ``ok``.

    ``agreement`` reads ``a`` as the reference (κ is symmetric; the confusion's rows are ``a``).
    ``share_a``/``share_b`` are the shares each flags harmful (severity >= threshold), and
    ``share_test`` the clustered exact McNemar of those flags: does one grader flag more often?
    """

    a: str
    b: str
    side: str
    scope: str
    agreement: Agreement
    share_a: float | None
    share_b: float | None
    share_test: PairTest


class GraderAgreement(Stamped):
    """``comparison-*.json`` without human labels: graders against each other (κ, confusion, paired share tests)."""

    schema_version: int
    threshold: int
    unit: Unit
    graders: list[str]
    pairs: list[GraderPair]
    family: str
    n_boot: int
    seed: int
    warnings: list[str] | None = None

    def to_frame(self) -> pd.DataFrame:
        """One row per grader pair, side and scope: κ, quadratic κ, both shares and the Holm-adjusted p."""
        import pandas as pd

        return pd.DataFrame([{"a": p.a, "b": p.b, "side": p.side, "scope": p.scope,
                              "n_items": p.agreement.n_items,
                              "n_clusters": p.agreement.n_clusters,
                              "kappa": p.agreement.kappa,
                              "kappa_quadratic": p.agreement.kappa_quadratic,
                              "share_a": p.share_a,
                              "share_b": p.share_b,
                              "p_value": p.share_test.p_value,
                              "p_holm": p.share_test.p_holm} for p in self.pairs])
