"""What every typed result shares: one pydantic declaration that builds, writes, reads and describes it.

A producer (``calibrate_run``, ``analyze``, ``grade`` …) builds its result as one of these types;
the same declaration serialises it (:meth:`Result.to_json`, :meth:`Result.write`), reads it back
strictly (:meth:`Result.from_json`: a missing field or a wrong type is a
:class:`~harness.core.errors.ResultError` naming its path, ``analysis.pooled.escalation.rate``)
and publishes its JSON Schema (``harness schema NAME``, ``docs/schemas/``).

Conventions:

* **Strict types**: an ``int`` field takes no ``"2"``, ``2.0`` or ``True``; a ``float`` field
  takes an integer (JSON writes ``1.0`` as ``1`` in other tools).
* **Absent is not null**: a field the producer did not set is left out of the JSON (and reads
  back unset), so ``"asymmetry"`` exists only where both sides were calibrated.
* **Unknown fields are ignored on read** (a newer writer may add some); constructing a result
  with an unknown keyword is caught by mypy through pydantic's plugin.
* **Read like the JSON**: ``result["pooled"]["escalation"]["rate"]`` is
  ``result.pooled.escalation.rate``, for code (and notebooks) written against the JSON files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, ValidationError

from ..core.errors import ResultError

CI = list[float | None]

#: Why a missing field is missing, said once for every result.
_MISSING = "missing; the result was written by another version of harness, or changed by hand"
_TYPE_WORDS = {
    "int_type": "int",
    "float_type": "float",
    "string_type": "str",
    "bool_type": "bool",
    "list_type": "a list",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
}


def _path(name: str, loc: tuple[int | str, ...]) -> str:
    text = name
    for step in loc:
        text += f"[{step}]" if isinstance(step, int) else f".{step}"
    return text


def _message(name: str, error: Any) -> str:
    where = _path(name, tuple(error["loc"]))
    kind = error["type"]
    if kind == "missing":
        return f"{where}: {_MISSING}"
    if kind in _TYPE_WORDS:
        given = error.get("input")
        return f"{where}: expected {_TYPE_WORDS[kind]}, got {type(given).__name__} {given!r}"[:300]
    return f"{where}: {error['msg']}"


class Result(BaseModel):
    """Base of every result type (see the module docstring)."""

    model_config = ConfigDict(frozen=True, strict=True, extra="ignore")

    @classmethod
    def from_json(cls, data: Any, *, name: str | None = None) -> Self:
        """Read a result strictly from its JSON value; every problem is a located ResultError."""
        label = name or cls.__name__.lower()
        if isinstance(data, cls):  # already typed: nothing to read
            return data
        if not isinstance(data, dict):
            raise ResultError(f"{label}: expected a JSON object")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ResultError(_message(label, exc.errors()[0])) from None

    def to_json(self) -> dict[str, Any]:
        """The plain JSON value, with the fields the producer set, in declaration order."""
        return self.model_dump(mode="json", exclude_unset=True)

    def write(self, path: str | Path) -> Path:
        """Write the result as indented JSON, atomically (no reader ever sees half a file)."""
        from ..core.atomic import write_json_atomic

        target = Path(path)
        write_json_atomic(target, self.to_json(), kind=self.file_kind)
        return target

    #: What the file is to :mod:`harness.core.ownership`: a result is replaced only by a result (a run's manifest only
    #: by a manifest).
    file_kind: ClassVar[str] = "result"

    def fields(self) -> dict[str, Any]:
        """The set fields as attributes (nested results stay typed), to build a wider result from this one."""
        return {name: getattr(self, name) for name in type(self).model_fields if name in self.model_fields_set}

    # Read access shaped like the JSON (see the module docstring).
    def keys(self) -> list[str]:
        return [name for name in type(self).model_fields if name in self.model_fields_set]

    def __getitem__(self, key: str) -> Any:
        if key not in self.model_fields_set:
            raise KeyError(key)
        return getattr(self, key)

    def __contains__(self, key: object) -> bool:
        return key in self.model_fields_set

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key) if key in self.model_fields_set else default

    def __eq__(self, other: object) -> bool:
        if isinstance(other, dict):  # a result equals the JSON it is written as
            return self.to_json() == other
        return super().__eq__(other)

    def __hash__(self) -> int:
        return hash(self.model_dump_json())


def schema_of(kind: type[Result]) -> dict[str, Any]:
    """The JSON Schema of a result type, as other tools read the files harness writes."""
    schema = kind.model_json_schema(mode="serialization")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
