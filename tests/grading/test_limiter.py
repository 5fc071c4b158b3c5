"""Concurrency that halves on 429 and creeps back (AIMD)."""

from __future__ import annotations

import asyncio

import pytest

from harness.grading.limiter import AdaptiveLimiter


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
