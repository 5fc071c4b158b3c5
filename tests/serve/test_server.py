"""harness serve refuses a bad request as OpenAI does (a 400 in its error shape naming the parameter, never a 500),
with one set of rules for every served model, on every route; a large body holds up no other request."""

from __future__ import annotations

import json
import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from harness.serve.config import ServeConfig
from harness.serve.runner import ServerHandle, build_endpoint
from harness.serve.server import GraderEndpoint
from tests.helpers import stats

LOCAL = "smollm2-135m"
MESSAGES = [{"role": "system", "content": "Rate the text."},
            {"role": "user", "content": "Grade this.\n<<<TEXT_TO_LABEL>>>\nhello there\n<<<END_TEXT_TO_LABEL>>>"}]


def _post(handle: ServerHandle, raw: bytes, path: str = "/v1/chat/completions",
          kind: str = "application/json") -> tuple[int, dict[str, Any]]:
    """POST raw bytes over HTTP; the status and the JSON body."""
    url = handle.base_url.removesuffix("/v1") + path
    request = urllib.request.Request(url, data=raw, headers={"Content-Type": kind})
    try:
        with urllib.request.urlopen(request, timeout=600) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _body(model: str, change: dict[str, Any]) -> bytes:
    return json.dumps({"model": model, "messages": MESSAGES, "max_tokens": 3, **change}).encode()


def _health(handle: ServerHandle) -> dict[str, Any]:
    with urllib.request.urlopen(handle.base_url.removesuffix("/v1") + "/health", timeout=600) as response:
        return json.loads(response.read())


def _no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    logged = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not logged, [r.getMessage() for r in logged]


#: One bad parameter each, added to a good body: the parameter OpenAI's error names, and its code.
BAD: list[tuple[str, dict[str, Any], str, str]] = [
    ("temperature a string", {"temperature": "hot"}, "temperature", "invalid_type"),
    ("temperature above 2", {"temperature": 2.5}, "temperature", "decimal_above_max_value"),
    ("temperature below 0", {"temperature": -0.5}, "temperature", "decimal_below_min_value"),
    ("top_p above 1", {"top_p": 1.01}, "top_p", "decimal_above_max_value"),
    ("top_p a boolean", {"top_p": True}, "top_p", "invalid_type"),
    ("seed past int64", {"seed": 2**70}, "seed", "integer_above_max_value"),
    ("seed a decimal", {"seed": 1.5}, "seed", "invalid_type"),
    ("stop a number", {"stop": 5}, "stop", "invalid_type"),
    ("stop five strings", {"stop": ["a", "b", "c", "d", "e"]}, "stop", "array_above_max_length"),
    ("stop an empty string", {"stop": ""}, "stop", "empty_string"),
    ("stop holding a number", {"stop": ["a", 3]}, "stop[1]", "invalid_type"),
    ("max_tokens negative", {"max_tokens": -1}, "max_tokens", "integer_below_min_value"),
    ("max_tokens zero", {"max_tokens": 0}, "max_tokens", "integer_below_min_value"),
    ("max_tokens a string", {"max_tokens": "5"}, "max_tokens", "invalid_type"),
    ("max_tokens past any model", {"max_tokens": 10**10}, "max_tokens", "invalid_value"),
    ("max_completion_tokens a decimal", {"max_completion_tokens": 5.5}, "max_completion_tokens", "invalid_type"),
    ("both token bounds", {"max_completion_tokens": 5}, "max_tokens", "invalid_value"),
    ("n zero", {"n": 0}, "n", "integer_below_min_value"),
    ("n above 128", {"n": 129}, "n", "integer_above_max_value"),
    ("n a string", {"n": "2"}, "n", "invalid_type"),
    ("logprobs a string", {"logprobs": "yes"}, "logprobs", "invalid_type"),
    ("top_logprobs above 20", {"logprobs": True, "top_logprobs": 21}, "top_logprobs", "integer_above_max_value"),
    ("top_logprobs without logprobs", {"top_logprobs": 3}, "top_logprobs", "invalid_value"),
    ("messages empty", {"messages": []}, "messages", "empty_array"),
    ("messages an object", {"messages": {"role": "user", "content": "x"}}, "messages", "invalid_type"),
    ("messages null", {"messages": None}, "messages", "missing_required_parameter"),
    ("a message a string", {"messages": ["hello"]}, "messages[0]", "invalid_type"),
    ("an unknown role", {"messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role", "invalid_value"),
    ("a role a number", {"messages": [{"role": 1, "content": "x"}]}, "messages[0].role", "invalid_type"),
    ("content missing", {"messages": [{"role": "user"}]}, "messages[0].content", "missing_required_parameter"),
    ("content a number", {"messages": [{"role": "user", "content": 5}]}, "messages[0].content", "invalid_type"),
    (
        "an image part",
        {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
        "messages[0].content[0].type",
        "invalid_value",
    ),
    (
        "a message's unknown key",
        {"messages": [{"role": "user", "content": "x", "colour": "red"}]},
        "messages[0].colour",
        "unknown_parameter",
    ),
    ("response_format a string", {"response_format": "json"}, "response_format", "invalid_type"),
    ("response_format xml", {"response_format": {"type": "xml"}}, "response_format.type", "invalid_value"),
    (
        "json_schema without a name",
        {"response_format": {"type": "json_schema", "json_schema": {"schema": {}}}},
        "response_format.json_schema.name",
        "missing_required_parameter",
    ),
    (
        "json_schema strict a string",
        {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "verdict", "strict": "yes", "schema": {"type": "object"}},
            }
        },
        "response_format.json_schema.strict",
        "invalid_type",
    ),
    (
        "json_object with a schema",
        {"response_format": {"type": "json_object", "schema": {}}},
        "response_format.schema",
        "unknown_parameter",
    ),
    ("stream", {"stream": True}, "stream", "unsupported_value"),
    ("stream_options without stream", {"stream_options": {"include_usage": True}}, "stream_options", "invalid_value"),
    ("presence_penalty above 2", {"presence_penalty": 3}, "presence_penalty", "decimal_above_max_value"),
    ("logit_bias not a token", {"logit_bias": {"abc": 1}}, "logit_bias.abc", "invalid_value"),
    ("metadata not text", {"metadata": {"run": 1}}, "metadata.run", "invalid_type"),
    ("an unknown parameter", {"temperatur": 0.5}, "temperatur", "unknown_parameter"),
    ("model a number", {"model": 5}, "model", "invalid_type"),
]
#: What only a local model refuses: its own bound on completion tokens, and on n × max_tokens.
BAD_FOR_LOCAL: list[tuple[str, dict[str, Any], str, str]] = [
    ("max_tokens past the model's 4096", {"max_tokens": 5000}, "max_tokens", "invalid_value"),
    ("n × max_tokens past the model's bound", {"n": 3, "max_tokens": 4000}, "n", "invalid_value"),
    ("n × the default max_tokens", {"n": 3, "max_tokens": None}, "n", "invalid_value"),
]
_IDS = [case[0] for case in BAD]

