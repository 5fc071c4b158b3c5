"""What ``harness serve`` accepts in a chat request, checked the way OpenAI checks it: one set of rules for every model.

Every chat-completions body (the chat route, Azure's route, each line of a batch) is read by
:func:`harness.serve.wire.read_body` and passes :func:`check_chat` before any served model reads it,
so the embedded graders and the local language models cannot drift apart: a bad parameter is a 400
in OpenAI's error shape naming it (``param``) with OpenAI's ``code`` (``invalid_type``,
``decimal_above_max_value``, ``array_above_max_length`` …), an unknown model a 404, never a 500.

The ranges are those of OpenAI's published description of the request (its OpenAPI
``CreateChatCompletionRequest``): temperature 0–2; top_p 0–1, where 0 keeps only the most probable
token (the smallest set of tokens whose mass reaches ``top_p`` is that one token); n 1–128; seed a
signed 64-bit integer; stop a string or up to 4; top_logprobs 0–20, with ``logprobs``. What a model
adds of its own (how many completion tokens it writes, and how many a request's ``n`` choices may
ask for together) is its :class:`ModelLimits`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .local_model import LOCAL_MODELS, MAX_NEW_TOKENS
from .logprobs import MAX_TOP
from .wire import InvalidRequest

#: OpenAI's bound on ``n``.
MAX_CHOICES = 128
INT64 = 2**63

Check = Callable[[Any, str], None]


@dataclass(frozen=True)
class ModelLimits:
    """What one served model accepts beyond OpenAI's ranges: completion tokens per choice, and for all ``n`` choices."""

    completion_tokens: int
    request_tokens: int


#: The embedded graders write a few dozen tokens whatever is asked; the bounds only keep the numbers sane.
EMBEDDED_LIMITS = ModelLimits(completion_tokens=10**9, request_tokens=MAX_CHOICES * 10**9)
#: A local model decodes on the CPU, one request at a time: a request may ask two full answers' worth.
LOCAL_LIMITS = ModelLimits(completion_tokens=MAX_NEW_TOKENS, request_tokens=2 * MAX_NEW_TOKENS)


def limits_of(model: str) -> ModelLimits:
    """The limits of a served model."""
    return LOCAL_LIMITS if model in LOCAL_MODELS else EMBEDDED_LIMITS


# -- one parameter -----------------------------------------------------------------------------------

