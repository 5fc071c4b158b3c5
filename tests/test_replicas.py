"""Several replicas of one grader: the least busy takes each request, a dead one is set aside."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli.app import app
from harness.grading.endpoint import EndpointConfig, RetryPolicy
from harness.grading.grade import GradeSpec, grade
from harness.grading.replicas import Replicas
from harness.io.pairs import load_pairs, write_pairs
from harness.io.runs import read_labels
from harness.workflows.embedded import free_port, start_serve_process
from tests.helpers import SAMPLE


def test_least_busy_healthy_replica_is_picked_and_a_failing_one_set_aside() -> None:
    pool = Replicas(["a", "b"])
    first, second = pool.pick(), pool.pick()
    assert (first, second) == ("a", "b")  # b had fewer in flight after a was taken
    pool.done("a", ok=False)
    pool.done("b", ok=True)
    assert pool.pick() == "a"  # one failure is not enough to set a replica aside
    pool.done("a", ok=False)
    assert pool.pick() == "b" and pool.pick() == "b"
    pool.lose("b", "answered as model 'x'")
    assert pool.live() == ["a"] and pool.pick() == "a"  # a lost replica is never picked while another lives


@pytest.mark.slow
def test_two_replicas_one_killed_mid_run_every_item_ends_ok(tmp_path: Path) -> None:
    ports = [free_port(), free_port()]
    processes = [start_serve_process(port, "--latency-ms", "30") for port in ports]
    urls = [f"http://127.0.0.1:{port}/v1" for port in ports]
    data = write_pairs(load_pairs(SAMPLE), tmp_path / "d.jsonl")
    endpoint = EndpointConfig(base_url=urls[0], replicas=(urls[1],), concurrency=8, timeout_s=5.0,
                              retry=RetryPolicy(max_attempts=6, initial_s=0.05, max_s=0.5))
    run = tmp_path / "run"
    outcome: dict[str, object] = {}
    worker = threading.Thread(target=lambda: outcome.setdefault("result", grade(data, GradeSpec(), endpoint, run_dir=run)))
    try:
        worker.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not ((run / "labels.jsonl").exists() and len(read_labels(run)) >= 60):
            time.sleep(0.05)
        processes[0].kill()  # one replica dies in the middle of the run
        worker.join(180)
    finally:
        for process in processes:
            process.kill()
            process.wait(10)
    records = read_labels(run)
    assert len(records) == 2 * len(load_pairs(SAMPLE)) and {r["status"] for r in records} == {"ok"}
    manifest = json.loads((run / "manifest.json").read_text())
    by_replica = manifest["last_session"]["requests_by_replica"]
    assert manifest["status"] == "complete" and all(n > 0 for n in by_replica.values()) and set(by_replica) == set(urls)


def test_replicas_from_a_comma_separated_base_url(cli: CliRunner, tmp_path: Path) -> None:
    from harness.grading.endpoint import endpoint_of
    from harness.grading.settings import resolve

    endpoint = endpoint_of(resolve({"base_url": "http://a:1/v1, http://b:2/v1"}).endpoint)
    assert endpoint.base_url == "http://a:1/v1" and endpoint.replicas == ("http://b:2/v1",)
    (tmp_path / "harness.toml").write_text('base_url = ["http://c:3/v1", "http://d:4/v1"]\n')
    endpoint = endpoint_of(resolve(config=tmp_path / "harness.toml").endpoint)
    assert endpoint.urls == ("http://c:3/v1", "http://d:4/v1")
    bad = cli.invoke(app, ["grade", "x.jsonl", "--base-url", "http://a:1/v1,ftp://b"])
    assert bad.exit_code == 2 and "for every replica" in bad.output
