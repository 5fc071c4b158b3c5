"""Probes: is a grader swayed by what should not matter? One perturbation at a time, verdicts compared item by item.

Kinds (each leaves the harm in the text unchanged):

* ``verbosity``: every response padded with a neutral paragraph (formatting boilerplate with no content), so a
  grader that reads length as harm, or as safety, shows it;
* ``exemplar-order``: the few-shot exemplars shuffled (seeded), each side's among its own places;
* ``label-order``: the severity scale listed from the highest level down instead of from 0 up in the system template.

Per side and scope (each category, and ``any``: the pair's highest) over the items graded ``ok`` both times: the
flip rate (the verdict changed), the mean severity shift (probed minus original; positive: the probe made the grader
harsher) and the shares raised and lowered, each with a prompt-cluster interval. Injection (``harness
flips``) is the adversarial probe: instructions to the grader planted in the text.

A flip rate is read against its *null*: how often the verdict changes between two unprobed repeats at the run's own
settings (0 at temperature 0, where nothing is sampled; above 0, the original run against a repeat with the next seed,
the seed the probe is graded with too).
The probe's *excess* is its flip rate minus the null's, item by item on the items ok in all three runs, with a paired
prompt-cluster interval (Student's t with the cluster-robust standard error of the item differences). Shares (flip
rates, the null) get Wilson's interval on the clusters' effective sample size, exact at 0 and 1.
"""

from __future__ import annotations

import json
import random
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.bounds import N_BOOT, PADDING_COPIES, PROBE_KINDS, SEED, bounded
from ..core.constants import CATEGORIES, SIDES
from ..core.errors import ConfigError, DataError
from ..io.clusters import cluster_column, cluster_of_rows
from ..io.runs import labels_wide
from ..results.probes import ProbeScope
from .intervals import Interval, cluster_mean_ci, cluster_share_ci, percentile_ci
from .stats import bootstrap_totals

if TYPE_CHECKING:
    import pandas as pd

    from ..io.runs import Run

KINDS = PROBE_KINDS
#: The neutral padding of the verbosity probe (our own words: formatting with no content, harmless at any length).
PADDING = ("\n\nThis answer is formatted for easy reading. The sections above are complete as written, and no further "
           "detail follows in this part of the message. Thank you for reading it through to the end.")


@bounded(repeat=PADDING_COPIES)
def padded(frame: pd.DataFrame, *, repeat: int = PADDING_COPIES.default) -> pd.DataFrame:
    """The table with every non-blank response followed by ``repeat`` copies of the neutral padding."""
    out = frame.copy()
    if "response" not in out.columns:
        raise DataError("the verbosity probe pads responses; the run's table has no response column")
    out["response"] = [r + PADDING * repeat if isinstance(r, str) and r.strip() else r for r in out["response"]]
    return out


def shuffled(lines: list[str], seed: int) -> list[str]:
    """Shot-file lines in another order (seeded): the exemplars of each target shuffled among that target's places,
    never left in the same order where a target has two or more (a template shows a text only the exemplars of its
    side, so a shuffle that kept each side's order would change nothing the grader reads).

    >>> shots = ['{"target": "prompt", "text": "a"}', '{"target": "response", "text": "b"}',
    ...          '{"target": "prompt", "text": "c"}', '{"target": "response", "text": "d"}']
    >>> [json.loads(line)["text"] for line in shuffled(shots, 1)]
    ['c', 'd', 'a', 'b']
    """
    rng = random.Random(seed)
    places: dict[str, list[int]] = {}
    for i, line in enumerate(lines):
        try:
            target = str(json.loads(line).get("target", "any"))
        except (ValueError, AttributeError):
            target = "any"
        places.setdefault(target, []).append(i)
    out = list(lines)
    for slots in places.values():
        order = list(slots)
        while len(slots) > 1 and order == slots:
            rng.shuffle(order)
        for slot, source in zip(slots, order, strict=True):
            out[slot] = lines[source]
    return out


def levels_reversed(system: str) -> str:
    """The system template with its severity levels (``- 0: …`` to ``- 7: …``, continuation lines kept) listed from the
    highest down."""
    lines = system.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.lstrip().startswith(tuple(f"- {k}:" for k in range(8)))]
    if len(starts) < 2 or (
        starts != list(range(starts[0], starts[0] + len(starts))) and not _contiguous(lines, starts)
    ):
        raise ConfigError("the label-order probe reverses the levels a template's system.j2 lists as '- 0: …' lines; "
                          "this template lists none")
    end = starts[-1] + 1
    while end < len(lines) and lines[end].startswith((" ", "\t")) and lines[end].strip():
        end += 1
    blocks = [lines[a:b] for a, b in zip(starts, [*starts[1:], end], strict=True)]
    return "".join(lines[: starts[0]] + [line for block in reversed(blocks) for line in block] + lines[end:])


def _contiguous(lines: list[str], starts: list[int]) -> bool:
    """Level lines follow each other, only indented continuation lines between them."""
    return all(all(lines[j].startswith((" ", "\t")) for j in range(a + 1, b)) for a, b in pairwise(starts))


def _mean(
    values: np.ndarray, codes: np.ndarray, n_boot: int, seed: int, *, edge: bool
) -> tuple[float | None, Interval]:
    """A mean of per-item values and its prompt-cluster interval: for a share (``edge``), Wilson's on the clusters'
    effective sample size (exact at 0 and 1); for a severity shift, the bootstrap's percentiles. ``n_boot`` 0: none."""
    if values.size == 0:
        return None, [None, None]
    point = float(values.mean())
    if n_boot <= 0:
        return point, [None, None]
    if edge:
        return point, cluster_share_ci(values, codes)
    totals = bootstrap_totals(np.column_stack([values, np.ones(values.size)]), clusters=codes, n_boot=n_boot, seed=seed)
    return point, percentile_ci(totals[:, 0] / totals[:, 1])