#: Bodies that are not one strict JSON object: the error's code (OpenAI names no parameter for them).
NOT_JSON: list[tuple[str, bytes, str | None]] = [
    ("NaN", b'{"model": "M", "messages": [], "temperature": NaN}', None),
    ("a number overflowing to infinity", b'{"model": "M", "messages": [], "temperature": 1e999}', None),
    ("an integer of 5,000 digits", b'{"model": "M", "messages": [], "seed": ' + b"9" * 5000 + b"}", None),
    ("a lone surrogate", b'{"model": "M", "messages": [{"role": "system", "content": "\\ud800"}]}', None),
    ("an array", b"[]", None),
    ("half an object", b'{"model": "M", ', None),
    ("not UTF-8", b'{"model": "\xff"}', None),
    (
        "a surrogate encoded in UTF-8's bytes",
        b'{"model": "M", "messages": [{"role": "user", "content": "\xed\xa0\x80"}]}',
        None,
    ),
    ("100,000 levels of arrays", b"[" * 100_000 + b"]" * 100_000, "nested_too_deeply"),
    (
        "100,000 levels inside the messages",
        b'{"model": "M", "messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        "nested_too_deeply",
    ),
    ("100,000 unclosed objects", b'{"a": ' * 100_000, "nested_too_deeply"),
    ("a million escaped quotes, never closed", b'"' + b'\\"' * 1_000_000, None),
]


def _assert_refused(status: int, body: dict[str, Any], param: str | None, code: str | None) -> None:
    assert status == 400, body
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["type"] == "invalid_request_error" and body["error"]["message"]
    assert (body["error"]["param"], body["error"]["code"]) == (param, code), body


