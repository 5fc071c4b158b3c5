"""Which grader an endpoint is: the one value the cache key and the run folder both name.

A remote endpoint is its public base URL (no credentials, no query), as it always was, so caches of remote endpoints
keep their keys. A loopback endpoint is one of this machine's own servers, on whichever port it was given today: a
``harness serve`` is what it serves (its fingerprint, ``harness-serve:…``, published on ``/health`` as soon as it
listens: code, fit data, flags; see :mod:`harness.serve.identity`), and any other local server is its full URL, port
included. So two local servers fitted differently never share cached answers, and the same server restarted on
another port is still itself. The identity is learned once per grade (one ``GET /health`` of a loopback endpoint,
never a request per item); an embedded server's is computed by the process that starts it (``EndpointConfig.identity``),
which then never waits for it.
"""

from __future__ import annotations

import http.client
import json
import re
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import urlsplit

from ..core.constants import SERVE_IDENTITY_PREFIX
from .cache import is_loopback, public_base_url

if TYPE_CHECKING:
    from ..results.manifest import Manifest
    from .endpoint import EndpointConfig

#: What a published fingerprint looks like (anything else on ``/health`` is not one).
_FINGERPRINT = re.compile(rf"^{re.escape(SERVE_IDENTITY_PREFIX)}[0-9a-f]{{20}}$")
#: Attempts at a loopback endpoint that refuses connections before it is taken for its URL (a server starting now).
PROBE_ATTEMPTS = 3
PROBE_WAIT_S = 0.25
#: Longest wait for ``/health`` (it answers at once, while the graders fit and the models load).
PROBE_TIMEOUT_S = 5.0


class Identity(NamedTuple):
    """An endpoint's identity, and whether the endpoint said so itself just now (it is up, and it is that server)."""

    value: str
    answered: bool


def is_fingerprint(identity: str) -> bool:
    """Whether ``identity`` is a ``harness serve``'s fingerprint (not a URL)."""
    return bool(_FINGERPRINT.match(identity))


def endpoint_identity(config: EndpointConfig) -> Identity:
    """The endpoint's identity: given (an embedded server's), its public URL (remote), or asked (loopback).

    A loopback endpoint is asked once for its fingerprint (replicas in turn; one that refuses connections is asked
    again briefly, a server may be starting). One that answers without a fingerprint, or never answers, is its full URL:
    a dead port then fails as unreachable when the grade sends its first request, and records nothing.
    """
    if config.identity is not None:
        return Identity(config.identity, False)
    public = public_base_url(config.base_url)
    if not is_loopback(public):
        return Identity(public, False)
    urls = [u for u in config.urls if is_loopback(public_base_url(u))]
    for attempt in range(PROBE_ATTEMPTS):
        for url in urls:
            try:
                said = _published(url, min(config.timeout_s, PROBE_TIMEOUT_S))
            except ConnectionRefusedError:
                continue
            except (OSError, http.client.HTTPException):  # a timeout, a reset, a broken answer: not a harness serve now
                return Identity(public, False)
            return Identity(said or public, True)
        if attempt + 1 < PROBE_ATTEMPTS:
            time.sleep(min(config.retry.initial_s * 2**attempt, PROBE_WAIT_S))
    return Identity(public, False)


def _published(url: str, timeout_s: float) -> str | None:
    """The fingerprint the server at ``url`` publishes on ``/health``, or ``None`` (another kind of server)."""
    parts = urlsplit(url)
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = kind(parts.hostname or "127.0.0.1", parts.port, timeout=timeout_s)
    try:
        connection.request("GET", "/health", headers={"Accept": "application/json"})
        response = connection.getresponse()
        body = response.read(65_536)
    finally:
        connection.close()
    if response.status != 200:
        return None
    try:
        said = json.loads(body).get("identity")
    except (ValueError, AttributeError):
        return None
    return said if isinstance(said, str) and is_fingerprint(said) else None


def answered_here(recorded: Iterable[str], identity: str, base_url: str) -> bool:
    """Whether a run folder whose endpoints were ``recorded`` may be resumed at this endpoint.

    Its identity must be among them; a ``harness serve``'s is also met by its URL as an older harness recorded it
    (port included: a run graded at ``harness serve`` on the default port resumes there after an upgrade).
    """
    recorded = list(recorded)
    return identity in recorded or (is_fingerprint(identity) and public_base_url(base_url) in recorded)


def describe(identity: str) -> str:
    """An identity as a message names it."""
    if is_fingerprint(identity):
        return f"{identity} (a harness serve: its code, fit data and flags)"
    return identity


def graded_url(manifest: Manifest) -> str | None:
    """The URL a run was last graded at (its manifest's endpoint may be a fingerprint, which is not reachable)."""
    if manifest.replicas:
        return manifest.replicas[0]
    return manifest.endpoint
