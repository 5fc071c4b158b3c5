"""The embedded endpoint: ``harness serve`` started as a child process on a free loopback port, and its readiness."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ..core.errors import GraderError


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """In the child, before exec: Linux sends it SIGTERM when its parent dies (PR_SET_PDEATHSIG)."""
    import ctypes
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # the child's own watch (PARENT_ENV) still stops it


def start_serve_process(port: int, *extra: str, timeout_s: float = 60.0) -> subprocess.Popen[bytes]:
    """Run ``harness serve`` in a child process; return once it says it is listening.

    ``harness serve`` prints its URL only when the socket accepts connections, so waiting for
    that line is waiting for readiness (no sleeping and polling).
    """
    import os
    import selectors

    from ..serve.runner import PARENT_ENV

    process = subprocess.Popen(
        [sys.executable, "-m", "harness", "serve", "--port", str(port), *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, PARENT_ENV: str(os.getpid())},  # the child stops when this process is gone, kill -9 included
        preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
    )
    assert process.stderr is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stderr, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout_s
    seen = b""
    while time.monotonic() < deadline:
        if not selector.select(timeout=max(0.0, deadline - time.monotonic())):
            break
        line = process.stderr.readline()
        if not line:  # the child exited
            process.wait(5)
            raise GraderError(
                f"harness serve exited early: {(seen + process.stderr.read()).decode(errors='replace').strip()[-500:]}"
            )
        seen += line
        if line.startswith(b"harness serve: http://"):
            selector.close()
            return process
    process.kill()
    raise GraderError(f"harness serve did not start listening within {timeout_s:g} s")


def wait_until_graders_ready(port: int, *, timeout_s: float = 120.0, identity: str | None = None) -> None:
    """Block until the served graders are fitted (``/health`` says ready); chat requests would wait anyway. With
    ``identity``, the server must say it is that one (the fingerprint its starter computed and keyed the cache by)."""
    import json

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
            health = json.loads(response.read())
        if identity is not None and health.get("identity") != identity:
            raise GraderError(f"the embedded server says it is {health.get('identity')}, not {identity} as its starter "
                              "computed; it would answer for another grader's cache entries (a harness install changed "
                              "while it started?)")
        if health.get("error"):
            raise GraderError(f"the embedded graders could not be fitted: {health['error']}")
        if health.get("ready"):
            return
        time.sleep(0.05)
    raise GraderError(f"the embedded graders were not ready within {timeout_s:g} s")


def embedded_identity(names: Sequence[str]) -> str | None:
    """The fingerprint ``harness serve --model-name …`` publishes for these served ``names`` (its other flags at their
    defaults, fitted on the bundled sample, as :func:`embedded_endpoint` starts it), computed here without asking it."""
    from ..serve.config import ServeConfig
    from ..serve.identity import serve_identity

    return serve_identity(ServeConfig(model_names=tuple(names)))


def served_models(models: Sequence[str]) -> list[str]:
    """The ``harness serve`` models to start for ``models``: every embedded grader, plus the local language models named
    (each checked for its optional extra first, so a missing install is exit 2 before anything starts)."""
    from ..core.errors import ConfigError
    from ..serve.graders import PROFILES
    from ..serve.local_model import LOCAL_MODELS, require_local

    for model in models:
        if model not in PROFILES and model not in LOCAL_MODELS:
            raise ConfigError(f"`model` {model!r}: the embedded endpoint serves {[*PROFILES, *LOCAL_MODELS]}; "
                              "for another model pass its endpoint as `base_url`")
        if model in LOCAL_MODELS:
            require_local(model)
    return [*PROFILES, *dict.fromkeys(m for m in models if m in LOCAL_MODELS)]


class EmbeddedServer:
    """A started ``harness serve``: its base URL, and :meth:`ready`, which waits (once) until its graders are fitted and
    its local models loaded."""

    def __init__(
        self, port: int, process: subprocess.Popen[bytes], ready_timeout_s: float, identity: str | None = None
    ) -> None:
        self.port, self.process, self.ready_timeout_s = port, process, ready_timeout_s
        self.url = f"http://127.0.0.1:{port}/v1"
        #: What it serves (harness.serve.identity), computed without asking it: hand it to ``EndpointConfig.identity``.
        self.identity = identity
        self._ready = False

    def ready(self) -> None:
        if self._ready:
            return
        try:
            wait_until_graders_ready(self.port, timeout_s=self.ready_timeout_s, identity=self.identity)
        except OSError as exc:  # the server went away while loading (killed, out of memory)
            code = self.process.poll()
            raise GraderError(f"harness serve stopped before it was ready ({exc}; exit code {code})") from None
        self._ready = True


@contextmanager
def embedded_endpoint(
    models: Sequence[str], *, ready_timeout_s: float = 600.0, wait: bool = True
) -> Iterator[EmbeddedServer]:
    """``harness serve`` for ``models`` as a child process on a free port, stopped on exit. With ``wait`` it is ready
    (graders fitted, local models loaded) when yielded; without, it is listening and loading, and the caller hands
    :meth:`EmbeddedServer.ready` to the grade (``EndpointConfig.ready``), which waits only when it must send, and
    :attr:`EmbeddedServer.identity` (``EndpointConfig.identity``), so the grade never asks it who it is."""
    names = served_models(models)
    identity = embedded_identity(names)
    port = free_port()
    process = start_serve_process(port, *[arg for name in names for arg in ("--model-name", name)])
    try:
        server = EmbeddedServer(port, process, ready_timeout_s, identity)
        if wait:
            server.ready()
        yield server
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


#: A local language model answers one request at a time, tens of seconds each: unless the user set them, its job keeps
#: one request in flight and gives each this long.
LOCAL_MODEL_CONCURRENCY = 1
LOCAL_MODEL_TIMEOUT_S = 600.0


def job_endpoint(stack: Any, settings: Any, models: Sequence[str]) -> Any:
    """The endpoint a job sends to (:class:`~harness.grading.endpoint.EndpointConfig`), from its resolved settings
    (:func:`harness.grading.settings.resolve`). With ``base_url = "embedded"``: ``harness serve`` started for
    ``models`` (stopped when ``stack`` closes), loading while the job starts (the job waits only before its first
    request, so one answered wholly from the cache never waits for a model to load)."""
    from ..grading.endpoint import endpoint_of

    if not settings.endpoint.embedded:
        return endpoint_of(settings.endpoint)
    server = stack.enter_context(embedded_endpoint(list(models), wait=False))
    return endpoint_of(settings.endpoint, base_url=server.url, ready=server.ready, identity=server.identity)


def for_model(endpoint: Any, settings: Any, model: str) -> Any:
    """The endpoint for one grader: a local language model on the embedded endpoint keeps
    :data:`LOCAL_MODEL_CONCURRENCY` request in flight for :data:`LOCAL_MODEL_TIMEOUT_S` each, where the user set neither
    (its requests would queue past any ordinary timeout). The one rule for every command and study."""
    import dataclasses

    from ..serve.local_model import LOCAL_MODELS

    if not settings.endpoint.embedded or model not in LOCAL_MODELS:
        return endpoint
    more: dict[str, Any] = {}
    if settings.sources.get("concurrency") == "default":
        more["concurrency"] = LOCAL_MODEL_CONCURRENCY
    if settings.sources.get("timeout_s") == "default":
        more["timeout_s"] = LOCAL_MODEL_TIMEOUT_S
    return dataclasses.replace(endpoint, **more)