@pytest.mark.parametrize(("change", "param", "code"), [case[1:] for case in BAD], ids=_IDS)
def test_each_bad_parameter_is_a_400_naming_it(server: ServerHandle, caplog: pytest.LogCaptureFixture,
                                               change: dict[str, Any], param: str, code: str) -> None:
    status, body = _post(server, _body("harness-baseline", change))
    _assert_refused(status, body, param, code)
    status, good = _post(server, _body("harness-baseline", {}))
    assert status == 200 and json.loads(good["choices"][0]["message"]["content"])["V"]["severity_0_3"] in (0, 1, 2, 3)
    _no_traceback(caplog)


@pytest.mark.parametrize(("raw", "code"), [case[1:] for case in NOT_JSON], ids=[case[0] for case in NOT_JSON])
def test_a_body_that_is_not_one_strict_json_object_is_a_400(server: ServerHandle, caplog: pytest.LogCaptureFixture,
                                                            raw: bytes, code: str | None) -> None:
    status, body = _post(server, raw.replace(b'"M"', b'"harness-baseline"'))
    _assert_refused(status, body, None, code)
    assert _post(server, _body("harness-baseline", {}))[0] == 200
    _no_traceback(caplog)


def test_what_openai_accepts_is_answered(server: ServerHandle) -> None:
    """The edges of OpenAI's ranges, null for a default, and a message's content as text parts."""
    for change in ({"top_p": 0}, {"temperature": 2, "seed": -(2**63)}, {"seed": 2**63 - 1, "n": 2, "temperature": 1},
                   {"stop": ["a", "b", "c", "d"], "temperature": None, "max_tokens": None, "max_completion_tokens": 9},
                   {"logprobs": True, "top_logprobs": 20, "user": "u", "metadata": {"k": "v"}, "store": False},
                   {"response_format": {"type": "json_schema", "json_schema": {"name": "verdict", "strict": True,
                                                                              "schema": {"type": "object"}}}},
                   {"messages": [{"role": "developer", "content": [{"type": "text", "text": "Rate the text."}]},
                                 MESSAGES[1], {"role": "assistant", "content": None}, MESSAGES[1]]}):
        status, body = _post(server, _body("harness-baseline", change))
        assert status == 200, (change, body)
        assert len(body["choices"]) == change.get("n", 1)


def test_an_unknown_model_is_a_404_on_both_routes(server: ServerHandle) -> None:
    status, body = _post(server, _body("gpt-nope", {}))
    assert status == 404 and body["error"]["code"] == "model_not_found" and "`gpt-nope`" in body["error"]["message"]
    azure = "/openai/deployments/gpt-nope/chat/completions?api-version=2024-06-01"
    assert _post(server, _body("harness-baseline", {}), azure)[1]["error"]["code"] == "model_not_found"


def test_azure_route_refuses_by_the_same_rules(server: ServerHandle) -> None:
    route = "/openai/deployments/harness-baseline/chat/completions?api-version=2024-06-01"
    status, body = _post(server, json.dumps({"messages": MESSAGES, "temperature": "hot"}).encode(), route)
    _assert_refused(status, body, "temperature", "invalid_type")
    assert _post(server, json.dumps({"messages": MESSAGES}).encode(), route)[0] == 200


def test_a_body_over_the_bound_is_a_413_in_openais_shape(server: ServerHandle) -> None:
    from harness.serve.wire import MAX_BODY_BYTES

    status, body = _post(server, b" " * (MAX_BODY_BYTES + 1))
    assert (
        status == 413
        and body["error"]["code"] == "request_too_large"
        and f"{MAX_BODY_BYTES:,}" in body["error"]["message"]
    )


def test_the_official_client_reads_the_refusal(server: ServerHandle) -> None:
    client = openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model="harness-baseline", messages=MESSAGES, stop=["a", "b", "c", "d", "e"])  # type: ignore[arg-type]
    assert refused.value.param == "stop" and refused.value.code == "array_above_max_length"


# -- a local language model: the same rules, checked before the model is touched ------------------------------------

@pytest.fixture(scope="module")
def local_unloaded() -> Iterator[ServerHandle]:
    """A server of the local model whose model is never loaded: what it answers, it answers before any model work."""
    handle = ServerHandle(GraderEndpoint(ServeConfig(model_names=(LOCAL,))))
    yield handle
    handle.stop()