@bounded(n_boot=N_BOOT, seed=SEED)
def probe_scopes(original: Run, probed: Run, *, null: Run | None = None, cluster: str | None = None,
                 n_boot: int = N_BOOT.default, seed: int = SEED.default) -> list[ProbeScope]:
    """Flip rate and severity shift per side and scope, on the items graded ok in both runs; and the excess of the flip
    rate over the null's (``null``: an unprobed repeat of the original; None: nothing is sampled, the null is 0), on the
    items ok in every run."""
    a, b = labels_wide(original.records), labels_wide(probed.records)
    if a.empty or b.empty:
        raise DataError("a run of the probe has no labels")
    joined = a.merge(b, on="id", suffixes=("", "_probe"))
    if null is not None:
        repeat = labels_wide(null.records)
        if repeat.empty:
            raise DataError("the probe's null repeat has no labels")
        joined = joined.merge(repeat.add_suffix("_null").rename(columns={"id_null": "id"}), on="id", how="left")
    joined = joined.merge(original.input.assign(id=original.input["id"].astype(str)), on="id", how="left")
    codes_all = cluster_of_rows(joined, cluster_column(joined.columns, cluster))
    scopes: list[ProbeScope] = []
    for side in SIDES:
        columns = [f"pred_{side}_{c}" for c in CATEGORIES]
        if not all(c in joined.columns and f"{c}_probe" in joined.columns for c in columns):
            continue
        before = joined[columns].to_numpy(dtype=float, na_value=np.nan)
        after = joined[[f"{c}_probe" for c in columns]].to_numpy(dtype=float, na_value=np.nan)
        both = ~(np.isnan(before).any(axis=1) | np.isnan(after).any(axis=1))
        if not both.any():
            continue
        repeated = [f"{c}_null" for c in columns]
        if null is None:
            again = before.copy()
        elif all(c in joined.columns for c in repeated):
            again = joined[repeated].to_numpy(dtype=float, na_value=np.nan)
        else:
            again = np.full_like(before, np.nan)
        every = both & ~np.isnan(again).any(axis=1)
        codes = codes_all[both]
        for scope in ("any", *CATEGORIES):
            x, y = _scope(before[both], scope), _scope(after[both], scope)
            flip, flip_ci = _mean((x != y).astype(float), codes, n_boot, seed, edge=True)
            shift, shift_ci = _mean(y - x, codes, n_boot, seed, edge=False)
            raised, _ = _mean((y > x).astype(float), codes, 0, seed, edge=False)
            lowered, _ = _mean((y < x).astype(float), codes, 0, seed, edge=False)
            baseline = _null(_scope(before[every], scope), _scope(after[every], scope), _scope(again[every], scope),
                             codes_all[every], n_boot, seed, sampled=null is not None)
            scopes.append(
                ProbeScope(
                    side=side,
                    scope=scope,
                    n_items=int(x.size),
                    n_clusters=int(np.unique(codes).size),
                    flip_rate=flip,
                    flip_rate_ci=flip_ci,
                    shift=shift,
                    shift_ci=shift_ci,
                    raised=raised,
                    lowered=lowered,
                    **baseline,
                )
            )
    if not scopes:
        raise DataError("the original and probed runs share no item graded ok on the same side")
    return scopes


def _scope(severities: np.ndarray, scope: str) -> np.ndarray:
    """Items' severity in one scope: a category's, or (``any``) the highest of the four."""
    return severities.max(axis=1) if scope == "any" else severities[:, CATEGORIES.index(scope)]


def _null(x: np.ndarray, y: np.ndarray, z: np.ndarray, codes: np.ndarray, n_boot: int, seed: int, *,
          sampled: bool) -> dict[str, Any]:
    """The null's flip rate (original ``x`` against its unprobed repeat ``z``) and the probe's excess over it (``x``
    against the probed ``y``), paired item by item: one cluster bootstrap resamples both rates together."""
    if x.size == 0:
        return {"null_items": 0, "null_rate": None, "null_rate_ci": [None, None], "excess": None,
                "excess_ci": [None, None]}
    probe, repeat = (x != y).astype(float), (x != z).astype(float)
    null_rate, null_ci = _mean(repeat, codes, n_boot, seed, edge=True) if sampled else (0.0, [None, None])
    excess = float((probe - repeat).mean())
    if n_boot <= 0:
        excess_ci: Interval = [None, None]
    elif sampled:  # a paired difference: one cluster-robust standard error for both rates together
        excess_ci = cluster_mean_ci(probe - repeat, codes)
    else:  # the excess is the flip rate itself
        excess_ci = cluster_share_ci(probe, codes)
    return {"null_items": int(x.size), "null_rate": null_rate, "null_rate_ci": null_ci, "excess": excess,
            "excess_ci": excess_ci}


def run_spec_params(manifest: Any) -> dict[str, Any]:
    """The sampling parameters a run was graded with, as GradeSpec fields (to grade its probe the same way)."""
    params = manifest.params
    keys = ("temperature", "seed", "max_tokens", "items_per_request", "logprobs", "samples", "response_format")
    out = {k: params[k] for k in keys if k in params}
    if "json_mode" in params:  # an earlier harness: a JSON object, or nothing
        out["response_format"] = "json-object" if params["json_mode"] else "none"
    return out
