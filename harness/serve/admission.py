"""The local models as a server runs them: one worker thread, a bounded queue before it, abandoned requests stopped.

A model on 2 cores answers one request at a time, a few seconds each. A queue without a bound lets a client with 16
requests in flight wait past its own timeout while the model answers requests nobody will read. So:

- at most :data:`CAPACITY` requests are queued or running, and fewer when the model is slow: a request is
  queued only while the answers ahead of it should take at most :data:`WAIT_BUDGET_S` (half the client's default
  timeout; each answer counted at the mean of the last ones). One more is refused at once with 429 and a
  ``Retry-After`` of about one answer's time, which harness's client honours while its concurrency halves (AIMD),
  so a ``grade`` at the default concurrency and timeout settles on what the model can do;
- a request whose client went away (disconnected, or timed out and closed its connection) is cancelled: still
  waiting, it never starts; running, it stops before its next decoding step (:class:`~.decoding.Cancelled`);
- :meth:`ModelQueue.close` (the server stopping) cancels everything, so ``harness serve`` exits within a
  decoding step of SIGTERM. The worker is a daemon thread: a long prefill cannot hold the process.
"""

from __future__ import annotations

import asyncio
import collections
import math
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from .decoding import Cancelled, never
from .local_model import LOCAL_MODELS, LocalModel, RequestError, chat_payload
from .wire import error_response
from .wire import refusal as wire_refusal

T = TypeVar("T")

#: Requests queued or running at once; past it, 429.
CAPACITY = 4
#: Longest a queued request should wait for the answers ahead of it (half of grade's default 60 s timeout).
WAIT_BUDGET_S = 30.0
#: How often a waiting handler looks whether its client is still there.
POLL_S = 0.02
#: Bounds of the Retry-After a refused request is given, in seconds.
RETRY_AFTER_S = (1, 30)


def client_gone(request: Any) -> bool:
    """Whether an aiohttp request's client has gone: its connection closed (a disconnect, or a client timeout)."""
    transport = request.transport
    return transport is None or bool(transport.is_closing())


class Busy(Exception):
    """The queue is full: answer 429 with ``Retry-After: retry_after``."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"the local model is busy: its queue is full (at most {CAPACITY} requests, and no longer than "
                         f"{WAIT_BUDGET_S:g} s of answers ahead); retry in {retry_after} s")
        self.retry_after = retry_after


class ModelQueue:
    """Runs ``job(cancelled)`` calls on one daemon worker thread, in arrival order, at most :data:`CAPACITY` at once."""

    def __init__(self, capacity: int = CAPACITY, wait_budget_s: float = WAIT_BUDGET_S) -> None:
        self.capacity, self.wait_budget_s = capacity, wait_budget_s
        self.pending = 0
        self.refused = 0
        self.abandoned = 0
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._seconds: collections.deque[float] = collections.deque(maxlen=16)
        self._worker = threading.Thread(target=self._work, name="harness-model", daemon=True)
        self._worker.start()

    def mean_s(self) -> float:
        """The mean time of the last answers (1 s before any)."""
        return sum(self._seconds) / len(self._seconds) if self._seconds else 1.0

    def retry_after(self) -> int:
        """About when a place frees: one answer's mean time, in whole seconds within :data:`RETRY_AFTER_S`."""
        return min(RETRY_AFTER_S[1], max(RETRY_AFTER_S[0], math.ceil(self.mean_s())))

    async def run(self, job: Callable[[Callable[[], bool]], T], gone: Callable[[], bool] | None = None) -> T:
        """``job``'s result, run on the worker; ``gone`` says whether the request's client went away (None: a job
        with no client to lose, the batches route's, queued past the bound rather than refused).

        Raises:
            Busy: the queue is full (nothing was queued).
            Cancelled: the client went away or the server is stopping before the job finished.
        """
        with self._lock:
            if self.stopping.is_set():
                raise Cancelled
            ahead = self.pending
            if gone is not None and ahead and (ahead >= self.capacity or ahead * self.mean_s() > self.wait_budget_s):
                self.refused += 1
                raise Busy(self.retry_after())
            self.pending += 1
        loop = asyncio.get_running_loop()
        done: asyncio.Future[T] = loop.create_future()
        abandon = threading.Event()
        held = [True]  # this request holds a place in the queue until it is answered or abandoned

        def release() -> None:
            with self._lock:
                if held[0]:
                    held[0] = False
                    self.pending -= 1

        def cancelled() -> bool:
            return abandon.is_set() or self.stopping.is_set()

        def settle(result: Any, error: BaseException | None) -> None:
            if not done.done():
                done.set_exception(error) if error is not None else done.set_result(result)

        def work() -> None:
            started, result, error = time.perf_counter(), None, None
            try:
                if cancelled():
                    raise Cancelled
                result = job(cancelled)
                self._seconds.append(time.perf_counter() - started)
            except BaseException as exc:  # handed to the waiting handler
                error = exc
            finally:
                release()
            try:
                loop.call_soon_threadsafe(settle, result, error)
            except RuntimeError:  # the loop has closed: the server stopped
                pass

        self._jobs.put(work)
        try:
            while not done.done():
                await asyncio.wait({done}, timeout=POLL_S)
                if not done.done() and ((gone is not None and gone()) or self.stopping.is_set()):
                    raise Cancelled
        except (Cancelled, asyncio.CancelledError):  # the client went away, or the handler was cancelled
            abandon.set()
            release()  # its place is free now: its client's retry must not find the queue full of what it left
            self.abandoned += 1
            done.add_done_callback(lambda future: future.exception())  # its outcome is read by no one
            raise
        return done.result()

    def close(self) -> None:
        """Stop: the running job stops before its next step, queued ones never start, new ones are refused."""
        self.stopping.set()
        self._jobs.put(None)

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            job()

    def as_json(self) -> dict[str, Any]:
        return {
            "capacity": self.capacity, "pending": self.pending, "refused": self.refused, "abandoned": self.abandoned
        }


