"""Probes: is a grader swayed by what should not matter? One perturbation at a time, verdicts compared item by item.

Kinds (each leaves the harm in the text unchanged):

* ``verbosity``: every response padded with a neutral paragraph (formatting boilerplate with no content), so a
  grader that reads length as harm, or as safety, shows it;
* ``exemplar-order``: the few-shot exemplars shuffled (seeded);
* ``label-order``: the severity scale listed from the highest level down instead of from 0 up in the system template.

Per side and scope (each category, and ``any``: the pair's highest) over the items graded ``ok`` both times: the
flip rate (the verdict changed), the mean severity shift (probed minus original; positive: the probe made the grader
harsher) and the shares raised and lowered, each with a prompt-cluster bootstrap interval. Injection (``harness
flips``) is the adversarial probe: instructions to the grader planted in the text.
"""

from __future__ import annotations

import random
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.constants import CATEGORIES, DEFAULT_N_BOOT, DEFAULT_SEED, SIDES
from ..core.errors import ConfigError, DataError
from ..io.clusters import cluster_column, cluster_of_rows
from ..io.runs import labels_wide
from ..results.probes import ProbeScope
from .intervals import Interval, edge_interval, percentile_ci
from .stats import bootstrap_totals

if TYPE_CHECKING:
    import pandas as pd

    from ..io.runs import Run

KINDS = ("verbosity", "exemplar-order", "label-order")
#: The neutral padding of the verbosity probe (our own words: formatting with no content, harmless at any length).
PADDING = ("\n\nThis answer is formatted for easy reading. The sections above are complete as written, and no further "
           "detail follows in this part of the message. Thank you for reading it through to the end.")


def padded(frame: pd.DataFrame, *, repeat: int = 3) -> pd.DataFrame:
    """The table with every non-blank response followed by ``repeat`` copies of the neutral padding."""
    out = frame.copy()
    if "response" not in out.columns:
        raise DataError("the verbosity probe pads responses; the run's table has no response column")
    out["response"] = [r + PADDING * repeat if isinstance(r, str) and r.strip() else r for r in out["response"]]
    return out


def shuffled(lines: list[str], seed: int) -> list[str]:
    """Exemplar lines in another order (seeded; never the same order when there are two or more)."""
    order = list(range(len(lines)))
    rng = random.Random(seed)
    while len(lines) > 1 and order == list(range(len(lines))):
        rng.shuffle(order)
    return [lines[i] for i in order]


def levels_reversed(system: str) -> str:
    """The system template with its severity levels (``- 0: …`` to ``- 7: …``, continuation lines kept) listed from the
    highest down."""
    lines = system.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.lstrip().startswith(tuple(f"- {k}:" for k in range(8)))]
    if len(starts) < 2 or (starts != list(range(starts[0], starts[0] + len(starts))) and not _contiguous(lines, starts)):
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


def _mean(values: np.ndarray, codes: np.ndarray, n_boot: int, seed: int, *, edge: bool) -> tuple[float | None, Interval]:
    if values.size == 0:
        return None, [None, None]
    point = float(values.mean())
    totals = bootstrap_totals(np.column_stack([values, np.ones(values.size)]), clusters=codes, n_boot=n_boot, seed=seed)
    ci: Interval = percentile_ci(totals[:, 0] / totals[:, 1]) if totals.shape[0] else [None, None]
    if edge:
        ci, _ = edge_interval(point, ci, int(np.unique(codes).size))
    return point, ci


def probe_scopes(original: Run, probed: Run, *, cluster: str | None = None, n_boot: int = DEFAULT_N_BOOT,
                 seed: int = DEFAULT_SEED) -> list[ProbeScope]:
    """Flip rate and severity shift per side and scope, on the items graded ok in both runs."""
    a, b = labels_wide(original.records), labels_wide(probed.records)
    if a.empty or b.empty:
        raise DataError("a run of the probe has no labels")
    joined = a.merge(b, on="id", suffixes=("", "_probe")).merge(
        original.input.assign(id=original.input["id"].astype(str)), on="id", how="left")
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
        pairs = {"any": (before[both].max(axis=1), after[both].max(axis=1))}
        pairs |= {c: (before[both][:, k], after[both][:, k]) for k, c in enumerate(CATEGORIES)}
        codes = codes_all[both]
        for scope, (x, y) in pairs.items():
            flip, flip_ci = _mean((x != y).astype(float), codes, n_boot, seed, edge=True)
            shift, shift_ci = _mean(y - x, codes, n_boot, seed, edge=False)
            raised, _ = _mean((y > x).astype(float), codes, 0, seed, edge=False)
            lowered, _ = _mean((y < x).astype(float), codes, 0, seed, edge=False)
            scopes.append(ProbeScope(side=side, scope=scope, n_items=int(x.size), n_clusters=int(np.unique(codes).size),
                                     flip_rate=flip, flip_rate_ci=flip_ci, shift=shift, shift_ci=shift_ci, raised=raised,
                                     lowered=lowered))
    if not scopes:
        raise DataError("the original and probed runs share no item graded ok on the same side")
    return scopes


def run_spec_params(manifest: Any) -> dict[str, Any]:
    """The sampling parameters a run was graded with, as GradeSpec fields (to grade its probe the same way)."""
    params = manifest.params
    keys = ("temperature", "seed", "max_tokens", "items_per_request", "logprobs", "samples", "response_format")
    out = {k: params[k] for k in keys if k in params}
    if "json_mode" in params:  # an earlier harness: a JSON object, or nothing
        out["response_format"] = "json-object" if params["json_mode"] else "none"
    return out