@pytest.mark.local_model
def test_the_local_model_refuses_exactly_as_the_embedded_graders(server: ServerHandle, local_unloaded: ServerHandle,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    for name, change, param, code in BAD:
        local = _post(local_unloaded, _body(LOCAL, change))
        embedded = _post(server, _body("harness-baseline", change))
        _assert_refused(*local, param, code)
        if "past any model" in name:  # the message names each model's own bound
            assert local[1]["error"]["message"] != embedded[1]["error"]["message"]
            local[1]["error"]["message"] = embedded[1]["error"]["message"]
        assert local == embedded, name  # one set of rules: the same status and error, word for word
    for name, raw, code in NOT_JSON:  # refused before the model is read
        local = _post(local_unloaded, raw)
        _assert_refused(*local, None, code)
        assert local == _post(server, raw), name
    for name, change, param, code in BAD_FOR_LOCAL:
        _assert_refused(*_post(local_unloaded, _body(LOCAL, change)), param, code)
        # the embedded graders' bounds are wider
        assert _post(server, _body("harness-baseline", change))[0] == 200, name
    assert _health(local_unloaded)["ready"] is False  # every answer came before the model was loaded
    _no_traceback(caplog)


@pytest.mark.local_model
@pytest.mark.slow
def test_the_local_model_answers_after_refusing_while_it_loads(caplog: pytest.LogCaptureFixture) -> None:
    handle = ServerHandle(build_endpoint(None, ServeConfig(model_names=(LOCAL,)), wait=False))
    try:
        for change in ({"temperature": "hot"}, {"seed": 2**70}, {"stop": 5}, {"max_tokens": -1}):
            assert _post(handle, _body(LOCAL, change))[0] == 400  # at once, while the model loads
        status, body = _post(handle, _body(LOCAL, {"top_p": 0, "temperature": 1, "seed": 2**63 - 1}))
        assert status == 200, body  # top_p 0 keeps the most probable token (was a 500)
        assert body["model"] == LOCAL and body["usage"]["completion_tokens"] <= 3
    finally:
        handle.stop()
    _no_traceback(caplog)


# -- the batch and file routes ---------------------------------------------------------------------------------------

def _line(custom_id: str, change: dict[str, Any]) -> str:
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions",
                       "body": json.loads(_body("harness-baseline", change))}) + "\n"


def _finished(client: openai.OpenAI, batch_id: str) -> Any:
    for _ in range(6000):
        batch = client.batches.retrieve(batch_id)
        if batch.status in ("completed", "failed", "expired", "cancelled"):
            return batch
        threading.Event().wait(0.05)
    raise AssertionError(f"batch {batch_id} did not finish: {batch.status}")


def test_a_batch_line_with_a_bad_parameter_is_a_400_in_the_error_file(make_server) -> None:  # type: ignore[no-untyped-def]
    handle = make_server()
    client = openai.OpenAI(base_url=handle.base_url, api_key="unused", max_retries=0)
    upload = client.files.create(file=("in.jsonl", (_line("good", {}) + _line("hot", {"temperature": "hot"})).encode()),
                                 purpose="batch")
    batch = _finished(client, client.batches.create(input_file_id=upload.id, endpoint="/v1/chat/completions",
                                                    completion_window="24h").id)
    assert batch.status == "completed" and batch.request_counts.completed == 1 and batch.request_counts.failed == 1
    error = json.loads(client.files.content(batch.error_file_id).text)
    assert error["custom_id"] == "hot" and error["response"]["status_code"] == 400
    assert error["response"]["body"]["error"]["param"] == "temperature"


def test_a_batch_file_that_is_not_requests_fails_validation_naming_its_lines(make_server) -> None:  # type: ignore[no-untyped-def]
    handle = make_server()
    client = openai.OpenAI(base_url=handle.base_url, api_key="unused", max_retries=0)
    lines = _line("a", {}) + "not json\n" + _line("a", {}) + json.dumps({"custom_id": "b", "method": "GET"}) + "\n"
    upload = client.files.create(file=("in.jsonl", lines.encode()), purpose="batch")
    batch = _finished(client, client.batches.create(input_file_id=upload.id, endpoint="/v1/chat/completions",
                                                    completion_window="24h").id)
    assert batch.status == "failed"
    assert [(e.line, e.code) for e in batch.errors.data] == [(2, "invalid_request"), (3, "duplicate_custom_id"),
                                                             (4, "invalid_value")]


