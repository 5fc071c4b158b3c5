"""Every result type by the name ``harness schema NAME`` and ``docs/schemas/NAME.json`` use."""

from __future__ import annotations

from .analysis import Analysis
from .base import Result
from .calibration import Calibration, TableAgreement
from .comparison import Comparison, GraderAgreement
from .flips import Flips
from .manifest import DryRun, Manifest
from .planning import Plan, Selection
from .probes import Probe
from .raters import RaterAgreement
from .shots import ShotSearch
from .stability import Stability
from .thresholds import Thresholds

RESULT_TYPES: dict[str, type[Result]] = {
    "manifest": Manifest,
    "dry-run": DryRun,
    "calibration": Calibration,
    "table-agreement": TableAgreement,
    "comparison": Comparison,
    "grader-agreement": GraderAgreement,
    "analysis": Analysis,
    "flips": Flips,
    "shot-search": ShotSearch,
    "agreement": RaterAgreement,
    "plan": Plan,
    "selection": Selection,
    "stability": Stability,
    "probe": Probe,
    "thresholds": Thresholds,
}