#: What a request to a local model may end in besides an answer (see :func:`refusal`).
REFUSED = (RequestError, Busy, Cancelled)


def refusal(exc: RequestError | Busy | Cancelled) -> Any:
    """The answer to a request the model cannot answer as asked (400), the queue refused (429 with Retry-After) or
    abandoned (503: its client went away, so nobody reads it, or the server is stopping)."""
    if isinstance(exc, RequestError):  # OpenAI's shape, the refused parameter named (wire.refused)
        return wire_refusal(exc)
    if isinstance(exc, Busy):
        response = error_response(429, str(exc), "requests", "rate_limit_exceeded")
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    return error_response(
        503, "The request was abandoned: its client went away or the server is stopping.", "server_error"
    )


class LocalModels:
    """The real language models a server runs (none: every request goes elsewhere), behind one :class:`ModelQueue`."""

    def __init__(self, names: tuple[str, ...], *, prefix_reuse: bool = True) -> None:
        self.models = {name: LocalModel(name, prefix_reuse=prefix_reuse) for name in names if name in LOCAL_MODELS}
        self.queue = ModelQueue() if self.models else None

    def __contains__(self, name: object) -> bool:
        return name in self.models

    def load(self) -> None:
        for model in self.models.values():
            model.load()

    async def run(self, job: Callable[[Callable[[], bool]], T], gone: Callable[[], bool] | None) -> T:
        """``job`` on the queue (see :meth:`ModelQueue.run`)."""
        assert self.queue is not None
        return await self.queue.run(job, gone)

    def payload(self, body: dict[str, Any], raw: bytes, fault: str | None = None,
                cancelled: Callable[[], bool] = never) -> dict[str, Any]:
        """The chat-completion body a local model answers ``body`` with (call from the queue's worker)."""
        return chat_payload(self.models[body["model"]], body, raw, fault, cancelled)

    def close(self) -> None:
        if self.queue is not None:
            self.queue.close()

    def as_json(self) -> dict[str, Any]:
        """``/stats``'s part: the queue's bound and counts (nothing without a local model)."""
        return {"local_queue": self.queue.as_json()} if self.queue is not None else {}
