"""Every analysis command's options, declared once: default, bounds and help.

Each command (``calibrate``, ``compare``, ``agreement``, ``analyze``, ``plan``, ``select``,
``calibrate-shots``) has one settings model here. Three readers take that one declaration:

* the command line (:mod:`harness.cli.options`) makes one flag per field, its help the field's
  description, its default the field's default, and checks the bounds by building the model;
* a study file's table of the same name *is* the model (:mod:`harness.workflows.study.file`):
  every key spelled as the flag with dashes as underscores, a comma-separated flag a TOML array;
* ``harness schema study`` publishes the models' JSON Schema.

Fields marked ``study_wide`` may also be set once in a study's ``[study]`` table, which every
table then inherits unless it sets its own. Fields marked ``path`` are files: a study resolves
them against the study file's folder and checks that they exist before anything runs.
Output plumbing (``--out``, ``--json``, ``--quiet``) is not a setting.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..core.bounds import (
    ASSURANCE,
    BUDGET,
    EPSILON,
    MAX_FPR,
    MAX_ITEMS,
    MAX_SEED,
    N_BOOT,
    PADDING_COPIES,
    PLAN_N_BOOT,
    SEED,
    SHARE,
    SIZE,
    STUDIES,
    TARGET_WIDTH,
    THRESHOLD,
    Bound,
    CutMetric,
    JuryRule,
    PlanMetric,
    ProbeKind,
    Strategy,
    Unparsed,
    VerdictRule,
)
from ..core.constants import Level


class Settings(BaseModel):
    """A command's options: strict types ("100" is not 100), unknown keys refused, frozen once made."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    #: A command with modes: each mode's name (as a message says it) and the fields only it takes. A field of the other
    #: mode is refused naming it (never silently ignored); :meth:`mode_of` says which mode the values are in.
    MODES: ClassVar[dict[str, tuple[str, ...]]] = {}

    @classmethod
    def mode_of(cls, values: Mapping[str, Any]) -> str | None:
        """The mode ``values`` are in (None: the command has one mode)."""
        return None

    @classmethod
    def refused(cls, values: Mapping[str, Any], given: Iterable[str]) -> list[str]:
        """The ``given`` fields that belong to another mode than the one ``values`` are in."""
        mode = cls.mode_of(values)
        if mode is None:
            return []
        own = set(cls.MODES[mode])
        return [name for other, names in cls.MODES.items() if other != mode for name in names
                if name in given and name not in own]

    @model_validator(mode="after")
    def _one_mode(self) -> Settings:
        stray = type(self).refused(self.__dict__, [n for n in self.model_fields_set
                                                   if getattr(self, n) != type(self).model_fields[n].get_default(
                                                       call_default_factory=True)])
        if stray:
            mode = type(self).mode_of(self.__dict__)
            other = next(m for m, names in self.MODES.items() if stray[0] in names)
            raise ValueError(f"`{stray[0]}` applies to {other}, not to {mode}; drop it")
        return self

    @classmethod
    def study_wide(cls) -> list[str]:
        """The fields a study's ``[study]`` table may set for every table."""
        return [name for name, field in cls.model_fields.items() if _extra(field).get("study_wide")]

    @classmethod
    def paths(cls) -> list[str]:
        """The fields that name files."""
        return [name for name, field in cls.model_fields.items() if _extra(field).get("path")]


def _extra(field: Any) -> dict[str, Any]:
    extra = field.json_schema_extra
    return extra if isinstance(extra, dict) else {}


def _wide(**extra: Any) -> dict[str, Any]:
    return {"study_wide": True, **extra}


def bounded_field(bound: Bound[Any], help: str | None = None, **extra: Any) -> Any:
    """A field holding a setting whose default and limits the library shares (:mod:`harness.core.bounds`)."""
    return Field(**bound.field_args(help), **extra)


# The settings that several commands share, each declared once.
def n_boot_field() -> Any:
    return bounded_field(N_BOOT, json_schema_extra=_wide())


def seed_field(what: str = "Bootstrap seed") -> Any:
    return bounded_field(SEED, f"{what} (0 to {MAX_SEED}).", json_schema_extra=_wide())


def cluster_field() -> Any:
    return Field(default=None, json_schema_extra=_wide(), description=(
        "Column naming the unit of analysis (default prompt_id, else the prompt text); 'none' treats rows as "
        "independent."))


def threshold_field(what: str = "Detection threshold: harmful when severity >= this", *, scale: bool = False) -> Any:
    """Harm severities run 1 to 3; a plain table's own scale (``scale``) is checked against its labels by the step."""
    if scale:
        return Field(default=THRESHOLD.default, ge=-(10**6), le=10**6, description=(
            f"{what} (1 to 3 on harm labels; on a plain table, one of its labels above the lowest)."))
    return bounded_field(THRESHOLD, f"{what} (1 to 3).")


