"""What a ``harness serve`` answers with, as one fingerprint: the value a grading client keys its cache and names its
run folder by, whatever port the server was given.

The fingerprint hashes what fixes an answer: the code (harness's version and the serve package's source), the fit data
(the file's SHA-256, and the fitting code's version), the local language models this machine can serve (weights file,
torch and transformers versions) and the flags that change answers (``--gullible``, ``--answer-as``, the prefix reuse,
seeded faults). It leaves out what only changes when or whether an answer comes (latency, hang, batch faults, the API
key) and which graders are served: a request names its model, and the cache key holds the model. It is computed before
the server listens (``/health`` publishes it at once, while the graders fit and the models load), and the process that
starts an embedded server computes the same value without asking it.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.constants import SERVE_IDENTITY_PREFIX, VERSION

if TYPE_CHECKING:
    from .config import ServeConfig

#: Hex digits of the fingerprint (80 bits: two configurations never meet by chance).
DIGITS = 20


@lru_cache(maxsize=1)
def _code_digest() -> str:
    """The serve package's source: a change to how graders answer changes every fingerprint, version bump or not."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


@lru_cache(maxsize=8)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@lru_cache(maxsize=1)
def _local_models() -> dict[str, Any]:
    """Every local language model this machine can serve: its weights file and the libraries that compute with it
    (looked up without importing them)."""
    from importlib.metadata import PackageNotFoundError, version

    from .local_model import LOCAL_MODELS, missing_modules, model_file

    found: dict[str, Any] = {}
    for name in sorted(LOCAL_MODELS):
        if missing_modules(name):
            continue
        weights = model_file(name)
        libraries: dict[str, str | None] = {}
        for package in ("torch", "transformers"):
            try:
                libraries[package] = version(package)
            except PackageNotFoundError:
                libraries[package] = None
        found[name] = {"file": weights.name, "bytes": weights.stat().st_size, **libraries}
    return found


def serve_identity(config: ServeConfig, fit_path: str | Path | None = None) -> str | None:
    """The fingerprint of a server with this configuration fitted on ``fit_path`` (default: the bundled sample), or
    ``None`` when the fit file cannot be read (such a server answers every request with an error)."""
    from ..io.sample import sample_path
    from .graders import FIT_VERSION, PROFILES

    path = Path(fit_path or sample_path())
    fits = any(name in PROFILES for name in config.model_names)
    try:
        stat = path.stat()
        fit = {"sha256": _file_digest(str(path.resolve()), stat.st_size, stat.st_mtime_ns), "version": FIT_VERSION}
    except OSError:
        if fits:
            return None
        fit = None  # a server of local models only never reads it
    faults = None
    if config.fail_rate:
        faults = {"rate": config.fail_rate, "modes": sorted(config.fail_modes), "seed": config.seed}
    material = {
        "version": VERSION,
        "code": _code_digest(),
        "fit": fit if fits else None,
        "local": _local_models(),
        "gullible": config.gullible,
        "answer_as": config.answer_as,
        "prefix_reuse": config.prefix_reuse,
        "faults": faults,  # a seeded fault may be an answer (a refusal, garbage, a truncation); a batch fault never is
    }
    canonical = json.dumps(material, sort_keys=True, separators=(",", ":"))
    return SERVE_IDENTITY_PREFIX + hashlib.sha256(canonical.encode()).hexdigest()[:DIGITS]