@pytest.mark.parametrize(("path", "raw", "param", "code"), [
    ("/v1/batches", b'{"input_file_id": "file-x", "endpoint": "/v1/chat/completions", "completion_window": "24h"}',
     "input_file_id", "invalid_value"),
    ("/v1/batches", b'{"input_file_id": "file-x", "endpoint": "/v1/embeddings", "completion_window": "24h"}',
     "endpoint", "invalid_value"),
    ("/v1/batches", b'{"input_file_id": "file-x", "endpoint": "/v1/chat/completions", "completion_window": "1h"}',
     "completion_window", "invalid_value"),
    ("/v1/batches", b'{"endpoint": "/v1/chat/completions", "completion_window": "24h"}', "input_file_id",
     "missing_required_parameter"),
    ("/v1/batches", b"[" * 100_000, None, "nested_too_deeply"),
    ("/v1/files", b'{"purpose": "batch"}', "file", "invalid_content_type"),
], ids=["an unknown file", "another endpoint", "another window", "no file", "deep nesting", "not multipart"])
def test_batch_and_file_routes_refuse_bad_parameters(server: ServerHandle, path: str, raw: bytes, param: str | None,
                                                     code: str) -> None:
    _assert_refused(*_post(server, raw, path), param, code)


def test_an_upload_needs_a_known_purpose_and_a_file(server: ServerHandle) -> None:
    client = openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)
    with pytest.raises(openai.BadRequestError) as refused:
        client.files.create(file=("in.jsonl", b"{}\n"), purpose="homework")  # type: ignore[arg-type]
    assert refused.value.param == "purpose" and refused.value.code == "invalid_value"
    purpose_only = b'--x\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n--x--\r\n'
    _assert_refused(*_post(server, purpose_only, "/v1/files", "multipart/form-data; boundary=x"), "file",
                    "missing_required_parameter")


# -- a large body ------------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_a_10_mb_request_holds_up_no_other_request(make_server) -> None:  # type: ignore[no-untyped-def]
    """/health keeps answering while a 10 MB text is read and graded (it waited for the whole grading, 11-16 s,
    before; the graders now read a text's first 50,000 characters, so the request itself takes about a second)."""
    handle = make_server()
    big = _body("harness-baseline", {"messages": [{"role": "user", "content": "violent " * 1_250_000}]})
    answered: list[int] = []
    done = threading.Event()
    sender = threading.Thread(target=lambda: (answered.append(_post(handle, big)[0]), done.set()))
    sender.start()
    while handle.endpoint.stats.requests == 0:  # the big request has reached the server
        threading.Event().wait(0.01)
    during = 0
    while not done.is_set():
        _health(handle)
        during += not done.is_set()
        threading.Event().wait(0.02)
    sender.join()
    assert answered == [200]
    # /health answered again and again while the big request was read and graded (before: not once, it waited)
    assert during >= 2, during


GRADE_MESSAGES = [
    {"role": "system", "content": "rubric"},
    {
        "role": "user",
        "content": ("Grade this.\n<<<TEXT_TO_LABEL>>>\nStep 1: [step-by-step explosive instructions omitted]\n"
                    "<<<END_TEXT_TO_LABEL>>>"),
    },
]


def _client(handle: ServerHandle, **kwargs: object) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=handle.base_url, api_key=str(kwargs.pop("api_key", "unused")), max_retries=0, **kwargs
    )  # type: ignore[arg-type]


def test_models_and_completion_shape(server: ServerHandle) -> None:
    client = _client(server)
    assert [m.id for m in client.models.list()] == ["harness-baseline", "harness-small", "harness-literal"]
    response = client.chat.completions.create(
        model="harness-baseline",
        messages=GRADE_MESSAGES,
        response_format={"type": "json_object"},
        temperature=0,
        seed=1,  # type: ignore[arg-type]
    )
    body = json.loads(response.choices[0].message.content or "")
    assert set(body) == {"H", "S", "V", "SH", "rationale"}
    assert body["V"]["severity_0_3"] == body["V"]["raw_0_7"] // 2
    assert 0 <= body["V"]["severity_0_3"] <= 3  # a cut copy of a sample text: judged out of fold, never by its label
    assert response.choices[0].finish_reason == "stop"
    assert (
        response.usage is not None
        and response.usage.total_tokens == response.usage.prompt_tokens + response.usage.completion_tokens
    )


