"""Running ``harness serve``: in a background thread (tests, the Python API) or in the foreground.

The endpoint is listening before either returns or announces itself; its graders are fitted in
the background (or loaded from the fit cache) and chat requests wait for them.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError
from .config import ServeConfig
from .server import GraderEndpoint


class ServerHandle:
    """A server running in a background thread; ``stop()`` shuts it down."""

    def __init__(self, endpoint: GraderEndpoint, host: str = "127.0.0.1", port: int = 0) -> None:
        self.endpoint = endpoint
        self._host = host
        self._port = port
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: Any = None
        self._error: BaseException | None = None
        self.port = 0
        self._thread = threading.Thread(target=self._run, name="harness-serve", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise ConfigError(f"cannot start the endpoint on {host}:{port}: {self._error}")

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self.port}/v1"

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._start())
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()

    async def _start(self) -> None:
        from aiohttp import web

        self._runner = web.AppRunner(self.endpoint.app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port, backlog=1024)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    def stop(self) -> None:
        if self._loop is None:
            return
        self.endpoint.close()
        future = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop)
        try:
            future.result(10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def fit_cache_dir() -> str:
    """Where fitted graders are kept between runs: ``HARNESS_FIT_CACHE``, else the user's cache."""
    import os

    explicit = os.environ.get("HARNESS_FIT_CACHE")
    if explicit:
        return explicit
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return str(Path(base) / "harness" / "graders")


def build_endpoint(fit_path: str | None, config: ServeConfig, *, wait: bool = True) -> GraderEndpoint:
    """An endpoint whose graders are fitted on ``fit_path`` (default: the bundled sample).

    With ``wait`` the graders are ready on return; otherwise they are fitted in a background
    thread and requests wait for them (the server can answer ``/v1/models`` at once).
    """
    from ..io.sample import sample_path
    from .identity import serve_identity

    if fit_path is not None:
        check_fit(fit_path)
    endpoint = GraderEndpoint(config)
    path = str(fit_path or sample_path())
    endpoint.identity = serve_identity(config, path)  # published on /health before the socket listens
    if wait:
        endpoint.fit(path, fit_cache_dir())
        if endpoint.fit_error is not None:
            raise ConfigError(f"cannot fit the embedded graders on {path}: {endpoint.fit_error}")
    else:
        threading.Thread(target=endpoint.fit, args=(path, fit_cache_dir()), name="harness-fit", daemon=True).start()
    return endpoint


def check_fit(fit_path: str) -> None:
    """Refuse a ``fit`` table the graders cannot be fitted on, naming it (before anything listens)."""
    from ..core.errors import DataError
    from .graders import check_fit_table

    try:
        check_fit_table(fit_path)
    except DataError as exc:
        raise ConfigError(f"`fit` {exc}") from None


def check_address(host: str, port: int, *, free: bool = False) -> None:
    """Refuse an address that cannot be listened on: a port outside 1-65535 (0, a free port, with ``free``)."""
    low = 0 if free else 1
    if isinstance(port, bool) or not isinstance(port, int) or not low <= port <= 65535:
        raise ConfigError(f"`port` {port!r}: expected a port number from {low} to 65535")
    if not isinstance(host, str) or not host.strip():
        raise ConfigError(f"`host` {host!r}: expected an address to listen on, e.g. 127.0.0.1")


def start_server(
    fit_path: str | None = None, config: ServeConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
) -> ServerHandle:
    """Start the endpoint in a background thread (port 0 picks a free port); graders fitted first."""
    check_address(host, port, free=True)
    return ServerHandle(build_endpoint(fit_path, config or ServeConfig()), host, port)


#: Seconds a stopping server gives its running handlers to answer.
STOP_GRACE_S = 1.0
#: Set by a process that starts ``harness serve`` as its child: the server stops when that process is gone.
PARENT_ENV = "HARNESS_PARENT_PID"


async def _until_orphaned() -> None:
    """Wait forever, or (when started as a child, see ``PARENT_ENV``) until the parent process is gone, kill -9
    included: an orphan is re-parented, so ``getppid`` changes."""
    import os

    parent = os.environ.get(PARENT_ENV)
    if not parent or not parent.isdigit():
        await asyncio.Event().wait()
        return
    while os.getppid() == int(parent):
        await asyncio.sleep(0.25)


def serve_forever(fit_path: str | None, config: ServeConfig, *, host: str, port: int,
                  on_listening: Any = None) -> None:
    """Run the endpoint in the foreground until interrupted (the ``harness serve`` command).

    The socket is listening before ``on_listening`` is called (so a URL printed there is
    ready); the graders are fitted in the background and chat requests wait for them. The
    address and the ``fit`` table are checked before anything listens.
    """
    import errno

    from aiohttp import web

    check_address(host, port)

    async def main() -> None:
        endpoint = build_endpoint(fit_path, config, wait=False)  # the fit table is checked first
        # SIGTERM ends the server at once: the local model stops within a decoding step (endpoint.close), and
        # handlers still running get a second to answer before their connections are closed
        runner = web.AppRunner(endpoint.app(), access_log=None, handle_signals=True, shutdown_timeout=STOP_GRACE_S)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port, backlog=1024).start()
        except OSError as exc:
            await runner.cleanup()
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(
                    f"`port` {port}: cannot listen on {host}:{port} ({exc.strerror or exc}); "
                    "another server (an earlier harness serve?) holds it: stop it, or pass another `port`"
                ) from None
            raise ConfigError(f"`host` {host!r}: cannot listen on {host}:{port} ({exc.strerror or exc}); "
                              "pass an address of this machine, e.g. 127.0.0.1") from None
        if on_listening is not None:
            on_listening()
        try:
            await _until_orphaned()
        finally:
            endpoint.close()
            await runner.cleanup()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
