"""How ``harness serve`` behaves: the graders it serves, its key, and the faults it injects for tests (all off by
default). Every setting is checked when made, so ``harness serve`` refuses a bad flag before it listens."""

from __future__ import annotations

from dataclasses import dataclass

from ..core.errors import ConfigError
from .batches import BATCH_FAULTS
from .graders import PROFILES
from .local_model import LOCAL_MODELS, require_local

FAULT_MODES = (
    "429",
    "500",
    "503",
    "drop",
    "timeout",
    "malformed",
    "truncated",
    "refusal",
    "garbage",
    "content_filter",
)
#: Faults only on request (not among the default modes): a 200 answer whose body is an HTML page.
EXTRA_FAULTS = ("html",)

#: The numeric settings of :class:`ServeConfig` and their ranges: a delay or hang of an hour at most, a rate a share.
RANGES: dict[str, tuple[int, int]] = {"latency_ms": (0, 3_600_000), "fail_rate": (0, 1), "hang_s": (0, 3600),
                                      "retry_after_s": (0, 3600), "seed": (0, 2**32 - 1)}


@dataclass
class ServeConfig:
    """How the endpoint behaves; faults are off by default. Every setting is checked when made (a
    :class:`~harness.core.errors.ConfigError` naming it), so ``harness serve`` refuses a bad flag before it listens."""

    model_names: tuple[str, ...] = tuple(PROFILES)
    api_key: str | None = None
    latency_ms: float = 0.0
    fail_rate: float = 0.0
    fail_modes: tuple[str, ...] = FAULT_MODES
    seed: int = 0
    hang_s: float = 30.0
    retry_after_s: float = 1.0
    gullible: bool = False
    batch_fault: str | None = None
    #: Grade every request with this grader and say so in ``model``, whatever was asked
    #: (a replica that lies, for tests).
    answer_as: str | None = None
    #: Local language models (``smollm2-135m``): keep the shared few-shot prefix's key/value states between requests.
    prefix_reuse: bool = True
    #: Refuse every ``response_format`` json_schema with a 400 naming it, as an endpoint without structured outputs does
    #: (to test that a grade falls back to json_object).
    refuse_json_schema: bool = False

    def __post_init__(self) -> None:
        if self.batch_fault is not None and self.batch_fault not in BATCH_FAULTS:
            raise ConfigError(f"`batch_fault` {self.batch_fault!r}: expected one of {list(BATCH_FAULTS)}")
        graders = [m for m in self.model_names if m not in PROFILES and m not in LOCAL_MODELS]
        if graders or not self.model_names:
            raise ConfigError(
                f"`model_names` {graders[0] if graders else ''!r}: expected some of {[*PROFILES, *LOCAL_MODELS]}"
            )
        for name in self.model_names:
            if name in LOCAL_MODELS:
                require_local(name)
        unknown = [m for m in self.fail_modes if m not in (*FAULT_MODES, *EXTRA_FAULTS)]
        if unknown:
            raise ConfigError(
                f"`fail_modes`: unknown mode {unknown[0]!r}; expected some of {[*FAULT_MODES, *EXTRA_FAULTS]}"
            )
        if self.answer_as is not None and self.answer_as not in PROFILES:
            raise ConfigError(f"`answer_as` {self.answer_as!r}: expected one of {list(PROFILES)}")
        for name, (low, high) in RANGES.items():
            value, kind = getattr(self, name), int if name == "seed" else (int, float)
            if isinstance(value, bool) or not isinstance(value, kind) or not low <= value <= high:
                expected = "a whole number" if name == "seed" else "a number"
                raise ConfigError(f"`{name}` {value!r}: expected {expected} from {low:,} to {high:,}")
