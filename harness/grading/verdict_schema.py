"""A template set's verdict, declared once as a JSON Schema (``schema.json`` beside its templates).

The same declaration is sent as the request's ``response_format`` (json_schema, strict) and read by the parser: an
answer that does not validate against it is ``unparsed`` with the first violation as its reason, and the schema says
on which scale each category is written (a bare integer 0-7 is a raw level, 0-3 a severity; an object carries
``raw_0_7`` and/or ``severity_0_3``) and which values the first number written for it may take, where
:mod:`harness.grading.probabilities` reads that category's distribution.

Only the part of JSON Schema a verdict needs is accepted (and checked when the set is loaded): ``type``,
``properties``, ``required``, ``additionalProperties``, ``enum``, ``minimum``, ``maximum``, ``minLength``,
``maxLength``, ``title`` and ``description``. Every object lists all its properties as required and forbids others,
as OpenAI's strict structured outputs ask; an optional field is a nullable one (``"type": ["string", "null"]``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.constants import CATEGORIES, CATEGORY_CODES
from ..core.errors import TemplateError

#: The file of a template set that declares its verdict.
SCHEMA_FILE = "schema.json"
#: The ``json_schema.name`` the request carries.
SCHEMA_NAME = "verdict"
KEYWORDS = frozenset({"type", "properties", "required", "additionalProperties", "enum", "minimum", "maximum",
                      "minLength", "maxLength", "title", "description"})
TYPES = frozenset({"object", "array", "string", "integer", "number", "boolean", "null"})
#: The scales a category's number is written on: its key inside the category's object, and its values.
SCALES = {"raw_0_7": tuple(range(8)), "severity_0_3": tuple(range(4))}


@dataclass(frozen=True)
class Scale:
    """Where a category's verdict is written and what it may be: ``key`` inside the category's object (None: the
    category's value is the number itself), whether it is a raw level 0-7, and the values the schema allows."""

    key: str | None
    raw: bool
    allowed: tuple[int, ...]


@dataclass(frozen=True)
class VerdictSchema:
    """A template set's declared verdict: the JSON Schema and, per category, the scale it is written on."""

    schema: dict[str, Any]
    scales: dict[str, Scale]

    def response_format(self) -> dict[str, Any]:
        """The request's ``response_format``: this schema, strict."""
        return {"type": "json_schema", "json_schema": {"name": SCHEMA_NAME, "strict": True, "schema": self.schema}}

    def violation(self, value: Any) -> str | None:
        """The first way ``value`` breaks the schema, or None when it validates.

        >>> verdict = VerdictSchema.of({"type": "object", "properties": {c: {"type": "integer", "minimum": 0,
        ...     "maximum": 7} for c in ("H", "S", "V", "SH")}, "required": ["H", "S", "V", "SH"],
        ...     "additionalProperties": False})
        >>> verdict.violation({"H": 0, "S": 9, "V": 0, "SH": 0})
        'S: 9 is above the maximum 7'
        >>> verdict.violation({"H": 0, "S": 1, "V": 0, "SH": 0}) is None
        True
        """
        return _violation(value, self.schema, "")

    @classmethod
    def of(cls, schema: Any, where: str = SCHEMA_FILE) -> VerdictSchema:
        """Check ``schema`` as a verdict's declaration (a TemplateError naming ``where`` and the fault otherwise)."""
        _check(schema, where, "(root)")
        if schema.get("type") != "object":
            raise TemplateError(f"{where}: a verdict is a JSON object; the root needs \"type\": \"object\"")
        properties = schema.get("properties", {})
        scales = {}
        for category in CATEGORIES:
            code = CATEGORY_CODES[category]
            if code not in properties:
                raise TemplateError(
                    f"{where}: the verdict declares no category {code}; it needs {list(CATEGORY_CODES.values())}"
                )
            scales[category] = _scale(properties[code], f"{where}: {code}")
        return cls(schema, scales)


def load_verdict_schema(folder: Path) -> VerdictSchema | None:
    """The verdict declared in ``folder/schema.json``, or None when the set declares none."""
    path = folder / SCHEMA_FILE
    if not path.exists():
        return None
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(f"{path}: cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise TemplateError(f"{path}, line {exc.lineno}: not JSON: {exc.msg}") from None
    return VerdictSchema.of(schema, str(path))


def _check(schema: Any, where: str, at: str) -> None:
    """Refuse a schema harness would not read the same way as a strict endpoint: keywords outside the subset, objects
    that allow other keys or leave a property optional, bounds that are not numbers."""
    if not isinstance(schema, dict):
        raise TemplateError(f"{where}: {at} must be a JSON Schema object")
    unknown = sorted(set(schema) - KEYWORDS)
    if unknown:
        raise TemplateError(f"{where}: {at}: the keyword {unknown[0]!r} is not supported; a verdict's schema uses "
                            f"{sorted(KEYWORDS)}")
    kinds = _types(schema)
    if not kinds or not set(kinds) <= TYPES:
        raise TemplateError(f"{where}: {at}: \"type\" must be one of {sorted(TYPES)} (or a list of them)")
    for bound in ("minimum", "maximum", "minLength", "maxLength"):
        if bound in schema and (isinstance(schema[bound], bool) or not isinstance(schema[bound], (int, float))):
            raise TemplateError(f"{where}: {at}: {bound!r} must be a number")
    if "enum" in schema and not (isinstance(schema["enum"], list) and schema["enum"]):
        raise TemplateError(f"{where}: {at}: \"enum\" must be a non-empty list")
    if "object" in kinds:
        properties = schema.get("properties")
        if not isinstance(properties, dict) or not properties:
            raise TemplateError(f"{where}: {at}: an object needs \"properties\"")
        if schema.get("additionalProperties") is not False or schema.get("required") != list(properties):
            raise TemplateError(f"{where}: {at}: strict structured outputs need \"additionalProperties\": false "
                                f"and every property required, in order ({list(properties)}); "
                                "make an optional one nullable")
        for name, sub in properties.items():
            _check(sub, where, name if at == "(root)" else f"{at}.{name}")


def _types(schema: dict[str, Any]) -> list[str]:
    kind = schema.get("type")
    if isinstance(kind, str):
        return [kind]
    return [k for k in kind if isinstance(k, str)] if isinstance(kind, list) else []


def _integers(schema: dict[str, Any]) -> tuple[int, ...] | None:
    """The integers a number's schema allows, when it is an integer with finite bounds or an enum of integers."""
    if _types(schema) != ["integer"]:
        return None
    if "enum" in schema:
        values = schema["enum"]
        return tuple(values) if all(isinstance(v, int) and not isinstance(v, bool) for v in values) else None
    if "minimum" not in schema or "maximum" not in schema:
        return None
    return tuple(range(int(schema["minimum"]), int(schema["maximum"]) + 1))


def _scale(schema: dict[str, Any], where: str) -> Scale:
    """How a category is written: a bare integer on one scale, or an object whose first number is on one."""
    bare = _integers(schema)
    if bare is not None:
        for key, scale in SCALES.items():
            if bare and set(bare) <= set(scale) and max(bare) == scale[-1]:
                return Scale(None, key == "raw_0_7", bare)
        raise TemplateError(
            f"{where}: a bare integer verdict runs 0-7 (a raw level) or 0-3 (a severity); got {list(bare)}"
        )
    if _types(schema) == ["object"]:
        key, sub = next(iter(schema["properties"].items()))
        values = _integers(sub) if key in SCALES else None
        if values and set(values) <= set(SCALES[key]):
            return Scale(key, key == "raw_0_7", values)
        raise TemplateError(f"{where}: the category's object needs \"raw_0_7\" (integer 0-7) or \"severity_0_3\" "
                            "(integer 0-3) as its first number")
    raise TemplateError(f"{where}: a category is an integer (minimum and maximum, or an enum) or an object of them")


def _is(value: Any, kind: str) -> bool:
    if kind == "integer":
        whole = isinstance(value, int) and not isinstance(value, bool)
        return whole or (isinstance(value, float) and value.is_integer())
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    expected = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}[kind]
    return isinstance(value, expected)


def _kind(value: Any) -> str:
    return next(k for k in ("null", "boolean", "integer", "number", "string", "array", "object") if _is(value, k))


def _violation(value: Any, schema: dict[str, Any], at: str) -> str | None:
    where = at or "the answer"
    kinds = _types(schema)
    if not any(_is(value, kind) for kind in kinds):
        return f"{where}: expected {' or '.join(kinds)}, got {_kind(value)}"
    if "enum" in schema and not any(_kind(value) == _kind(v) and value == v for v in schema["enum"]):
        return f"{where}: {json.dumps(value)} is not one of {json.dumps(schema['enum'])}"
    if _is(value, "number"):
        if "minimum" in schema and value < schema["minimum"]:
            return f"{where}: {json.dumps(value)} is below the minimum {schema['minimum']}"
        if "maximum" in schema and value > schema["maximum"]:
            return f"{where}: {json.dumps(value)} is above the maximum {schema['maximum']}"
    if isinstance(value, str):
        if len(value) > schema.get("maxLength", len(value)):
            return f"{where}: {len(value)} characters, over the maxLength {schema['maxLength']}"
        if len(value) < schema.get("minLength", 0):
            return f"{where}: {len(value)} characters, under the minLength {schema['minLength']}"
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        missing = [name for name in schema.get("required", []) if name not in value]
        if missing:
            return f"{where}: missing {missing[0]!r}"
        if schema.get("additionalProperties") is False:
            extra = [name for name in value if name not in properties]
            if extra:
                return f"{where}: {extra[0]!r} is not declared"
        for name, sub in properties.items():
            if name in value:
                problem = _violation(value[name], sub, f"{at}.{name}" if at else name)
                if problem is not None:
                    return problem
    return None
