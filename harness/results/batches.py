"""A ``grade --batch`` run's ``batches.json``: the batches it submitted, read strictly (a damaged file is a
located error, never a second batch). A state file, not a result: its models are plain pydantic."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError


class BatchEntry(BaseModel):
    """One submitted batch: its id (None until the endpoint confirmed it), input file, request keys and state."""

    model_config = ConfigDict(strict=True, extra="ignore")

    id: str | None
    input_file_id: str
    keys: list[str]
    status: str
    recorded: bool = False
    request_counts: dict[str, int] | None = None
    #: Ids of batches the endpoint no longer knew, whose requests this batch carries again.
    replaces: list[str] | None = None


class BatchState(BaseModel):
    """``batches.json``."""

    model_config = ConfigDict(strict=True, extra="ignore")

    schema_version: int
    batches: list[BatchEntry]


def batch_state(data: Any, name: str) -> dict[str, Any]:
    """``data`` checked as a batch state, as plain JSON with every field; a ValueError naming the first problem."""
    if not isinstance(data, dict):
        raise ValueError(f"{name}: expected a JSON object")
    try:
        return BatchState.model_validate(data).model_dump(mode="json")
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ValueError(f"{name}: {where}: {first['msg']}") from None
