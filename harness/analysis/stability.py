"""How stable is a grader: its verdicts across K repeats of the same job (``grade --repeats K``).

The repeats are read as raters of the same items: Krippendorff's α (ordinal) over all of them and the
quadratic-weighted κ of each pair (:func:`harness.analysis.raters.scope_agreement`), per side and scope (each
category, and ``any``: the pair's highest). Beside them, per side and scope: the share of items whose verdict is
not the same in every repeat, and the majority verdict's margin (the mean share of repeats agreeing with an item's
most frequent verdict), each with a prompt-cluster interval (the changed share: Wilson's on the clusters' effective
sample size); and per repeat the prompt side's harmful share
minus the response side's, so a reader sees how much of the prompt/response asymmetry moves from run to run. Only
items every repeat graded ``ok`` count; the others are counted in the warnings, never read as a verdict.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..core.bounds import N_BOOT, SEED, THRESHOLD, bounded
from ..core.constants import CATEGORIES, SCHEMA_VERSION, SIDES
from ..core.errors import DataError
from ..io.clusters import cluster_column, cluster_of_rows
from ..io.runs import labels_wide
from ..results.common import Unit
from ..results.stability import Stability, StabilityScope
from .intervals import Interval, cluster_share_ci, edge_interval, percentile_ci
from .raters import scope_agreement
from .stats import bootstrap_totals

if TYPE_CHECKING:
    from ..io.runs import Run


def _share(values: np.ndarray, codes: np.ndarray, n_boot: int, seed: int, *, binary: bool = False
           ) -> tuple[float | None, Interval]:
    """A mean of per-item values with its prompt-cluster interval: for a share of items (``binary``), Wilson's on the
    clusters' effective sample size; else the bootstrap's percentiles; exact at 0 and 1 either way."""
    if values.size == 0:
        return None, [None, None]
    point = float(values.mean())
    if binary:
        return point, cluster_share_ci(values, codes) if n_boot > 0 else [None, None]
    totals = bootstrap_totals(np.column_stack([values, np.ones(values.size)]), clusters=codes, n_boot=n_boot, seed=seed)
    ci: Interval = percentile_ci(totals[:, 0] / totals[:, 1]) if totals.shape[0] else [None, None]
    ci, _ = edge_interval(point, ci, int(np.unique(codes).size))
    return point, ci


def _matrix(frames: list, side: str, scope: str) -> np.ndarray:
    """Items x repeats of one side's severity in a scope (NaN where a repeat has no ok label)."""
    columns = [f"pred_{side}_{c}" for c in CATEGORIES]
    out = []
    for frame in frames:
        if not all(c in frame.columns for c in columns):
            out.append(np.full(len(frame), np.nan))
            continue
        values = frame[columns].to_numpy(dtype=float, na_value=np.nan)
        if scope == "any":
            top = np.full(len(frame), np.nan)
            complete = ~np.isnan(values).any(axis=1)
            top[complete] = values[complete].max(axis=1)
            out.append(top)
        else:
            out.append(values[:, CATEGORIES.index(scope)])
    return np.column_stack(out)


