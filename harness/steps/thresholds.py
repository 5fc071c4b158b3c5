"""``harness calibrate-thresholds`` as one library step: verdict rules over a run's probabilities, cut points chosen on
a dev split, judged on held-out pairs, and a derived run folder whose verdicts follow the chosen rule (no requests)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.claims import Output
from .outcome import Context, Outcome, claimed, held_out, stamp
from .settings import ThresholdSettings, mapping_of

if TYPE_CHECKING:
    from ..io.runs import Run
    from ..results.thresholds import Thresholds

#: The result's name inside the derived run folder (``harness report DERIVED`` finds it there).
RESULT = "thresholds.json"


def default_out(source: str | Path, rule: str) -> Path:
    """The derived run's folder by default: beside the source, named by it and the rule (``baseline-thresholds``)."""
    path = Path(source)
    return path.with_name(f"{path.name}-{rule}")


def planned(out: Path) -> list[Output]:
    """The derived run folder: its manifest, labels, input and ``thresholds.json``."""
    from ..io.runs import INPUT, LABELS, MANIFEST

    return [Output(out, run=True, names=((MANIFEST, "manifest"), (LABELS, "run"), (INPUT, "run"), (RESULT, "result")))]


def _check_out(out: Path, source: Path) -> None:
    """The derived folder: new, or one harness derived before (replaced); never the source, never anything else."""
    from ..core.errors import ConfigError
    from ..io.runs import read_manifest

    if out.resolve() == source.resolve():
        raise ConfigError(f"`out` {out}: is the run itself; the derived run needs a folder of its own")
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise ConfigError(f"`out` {out}: expected a folder for the derived run")
    if out.exists() and any(out.iterdir()):
        try:
            earlier = read_manifest(out)
        except Exception:
            earlier = None
        if earlier is None or "thresholds" not in earlier.params:
            raise ConfigError(f"`out` {out}: holds files that are not a run harness derived by calibrate-thresholds; "
                              "choose a new folder")


def calibrate_thresholds(source: str | Path, settings: ThresholdSettings, *, out: str | Path | None = None,
                         context: Context = ()) -> Outcome:
    """Choose cut points on a dev split of ``source``'s labelled prompt clusters, judge argmax, expected and
    thresholds on the held-out rest, and write the derived run folder (``out``, default ``SOURCE-RULE`` beside the
    run) whose verdicts follow ``settings.rule``, with ``thresholds.json`` inside it. The derived run's manifest names
    the source, the rule, the cut points and the split; calibrate, compare and analyze leave its dev pairs out."""
    from ..analysis.thresholds import calibrate_thresholds as measure
    from ..core.errors import ConfigError
    from ..io.pairs import load_pairs
    from ..io.runs import load_run

    run_dir = Path(source)
    if settings.human is None:
        raise ConfigError("calibrate-thresholds needs `human` DATA: the human labels the cut points are chosen against")
    target = Path(out) if out is not None else default_out(run_dir, settings.rule)
    _check_out(target, run_dir)
    claimed(planned(target), [("the run", run_dir), ("`human`", settings.human), ("`held_out`", settings.held_out)])
    run = load_run(run_dir, full=True)
    if "thresholds" in run.manifest.params:
        raise ConfigError(f"{run_dir}: is a run calibrate-thresholds derived already; calibrate its source "
                          f"({run.manifest.params['thresholds'].get('source')}) instead")
    human, warnings = held_out(load_pairs(settings.human, mapping=mapping_of(settings.map)), settings.held_out)
    result = measure(run, human, rule=settings.rule, metric=settings.metric, threshold=settings.threshold,
                     max_fpr=settings.max_fpr, dev_frac=settings.dev_frac, cluster=settings.cluster,
                     n_boot=settings.n_boot, seed=settings.seed, derived=str(target), warnings=warnings)
    result = stamp(result, "calibrate-thresholds", f"grader ({settings.rule}) vs human",
                   [("run", run_dir), ("human", settings.human), ("held out", settings.held_out)], context)
    written = write_derived(run, result, target)
    return Outcome(result, [result.write(target / RESULT), *written])


def write_derived(run: Run, result: Thresholds, target: Path) -> list[Path]:
    """The derived run folder: the source's input, its label records under the rule, and a manifest that names the
    source, the rule, the cut points and the split (its dev ids: never scored on them)."""
    import json
    from datetime import UTC, datetime

    from ..analysis.verdicts import EXPECTED_CUTS, rule_records
    from ..core.atomic import atomic_path, ensure_folder
    from ..core.constants import CATEGORIES, VERSION
    from ..io.runs import INPUT, LABELS, MANIFEST

    cuts = {c.category: c.cuts for c in result.cut_points} if result.rule == "thresholds" else None
    records = rule_records(run.records, result.rule, cuts)
    counts: dict[str, int] = {}
    by_target: dict[str, dict[str, int]] = {}
    for record in records:
        counts[record["status"]] = counts.get(record["status"], 0) + 1
        side = by_target.setdefault(record["target"], {})
        side[record["status"]] = side.get(record["status"], 0) + 1
    split = result.split
    fitted = result.rule == "thresholds"
    expected = {c: list(EXPECTED_CUTS) for c in CATEGORIES}
    shown = cuts if cuts is not None else expected if result.rule == "expected" else None
    provenance: dict[str, Any] = {
        "source": str(run.path), "source_model": run.manifest.model, "rule": result.rule, "metric": result.metric,
        "threshold": result.threshold, "cut_points": shown, "result": RESULT,
        "split": {"seed": split.seed, "dev_frac": split.dev_frac, "cluster": split.cluster,
                  "dev_clusters": split.dev_clusters, "held_out_clusters": split.held_out_clusters,
                  # only cut points chosen on dev make its pairs unfit to score on
                  "dev_ids": split.dev_ids if fitted else []}}
    now = datetime.now(UTC).isoformat(timespec="seconds")
    manifest = run.manifest.model_copy(update={
        "model": f"{run.manifest.model}+{result.rule}", "params": {**run.manifest.params, "thresholds": provenance},
        "counts": counts, "counts_by_target": by_target, "created": now, "updated": now, "harness_version": VERSION,
        "cache_notes": []})
    ensure_folder(target, param="out")
    with atomic_path(target / INPUT, kind="run") as tmp:
        tmp.write_bytes((run.path / INPUT).read_bytes())
    with atomic_path(target / LABELS, kind="run") as tmp:
        tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    manifest.write(target / MANIFEST)
    return [target / MANIFEST, target / LABELS, target / INPUT]
