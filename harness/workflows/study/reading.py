"""Reading a study file strictly: TOML, its types (the commands' settings models), then its files, names and needs.

Everything here runs when the study is read, before any request is sent: a study that would stop
after grading (a missing column, a grader named nowhere, a table that needs human labels the study
lacks) stops now, naming the file and the key; an unknown key lists the table's valid keys.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from ...core.errors import ConfigError, expected
from .file import ANALYSIS_TABLES, RESERVED_NAMES, EndpointTable, GraderTable, ReportTable, Study, StudyInfo


def _where(error: dict[str, Any]) -> str:
    parts: list[str] = []
    for step in error["loc"]:
        if isinstance(step, int):
            parts[-1] += f"[{step + 1}]"
        else:
            parts.append(str(step))
    return ".".join(parts)


def _keys_of(loc: tuple[Any, ...]) -> list[str]:
    """The valid keys of the table an error points into."""
    table = loc[0] if loc else None
    tables: dict[str, type[BaseModel]] = {"study": StudyInfo, "endpoint": EndpointTable, "grader": GraderTable,
                                          "report": ReportTable, **ANALYSIS_TABLES}
    fields = tables.get(str(table))
    if len(loc) <= 1 or fields is None:
        return [k for k in Study.model_fields if k not in ("root", "file")]
    return list(fields.model_fields)


def _message(file: Path, error: dict[str, Any]) -> str:
    """One validation error as the study file's reader says it: file, key, what was expected, the valid keys."""
    import difflib


    where = _where(error)
    if error["type"] != "extra_forbidden":  # a study names its keys as they are (never as the command's flags)
        return f"{file}: {where}: {expected(error).replace('`', '')}"
    loc = tuple(s for s in error["loc"] if not isinstance(s, int))
    valid = _keys_of(loc)
    near = difflib.get_close_matches(str(loc[-1]), valid, n=1)
    table = f"[{loc[0]}]" if len(loc) > 1 else "a study file"
    return (f"{file}: {where}: unknown key" + (f" (did you mean {near[0]!r}?)" if near else "")
            + f"; {table} takes {', '.join(valid)}")


def _inherit(data: dict[str, Any]) -> dict[str, Any]:
    """Each analysis table with the study-wide keys of ``[study]`` it does not set itself."""
    given = data.get("study")
    wide: dict[str, Any] = given if isinstance(given, dict) else {}
    out = dict(data)
    for key, model in ANALYSIS_TABLES.items():
        table = data.get(key)
        inherited = {k: wide[k] for k in model.study_wide() if k in wide}
        if isinstance(table, dict):  # never a key of the table's other mode ([study] human for a gold/pred calibrate)
            refused = model.refused(table, inherited)
            out[key] = {**{k: v for k, v in inherited.items() if k not in refused}, **table}
        elif isinstance(table, list):  # an array of tables ([[probe]]): each inherits
            out[key] = [{**inherited, **t} if isinstance(t, dict) else t for t in table]
    return out


def read_study(path: str | Path) -> Study:
    """Read and check a study file; every problem names the file and the key (or line and column)."""
    file = Path(path)
    if file.is_dir():
        raise ConfigError(f"{file} is a folder; expected a study file (TOML), e.g. harness/data/demo.toml")
    if not file.is_file():
        raise ConfigError(f"{file}: no such study file")
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: invalid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{file}: invalid TOML: nested too deeply") from None
    for reserved in ("root", "file"):  # set by this reader, not by the file
        if reserved in data:
            raise ConfigError(f"{file}: {reserved}: unknown key")
    for where, table in (("endpoint.", data.get("endpoint")), ("", data)):
        if isinstance(table, dict) and "api_key" in table:
            raise ConfigError(
                f"{file}: {where}api_key: keys never go in a study file; set OPENAI_API_KEY (or AZURE_OPENAI_API_KEY)"
            )
    try:
        study = Study.model_validate({**_inherit(data), "root": file.resolve().parent, "file": file.resolve()})
    except ValidationError as exc:
        raise ConfigError(_message(file, dict(exc.errors()[0]))) from None
    except RecursionError:
        raise ConfigError(f"{file}: nested too deeply") from None
    return check_study(_resolved(study), file)


def _resolved(study: Study) -> Study:
    """Every path-valued setting of the analysis tables resolved against the study file's folder."""
    update: dict[str, Any] = {}
    for key in ANALYSIS_TABLES:
        table = getattr(study, key)
        if table is None or isinstance(table, list):  # no array table has path settings
            continue
        paths = {name: str(study.path(getattr(table, name))) for name in type(table).paths() if getattr(table, name)}
        if paths:
            update[key] = table.model_copy(update=paths)
    return study.model_copy(update=update) if update else study


def check_study(study: Study, file: Path) -> Study:
    """The study, checked (see the module docstring); every problem is a ConfigError naming ``file`` and the key."""
    _check_files(study, file)
    _check_names(study, file)
    _check_needs(study, file)
    _check_tables(study, file)
    return study