@bounded(threshold=THRESHOLD, n_boot=N_BOOT, seed=SEED)
def stability(runs: list[Run], *, threshold: int = THRESHOLD.default, cluster: str | None = None,
              n_boot: int = N_BOOT.default, seed: int = SEED.default) -> Stability:
    """Test–retest agreement among ``runs``, repeats of one grading job (same table, model, template, shots)."""
    if len(runs) < 2:
        raise DataError(f"stability needs at least two repeats; got {len(runs)}")
    cache_warnings = one_job(runs)
    ids = runs[0].input["id"].astype(str)
    frames = []
    for run in runs:
        wide = labels_wide(run.records)
        wide = wide.assign(id=wide["id"].astype(str)) if not wide.empty else wide
        frames.append(ids.to_frame().merge(wide, on="id", how="left") if not wide.empty else ids.to_frame())
    column = cluster_column(runs[0].input.columns, cluster)
    codes_all = cluster_of_rows(runs[0].input, column)
    scopes, warnings = [], list(cache_warnings)
    names = [f"repeat {k + 1}" for k in range(len(runs))]
    for side in SIDES:
        for scope in ("any", *CATEGORIES):
            matrix = _matrix(frames, side, scope)
            if np.isnan(matrix).all():
                continue
            complete = ~np.isnan(matrix).any(axis=1)
            if scope == "any" and (~complete).sum():
                warnings.append(
                    f"{side}: {int((~complete).sum())} of {len(complete)} items lack an ok verdict in some repeat "
                    "and are left out (never read as a verdict)"
                )
            kept, codes = matrix[complete], codes_all[complete]
            changed = (kept.max(axis=1) != kept.min(axis=1)).astype(float)
            modal = np.array([np.bincount(row.astype(int), minlength=4).max() for row in kept]) / kept.shape[1]
            agreement = scope_agreement(kept, codes, names, {}, None, level="ordinal", k=4, values=None, epsilon=0.1,
                                        n_boot=n_boot, seed=seed)
            change, change_ci = _share(changed, codes, n_boot, seed, binary=True)
            margin, margin_ci = _share(modal, codes, n_boot, seed)
            scopes.append(
                StabilityScope(
                    side=side,
                    scope=scope,
                    n_items=int(kept.shape[0]),
                    n_clusters=int(np.unique(codes).size),
                    changed=change,
                    changed_ci=change_ci,
                    margin=margin,
                    margin_ci=margin_ci,
                    agreement=agreement,
                )
            )
    if not scopes:
        raise DataError("the repeats share no graded side with ok verdicts")
    asymmetry = _asymmetry(frames, threshold)
    known = [a for a in asymmetry if a is not None]
    temperature = runs[0].manifest.params.get("temperature")
    if temperature == 0:
        warnings.append(
            "the repeats were graded at temperature 0: they measure the endpoint's determinism, not sampling"
        )
    return Stability(
        schema_version=SCHEMA_VERSION, repeats=len(runs), runs=[str(r.path) for r in runs],
        seeds=[r.manifest.params.get("seed") for r in runs], model=runs[0].manifest.model,
        temperature=float(temperature) if isinstance(temperature, int | float) else None, threshold=threshold,
        unit=Unit(cluster=column, n_items=len(ids), n_clusters=int(np.unique(codes_all).size)), scopes=scopes,
        from_cache=[sum(bool(r.get("cached")) for r in run.records) for run in runs],
        asymmetry=asymmetry, asymmetry_range=(max(known) - min(known)) if known else None, n_boot=n_boot, seed=seed,
        warnings=warnings,
    )


def _settings(run: Run) -> dict[str, object]:
    """What must be the same in every repeat of one job, by the name a refusal gives it (the seed may differ)."""
    manifest = run.manifest
    params = {k: v for k, v in manifest.params.items() if k != "seed"}
    response_format = "json_object" if params.pop("json_mode", False) else "text"
    return {"model": manifest.model, "template": manifest.template_hash, "shots": manifest.shots_hash,
            "table": manifest.input_sha256, "temperature": params.pop("temperature", None),
            "response format": response_format, **params}


def _name(run: Run) -> str:
    return run.path.name or str(run.path)


def one_job(runs: list[Run]) -> list[str]:
    """Refuse repeats that are not one job (settings other than the seed differ, each named with its values) or where a
    repeat is another served again by the completion cache (every answer cached, the same seed); the warnings for
    repeats partly answered by the cache."""
    settings = [_settings(r) for r in runs]
    keys = dict.fromkeys(k for s in settings for k in s)
    differ = [key for key in keys if len({repr(s.get(key)) for s in settings}) > 1]
    if differ:
        values = lambda key: ", ".join(f"{_name(r)} {s.get(key)!r}" for r, s in zip(runs, settings, strict=True))
        detail = "; ".join(f"{key}: {values(key)}" for key in differ)
        raise DataError(f"the repeats are not one job: {', '.join(differ)} differ ({detail}); grade the repeats "
                        "with one `harness grade … --repeats K` command, which changes only the seed")
    warnings = []
    for k, run in enumerate(runs):
        cached = sum(bool(r.get("cached")) for r in run.records)
        if not cached:
            continue
        seed = run.manifest.params.get("seed")
        twins = [other for j, other in enumerate(runs) if j != k and other.manifest.params.get("seed") == seed]
        if cached == len(run.records) and twins:
            raise DataError(f"{_name(run)} is {_name(twins[0])} again: every answer came from the completion cache "
                            f"and both have seed {seed}, so they agree by construction; grade the repeats with "
                            "`harness grade … --repeats K` (each its own seed) or with --no-cache")
        warnings.append(f"{_name(run)}: {cached} of {len(run.records)} answers came from the completion cache (an "
                        "earlier run's answers to the same requests, with this repeat's seed); they are new draws "
                        "only if that run is not among these repeats")
    return warnings


def _asymmetry(frames: list, threshold: int) -> list[float | None]:
    """Per repeat: the prompt side's harmful share minus the response side's, on the pairs with both sides ok."""
    out: list[float | None] = []
    for k in range(len(frames)):
        prompt, response = _matrix([frames[k]], "prompt", "any")[:, 0], _matrix([frames[k]], "response", "any")[:, 0]
        both = ~(np.isnan(prompt) | np.isnan(response))
        out.append(
            float((prompt[both] >= threshold).mean() - (response[both] >= threshold).mean()) if both.any() else None
        )
    return out