def _kind(value: Any) -> str:
    """A JSON value's type, as OpenAI names it in its messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def _key(name: str) -> str:
    """A key as an error names it (a client's key may be any length)."""
    return name if len(name) <= 40 else name[:37] + "..."


def _shown(value: Any) -> str:
    """A value as an error shows it: short (an integer past 38 digits is not even written out)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return "an integer of more than 38 digits"
    if isinstance(value, str):
        text = repr(value)
    else:
        text = json.dumps(value) if isinstance(value, (int, float)) else _kind(value)
    return text if len(text) <= 40 else text[:37] + "..."


def wrong_type(param: str, expected: str, value: Any) -> InvalidRequest:
    """OpenAI's ``invalid_type`` error."""
    return InvalidRequest(f"Invalid type for '{param}': expected {expected}, but got {_kind(value)} instead.", param,
                          "invalid_type")


def missing_parameter(param: str) -> InvalidRequest:
    """OpenAI's ``missing_required_parameter`` error."""
    return InvalidRequest(f"Missing required parameter: '{param}'.", param, "missing_required_parameter")


def _bounded(value: float, param: str, low: float | None, high: float | None, kind: str) -> None:
    if low is not None and value < low:
        raise InvalidRequest(f"Invalid '{param}': {kind} below minimum value. Expected a value >= {low}, but got "
                             f"{_shown(value)} instead.", param, f"{kind}_below_min_value")
    if high is not None and value > high:
        raise InvalidRequest(f"Invalid '{param}': {kind} above maximum value. Expected a value <= {high}, but got "
                             f"{_shown(value)} instead.", param, f"{kind}_above_max_value")


def number(low: float, high: float) -> Check:
    """A finite number within ``[low, high]``."""
    def check(value: Any, param: str) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise wrong_type(param, "a decimal", value)
        if not math.isfinite(value):  # read_body never parses one; a Python caller might pass it
            raise InvalidRequest(
                f"Invalid '{param}': expected a finite number, but got {value}.", param, "invalid_value"
            )
        _bounded(value, param, low, high, "decimal")
    return check


def integer(low: int | None, high: int | None) -> Check:
    """A whole number (not a decimal, not a boolean) within ``[low, high]``."""
    def check(value: Any, param: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong_type(param, "an integer", value)
        _bounded(value, param, low, high, "integer")
    return check


def boolean(value: Any, param: str) -> None:
    if not isinstance(value, bool):
        raise wrong_type(param, "a boolean", value)


def text(value: Any, param: str) -> None:
    if not isinstance(value, str):
        raise wrong_type(param, "a string", value)


def obj(value: Any, param: str) -> None:
    if not isinstance(value, dict):
        raise wrong_type(param, "an object", value)


def choice(*allowed: str) -> Check:
    """One of a few strings."""
    def check(value: Any, param: str) -> None:
        text(value, param)
        if value not in allowed:
            listed = f"'{allowed[0]}'"
            if len(allowed) > 1:
                listed = ", ".join(f"'{a}'" for a in allowed[:-1]) + f" and '{allowed[-1]}'"
            raise InvalidRequest(
                f"Invalid value for '{param}': {_shown(value)}. Supported values are: {listed}.", param, "invalid_value"
            )
    return check


def array(item: Check, *, most: int | None = None, least: int = 0) -> Check:
    """An array of ``least`` to ``most`` items, each passing ``item``."""
    def check(value: Any, param: str) -> None:
        if not isinstance(value, list):
            raise wrong_type(param, "an array", value)
        if len(value) < least:
            raise InvalidRequest(f"Invalid '{param}': empty array. Expected an array with minimum length {least}, but "
                                 "got an empty array instead.", param, "empty_array")
        if most is not None and len(value) > most:
            raise InvalidRequest(f"Invalid '{param}': array too long. Expected an array with maximum length {most}, "
                                 f"but got an array with length {len(value)} instead.", param,
                                 "array_above_max_length")
        for index, entry in enumerate(value):
            item(entry, f"{param}[{index}]")
    return check


def _at(param: str, key: str) -> str:
    """A key's parameter name inside ``param`` (the key alone at the top of a body)."""
    return f"{param}.{_key(key)}" if param else _key(key)


def fields(required: Mapping[str, Check], optional: Mapping[str, Check]) -> Check:
    """An object with these keys (``optional`` ones may be absent or null), and no other."""
    def check(value: Any, param: str) -> None:
        obj(value, param or "body")
        for key, rule in required.items():
            if value.get(key) is None:
                raise missing_parameter(_at(param, key))
            rule(value[key], _at(param, key))
        for key, entry in value.items():
            if key not in required and key not in optional:
                raise InvalidRequest(f"Unrecognized request argument supplied: {_at(param, key)}", _at(param, key),
                                     "unknown_parameter")
            if key in optional and entry is not None:
                optional[key](entry, _at(param, key))
    return check


def either(*rules: Check, expected: str) -> Check:
    """A value one of several rules' types take (``stop``: a string or an array of them)."""
    def check(value: Any, param: str) -> None:
        for rule in rules:
            try:
                rule(value, param)
                return
            except InvalidRequest as exc:
                if exc.code != "invalid_type" or exc.param != param:  # the right type, wrong inside
                    raise
        raise wrong_type(param, expected, value)
    return check


def stop_text(value: Any, param: str) -> None:
    text(value, param)
    if not value:
        raise InvalidRequest(f"Invalid '{param}': empty string. Expected a string with minimum length 1.", param,
                             "empty_string")


def metadata(value: Any, param: str) -> None:
    """OpenAI's metadata: up to 16 pairs, keys up to 64 characters, values strings up to 512."""
    obj(value, param)
    if len(value) > 16:
        raise InvalidRequest(f"Invalid '{param}': too many pairs ({len(value)}); at most 16.", param, "invalid_value")
    for key, entry in value.items():
        text(entry, f"{param}.{_key(key)}")
        if len(key) > 64 or len(entry) > 512:
            raise InvalidRequest(f"Invalid '{param}.{_key(key)}': keys hold at most 64 characters and values 512.",
                                 f"{param}.{_key(key)}", "invalid_value")


def logit_bias(value: Any, param: str) -> None:
    obj(value, param)
    for key, entry in value.items():
        if not (key.isascii() and key.isdigit() and len(key) <= 10):
            raise InvalidRequest(f"Invalid '{param}': {_shown(key)} is not a token id.", f"{param}.{_key(key)}",
                                 "invalid_value")
        number(-100, 100)(entry, f"{param}.{key}")  # the key is a short token id here


# -- a chat-completions request ------------------------------------------------------------------------

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
_SCHEMA_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")

#: A part of a message's content: the served models read text only.
_PART = fields({"type": choice("text"), "text": text}, {})


def content(value: Any, param: str) -> None:
    """A message's content: a string, or an array of text parts."""
    if isinstance(value, list):
        array(_PART, least=1)(value, param)
    elif not isinstance(value, str):
        raise wrong_type(param, "a string or an array of content parts", value)


def message(value: Any, param: str) -> None:
    """One message: a known role, and what that role needs (an assistant's content may be null)."""
    obj(value, param)
    role = value.get("role")
    if role is None:
        raise missing_parameter(f"{param}.role")
    choice(*ROLES)(role, f"{param}.role")
    known: dict[str, Check] = {"content": content, "name": text, "tool_calls": array(obj), "function_call": obj,
                               "refusal": text, "audio": obj, "tool_call_id": text}
    needed = {"role": text, **({} if role == "assistant" else {"content": content}),
              **({"tool_call_id": text} if role == "tool" else {}), **({"name": text} if role == "function" else {})}
    fields(needed, {key: rule for key, rule in known.items() if key not in needed})(value, param)


def schema_name(value: Any, param: str) -> None:
    text(value, param)
    if not _SCHEMA_NAME.fullmatch(value):
        raise InvalidRequest(f"Invalid '{param}': {_shown(value)} must be 1 to 64 letters, digits, underscores or "
                             "dashes.", param, "invalid_value")


_JSON_SCHEMA = fields({"name": schema_name}, {"description": text, "schema": obj, "strict": boolean})


def response_format(value: Any, param: str) -> None:
    """``{"type": "text"}``, ``{"type": "json_object"}`` or ``{"type": "json_schema", "json_schema": {...}}``."""
    obj(value, param)
    kind = value.get("type")
    if kind is None:
        raise missing_parameter(f"{param}.type")
    choice("text", "json_object", "json_schema")(kind, f"{param}.type")
    fields({"type": text, "json_schema": _JSON_SCHEMA} if kind == "json_schema" else {"type": text}, {})(value, param)


_TEXT_OR_OBJECT = either(text, obj, expected="a string or an object")

#: Every parameter of OpenAI's chat-completions request, and its rule (null means "the default" for each but model
#: and messages). The served models read some (sampling, logprobs, n, stop, response_format) and ignore the rest, as
#: a model without tools or audio would; a name not here is refused as OpenAI refuses it.
PARAMS: dict[str, Check] = {
    "model": text,
    "messages": array(message, least=1),
    "temperature": number(0, 2),
    "top_p": number(0, 1),
    "n": integer(1, MAX_CHOICES),
    "max_tokens": integer(1, None),
    "max_completion_tokens": integer(1, None),
    "seed": integer(-INT64, INT64 - 1),
    "stop": either(stop_text, array(stop_text, least=1, most=4), expected="a string or an array of strings"),
    "logprobs": boolean,
    "top_logprobs": integer(0, MAX_TOP),
    "response_format": response_format,
    "stream": boolean,
    "stream_options": obj,
    "presence_penalty": number(-2, 2),
    "frequency_penalty": number(-2, 2),
    "logit_bias": logit_bias,
    "user": text,
    "safety_identifier": text,
    "prompt_cache_key": text,
    "store": boolean,
    "metadata": metadata,
    "service_tier": choice("auto", "default", "flex", "priority", "scale"),
    "reasoning_effort": choice("none", "minimal", "low", "medium", "high"),
    "verbosity": choice("low", "medium", "high"),
    "modalities": array(choice("text")),
    "parallel_tool_calls": boolean,
    "tools": array(obj),
    "tool_choice": _TEXT_OR_OBJECT,
    "functions": array(obj),
    "function_call": _TEXT_OR_OBJECT,
    "prediction": obj,
    "web_search_options": obj,
    "audio": obj,
}


def check_chat(body: dict[str, Any], served: Mapping[str, ModelLimits]) -> None:
    """Refuse a chat-completions body as OpenAI would (:class:`InvalidRequest`), before any model reads it.

    ``served`` maps each served model to its limits; a model not in it is OpenAI's 404.
    """
    for key in ("model", "messages"):
        if body.get(key) is None:
            raise missing_parameter(key)
    for key, value in body.items():
        rule = PARAMS.get(key)
        if rule is None:
            raise InvalidRequest(f"Unrecognized request argument supplied: {_key(key)}", _key(key), "unknown_parameter")
        if value is not None:
            rule(value, key)
    model = body["model"]
    if model not in served:
        raise InvalidRequest(f"The model `{model}` does not exist or you do not have access to it.", None,
                             "model_not_found", status=404)
    _check_together(body, model, served[model])


def _check_together(body: dict[str, Any], model: str, limits: ModelLimits) -> None:
    """The rules that read several parameters at once."""
    if body.get("stream"):
        raise InvalidRequest("stream=true is not supported by harness serve; ask without streaming.", "stream",
                             "unsupported_value")
    if body.get("stream_options") is not None:
        raise InvalidRequest("The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                             "stream_options", "invalid_value")
    if body.get("top_logprobs") is not None and not body.get("logprobs"):
        raise InvalidRequest("'top_logprobs' requires 'logprobs' to be true.", "top_logprobs", "invalid_value")
    if body.get("max_tokens") is not None and body.get("max_completion_tokens") is not None:
        raise InvalidRequest("'max_tokens' and 'max_completion_tokens' cannot both be set; send max_completion_tokens "
                             "alone.", "max_tokens", "invalid_value")
    name = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    asked = body.get(name)
    if asked is not None and asked > limits.completion_tokens:
        raise InvalidRequest(f"{name} is too large: {_shown(asked)}. This model supports at most "
                             f"{limits.completion_tokens} completion tokens.", name, "invalid_value")
    choices, each = body.get("n") or 1, asked if asked is not None else limits.completion_tokens
    if choices * each > limits.request_tokens:
        raise InvalidRequest(f"n × {name} is too large: {choices} × {each:,} = {choices * each:,} completion tokens; "
                             f"{model} writes at most {limits.request_tokens:,} for one request. Ask for fewer choices "
                             f"or set a smaller {name}.", "n", "invalid_value")