def _check_files(study: Study, file: Path) -> None:
    info = study.study
    given: list[tuple[str, str | None]] = [
        ("study.data", info.data),
        ("study.human", info.human),
        ("study.ratings", info.ratings),
    ]
    given += [
        (f"grader[{k + 1}].shots", g.shots)
        for k, g in enumerate(study.grader)
        if g.shots not in ("default", "none", "chosen")
    ]
    for k, grader in enumerate(study.grader):  # read as the grade reads it: a bundled set by its name, else a folder
        from ...grading.jobs import spec_of

        template = spec_of(grader, shots_path=None, root=study.root).template_dir
        if template is not None and not Path(template).exists():
            raise ConfigError(f"{file}: grader[{k + 1}].template: {template}: no such template set (a folder, or a "
                              "bundled set's name: see harness templates)")
    for key in ANALYSIS_TABLES:
        table = getattr(study, key)
        if table is not None and not isinstance(table, list):
            given += [(f"{key}.{name}", getattr(table, name)) for name in type(table).paths()]
    for key, value in given:
        if value is not None and not study.path(value).exists():
            raise ConfigError(f"{file}: {key}: {study.path(value)}: no such file")


def _check_names(study: Study, file: Path) -> None:
    names = [g.name for g in study.grader]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(
            f"{file}: grader: two graders share the name {twice[0]!r} ({names}); each names its run folder"
        )
    reserved = [(k, n) for k, n in enumerate(names) if n.lower() in RESERVED_NAMES or ".superseded-" in n]
    if reserved:
        k, name = reserved[0]
        raise ConfigError(f"{file}: grader[{k + 1}].name {name!r}: the study writes a file or folder of that name; "
                          f"choose another (reserved: {', '.join(sorted(RESERVED_NAMES))})")
    for k, grader in enumerate(study.grader):
        if len(set(grader.targets)) != len(grader.targets):
            raise ConfigError(f"{file}: grader[{k + 1}].targets: {grader.targets} names a target twice")
    refs: list[tuple[str, str | None]] = [(f"{key}.grader", getattr(getattr(study, key), "grader", None))
                                          for key in ("shot_search", "analyze", "plan", "select", "thresholds")
                                          if getattr(study, key)]
    refs += [(f"{key}.graders", name) for key in ("stability", "jury") if getattr(study, key)
             for name in (getattr(study, key).graders or [])]
    refs += [(f"probe[{k + 1}].graders", name) for k, table in enumerate(study.probe) for name in table.graders or []]
    judged = study.judged()
    for key in ("calibrate", "compare"):
        for name in (getattr(study, key).graders or []) if getattr(study, key) else []:
            if name not in judged:
                raise ConfigError(f"{file}: {key}.graders: no grader named {name!r}; the study's graders are {judged}")
    if study.jury is not None:
        if study.jury.name in names or study.jury.name.lower() in RESERVED_NAMES:
            raise ConfigError(
                f"{file}: jury.name {study.jury.name!r}: a grader or a study output already has that name"
            )
        if len(study.jury_members()) < 2:
            raise ConfigError(f"{file}: jury.graders: a jury needs at least two graders; it has {study.jury_members()}")
    derived = study.thresholds.name if study.thresholds is not None else None
    if derived is not None and (derived in names or derived.lower() in RESERVED_NAMES
                                or (study.jury is not None and derived == study.jury.name)):
        raise ConfigError(f"{file}: thresholds.name {derived!r}: a grader, the jury or a study output "
                          "already has that name")
    for key, ref in refs:
        if ref is not None and ref not in names:
            raise ConfigError(f"{file}: {key}: no grader named {ref!r}; the study's graders are {names}")
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
            raise ConfigError(
                f"{file}: study.human: [calibrate] compares graders with human labels; name the human file"
            )
    if calibrate is not None and bool(calibrate.gold) != bool(calibrate.pred):
        raise ConfigError(f"{file}: calibrate.gold/calibrate.pred: name both label columns")
    if study.compare is not None and len(study.compare.graders or study.judged()) < 2:
        raise ConfigError(f"{file}: compare: needs at least two graders; the study has {len(study.judged())}")
    if study.shot_search is not None and (not graded or info.human is None):
        raise ConfigError(f"{file}: shot_search: searches a [[grader]]'s exemplars on study.human; declare both")
    plan = study.plan
    if (
        plan is not None
        and not (plan.gold and plan.pred)
        and (not graded or (info.human is None and plan.human is None))
    ):
        raise ConfigError(
            f"{file}: plan: the pilot is a grader's calibration (a [[grader]], study.human and [calibrate]) or "
            "two columns of the data (plan.gold and plan.pred)"
        )
    agreement = study.agreement
    if agreement is not None and len(agreement.raters) < 2 and agreement.rater_column is None:
        raise ConfigError(f"{file}: agreement.raters: [agreement] needs at least two raters (set study.raters or "
                          "agreement.raters) or a long table's agreement.rater_column")
    thresholds = study.thresholds
    if thresholds is not None:
        if not graded or thresholds.human is None:
            raise ConfigError(f"{file}: thresholds: chooses cut points on a [[grader]]'s probabilities against "
                              "study.human; declare both")
        grader = next((g for g in study.grader if g.name == (thresholds.grader or study.grader[0].name)), None)
        if grader is not None and not grader.logprobs and grader.samples < 2:
            raise ConfigError(f"{file}: thresholds.grader: grader {grader.name} records no probabilities; set "
                              "logprobs = true (or samples = 2 or more) in its [[grader]]")
    if study.probe and not graded:
        raise ConfigError(f"{file}: probe: grades a [[grader]]'s job again; the study has none")
    if study.stability is not None:
        chosen = study.stability.graders or [g.name for g in study.grader if g.repeats > 1]
        flat = [n for n in chosen if next((g.repeats for g in study.grader if g.name == n), 1) < 2]
        if not chosen or flat:
            raise ConfigError(f"{file}: stability: reads a grader's repeats; set repeats = 2 or more in its [[grader]]"
                              + (f" ({', '.join(flat)} has none)" if flat else ""))
    if study.analyze and study.analyze.human_share is not None and info.human is None:
        raise ConfigError(f"{file}: analyze.human_share draws from study.human; name the human file")
    if study.analyze and study.analyze.human_share is not None and study.analyze.human is not None:
        raise ConfigError(f"{file}: analyze.human and analyze.human_share: choose one source of human labels")