def epsilon_field() -> Any:
    return bounded_field(EPSILON)


def raters_field() -> Any:
    return Field(default_factory=list, json_schema_extra=_wide(), description=(
        "Several human raters: their columns, or prefixes of the harm label columns (h1,h2,h3 for h1_prompt_hate …): "
        "α, the human ceiling beside the grader and the alternative annotator test."))


def ratings_field() -> Any:
    return Field(default=None, json_schema_extra=_wide(path=True), description=(
        "The table holding the raters' columns (default: the --human table, or the table itself)."))


def human_field(what: str, *, wide: bool = True) -> Any:
    return Field(default=None, json_schema_extra=_wide(path=True) if wide else {"path": True}, description=what)


def map_field() -> Any:
    return Field(default_factory=list, json_schema_extra=_wide(), description=(
        "Column mapping canonical=source, e.g. id=uid,prompt=question."))


def held_out_field() -> Any:
    return Field(default=None, json_schema_extra={"path": True}, description=(
        "An exemplar search's shot_search.json: score only on its held-out test pairs (for a grader whose exemplars "
        "it chose: never score a grader on what it was fit on)."))


def limit_field() -> Any:
    return Field(default=None, ge=1, le=MAX_ITEMS, description="Use only the first N rows of the table.")


def sample_field() -> Any:
    return Field(default=None, ge=1, le=MAX_ITEMS, description="Use N rows drawn at random (see --sample-seed).")


def sample_seed_field() -> Any:
    return Field(default=0, ge=0, le=MAX_SEED, description="Seed of --sample.")


class CalibrateSettings(Settings):
    """``harness calibrate``: a grader against human labels (a run with --human, or two columns with --gold/--pred)."""

    human: str | None = human_field("Pairs table with human labels, joined to the run on id.")
    gold: str | None = Field(default=None, description="Reference label column of a plain table.")
    pred: str | None = Field(default=None, description="Grader label column of a plain table.")
    labels: list[str] = Field(default_factory=list, description=(
        "Declared label set, comma-separated: grader labels outside it are unparsed and left out (counted in "
        "left_out)."))
    unparsed: Unparsed = Field(default="exclude", description=(
        "Labels outside --labels: exclude (left out, counted) or disagree (kept as a class of their own that never "
        "matches the reference: the conservative reading)."))
    nominal: bool = Field(default=False, description="Treat integer labels as nominal (no weighted kappa).")
    threshold: int = threshold_field(scale=True)
    by: str | None = Field(default=None, description=(
        "Also calibrate within each group of this column (model, source): a grader's errors can differ by group."))
    raters: list[str] = raters_field()
    ratings: str | None = ratings_field()
    epsilon: float = epsilon_field()
    held_out: str | None = held_out_field()
    cluster: str | None = cluster_field()
    n_boot: int = n_boot_field()
    seed: int = seed_field()
    map: list[str] = map_field()

    MODES: ClassVar[dict[str, tuple[str, ...]]] = {
        "a plain table's two columns (`gold`/`pred`)": ("gold", "pred", "labels", "unparsed", "nominal"),
        "a run folder (with `human`)": ("human", "by", "held_out"),
    }

    @classmethod
    def mode_of(cls, values: Mapping[str, Any]) -> str:
        table = values.get("gold") or values.get("pred")
        return next(iter(cls.MODES)) if table else list(cls.MODES)[1]

    @model_validator(mode="after")
    def _run_threshold(self) -> CalibrateSettings:
        """A run's labels are harm severities: its threshold is the library's (a table's is checked on its labels)."""
        if self.mode_of(self.__dict__) != next(iter(self.MODES)) and not THRESHOLD.admits(self.threshold):
            raise ValueError(f"`threshold` {self.threshold}: expected {THRESHOLD.text('threshold')} (a run's "
                             "harm severities)")
        return self


class CompareSettings(Settings):
    """``harness compare``: several graders against one human-labelled set, or (without --human) with each other."""

    human: str | None = human_field(
        "Pairs table with human labels (without it: the graders against each other, κ and paired tests of their "
        "shares).")
    threshold: int = threshold_field()
    raters: list[str] = raters_field()
    ratings: str | None = ratings_field()
    epsilon: float = epsilon_field()
    held_out: str | None = held_out_field()
    cluster: str | None = cluster_field()
    n_boot: int = n_boot_field()
    seed: int = seed_field()


