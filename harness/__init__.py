"""harness: grade LLM prompts and responses with LLM graders, and measure how far to trust them.

The public API is re-exported here lazily, so that ``import harness`` (and ``harness --help``)
stays fast: pandas, scikit-learn and openai load only when a function needs them.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from .core.constants import VERSION as __version__

_EXPORTS = {
    "HarnessError": "core.errors",
    "UsageError": "core.errors",
    "DataError": "core.errors",
    "TemplateError": "core.errors",
    "ConfigError": "core.errors",
    "RunError": "core.errors",
    "GraderError": "core.errors",
    "load_pairs": "io.pairs",
    "write_pairs": "io.pairs",
    "validate_pairs": "io.pairs",
    "import_dataset": "io.importers",
    "describe": "io.description",
    "load_template_set": "grading.templates",
    "load_shots": "grading.shots",
    "EndpointConfig": "grading.endpoint",
    "GradeSpec": "grading.jobs",
    "grade": "grading.grade",
    "agrade": "grading.grade",
    "load_run": "io.runs",
    "graded_pairs": "io.runs",
    "start_server": "serve.runner",
    "ServeConfig": "serve.server",
    "agreement": "analysis.agreement",
    "calibrate_run": "analysis.calibration",
    "calibrate_table": "analysis.table_calibration",
    "calibrate_shots": "workflows.shot_search",
    "calibrate_thresholds": "analysis.thresholds",
    "compare": "analysis.comparison",
    "analyze": "analysis.transitions",
    "render_report": "report.document",
    "render_view": "report.view",
    "show": "report.notebook",
    "read_study": "workflows.study.reading",
    "run_study": "workflows.study.run",
    "provenance_of": "io.provenance",
    "stamped": "io.provenance",
    "save_analysis": "analysis.transition_tables",
    "save_calibration": "analysis.calibration",
    "flip_rates": "analysis.injection",
    "inject": "analysis.injection",
    "corrected_transitions": "analysis.correction_em",
    "bootstrap_ci": "analysis.stats",
    "mcnemar_test": "analysis.stats",
    "cohen_kappa_score": "analysis.stats",
    "EndpointSettings": "grading.settings",
    "JobSettings": "grading.settings",
    "sample_path": "io.sample",
    "Analysis": "results.analysis",
    "Calibration": "results.calibration",
    "Comparison": "results.comparison",
    "Flips": "results.flips",
    "ShotSearch": "results.shots",
    "Thresholds": "results.thresholds",
    "Manifest": "results.manifest",
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
