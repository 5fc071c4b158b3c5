"""Token log-probabilities the way OpenAI returns them, for the embedded graders' answers.

A real model's uncertainty about a severity sits on the first number it writes for a category:
the answers put ``raw_0_7`` first, so the ``severity_0_3`` that follows is fixed by the mapping.
The embedded graders know a probability for each severity; each raw digit gets its severity's
mass (the written digit 60 %, its sibling 40 %), so summing raw digits in pairs gives the
severities back exactly. Every other token is certain. Tokens are single digits, words, runs of
white space and single punctuation marks, so the tokens always spell the content.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from ..core.constants import CATEGORIES, CATEGORY_CODES

_TOKEN = re.compile(r"\d|[A-Za-z_]+|\s+|[^\w\s]")
#: The most alternatives OpenAI returns per token.
MAX_TOP = 20


def raw_alternatives(severity: np.ndarray, written: int) -> list[tuple[str, float]]:
    """Log-probabilities of the raw digits 0-7, most probable first, from severity probabilities."""
    mass = np.zeros(8)
    for s, p in enumerate(severity):
        low, high = 2 * s, 2 * s + 1
        if written in (low, high):
            mass[written], mass[low + high - written] = 0.6 * p, 0.4 * p
        else:
            mass[low] = mass[high] = 0.5 * p
    mass = np.clip(mass, 1e-12, None)
    mass /= mass.sum()
    order = np.argsort(-mass, kind="stable")
    return [(str(int(d)), math.log(float(mass[d]))) for d in order]


def alternatives_of(content: str, probabilities: dict[str, np.ndarray]) -> dict[int, list[tuple[str, float]]]:
    """Per character offset of each category's first number, the alternatives there."""
    out: dict[int, list[tuple[str, float]]] = {}
    for category in CATEGORIES:
        code = CATEGORY_CODES[category]
        found = re.search(rf'"{code}"\s*:\s*\{{\s*"raw_0_7"\s*:\s*(\d)', content)
        if found is not None and category in probabilities:
            out[found.start(1)] = raw_alternatives(probabilities[category], int(found.group(1)))
    return out


def logprobs_content(content: str, alternatives: dict[int, list[tuple[str, float]]], top: int) -> list[dict[str, Any]]:
    """``choices[i].logprobs.content``: one entry per token, with its ``top`` most probable alternatives.

    >>> [t["token"] for t in logprobs_content('{"a": 1}', {}, 0)]
    ['{', '"', 'a', '"', ':', ' ', '1', '}']
    """
    tokens = []
    for match in _TOKEN.finditer(content):
        token = match.group()
        options = alternatives.get(match.start(), [(token, 0.0)])
        chosen = next((lp for t, lp in options if t == token), 0.0)
        tokens.append({
            "token": token, "logprob": chosen, "bytes": list(token.encode("utf-8")),
            "top_logprobs": [{"token": t, "logprob": lp, "bytes": list(t.encode("utf-8"))} for t, lp in options[:top]],
        })
    return tokens
