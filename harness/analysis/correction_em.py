"""Bias-corrected transitions from a calibration measured elsewhere and transported (``analyze --correct``).

When humans labelled a random subset of the graded pairs, use :mod:`harness.analysis.correction_ppi`
(``analyze --human``): it assumes only that the subset is random. This module is for what it
cannot do: a calibration measured on *another* set of pairs, transported to the graded set. A
grader that detects risk less readily in responses than in prompts (the paper's asymmetry)
biases every transition share: missed response harm turns escalations into preservations and
preservations into reductions. Given the grader's per-side confusion matrices on a human-labeled
calibration set (``harness calibrate`` writes them, with their prompt clusters), this module
estimates the *true* joint distribution of (prompt, response) max severity behind the grader's
labels of a larger set, by maximum likelihood (EM) on the probability simplex:

    observed[a, b] = sum_ij true[i, j] * M_prompt[i, a] * M_response[j, b]

Assumptions, stated in every result and checked where the data allow: the grader's errors on the
calibration set transport to the graded set (same grader, template and shots: refused otherwise
unless forced; the calibration's pairs overlapping the graded ones are counted), and its prompt
and response errors are independent given the true severities (tested on the calibration pairs:
when one grader reads both sides with shared blind spots they are not, and the correction is
then biased, so it says so). The bootstrap resamples *both* the calibration pairs and the
graded pairs by cluster, so the interval carries the uncertainty of the confusion matrices too.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core.bounds import N_BOOT, SEED, bounded
from ..core.errors import DataError
from ..results.analysis import Correction, ErrorDependence
from ..results.calibration import Calibration
from .intervals import Interval, percentile_ci
from .stats import bootstrap_totals

K = 4
#: Pseudo-count added to each confusion row's diagonal: a severity the calibration set never
#: shows is assumed graded correctly rather than left undefined (and flagged in ``warnings``).
PRIOR = 0.5
#: Fewer calibration pairs than this at a true severity that occurs in the graded set is flagged.
MIN_ROW = 20
#: Smallest singular value of a confusion matrix below which its inversion is flagged unstable.
MIN_SINGULAR = 0.15
EM_ITERATIONS = 2000
#: EM stops once no cell of any resample moves by more than this in one step.
TOLERANCE = 1e-7
SHARES = ("reduction", "preservation", "escalation", "prompt_harm", "response_harm")


def confusion_rates(counts: np.ndarray) -> np.ndarray:
    """Row-normalised confusion ``P(grader = a | human = i)`` with the diagonal prior (.. x K x K)."""
    smoothed = np.asarray(counts, dtype=float) + PRIOR * np.eye(K)
    return smoothed / smoothed.sum(axis=-1, keepdims=True)


def em_joint(observed: np.ndarray, m_prompt: np.ndarray, m_response: np.ndarray, *,
             iterations: int = EM_ITERATIONS) -> np.ndarray:
    """Maximum-likelihood true joint distribution (.. x K x K) behind observed joint counts.

    Vectorised over leading dimensions (one per bootstrap resample). Starts from the observed
    shares (plus a little mass everywhere, so no cell is stuck at 0) and stays on the simplex.
    """
    obs = np.asarray(observed, dtype=float)
    total = obs.sum(axis=(-2, -1), keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        target = np.where(total > 0, obs / total, 0.0)
    joint = target + 1e-3
    joint /= joint.sum(axis=(-2, -1), keepdims=True)
    m_prompt_t = np.swapaxes(m_prompt, -2, -1)
    m_response_t = np.swapaxes(m_response, -2, -1)
    for step in range(iterations):
        model = m_prompt_t @ joint @ m_response  # model[a, b] = sum_ij Mp[i, a] joint[i, j] Mr[j, b]
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(model > 0, target / model, 0.0)
        updated = joint * (m_prompt @ ratio @ m_response_t)
        if step % 20 == 19 and float(np.abs(updated - joint).max(initial=0.0)) < TOLERANCE:
            return updated
        joint = updated
    return joint


def shares(joint: np.ndarray) -> dict[str, np.ndarray]:
    """Transition shares and harm prevalences of joint distributions (.. x K x K)."""
    i, j = np.indices((K, K))
    return {
        "reduction": (joint * (j < i)).sum(axis=(-2, -1)),
        "preservation": (joint * (j == i)).sum(axis=(-2, -1)),
        "escalation": (joint * (j > i)).sum(axis=(-2, -1)),
        "prompt_harm": (joint * (i >= 1)).sum(axis=(-2, -1)),
        "response_harm": (joint * (j >= 1)).sum(axis=(-2, -1)),
    }


def _calibration_cells(calibration: Calibration, source: str) -> tuple[np.ndarray, np.ndarray]:
    block = calibration.max_severity_pairs
    if block is None or not all(
        k in block for k in ("cluster", "prompt_human", "prompt_grader", "response_human", "response_grader")
    ):
        raise DataError(
            f"{source}: no per-pair calibration data for both sides (max_severity_pairs); re-run "
            "`harness calibrate RUN --human DATA` with prompts and responses graded"
        )
    clusters = np.asarray(block["cluster"], dtype=np.int64)
    cells = np.zeros((clusters.size, 2 * K * K))
    for offset, side in enumerate(("prompt", "response")):
        human = np.asarray(block[f"{side}_human"], dtype=np.int64)
        grader = np.asarray(block[f"{side}_grader"], dtype=np.int64)
        if not (human.size == grader.size == clusters.size):
            raise DataError(f"{source}: max_severity_pairs lists differ in length; the file was changed by hand")
        if ((human < -1) | (human >= K) | (grader < -1) | (grader >= K)).any():
            raise DataError(
                f"{source}: max_severity_pairs.{side}_* holds a value outside -1..3; the file was changed by hand"
            )
        known = (human >= 0) & (grader >= 0)
        rows = np.flatnonzero(known)
        cells[rows, offset * K * K + human[rows] * K + grader[rows]] = 1.0
    return cells, clusters


@bounded(n_boot=N_BOOT, seed=SEED)
def corrected_transitions(max_prompt: np.ndarray, max_response: np.ndarray, clusters: np.ndarray,
                          calibration: Calibration | dict[str, Any], *, source: str = "calibration",
                          n_boot: int = N_BOOT.default, seed: int = SEED.default, grader: dict[str, str] | None = None,
                          graded_ids: list[str] | None = None, force: bool = False) -> Correction:
    """Raw and bias-corrected transition shares of graded pairs, with cluster-bootstrap CIs.

    Args:
        max_prompt, max_response: the grader's max severity (0..3) per graded pair.
        clusters: cluster code per graded pair (its prompt).
        calibration: a ``calibration.json`` (``harness calibrate``), read strictly.
        source: how to name the calibration in messages.
        n_boot: resamples of both sets (0: point estimates only).
        seed: seed of the graded-set resampling (the calibration set uses ``seed + 1``).
        grader: the graded pairs' grader (model, template and shots hashes), to refuse a
            calibration of another grader; None when the graded table does not say.
        graded_ids: the graded pairs' ids, to count those the calibration was measured on.
        force: transport a calibration of another grader anyway (said in ``warnings``).
    """
    calibration = Calibration.from_json(calibration, name=source)
    notes = _transport_checks(calibration, source, grader, force)
    cal_cells, cal_clusters = _calibration_cells(calibration, source)
    overlap = _overlap(calibration, graded_ids)
    if overlap:
        notes.append(
            f"{overlap} of the graded pairs are calibration pairs: the correction is judged on pairs it was fit on"
        )
    dependence = error_dependence(calibration, source, n_boot=DEPENDENCE_BOOT, seed=seed + 2)
    if dependence.verdict.startswith("dependent"):
        notes.append(
            f"the grader's prompt and response errors are dependent ({dependence.verdict}): the correction assumes "
            "independence and is biased; label a random subset of these pairs and use `human` instead"
        )
    elif dependence.verdict.startswith("cannot"):
        notes.append(
            f"independence of prompt and response errors {dependence.verdict}: the correction rests on it unchecked"
        )
    counts = cal_cells.sum(axis=0).reshape(2, K, K)
    m_prompt, m_response = confusion_rates(counts[0]), confusion_rates(counts[1])
    graded = np.zeros((max_prompt.size, K * K))
    graded[np.arange(max_prompt.size), max_prompt.astype(int) * K + max_response.astype(int)] = 1.0
    observed = graded.sum(axis=0).reshape(K, K)
    raw = shares(observed / max(observed.sum(), 1.0))
    corrected = shares(em_joint(observed, m_prompt, m_response))
    raw_ci: dict[str, Interval] = {k: [None, None] for k in SHARES}
    corrected_ci: dict[str, Interval] = {k: [None, None] for k in SHARES}
    if n_boot > 0 and max_prompt.size:
        boot_graded = bootstrap_totals(graded, clusters=clusters, n_boot=n_boot, seed=seed).reshape(-1, K, K)
        boot_cal = bootstrap_totals(cal_cells, clusters=cal_clusters, n_boot=n_boot, seed=seed + 1).reshape(-1, 2, K, K)
        joint = em_joint(boot_graded, confusion_rates(boot_cal[:, 0]), confusion_rates(boot_cal[:, 1]))
        raw_draws = shares(boot_graded / boot_graded.sum(axis=(-2, -1), keepdims=True))
        corrected_draws = shares(joint)
        raw_ci = {k: percentile_ci(raw_draws[k]) for k in SHARES}
        corrected_ci = {k: percentile_ci(corrected_draws[k]) for k in SHARES}
    return Correction(
        n_graded=int(max_prompt.size),
        n_graded_clusters=int(np.unique(clusters).size),
        n_calibration=int(cal_clusters.size),
        n_calibration_clusters=int(np.unique(cal_clusters).size),
        calibration_model=calibration.model,
        source=source,
        confusion_prompt=counts[0].astype(int).tolist(),
        confusion_response=counts[1].astype(int).tolist(),
        raw={k: float(raw[k]) for k in SHARES},
        corrected={k: float(corrected[k]) for k in SHARES},
        raw_ci=raw_ci,
        corrected_ci=corrected_ci,
        error_dependence=dependence,
        calibration_overlap=overlap,
        n_boot=n_boot,
        method="EM on the simplex with per-side confusion matrices (diagonal prior 0.5), transported from a "
        "calibration set",
        assumptions=[
            "the calibration set's grader errors transport to the graded set (same grader, template, population)",
            "prompt and response errors are independent given the true severities",
        ],
        warnings=[*notes, *_warnings(counts, observed)],
    )


def _transport_checks(calibration: Calibration, source: str, grader: dict[str, str] | None, force: bool) -> list[str]:
    """Refuse a calibration of another grader (unless forced); say when the graded table names none."""
    mine = {
        "model": calibration.model,
        "template_hash": calibration.template_hash,
        "shots_hash": calibration.shots_hash,
    }
    if grader is None:
        return [f"the graded table does not name its grader: nothing checks that {source} (model {calibration.model}) "
                "measured this grader's errors"]
    differ = [k for k, v in mine.items() if v is not None and grader.get(k) != v]
    if not differ:
        return []
    said = ", ".join(f"{k} {mine[k]} there, {grader.get(k)} here" for k in differ)
    if not force:
        raise DataError(f"{source} measured another grader ({said}): a calibration transports only within one grader, "
                        "template and shot set. Label a random subset of these pairs and use `human`, or pass `force` "
                        "to transport it anyway")
    return [f"transported from another grader ({said}): its errors are assumed to be this grader's"]


def _overlap(calibration: Calibration, graded_ids: list[str] | None) -> int | None:
    if graded_ids is None or calibration.id_hashes is None:
        return None
    from ..io.runs import id_hash

    return len(set(calibration.id_hashes) & {id_hash(i) for i in graded_ids})


#: Fewer calibration pairs with a prompt error than this, and independence cannot be checked.
MIN_PROMPT_ERRORS = 10
#: Resamples of the independence check (run even when the shares' intervals are skipped: it guards the method).
DEPENDENCE_BOOT = 1000


def error_dependence(calibration: Calibration, source: str, *, n_boot: int, seed: int) -> ErrorDependence:
    """Test, on the calibration pairs, whether prompt and response errors are independent given the truth.

    Within each true (prompt, response) max-severity cell: the share of response errors among
    pairs whose prompt the grader got wrong, minus among those it got right, pooled over cells
    with Mantel-Haenszel weights; the interval resamples clusters. Dependent when the interval
    excludes 0.
    """
    block = calibration.max_severity_pairs or {}
    if not all(k in block for k in ("cluster", "prompt_human", "prompt_grader", "response_human", "response_grader")):
        return ErrorDependence(difference=None, ci=[None, None], n_pairs=0, n_prompt_errors=0,
                               verdict="cannot be checked (no per-pair calibration data)")
    ph, pg = np.asarray(block["prompt_human"]), np.asarray(block["prompt_grader"])
    rh, rg = np.asarray(block["response_human"]), np.asarray(block["response_grader"])
    known = (ph >= 0) & (pg >= 0) & (rh >= 0) & (rg >= 0)
    stratum = np.where(known, ph * K + rh, 0)
    wrong_p, wrong_r = (pg != ph) & known, (rg != rh) & known
    # per pair: its stratum's four counts (prompt wrong / right, and of those, response wrong)
    cells = np.zeros((ph.size, K * K * 4))
    for offset, hit in enumerate((wrong_p, ~wrong_p & known, wrong_p & wrong_r, ~wrong_p & known & wrong_r)):
        cells[np.flatnonzero(hit), stratum[hit] * 4 + offset] = 1.0
    n_errors = int(wrong_p.sum())
    point = _mantel_haenszel(cells.sum(axis=0))
    ci: Interval = [None, None]
    if n_boot > 0 and known.any():
        draws = _mantel_haenszel(
            bootstrap_totals(cells, clusters=np.asarray(block["cluster"]), n_boot=n_boot, seed=seed)
        )
        ci = percentile_ci(draws)
    if n_errors < MIN_PROMPT_ERRORS or point is None or ci[0] is None or ci[1] is None:
        verdict = (
            f"cannot be checked ({n_errors} calibration pairs with a prompt error; at least {MIN_PROMPT_ERRORS} needed)"
        )
    elif ci[0] > 0 or ci[1] < 0:
        verdict = (f"dependent: response errors {point:+.2f} more likely after a prompt error, "
                   f"95% CI {ci[0]:+.2f} to {ci[1]:+.2f}")
    else:
        verdict = f"independence not rejected ({point:+.2f}, 95% CI {ci[0]:+.2f} to {ci[1]:+.2f})"
    return ErrorDependence(difference=point, ci=ci, n_pairs=int(known.sum()), n_prompt_errors=n_errors, verdict=verdict)


def _mantel_haenszel(totals: np.ndarray) -> Any:
    """Mantel-Haenszel risk difference over strata from totals (.. x strata*4), NaN/None if undefined."""
    t = np.asarray(totals, dtype=float).reshape(*np.shape(totals)[:-1], K * K, 4)
    n1, n0, r1, r0 = t[..., 0], t[..., 1], t[..., 2], t[..., 3]
    n = n1 + n0
    with np.errstate(invalid="ignore", divide="ignore"):
        weight = np.where(n > 0, n1 * n0 / n, 0.0)
        diff = np.where((n1 > 0) & (n0 > 0), r1 / np.where(n1 > 0, n1, 1) - r0 / np.where(n0 > 0, n0, 1), 0.0)
        value = (weight * diff).sum(axis=-1) / weight.sum(axis=-1)
    if np.ndim(value) == 0:
        return float(value) if np.isfinite(value) else None
    return value


def _warnings(counts: np.ndarray, observed: np.ndarray) -> list[str]:
    """Say when the correction rests on too few calibration pairs or a near-singular matrix."""
    out = []
    present = {"prompt": observed.sum(axis=1) > 0, "response": observed.sum(axis=0) > 0}
    for side, matrix in zip(("prompt", "response"), counts, strict=True):
        rows = matrix.sum(axis=1)
        thin = [i for i in range(K) if rows[i] < MIN_ROW and (present[side][i] or rows[i] > 0)]
        if thin:
            listed = ", ".join(f"{i} ({int(rows[i])})" for i in thin)
            out.append(f"{side} side: few calibration pairs at true severity {listed}; fewer than {MIN_ROW} "
                       "makes that row of the confusion matrix, and the correction, uncertain")
        smallest = float(np.linalg.svd(confusion_rates(matrix), compute_uv=False).min())
        if smallest < MIN_SINGULAR:
            out.append(f"{side} side: the confusion matrix is near singular (smallest singular value "
                       f"{smallest:.2f}); the grader barely separates some severities, so the correction is unstable")
    return out
