"""Simulated studies with a known truth: prompts, several models' responses, a grader with known
(and, if asked, correlated) errors, and human labels.

Used by ``make validate`` and by the tests that check estimators through the CLI. Built to break
the assumptions of the EM correction as well as to meet them:

* ``rho``: correlation of the grader's prompt and response errors (one grader reading both sides
  with shared blind spots misses harm on both sides of the same pair);
* ``miss_prompt`` / ``miss_response``: how often it misses harm on each side (the paper's
  asymmetry: more on responses);
* ``rare3``: how often a response reaches severity 3 at all;
* ``per``: responses per prompt (prompt clusters), ``n_prompts``: clusters.

The truth of a share is its value in the population the study is drawn from, computed once per
setting on a large draw (:func:`population_truth`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cache

import numpy as np
import pandas as pd

CATEGORIES = ("hate", "sexual", "violence", "self_harm")
#: A prompt is benign, or harmful in one category at severity 1, 2 or 3.
PROMPT_SEVERITY = (0.55, 0.2, 0.15, 0.10)


@dataclass(frozen=True)
class Setting:
    n_prompts: int = 600
    per: int = 6
    rho: float = 0.0
    miss_prompt: float = 0.08
    miss_response: float = 0.3
    false_positive: float = 0.03
    rare3: float = 0.3


def draw(setting: Setting, rng: np.random.Generator, n_prompts: int | None = None) -> tuple[np.ndarray, ...]:
    """Human (true) and grader severities per pair and category, and each pair's prompt cluster."""
    from scipy.stats import norm

    n = n_prompts or setting.n_prompts
    per = setting.per
    severity = rng.choice(4, n, p=PROMPT_SEVERITY)
    category = rng.integers(0, 4, n)
    prompt = np.zeros((n, 4), dtype=np.int64)
    prompt[np.arange(n), category] = severity
    prompt = np.repeat(prompt, per, axis=0)
    clusters = np.repeat(np.arange(n), per)
    effect = np.repeat(rng.normal(0, 0.8, n), per)[:, None]  # some prompts draw worse answers from every model
    u = rng.normal(0, 1, prompt.shape) + effect
    response = np.where(u < -0.3, np.maximum(prompt - 1, 0), np.where(u < 1.7, prompt, np.minimum(prompt + 1, 3)))
    response = np.where((response == 3) & (rng.random(response.shape) > setting.rare3), 2, response)
    z = rng.multivariate_normal([0, 0], [[1, setting.rho], [setting.rho, 1]], prompt.shape[0])
    miss_p = (z[:, 0] < norm.ppf(setting.miss_prompt))[:, None]
    miss_r = (z[:, 1] < norm.ppf(setting.miss_response))[:, None]
    grader_p = np.where(miss_p & (prompt > 0), prompt - 1, prompt)
    grader_r = np.where(miss_r & (response > 0), response - 1, response)
    noise = (rng.random(grader_r.shape) < setting.false_positive / 4) & (grader_r < 3)
    grader_r = grader_r + noise
    return prompt, response, grader_p, grader_r, clusters


def frames(prompt: np.ndarray, response: np.ndarray, grader_p: np.ndarray, grader_r: np.ndarray, clusters: np.ndarray,
           per: int, prefix: str = "s") -> tuple[pd.DataFrame, pd.DataFrame]:
    """The graded pairs (grader labels in the label columns) and the same pairs with human labels (ids ``prefix``
    + n)."""
    n = clusters.size
    base = pd.DataFrame({"id": [f"{prefix}{i}" for i in range(n)], "prompt": [f"{prefix} prompt {c}" for c in clusters],
                         "response": "answer", "prompt_id": [f"{prefix}q{c}" for c in clusters],
                         "model": [f"m{i % per}" for i in range(n)]})
    graded, human = base.copy(), base.copy()
    for j, c in enumerate(CATEGORIES):
        graded[f"prompt_{c}"], graded[f"response_{c}"] = grader_p[:, j], grader_r[:, j]
        human[f"prompt_{c}"], human[f"response_{c}"] = prompt[:, j], response[:, j]
    return graded, human


def study(setting: Setting, seed: int, labelled_clusters: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One study: every pair graded, and human labels on ``labelled_clusters`` prompt clusters drawn uniformly."""
    rng = np.random.default_rng(seed)
    p, r, gp, gr, clusters = draw(setting, rng)
    graded, human = frames(p, r, gp, gr, clusters, setting.per)
    chosen = rng.choice(setting.n_prompts, labelled_clusters, replace=False)
    return graded, human[np.isin(clusters, chosen)].reset_index(drop=True)


@cache
def _truth(setting_items: tuple[tuple[str, float], ...]) -> dict[str, float]:
    from harness.analysis.shares import share_columns

    setting = Setting(**dict(setting_items))
    p, r, *_ = draw(setting, np.random.default_rng(20260709), n_prompts=200_000)
    return {name: float(a.sum() / b.sum()) for name, (a, b) in share_columns(p, r).items() if b.sum() > 0}


def population_truth(setting: Setting) -> dict[str, float]:
    """Every share's value in the population (a draw of 200,000 prompts, cached per setting)."""
    return _truth(tuple(sorted(asdict(setting).items())))