def test_batch_and_relevance_answers(server: ServerHandle) -> None:
    client = _client(server)
    batch = ("ROW_INDEX: 0\n<<<TEXT_TO_LABEL>>>\nhello\n<<<END_TEXT_TO_LABEL>>>\n\n"
             "ROW_INDEX: 1\n<<<TEXT_TO_LABEL>>>\nbye\n<<<END_TEXT_TO_LABEL>>>")
    out = client.chat.completions.create(model="harness-baseline", messages=[{"role": "user", "content": batch}])
    assert [i["row_index"] for i in json.loads(out.choices[0].message.content or "")["items"]] == [0, 1]
    rel = ("<<<PROMPT>>>\nrecipe for curry\n<<<END_PROMPT>>>\n"
           "<<<RESPONSE>>>\nA curry recipe: fry onion, add curry paste\n<<<END_RESPONSE>>>")
    out = client.chat.completions.create(model="harness-baseline", messages=[{"role": "user", "content": rel}])
    assert json.loads(out.choices[0].message.content or "")["relevance"] in (1, 2, 3)


def test_errors_use_openai_shape(make_server) -> None:  # type: ignore[no-untyped-def]
    handle = make_server(api_key="sk-right")
    with pytest.raises(openai.AuthenticationError) as auth:
        _client(handle, api_key="sk-wrong").chat.completions.create(model="harness-baseline", messages=GRADE_MESSAGES)  # type: ignore[arg-type]
    assert auth.value.status_code == 401 and auth.value.code == "invalid_api_key"
    good = _client(handle, api_key="sk-right")
    with pytest.raises(openai.NotFoundError) as missing:
        good.chat.completions.create(model="gpt-nope", messages=GRADE_MESSAGES)  # type: ignore[arg-type]
    assert missing.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as bad:
        good.chat.completions.create(model="harness-baseline", messages=GRADE_MESSAGES, response_format={"type": "xml"})  # type: ignore[arg-type, typeddict-item]
    assert "response_format" in bad.value.message


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("429", openai.RateLimitError),
        ("500", openai.InternalServerError),
        ("503", openai.InternalServerError),
        ("drop", openai.APIConnectionError),
        ("timeout", openai.APITimeoutError),
    ],
)
@pytest.mark.slow
def test_error_faults(make_server, mode: str, expected: type[Exception]) -> None:  # type: ignore[no-untyped-def]
    handle = make_server(fail_rate=1.0, fail_modes=(mode,), hang_s=3.0)
    with pytest.raises(expected) as info:
        _client(handle, timeout=0.5).chat.completions.create(model="harness-baseline", messages=GRADE_MESSAGES)  # type: ignore[arg-type]
    if mode == "429":
        assert info.value.response.headers["retry-after"] == "1"  # type: ignore[attr-defined]
    assert stats(handle)["faults"] == {mode: 1}


@pytest.mark.parametrize(
    ("mode", "finish", "check"),
    [
        ("truncated", "length", lambda c: not c.rstrip().endswith("}")),
        ("refusal", "stop", lambda c: c.startswith("I'm sorry")),
        ("garbage", "stop", lambda c: "{" not in c),
        ("content_filter", "content_filter", lambda c: c == ""),
    ],
)
def test_content_faults(make_server, mode: str, finish: str, check) -> None:  # type: ignore[no-untyped-def]
    handle = make_server(fail_rate=1.0, fail_modes=(mode,))
    out = _client(handle).chat.completions.create(model="harness-baseline", messages=GRADE_MESSAGES)  # type: ignore[arg-type]
    assert out.choices[0].finish_reason == finish
    assert check(out.choices[0].message.content or "")


def test_malformed_body_fault(make_server) -> None:  # type: ignore[no-untyped-def]
    handle = make_server(fail_rate=1.0, fail_modes=("malformed",))
    with pytest.raises((openai.APIResponseValidationError, json.JSONDecodeError, ValueError)):
        _client(handle).chat.completions.create(model="harness-baseline", messages=GRADE_MESSAGES)  # type: ignore[arg-type]


def test_faults_are_seeded_and_reproducible(make_server) -> None:  # type: ignore[no-untyped-def]
    outcomes = []
    for _ in range(2):
        handle = make_server(fail_rate=0.5, fail_modes=("500",), seed=7)
        client = _client(handle)
        seen = []
        for i in range(20):
            try:
                client.chat.completions.create(
                    model="harness-baseline", messages=[{"role": "user", "content": f"text {i}"}]
                )
                seen.append("ok")
            except openai.InternalServerError:
                seen.append("500")
        outcomes.append(seen)
    assert outcomes[0] == outcomes[1] and 3 <= outcomes[0].count("500") <= 17