class AgreementSettings(Settings):
    """``harness agreement``: several human raters (and graders beside them)."""

    raters: list[str] = raters_field()
    rater_column: str | None = Field(default=None, description=(
        "Long table: the column naming the rater (one row per item and rater)."))
    label_column: str | None = Field(default=None, description=(
        "Long table: the label column (default: the eight harm label columns)."))
    grader: list[str] = Field(default_factory=list, json_schema_extra={"repeatable": True}, description=(
        "A grader to set beside the humans: a column, a prefix, a rater value of a long table, or a run folder "
        "(repeatable)."))
    final: str | None = Field(default=None, description=(
        "The final (adjudicated) label: a column, a prefix, or 'canonical' for the table's own harm label columns."))
    level: Level | None = Field(default=None, description=(
        "Scale: nominal, ordinal or interval (default ordinal when every label is an integer, as harm labels are; "
        "else nominal)."))
    epsilon: float = epsilon_field()
    cluster: str | None = cluster_field()
    n_boot: int = n_boot_field()
    seed: int = seed_field()


class AnalyzeSettings(Settings):
    """``harness analyze``: the paper's paired transition analysis."""

    by: str | None = Field(default=None, description="Group by this metadata column, e.g. model.")
    reference: str | None = Field(default=None, description=(
        "Group compared with each other group (default: the first in sort order)."))
    all_pairs: bool = Field(default=False, description="Compare every pair of groups instead.")
    human: str | None = human_field(
        "Human labels of a random subset of these pairs (whole prompt clusters; optional inclusion_probability "
        "column): every share corrected by prediction-powered inference.", wide=False)
    correct: str | None = Field(default=None, json_schema_extra={"path": True}, description=(
        "calibration.json measured on other pairs (harness calibrate): shares corrected by EM, transported "
        "(use --human when you can)."))
    force: bool = Field(default=False, description=(
        "With --correct: use a calibration of another grader, template or shots anyway."))
    limit: int | None = limit_field()
    sample: int | None = sample_field()
    sample_seed: int = sample_seed_field()
    cluster: str | None = cluster_field()
    n_boot: int = n_boot_field()
    seed: int = seed_field()
    map: list[str] = map_field()


class PlanSettings(Settings):
    """``harness plan``: how many items humans must label, predicted from a pilot."""

    metric: PlanMetric = Field(default="kappa", description=(
        "kappa, kappa-quadratic, recall, recall-gap, or escalation (the corrected share; a run with --human)."))
    target_width: float | None = bounded_field(TARGET_WIDTH)
    sizes: list[int] = Field(default_factory=list, description=(
        "Item counts to predict the width at, comma-separated (e.g. 100,200,400)."))
    gold: str | None = Field(default=None, description="A table's human label column.")
    pred: str | None = Field(default=None, description="A table's grader label column.")
    human: str | None = human_field("With a run folder: the human labels of some of its pairs (the pilot).", wide=False)
    side: Literal["prompt", "response"] = Field(default="response", description=(
        "With harm labels: prompt or response (each pair's highest category)."))
    threshold: int = threshold_field("recall and recall-gap: harmful when the label is at least this", scale=True)
    assurance: float = bounded_field(ASSURANCE)
    studies: int = bounded_field(STUDIES)
    n_boot: int = bounded_field(PLAN_N_BOOT)
    cluster: str | None = cluster_field()
    seed: int = seed_field("Simulation seed")
    map: list[str] = map_field()

    @field_validator("sizes")
    @classmethod
    def _sizes_in_bound(cls, sizes: list[int]) -> list[int]:
        wrong = [size for size in sizes if not SIZE.admits(size)]
        if wrong:
            raise ValueError(f"each size must be {SIZE.text('size')}; {wrong[0]} is not")
        return sizes

    @model_validator(mode="after")
    def _width_or_sizes(self) -> PlanSettings:
        if self.target_width is None and not self.sizes:
            raise ValueError("give `target_width` (e.g. 0.10) or `sizes` (e.g. 100,200,400)")
        return self


class SelectSettings(Settings):
    """``harness select``: which prompt clusters to send to annotators."""

    budget: int = bounded_field(BUDGET)
    strategy: Strategy = Field(default="uniform", description=(
        "uniform (the default: on target in make validate), stratified (more of what the grader flags) or active "
        "(by the grader's uncertainty; needs grade --logprobs or --samples)."))
    cluster: str | None = cluster_field()
    seed: int = seed_field("Seed of the pick")
    map: list[str] = map_field()


