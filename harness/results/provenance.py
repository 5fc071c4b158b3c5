"""Where a result came from: its inputs (file and hash), whose labels it read, the graders and the version.

Every top-level result carries one as ``provenance`` when a command, the demo or a study
writes it (:func:`harness.io.provenance.provenance_of` builds it from the paths the command
was given); a result built in a notebook without one simply has none.
"""

from __future__ import annotations

from pydantic import Field

from .base import Result


class InputFile(Result):
    """One input: a file (its SHA-256 over the bytes) or a run folder (the hash of its labels.jsonl)."""

    role: str
    path: str
    sha256: str | None = None


class GraderInfo(Result):
    """A grader as its run folder's manifest names it (no key: endpoints are stored without credentials)."""

    run: str
    model: str
    endpoint: str | None = None
    template_hash: str
    shots_hash: str
    shots_count: int = 0


class Provenance(Result):
    """What a result was computed from, by which version, when."""

    harness_version: str
    created: str
    #: The producing step: calibrate, compare, analyze, agreement, plan, select, flips, shot-search.
    step: str
    #: Whose labels the figures are: "grader", "human", or "grader vs human".
    label_source: str
    inputs: list[InputFile] = Field(default_factory=list)
    graders: list[GraderInfo] = Field(default_factory=list)


class Stamped(Result):
    """A top-level result that can name its provenance."""

    provenance: Provenance | None = None
    #: Its intervals that rest on fewer than ``FEWEST_CLUSTERS`` clusters, one warning per count (set when stamped).
    few_clusters: list[str] = Field(default_factory=list)
