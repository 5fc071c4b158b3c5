"""``harness stability`` as one library step: the repeats of one grading job read as raters of the same items."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .outcome import Context, Outcome, claimed, result_file, stamp
from .settings import StabilitySettings


def repeats_of(sources: Sequence[str | Path]) -> list[Path]:
    """The repeat run folders: the ``repeat-*`` folders of one ``grade --repeats K`` folder, or the folders given."""
    from ..core.errors import ConfigError
    from ..grading.grade import repeat_folders

    paths = [Path(s) for s in sources]
    if len({p.resolve() for p in paths}) != len(paths):
        raise ConfigError(f"stability: a run folder is named twice ({[str(p) for p in paths]}); each repeat once")
    if len(paths) == 1:
        found = repeat_folders(paths[0])
        if not found:
            raise ConfigError(f"{paths[0]}: holds no repeat-1 … repeat-K folders; grade it with "
                              "`harness grade … --repeats K` (K of 2 or more), or name two or more run folders of the "
                              "same job")
        return found
    return paths


def stability(sources: Sequence[str | Path], settings: StabilitySettings, *, out: str | Path | None = None,
              context: Context = ()) -> Outcome:
    """Test–retest agreement among the repeats; ``stability.json`` goes to ``out`` (default: the repeats' folder, or
    beside the first run)."""
    from ..analysis.stability import stability as measure
    from ..io.runs import load_run

    folders = repeats_of(sources)
    default = Path(sources[0]) if len(sources) == 1 else folders[0].parent
    target = Path(out) if out is not None else default / "stability.json"
    claimed([result_file(target)], [("a repeat", f) for f in folders])
    result = measure([load_run(f) for f in folders], threshold=settings.threshold, cluster=settings.cluster,
                     n_boot=settings.n_boot, seed=settings.seed)
    result = stamp(result, "stability", "grader (repeats)", [*(("run", f) for f in folders)], context)
    result.write(target)
    return Outcome(result, [target])
