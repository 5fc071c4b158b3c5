"""A study file's checks beyond its types: files exist, names are unique and free, tables have what they need.

Everything here runs when the study is read, before any request is sent: a study that would stop
after grading (a missing column, a grader named nowhere, a table that needs human labels the study
lacks) stops now, naming the file and the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..core.errors import ConfigError
from .study_file import ANALYSIS_TABLES, RESERVED_NAMES, Study


def check_study(study: Study, file: Path) -> Study:
    """The study, checked (see the module docstring); every problem is a ConfigError naming ``file`` and the key."""
    _check_files(study, file)
    _check_names(study, file)
    _check_needs(study, file)
    _check_tables(study, file)
    return study


def _check_files(study: Study, file: Path) -> None:
    info = study.study
    given: list[tuple[str, str | None]] = [("study.data", info.data), ("study.human", info.human), ("study.ratings", info.ratings)]
    given += [(f"grader[{k + 1}].shots", g.shots) for k, g in enumerate(study.grader) if g.shots not in ("default", "none", "chosen")]
    given += [(f"grader[{k + 1}].template", g.template) for k, g in enumerate(study.grader) if g.template != "default"]
    for key in ANALYSIS_TABLES:
        table = getattr(study, key)
        if table is not None:
            given += [(f"{key}.{name}", getattr(table, name)) for name in type(table).paths()]
    for key, value in given:
        if value is not None and not study.path(value).exists():
            raise ConfigError(f"{file}: {key}: {study.path(value)}: no such file")


def _check_names(study: Study, file: Path) -> None:
    names = [g.name for g in study.grader]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"{file}: grader: two graders share the name {twice[0]!r} ({names}); each names its run folder")
    reserved = [n for n in names if n.lower() in RESERVED_NAMES or ".superseded-" in n]
    if reserved:
        raise ConfigError(f"{file}: grader.name {reserved[0]!r}: the study writes a file or folder of that name; "
                          f"choose another (reserved: {', '.join(sorted(RESERVED_NAMES))})")
    for k, grader in enumerate(study.grader):
        if len(set(grader.targets)) != len(grader.targets):
            raise ConfigError(f"{file}: grader[{k + 1}].targets: {grader.targets} names a target twice")
    refs: list[tuple[str, str | None]] = [(f"{key}.grader", getattr(getattr(study, key), "grader", None))
                                          for key in ("shot_search", "analyze", "plan", "select") if getattr(study, key)]
    refs += [(f"{key}.graders", name) for key in ("calibrate", "compare") if getattr(study, key)
             for name in (getattr(study, key).graders or [])]
    for key, name in refs:
        if name is not None and name not in names:
            raise ConfigError(f"{file}: {key}: no grader named {name!r}; the study's graders are {names}")
    for key in ("calibrate", "compare"):
        table = getattr(study, key)
        chosen = (table.graders or []) if table else []
        if len(set(chosen)) != len(chosen):
            raise ConfigError(f"{file}: {key}.graders: {chosen} names a grader twice")
    if study.agreement is not None and len(set(study.agreement.grader)) != len(study.agreement.grader):
        raise ConfigError(f"{file}: agreement.grader: {study.agreement.grader} names a grader twice")
    if any(g.shots == "chosen" for g in study.grader) and study.shot_search is None:
        raise ConfigError(f"{file}: grader.shots = \"chosen\" needs a [shot_search] table")


def _check_needs(study: Study, file: Path) -> None:
    """Each table has the inputs it reads: graders or label columns, human labels, raters."""
    info, graded = study.study, bool(study.grader)
    calibrate = study.calibrate
    if calibrate is not None and not (calibrate.gold or calibrate.pred):
        if not graded:
            raise ConfigError(f"{file}: calibrate: a study without [[grader]] calibrates two columns of its data; set "
                              "calibrate.gold and calibrate.pred")
        if calibrate.human is None:
            raise ConfigError(f"{file}: study.human: [calibrate] compares graders with human labels; name the human file")
    if calibrate is not None and bool(calibrate.gold) != bool(calibrate.pred):
        raise ConfigError(f"{file}: calibrate.gold/calibrate.pred: name both label columns")
    if study.compare is not None and len(study.compare.graders or study.grader) < 2:
        raise ConfigError(f"{file}: compare: needs at least two graders; the study has {len(study.grader)}")
    if study.shot_search is not None and (not graded or info.human is None):
        raise ConfigError(f"{file}: shot_search: searches a [[grader]]'s exemplars on study.human; declare both")
    plan = study.plan
    if plan is not None and not (plan.gold and plan.pred) and (not graded or (info.human is None and plan.human is None)):
        raise ConfigError(f"{file}: plan: the pilot is a grader's calibration (a [[grader]], study.human and [calibrate]) or "
                          "two columns of the data (plan.gold and plan.pred)")
    agreement = study.agreement
    if agreement is not None and len(agreement.raters) < 2 and agreement.rater_column is None:
        raise ConfigError(f"{file}: agreement.raters: [agreement] needs at least two raters (set study.raters or "
                          "agreement.raters) or a long table's agreement.rater_column")
    if study.analyze and study.analyze.human_share is not None and info.human is None:
        raise ConfigError(f"{file}: analyze.human_share draws from study.human; name the human file")
    if study.analyze and study.analyze.human_share is not None and study.analyze.human is not None:
        raise ConfigError(f"{file}: analyze.human and analyze.human_share: choose one source of human labels")


def _check_tables(study: Study, file: Path) -> None:
    """Read the data and human files now, so a bad row or a missing column stops the study before any grading is paid for."""
    from ..core.constants import LABEL_COLUMNS
    from ..core.errors import DataError
    from ..io.pairs import load_pairs

    def read(key: str, value: str) -> Any:
        try:
            return load_pairs(study.path(value), require=("id",))
        except DataError as exc:
            raise ConfigError(f"{file}: {key}: {exc}") from None

    data = read("study.data", study.study.data)
    human = read("study.human", study.study.human) if study.study.human else None
    if human is not None and study.grader and not any(c in human.columns for c in LABEL_COLUMNS):
        raise ConfigError(f"{file}: study.human: {study.path(study.study.human or '')} has no prompt_*/response_* label columns "
                          "to compare the graders with")
    columns: list[tuple[str, str | None]] = [("study.cluster", study.study.cluster)]
    columns += [(f"{key}.by", getattr(getattr(study, key), "by", None)) for key in ("analyze", "calibrate") if getattr(study, key)]
    for key in ("calibrate", "plan"):
        table = getattr(study, key)
        if table is not None:
            columns += [(f"{key}.gold", table.gold), (f"{key}.pred", table.pred)]
    for key, column in columns:
        if column is not None and column != "none" and column not in data.columns:
            raise ConfigError(f"{file}: {key}: {column!r} is not a column of {study.path(study.study.data)}; it has "
                              f"{sorted(map(str, data.columns))}")
