"""Named constants shared across harness modules."""

from __future__ import annotations

from typing import Literal, get_args

#: The four harm categories, in the order used everywhere (tables, JSON, reports).
CATEGORIES: tuple[str, ...] = ("hate", "sexual", "violence", "self_harm")

#: Short codes used by the grader JSON and the paper's artifacts.
CATEGORY_CODES: dict[str, str] = {"hate": "H", "sexual": "S", "violence": "V", "self_harm": "SH"}
CODE_TO_CATEGORY: dict[str, str] = {v: k for k, v in CATEGORY_CODES.items()}

CATEGORY_NAMES: dict[str, str] = {
    "hate": "Hate",
    "sexual": "Sexual",
    "violence": "Violence",
    "self_harm": "Self-harm",
}

#: Merged ordinal severity 0 Safe, 1 Low, 2 Medium, 3 High.
SEVERITIES: tuple[int, ...] = (0, 1, 2, 3)

#: The column a pick (``harness select``) writes: each row's probability of having been picked.
INCLUSION = "inclusion_probability"
#: The smallest inclusion probability harness accepts: a row picked with probability below 1/1000 would weigh (1/π)
#: over a thousand ordinary rows and decide every estimate alone; such a design is refused, not weighted.
MIN_INCLUSION = 1e-3

#: The scales of measurement agreement is computed on (Krippendorff's α, the alt-test's alignment).
Level = Literal["nominal", "ordinal", "interval"]
LEVELS: tuple[str, ...] = get_args(Level)

#: Sides of a pair that carry severity labels.
SIDES: tuple[str, ...] = ("prompt", "response")

#: Grading targets: the two sides, plus relevance (needs both texts).
TARGETS: tuple[str, ...] = ("prompt", "response", "relevance")

#: Statuses of one graded item. Only ``ok`` carries a verdict.
STATUSES: tuple[str, ...] = ("ok", "unparsed", "refused", "failed")

#: The harness release (``harness --version``, ``harness.__version__``, every manifest).
VERSION = "0.1.0"

#: Version of the layout of every JSON result harness writes (manifest, calibration, analysis, ...).
SCHEMA_VERSION = 1

DEFAULT_MODEL = "harness-baseline"
DEFAULT_SEED = 20260709
DEFAULT_CONCURRENCY = 16
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_MAX_ATTEMPTS = 6
DEFAULT_MAX_TOKENS = 400
#: Largest decoded response body a grader may send (a verdict is a few hundred bytes).
MAX_RESPONSE_BYTES = 1_000_000
#: Largest Retry-After we honour before capping the wait.
RETRY_AFTER_CAP_S = 30.0
BACKOFF_INITIAL_S = 0.5
BACKOFF_MAX_S = 20.0
DEFAULT_N_BOOT = 2000
#: Fewer clusters than this behind an interval and every command prints it as such (a warning naming the count): a
#: cluster bootstrap on so few covers well under 95 %.
FEWEST_CLUSTERS = 10
DEFAULT_CACHE_DIR = ".harness-cache"
#: Where ``harness serve`` listens, and so the default grader endpoint.
DEFAULT_SERVE_PORT = 8000
DEFAULT_BASE_URL = f"http://127.0.0.1:{DEFAULT_SERVE_PORT}/v1"
#: How a ``harness serve``'s fingerprint begins (``/health`` publishes it; a run folder and the cache key name it).
SERVE_IDENTITY_PREFIX = "harness-serve:"

#: Delimiters that fence the text to grade inside a user message.
TEXT_BEGIN = "<<<TEXT_TO_LABEL>>>"
TEXT_END = "<<<END_TEXT_TO_LABEL>>>"


def label_column(side: str, category: str) -> str:
    """Name of the pairs-table column holding ``side``'s label for ``category``."""
    return f"{side}_{category}"


LABEL_COLUMNS: tuple[str, ...] = tuple(label_column(s, c) for s in SIDES for c in CATEGORIES)


def raw_to_severity(raw: int) -> int:
    """Azure raw 0-7 merged pairwise into 0-3 (0-1→0, 2-3→1, 4-5→2, 6-7→3).

    >>> [raw_to_severity(r) for r in range(8)]
    [0, 0, 1, 1, 2, 2, 3, 3]
    """
    return raw // 2
