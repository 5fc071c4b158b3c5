"""Several self-hosted replicas of one grader: requests go to the least busy healthy one.

A replica that fails to answer twice in a row is set aside for a cool-down that doubles on each
further failure (up to a minute) and is tried again afterwards; the run completes on the
others. With every replica set aside, the one that comes back first is used.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

FAILURES_BEFORE_ASIDE = 2
COOLDOWN_S = 2.0
COOLDOWN_MAX_S = 60.0


class Replicas:
    """In-flight counts and health of the replicas' base URLs (one event loop, no locks needed)."""

    def __init__(self, urls: Sequence[str]) -> None:
        self.urls = list(urls)
        self.in_flight = dict.fromkeys(self.urls, 0)
        self.failures = dict.fromkeys(self.urls, 0)
        self.aside_until = dict.fromkeys(self.urls, 0.0)
        self.sent = dict.fromkeys(self.urls, 0)

    def pick(self) -> str:
        """The healthy replica with the fewest requests in flight (first listed on a tie)."""
        healthy = self.healthy()
        chosen = min(healthy, key=lambda u: self.in_flight[u]) if healthy else min(self.urls, key=lambda u: self.aside_until[u])
        self.in_flight[chosen] += 1
        self.sent[chosen] += 1
        return chosen

    def done(self, url: str, *, reached: bool) -> None:
        """A request to ``url`` finished; ``reached`` is False when no HTTP answer came back."""
        self.in_flight[url] -= 1
        if reached:
            self.failures[url] = 0
            return
        self.failures[url] += 1
        if self.failures[url] >= FAILURES_BEFORE_ASIDE and len(self.urls) > 1:
            extra = self.failures[url] - FAILURES_BEFORE_ASIDE
            self.aside_until[url] = time.monotonic() + min(COOLDOWN_MAX_S, COOLDOWN_S * 2**extra)

    def healthy(self) -> list[str]:
        now = time.monotonic()
        return [u for u in self.urls if self.aside_until[u] <= now]
