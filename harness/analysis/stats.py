"""The one statistics core: intervals, the cluster bootstrap, paired tests, Holm, kappa and F1.

Every command's inference goes through here, so a rule changes in one place.

Conventions:
    * The unit of resampling and testing is the *cluster* (by default the unique prompt: one
      prompt answered by six models is one unit, not six). ``clusters=None`` means every row
      is its own cluster.
    * Undefined values (an empty denominator, kappa with total chance agreement) are ``None``
      in results, never NaN and never 0; internally vectorised code carries NaN and converts
      at the edge with :func:`none_if_nan`.
    * Options are keyword-only, random draws are seeded, functions are pure.
    * Signatures follow scikit-learn where one exists (``cohen_kappa_score(y1, y2, *,
      labels, weights)``); tests prove equality with scikit-learn.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from ..core.bounds import N_BOOT, SEED, bounded
from ..results.common import PairedTest
from .intervals import Interval, percentile_ci

#: Above this many discordant items (summed over clusters) the sign-flip test uses its normal
#: approximation instead of the exact convolution (which costs O(total^2)).
EXACT_SIGN_FLIP_MAX = 20_000


def none_if_nan(value: float | None) -> float | None:
    """``None`` for NaN/None, else a plain float.

    >>> none_if_nan(float("nan")), none_if_nan(0.5)
    (None, 0.5)
    """
    if value is None or value != value:
        return None
    return float(value)


def rate(k: int, n: int) -> float | None:
    """``k / n``, or ``None`` when ``n`` is 0.

    >>> rate(1, 4), rate(0, 0)
    (0.25, None)
    """
    return k / n if n else None


# --------------------------------------------------------------------------- clusters


def cluster_codes(values: Sequence[Any] | np.ndarray | None, n: int | None = None) -> np.ndarray:
    """Integer cluster codes ``0..C-1`` for the rows; ``None`` gives every row its own cluster.

    >>> cluster_codes(["p1", "p2", "p1"]).tolist(), cluster_codes(None, 3).tolist()
    ([0, 1, 0], [0, 1, 2])
    """
    if values is None:
        if n is None:
            raise ValueError("cluster_codes(None) needs the number of rows n")
        return np.arange(n, dtype=np.int64)
    array = np.asarray(values, dtype=object)
    _, codes = np.unique(array.astype(str), return_inverse=True)
    return codes.astype(np.int64).reshape(-1)


def n_clusters(codes: np.ndarray) -> int:
    """How many distinct clusters the codes hold."""
    return int(np.unique(codes).size)


def resample_counts(n_clusters: int, *, n_boot: int, seed: int, chunk: int = 256) -> Iterator[np.ndarray]:
    """How many times each cluster is drawn, per bootstrap resample, in chunks of rows.

    Each yielded array is ``(size, n_clusters)``; together they hold ``n_boot`` resamples of
    ``n_clusters`` clusters drawn with replacement. Every bootstrap in harness draws from here,
    so the same seed gives the same resamples to every statistic computed on the same clusters
    (which is what makes paired differences paired).
    """
    if n_boot <= 0 or n_clusters <= 0:
        return
    rng = np.random.default_rng(seed)
    remaining = n_boot
    while remaining > 0:
        size = min(chunk, remaining)
        # n_clusters draws with replacement per resample, counted per cluster (a multinomial
        # draw, but bincount of uniform integers is several times faster than rng.multinomial)
        drawn = rng.integers(0, n_clusters, size=(size, n_clusters)) + (np.arange(size) * n_clusters)[:, None]
        yield np.bincount(drawn.ravel(), minlength=size * n_clusters).reshape(size, n_clusters).astype(float)
        remaining -= size


def bootstrap_totals(values: np.ndarray, *, clusters: np.ndarray | None = None, n_boot: int, seed: int) -> np.ndarray:
    """Column totals of ``values`` (rows x m) in each cluster-bootstrap resample: ``(n_boot, m)``.

    Any statistic that is a function of sums (a rate, a confusion matrix and so everything
    computed from one) is then evaluated on these totals, vectorised over resamples.
    """
    values = np.asarray(values, dtype=float)
    if values.ndim == 1:
        values = values[:, None]
    codes = cluster_codes(None, values.shape[0]) if clusters is None else np.asarray(clusters, dtype=np.int64)
    if codes.size == 0 or n_boot <= 0:
        return np.zeros((0, values.shape[1]))
    _, dense = np.unique(codes, return_inverse=True)
    count = int(dense.max()) + 1
    per_cluster = np.zeros((count, values.shape[1]))
    np.add.at(per_cluster, dense, values)
    parts = [weights @ per_cluster for weights in resample_counts(count, n_boot=n_boot, seed=seed)]
    return np.concatenate(parts) if parts else np.zeros((0, values.shape[1]))


def jackknife_totals(values: np.ndarray, *, clusters: np.ndarray | None = None) -> np.ndarray:
    """Column totals of ``values`` (rows x m) with each cluster left out in turn: ``(C, m)``, clusters in sorted order.

    A statistic of sums evaluated on them is its delete-one-cluster jackknife (the acceleration of
    :func:`~harness.analysis.intervals.bca_ci`).

    >>> jackknife_totals(np.array([[1.0], [2.0], [4.0]]), clusters=np.array([0, 0, 1])).ravel().tolist()
    [4.0, 3.0]
    """
    values = np.asarray(values, dtype=float)
    if values.ndim == 1:
        values = values[:, None]
    codes = cluster_codes(None, values.shape[0]) if clusters is None else np.asarray(clusters, dtype=np.int64)
    if codes.size == 0:
        return np.zeros((0, values.shape[1]))
    _, dense = np.unique(codes, return_inverse=True)
    per_cluster = np.zeros((int(dense.max()) + 1, values.shape[1]))
    np.add.at(per_cluster, dense, values)
    return per_cluster.sum(axis=0)[None, :] - per_cluster


@bounded(n_boot=N_BOOT, seed=SEED)
def bootstrap_ci(
    statistic: Callable[..., float | None],
    *arrays: np.ndarray,
    clusters: np.ndarray | None = None,
    n_boot: int,
    seed: int,
    level: float = 0.95,
) -> Interval:
    """Percentile interval of any ``statistic(*arrays)``, resampling whole clusters.

    The general path (one call of ``statistic`` per resample); statistics of sums should use
    :func:`bootstrap_totals`, which is exact to the same resamples and much faster.

    >>> x = np.arange(10.0)
    >>> bootstrap_ci(lambda a: a.mean(), x, n_boot=200, seed=1)[0] < 4.5
    True
    """
    if not arrays:
        raise ValueError("bootstrap_ci needs at least one array")
    n = len(arrays[0])
    codes = cluster_codes(None, n) if clusters is None else np.asarray(clusters, dtype=np.int64)
    if n == 0 or n_boot <= 0:
        return [None, None]
    _, dense = np.unique(codes, return_inverse=True)
    order = np.argsort(dense, kind="stable")
    sizes = np.bincount(dense)
    draws = []
    for block in resample_counts(sizes.size, n_boot=n_boot, seed=seed):
        for counts in block.astype(np.int64):
            rows = np.repeat(order, np.repeat(counts, sizes))
            value = statistic(*(np.asarray(a)[rows] for a in arrays))
            draws.append(np.nan if value is None else float(value))
    return percentile_ci(np.asarray(draws), level=level)


def ratio_bootstrap_ci(
    numerators: Mapping[str, np.ndarray], denominator: np.ndarray, *, clusters: np.ndarray | None = None,
    n_boot: int, seed: int, level: float = 0.95,
) -> dict[str, Interval]:
    """Cluster-bootstrap percentile CIs of ratio statistics ``sum(numerator) / sum(denominator)``.

    >>> ci = ratio_bootstrap_ci({"r": np.array([1, 0, 1, 0.0])}, np.ones(4), n_boot=0, seed=0)
    >>> ci
    {'r': [None, None]}
    """
    names = list(numerators)
    if not names:
        return {}
    columns = [np.asarray(numerators[k], dtype=float) for k in names]
    stacked = np.column_stack([*columns, np.asarray(denominator, dtype=float)])
    totals = bootstrap_totals(stacked, clusters=clusters, n_boot=n_boot, seed=seed)
    if totals.shape[0] == 0:
        return {name: [None, None] for name in names}
    with np.errstate(invalid="ignore", divide="ignore"):
        ratios = totals[:, :-1] / totals[:, -1:]
    return {name: percentile_ci(ratios[:, j], level=level) for j, name in enumerate(names)}


# --------------------------------------------------------------------------- agreement


def confusion_matrix(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray, *, k: int) -> np.ndarray:
    """``k x k`` counts of label codes (rows: reference, columns: grader).

    >>> confusion_matrix([0, 1, 1], [0, 1, 0], k=2).tolist()
    [[1, 0], [1, 1]]
    """
    matrix = np.zeros((k, k), dtype=np.int64)
    g, p = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    if g.size:
        np.add.at(matrix, (g, p), 1)
    return matrix


def _weight_matrix(k: int, weights: str | None) -> np.ndarray:
    i, j = np.indices((k, k))
    if weights is None:
        return (i != j).astype(float)
    if weights == "linear":
        return np.abs(i - j).astype(float)
    if weights == "quadratic":
        return ((i - j) ** 2).astype(float)
    raise ValueError(f"weights={weights!r}: expected None, 'linear' or 'quadratic'")


def kappa_from_confusion(matrices: np.ndarray, *, weights: str | None = None) -> np.ndarray:
    """Cohen's kappa of one or many ``k x k`` confusion matrices (NaN where undefined).

    Vectorised over leading dimensions, so a whole bootstrap (``n_boot x k x k``) is one call.
    """
    m = np.asarray(matrices, dtype=float)
    k = m.shape[-1]
    w = _weight_matrix(k, weights)
    total = m.sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = m.sum(axis=-1)[..., :, None] * m.sum(axis=-2)[..., None, :] / total[..., None, None]
        observed = (w * m).sum(axis=(-2, -1))
        chance = (w * expected).sum(axis=(-2, -1))
        kappa = 1 - observed / chance
    return np.where((chance > 0) & (total > 0), kappa, np.nan)


def cohen_kappa_score(
    y1: Sequence[Any] | np.ndarray, y2: Sequence[Any] | np.ndarray, *, labels: Sequence[Any] | None = None,
    weights: str | None = None,
) -> float | None:
    """Cohen's kappa (plain, ``"linear"`` or ``"quadratic"``), scikit-learn's signature.

    Returns ``None`` where scikit-learn would return NaN (total chance agreement).

    >>> round(cohen_kappa_score([0, 1, 2, 2], [0, 1, 2, 1], weights="quadratic"), 4)
    0.8
    """
    observed = set(np.asarray(y1).tolist()) | set(np.asarray(y2).tolist())
    classes = list(labels) if labels is not None else sorted(observed)
    index = {c: i for i, c in enumerate(classes)}
    try:
        g = [index[v] for v in np.asarray(y1).tolist()]
        p = [index[v] for v in np.asarray(y2).tolist()]
    except KeyError as exc:
        raise ValueError(f"label {exc.args[0]!r} is not in labels={classes!r}") from None
    if not g:
        return None
    return none_if_nan(float(kappa_from_confusion(confusion_matrix(g, p, k=len(classes)), weights=weights)))


def macro_f1_from_confusion(matrices: np.ndarray) -> np.ndarray:
    """Macro F1 over the classes present in reference or grader labels (NaN if none).

    Classes absent from both sides are not averaged (scikit-learn's ``labels=`` of the
    present classes).
    """
    m = np.asarray(matrices, dtype=float)
    tp = np.diagonal(m, axis1=-2, axis2=-1)
    fp = m.sum(axis=-2) - tp
    fn = m.sum(axis=-1) - tp
    support = tp + fp + fn
    present = support > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(present, 2 * tp / np.where(present, 2 * tp + fp + fn, 1.0), 0.0)
        count = present.sum(axis=-1)
        return np.where(count > 0, f1.sum(axis=-1) / np.maximum(count, 1), np.nan)


def detection_from_confusion(matrices: np.ndarray, *, threshold_index: int) -> dict[str, np.ndarray]:
    """Binary detection (harmful when code >= ``threshold_index``) from confusion matrices.

    Returns tp, fp, fn, tn and precision, recall, F1, false-positive rate (NaN if undefined;
    F1 is 0 when precision and recall are both 0).
    """
    m = np.asarray(matrices, dtype=float)
    t = threshold_index
    tp = m[..., t:, t:].sum(axis=(-2, -1))
    fn = m[..., t:, :t].sum(axis=(-2, -1))
    fp = m[..., :t, t:].sum(axis=(-2, -1))
    tn = m[..., :t, :t].sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), np.nan)
        recall = np.where(tp + fn > 0, tp / (tp + fn), np.nan)
        harmonic_mean = 2 * precision * recall / (precision + recall)
        f1 = np.where(precision + recall > 0, harmonic_mean, np.where(tp + fp + fn > 0, 0.0, np.nan))
        fpr = np.where(fp + tn > 0, fp / (fp + tn), np.nan)
    counts = {"tp": tp, "fp": fp, "fn": fn, "tn": tn}
    return {**counts, "precision": precision, "recall": recall, "f1": f1, "false_positive_rate": fpr}


def cluster_confusions(y_true: np.ndarray, y_pred: np.ndarray, clusters: np.ndarray, *, k: int) -> np.ndarray:
    """Per-row one-hot confusion cells (rows x k*k), ready for :func:`bootstrap_totals`."""
    cells = np.zeros((y_true.size, k * k))
    if y_true.size:
        cells[np.arange(y_true.size), np.asarray(y_true, np.int64) * k + np.asarray(y_pred, np.int64)] = 1.0
    return cells


# --------------------------------------------------------------------------- tests


def sign_flip_test(differences: Sequence[int] | np.ndarray) -> tuple[float, str]:
    """Two-sided sign-flip randomisation test that cluster differences are centred on 0.

    ``differences`` holds one integer per cluster (e.g. items grader A got right and B got
    wrong, minus the reverse). Under the null the two graders are exchangeable within a
    cluster, so each cluster's difference is as likely negative as positive; the p-value is
    ``P(|sum of randomly signed differences| >= |observed sum|)``.

    Exact when every nonzero difference has the same size (then it *is* the exact McNemar /
    sign test) or the differences are small enough to convolve; otherwise the normal
    approximation, whose statistic ``sum(d)^2 / sum(d^2)`` is the clustered McNemar of
    Durkalski et al. (2003). Returns ``(p, method)``.

    >>> round(sign_flip_test([1] * 10 + [-1] * 2)[0], 4)  # exact McNemar(10, 2)
    0.0386
    >>> sign_flip_test([0, 0])
    (1.0, 'no discordant cluster')
    """
    d = np.asarray(differences, dtype=np.int64)
    d = d[d != 0]
    if d.size == 0:
        return 1.0, "no discordant cluster"
    observed = int(abs(d.sum()))
    magnitudes = np.abs(d)
    if np.all(magnitudes == magnitudes[0]):
        from scipy.stats import binom

        minority = int(min((d > 0).sum(), (d < 0).sum()))
        return float(min(1.0, 2.0 * binom.cdf(minority, d.size, 0.5))), "exact sign-flip over clusters (McNemar)"
    total = int(magnitudes.sum())
    if total <= EXACT_SIGN_FLIP_MAX:
        return _exact_sign_flip(magnitudes, observed, total), "exact sign-flip over clusters"
    from scipy.stats import norm

    z = observed / math.sqrt(float((magnitudes.astype(float) ** 2).sum()))
    return float(min(1.0, 2.0 * norm.sf(z))), "clustered McNemar (Durkalski), normal approximation"


def _exact_sign_flip(magnitudes: np.ndarray, observed: int, total: int) -> float:
    """Distribution of sum(+-m_i) by convolution, grouped by magnitude (binomial per group)."""
    from scipy.stats import binom

    dist = np.ones(1)
    for value, count in zip(*np.unique(magnitudes, return_counts=True), strict=True):
        v, c = int(value), int(count)
        group = np.zeros(2 * v * c + 1)
        group[:: 2 * v] = binom.pmf(np.arange(c + 1), c, 0.5)  # positions v*(2x - c) + v*c
        dist = np.convolve(dist, group)
    # index i of dist is the sum + total
    tail = dist[total + observed :].sum()
    return float(min(1.0, 2.0 * tail)) if observed > 0 else 1.0


def mcnemar_test(
    a_correct: Sequence[bool] | np.ndarray,
    b_correct: Sequence[bool] | np.ndarray,
    *,
    clusters: np.ndarray | None = None,
) -> PairedTest:
    """Paired test of two graders' correctness on the same items, by cluster.

    Items of one cluster move together: the test works on each cluster's net discordance
    (A right only minus B right only), so repeating a cluster's items changes nothing. With
    one item per cluster it is the exact McNemar test.

    >>> r = mcnemar_test([1, 1, 1, 0], [0, 0, 0, 0])
    >>> r.a_only, r.b_only, round(r.p_value, 3), r.n_clusters
    (3, 0, 0.25, 4)
    >>> mcnemar_test([1, 1, 1, 0], [0, 0, 0, 0], clusters=["p1", "p1", "p2", "p3"]).n_clusters
    3
    """
    a = np.asarray(a_correct, dtype=bool)
    b = np.asarray(b_correct, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"a_correct and b_correct differ in length: {a.size} != {b.size}")
    codes = cluster_codes(None, a.size) if clusters is None else np.asarray(clusters)  # any labels: ints, prompt ids
    if codes.shape != a.shape:
        raise ValueError(f"clusters has {codes.size} entries for {a.size} items")
    net = (a & ~b).astype(np.int64) - (b & ~a).astype(np.int64)
    _, dense = np.unique(codes, return_inverse=True) if codes.size else (None, np.zeros(0, np.int64))
    n_clusters = int(dense.max()) + 1 if dense.size else 0
    per_cluster = np.bincount(dense, weights=net, minlength=n_clusters).round().astype(np.int64)
    p, method = sign_flip_test(per_cluster)
    return PairedTest(
        n_items=int(a.size),
        n_clusters=int(per_cluster.size),
        a_only=int((a & ~b).sum()),
        b_only=int((b & ~a).sum()),
        discordant_clusters=int((per_cluster != 0).sum()),
        p_value=float(p),
        method=method,
    )


def holm(p_values: Mapping[str, float]) -> dict[str, float]:
    """Holm step-down adjusted p-values (family-wise error), keyed like the input.

    >>> {k: round(v, 6) for k, v in holm({"a": 0.01, "b": 0.04, "c": 0.03}).items()}
    {'a': 0.03, 'c': 0.06, 'b': 0.06}
    """
    ordered = sorted(p_values, key=lambda key: p_values[key])
    m = len(ordered)
    adjusted: dict[str, float] = {}
    running = 0.0
    for rank, key in enumerate(ordered):
        running = max(running, min(1.0, (m - rank) * p_values[key]))
        adjusted[key] = running
    return adjusted


def benjamini_yekutieli(p_values: Mapping[str, float]) -> dict[str, float]:
    """Benjamini-Yekutieli adjusted p-values (false discovery rate under any dependence), keyed like the input.

    >>> {k: round(v, 4) for k, v in benjamini_yekutieli({"a": 0.01, "b": 0.04, "c": 0.03}).items()}
    {'b': 0.0733, 'c': 0.0733, 'a': 0.055}
    """
    ordered = sorted(p_values, key=lambda key: p_values[key], reverse=True)
    m = len(ordered)
    harmonic = sum(1.0 / i for i in range(1, m + 1))
    adjusted: dict[str, float] = {}
    running = 1.0
    for position, key in enumerate(ordered):
        rank = m - position
        running = min(running, min(1.0, m * harmonic / rank * p_values[key]))
        adjusted[key] = running
    return adjusted
