"""One library step per analysis command: settings model in, typed result out, its files written.

``harness calibrate``, ``compare``, ``agreement``, ``analyze``, ``plan``, ``select``, ``calibrate-thresholds`` …
each parse flags into their settings (:mod:`harness.steps.settings`) and call their step; a study file's table
of the same name is the same settings model, and its step calls the same function. A step stamps
provenance, collects warnings and writes its outputs; nothing is patched afterwards.
"""

from .agreement import agreement
from .analyze import analyze
from .calibrate import calibrate
from .compare import compare
from .jury import jury
from .outcome import Outcome
from .plan import plan, select
from .settings import (
    COMMAND_SETTINGS,
    AgreementSettings,
    AnalyzeSettings,
    CalibrateSettings,
    CompareSettings,
    JurySettings,
    PlanSettings,
    SelectSettings,
    Settings,
    ShotSearchSettings,
    StabilitySettings,
    ThresholdSettings,
)
from .stability import stability
from .thresholds import calibrate_thresholds

__all__ = [
    "COMMAND_SETTINGS",
    "AgreementSettings",
    "AnalyzeSettings",
    "CalibrateSettings",
    "CompareSettings",
    "JurySettings",
    "Outcome",
    "PlanSettings",
    "SelectSettings",
    "Settings",
    "ShotSearchSettings",
    "StabilitySettings",
    "ThresholdSettings",
    "agreement",
    "analyze",
    "calibrate",
    "calibrate_thresholds",
    "compare",
    "jury",
    "plan",
    "select",
    "stability",
]
