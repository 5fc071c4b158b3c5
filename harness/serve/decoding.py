"""One answer of the local model, token by token: sampling, the grammar's mask and forced tokens, log-probabilities,
stop strings, and the question "was this request abandoned?" asked before every step.

:class:`Decoder` runs on the model worker thread with the prompt's key/value states already computed
(:mod:`harness.serve.local_model`). Each step is one forward pass of the model (about 70 ms on 2 cores); a
cancelled request raises :class:`Cancelled` before the next one, so an abandoned request stops within one step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .structured import Constraint


class Cancelled(Exception):
    """The request was abandoned while the model answered it (its client went away, or the server is stopping)."""


def never() -> bool:
    """The ``cancelled`` question of a request nobody can abandon (the batches route, the API)."""
    return False


@dataclass
class Choice:
    """One generated answer."""

    content: str
    finish_reason: str
    tokens: int
    logprobs: list[dict[str, Any]] | None


@dataclass
class Sampling:
    """How one choice is drawn: its token bound, temperature, nucleus, stop strings, alternatives asked (-1: no
    logprobs), random generator, and the question asked before each step."""

    limit: int
    temperature: float
    top_p: float
    stops: list[str]
    top: int
    generator: Any
    cancelled: Callable[[], bool] = never


class Decoder:
    """The loaded model and tokenizer, turned into answers (call from the model's one worker thread)."""

    def __init__(self, model: Any, tokenizer: Any, cache_arg: str, ends: set[int]) -> None:
        self._model, self._tokenizer, self._cache_arg, self._ends = model, tokenizer, cache_arg, ends

    def forward(self, tokens: list[int], cache: Any = None) -> Any:
        """The model over ``tokens`` after what ``cache`` holds (None: from the start)."""
        import torch

        past = {} if cache is None else {self._cache_arg: cache}
        return self._model(torch.tensor([tokens]), use_cache=True, **past)

    def answer(self, past: list[tuple[Any, Any]], logits: Any, run: Sampling, constraint: Constraint | None) -> Choice:
        """One choice after the prompt (``past``, and ``logits`` at its last position)."""
        import torch

        tok = self._tokenizer
        cache = cache_of(past)  # a fresh cache over the prompt's states: each choice starts from the prompt
        chosen: list[int] = []
        pieces: list[dict[str, Any]] = []
        finish = "length"
        while len(chosen) < run.limit:
            if run.cancelled():
                raise Cancelled
            forced = constraint.forced()[: run.limit - len(chosen)] if constraint is not None else []
            out = None
            if forced:  # one forward pass reads every token the grammar forces, each scored where it stands
                out = self.forward(forced, cache)
                for token, scores in zip(forced, [logits, *out.logits[0, :-1]]):
                    constraint.advance(token)  # type: ignore[union-attr]
                    if run.top >= 0:
                        only = torch.zeros(scores.shape[-1], dtype=torch.bool)
                        only[token] = True
                        pieces.append(self._piece(token, torch.log_softmax(scores.float(), dim=-1), run.top, only))
                chosen.extend(forced)
            else:
                allowed = constraint.allowed() if constraint is not None else None
                scores = logits.float() if allowed is None else logits.float().masked_fill(~allowed, float("-inf"))
                token = pick(scores, run.temperature, run.top_p, run.generator)
                if token in self._ends:
                    finish = "stop"
                    break
                if constraint is not None:
                    constraint.advance(token)
                chosen.append(token)
                if run.top >= 0:
                    pieces.append(self._piece(token, torch.log_softmax(logits.float(), dim=-1), run.top, allowed))
            if (constraint is not None and constraint.complete) or (
                    run.stops and any(s in tok.decode(chosen, skip_special_tokens=True) for s in run.stops)):
                finish = "stop"
                break
            if len(chosen) >= run.limit:
                break
            if out is None:
                out = self.forward([chosen[-1]], cache)
            cache, logits = out.past_key_values, out.logits[0, -1]
        content = tok.decode(chosen, skip_special_tokens=True)
        cut = min((content.find(s) for s in run.stops if s in content), default=-1)
        if cut >= 0:
            content = content[:cut]
            pieces = within(pieces, len(content))
        return Choice(
            content=content, finish_reason=finish, tokens=len(chosen), logprobs=pieces if run.top >= 0 else None
        )

    def _piece(self, token: int, logp: Any, top: int, allowed: Any) -> dict[str, Any]:
        """One token's entry: the model's log-probability of it (before any mask) and, with ``top`` > 0, the most
        probable alternatives among the tokens ``allowed`` (None: every token)."""
        import torch

        tok = self._tokenizer
        text = tok.decode([token])
        entry: dict[str, Any] = {
            "token": text, "logprob": float(logp[token]), "bytes": list(text.encode()), "top_logprobs": []
        }
        if top > 0:
            if allowed is None:
                values, indices = torch.topk(logp, top)
            else:
                values, indices = torch.topk(logp.masked_fill(~allowed, float("-inf")), min(top, int(allowed.sum())))
            for value, index in zip(values.tolist(), indices.tolist()):
                alt = tok.decode([index])
                entry["top_logprobs"].append({"token": alt, "logprob": float(value), "bytes": list(alt.encode())})
        return entry


def states_of(cache: Any) -> list[tuple[Any, Any]]:
    """Per layer (keys, values) of a transformers 5 cache."""
    return [(layer.keys, layer.values) for layer in cache.layers]


def cache_of(states: list[tuple[Any, Any]]) -> Any:
    """A new transformers cache holding ``states`` (updates make new tensors: the stored ones stay)."""
    from transformers import DynamicCache

    cache = DynamicCache()
    for layer, (keys, values) in enumerate(states):
        cache.update(keys, values, layer)
    return cache


def pick(logits: Any, temperature: float, top_p: float, generator: Any) -> int:
    """The next token: greedy at temperature 0, else sampled from the tempered, nucleus-cut distribution."""
    import torch

    if temperature <= 0.0:
        return int(torch.argmax(logits))
    probs = torch.softmax(logits / temperature, dim=-1)
    if top_p < 1.0:
        ordered, order = torch.sort(probs, descending=True)
        keep = torch.cumsum(ordered, dim=-1) - ordered < top_p  # the smallest set reaching top_p (at least one)
        keep[0] = True  # top_p 0 (OpenAI's range is 0-1): the most probable token alone
        probs = torch.zeros_like(probs).scatter(0, order[keep], ordered[keep])
    return int(torch.multinomial(probs / probs.sum(), 1, generator=generator))


def within(pieces: list[dict[str, Any]], length: int) -> list[dict[str, Any]]:
    """The token entries that spell the first ``length`` characters (the content cut at a stop)."""
    kept, used = [], 0
    for piece in pieces:
        if used >= length:
            break
        kept.append(piece)
        used += len(piece["token"])
    return kept
