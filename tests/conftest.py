"""Shared fixtures: zero retry waits, temp folders, and real local endpoints on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from harness.cli.app import app
from harness.grading.grade import grade
from harness.grading.jobs import GradeSpec
from harness.io.pairs import load_pairs, write_pairs
from harness.serve.config import ServeConfig
from harness.serve.runner import ServerHandle, start_server
from tests.helpers import RUNNER, SAMPLE, Scripted, endpoint_for


@pytest.fixture(autouse=True)
def _fast_and_isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No backoff sleeps, no ambient credentials or config, and a private working folder."""
    monkeypatch.setenv("HARNESS_BACKOFF_INITIAL_S", "0")
    monkeypatch.setenv("HARNESS_RETRY_AFTER_CAP_S", "0")
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "HARNESS_CONFIG", "AZURE_OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def cli() -> CliRunner:
    """typer's CliRunner, the one every test runs the command line with: ``cli.invoke(app, [...])``."""
    return RUNNER


@pytest.fixture(scope="session")
def server() -> Iterator[ServerHandle]:
    """A fault-free endpoint fitted on the bundled sample, shared by the session."""
    handle = start_server(str(SAMPLE))
    yield handle
    handle.stop()


@pytest.fixture
def make_server() -> Iterator[Callable[..., ServerHandle]]:
    """Start endpoints with a given ServeConfig; all are stopped after the test."""
    handles: list[ServerHandle] = []

    def factory(**config: object) -> ServerHandle:
        handle = start_server(str(SAMPLE), ServeConfig(**config))  # type: ignore[arg-type]
        handles.append(handle)
        return handle

    yield factory
    for handle in handles:
        handle.stop()


def pytest_runtest_setup(item: pytest.Item) -> None:
    """``@pytest.mark.shared_data(PATH)``: a test of the project's public data sets. Missing data skips it on a
    developer's machine, but fails it in CI (``CI`` set), where ../shared is always laid beside the clone: a test
    that silently does nothing there would read as a pass."""
    import os

    for marker in item.iter_markers("shared_data"):
        path = Path(marker.args[0])
        if not path.exists():
            if os.environ.get("CI"):
                pytest.fail(
                    f"shared data {path} is missing; CI expects ../shared/data beside the clone (see the README)"
                )
            pytest.skip(f"shared data {path} not present (it is in CI)")
    for _marker in item.iter_markers("local_model"):
        from harness.serve.local_model import missing_modules

        missing = missing_modules("smollm2-135m")
        if missing:
            if os.environ.get("CI") or os.environ.get("HARNESS_REQUIRE_LOCAL") == "1":
                pytest.fail(
                    f"the [local] extra is missing ({', '.join(missing)}); .ci/run installs it with make install-local"
                )
            pytest.skip(f"the [local] extra is not installed ({', '.join(missing)}): make install-local")


@pytest.fixture
def scripted() -> Iterator[Callable[[Callable[[dict[str, Any]], Any]], Scripted]]:
    servers: list[Scripted] = []

    def make(handler: Callable[[dict[str, Any]], Any]) -> Scripted:
        server = Scripted(handler)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def run_and_calibration(cli: CliRunner, server, tmp_path: Path) -> tuple[Path, Path]:  # type: ignore[no-untyped-def]
    data = write_pairs(load_pairs(SAMPLE), tmp_path / "d.jsonl")
    grade(data, GradeSpec(), endpoint_for(server), run_dir=tmp_path / "run")
    assert cli.invoke(app, ["calibrate", str(tmp_path / "run"), "--human", str(data), "--n-boot", "0"]).exit_code == 0
    return tmp_path / "run", tmp_path / "run" / "calibration.json"
