"""The local models' queue: a bound answered with 429 and Retry-After, abandoned requests stopped within a step,
and a stop that ends the running job and everything queued. Jobs here are plain functions on the real worker
thread, each step a short sleep standing in for one decoding step of the model."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import pytest

from harness.serve.admission import CAPACITY, RETRY_AFTER_S, Busy, ModelQueue, client_gone
from harness.serve.decoding import Cancelled

STEP_S = 0.01


class Steps:
    """A job of many decoding steps that asks ``cancelled`` before each, counting the steps it took after ``mark``."""

    def __init__(self, steps: int = 10_000, gate: threading.Event | None = None) -> None:
        self.steps, self.gate = steps, gate
        self.started = threading.Event()
        self.taken = 0
        self.mark: int | None = None

    def __call__(self, cancelled: Callable[[], bool]) -> int:
        self.started.set()
        if self.gate is not None:
            self.gate.wait(10)
        for _ in range(self.steps):
            if cancelled():
                raise Cancelled
            time.sleep(STEP_S)
            self.taken += 1
        return self.taken

    def after_mark(self) -> int:
        return self.taken - (self.mark or 0)


def test_past_its_capacity_the_queue_refuses_with_a_retry_after_and_never_runs_the_refused() -> None:
    async def scenario() -> tuple[list[object], int]:
        queue = ModelQueue()
        gate = threading.Event()
        jobs = [Steps(steps=1, gate=gate) for _ in range(CAPACITY + 2)]
        tasks = [asyncio.ensure_future(queue.run(job, lambda: False)) for job in jobs]
        await asyncio.sleep(0.2)
        gate.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        return results, queue.refused

    results, refused = asyncio.run(scenario())
    assert results[:CAPACITY] == [1] * CAPACITY
    busy = results[CAPACITY:]
    assert refused == 2 and all(isinstance(r, Busy) for r in busy)
    assert all(RETRY_AFTER_S[0] <= r.retry_after <= RETRY_AFTER_S[1] for r in busy)  # type: ignore[union-attr]
    assert "busy" in str(busy[0])


def test_a_slow_model_queues_only_what_fits_in_the_wait_budget() -> None:
    async def scenario() -> list[object]:
        queue = ModelQueue(wait_budget_s=0.05)
        assert await queue.run(Steps(steps=10), lambda: False) == 10  # answers take about 0.1 s now
        gate = threading.Event()
        running = asyncio.ensure_future(queue.run(Steps(steps=1, gate=gate), lambda: False))
        await asyncio.sleep(0.05)
        refused = await asyncio.gather(queue.run(Steps(steps=1), lambda: False), return_exceptions=True)
        gate.set()
        return [*refused, await running]

    refused, answered = asyncio.run(scenario())
    assert isinstance(refused, Busy) and answered == 1  # one answer ahead (0.1 s) is over the 0.05 s budget


def test_a_batch_job_with_no_client_to_lose_is_queued_past_the_bound() -> None:
    async def scenario() -> list[object]:
        queue = ModelQueue(capacity=1)
        gate = threading.Event()
        first = asyncio.ensure_future(queue.run(Steps(steps=1, gate=gate), lambda: False))
        second = asyncio.ensure_future(queue.run(Steps(steps=2)))  # the batches route's: gone=None
        await asyncio.sleep(0.05)
        gate.set()
        return list(await asyncio.gather(first, second))

    assert asyncio.run(scenario()) == [1, 2]


def test_a_running_request_whose_client_went_away_stops_within_one_step() -> None:
    job = Steps()
    went = threading.Event()

    async def scenario() -> ModelQueue:
        queue = ModelQueue()
        task = asyncio.ensure_future(queue.run(job, went.is_set))
        await asyncio.to_thread(job.started.wait, 5)
        await asyncio.sleep(10 * STEP_S)
        job.mark = job.taken
        went.set()
        with pytest.raises(Cancelled):
            await task
        await asyncio.sleep(20 * STEP_S)  # the worker thread stops on its own
        return queue

    queue = asyncio.run(scenario())
    assert job.taken >= 5  # it was generating
    assert job.after_mark() <= 4  # the poll (20 ms) and one step of 10 ms, with room for a loaded machine
    assert queue.pending == 0 and queue.abandoned == 1


def test_an_abandoned_request_frees_its_place_at_once_for_its_clients_retry() -> None:
    class Slow(Steps):  # steps of 0.3 s: the abandoned job is still in its step when the retry arrives
        def __call__(self, cancelled: Callable[[], bool]) -> int:
            self.started.set()
            while not cancelled():
                time.sleep(0.3)
            raise Cancelled

    slow, retry = Slow(), Steps(steps=2)
    went = threading.Event()

    async def scenario() -> int:
        queue = ModelQueue(capacity=1)
        first = asyncio.ensure_future(queue.run(slow, went.is_set))
        await asyncio.to_thread(slow.started.wait, 5)
        went.set()
        with pytest.raises(Cancelled):
            await first
        return await queue.run(retry, lambda: False)  # not Busy: queued behind the step the abandoned job finishes

    assert asyncio.run(scenario()) == 2


def test_a_waiting_request_whose_client_went_away_never_starts() -> None:
    running, waiting = Steps(steps=30), Steps(steps=1)
    went = threading.Event()

    async def scenario() -> ModelQueue:
        queue = ModelQueue()
        first = asyncio.ensure_future(queue.run(running, lambda: False))
        second = asyncio.ensure_future(queue.run(waiting, went.is_set))
        await asyncio.to_thread(running.started.wait, 5)
        went.set()
        with pytest.raises(Cancelled):
            await second
        assert await first == 30
        return queue

    queue = asyncio.run(scenario())
    assert not waiting.started.is_set() and queue.pending == 0


def test_closing_stops_the_running_job_and_everything_queued_and_refuses_new_ones() -> None:
    running, queued = Steps(), Steps(steps=1)

    async def scenario() -> ModelQueue:
        queue = ModelQueue()
        first = asyncio.ensure_future(queue.run(running, lambda: False))
        second = asyncio.ensure_future(queue.run(queued, lambda: False))
        await asyncio.to_thread(running.started.wait, 5)
        queue.close()
        # stopped, not finished
        outcomes = await asyncio.wait_for(asyncio.gather(first, second, return_exceptions=True), 2.0)
        assert all(isinstance(o, Cancelled) for o in outcomes)
        with pytest.raises(Cancelled):
            await queue.run(Steps(steps=1), lambda: False)
        return queue

    queue = asyncio.run(scenario())
    assert not queued.started.is_set() and queue.pending == 0


def test_client_gone_reads_the_connection_of_a_real_request() -> None:
    """Over HTTP: a client that disconnects while its request is answered is seen as gone, and its job cancelled."""
    from aiohttp import ClientSession, ClientTimeout, web

    job = Steps()

    async def scenario() -> int:
        queue = ModelQueue()

        async def handler(request: web.Request) -> web.Response:
            try:
                return web.Response(text=str(await queue.run(job, lambda: client_gone(request))))
            except Cancelled:
                return web.Response(status=503)

        app = web.Application()
        app.router.add_get("/", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        async with ClientSession(timeout=ClientTimeout(total=0.3)) as session:
            with pytest.raises(TimeoutError):  # the client gives up and closes its connection
                await session.get(f"http://127.0.0.1:{port}/")
        job.mark = job.taken
        await asyncio.sleep(0.3)
        await runner.cleanup()
        return queue.abandoned

    assert asyncio.run(scenario()) == 1
    assert job.after_mark() <= 6  # stopped soon after the client left, not after 10,000 steps
