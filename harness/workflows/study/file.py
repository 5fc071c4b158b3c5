"""A study file (``STUDY.toml``): the data, the graders and the analyses of one study, read strictly.

Paths inside the file are relative to the file itself (so a study folder can move); the output
folder ``out`` is relative to the working directory, as every ``runs/…`` path is. An unknown key,
a wrong type or a missing file is a :class:`~harness.core.errors.ConfigError` naming the file and
the key (``study.toml: grader[2].tempalte: unknown key``); a TOML syntax error names its line and
column. API keys never go in a study file: ``[endpoint]`` takes the same keys as ``harness.toml``
except ``api_key``, which comes from the environment (``OPENAI_API_KEY``).

A minimal study::

    [study]
    out = "runs/my-study"
    data = "pairs.jsonl"
    human = "pairs.jsonl"

    [endpoint]
    base_url = "embedded"          # start harness serve for the study, or an OpenAI-compatible URL

    [[grader]]
    name = "baseline"
    model = "harness-baseline"

    [calibrate]
    [analyze]
    by = "model"
    [report]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ...core.errors import ConfigError
from ...grading.settings import EndpointSettings, JobSettings
from ...steps.settings import (
    AgreementSettings,
    AnalyzeSettings,
    CalibrateSettings,
    CompareSettings,
    JurySettings,
    PlanSettings,
    ProbeSettings,
    SelectSettings,
    Settings,
    ShotSearchSettings,
    StabilitySettings,
    ThresholdSettings,
    cluster_field,
    map_field,
    n_boot_field,
    seed_field,
)

EMBEDDED = "embedded"
#: Names a grader may not take: they are files and folders the study writes beside the run folders.
RESERVED_NAMES = frozenset(
    {
        "figures",
        "shot-search",
        "study.json",
        "report.md",
        "report.html",
        "report.tex",
        "view.html",
        "comparison.json",
        "agreement.json",
        "plan.json",
        "picks.jsonl",
        "picks.design.json",
        "chosen_shots.jsonl",
        "calibration",
        ".cache",
        "analysis",
    }
)


class _Strict(BaseModel):
    # "100" is not 100, "yes" not true
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class StudyInfo(_Strict):
    """``[study]``: the data, the human labels and the settings every table inherits unless it sets its own."""

    name: str = Field(default="study", description="The study's name (shown in the report's title).")
    out: str = Field(description="Output folder, relative to the working directory.")
    data: str = Field(
        description="The pairs table (relative to the study file): graded by the graders, or read as it is."
    )
    human: str | None = Field(
        default=None, description="Human labels of the pairs (calibrate, compare, plan, the shot search)."
    )
    ratings: str | None = Field(default=None, description="Several annotators' labels (harness agreement's table).")
    raters: list[str] = Field(
        default_factory=list, description="The annotators' columns or column prefixes in `ratings`."
    )
    n_boot: int = n_boot_field()
    seed: int = seed_field()
    cluster: str | None = cluster_field()
    map: list[str] = map_field()


class EndpointTable(EndpointSettings):
    """``[endpoint]``: the endpoint settings of ``harness grade`` (one declaration: :mod:`harness.grading.settings`),
    but for ``api_key``, which comes from the environment; a study starts its own ``harness serve`` unless it names an
    endpoint. The environment and ``harness run``'s flags override the table (flag > environment > study file)."""

    base_url: str = Field(default=EMBEDDED, min_length=1, description=(
        "\"embedded\" (harness serve, started for the study: the default) or an OpenAI-compatible URL."))


class GraderTable(JobSettings):
    """``[[grader]]``: one grader of the study: the job settings of ``harness grade`` (one declaration), and its
    name. ``shots`` may also be ``chosen``: the exemplar search's pick. The environment does not set a study's graders
    (they are the study's declarations, each its own)."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=100, description=(
        "The grader's name: its run folder in the study's output."))


class ShotSearchTable(ShotSearchSettings):
    grader: str | None = Field(
        default=None, description="The study grader whose exemplars are searched (default: the first)."
    )


class CalibrateTable(CalibrateSettings):
    graders: list[str] | None = Field(default=None, description="The study graders to calibrate (default: all).")


class CompareTable(CompareSettings):
    graders: list[str] | None = Field(default=None, description="The study graders to compare (default: all).")


class AgreementTable(AgreementSettings):
    """``grader`` names study graders (their run folders) or the table's own columns."""


class AnalyzeTable(AnalyzeSettings):
    grader: str | None = Field(
        default=None,
        description="The study grader whose labels are analysed (default: the first; "
        "none in a study without graders: the data's own labels).",
    )
    human_share: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description=(
            "A share of the study's human file's prompt clusters drawn at random to play the human labels "
            "(a simulated round)."
        ),
    )


class PlanTable(PlanSettings):
    grader: str | None = Field(
        default=None, description="The study grader whose calibration is the pilot (default: the first)."
    )


class SelectTable(SelectSettings):
    grader: str | None = Field(
        default=None, description="The study grader whose labels guide the pick (default: the first)."
    )


