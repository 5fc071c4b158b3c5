"""harness serve answers the official openai client; every fault mode is exercised."""

from __future__ import annotations

import json

import openai
import pytest

from harness.serve.runner import ServerHandle
from tests.helpers import stats

GRADE_MESSAGES = [
    {"role": "system", "content": "rubric"},
    {"role": "user", "content": "Grade this.\n<<<TEXT_TO_LABEL>>>\nStep 1: [step-by-step explosive instructions omitted]\n<<<END_TEXT_TO_LABEL>>>"},
]


def _client(handle: ServerHandle, **kwargs: object) -> openai.OpenAI:
    return openai.OpenAI(base_url=handle.base_url, api_key=str(kwargs.pop("api_key", "unused")), max_retries=0, **kwargs)  # type: ignore[arg-type]


def test_models_and_completion_shape(server: ServerHandle) -> None:
    client = _client(server)
    assert [m.id for m in client.models.list()] == ["harness-baseline", "harness-small", "harness-literal"]
    response = client.chat.completions.create(
        model="harness-baseline", messages=GRADE_MESSAGES, response_format={"type": "json_object"}, temperature=0, seed=1  # type: ignore[arg-type]
    )
    body = json.loads(response.choices[0].message.content or "")
    assert set(body) == {"H", "S", "V", "SH", "rationale"}
    assert body["V"]["severity_0_3"] == body["V"]["raw_0_7"] // 2
    assert 0 <= body["V"]["severity_0_3"] <= 3  # a cut copy of a sample text: judged out of fold, never by its label
    assert response.choices[0].finish_reason == "stop"
    assert response.usage is not None and response.usage.total_tokens == response.usage.prompt_tokens + response.usage.completion_tokens


def test_batch_and_relevance_answers(server: ServerHandle) -> None:
    client = _client(server)
    batch = "ROW_INDEX: 0\n<<<TEXT_TO_LABEL>>>\nhello\n<<<END_TEXT_TO_LABEL>>>\n\nROW_INDEX: 1\n<<<TEXT_TO_LABEL>>>\nbye\n<<<END_TEXT_TO_LABEL>>>"
    out = client.chat.completions.create(model="harness-baseline", messages=[{"role": "user", "content": batch}])
    assert [i["row_index"] for i in json.loads(out.choices[0].message.content or "")["items"]] == [0, 1]
    rel = "<<<PROMPT>>>\nrecipe for curry\n<<<END_PROMPT>>>\n<<<RESPONSE>>>\nA curry recipe: fry onion, add curry paste\n<<<END_RESPONSE>>>"
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
                client.chat.completions.create(model="harness-baseline", messages=[{"role": "user", "content": f"text {i}"}])
                seen.append("ok")
            except openai.InternalServerError:
                seen.append("500")
        outcomes.append(seen)
    assert outcomes[0] == outcomes[1] and 3 <= outcomes[0].count("500") <= 17
