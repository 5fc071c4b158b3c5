"""Command-line flags made from a settings model (:mod:`harness.steps.settings`): one declaration, two spellings.

``@with_settings(CalibrateSettings)`` turns every field of the model into a flag of the command
(``threshold`` → ``--threshold``, its help the field's description, its default the field's), and
hands the command one validated model as ``settings``. A value out of bounds is refused naming the
flag and what was expected (exit 2). A list field is a comma-separated flag (``--labels a,b``), or a
repeatable one where the field says so (``--grader A --grader B``); a choice (``Literal``) is a text
flag whose help lists the choices.
"""

from __future__ import annotations

import functools
import inspect
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, TypeVar

import typer

F = TypeVar("F", bound=Callable[..., Any])


def flag_name(field: str) -> str:
    """A field's flag: ``n_boot`` -> ``--n-boot``."""
    return "--" + field.replace("_", "-")


def _shape(annotation: Any) -> tuple[str, Any, tuple[Any, ...]]:
    """The field's kind (scalar, list, choice, bool), its scalar type and its choices."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType) and len(args) == 1:
        return _shape(args[0])
    if origin is Literal:
        return "choice", str, typing.get_args(annotation)
    if origin is list:
        return "list", args[0], ()
    if annotation is bool:
        return "bool", bool, ()
    return "scalar", annotation, ()


def cli_parameter(name: str, field: Any) -> inspect.Parameter:
    """One flag of a settings field, as typer reads it from a signature."""
    kind, scalar, choices = _shape(field.annotation)
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    help_text = field.description or ""
    default: Any = None if field.is_required() else field.get_default(call_default_factory=True)
    flag = flag_name(name)
    if kind == "bool":
        declared: tuple[str, ...] = (flag,) if not default else (f"{flag}/--no-{name.replace('_', '-')}",)
        hint: Any = bool
    elif kind == "list" and extra.get("repeatable"):
        declared, hint, default = (flag,), Optional[list[str]], None
    elif kind == "list":
        declared, hint, default = (flag,), Optional[str], None
    elif kind == "choice":
        declared, hint = (flag,), Optional[str]
        help_text += "" if all(str(c) in help_text for c in choices) else f" One of: {', '.join(map(str, choices))}."
    else:
        scalar = Path if extra.get("path") else scalar  # shown as <path>; handed to the model as text
        plain = not _optional(field.annotation) and not field.is_required()
        declared, hint = (flag,), (scalar if plain else Optional[scalar])
    # a repeatable flag takes one text at a time: its metavar says so (not "list[str]")
    option = typer.Option(*declared, help=help_text, show_default=kind not in ("list",) and default is not None,
                          metavar="<str>" if kind == "list" else None)
    if field.is_required():
        return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[hint, option])
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[hint, option], default=default)


def _optional(annotation: Any) -> bool:
    return type(None) in typing.get_args(annotation)


def from_flags(model: type[Any], values: dict[str, Any]) -> Any:
    """The settings the flags give; a value out of bounds names its flag and what was expected."""
    from pydantic import ValidationError

    from ..core.errors import ConfigError, expected

    given: dict[str, Any] = {}
    for name, value in values.items():
        kind, scalar, _ = _shape(model.model_fields[name].annotation)
        if value is None:
            continue
        if kind == "list":
            texts = [value] if isinstance(value, str) else value
            items = [v.strip() for text in texts for v in text.split(",") if v.strip()]
            given[name] = [_as(scalar, v, name) for v in items]
        else:
            given[name] = str(value) if isinstance(value, Path) else value
    try:
        return model.model_validate(given)
    except ValidationError as exc:
        error = exc.errors()[0]
        if not error["loc"]:  # a rule across fields: its sentence names them (shown as flags)
            raise ConfigError(expected(error)) from None
        field = str(error["loc"][0])
        raise ConfigError(f"{flag_name(field)} {given.get(field)!r}: {expected(error)}") from None


def _as(scalar: Any, text: str, name: str) -> Any:
    from ..core.errors import ConfigError

    if scalar is int:
        if not text.lstrip("-").isdigit():
            raise ConfigError(f"{flag_name(name)} {text!r}: expected whole numbers, comma-separated (e.g. 100,200,400)")
        return int(text)
    return text


def with_settings(model: type[Any]) -> Callable[[F], F]:
    """Give a command one flag per field of ``model``; the command receives the validated ``settings``."""

    def wrap(func: F) -> F:
        own = inspect.signature(func, eval_str=True)
        kept = [p for p in own.parameters.values() if p.name != "settings"]
        generated = [cli_parameter(name, field) for name, field in model.model_fields.items()]
        clash = {p.name for p in kept} & {p.name for p in generated}
        if clash:
            raise TypeError(f"{func.__name__}: {sorted(clash)} are both settings and parameters")
        positional = [p.replace(kind=inspect.Parameter.POSITIONAL_OR_KEYWORD) for p in kept if _is_argument(p)]
        options = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in kept if not _is_argument(p)]

        @functools.wraps(func)
        def command(*args: Any, **kwargs: Any) -> Any:
            from .common import errors

            values = {name: kwargs.pop(name) for name in list(kwargs) if name in model.model_fields}
            with errors():
                settings = from_flags(model, values)
            return func(*args, settings=settings, **kwargs)

        command.__signature__ = own.replace(parameters=[*positional, *generated, *options])  # type: ignore[attr-defined]
        command.__annotations__ = {}
        return typing.cast(F, command)

    return wrap


def _is_argument(param: inspect.Parameter) -> bool:
    return any(isinstance(meta, typer.models.ArgumentInfo) for meta in getattr(param.annotation, "__metadata__", ()))


def layered_parameter(name: str, field: Any) -> inspect.Parameter:
    """One flag of a layered setting (:mod:`harness.grading.settings`): unset (None) unless given, so the environment
    and the settings file can fill it; its help names the declared default."""
    kind, scalar, choices = _shape(field.annotation)
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    flag = extra.get("flag") or flag_name(name)
    default = field.get_default(call_default_factory=True)
    help_text = field.description or ""
    if kind == "choice" and not all(str(c) in help_text for c in choices):
        help_text += f" One of: {', '.join(map(str, choices))}."
    if default is not None and default is not False and default != [] and not extra.get("secret"):
        shown = ",".join(map(str, default)) if isinstance(default, list) else default
        help_text += f" [default: {shown}]"
    hint: Any = Optional[bool] if kind == "bool" else Optional[str] if kind in ("list", "choice") else Optional[scalar]
    if extra.get("path"):
        hint = Optional[str]
    option = typer.Option(flag, help=help_text, show_default=False, metavar="<str>" if kind == "list" else None)
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[hint, option], default=None)


def given_flags(model: type[Any], values: dict[str, Any]) -> dict[str, Any]:
    """The flags given on the command line, as the model's values (a list flag split on commas)."""
    given: dict[str, Any] = {}
    for name, value in values.items():
        if value is None:
            continue
        kind, scalar, _ = _shape(model.model_fields[name].annotation)
        if kind == "list":
            items = [v.strip() for v in str(value).split(",") if v.strip()]
            given[name] = [_as(scalar, v, name) for v in items]
        else:
            given[name] = value
    return given


