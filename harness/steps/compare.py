"""``harness compare`` as one library step: several run folders against human labels, or against each other."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .outcome import (
    Context,
    Outcome,
    claimed,
    held_out,
    ratings_without_fit,
    result_file,
    stamp,
    without_fit,
)
from .settings import CompareSettings


def default_comparison_path(runs: Sequence[str | Path]) -> Path:
    """A file name that belongs to this set of runs only (another compare never overwrites it)."""
    import hashlib

    paths = [Path(r) for r in runs]
    key = "\n".join(str(p.resolve()) for p in paths)
    names = "-vs-".join(p.name for p in paths)[:60]
    safe = "".join(ch if ch.isalnum() or ch in "-._" else "_" for ch in names)
    return Path("runs") / f"comparison-{safe}-{hashlib.sha256(key.encode()).hexdigest()[:8]}.json"


def compare(runs: Sequence[str | Path], settings: CompareSettings, *, out: str | Path | None = None,
            context: Context = ()) -> Outcome:
    """Two or more run folders side by side: against ``settings.human`` with paired tests of their correctness, or
    (without human labels) against each other: κ, confusion and paired tests of their harmful shares.

    Writes the comparison JSON to ``out`` (default ``runs/comparison-<runs>-<hash>.json``).
    """
    from ..analysis.comparison import compare as compare_runs
    from ..analysis.comparison import compare_graders
    from ..core.errors import ConfigError
    from ..io.pairs import load_pairs
    from ..io.ratings import read_ratings
    from ..io.runs import load_run

    folders = [Path(r) for r in runs]
    if len(folders) < 2:
        raise ConfigError(f"compare needs at least two run folders; got {len(folders)}")
    if len(set(f.resolve() for f in folders)) != len(folders):
        raise ConfigError(f"compare: a run folder is named twice ({[str(f) for f in folders]})")
    target = Path(out) if out is not None else default_comparison_path(folders)
    claimed([result_file(target)], [*(("a compared run", f) for f in folders), ("`human`", settings.human),
                                    ("`ratings`", settings.ratings), ("`held_out`", settings.held_out)])
    loaded = [load_run(f) for f in folders]
    result: Any
    if settings.human is None:
        if settings.raters or settings.held_out:
            raise ConfigError("`raters` and `held_out` read human labels; name them with `human`")
        result = compare_graders(loaded, threshold=settings.threshold, cluster=settings.cluster, n_boot=settings.n_boot,
                                 seed=settings.seed)
        result = stamp(result, "compare", "grader vs grader", [*(("run", f) for f in folders)], context)
    else:
        ratings = settings.ratings or settings.human
        several = read_ratings(ratings, raters=list(settings.raters), graders=[str(f) for f in folders],
                               final="canonical", cluster=settings.cluster) if settings.raters else None
        human, warnings = held_out(load_pairs(settings.human), settings.held_out)
        human, fit = without_fit(human, [(r.path, r.manifest) for r in loaded])
        several = ratings_without_fit(several, [(r.path, r.manifest) for r in loaded])
        warnings = [*warnings, *fit]
        result = compare_runs(loaded, human, threshold=settings.threshold, cluster=settings.cluster,
                              n_boot=settings.n_boot, seed=settings.seed, raters=several, epsilon=settings.epsilon,
                              warnings=warnings)
        result = stamp(result, "compare", "graders vs human",
                       [*(("run", f) for f in folders), ("human", settings.human),
                        ("ratings", ratings if settings.raters else None), ("held out", settings.held_out)], context)
    result.write(target)
    return Outcome(result, [target])