def _check_tables(study: Study, file: Path) -> None:
    """Read the data and human files now, so a bad row or a missing column stops the study before any grading is
    paid for."""
    from ...core.constants import LABEL_COLUMNS
    from ...core.errors import DataError
    from ...io.pairs import load_pairs

    def read(key: str, value: str) -> Any:
        try:
            return load_pairs(study.path(value), require=("id",))
        except DataError as exc:
            raise ConfigError(f"{file}: {key}: {exc}") from None

    data = read("study.data", study.study.data)
    human = read("study.human", study.study.human) if study.study.human else None
    if human is not None and study.grader and not any(c in human.columns for c in LABEL_COLUMNS):
        raise ConfigError(
            f"{file}: study.human: {study.path(study.study.human or '')} has no prompt_*/response_* label columns "
            "to compare the graders with"
        )
    columns: list[tuple[str, str | None]] = [("study.cluster", study.study.cluster)]
    columns += [
        (f"{key}.by", getattr(getattr(study, key), "by", None))
        for key in ("analyze", "calibrate")
        if getattr(study, key)
    ]
    for key in ("calibrate", "plan"):
        table = getattr(study, key)
        if table is not None:
            columns += [(f"{key}.gold", table.gold), (f"{key}.pred", table.pred)]
    for key, column in columns:
        if column is not None and column != "none" and column not in data.columns:
            raise ConfigError(f"{file}: {key}: {column!r} is not a column of {study.path(study.study.data)}; it has "
                              f"{sorted(map(str, data.columns))}")
    if not study.grader:  # the tables read the data's own labels: they must be there now, not after the first steps ran
        for key in ("analyze", "select"):
            if getattr(study, key) is not None and not all(c in data.columns for c in LABEL_COLUMNS):
                raise ConfigError(
                    f"{file}: {key}: a study without [[grader]] reads the data's own harm labels, and "
                    f"{study.path(study.study.data)} lacks {[c for c in LABEL_COLUMNS if c not in data.columns][:3]}"
                    " …; add a [[grader]], or drop the table"
                )
    _check_ratings(study, file)


def _check_ratings(study: Study, file: Path) -> None:
    """[agreement]'s raters, final label and the table's own grader columns, read now (the study's graders are not
    graded yet: their run folders are checked when they are)."""
    import re

    from ...core.errors import DataError
    from ...io.ratings import read_ratings

    table = study.agreement
    if table is None:
        return
    named = {g.name for g in study.grader}
    columns = [g for g in table.grader if g not in named]
    final = table.final if table.final is not None or not study.grader else "canonical"
    source = study.path(study.study.ratings or study.study.data)
    try:
        read_ratings(
            source,
            raters=list(table.raters),
            rater_column=table.rater_column,
            label_column_name=table.label_column,
            graders=columns,
            final=final,
            level=table.level,
            cluster=table.cluster,
        )
    except (DataError, ConfigError) as exc:
        message = re.sub(r"`([a-z_]+)`", r"agreement.\1", str(exc))
        for flag, key in (
            ("--raters", "agreement.raters"),
            ("--grader", "agreement.grader"),
            ("--final", "agreement.final"),
        ):
            message = message.replace(flag, key)
        raise ConfigError(f"{file}: agreement: {message}") from None
