"""The policy units: settings precedence, Retry-After capping, AIMD concurrency, the request key."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from harness.grading.answers import RetryableError
from harness.grading.cache import request_key
from harness.grading.client import GraderClient
from harness.grading.endpoint import EndpointConfig, RetryPolicy
from harness.grading.limiter import AdaptiveLimiter


def _state(error: Exception, attempt: int = 1) -> SimpleNamespace:
    outcome = SimpleNamespace(exception=lambda: error)
    return SimpleNamespace(outcome=outcome, attempt_number=attempt)


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    client = GraderClient(EndpointConfig(base_url="http://127.0.0.1:1/v1", retry=RetryPolicy(retry_after_cap_s=5.0, initial_s=0.5, max_s=20.0)))
    assert client.wait_seconds(_state(RetryableError("429", retry_after=2.0))) == 2.0
    assert client.wait_seconds(_state(RetryableError("429", retry_after=300.0))) == 5.0  # capped
    waits = [client.wait_seconds(_state(RetryableError("500"), attempt=4)) for _ in range(200)]
    assert 0.0 <= min(waits) and max(waits) <= 20.0 and len({round(w, 6) for w in waits}) > 100  # full jitter
    unreachable = RetryableError("refused", unreachable=True)
    assert max(client.wait_seconds(_state(unreachable, attempt=6)) for _ in range(50)) <= 0.5  # nothing ever answered
    client.answered = 1
    assert max(client.wait_seconds(_state(unreachable, attempt=6)) for _ in range(200)) > 0.5  # once it has answered


def test_aimd_halves_on_rate_limits_and_creeps_back() -> None:
    async def scenario() -> list[float]:
        limiter = AdaptiveLimiter(16)
        seen = []
        for rate_limited in (True, True, True, False, False):
            await limiter.acquire()
            await limiter.release(rate_limited=rate_limited)
            seen.append(limiter.limit)
        for _ in range(200):
            await limiter.acquire()
            await limiter.release(rate_limited=False)
        seen.append(limiter.limit)
        return seen

    seen = asyncio.run(scenario())
    assert seen[:3] == [8.0, 4.0, 2.0]  # halved on each 429
    assert seen[3] == pytest.approx(2.5) and seen[4] == pytest.approx(2.9)  # +1/limit per success
    assert seen[-1] == 16.0  # back to the maximum, never above


def test_request_key_holds_what_changes_the_answer_and_nothing_else() -> None:
    request = {"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": 0.0, "seed": 1, "max_tokens": 9}
    key = request_key("http://h:1/v1", request)
    assert request_key("http://user:secret@h:1/v1/?q=1", request) == key  # credentials and query are not identity
    assert request_key("http://h:1/v1", {**request, "stream": False, "timeout": 3}) == key  # transport details
    for change in ({"model": "n"}, {"temperature": 0.5}, {"seed": 2}, {"max_tokens": 10},
                   {"messages": [{"role": "user", "content": "y"}]}, {"response_format": {"type": "json_object"}}):
        assert request_key("http://h:1/v1", {**request, **change}) != key, change
    assert request_key("http://other:1/v1", request) != key
