"""harness: grade LLM prompts and responses with LLM graders, and measure how far to trust them.

The public API is re-exported here lazily, so that ``import harness`` (and ``harness --help``)
stays fast: pandas, scikit-learn and openai load only when a function needs them.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "HarnessError": "errors",
    "UsageError": "errors",
    "DataError": "errors",
    "TemplateError": "errors",
    "ConfigError": "errors",
    "RunError": "errors",
    "GraderError": "errors",
    "load_pairs": "pairs",
    "write_pairs": "pairs",
    "validate_pairs": "pairs",
    "import_dataset": "importers",
    "describe": "description",
    "load_template_set": "templates",
    "load_shots": "shots",
    "EndpointConfig": "client",
    "GradeSpec": "jobs",
    "grade": "grading",
    "agrade": "grading",
    "load_run": "runs",
    "graded_pairs": "runs",
    "start_server": "server",
    "ServeConfig": "server",
    "agreement": "agreements",
    "calibrate_run": "calibration",
    "calibrate_table": "calibration",
    "calibrate_shots": "exemplars",
    "compare": "comparison",
    "analyze": "transitions",
    "render_report": "report",
    "save_analysis": "transitions",
    "save_calibration": "calibration",
    "flip_rates": "injection",
    "inject": "injection",
    "corrected_transitions": "correction",
    "bootstrap_ci": "stats",
    "mcnemar_test": "stats",
    "cohen_kappa_score": "stats",
    "Settings": "config",
    "sample_path": "sample",
    "Analysis": "results",
    "Calibration": "results",
    "Comparison": "results",
    "Flips": "results",
    "ShotSearch": "results",
    "Manifest": "results",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'harness' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip __getattr__ (no module is named like an export)
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
