"""Structured outputs for the local model: ``response_format`` enforced by grammar-constrained decoding (llguidance).

``{"type": "json_schema", "json_schema": {"name", "strict", "schema"}}`` and ``{"type": "json_object"}`` become an
llguidance grammar; at every decoding step the tokens the grammar forbids are masked out of the model's logits
before sampling, so the answer is an object of the schema whatever the model would have written. Where the grammar
leaves exactly one continuation (``{"H": `` in a verdict) the forced tokens are read in one forward pass instead of
one pass per token. The answer is laid out compactly (one space after ``:`` and ``,``, no other whitespace), so a
small model cannot pad it with blank lines and the value after a key sits at a known place.

llguidance was chosen by measured cost on this CPU: its mask, forced tokens and advancing cost 0.1-0.9 ms per
generated token (``bench/local_model.py``), under 0.2 % of decoding time (a forward pass of the model takes 70 ms
unloaded, 300+ ms on a busy machine); xgrammar's mask cost the same (0.2-0.5 ms per token on a verdict) but its
wheel pulls in triton, and outlines-core's cost 0.6-2.3 ms, took 1.3 s to compile a verdict's schema and ignores
integer bounds (a raw level 9 would pass).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

#: How every constrained answer is laid out (see the module's docstring).
LAYOUT = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": ", "lenient": False}
#: A schema larger than this is refused (400) before it is compiled.
MAX_SCHEMA_BYTES = 64 * 1024
#: Compiled-and-checked grammars kept per model.
MAX_GRAMMARS = 16


class FormatError(ValueError):
    """A ``response_format`` the model cannot honour (the endpoint answers 400 naming ``response_format``)."""


def grammar_of(response_format: Any) -> tuple[str, str] | None:
    """The llguidance grammar enforcing ``response_format`` and the name its errors give it, or None for plain text
    (absent or ``text``)."""
    from llguidance import LLMatcher

    if response_format is None:
        return None
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return str(LLMatcher.grammar_from_json_schema({"type": "object"}, overrides=LAYOUT)), "json_object"  # type: ignore[arg-type]
    if kind != "json_schema":
        raise FormatError("Invalid value for 'response_format.type': expected 'text', 'json_object' or 'json_schema'.")
    spec = response_format.get("json_schema")
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or not spec["name"]:
        raise FormatError("Missing required parameter: 'response_format.json_schema.name'.")
    schema = spec.get("schema")
    if not isinstance(schema, dict):
        raise FormatError(
            f"Invalid schema for response_format '{spec['name']}': 'schema' must be a JSON Schema object."
        )
    text = json.dumps(schema)
    if len(text) > MAX_SCHEMA_BYTES:
        raise FormatError(f"Invalid schema for response_format '{spec['name']}': over {MAX_SCHEMA_BYTES:,} bytes.")
    try:
        return str(LLMatcher.grammar_from_json_schema(text, overrides=LAYOUT)), spec["name"]  # type: ignore[arg-type]
    except ValueError as exc:
        raise FormatError(f"Invalid schema for response_format '{spec['name']}': {exc}") from None


class Grammars:
    """One model's constraints: its tokenizer as llguidance sees it, and the grammars already checked against it."""

    def __init__(self, tokenizer: Any, end_token: int) -> None:
        import llguidance.hf

        self._tokenizer = llguidance.hf.from_tokenizer(tokenizer, eos_token=end_token)
        self.vocabulary = len(tokenizer)
        self._checked: OrderedDict[str, None] = OrderedDict()

    def constraint(self, grammar: str, name: str) -> Constraint:
        """A fresh constraint for one answer (a FormatError naming ``name`` when the grammar cannot be built)."""
        from llguidance import LLMatcher

        if grammar not in self._checked:
            failed, messages = LLMatcher.validate_grammar_with_warnings(grammar, self._tokenizer)
            if failed:
                reason = messages[0] if messages else "rejected"
                raise FormatError(f"Invalid schema for response_format '{name}': {reason}")
            self._checked[grammar] = None
            while len(self._checked) > MAX_GRAMMARS:
                self._checked.popitem(last=False)
        self._checked.move_to_end(grammar)
        matcher = LLMatcher(self._tokenizer, grammar, log_level=0)
        if matcher.is_error():
            raise FormatError(f"Invalid schema for response_format '{name}': {matcher.get_error()}")
        return Constraint(matcher, self.vocabulary)


class Constraint:
    """The grammar's state during one answer: which tokens may come next, which are forced, when it is complete."""

    def __init__(self, matcher: Any, vocabulary: int) -> None:
        import numpy as np

        self._matcher = matcher
        self._vocabulary = vocabulary
        self._bits = np.zeros(((vocabulary + 31) // 32,), dtype=np.int32)

    def allowed(self) -> Any:
        """A boolean tensor over the vocabulary: the tokens the grammar allows next."""
        import numpy as np
        import torch

        self._matcher.unsafe_compute_mask_ptr(self._bits.ctypes.data, self._bits.nbytes)
        self._check()
        bits = np.unpackbits(self._bits.view(np.uint8), bitorder="little")[: self._vocabulary]
        return torch.from_numpy(bits.view(np.bool_))

    def forced(self) -> list[int]:
        """The tokens the grammar forces from here (empty when the model has a choice)."""
        tokens = [int(t) for t in self._matcher.compute_ff_tokens()]
        self._check()
        return tokens

    def advance(self, token: int) -> None:
        self._matcher.consume_token(token)
        self._check()

    @property
    def complete(self) -> bool:
        """The answer is a whole object of the grammar and nothing more may follow."""
        return bool(self._matcher.is_stopped())

    def _check(self) -> None:
        if self._matcher.is_error():  # a mask the sampler obeyed cannot lead here: a fault of ours, answered 500
            raise RuntimeError(f"constrained decoding failed: {self._matcher.get_error()}")
