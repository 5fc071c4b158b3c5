"""What a step returns, and the pieces every step shares: provenance with the caller's context, held-out labels."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.claims import Output
from ..io.provenance import provenance_of, stamped

if TYPE_CHECKING:
    import pandas as pd

    from ..results.base import Result

#: Extra provenance inputs a caller adds (a study names its study file): ``(role, path)``.
Context = Sequence[tuple[str, "str | Path | None"]]


@dataclass(frozen=True)
class Outcome:
    """A step's typed result and the files it wrote (the first is the result's own file)."""

    result: Result
    written: list[Path] = field(default_factory=list)


def claimed(outputs: Sequence[Output], inputs: Sequence[tuple[str, Any]]) -> None:
    """Refuse, before the step does any work, an output that would change a byte harness did not write
    (:func:`harness.core.claims.claim`): an input of the step, a user's file, a folder where a file goes."""
    from ..core.claims import claim

    claim(outputs, inputs=[(name, path) for name, path in inputs if path is not None])


def result_file(path: Path, param: str = "`out`") -> Output:
    """One result JSON file."""
    return Output(Path(path), param=param, kind="result")


def stamp(result: Any, step: str, label_source: str, inputs: Sequence[tuple[str, Any]], context: Context) -> Any:
    """The result stamped with its provenance: the step's inputs and the caller's context."""
    return stamped(result, provenance_of(step, label_source, [*inputs, *context]))


def held_out(human: pd.DataFrame, search_file: str | None) -> tuple[pd.DataFrame, list[str]]:
    """The human labels narrowed to an exemplar search's held-out test pairs, and the warning that says so.

    A grader whose exemplars the search chose on these labels is scored only where it was not fit.
    """
    if search_file is None:
        return human, []
    from ..core.errors import ConfigError
    from ..io.readers import read_result
    from ..results.shots import ShotSearch

    search = read_result(Path(search_file), ShotSearch)
    if not search.test_ids:
        raise ConfigError(f"`held_out` {search_file}: it records no test ids; run the exemplar search again with this "
                          "version")
    keep = set(search.test_ids)
    narrowed = human[human["id"].astype(str).isin(keep)].reset_index(drop=True)
    if narrowed.empty:
        raise ConfigError(f"`held_out` {search_file}: none of its {len(keep)} test pairs is in the human table")
    return narrowed, [f"scored on the exemplar search's held-out test pairs only "
                      f"({len(narrowed)} of {len(human)} pairs; {search_file}): its exemplars were chosen on the "
                      "others"]


def fitted_ids(manifest: Any) -> list[str]:
    """The ids of the pairs a derived run's verdict rule was fit on (``calibrate-thresholds``' dev split; none for any
    other run)."""
    info = manifest.params.get("thresholds") if isinstance(getattr(manifest, "params", None), dict) else None
    split = info.get("split") if isinstance(info, dict) else None
    ids = split.get("dev_ids") if isinstance(split, dict) else None
    return [str(i) for i in ids] if isinstance(ids, list) else []


def without_fit(human: pd.DataFrame, runs: Sequence[tuple[Path, Any]]) -> tuple[pd.DataFrame, list[str]]:
    """The human labels without the pairs the cut points of any of these runs (``(folder, manifest)``) were chosen on,
    and the warning that says so: a rule fit on labels is never scored on them (every run beside it is scored on the
    same pairs)."""
    from ..core.errors import ConfigError

    fitted = {str(path): fitted_ids(manifest) for path, manifest in runs if fitted_ids(manifest)}
    if not fitted:
        return human, []
    drop = set().union(*fitted.values())
    narrowed = human[~human["id"].astype(str).isin(drop)].reset_index(drop=True)
    names = ", ".join(fitted)
    if narrowed.empty:
        raise ConfigError(f"every pair of the human table is one the cut points of {names} were chosen on; score it on "
                          "other pairs (its thresholds.json holds the held-out agreement)")
    return narrowed, [f"scored without the {len(human) - len(narrowed)} pairs the cut points of {names} were chosen on "
                      f"({len(narrowed)} of {len(human)} pairs kept): a rule is never scored where it was fit"]


def ratings_without_fit(ratings: Any, runs: Sequence[tuple[Path, Any]]) -> Any:
    """Several raters' labels (:class:`~harness.io.ratings.Ratings`, or None) without the items the cut points of any
    of these runs were chosen on: the human ceiling and the alternative annotator test beside a derived run are read
    where its rule was not fit, as its agreement is."""
    import dataclasses

    import numpy as np

    drop = {i for _, manifest in runs for i in fitted_ids(manifest)}
    if ratings is None or not drop:
        return ratings
    keep = np.array([i not in drop for i in ratings.ids], dtype=bool)
    return dataclasses.replace(
        ratings, ids=[i for i, k in zip(ratings.ids, keep, strict=True) if k], clusters=ratings.clusters[keep],
        scopes={s: v[keep] for s, v in ratings.scopes.items()},
        graders={g: {s: v[keep] for s, v in per.items()} for g, per in ratings.graders.items()},
        final={s: v[keep] for s, v in ratings.final.items()} if ratings.final is not None else None)