class StabilityTable(StabilitySettings):
    graders: list[str] | None = Field(
        default=None, description="The study graders whose repeats are read (default: every grader with repeats > 1)."
    )


class JuryTable(JurySettings):
    name: str = Field(default="jury", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=100, description=(
        "The jury's run folder in the study's output (calibrate and compare read it beside the graders)."))
    graders: list[str] | None = Field(
        default=None, description="The study graders on the jury (default: all, at least two)."
    )


class ThresholdsTable(ThresholdSettings):
    grader: str | None = Field(default=None, description="The study grader whose probabilities are read (default: the "
                               "first; it grades with logprobs = true, or samples of 2 or more).")
    name: str = Field(default="thresholds", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=100, description=(
        "The derived run's folder in the study's output (calibrate and compare read it beside the graders)."))


class ProbeTable(ProbeSettings):
    graders: list[str] | None = Field(default=None, description="The study graders to probe (default: the first).")


class ReportTable(_Strict):
    latex: bool = Field(default=False, description="Also write report.tex and every figure as PDF.")
    view: bool = Field(default=True, description="Also write view.html (the first grader's items).")


#: The analysis tables: each is its command's settings model (plus the keys that pick a study grader).
ANALYSIS_TABLES: dict[str, type[Settings]] = {
    "shot_search": ShotSearchTable, "calibrate": CalibrateTable, "compare": CompareTable, "agreement": AgreementTable,
    "analyze": AnalyzeTable, "plan": PlanTable, "select": SelectTable, "stability": StabilityTable,
    "jury": JuryTable,
    "probe": ProbeTable,
    "thresholds": ThresholdsTable,
}
#: Study keys that are not command options: they pick which study grader (run folder) a table reads.
STUDY_ONLY_KEYS = {"graders", "grader", "human_share", "name"}


class Study(_Strict):
    study: StudyInfo
    endpoint: EndpointTable = EndpointTable()
    grader: list[GraderTable] = Field(default_factory=list)
    shot_search: ShotSearchTable | None = None
    calibrate: CalibrateTable | None = None
    compare: CompareTable | None = None
    agreement: AgreementTable | None = None
    analyze: AnalyzeTable | None = None
    plan: PlanTable | None = None
    select: SelectTable | None = None
    stability: StabilityTable | None = None
    jury: JuryTable | None = None
    thresholds: ThresholdsTable | None = None
    #: ``[[probe]]``: one table per perturbation.
    probe: list[ProbeTable] = Field(default_factory=list)
    report: ReportTable | None = None
    #: The study file's folder (set on reading): relative paths resolve against it.
    root: Path = Field(default=Path("."), exclude=True)
    #: The study file itself (set on reading), named in every result's provenance.
    file: Path | None = Field(default=None, exclude=True)

    def path(self, value: str) -> Path:
        """A path of the study file, resolved against its folder."""
        given = Path(value).expanduser()
        return given if given.is_absolute() else self.root / given

    @property
    def out(self) -> Path:
        return Path(self.study.out)

    def judged(self) -> list[str]:
        """The names calibrate and compare read by default: every grader, and the jury and derived run if any."""
        return ([g.name for g in self.grader] + ([self.jury.name] if self.jury is not None else [])
                + ([self.thresholds.name] if self.thresholds is not None else []))

    def source_of(self, name: str) -> list[str]:
        """The study graders behind a name calibrate or compare reads: the jury's members, the derived run's grader."""
        if self.jury is not None and name == self.jury.name:
            return self.jury_members()
        if self.thresholds is not None and name == self.thresholds.name:
            return [self.thresholds.grader or self.grader[0].name] if self.grader else []
        return [name]

    def jury_members(self) -> list[str]:
        return (self.jury.graders or [g.name for g in self.grader]) if self.jury is not None else []

    def grader_named(self, name: str | None, *, key: str) -> GraderTable:
        if not self.grader:
            raise ConfigError(f"{key}: the study declares no [[grader]]")
        if name is None:
            return self.grader[0]
        found = next((g for g in self.grader if g.name == name), None)
        if found is None:
            raise ConfigError(
                f"{key}: no grader named {name!r}; the study's graders are {[g.name for g in self.grader]}"
            )
        return found


def study_schema() -> dict[str, Any]:
    """The study file's JSON Schema, from the same models the commands read (``harness schema study``)."""
    schema = Study.model_json_schema(mode="validation")
    schema["properties"] = {k: v for k, v in schema["properties"].items() if k not in ("root", "file")}
    for name, definition in schema.get("$defs", {}).items():  # keys a study never takes (the API key: environment only)
        tables: dict[str, type[BaseModel]] = {"EndpointTable": EndpointTable, "GraderTable": GraderTable}
        model = tables.get(name)
        for key, field in (model.model_fields.items() if model else ()):
            if isinstance(field.json_schema_extra, dict) and field.json_schema_extra.get("study") is False:
                definition.get("properties", {}).pop(key, None)
    schema["title"] = "harness study file"
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