class ShotSearchSettings(Settings):
    """``harness calibrate-shots``: exemplars chosen on a dev split and judged on a held-out test split."""

    k: int = Field(default=4, ge=1, le=64, description="Exemplars per side in random and stratified sets (1 to 64).")
    n_random: int = Field(default=3, ge=0, le=100, description="Random candidate sets (0 to 100).")
    greedy_steps: int = Field(default=2, ge=0, le=64, description="Greedy forward-selection steps (0 to 64).")
    greedy_candidates: int = Field(default=3, ge=1, le=100, description="Candidates tried per greedy step (1 to 100).")
    dev_frac: float = bounded_field(SHARE.with_default(0.3), "Share of prompts in dev.")
    test_frac: float = bounded_field(SHARE.with_default(0.3), "Share of prompts in test.")
    limit: int | None = limit_field()
    sample: int | None = sample_field()
    sample_seed: int = sample_seed_field()
    cluster: str | None = cluster_field()
    n_boot: int = n_boot_field()
    seed: int = seed_field("Split and sampling seed")
    map: list[str] = map_field()

    @model_validator(mode="after")
    def _splits_fit(self) -> ShotSearchSettings:
        fault = split_fault(self.dev_frac, self.test_frac)
        if fault:
            raise ValueError(fault)
        return self


def split_fault(dev_frac: float, test_frac: float) -> str | None:
    """Why dev and test cannot both be taken from one pool (None: they can): each is a share, and the exemplar pool
    needs what they leave."""
    if dev_frac + test_frac < 1:
        return None
    return (f"`dev_frac` {dev_frac} and `test_frac` {test_frac}: expected shares summing below 1 (the rest is the "
            "exemplar pool)")


class StabilitySettings(Settings):
    """``harness stability``: how much a grader's verdicts move between repeats of one job (``grade --repeats K``)."""

    threshold: int = threshold_field("Harmful when severity >= this, for the prompt/response asymmetry per repeat")
    cluster: str | None = cluster_field()
    n_boot: int = n_boot_field()
    seed: int = seed_field()


class JurySettings(Settings):
    """``harness jury``: several graders' verdicts combined into one run folder."""

    rule: JuryRule = Field(default="majority", description=(
        "majority (harmful when at least half the members say so; per category the most frequent severity), median "
        "(per category the median), any (harmful when any member says so: with two members, either flags it) or "
        "mean-probability (the item as majority; per category the members' P(severity) averaged, from grade --logprobs "
        "or --samples). Every rule sends a tie to the higher severity; all but any need three or more members."))


class ProbeSettings(Settings):
    """``harness probe``: a run graded again with one perturbation that should not change its verdicts."""

    kind: ProbeKind = Field(
        default="verbosity", description=(
            "verbosity (responses padded with a neutral paragraph), exemplar-order (the exemplars shuffled), "
            "label-order (the severity levels listed from 7 down in the template) or response-format (the answer "
            "asked with a looser format: json-object for a json-schema run, none for a json-object run)."))
    padding: int = bounded_field(PADDING_COPIES)
    cluster: str | None = cluster_field()
    n_boot: int = n_boot_field()
    seed: int = seed_field("Bootstrap and shuffle seed")


class ThresholdSettings(Settings):
    """``harness calibrate-thresholds``: verdicts read from a grader's probabilities, cut points chosen on dev."""

    human: str | None = human_field("Pairs table with human labels, joined to the run on id (split into dev and "
                                    "held-out).")
    rule: VerdictRule = Field(default="thresholds", description=(
        "The rule the derived run's verdicts follow: argmax (the grader's own verdict), expected (the probability-"
        "weighted severity, rounded) or thresholds (cut points on it, chosen on dev)."))
    metric: CutMetric = Field(default="kappa-quadratic", description=(
        "What the cut points maximise on dev: kappa-quadratic, or recall at severity >= threshold among cut points "
        "whose false-positive rate stays within max_fpr."))
    max_fpr: float = bounded_field(MAX_FPR)
    threshold: int = threshold_field()
    dev_frac: float = bounded_field(SHARE)
    held_out: str | None = held_out_field()
    cluster: str | None = cluster_field()
    n_boot: int = n_boot_field()
    seed: int = seed_field("Split and bootstrap seed")
    map: list[str] = map_field()


#: Each command's settings, by the command's name (and the study table's, with dashes as underscores).
COMMAND_SETTINGS: dict[str, type[Settings]] = {
    "calibrate": CalibrateSettings,
    "compare": CompareSettings,
    "agreement": AgreementSettings,
    "analyze": AnalyzeSettings,
    "plan": PlanSettings,
    "select": SelectSettings,
    "calibrate-shots": ShotSearchSettings,
    "stability": StabilitySettings,
    "jury": JurySettings,
    "probe": ProbeSettings,
    "calibrate-thresholds": ThresholdSettings,
}


def mapping_of(pairs: list[str]) -> dict[str, str]:
    """``--map`` entries (``canonical=source``) as a dict."""
    from ..io.pairs import parse_mapping

    return parse_mapping(",".join(pairs)) if pairs else {}
