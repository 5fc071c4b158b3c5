"""What several test files share that is not a fixture: paths, the one CLI runner, an endpoint config for a test
server, its counts."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from harness.grading.endpoint import EndpointConfig, RetryPolicy
from harness.serve.runner import ServerHandle

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"
SAMPLE = REPO / "harness" / "data" / "sample_pairs.jsonl"
#: The one runner of the command line: tests take it as the ``cli`` fixture; plain helper functions and
#: hypothesis tests, which cannot take a fixture, use it by this name.
RUNNER = CliRunner()


def endpoint_for(handle: ServerHandle, **overrides: object) -> EndpointConfig:
    """An endpoint config for a test server: zero backoff, short timeout."""
    retry = RetryPolicy(max_attempts=int(overrides.pop("max_attempts", 6)), initial_s=0.0, retry_after_cap_s=0.0)  # type: ignore[call-overload]
    params: dict[str, object] = {"base_url": handle.base_url, "timeout_s": 5.0, "concurrency": 8, "retry": retry}
    params.update(overrides)
    return EndpointConfig(**params)  # type: ignore[arg-type]


def stats(handle: ServerHandle) -> dict[str, object]:
    """What the test server counted (requests, completions, faults …)."""
    return handle.endpoint.stats.as_json()
