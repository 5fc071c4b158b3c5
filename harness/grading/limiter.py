"""Concurrency that adapts to rate limiting: halve on a 429, creep back one slot per success (AIMD)."""

from __future__ import annotations

import asyncio


class AdaptiveLimiter:
    """A concurrency limit that halves on rate limiting and creeps back up on success."""

    def __init__(self, maximum: int) -> None:
        self.maximum = maximum
        self.limit = float(maximum)
        self.active = 0
        self._condition = asyncio.Condition()

    async def acquire(self) -> None:
        async with self._condition:
            await self._condition.wait_for(lambda: self.active < max(1, int(self.limit)))
            self.active += 1

    async def release(self, *, rate_limited: bool) -> None:
        async with self._condition:
            self.active -= 1
            if rate_limited:
                self.limit = max(1.0, self.limit / 2)
            elif self.limit < self.maximum:
                self.limit = min(float(self.maximum), self.limit + 1.0 / max(1.0, self.limit))
            self._condition.notify_all()