def with_layers(*models: type[Any], exclude: tuple[str, ...] = ()) -> Callable[[F], F]:
    """Give a command one flag per field of ``models`` (fields with ``cli: False``, and ``exclude``, aside); the
    command receives ``given``: the flags set on the command line, which :func:`harness.grading.settings.resolve` lays
    over the environment, the settings file and the defaults."""

    def wrap(func: F) -> F:
        own = inspect.signature(func, eval_str=True)
        kept = [p for p in own.parameters.values() if p.name != "given"]
        fields = {name: (model, field) for model in models for name, field in model.model_fields.items()
                  if name not in exclude
                  and not (isinstance(field.json_schema_extra, dict) and field.json_schema_extra.get("cli") is False)}
        generated = [layered_parameter(name, field) for name, (_, field) in fields.items()]
        clash = {p.name for p in kept} & set(fields)
        if clash:
            raise TypeError(f"{func.__name__}: {sorted(clash)} are both settings and parameters")
        positional = [p.replace(kind=inspect.Parameter.POSITIONAL_OR_KEYWORD) for p in kept if _is_argument(p)]
        options = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in kept if not _is_argument(p)]

        @functools.wraps(func)
        def command(*args: Any, **kwargs: Any) -> Any:
            from .common import errors

            given: dict[str, Any] = {}
            with errors():
                for model in models:
                    values = {name: kwargs.pop(name) for name in list(kwargs) if fields.get(name, (None,))[0] is model}
                    given.update(given_flags(model, values))
            return func(*args, given=given, **kwargs)

        command.__signature__ = own.replace(parameters=[*positional, *generated, *options])  # type: ignore[attr-defined]
        command.__annotations__ = {}
        return typing.cast(F, command)

    return wrap
