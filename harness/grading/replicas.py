"""Several self-hosted replicas of one grader: requests go to the least busy healthy one.

Health is kept per replica. A request that gets no usable answer from a replica (unreachable,
timed out, a 5xx, a body that is not a completion) counts against that replica only; two such
failures in a row set it aside for a cool-down that doubles on each further failure (up to a
minute), and it is tried again afterwards. A replica that answers as another model than the one
asked for, or says 404 while another replica serves the model, is set aside for the rest of the
run and named (``lost``). The run stops only when no replica can serve: every one lost, or every
one unreachable with no answer ever.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

FAILURES_BEFORE_ASIDE = 2
COOLDOWN_S = 2.0
COOLDOWN_MAX_S = 60.0


def same_model(requested: str, answered: str | None) -> bool:
    """Does an answer's ``model`` name the requested model (a dated or tagged variant counts)?

    >>> same_model("gpt-4o", "gpt-4o-2024-08-06"), same_model("llama3", "llama3:8b")
    (True, True)
    >>> same_model("gpt-4o", "gpt-4o-mini")
    False
    >>> same_model("harness-baseline", "harness-small"), same_model("m", None)
    (False, True)
    """
    if not answered or answered == requested:
        return True
    if not answered.startswith(requested):
        return requested.split("/")[-1] == answered.split("/")[-1]
    rest = answered[len(requested):]
    return rest[0] in ":@/" or (rest[0] == "-" and rest[1:2].isdigit())


class Replicas:
    """In-flight counts and health of the replicas' base URLs (one event loop, no locks needed)."""

    def __init__(self, urls: Sequence[str]) -> None:
        self.urls = list(urls)
        self.in_flight = dict.fromkeys(self.urls, 0)
        self.failures = dict.fromkeys(self.urls, 0)
        self.aside_until = dict.fromkeys(self.urls, 0.0)
        self.sent = dict.fromkeys(self.urls, 0)
        self.answered = dict.fromkeys(self.urls, 0)  #: usable answers
        #: attempts that never reached the replica (the client counts them)
        self.unreachable = dict.fromkeys(self.urls, 0)
        self.lost: dict[str, str] = {}  #: replicas set aside for the run, with the reason
        self.models: dict[str, set[str]] = {u: set() for u in self.urls}  #: model names each answered as

    @property
    def several(self) -> bool:
        return len(self.urls) > 1

    def live(self) -> list[str]:
        return [u for u in self.urls if u not in self.lost]

    def pick(self) -> str:
        """The healthy replica with the fewest requests in flight (first listed on a tie); with every
        live replica cooling down, the one back first (a lost replica only when all are lost)."""
        live = self.live() or self.urls
        now = time.monotonic()
        healthy = [u for u in live if self.aside_until[u] <= now]
        if healthy:
            chosen = min(healthy, key=lambda u: self.in_flight[u])
        else:
            chosen = min(live, key=lambda u: self.aside_until[u])
        self.in_flight[chosen] += 1
        self.sent[chosen] += 1
        return chosen

    def done(self, url: str, *, ok: bool) -> None:
        """A request to ``url`` finished: ``ok`` with a usable answer; else a failure counted against it."""
        self.in_flight[url] -= 1
        if ok:
            self.failures[url] = 0
            self.answered[url] += 1
            return
        self.failures[url] += 1
        if self.failures[url] >= FAILURES_BEFORE_ASIDE and self.several:
            extra = self.failures[url] - FAILURES_BEFORE_ASIDE
            self.aside_until[url] = time.monotonic() + min(COOLDOWN_MAX_S, COOLDOWN_S * 2**extra)

    def lose(self, url: str, reason: str) -> None:
        """Set ``url`` aside for the rest of the run (its answers cannot be trusted or used)."""
        self.lost.setdefault(url, reason)

    def dead(self, limit: int) -> bool:
        """No replica can serve: every live one tried ``limit`` times without ever being reached."""
        live = self.live()
        return not live or all(self.unreachable[u] >= limit and self.answered[u] == 0 for u in live)
