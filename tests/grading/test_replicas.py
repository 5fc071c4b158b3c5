"""Several replicas of one grader: the least busy healthy one picked, a dead, failing or impostor one set aside and
named."""

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
from tests.helpers import SAMPLE, endpoint_at, pairs_file


def test_a_dead_replica_at_start_does_not_stop_the_run(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    dead = f"http://127.0.0.1:{free_port()}/v1"
    for urls in ((server.base_url, dead), (dead, server.base_url)):
        run = tmp_path / f"run{len(list(tmp_path.iterdir()))}"
        result = grade(pairs_file(tmp_path), GradeSpec(), endpoint_at(*urls), run_dir=run)
        assert result.manifest["counts"] == {"ok": 24, "unparsed": 0, "refused": 0, "failed": 0}


def test_every_replica_dead_names_them(tmp_path: Path) -> None:
    from harness.core.errors import GraderError

    dead = [f"http://127.0.0.1:{free_port()}/v1" for _ in range(2)]
    with pytest.raises(GraderError, match="cannot reach") as caught:
        grade(pairs_file(tmp_path), GradeSpec(), endpoint_at(*dead), run_dir=tmp_path / "run")
    assert all(url in str(caught.value) for url in dead)


def test_a_replica_answering_as_another_model_is_set_aside_and_named(server, make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    liar = make_server(answer_as="harness-small")
    data = pairs_file(tmp_path)
    clean = grade(data, GradeSpec(), endpoint_at(server.base_url), run_dir=tmp_path / "clean")
    mixed = grade(data, GradeSpec(), endpoint_at(liar.base_url, server.base_url), run_dir=tmp_path / "mixed")
    assert mixed.manifest["counts"]["ok"] == 24
    session = mixed.manifest["last_session"]
    assert list(session["replicas_set_aside"]) == [liar.base_url]
    assert "answered as model 'harness-small', not 'harness-baseline'" in session["replicas_set_aside"][liar.base_url]
    same = {(r["id"], r["target"]): r["severity"] for r in read_labels(tmp_path / "clean")}
    assert {(r["id"], r["target"]): r["severity"] for r in read_labels(tmp_path / "mixed")} == same
    assert clean.manifest["last_session"].get("answered_models") is None


@pytest.mark.parametrize("mode", ["500", "html"])
def test_a_failing_replica_is_set_aside_and_the_healthy_one_serves(
    server, make_server, tmp_path: Path, mode: str
) -> None:  # type: ignore[no-untyped-def]
    broken = make_server(fail_rate=1.0, fail_modes=(mode,))
    result = grade(
        pairs_file(tmp_path), GradeSpec(), endpoint_at(broken.base_url, server.base_url), run_dir=tmp_path / "run"
    )
    assert result.manifest["counts"]["ok"] == 24
    by_replica = result.manifest["last_session"]["requests_by_replica"]
    assert by_replica[broken.base_url] < by_replica[server.base_url]  # cooled down, not favoured for failing fast


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
    worker = threading.Thread(
        target=lambda: outcome.setdefault("result", grade(data, GradeSpec(), endpoint, run_dir=run))
    )
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
